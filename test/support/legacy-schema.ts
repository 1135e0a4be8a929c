import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { createTestDatabase, TEST_TARGET } from './test-database.js';

export interface LegacyOptions {
  /** Older langchain_postgres: an extra unique index on the chunk id. */
  extraIdIndex?: boolean;
  /** Some deployments already added the document_id expression index. */
  documentIdIndex?: boolean;
  /** An Alembic record saying the schema was "migrated". */
  alembicVersion?: boolean;
}

/**
 * Builds, in an empty database, the shape the Python service left behind (issue 4): nullable
 * timestamps, unique constraints instead of unique indexes, four older indexes, json collection
 * metadata, varchar chunk text, few comments, the updated_at trigger. Then fills it.
 */
export async function buildLegacySchema(ds: DataSource, options: LegacyOptions = {}): Promise<void> {
  const { extraIdIndex = true, documentIdIndex = true, alembicVersion = true } = options;
  const statements = [
    `CREATE EXTENSION IF NOT EXISTS vector`,
    `CREATE TABLE documents (
       id uuid NOT NULL DEFAULT gen_random_uuid(),
       document_id varchar(255) NOT NULL,
       document_name text NOT NULL,
       category varchar(100) NOT NULL,
       document_type varchar(50) NOT NULL,
       source_file text NOT NULL,
       file_name text NOT NULL,
       total_chunks integer DEFAULT 0,
       status varchar(50) DEFAULT 'active',
       created_at timestamp without time zone DEFAULT now(),
       updated_at timestamp without time zone DEFAULT now(),
       CONSTRAINT documents_pkey PRIMARY KEY (id),
       CONSTRAINT documents_document_id_key UNIQUE (document_id)
     )`,
    `CREATE INDEX idx_documents_category ON documents (category)`,
    `CREATE INDEX idx_documents_type ON documents (document_type)`,
    `CREATE INDEX idx_documents_status ON documents (status)`,
    `CREATE INDEX idx_documents_source ON documents (source_file)`,
    `COMMENT ON TABLE documents IS 'Document management table'`,
    `COMMENT ON COLUMN documents.document_id IS 'Unique document identifier'`,
    `COMMENT ON COLUMN documents.status IS 'Document status'`,
    `CREATE OR REPLACE FUNCTION update_documents_updated_at() RETURNS trigger AS $$
     BEGIN NEW.updated_at = now(); RETURN NEW; END; $$ LANGUAGE plpgsql`,
    `CREATE TRIGGER trigger_documents_updated_at BEFORE UPDATE ON documents
     FOR EACH ROW EXECUTE FUNCTION update_documents_updated_at()`,
    `CREATE TABLE langchain_pg_collection (
       uuid uuid NOT NULL,
       name varchar NOT NULL,
       cmetadata json,
       CONSTRAINT langchain_pg_collection_pkey PRIMARY KEY (uuid),
       CONSTRAINT langchain_pg_collection_name_key UNIQUE (name)
     )`,
    `CREATE TABLE langchain_pg_embedding (
       id varchar NOT NULL,
       collection_id uuid,
       embedding vector,
       document varchar,
       cmetadata jsonb,
       CONSTRAINT langchain_pg_embedding_pkey PRIMARY KEY (id),
       CONSTRAINT langchain_pg_embedding_collection_id_fkey FOREIGN KEY (collection_id)
         REFERENCES langchain_pg_collection (uuid) ON DELETE CASCADE
     )`,
    `CREATE INDEX ix_cmetadata_gin ON langchain_pg_embedding USING gin (cmetadata jsonb_path_ops)`,
  ];
  if (extraIdIndex) statements.push(`CREATE UNIQUE INDEX ix_langchain_pg_embedding_id ON langchain_pg_embedding (id)`);
  if (documentIdIndex) {
    statements.push(`CREATE INDEX idx_embedding_document_id ON langchain_pg_embedding ((cmetadata->>'document_id'))`);
  }
  if (alembicVersion) {
    statements.push(
      `CREATE TABLE alembic_version (version_num varchar(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))`,
      `INSERT INTO alembic_version VALUES ('a1b2c3d4e5f6')`,
    );
  }
  for (const sql of statements) await ds.query(sql);
  await fillLegacyData(ds);
}

export const COLLECTION_SMALL = '11111111-1111-4111-8111-111111111111';
export const COLLECTION_BIG = '22222222-2222-4222-8222-222222222222';

