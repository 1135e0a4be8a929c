import type { MigrationInterface, QueryRunner } from 'typeorm';
import { boundLockWaits } from './support/lock-timeout.js';

/** How long the ALTER may wait for the table's lock (see the class). */
export { LOCK_TIMEOUT } from './support/lock-timeout.js';

/**
 * Stores chunk vectors in the table's own rows (storage MAIN) instead of out of line in its TOAST
 * table (EXTERNAL, pgvector's default for its types). A chunk row holding a 384-dimension vector
 * (1.5 KB) and about 1 KB of text passes PostgreSQL's 2 KB TOAST threshold, and under EXTERNAL the
 * vector is the value moved out: every distance an exact search computes then fetches it through
 * the TOAST table's index, several buffer reads a chunk. Under MAIN the compressed text moves out
 * instead, and the vector stays in the row: an exact search over 50,000 chunks read 12,500 buffers
 * instead of 158,000 and took 34 instead of 122 ms (docs/PERFORMANCE.md). pgvector's FAQ suggests
 * PLAIN; MAIN differs in one case that matters here, a vector too large for a page (above about 2,000
 * dimensions): PLAIN would fail its insert, MAIN still moves it out of line.
 *
 * Only the catalog changes: rows written from now on are stored the new way, rows written before
 * keep their vectors out of line until rewritten (`VACUUM FULL langchain_pg_embedding`, or pg_repack
 * online: docs/MIGRATIONS.md). Readers and writers (LangChain included) see the same values either
 * way. SET STORAGE takes an ACCESS EXCLUSIVE lock, held for an instant; but while it waits for a long
 * statement on the table, every search and write queued behind it waits too. So it waits at most
 * LOCK_TIMEOUT and then fails, changing nothing; `db:migrate` can simply be run again.
 * Frozen history: no entity imports.
 */
export class KeepChunkVectorsInline1764000000007 implements MigrationInterface {
  name = 'KeepChunkVectorsInline1764000000007';

  public async up(q: QueryRunner): Promise<void> {
    // SET LOCAL: the migration's own transaction only.
    await boundLockWaits(q);
    await q.query(`ALTER TABLE langchain_pg_embedding ALTER COLUMN embedding SET STORAGE MAIN`);
  }

  public async down(q: QueryRunner): Promise<void> {
    // Its ACCESS EXCLUSIVE locks wait at most LOCK_TIMEOUT, as up()'s do: not every reader queued behind an idle writer.
    await boundLockWaits(q);
    // pgvector's own default for the type.
    await q.query(`ALTER TABLE langchain_pg_embedding ALTER COLUMN embedding SET STORAGE EXTERNAL`);
  }
}
