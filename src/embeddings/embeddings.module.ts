import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ChunkStore } from './chunk.store.js';
import { CollectionEntity } from './collection.entity.js';
import { EmbeddingEntity } from './embedding.entity.js';
import { EMBEDDING_PROVIDER, type EmbeddingProvider } from './providers/embedding-provider.js';
import { LocalEmbeddingProvider } from './providers/local-embedding.provider.js';

@Module({
  imports: [TypeOrmModule.forFeature([CollectionEntity, EmbeddingEntity])],
  providers: [
    {
      provide: EMBEDDING_PROVIDER,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig): EmbeddingProvider => {
        switch (config.embeddings.provider) {
          case 'local':
            return new LocalEmbeddingProvider(config.embeddings.dimensions);
        }
      },
    },
    ChunkStore,
  ],
  exports: [EMBEDDING_PROVIDER, ChunkStore],
})
export class EmbeddingsModule {}
