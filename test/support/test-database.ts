import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { type AppConfig, loadAppConfig } from '../../src/config/app-config.js';
import { buildDataSourceOptions } from '../../src/database/data-source-options.js';
import { DatabaseRuntime } from '../../src/database/database-runtime.js';

/** `embedded` (PGlite, the default) or `postgres` (a real server at TEST_DATABASE_URL). */
export const TEST_TARGET: 'embedded' | 'postgres' = process.env.TEST_DB_TARGET === 'postgres' ? 'postgres' : 'embedded';

/**
 * A fresh, empty database for one test suite: an in-memory PGlite, or a new database on the test
 * server that `drop()` removes again. Nothing is shared between suites.
 */
export interface TestDatabase {
  /** Environment for loadAppConfig that points the app at this database. */
  readonly env: Record<string, string>;
  drop(): Promise<void>;
}

/**
 * `serverSettings`: parameters every session of the new server database starts with (ALTER
 * DATABASE … SET), for a test that needs one of the app's own sessions set otherwise; ignored on
 * the embedded database, which has one session.
 */
export async function createTestDatabase(
  options: { serverSettings?: Record<string, string> } = {},
): Promise<TestDatabase> {
  if (TEST_TARGET === 'embedded') {
    const env: Record<string, string> = { DATA_DIR: 'memory://' };
    if (process.env.EMBEDDED_TEMPLATE) env.EMBEDDED_TEMPLATE = process.env.EMBEDDED_TEMPLATE;
    return { env, drop: () => Promise.resolve() };
  }
  const adminUrl = process.env.TEST_DATABASE_URL;
  if (!adminUrl) throw new Error('TEST_DATABASE_URL is required for the postgres target');
  const name = `kb_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await withAdminClient(adminUrl, async (c) => {
    await c.query(`CREATE DATABASE ${name}`);
    for (const [key, value] of Object.entries(options.serverSettings ?? {})) {
      await c.query(`ALTER DATABASE ${name} SET ${c.escapeIdentifier(key)} = ${c.escapeLiteral(value)}`);
    }
  });
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    env: { DATABASE_URL: url.toString(), DB_MIGRATE_ON_START: 'true' },
    drop: async () => {
      await withAdminClient(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

async function withAdminClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The config the app would build from this environment (plus per-test overrides). */
export function testConfig(db: TestDatabase, overrides: Record<string, string> = {}): AppConfig {
  return loadAppConfig({ LOG_LEVEL: 'warn', ...db.env, ...overrides });
}

/**
 * A DataSource on the test database without the app and without migrations applied: for tests of
 * the migrations themselves. `close()` also stops the embedded server.
 */
export async function openRawDataSource(
  config: AppConfig,
): Promise<{ dataSource: DataSource; close: () => Promise<void> }> {
  const runtime = await DatabaseRuntime.open(config);
  const dataSource = new DataSource({ ...buildDataSourceOptions(config, runtime.endpoint), migrationsRun: false });
  await dataSource.initialize();
  return {
    dataSource,
    close: async () => {
      if (dataSource.isInitialized) await dataSource.destroy();
      await runtime.close();
    },
  };
}
