import type { MigrationInterface, QueryRunner } from 'typeorm';
import { buildIndexConcurrently } from './support/concurrent-index.js';

/**
 * `GET /documents` lists newest first by default (`ORDER BY created_at DESC, id DESC`), and the
 * Python service's schema has no index on that order, so every page sorted every matching document
 * (0.45 ms of the statement at 2,000 documents, growing with the table). A btree on
 * (created_at, id), read backwards, hands a page over directly. created_at never changes, so the
 * recount that every chunk write makes of total_chunks stays a HOT update.
 *
 * Built CONCURRENTLY (outside a transaction) so document writers are not blocked; an INVALID
 * leftover of a failed build is dropped and rebuilt. Frozen history: no entity imports.
 */
export class AddDocumentsCreatedAtIndex1764000000006 implements MigrationInterface {
  name = 'AddDocumentsCreatedAtIndex1764000000006';
  transaction = false as const;

  public async up(q: QueryRunner): Promise<void> {
    await buildIndexConcurrently(q, 'ix_documents_created_at_id', `documents USING btree (created_at, id)`);
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX CONCURRENTLY IF EXISTS ix_documents_created_at_id`);
  }
}
