import type { QueryRunner } from 'typeorm';

/**
 * Shared by the migrations that build an index CONCURRENTLY (outside a transaction, so writers of
 * the table are not blocked). Part of their frozen history: change it only in ways every one of
 * them still wants.
 */

/** null when the index does not exist; 'invalid' when a concurrent build of it failed half-way. */
export async function indexState(q: QueryRunner, name: string): Promise<'valid' | 'invalid' | null> {
  const rows = (await q.query(
    `SELECT i.indisvalid AS valid FROM pg_index i
       JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND c.relname = $1`,
    [name],
  )) as Array<{ valid: boolean }>;
  if (rows.length === 0) return null;
  return rows[0].valid ? 'valid' : 'invalid';
}

/**
 * `CREATE INDEX CONCURRENTLY name ON definition`, unless a valid index of that name exists. A failed
 * concurrent build (cancelled, or killed with the server) leaves an INVALID index behind and its
 * migration unrecorded: the next run drops that leftover and builds it again. `name` and
 * `definition` are fixed literals of the calling migration.
 */
export async function buildIndexConcurrently(q: QueryRunner, name: string, definition: string): Promise<void> {
  const state = await indexState(q, name);
  if (state === 'valid') return;
  if (state === 'invalid') await q.query(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`);
  await q.query(`CREATE INDEX CONCURRENTLY ${name} ON ${definition}`);
}

/**
 * Whether langchain_pg_embedding's primary key is its id column alone (LangChain's upsert,
 * ON CONFLICT (id), needs it or another unique index on id). Fixed SQL, no parameters.
 */
export const CHUNK_ID_PRIMARY_KEY_SQL = `SELECT EXISTS (
    SELECT 1 FROM pg_index i
      JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
      JOIN pg_attribute a ON a.attrelid = t.oid AND a.attname = 'id'
     WHERE n.nspname = current_schema() AND t.relname = 'langchain_pg_embedding'
       AND i.indisprimary AND i.indnatts = 1 AND i.indkey[0] = a.attnum) AS present`;
