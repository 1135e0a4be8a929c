import type { QueryRunner } from 'typeorm';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * How long a migration that locks a shared table waits for the lock. Migrations run without a
 * statement timeout (withMigrationLock); while a lock request waits for a long transaction on the
 * table (a Python writer left idle, say), every search and write queued behind it waits too. Past
 * this it fails, nothing of its transaction is kept, and `db:migrate` can simply be run again.
 */
export const LOCK_TIMEOUT_MS = 5_000;
export const LOCK_TIMEOUT = `${LOCK_TIMEOUT_MS / 1000}s`;

/** Bounds every lock wait of the migration's own transaction (SET LOCAL) by LOCK_TIMEOUT. */
export async function boundLockWaits(q: QueryRunner): Promise<void> {
  await q.query(`SELECT set_config('lock_timeout', $1, true)`, [LOCK_TIMEOUT]);
}

/**
 * Takes ACCESS EXCLUSIVE on every one of `tables` without ever waiting for one while holding
 * another: all of them at once with NOWAIT, and when one is in use, none (back to a savepoint), a
 * pause, and again, for at most LOCK_TIMEOUT. Waiting for them one after the other deadlocked with
 * writers that lock the same tables in another order: a LangChain INSERT holds the chunk table and
 * then locks the collection (its foreign key), langchain_postgres reads the collection and then
 * writes the chunks, and PostgreSQL cancelled the writer, or the migration, to break the cycle.
 * Past LOCK_TIMEOUT it fails as a lock_timeout would, and nothing of its transaction is kept.
 */
export async function lockTablesWithoutWaiting(q: QueryRunner, tables: readonly string[]): Promise<void> {
  if (tables.length === 0) return;
  const deadline = Date.now() + LOCK_TIMEOUT_MS;
  for (;;) {
    await q.query('SAVEPOINT lock_tables');
    try {
      await q.query(`LOCK TABLE ${tables.join(', ')} IN ACCESS EXCLUSIVE MODE NOWAIT`);
      await q.query('RELEASE SAVEPOINT lock_tables');
      return;
    } catch (error) {
      if ((error as { code?: unknown }).code !== '55P03') throw error;
      await q.query('ROLLBACK TO SAVEPOINT lock_tables');
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `lock timeout: ${tables.join(', ')} stayed in use by other sessions for ${LOCK_TIMEOUT} (a transaction left ` +
          'open, or writers that never pause); nothing was changed: run db:migrate again when they are quieter',
      );
    }
    // Jittered, so that the pause does not fall into step with a writer's own rhythm.
    await sleep(20 + Math.random() * 60);
  }
}
