import type { MigrationInterface, QueryRunner } from 'typeorm';
import { buildIndexConcurrently, indexState } from './support/concurrent-index.js';

/** The full-text index's expression now (AddChunkFullTextIndex builds it too); the search repeats it. */
const BOUNDED_DEFINITION = `langchain_pg_embedding USING gin (to_tsvector('simple'::regconfig, left(coalesce(document, ''), 100000)))`;

/**
 * Before: ix_embedding_document_fts indexed `to_tsvector('simple', coalesce(document, ''))` over the
 * whole text. PostgreSQL refuses a tsvector whose distinct words take more than 1 MB ("string is too
 * long for tsvector", 54000), so once the index existed, a chunk of about 1 MB of distinct words
 * (a whole book, a table of codes, base64 data) could be written by nobody: LangChain's add_texts
 * failed where it had worked before adoption. And on a database already holding such a chunk,
 * AddChunkFullTextIndex itself failed, every time, and no later migration could run.
 *
 * Now the index covers the first 100,000 characters of each chunk: at most a few hundred KB of
 * words even with 4-byte characters and compound words (their parts are words too), under the
 * limit; and as many as this service's own POST /embeddings and POST /documents accept, so every
 * chunk they write is indexed whole. AddChunkFullTextIndex builds this expression now; this
 * migration replaces the index where the earlier one was built: the new one is built CONCURRENTLY
 * under another name, the old one dropped CONCURRENTLY and the new one renamed, so chunk writers
 * and searches go on (hybrid search reads the old index until the drop, then the new one). A run
 * stopped half-way is taken up where it stopped. Frozen history: no entity imports.
 */
export class BoundChunkFullTextIndex1764000000010 implements MigrationInterface {
  name = 'BoundChunkFullTextIndex1764000000010';
  transaction = false as const;

  public async up(q: QueryRunner): Promise<void> {
    const definition = await indexDefinition(q, 'ix_embedding_document_fts');
    if (definition !== null && /"left"\(COALESCE\(document, ''::text\), 100000\)/.test(definition)) {
      // Already bounded (built by AddChunkFullTextIndex as it is now): only a stopped run's copy to drop.
      await q.query(`DROP INDEX CONCURRENTLY IF EXISTS ix_embedding_document_fts_bounded`);
      return;
    }
    await buildIndexConcurrently(q, 'ix_embedding_document_fts_bounded', BOUNDED_DEFINITION);
    await q.query(`DROP INDEX CONCURRENTLY IF EXISTS ix_embedding_document_fts`);
    await q.query(`ALTER INDEX ix_embedding_document_fts_bounded RENAME TO ix_embedding_document_fts`);
  }

  /**
   * Nothing to undo: AddChunkFullTextIndex builds the bounded index now, so it is the schema of the
   * migration before this one too. (Putting back the unbounded one would also fail on the very
   * chunks this migration made writable.)
   */
  public async down(): Promise<void> {}
}

/** The index's definition as pg_get_indexdef prints it; null when there is none (or only an INVALID one). */
async function indexDefinition(q: QueryRunner, name: string): Promise<string | null> {
  if ((await indexState(q, name)) !== 'valid') return null;
  const rows = (await q.query(
    `SELECT pg_get_indexdef(c.oid) AS definition FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND c.relname = $1`,
    [name],
  )) as Array<{ definition: string }>;
  return rows[0]?.definition ?? null;
}
