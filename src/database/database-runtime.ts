import { Logger } from '@nestjs/common';
import { DataSource, type DataSourceOptions } from 'typeorm';
import type { AppConfig, DatabaseMode } from '../config/app-config.js';
import { searchSessionSettings, type DatabaseEndpoint } from './data-source-options.js';
import type { EmbeddedNotices } from './data-dir-lock.js';
import { EmbeddedPostgres } from './embedded-postgres.js';
import { runPendingMigrations } from './migration-runner.js';
import { readTimestampsInSessionTimeZone } from './pg-types.js';

/**
 * What the DataSource connects to, and the embedded server's lifetime when there is one.
 * Used by the Nest app and by the CLI alike, so both open the database the same way.
 */
export class DatabaseRuntime {
  private constructor(
    readonly mode: DatabaseMode,
    readonly endpoint: DatabaseEndpoint,
    private readonly embedded?: EmbeddedPostgres,
  ) {}

  /** `notices`: where the embedded database says it opens or creates its files (the service's log). */
  static async open(config: AppConfig, notices?: EmbeddedNotices): Promise<DatabaseRuntime> {
    if (config.database.url) return new DatabaseRuntime('server', { url: config.database.url });
    const embedded = await EmbeddedPostgres.start(
      config.database.dataDir,
      config.database.embeddedTemplate,
      searchSessionSettings(config),
      notices,
    );
    return new DatabaseRuntime('embedded', { host: embedded.host, port: embedded.port }, embedded);
  }

  async close(): Promise<void> {
    await this.embedded?.stop();
  }
}

/**
 * Initialises a DataSource and, when `options.migrationsRun` is set, applies pending migrations
 * through runPendingMigrations (advisory lock, version checks) instead of TypeORM's own runner.
 * That flag is on for the embedded database and, on a server, only with DB_MIGRATE_ON_START=true,
 * so a production database is never changed by surprise.
 */
export async function initializeDataSource(
  options: DataSourceOptions,
  logger = new Logger('Database'),
): Promise<DataSource> {
  const dataSource = new DataSource({ ...options, migrationsRun: false });
  await dataSource.initialize();
  try {
    await readTimestampsInSessionTimeZone(dataSource);
    if (options.migrationsRun) {
      const applied = await runPendingMigrations(dataSource);
      if (applied.length > 0) logger.log(`Applied migrations: ${applied.join(', ')}`);
    }
  } catch (err) {
    await dataSource.destroy();
    throw err;
  }
  return dataSource;
}
