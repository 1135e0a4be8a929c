import type { MigrationInterface, QueryRunner } from 'typeorm';
import { boundLockWaits, lockTablesWithoutWaiting } from './support/lock-timeout.js';

/**
 * Brings a database the Python service created (and that `db:stamp` recorded as InitialSchema) to
 * exactly the shape InitialSchema creates. Every step reads the catalog before it acts, so on a
 * database InitialSchema created this migration changes nothing.
 *
 * What it changes on the pre-existing shape (no row is rewritten except where noted):
 * - documents: NULL created_at/updated_at backfilled (from the other timestamp, else now()), then
 *   NOT NULL + DEFAULT now(); unique constraint documents_document_id_key replaced by the unique
 *   index ix_documents_document_id; the four legacy indexes replaced by the seven target ones.
 * - langchain_pg_collection: cmetadata json → jsonb (rewrites this small table); the unique
 *   constraint langchain_pg_collection_name_key becomes a unique index of the same name.
 * - langchain_pg_embedding: document varchar → text (binary compatible: no rewrite, ids, vectors
 *   and metadata untouched). Its indexes are left to BuildChunkIndexesConcurrently (next migration),
 *   which builds them without blocking writers; releases before it built them here, in this
 *   transaction, and that migration then finds them and does nothing.
 * - comments of InitialSchema written; the updated_at trigger and its function ensured.
 *
 * Runs in one transaction (locks in docs/MIGRATIONS.md), each lock waited for at most LOCK_TIMEOUT
 * (support/lock-timeout.ts). Frozen history: no entity imports.
 */
export class AlignLegacySchema1764000000001 implements MigrationInterface {
  name = 'AlignLegacySchema1764000000001';

