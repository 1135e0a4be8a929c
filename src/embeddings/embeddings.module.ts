import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { MetricsService } from '../observability/metrics.service.js';
import { ChunkStore } from './chunk.store.js';
import { CollectionModelCheck } from './collection-model.check.js';
import { CollectionsController } from './collections.controller.js';
import { CollectionsService } from './collections.service.js';
import { CollectionEntity } from './collection.entity.js';
import { EmbeddingEntity } from './embedding.entity.js';
import { EmbeddingsController } from './embeddings.controller.js';
import { EmbeddingsService } from './embeddings.service.js';
import { EMBEDDING_PROVIDER, type EmbeddingProvider } from './providers/embedding-provider.js';
import { LocalEmbeddingProvider } from './providers/local-embedding.provider.js';
import { meteredProvider } from './providers/metered-embedding.provider.js';
import { OpenAIEmbeddingProvider } from './providers/openai-embedding.provider.js';

function createEmbeddingProvider(config: AppConfig): EmbeddingProvider {
  switch (config.embeddings.provider) {
    case 'local':
      return new LocalEmbeddingProvider(config.embeddings.dimensions);
    case 'openai':
      // loadAppConfig sets embeddings.openai whenever the provider is openai.
      return new OpenAIEmbeddingProvider(config.embeddings.openai!, config.embeddings.dimensions);
  }
}

@Module({
  imports: [TypeOrmModule.forFeature([CollectionEntity, EmbeddingEntity])],
  controllers: [CollectionsController, EmbeddingsController],
  providers: [
    {
      provide: EMBEDDING_PROVIDER,
      inject: [APP_CONFIG, { token: MetricsService, optional: true }],
      useFactory: (config: AppConfig, metrics?: MetricsService): EmbeddingProvider => {
        const provider = createEmbeddingProvider(config);
        return metrics ? meteredProvider(provider, config.embeddings.provider, metrics) : provider;
      },
    },
    ChunkStore,
    CollectionModelCheck,
    CollectionsService,
    EmbeddingsService,
  ],
  exports: [EMBEDDING_PROVIDER, ChunkStore, CollectionsService],
})
export class EmbeddingsModule {}