function vector(dim: number, seed: number): string {
  return `[${Array.from({ length: dim }, (_, i) => Math.sin(seed * 31 + i).toFixed(6)).join(',')}]`;
}

/** Two documents with chunks in two collections of different dimensions, plus orphan chunks. */
async function fillLegacyData(ds: DataSource): Promise<void> {
  await ds.query(
    `INSERT INTO documents (document_id, document_name, category, document_type, source_file, file_name, total_chunks, status, created_at, updated_at)
     VALUES ('luat-dat-dai-2024', 'Luật Đất đai 2024', 'pháp luật', 'law', '/data/luat_dat_dai.pdf', 'luat_dat_dai.pdf', 3, 'active', NULL, NULL),
            ('nghi-dinh-101', 'Nghị định 101/2024/NĐ-CP', 'pháp luật', 'decree', '/data/nd101.pdf', 'nd101.pdf', 2, 'active', '2024-05-01 10:00:00', NULL),
            ('huong-dan-01', 'Hướng dẫn sử dụng', 'hướng dẫn', 'guide', '/data/hd01.docx', 'hd01.docx', 0, 'inactive', NULL, '2024-06-01 08:30:00')`,
  );
  await ds.query(
    `INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES
       ($1, 'docs', '{"model": "local", "dimensions": 8}'),
       ($2, 'docs_large', '{"model": "text-embedding-3-large", "dimensions": 12}')`,
    [COLLECTION_SMALL, COLLECTION_BIG],
  );
  const chunks: Array<[string, string, string, string, Record<string, unknown>]> = [];
  const meta = (documentId: string, type: string, index: number, total: number): Record<string, unknown> => ({
    document_id: documentId,
    chunk_id: `${documentId}_chunk_${index}`,
    chunk_index: index,
    total_chunks: total,
    document_type: type,
    status: 'active',
    hierarchy: ['Chương I', `Điều ${index + 1}`],
    level: 2,
    section_title: `Điều ${index + 1}. Phạm vi điều chỉnh`,
    document_info: { document_status: 'active' },
    processing_metadata: { processing_status: 'completed', status_change_history: [] },
  });
  for (let i = 0; i < 3; i++) {
    chunks.push([
      `luat-dat-dai-2024_chunk_${i}`,
      COLLECTION_SMALL,
      vector(8, i),
      `Điều ${i + 1}. Luật này quy định về chế độ sở hữu đất đai, quyền hạn và trách nhiệm của Nhà nước.`,
      meta('luat-dat-dai-2024', 'law', i, 3),
    ]);
  }
  for (let i = 0; i < 2; i++) {
    chunks.push([
      `nghi-dinh-101_chunk_${i}`,
      COLLECTION_BIG,
      vector(12, 10 + i),
      `Nghị định quy định chi tiết về đăng ký đất đai — khoản ${i + 1}.`,
      meta('nghi-dinh-101', 'decree', i, 2),
    ]);
  }
  // Orphans: chunks whose document_id has no documents row, one without any document_id.
  chunks.push([
    'e3b0c442-98fc-4c14-9afb-f4c8996fb924',
    COLLECTION_SMALL,
    vector(8, 99),
    'Đoạn văn mồ côi',
    meta('khong-ton-tai', 'guide', 0, 1),
  ]);
  chunks.push(['orphan-no-doc', COLLECTION_BIG, vector(12, 98), 'Không có siêu dữ liệu tài liệu', { note: 'ờ' }]);
  for (const [id, collection, embedding, text, metadata] of chunks) {
    await ds.query(
      `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata) VALUES ($1, $2, $3::vector, $4, $5::jsonb)`,
      [id, collection, embedding, text, JSON.stringify(metadata)],
    );
  }
}

/** Builds the older langchain_community layout: uuid primary key plus custom_id, no id column. */
export async function buildCommunitySchema(ds: DataSource): Promise<void> {
  for (const sql of [
    `CREATE EXTENSION IF NOT EXISTS vector`,
    `CREATE TABLE langchain_pg_collection (name varchar, cmetadata json, uuid uuid NOT NULL PRIMARY KEY)`,
    `CREATE TABLE langchain_pg_embedding (
       collection_id uuid REFERENCES langchain_pg_collection (uuid) ON DELETE CASCADE,
       embedding vector, document varchar, cmetadata json, custom_id varchar,
       uuid uuid NOT NULL PRIMARY KEY)`,
    `INSERT INTO langchain_pg_collection VALUES ('docs', '{}', '${COLLECTION_SMALL}')`,
    `INSERT INTO langchain_pg_embedding VALUES ('${COLLECTION_SMALL}', '[1,2,3]', 'văn bản', '{"document_id": "a"}', 'c1', gen_random_uuid())`,
  ]) {
    await ds.query(sql);
  }
}

