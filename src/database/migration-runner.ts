import type { DataSource, QueryRunner } from 'typeorm';
import { MigrationExecutor } from 'typeorm';

/** Arbitrary but fixed key: every instance of this service serialises its migrations on it. */
const MIGRATION_LOCK_KEY = 727_274_001;

export const MIN_SERVER_VERSION_NUM = 130000;

export class DatabaseCompatibilityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatabaseCompatibilityError';
  }
}

/** Checks the server before anything is changed: PostgreSQL ≥ 13 (gen_random_uuid) and pgvector available. */
export async function assertServerCompatible(runner: QueryRunner): Promise<void> {
  const [{ server_version_num }] = (await runner.query(`SHOW server_version_num`)) as Array<{
    server_version_num: string;
  }>;
  if (Number(server_version_num) < MIN_SERVER_VERSION_NUM) {
    throw new DatabaseCompatibilityError(
      `PostgreSQL ${server_version_num} is too old: version 13 or newer is required`,
    );
  }
  const rows = (await runner.query(
    `SELECT default_version, installed_version FROM pg_available_extensions WHERE name = 'vector'`,
  )) as Array<{ default_version: string; installed_version: string | null }>;
  if (rows.length === 0) {
    throw new DatabaseCompatibilityError(
      'The pgvector extension is not available on this PostgreSQL server: install pgvector (https://github.com/pgvector/pgvector) and retry',
    );
  }
}

/**
 * Runs pending migrations on one dedicated connection, under a session advisory lock so that
 * several instances starting together do not race each other. Returns the names it applied.
 */
export async function runPendingMigrations(dataSource: DataSource): Promise<string[]> {
  const runner = dataSource.createQueryRunner();
  try {
    await runner.connect();
    await assertServerCompatible(runner);
    await runner.query(`SELECT pg_advisory_lock($1)`, [MIGRATION_LOCK_KEY]);
    try {
      const executor = new MigrationExecutor(dataSource, runner);
      executor.transaction = 'each';
      const applied = await executor.executePendingMigrations();
      return applied.map((m) => m.name);
    } finally {
      await runner.query(`SELECT pg_advisory_unlock($1)`, [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await runner.release();
  }
}
