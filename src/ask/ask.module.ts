import { Module } from '@nestjs/common';
import { EmbeddingsModule } from '../embeddings/embeddings.module.js';
import { answerGeneratorProvider } from './answer/answer-generator.js';
import { AskController } from './ask.controller.js';
import { AskService } from './ask.service.js';
import { ChunkSearchRepository } from './chunk-search.repository.js';
import { SearchTargetCache } from './search-target.cache.js';
import { VectorIndexController } from './vector-index.controller.js';
import { VectorIndexService } from './vector-index.service.js';

@Module({
  imports: [EmbeddingsModule],
  controllers: [AskController, VectorIndexController],
  providers: [AskService, ChunkSearchRepository, SearchTargetCache, VectorIndexService, answerGeneratorProvider],
  exports: [VectorIndexService],
})
export class AskModule {}
