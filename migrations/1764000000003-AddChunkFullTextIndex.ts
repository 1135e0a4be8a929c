import type { MigrationInterface, QueryRunner } from 'typeorm';
import { buildIndexConcurrently } from './support/concurrent-index.js';

/**
 * The full-text side of hybrid search (`POST /ask {mode: 'hybrid'}`): a GIN index over the chunk
 * text. An expression index rather than a tsvector column, so LangChain's writers need no change
 * and no row is rewritten. The `simple` configuration lowercases and splits on non-letters without
 * stemming or stop words, which is what suits Vietnamese (no PostgreSQL dictionary exists for it).
 * The search query must repeat this exact expression for the planner to use the index.
 *
 * It indexes the first 100,000 characters of each chunk: over the whole text, a chunk of about 1 MB
 * of distinct words made the build fail ("string is too long for tsvector"), and with it every
 * later migration. Until BoundChunkFullTextIndex this migration indexed the whole text; that
 * migration replaces the index where it was built so (see there why).
 *
 * Built CONCURRENTLY (outside a transaction) so chunk writers are not blocked while it builds; an
 * INVALID leftover of a failed build is dropped and rebuilt. Frozen history: no entity imports.
 */
export class AddChunkFullTextIndex1764000000003 implements MigrationInterface {
  name = 'AddChunkFullTextIndex1764000000003';
  transaction = false as const;

  public async up(q: QueryRunner): Promise<void> {
    await buildIndexConcurrently(
      q,
      'ix_embedding_document_fts',
      `langchain_pg_embedding USING gin (to_tsvector('simple'::regconfig, left(coalesce(document, ''), 100000)))`,
    );
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX CONCURRENTLY IF EXISTS ix_embedding_document_fts`);
  }
}
