import { Global, Logger, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { buildDataSourceOptions } from './data-source-options.js';
import { DatabaseRuntime, initializeDataSource } from './database-runtime.js';
import { notAtHeadMessage } from './migration-runner.js';
import { ReadReplicas } from './read-replicas.service.js';

@Global()
@Module({
  providers: [
    {
      provide: DatabaseRuntime,
      inject: [APP_CONFIG],
      // The service says what its embedded database is doing; the ingest CLI's logger keeps only warnings.
      useFactory: (config: AppConfig) => DatabaseRuntime.open(config, new Logger('Database')),
    },
  ],
  exports: [DatabaseRuntime],
})
class DatabaseRuntimeModule {}

/**
 * TypeORM on either database, built from the same options and initialiser as the CLI's.
 * Global so that every feature module can route its reads through ReadReplicas.
 */
@Global()
@Module({
  providers: [ReadReplicas],
  exports: [ReadReplicas],
  imports: [
    DatabaseRuntimeModule,
    TypeOrmModule.forRootAsync({
      imports: [DatabaseRuntimeModule],
      inject: [APP_CONFIG, DatabaseRuntime],
      useFactory: (config: AppConfig, runtime: DatabaseRuntime) => ({
        ...buildDataSourceOptions(config, runtime.endpoint),
        // Fail fast with the real error: a retry loop hides a wrong URL behind a long wait.
        retryAttempts: 1,
      }),
      dataSourceFactory: async (options) => {
        if (!options) throw new Error('TypeORM options missing');
        return initializeDataSource(options);
      },
    }),
  ],
})
export class DatabaseModule implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(DatabaseModule.name);
  constructor(
    private readonly runtime: DatabaseRuntime,
    private readonly dataSource: DataSource,
    private readonly adapterHost: HttpAdapterHost,
  ) {}

  /**
   * Warns when the database is behind this code (migrations pending: a server started without
   * DB_MIGRATE_ON_START, an adopted database stamped but not migrated). It serves all the same,
   * with answers of the older schema (a backfill not yet made: createdAt ""). Only in the HTTP
   * service: the CLIs that need the schema refuse such a database with their own message.
   */
  async onApplicationBootstrap(): Promise<void> {
    if (!this.adapterHost.httpAdapter) return;
    const notAtHead = await notAtHeadMessage(this.dataSource);
    if (notAtHead === null) return;
    this.logger.warn(
      `${notAtHead} Run \`npm run db:migrate\` (or start with DB_MIGRATE_ON_START=true); a database the Python ` +
        'service created is adopted with `npm run db:stamp` first (docs/MIGRATIONS.md).',
    );
  }

  async onApplicationShutdown(): Promise<void> {
    // The pool must close before the embedded server under it stops.
    if (this.dataSource.isInitialized) await this.dataSource.destroy();
    await this.runtime.close();
    this.logger.log(`Database closed (${this.runtime.mode})`);
  }
}
