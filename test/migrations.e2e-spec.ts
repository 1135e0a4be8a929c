import type { DataSource } from 'typeorm';
import { revert } from '../src/cli/db-commands.js';
import { runPendingMigrations } from '../src/database/migration-runner.js';
import { createTestDatabase, openRawDataSource, type TestDatabase, testConfig } from './support/test-database.js';

/** Tables, columns (with type and nullability), indexes, comments and triggers of the public schema. */
async function schemaSnapshot(ds: DataSource): Promise<string[]> {
  const rows = await ds.query<Array<{ line: string }>>(`
    SELECT 'table ' || c.relname || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '') AS line
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public' AND c.relkind = 'r'
    UNION ALL
    SELECT 'column ' || table_name || '.' || column_name || ' ' || udt_name || coalesce('(' || character_maximum_length || ')', '')
           || ' null=' || is_nullable || ' default=' || coalesce(column_default, '')
           || ' comment=' || coalesce(col_description(format('%I', table_name)::regclass, ordinal_position), '')
      FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL
    SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL
    SELECT 'trigger ' || tgname FROM pg_trigger WHERE NOT tgisinternal
    ORDER BY 1`);
  return rows.map((r) => r.line).filter((l) => !l.includes(' migrations'));
}

const ALL_MIGRATIONS = [
  'InitialSchema1764000000000',
  'AlignLegacySchema1764000000001',
  'BuildChunkIndexesConcurrently1764000000002',
  'AddChunkFullTextIndex1764000000003',
  'AddChunkCounts1764000000004',
  'AddMetadataTermsIndex1764000000005',
  'AddDocumentsCreatedAtIndex1764000000006',
];

