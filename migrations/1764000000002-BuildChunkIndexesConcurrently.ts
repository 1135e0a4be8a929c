import type { MigrationInterface, QueryRunner } from 'typeorm';
import { buildIndexConcurrently, CHUNK_ID_PRIMARY_KEY_SQL, indexState } from './support/concurrent-index.js';

/**
 * Builds the chunk table's secondary indexes that a pre-existing database lacks, and drops the
 * redundant `ix_langchain_pg_embedding_id`, all CONCURRENTLY: langchain_pg_embedding is the one
 * big table (millions of rows), and a plain CREATE INDEX would block every chunk write — including
 * the Python service's, which keeps running during adoption — for as long as the build takes.
 *
 * CONCURRENTLY cannot run in a transaction block, hence `transaction = false`. A concurrent build
 * that fails (cancelled, or killed with the server) leaves an INVALID index behind and this
 * migration unrecorded; the next run drops the invalid index and builds it again.
 *
 * On a database InitialSchema created (or that already ran an earlier AlignLegacySchema, which
 * built these in its transaction) every index is present and valid, and this changes nothing.
 * Frozen history: no entity imports.
 */
export class BuildChunkIndexesConcurrently1764000000002 implements MigrationInterface {
  name = 'BuildChunkIndexesConcurrently1764000000002';
  transaction = false as const;

  public async up(q: QueryRunner): Promise<void> {
    // Redundant only beside the primary key on id: without one (a hand-converted table) it is what
    // LangChain's ON CONFLICT (id) stands on, and stays.
    const [{ present }] = (await q.query(CHUNK_ID_PRIMARY_KEY_SQL)) as Array<{ present: boolean }>;
    if (present && (await indexState(q, 'ix_langchain_pg_embedding_id'))) {
      await q.query(`DROP INDEX CONCURRENTLY IF EXISTS ix_langchain_pg_embedding_id`);
    }
    for (const [name, definition] of CHUNK_INDEXES) await buildIndexConcurrently(q, name, definition);
  }

  /**
   * Restores the pre-existing shape's chunk indexes: only idx_embedding_document_type goes (the
   * legacy schema had the GIN index and, often, idx_embedding_document_id). The redundant unique
   * index is not recreated: it duplicated the primary key.
   */
  public async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX CONCURRENTLY IF EXISTS idx_embedding_document_type`);
  }
}

/** [name, "table USING … (expression)"], fixed literals. */
const CHUNK_INDEXES: ReadonlyArray<readonly [string, string]> = [
  ['ix_cmetadata_gin', 'langchain_pg_embedding USING gin (cmetadata jsonb_path_ops)'],
  ['idx_embedding_document_type', `langchain_pg_embedding ((cmetadata->>'document_type'))`],
  ['idx_embedding_document_id', `langchain_pg_embedding ((cmetadata->>'document_id'))`],
];