  public async up(q: QueryRunner): Promise<void> {
    // Its ALTERs take ACCESS EXCLUSIVE on tables the Python service may still be using: all of
    // them first, together, so that it never waits for one while holding another (writers lock
    // them in both orders; see lockTablesWithoutWaiting).
    await boundLockWaits(q);
    const altered: string[] = [];
    if (await documentsNeedChanges(q)) altered.push('documents');
    if (
      (await columnType(q, 'langchain_pg_collection', 'cmetadata')) === 'json' ||
      (await hasConstraint(q, 'langchain_pg_collection', 'langchain_pg_collection_name_key')) ||
      !(await hasIndex(q, 'langchain_pg_collection_name_key'))
    ) {
      altered.push('langchain_pg_collection');
    }
    if ((await columnType(q, 'langchain_pg_embedding', 'document')) !== 'text') altered.push('langchain_pg_embedding');
    await lockTablesWithoutWaiting(q, altered);
    // documents: timestamps. One UPDATE with the updated_at trigger disabled, so that backfilling
    // keeps every existing timestamp (the trigger would stamp now() on each row it touches).
    const nulls = (await q.query(
      `SELECT count(*)::int AS n FROM documents WHERE created_at IS NULL OR updated_at IS NULL`,
    )) as Array<{ n: number }>;
    if (nulls[0].n > 0) {
      const trigger = await hasTrigger(q, 'documents', 'trigger_documents_updated_at');
      if (trigger) await q.query(`ALTER TABLE documents DISABLE TRIGGER trigger_documents_updated_at`);
      await q.query(`
        UPDATE documents SET created_at = coalesce(created_at, updated_at, now()),
                             updated_at = coalesce(updated_at, created_at, now())
         WHERE created_at IS NULL OR updated_at IS NULL`);
      if (trigger) await q.query(`ALTER TABLE documents ENABLE TRIGGER trigger_documents_updated_at`);
    }
    for (const column of ['created_at', 'updated_at'] as const) {
      if (await isNullable(q, 'documents', column)) {
        await q.query(`ALTER TABLE documents ALTER COLUMN ${column} SET NOT NULL`);
      }
      if ((await columnDefault(q, 'documents', column)) !== 'now()') {
        await q.query(`ALTER TABLE documents ALTER COLUMN ${column} SET DEFAULT now()`);
      }
    }

    // documents: the unique index first, then the constraint goes (uniqueness holds throughout).
    if (!(await hasIndex(q, 'ix_documents_document_id'))) {
      await q.query(`CREATE UNIQUE INDEX ix_documents_document_id ON documents (document_id)`);
    }
    if (await hasConstraint(q, 'documents', 'documents_document_id_key')) {
      await q.query(`ALTER TABLE documents DROP CONSTRAINT documents_document_id_key`);
    }
    for (const name of LEGACY_DOCUMENT_INDEXES.map(([n]) => n)) {
      if (await hasIndex(q, name)) await q.query(`DROP INDEX ${name}`);
    }
    for (const [name, definition] of TARGET_INDEXES) {
      if (!(await hasIndex(q, name))) await q.query(`CREATE INDEX ${name} ON ${definition}`);
    }

    // The updated_at trigger (the Python service created it already; ensure it is ours).
    await q.query(`
      CREATE OR REPLACE FUNCTION update_documents_updated_at() RETURNS trigger AS $$
      BEGIN
        NEW.updated_at = now();
        RETURN NEW;
      END;
      $$ LANGUAGE plpgsql`);
    if (!(await hasTrigger(q, 'documents', 'trigger_documents_updated_at'))) {
      await q.query(`
        CREATE TRIGGER trigger_documents_updated_at BEFORE UPDATE ON documents
        FOR EACH ROW EXECUTE FUNCTION update_documents_updated_at()`);
    }

    // langchain_pg_collection.
    if ((await columnType(q, 'langchain_pg_collection', 'cmetadata')) === 'json') {
      await q.query(`ALTER TABLE langchain_pg_collection ALTER COLUMN cmetadata TYPE jsonb USING cmetadata::jsonb`);
    }
    if (await hasConstraint(q, 'langchain_pg_collection', 'langchain_pg_collection_name_key')) {
      // Same name for the index, so the constraint goes first; the transaction keeps it atomic.
      await q.query(`ALTER TABLE langchain_pg_collection DROP CONSTRAINT langchain_pg_collection_name_key`);
    }
    if (!(await hasIndex(q, 'langchain_pg_collection_name_key'))) {
      await q.query(`CREATE UNIQUE INDEX langchain_pg_collection_name_key ON langchain_pg_collection (name)`);
    }

    // langchain_pg_embedding.
    if ((await columnType(q, 'langchain_pg_embedding', 'document')) !== 'text') {
      await q.query(`ALTER TABLE langchain_pg_embedding ALTER COLUMN document TYPE text`);
    }
    // Its indexes are built by BuildChunkIndexesConcurrently, outside any transaction: this table
    // is the big one, and a plain CREATE INDEX here would block chunk writes while it builds.

    for (const [table, column, text] of COMMENTS) {
      const target = column ? `COLUMN ${table}.${column}` : `TABLE ${table}`;
      await q.query(`COMMENT ON ${target} IS '${text.replace(/'/g, "''")}'`);
    }
  }

