import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { AskModule } from './ask/ask.module.js';
import { AuthModule } from './auth/auth.module.js';
import { DatabaseExceptionFilter } from './common/database-exception.filter.js';
import type { AppConfig } from './config/app-config.js';
import { AppConfigModule } from './config/config.module.js';
import { DatabaseModule } from './database/database.module.js';
import { DocumentsModule } from './documents/documents.module.js';
import { EmbeddingsModule } from './embeddings/embeddings.module.js';
import { HealthModule } from './health/health.module.js';
import { IngestModule } from './ingest/ingest.module.js';
import { ThrottlingModule } from './limits/throttling.module.js';
import { ObservabilityModule } from './observability/observability.module.js';
import { StatsModule } from './stats/stats.module.js';

@Module({})
export class AppModule {
  /** The config is passed in (not read from process.env here) so tests can build apps side by side. */
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        AppConfigModule.forRoot(config),
        // First: its request-id middleware and logger wrap everything after it.
        ObservabilityModule,
        ThrottlingModule.forRoot(config),
        // After ThrottlingModule: its guard runs first, so requests with wrong keys are rate-limited too.
        AuthModule.forRoot(config),
        DatabaseModule,
        HealthModule,
        DocumentsModule,
        EmbeddingsModule,
        StatsModule,
        IngestModule,
        AskModule,
      ],
      providers: [{ provide: APP_FILTER, useClass: DatabaseExceptionFilter }],
    };
  }
}
