import type { DataSource, QueryRunner } from 'typeorm';
import { MigrationExecutor } from 'typeorm';
import { MIGRATIONS_TABLE } from './data-source-options.js';

/** Arbitrary but fixed key: every instance of this service serialises its migrations on it. */
const MIGRATION_LOCK_KEY = 727_274_001;

export const MIN_SERVER_VERSION_NUM = 130000;

/** A migration known to the code, in order, and whether the database records it. */
export interface MigrationState {
  name: string;
  timestamp: number;
  applied: boolean;
}

/** Exposes the executor's protected helpers (migrations table creation, the ordered list). */
export class Executor extends MigrationExecutor {
  ensureMigrationsTable(runner: QueryRunner): Promise<void> {
    return this.createMigrationsTableIfNotExist(runner);
  }
  ordered(): Array<{ name: string; timestamp: number }> {
    return this.getMigrations();
  }
}

/** The migrations the database records, in the order they were applied; none without the table. */
export async function recordedNames(ds: DataSource): Promise<string[]> {
  const runner = ds.createQueryRunner();
  try {
    if (!(await runner.hasTable(MIGRATIONS_TABLE))) return [];
    const rows = (await runner.query(`SELECT name FROM ${MIGRATIONS_TABLE} ORDER BY id`)) as Array<{ name: string }>;
    return rows.map((r) => r.name);
  } finally {
    await runner.release();
  }
}

export async function migrationStates(ds: DataSource): Promise<MigrationState[]> {
  const recorded = new Set(await recordedNames(ds));
  return new Executor(ds)
    .ordered()
    .map((m) => ({ name: m.name, timestamp: m.timestamp, applied: recorded.has(m.name) }));
}

/** The names of the migrations this code has and the database does not record, in order. */
export async function pendingMigrationNames(ds: DataSource): Promise<string[]> {
  return (await migrationStates(ds)).filter((m) => !m.applied).map((m) => m.name);
}

/**
 * "The database is not at head: …" naming the pending migrations, or null when there are none: the
 * first sentence of the service's start-up warning and of the CLIs' refusals, each adding its advice.
 */
export async function notAtHeadMessage(ds: DataSource): Promise<string | null> {
  const pending = await pendingMigrationNames(ds);
  return pending.length === 0
    ? null
    : `The database is not at head: ${pending.length} migration(s) pending (${pending.join(', ')}).`;
}

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

/** The tables InitialSchema creates: if any of them exists, the database was not built by us. */
export const BASELINE_TABLES = ['documents', 'langchain_pg_collection', 'langchain_pg_embedding'] as const;

/** The baseline tables exist but no migration is recorded: running InitialSchema would fail half-way. */
export class DatabaseNotStampedError extends DatabaseCompatibilityError {
  constructor(tables: string[]) {
    super(
      `The database already has the tables ${tables.join(', ')} but no migration is recorded in "${MIGRATIONS_TABLE}": ` +
        'it was created by another tool (the Python service). Run `npm run db:stamp` to verify and record the baseline, ' +
        'then `npm run db:migrate` (see docs/MIGRATIONS.md). Nothing was changed.',
    );
    this.name = 'DatabaseNotStampedError';
  }
}

/**
 * Refuses to migrate a pre-existing database that was never stamped (see DatabaseNotStampedError).
 * Returns silently when migrations are recorded or when none of the baseline tables exists.
 */
export async function assertStampedOrEmpty(runner: QueryRunner): Promise<void> {
  const present = (await runner.query(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname = ANY($1::text[])
      ORDER BY 1`,
    [[...BASELINE_TABLES]],
  )) as Array<{ name: string }>;
  if (present.length === 0) return;
  if (await runner.hasTable(MIGRATIONS_TABLE)) {
    const [{ n }] = (await runner.query(`SELECT count(*)::int AS n FROM ${MIGRATIONS_TABLE}`)) as Array<{ n: number }>;
    if (n > 0) return;
  }
  throw new DatabaseNotStampedError(present.map((r) => r.name));
}

/** How often an instance waiting for another's migrations asks for the migration lock. */
const MIGRATION_LOCK_POLL_MS = 250;

/**
 * Takes the migration lock on `runner`'s session, runs `fn`, and releases the lock. The session
 * runs without the per-request statement timeout (DB_STATEMENT_TIMEOUT_MS, which every connection
 * starts with): building an index concurrently waits for every transaction older than it and then
 * reads the whole table, a backfill reads it too (minutes on a large database), and a second
 * instance starting with DB_MIGRATE_ON_START waits here for the first one's migrations. Migrations
 * that take exclusive locks bound their waits with `lock_timeout` instead. The setting is reset
 * before the connection goes back to the pool.
 *
 * The lock is polled, not waited for: CREATE INDEX CONCURRENTLY waits for every transaction that
 * is running, and a second instance blocked in pg_advisory_lock is one, waiting in turn for the
 * first instance's lock: PostgreSQL saw the cycle and failed the second's start ("deadlock
 * detected"). A failed try ends its statement at once, so the build goes on.
 */
export async function withMigrationLock<T>(runner: QueryRunner, fn: () => Promise<T>): Promise<T> {
  await runner.query(`SET statement_timeout = 0`);
  try {
    for (;;) {
      const [{ locked }] = (await runner.query(`SELECT pg_try_advisory_lock($1) AS locked`, [
        MIGRATION_LOCK_KEY,
      ])) as Array<{ locked: boolean }>;
      if (locked) break;
      await new Promise((resolve) => setTimeout(resolve, MIGRATION_LOCK_POLL_MS));
    }
    try {
      return await fn();
    } finally {
      await runner.query(`SELECT pg_advisory_unlock($1)`, [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await runner.query(`RESET statement_timeout`);
  }
}

/**
 * Runs pending migrations on one dedicated connection, under a session advisory lock so that
 * several instances starting together do not race each other. Returns the names it applied.
 * Refuses (DatabaseNotStampedError, nothing changed) on a pre-existing database that was not stamped.
 */
export async function runPendingMigrations(dataSource: DataSource): Promise<string[]> {
  const runner = dataSource.createQueryRunner();
  try {
    await runner.connect();
    await assertServerCompatible(runner);
    return await withMigrationLock(runner, async () => {
      await assertStampedOrEmpty(runner);
      const executor = new MigrationExecutor(dataSource, runner);
      executor.transaction = 'each';
      const applied = await executor.executePendingMigrations();
      return applied.map((m) => m.name);
    });
  } finally {
    await runner.release();
  }
}