  /** Restores the pre-existing shape (data kept), so that revert then migrate round-trips. */
  public async down(q: QueryRunner): Promise<void> {
    // Its ACCESS EXCLUSIVE locks wait at most LOCK_TIMEOUT, as up()'s do: not every reader queued behind an idle writer.
    await boundLockWaits(q);
    // The tables it alters, all first and together, as up() does (lockTablesWithoutWaiting).
    const altered = ['documents'];
    if (
      (await columnType(q, 'langchain_pg_collection', 'cmetadata')) === 'jsonb' ||
      ((await hasIndex(q, 'langchain_pg_collection_name_key')) &&
        !(await hasConstraint(q, 'langchain_pg_collection', 'langchain_pg_collection_name_key')))
    ) {
      altered.push('langchain_pg_collection');
    }
    if ((await columnType(q, 'langchain_pg_embedding', 'document')) === 'text') altered.push('langchain_pg_embedding');
    await lockTablesWithoutWaiting(q, altered);
    for (const [table, column] of COMMENTS) {
      const target = column ? `COLUMN ${table}.${column}` : `TABLE ${table}`;
      await q.query(`COMMENT ON ${target} IS NULL`);
    }
    for (const [table, column, text] of LEGACY_COMMENTS) {
      const target = column ? `COLUMN ${table}.${column}` : `TABLE ${table}`;
      await q.query(`COMMENT ON ${target} IS '${text.replace(/'/g, "''")}'`);
    }

    if ((await columnType(q, 'langchain_pg_embedding', 'document')) === 'text') {
      await q.query(`ALTER TABLE langchain_pg_embedding ALTER COLUMN document TYPE varchar`);
    }

    if (await hasIndex(q, 'langchain_pg_collection_name_key')) {
      if (!(await hasConstraint(q, 'langchain_pg_collection', 'langchain_pg_collection_name_key'))) {
        await q.query(`DROP INDEX langchain_pg_collection_name_key`);
        await q.query(
          `ALTER TABLE langchain_pg_collection ADD CONSTRAINT langchain_pg_collection_name_key UNIQUE (name)`,
        );
      }
    }
    if ((await columnType(q, 'langchain_pg_collection', 'cmetadata')) === 'jsonb') {
      await q.query(`ALTER TABLE langchain_pg_collection ALTER COLUMN cmetadata TYPE json USING cmetadata::json`);
    }

    for (const [name] of TARGET_INDEXES) {
      if (await hasIndex(q, name)) await q.query(`DROP INDEX ${name}`);
    }
    for (const [name, definition] of LEGACY_DOCUMENT_INDEXES) {
      if (!(await hasIndex(q, name))) await q.query(`CREATE INDEX ${name} ON ${definition}`);
    }
    if (!(await hasConstraint(q, 'documents', 'documents_document_id_key'))) {
      await q.query(`ALTER TABLE documents ADD CONSTRAINT documents_document_id_key UNIQUE (document_id)`);
    }
    if (await hasIndex(q, 'ix_documents_document_id')) await q.query(`DROP INDEX ix_documents_document_id`);
    await q.query(`ALTER TABLE documents ALTER COLUMN created_at DROP NOT NULL`);
    await q.query(`ALTER TABLE documents ALTER COLUMN updated_at DROP NOT NULL`);
  }
}

async function hasIndex(q: QueryRunner, name: string): Promise<boolean> {
  const rows = (await q.query(`SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1`, [
    name,
  ])) as unknown[];
  return rows.length > 0;
}

async function hasConstraint(q: QueryRunner, table: string, name: string): Promise<boolean> {
  const rows = (await q.query(
    `SELECT 1 FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = current_schema() AND t.relname = $1 AND c.conname = $2`,
    [table, name],
  )) as unknown[];
  return rows.length > 0;
}

async function hasTrigger(q: QueryRunner, table: string, name: string): Promise<boolean> {
  const rows = (await q.query(
    `SELECT 1 FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = current_schema() AND t.relname = $1 AND g.tgname = $2 AND NOT g.tgisinternal`,
    [table, name],
  )) as unknown[];
  return rows.length > 0;
}

async function columnInfo(
  q: QueryRunner,
  table: string,
  column: string,
): Promise<{ udt_name: string; is_nullable: string; column_default: string | null }> {
  const rows = (await q.query(
    `SELECT udt_name, is_nullable, column_default FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2`,
    [table, column],
  )) as Array<{ udt_name: string; is_nullable: string; column_default: string | null }>;
  if (rows.length === 0) throw new Error(`column ${table}.${column} is missing: run \`npm run db:stamp\` first`);
  return rows[0];
}

async function columnType(q: QueryRunner, table: string, column: string): Promise<string> {
  return (await columnInfo(q, table, column)).udt_name;
}

async function isNullable(q: QueryRunner, table: string, column: string): Promise<boolean> {
  return (await columnInfo(q, table, column)).is_nullable === 'YES';
}

async function columnDefault(q: QueryRunner, table: string, column: string): Promise<string | null> {
  return (await columnInfo(q, table, column)).column_default;
}

/** [name, "table (columns)"] of the indexes the Python service's older schema had on documents. */
const LEGACY_DOCUMENT_INDEXES: ReadonlyArray<readonly [string, string]> = [
  ['idx_documents_category', 'documents (category)'],
  ['idx_documents_type', 'documents (document_type)'],
  ['idx_documents_status', 'documents (status)'],
  ['idx_documents_source', 'documents (source_file)'],
];

