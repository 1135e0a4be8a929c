import type { QueryRunner } from 'typeorm';

/**
 * How long a migration that locks a shared table waits for the lock. Migrations run without a
 * statement timeout (withMigrationLock); while a lock request waits for a long transaction on the
 * table (a Python writer left idle, say), every search and write queued behind it waits too. Past
 * this it fails, nothing of its transaction is kept, and `db:migrate` can simply be run again.
 */
export const LOCK_TIMEOUT = '5s';

/** Bounds every lock wait of the migration's own transaction (SET LOCAL) by LOCK_TIMEOUT. */
export async function boundLockWaits(q: QueryRunner): Promise<void> {
  await q.query(`SELECT set_config('lock_timeout', $1, true)`, [LOCK_TIMEOUT]);
}