describe('InitialSchema migration', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let close: () => Promise<void>;

  beforeAll(async () => {
    db = await createTestDatabase();
    ({ dataSource: ds, close } = await openRawDataSource(testConfig(db)));
  });
  afterAll(async () => {
    await close();
    await db.drop();
  });

  it('goes up, down and up again, leaving the same schema', async () => {
    expect(await runPendingMigrations(ds)).toEqual(ALL_MIGRATIONS);
    const first = await schemaSnapshot(ds);
    expect(first).toEqual(
      expect.arrayContaining([
        'table documents comment=Application-level document management table',
        'table langchain_pg_collection comment=LangChain internal collection management - DO NOT modify directly',
        'table langchain_pg_embedding comment=Vector embeddings storage with metadata',
        expect.stringMatching(/^column langchain_pg_embedding\.embedding vector null=YES default= comment=/),
        expect.stringMatching(/^column langchain_pg_embedding\.id varchar null=NO default= comment=/),
        expect.stringMatching(/^column documents\.document_id varchar\(255\) null=NO/),
        expect.stringMatching(/^column documents\.created_at timestamp null=NO default=now\(\)/),
        'index CREATE UNIQUE INDEX ix_documents_document_id ON public.documents USING btree (document_id)',
        'index CREATE UNIQUE INDEX langchain_pg_collection_name_key ON public.langchain_pg_collection USING btree (name)',
        'index CREATE INDEX ix_cmetadata_gin ON public.langchain_pg_embedding USING gin (cmetadata jsonb_path_ops)',
        "index CREATE INDEX idx_embedding_document_id ON public.langchain_pg_embedding USING btree (((cmetadata ->> 'document_id'::text)))",
        "index CREATE INDEX idx_embedding_document_type ON public.langchain_pg_embedding USING btree (((cmetadata ->> 'document_type'::text)))",
        "index CREATE INDEX ix_embedding_document_fts ON public.langchain_pg_embedding USING gin (to_tsvector('simple'::regconfig, COALESCE(document, ''::text)))",
        'index CREATE INDEX ix_cmetadata_terms ON public.langchain_pg_embedding USING gin (chunk_metadata_terms(cmetadata))',
        'index CREATE INDEX idx_documents_category_status ON public.documents USING btree (category, status)',
        'index CREATE INDEX idx_documents_status_type ON public.documents USING btree (status, document_type)',
        'index CREATE INDEX ix_documents_created_at_id ON public.documents USING btree (created_at, id)',
        'trigger trigger_documents_updated_at',
      ]),
    );
    // Every column carries a comment.
    expect(first.filter((l) => l.startsWith('column ') && l.endsWith('comment='))).toEqual([]);

    // Newest first: the index migrations, AlignLegacySchema (back to the Python service's shape), InitialSchema.
    for (let i = 0; i < ALL_MIGRATIONS.length; i++) await revert(ds, { dropTables: true });
    const afterDown = await schemaSnapshot(ds);
    expect(afterDown.filter((l) => !l.startsWith('index ') || !l.includes('migrations'))).toEqual([]);
    const ext = await ds.query<
      Array<{
        n: number;
      }>
    >(`SELECT count(*)::int AS n FROM pg_extension WHERE extname = 'vector'`);
    expect(ext[0].n).toBe(0);

    expect(await runPendingMigrations(ds)).toEqual(ALL_MIGRATIONS);
    expect(await schemaSnapshot(ds)).toEqual(first);
  });

  it('leaves nothing for TypeORM to change: the entities and the migrated schema agree', async () => {
    const sql = await ds.driver.createSchemaBuilder().log();
    expect(sql.upQueries.map((q) => q.query)).toEqual([]);
  });

  it('rebuilds an index that a failed concurrent build left INVALID, and is a no-op when all are valid', async () => {
    const valid = () =>
      ds.query<Array<{ name: string; valid: boolean }>>(
        `SELECT c.relname AS name, i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          WHERE c.relname IN ('ix_cmetadata_gin', 'ix_embedding_document_fts', 'ix_cmetadata_terms') ORDER BY 1`,
      );
    // What a cancelled CREATE INDEX CONCURRENTLY leaves: the index exists, marked not valid, and the
    // migration that built it is not recorded.
    // Revert everything after BuildChunkIndexesConcurrently, which built ix_cmetadata_gin.
    for (let i = 2; i < ALL_MIGRATIONS.length; i++) await revert(ds, { dropTables: true });
    await ds.query(`UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'ix_cmetadata_gin'::regclass`);
    expect(await valid()).toEqual([{ name: 'ix_cmetadata_gin', valid: false }]);
    expect(await runPendingMigrations(ds)).toEqual(ALL_MIGRATIONS.slice(2));
    expect(await valid()).toEqual([
      { name: 'ix_cmetadata_gin', valid: true },
      { name: 'ix_cmetadata_terms', valid: true },
      { name: 'ix_embedding_document_fts', valid: true },
    ]);
  });

  it('keeps updated_at current through the trigger, for writers other than this service', async () => {
    await ds.query(
      `INSERT INTO documents (document_id, document_name, category, document_type, source_file, file_name, updated_at)
       VALUES ('trigger-doc', 'n', 'c', 't', 's', 'f', '2000-01-01')`,
    );
    await ds.query(`UPDATE documents SET status = 'inactive' WHERE document_id = 'trigger-doc'`);
    const [row] = await ds.query<
      Array<{
        updated_at: Date;
      }>
    >(`SELECT updated_at FROM documents WHERE document_id = 'trigger-doc'`);
    expect(row.updated_at.getUTCFullYear()).toBeGreaterThan(2000);
  });

  it('accepts a LangChain-style upsert: string id, no server default, ON CONFLICT (id) DO UPDATE', async () => {
    const collection = '9f1c1f0e-5a53-4bde-9d4c-0c3d1b8d2f10';
    await ds.query(`INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES ($1, 'lc', '{}')`, [collection]);
    const upsert = `
      INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
      VALUES ($1, $2, $3, $4, $5)
      ON CONFLICT (id) DO UPDATE SET embedding = excluded.embedding, document = excluded.document, cmetadata = excluded.cmetadata`;
    await ds.query(upsert, ['chunk-1', collection, '[1,2,3]', 'Điều 1. Phạm vi', '{"document_id":"d1"}']);
    await ds.query(upsert, ['chunk-1', collection, '[3,2,1]', 'Điều 1. Phạm vi (sửa)', '{"document_id":"d1","v":2}']);
    const rows = await ds.query<Array<Record<string, unknown>>>(
      `SELECT id, embedding::text AS embedding, document, cmetadata FROM langchain_pg_embedding`,
    );
    expect(rows).toEqual([
      {
        id: 'chunk-1',
        embedding: '[3,2,1]',
        document: 'Điều 1. Phạm vi (sửa)',
        cmetadata: { document_id: 'd1', v: 2 },
      },
    ]);
  });
});