/** The non-unique target indexes of documents (ix_documents_document_id is handled apart). */
const TARGET_INDEXES: ReadonlyArray<readonly [string, string]> = [
  ['idx_documents_category_status', 'documents (category, status)'],
  ['idx_documents_status_type', 'documents (status, document_type)'],
  ['ix_documents_category', 'documents (category)'],
  ['ix_documents_document_type', 'documents (document_type)'],
  ['ix_documents_source_file', 'documents (source_file)'],
  ['ix_documents_status', 'documents (status)'],
];

/** The comments the pre-existing schema carried (restored by down()). */
const LEGACY_COMMENTS: ReadonlyArray<readonly [string, string | null, string]> = [
  ['documents', null, 'Document management table'],
  ['documents', 'document_id', 'Unique document identifier'],
  ['documents', 'status', 'Document status'],
];

/** Copied from InitialSchema: [table, column or null, comment], fixed literals. */
const COMMENTS: ReadonlyArray<readonly [string, string | null, string]> = [
  ['documents', null, 'Application-level document management table'],
  ['documents', 'id', 'Primary key (UUID)'],
  [
    'documents',
    'document_id',
    'Business identifier of the document, shared with chunk metadata (cmetadata.document_id)',
  ],
  ['documents', 'document_name', 'Human-readable document name'],
  ['documents', 'category', 'Document category'],
  ['documents', 'document_type', 'Document type (e.g. law, decree, guide)'],
  ['documents', 'source_file', 'Path or URI of the source file'],
  ['documents', 'file_name', 'File name of the source file'],
  ['documents', 'total_chunks', 'Number of chunks stored for this document in langchain_pg_embedding'],
  ['documents', 'status', 'Lifecycle status: active, inactive, processing, expired or deleted'],
  ['documents', 'created_at', 'Creation time'],
  ['documents', 'updated_at', 'Last update time (also set by trigger_documents_updated_at)'],
  ['langchain_pg_collection', null, 'LangChain internal collection management - DO NOT modify directly'],
  ['langchain_pg_collection', 'uuid', 'Collection id, supplied by the writer (no server default, as in LangChain)'],
  ['langchain_pg_collection', 'name', 'Unique collection name'],
  ['langchain_pg_collection', 'cmetadata', 'Collection metadata (embedding model, dimensions, ...)'],
  ['langchain_pg_embedding', null, 'Vector embeddings storage with metadata'],
  ['langchain_pg_embedding', 'id', 'Chunk id (string; LangChain writes str(uuid4()))'],
  ['langchain_pg_embedding', 'collection_id', 'Owning collection'],
  ['langchain_pg_embedding', 'embedding', 'Embedding vector (unsized; one dimension per collection)'],
  ['langchain_pg_embedding', 'document', 'Chunk text'],
  ['langchain_pg_embedding', 'cmetadata', 'Chunk metadata (document_id, chunk_index, status, ...)'],
];

/**
 * Whether up() changes the documents table: the same conditions as its steps below, read first so
 * that the table is locked with the others (lockTablesWithoutWaiting), and not at all on a database
 * InitialSchema created.
 */
async function documentsNeedChanges(q: QueryRunner): Promise<boolean> {
  const nulls = (await q.query(
    `SELECT count(*)::int AS n FROM documents WHERE created_at IS NULL OR updated_at IS NULL`,
  )) as Array<{ n: number }>;
  if (nulls[0].n > 0) return true;
  for (const column of ['created_at', 'updated_at'] as const) {
    if ((await isNullable(q, 'documents', column)) || (await columnDefault(q, 'documents', column)) !== 'now()') {
      return true;
    }
  }
  if (!(await hasIndex(q, 'ix_documents_document_id'))) return true;
  if (await hasConstraint(q, 'documents', 'documents_document_id_key')) return true;
  for (const [name] of LEGACY_DOCUMENT_INDEXES) if (await hasIndex(q, name)) return true;
  for (const [name] of TARGET_INDEXES) if (!(await hasIndex(q, name))) return true;
  return !(await hasTrigger(q, 'documents', 'trigger_documents_updated_at'));
}