/**
 * Row counts of the three tables and an md5 over every chunk's id, collection, vector, text and
 * metadata (the documents' timestamps are left out: the adoption migrations change their type).
 */
export async function dataFingerprint(ds: DataSource): Promise<Record<string, string | number>> {
  const [row] = await ds.query<Array<Record<string, string | number>>>(`
    SELECT (SELECT count(*)::int FROM documents) AS documents,
           (SELECT count(*)::int FROM langchain_pg_collection) AS collections,
           (SELECT count(*)::int FROM langchain_pg_embedding) AS chunks,
           (SELECT md5(string_agg(id || '|' || coalesce(collection_id::text, '') || '|' || coalesce(embedding::text, '') || '|' || coalesce(document, '') || '|' || coalesce(cmetadata::text, ''), E'\\n' ORDER BY id))
              FROM langchain_pg_embedding) AS chunk_md5,
           (SELECT md5(string_agg(concat_ws('|', id, document_id, document_name, category, document_type, source_file, file_name, total_chunks, status), E'\n' ORDER BY id))
              FROM documents) AS documents_md5,
           (SELECT md5(string_agg(uuid::text || name || coalesce(cmetadata::jsonb::text, ''), ',' ORDER BY uuid))
              FROM langchain_pg_collection) AS collections_md5`);
  return row;
}

/**
 * Tables, columns (type, nullability, default, comment), columns stored other than their type's
 * default (`storage table.column=m`: pg_attribute.attstorage), constraints, indexes, triggers, and
 * the functions of the schema (not an extension's) with an md5 of their body.
 */
export async function schemaSnapshot(ds: DataSource): Promise<string[]> {
  const rows = await ds.query<Array<{ line: string }>>(`
    SELECT 'table ' || c.relname || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '') AS line
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() AND c.relkind = 'r'
    UNION ALL
    SELECT 'column ' || table_name || '.' || column_name || ' ' || udt_name || coalesce('(' || character_maximum_length || ')', '')
           || ' null=' || is_nullable || ' default=' || coalesce(column_default, '')
           || ' comment=' || coalesce(col_description(format('%I', table_name)::regclass, ordinal_position), '')
      FROM information_schema.columns WHERE table_schema = current_schema()
    UNION ALL
    SELECT 'storage ' || c.relname || '.' || a.attname || '=' || a.attstorage::text
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_type ty ON ty.oid = a.atttypid
     WHERE n.nspname = current_schema() AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
       AND a.attstorage <> ty.typstorage
    UNION ALL
    SELECT 'constraint ' || t.relname || '.' || k.conname || ' ' || pg_get_constraintdef(k.oid)
      FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
     WHERE n.nspname = current_schema()
    UNION ALL
    SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = current_schema()
    UNION ALL
    SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL
    SELECT 'function ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') md5=' || md5(p.prosrc)
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = current_schema()
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    ORDER BY 1`);
  return rows.map((r) => r.line).filter((l) => !/\bmigrations\b/.test(l));
}

/**
 * A database on disk (embedded: a DATA_DIR in a temp folder) so that the raw DataSource, the app
 * and a CLI subprocess can open the same data one after the other.
 */
export async function persistentTestDatabase(): Promise<{ env: Record<string, string>; drop: () => Promise<void> }> {
  if (TEST_TARGET === 'postgres') return createTestDatabase();
  const dir = mkdtempSync(join(tmpdir(), 'kb-adoption-'));
  return { env: { DATA_DIR: dir }, drop: () => Promise.resolve(rmSync(dir, { recursive: true, force: true })) };
}

export function runCli(
  env: Record<string, string>,
  ...args: string[]
): { code: number; stdout: string; stderr: string } {
  return runCompiledScript('dist/src/cli/db.js', env, ...args);
}

/** Runs a compiled CLI (built by the pretest step) as a child process with exactly this database. */
export function runCompiledScript(
  script: string,
  env: Record<string, string>,
  ...args: string[]
): { code: number; stdout: string; stderr: string } {
  const childEnv: Record<string, string | undefined> = { ...process.env, LOG_LEVEL: 'warn', ...env };
  if (!env.DATABASE_URL) delete childEnv.DATABASE_URL;
  const result = spawnSync(process.execPath, [script, ...args], { env: childEnv, encoding: 'utf8' });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}
