import { createHash } from 'node:crypto';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { createApp } from '../src/app.factory.js';
import { check, generate, revert } from '../src/cli/db-commands.js';
import { migrationStates, runPendingMigrations } from '../src/database/migration-runner.js';
import { schemaSnapshot } from './support/legacy-schema.js';
import {
  createTestDatabase,
  openRawDataSource,
  TEST_TARGET,
  type TestDatabase,
  testConfig,
} from './support/test-database.js';

const ALL_MIGRATIONS = [
  'InitialSchema1764000000000',
  'AlignLegacySchema1764000000001',
  'BuildChunkIndexesConcurrently1764000000002',
  'AddChunkFullTextIndex1764000000003',
  'AddChunkCounts1764000000004',
  'AddMetadataTermsIndex1764000000005',
  'AddDocumentsCreatedAtIndex1764000000006',
  'KeepChunkVectorsInline1764000000007',
  'HashLongMetadataTerms1764000000008',
  'SkipUnchangedChunkCountGroups1764000000009',
  'BoundChunkFullTextIndex1764000000010',
  'AlignBaselineColumnTypes1764000000011',
];

/** Reverts the newest migrations until `name` is the last applied one. */
async function revertTo(ds: DataSource, name: string): Promise<void> {
  for (;;) {
    const applied = (await migrationStates(ds)).filter((m) => m.applied).map((m) => m.name);
    if (applied[applied.length - 1] === name) return;
    // Fail at once, not after the test's timeout, when a test before left the database below `name`.
    if (!applied.includes(name)) throw new Error(`${name} is not applied: cannot revert to it`);
    const reverted = await revert(ds);
    if (reverted.exitCode !== 0) throw new Error(reverted.lines.join('\n'));
  }
}

/**
 * The ids of the chunks whose metadata terms hold those of `pair`, read through ix_cmetadata_terms
 * (sequential and plain index scans, which compute the terms anew, are forbidden): what the index stores.
 */
async function idsThroughTermsIndex(ds: DataSource, pair: Record<string, unknown>): Promise<string[]> {
  const runner = ds.createQueryRunner();
  await runner.connect();
  try {
    await runner.startTransaction();
    await runner.query(`SELECT set_config('enable_seqscan', 'off', true), set_config('enable_indexscan', 'off', true)`);
    const sql = `SELECT id FROM langchain_pg_embedding
                  WHERE chunk_metadata_terms(cmetadata) @> chunk_metadata_terms($1::jsonb)`;
    const plan = (await runner.query(`EXPLAIN ${sql}`, [JSON.stringify(pair)])) as Array<{ 'QUERY PLAN': string }>;
    expect(plan.map((r) => r['QUERY PLAN']).join('\n')).toContain('Bitmap Index Scan on ix_cmetadata_terms');
    const rows = (await runner.query(sql, [JSON.stringify(pair)])) as Array<{ id: string }>;
    await runner.rollbackTransaction();
    return rows.map((r) => r.id).sort();
  } finally {
    await runner.release();
  }
}

/**
 * A chunk text of `words` distinct words of 10 characters: past about 95,000 of them, more than
 * the 1 MB of words a tsvector can hold.
 */
function distinctWords(words: number): string {
  return Array.from({ length: words }, (_, i) => `w${i.toString(36).padStart(9, '0')}`).join(' ');
}

/** What PostgreSQL says when a text has more distinct words than a tsvector can hold. */
const TOO_LONG_FOR_TSVECTOR = /string is too long for tsvector/;

/**
 * Deletes chunks, then waits until no transaction can still read them. A plain CREATE INDEX also
 * indexes the row versions a DELETE left while a transaction may still read them: one that began
 * before the DELETE in any database of the server (it holds back every snapshot's xmin, the index
 * build's too), or a snapshot of this database taken before it (an autovacuum's ANALYZE). So a
 * chunk deleted to let such a build pass would still fail it; CI met it twice ("string is too long
 * for tsvector"), beside the other test suites. The migrations build CONCURRENTLY, which reads with
 * a snapshot and skips them.
 */
async function deleteChunksForGood(ds: DataSource, ids: string[]): Promise<void> {
  const deletedBy = await ds.transaction(async (manager) => {
    await manager.query(`DELETE FROM langchain_pg_embedding WHERE id = ANY($1)`, [ids]);
    const [{ xid }] = await manager.query<Array<{ xid: string }>>(`SELECT pg_current_xact_id()::text AS xid`);
    return xid;
  });
  for (const deadline = Date.now() + 120_000; ;) {
    const [{ gone }] = await ds.query<Array<{ gone: boolean }>>(
      `SELECT pg_snapshot_xmin(pg_current_snapshot()) > $1::xid8
              AND NOT EXISTS (SELECT 1 FROM pg_stat_activity
                               WHERE datname = current_database() AND pid <> pg_backend_pid()
                                 AND (backend_xmin IS NOT NULL OR backend_xid IS NOT NULL)) AS gone`,
      [deletedBy],
    );
    if (gone) return;
    if (Date.now() > deadline) throw new Error(`chunks ${ids.join(', ')} still readable by a transaction after 120 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The ids of the chunks whose text matches `word`, read through the full-text index only. */
async function idsThroughFullTextIndex(ds: DataSource, word: string): Promise<string[]> {
  const runner = ds.createQueryRunner();
  await runner.connect();
  try {
    await runner.startTransaction();
    await runner.query(`SELECT set_config('enable_seqscan', 'off', true), set_config('enable_indexscan', 'off', true)`);
    // The expression of the search (ChunkSearchRepository's CHUNK_TSVECTOR), so the index serves it.
    const sql = `SELECT id FROM langchain_pg_embedding e
                  WHERE to_tsvector('simple'::regconfig, left(coalesce(e.document, ''), 100000)) @@ plainto_tsquery('simple', $1)`;
    const plan = (await runner.query(`EXPLAIN ${sql}`, [word])) as Array<{ 'QUERY PLAN': string }>;
    expect(plan.map((r) => r['QUERY PLAN']).join('\n')).toContain('Bitmap Index Scan on ix_embedding_document_fts');
    const rows = (await runner.query(sql, [word])) as Array<{ id: string }>;
    await runner.rollbackTransaction();
    return rows.map((r) => r.id).sort();
  } finally {
    await runner.release();
  }
}

/** What PostgreSQL says when a GIN entry does not fit. */
const TOO_LARGE_FOR_INDEX =
  /index row size \d+ exceeds maximum \d+ for index "ix_cmetadata_terms"|index row requires \d+ bytes, maximum size is 8191/;

/** `length` characters that do not compress (base64 of chained SHA-256 digests), after `prefix`. */
function incompressible(prefix: string, seed: string, length: number): string {
  let text = prefix;
  for (let i = 0; text.length < length; i++) text += createHash('sha256').update(`${seed}:${i}`).digest('base64');
  return text.slice(0, length);
}

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
        // Vectors kept in the row (MAIN), not pgvector's EXTERNAL: KeepChunkVectorsInline.
        'storage langchain_pg_embedding.embedding=m',
        expect.stringMatching(/^column langchain_pg_embedding\.id varchar null=NO default= comment=/),
        expect.stringMatching(/^column documents\.document_id varchar\(255\) null=NO/),
        expect.stringMatching(/^column documents\.created_at timestamp null=NO default=now\(\)/),
        'index CREATE UNIQUE INDEX ix_documents_document_id ON public.documents USING btree (document_id)',
        'index CREATE UNIQUE INDEX langchain_pg_collection_name_key ON public.langchain_pg_collection USING btree (name)',
        'index CREATE INDEX ix_cmetadata_gin ON public.langchain_pg_embedding USING gin (cmetadata jsonb_path_ops)',
        "index CREATE INDEX idx_embedding_document_id ON public.langchain_pg_embedding USING btree (((cmetadata ->> 'document_id'::text)))",
        "index CREATE INDEX idx_embedding_document_type ON public.langchain_pg_embedding USING btree (((cmetadata ->> 'document_type'::text)))",
        // Over the first 100,000 characters only (AddChunkFullTextIndex, BoundChunkFullTextIndex).
        "index CREATE INDEX ix_embedding_document_fts ON public.langchain_pg_embedding USING gin (to_tsvector('simple'::regconfig, \"left\"(COALESCE(document, ''::text), 100000)))",
        'index CREATE INDEX ix_cmetadata_terms ON public.langchain_pg_embedding USING gin (chunk_metadata_terms(cmetadata))',
        'index CREATE INDEX idx_documents_category_status ON public.documents USING btree (category, status)',
        'index CREATE INDEX idx_documents_status_type ON public.documents USING btree (status, document_type)',
        'index CREATE INDEX ix_documents_created_at_id ON public.documents USING btree (created_at, id)',
        'trigger trigger_documents_updated_at',
      ]),
    );
    // The schema's own functions, each with the md5 of its body: down and up again restore them exactly.
    expect(first.filter((l) => l.startsWith('function '))).toEqual([
      expect.stringMatching(/^function chunk_counts_track\(\) md5=/),
      expect.stringMatching(/^function chunk_metadata_terms\(metadata jsonb\) md5=/),
      expect.stringMatching(/^function update_documents_updated_at\(\) md5=/),
    ]);
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

  it("takes LangChain's sized vector(N) column and a pgvector index on it as they are: check is clean, generate finds nothing", async () => {
    // What LangChain's PGVector(embedding_length=3) creates, with the HNSW index it allows.
    await ds.query(`DELETE FROM langchain_pg_embedding`);
    await ds.query(`ALTER TABLE langchain_pg_embedding ALTER COLUMN embedding TYPE vector(3)`);
    await ds.query(`ALTER TABLE langchain_pg_embedding ALTER COLUMN embedding SET STORAGE MAIN`);
    await ds.query(
      `CREATE INDEX langchain_pg_embedding_hnsw ON langchain_pg_embedding USING hnsw (embedding vector_cosine_ops)`,
    );
    try {
      expect(await check(ds)).toEqual({ exitCode: 0, lines: ['Schema matches the entities: no differences.'] });
      expect((await generate(ds, 'Nothing')).lines).toEqual([
        'No changes: the entities and the database schema agree, so there is nothing to generate.',
      ]);
    } finally {
      await ds.query(`DROP INDEX langchain_pg_embedding_hnsw`);
      await ds.query(`ALTER TABLE langchain_pg_embedding ALTER COLUMN embedding TYPE vector`);
      await ds.query(`ALTER TABLE langchain_pg_embedding ALTER COLUMN embedding SET STORAGE MAIN`);
    }
    expect(await check(ds)).toEqual({ exitCode: 0, lines: ['Schema matches the entities: no differences.'] });
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

  it('keeps a chunk vector in the row and moves a long text out of line instead (KeepChunkVectorsInline)', async () => {
    const collection = '0b5e6a8c-2f41-4c1e-9a7d-3e8f0c6b1d22';
    await ds.query(`INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES ($1, 'inline', '{}')`, [
      collection,
    ]);
    // A row as the benchmark's (and real) chunks make it: 1.5 KB of vector and 1.2 KB of text that
    // compresses poorly, past PostgreSQL's 2 KB TOAST threshold. Either value moved out brings it under.
    const text = Array.from({ length: 400 }, (_, i) => ((i * 7919) % 9973).toString(36))
      .join(' ')
      .slice(0, 1200);
    const insert = (id: string, dims: number) =>
      ds.query(
        `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
         VALUES ($1, $2, (SELECT array_agg(sin(d)::real)::vector FROM generate_series(1, $3) AS d), $4, '{}')`,
        [id, collection, dims, text],
      );
    const outOfLine = (id: string) =>
      ds.query<Array<{ vector: boolean; text: boolean }>>(
        `SELECT pg_column_toast_chunk_id(embedding) IS NOT NULL AS vector,
                pg_column_toast_chunk_id(document) IS NOT NULL AS text
           FROM langchain_pg_embedding WHERE id = $1`,
        [id],
      );
    await insert('inline-384', 384);
    expect(await outOfLine('inline-384')).toEqual([{ vector: false, text: true }]);
    // Too large for a page (3072 dimensions: 12 KB): MAIN still moves it out, where PLAIN would fail.
    await insert('inline-3072', 3072);
    expect(await outOfLine('inline-3072')).toEqual([{ vector: true, text: true }]);

    // Under pgvector's default (what down() restores) the vector is the value moved out.
    await revertTo(ds, 'AddDocumentsCreatedAtIndex1764000000006');
    await insert('external-384', 384);
    expect(await outOfLine('external-384')).toEqual([{ vector: true, text: false }]);
    expect(await runPendingMigrations(ds)).toEqual(
      ALL_MIGRATIONS.slice(ALL_MIGRATIONS.indexOf('KeepChunkVectorsInline1764000000007')),
    );
    // Rows written before keep their layout; every value reads back the same.
    expect(await outOfLine('external-384')).toEqual([{ vector: true, text: false }]);
    const [same] = await ds.query<Array<{ n: number }>>(
      `SELECT count(DISTINCT embedding::text)::int AS n FROM langchain_pg_embedding WHERE id IN ('inline-384', 'external-384')`,
    );
    expect(same.n).toBe(1);
  });

  it('HashLongMetadataTerms makes a long value that does not compress writable, and keeps one stored before findable', async () => {
    const collection = '5d0c7b1e-8a3f-4e62-b9d4-1f2e3a4b5c6d';
    await ds.query(`INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES ($1, 'terms', '{}')`, [
      collection,
    ]);
    const insert = (id: string, metadata: Record<string, unknown>) =>
      ds.query(
        `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
         VALUES ($1, $2, '[1,2,3]', 't', $3::jsonb)`,
        [id, collection, JSON.stringify(metadata)],
      );
    const repeated = 'a'.repeat(20_000);
    const random = incompressible('', 'random', 10_000);
    const sameStart = incompressible(random.slice(0, 9_000), 'other', 10_000);

    // Under AddMetadataTermsIndex's function a term is stored as it is: a long one fits in the index
    // only when PostgreSQL can compress it under the GIN entry limit.
    await revertTo(ds, 'KeepChunkVectorsInline1764000000007');
    const before = await schemaSnapshot(ds);
    await insert('repeated', { summary: repeated, kind: 'long' });
    // (Above 8,191 bytes PostgreSQL refuses the entry before GIN's own 2,712-byte check.)
    await expect(insert('random', { summary: random })).rejects.toThrow(TOO_LARGE_FOR_INDEX);
    expect(await idsThroughTermsIndex(ds, { summary: repeated })).toEqual(['repeated']);
    expect((await check(ds)).lines).toContain(
      '  - function chunk_metadata_terms does not replace a long term by its digest: a chunk with a long metadata value cannot be indexed (migration HashLongMetadataTerms)',
    );

    // The index is rebuilt with the new function: the entry stored before for 'a' × 20,000 is its
    // digest now, as the search computes it.
    expect(await runPendingMigrations(ds)).toEqual([
      'HashLongMetadataTerms1764000000008',
      'SkipUnchangedChunkCountGroups1764000000009',
      'BoundChunkFullTextIndex1764000000010',
      'AlignBaselineColumnTypes1764000000011',
    ]);
    expect(await idsThroughTermsIndex(ds, { summary: repeated })).toEqual(['repeated']);
    expect(await idsThroughTermsIndex(ds, { summary: repeated, kind: 'long' })).toEqual(['repeated']);
    expect(await idsThroughTermsIndex(ds, { summary: repeated.slice(1) })).toEqual([]);
    await insert('random', { summary: random });
    expect(await idsThroughTermsIndex(ds, { summary: random })).toEqual(['random']);
    expect(await idsThroughTermsIndex(ds, { summary: sameStart })).toEqual([]);
    expect(await check(ds)).toEqual({ exitCode: 0, lines: ['Schema matches the entities: no differences.'] });
    const after = await schemaSnapshot(ds);
    expect(after.filter((l) => !before.includes(l))).toEqual([
      expect.stringMatching(/^function chunk_counts_track\(\) md5=/),
      expect.stringMatching(/^function chunk_metadata_terms\(metadata jsonb\) md5=/),
    ]);

    // down() cannot index the random value with the old function: it fails, the migration stays
    // applied, and the schema stays as it made it: its function back, the failed copy of the index
    // dropped, long values still writable and found.
    await revertTo(ds, 'HashLongMetadataTerms1764000000008');
    await expect(revert(ds)).rejects.toThrow(TOO_LARGE_FOR_INDEX);
    expect((await migrationStates(ds)).find((m) => m.name === 'HashLongMetadataTerms1764000000008')).toMatchObject({
      applied: true,
    });
    expect(await runPendingMigrations(ds)).toEqual([
      'SkipUnchangedChunkCountGroups1764000000009',
      'BoundChunkFullTextIndex1764000000010',
      'AlignBaselineColumnTypes1764000000011',
    ]);
    const leftovers = () =>
      ds.query<Array<{ name: string; valid: boolean }>>(
        `SELECT c.relname AS name, i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          WHERE c.relname LIKE 'ix\\_cmetadata\\_terms%' ORDER BY 1`,
      );
    expect(await leftovers()).toEqual([{ name: 'ix_cmetadata_terms', valid: true }]);
    expect(await schemaSnapshot(ds)).toEqual(after);
    expect(await check(ds)).toEqual({ exitCode: 0, lines: ['Schema matches the entities: no differences.'] });
    await insert('random-2', { summary: `${random}!` });
    expect(await idsThroughTermsIndex(ds, { summary: `${random}!` })).toEqual(['random-2']);
    expect(await idsThroughTermsIndex(ds, { summary: random })).toEqual(['random']);
    await ds.query(`DELETE FROM langchain_pg_embedding WHERE id = 'random-2'`);
    // Without that chunk it goes down and up again, each time rebuilding.
    await ds.query(`DELETE FROM langchain_pg_embedding WHERE id = 'random'`);
    await revertTo(ds, 'SkipUnchangedChunkCountGroups1764000000009');
    expect((await revert(ds)).lines).toEqual([
      'Reverted SkipUnchangedChunkCountGroups1764000000009',
      'Head: HashLongMetadataTerms1764000000008',
    ]);
    expect((await revert(ds)).lines).toEqual([
      'Reverted HashLongMetadataTerms1764000000008',
      'Head: KeepChunkVectorsInline1764000000007',
    ]);
    expect(await leftovers()).toEqual([{ name: 'ix_cmetadata_terms', valid: true }]);
    expect(await schemaSnapshot(ds)).toEqual(before);
    expect(await idsThroughTermsIndex(ds, { summary: repeated })).toEqual(['repeated']);
    expect(await runPendingMigrations(ds)).toEqual([
      'HashLongMetadataTerms1764000000008',
      'SkipUnchangedChunkCountGroups1764000000009',
      'BoundChunkFullTextIndex1764000000010',
      'AlignBaselineColumnTypes1764000000011',
    ]);
    expect(await schemaSnapshot(ds)).toEqual(after);
    expect(await idsThroughTermsIndex(ds, { summary: repeated })).toEqual(['repeated']);
  });

  it('adopts a database that already holds a long value that does not compress: AddMetadataTermsIndex builds its index with the digest', async () => {
    // Before AddMetadataTermsIndex, as in a database the Python service filled: nothing indexes the terms.
    await revertTo(ds, 'AddChunkCounts1764000000004');
    const random = incompressible('', 'adopted', 10_000);
    await ds.query(
      `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
       VALUES ('adopted-random', '5d0c7b1e-8a3f-4e62-b9d4-1f2e3a4b5c6d', '[1,2,3]', 't', $1::jsonb)`,
      [JSON.stringify({ summary: random })],
    );
    expect(await runPendingMigrations(ds)).toEqual(ALL_MIGRATIONS.slice(5));
    expect(await idsThroughTermsIndex(ds, { summary: random })).toEqual(['adopted-random']);
    expect(await check(ds)).toEqual({ exitCode: 0, lines: ['Schema matches the entities: no differences.'] });
    // The old function (HashLongMetadataTerms's down, in the tests below) could not index it.
    await ds.query(`DELETE FROM langchain_pg_embedding WHERE id = 'adopted-random'`);
  });

  it('adopts a database holding a chunk of more distinct words than a tsvector holds, and LangChain can write more of them', async () => {
    // Before AddChunkFullTextIndex, as in a database the Python service filled (LangChain has no limit).
    await revertTo(ds, 'BuildChunkIndexesConcurrently1764000000002');
    const insert = (id: string, document: string) =>
      ds.query(
        `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
         VALUES ($1, NULL, '[1,2,3]', $2, '{}')`,
        [id, document],
      );
    const book = distinctWords(120_000);
    await insert('book', book);
    // Over the whole text, the index could not be built: every run of the migrations stopped there.
    await expect(
      ds.query(`SELECT to_tsvector('simple'::regconfig, coalesce(document, '')) FROM langchain_pg_embedding`),
    ).rejects.toThrow(TOO_LONG_FOR_TSVECTOR);
    expect(await runPendingMigrations(ds)).toEqual(ALL_MIGRATIONS.slice(3));
    expect(await check(ds)).toEqual({ exitCode: 0, lines: ['Schema matches the entities: no differences.'] });
    // Its first 100,000 characters are searchable by text; and another such chunk is writable.
    expect(await idsThroughFullTextIndex(ds, 'w000000001')).toEqual(['book']);
    expect(await idsThroughFullTextIndex(ds, book.slice(-10))).toEqual([]);
    await insert('book-2', `${book} more`);
    expect(await idsThroughFullTextIndex(ds, 'w000000001')).toEqual(['book', 'book-2']);
    // For good: the next test builds the full-text index over the whole text again.
    await deleteChunksForGood(ds, ['book', 'book-2']);
  });

  it('BoundChunkFullTextIndex replaces a full-text index built over the whole text, and is a no-op on a bounded one', async () => {
    const fresh = await schemaSnapshot(ds);
    // The index as AddChunkFullTextIndex built it before it was bounded.
    await revertTo(ds, 'SkipUnchangedChunkCountGroups1764000000009');
    expect(await schemaSnapshot(ds)).toEqual(fresh);
    await ds.query(`DROP INDEX ix_embedding_document_fts`);
    await ds.query(
      `CREATE INDEX ix_embedding_document_fts ON langchain_pg_embedding USING gin (to_tsvector('simple'::regconfig, coalesce(document, '')))`,
    );
    const insert = (id: string, document: string) =>
      ds.query(`INSERT INTO langchain_pg_embedding (id, document) VALUES ($1, $2)`, [id, document]);
    await insert('short', 'Điều 1. Phạm vi điều chỉnh zqxshort');
    await expect(insert('book', distinctWords(120_000))).rejects.toThrow(TOO_LONG_FOR_TSVECTOR);
    expect((await check(ds)).lines).toContainEqual(expect.stringMatching(/^ {2}- index ix_embedding_document_fts is /));

    expect(await runPendingMigrations(ds)).toEqual([
      'BoundChunkFullTextIndex1764000000010',
      'AlignBaselineColumnTypes1764000000011',
    ]);
    expect(await schemaSnapshot(ds)).toEqual(fresh);
    expect(await check(ds)).toEqual({ exitCode: 0, lines: ['Schema matches the entities: no differences.'] });
    await insert('book', distinctWords(120_000));
    expect(await idsThroughFullTextIndex(ds, 'zqxshort')).toEqual(['short']);
    expect(await idsThroughFullTextIndex(ds, 'w000000002')).toEqual(['book']);

    // On the bounded index, down and up change nothing.
    await revertTo(ds, 'BoundChunkFullTextIndex1764000000010');
    expect((await revert(ds)).lines).toEqual([
      'Reverted BoundChunkFullTextIndex1764000000010',
      'Head: SkipUnchangedChunkCountGroups1764000000009',
    ]);
    expect(await runPendingMigrations(ds)).toEqual([
      'BoundChunkFullTextIndex1764000000010',
      'AlignBaselineColumnTypes1764000000011',
    ]);
    expect(await schemaSnapshot(ds)).toEqual(fresh);
    await ds.query(`DELETE FROM langchain_pg_embedding WHERE id IN ('short', 'book')`);
  });

  it("AlignBaselineColumnTypes gives InitialSchema's types to the columns db:stamp accepts in another type, refusing values that do not fit", async () => {
    const fresh = await schemaSnapshot(ds);
    await revertTo(ds, 'BoundChunkFullTextIndex1764000000010');
    // Types a SQLAlchemy model may have spelled otherwise, all of which db:stamp accepts.
    await ds.query(
      `ALTER TABLE documents ALTER COLUMN document_id TYPE text, ALTER COLUMN document_name TYPE varchar(300),
                             ALTER COLUMN status TYPE text, ALTER COLUMN total_chunks TYPE bigint`,
    );
    await ds.query(`ALTER TABLE langchain_pg_collection ALTER COLUMN name TYPE text`);
    await ds.query(`ALTER TABLE langchain_pg_embedding ALTER COLUMN id TYPE text`);
    await ds.query(
      `INSERT INTO documents (document_id, document_name, category, document_type, source_file, file_name, total_chunks, status)
       VALUES ('typed-doc', 'Typed', 'law', 'pdf', 's.pdf', 's.pdf', 5000000000, repeat('x', 60))`,
    );
    await ds.query(
      `INSERT INTO langchain_pg_collection (uuid, name) VALUES ('6e1d8c2f-9b4a-4f73-8ae5-2a3b4c5d6e7f', 'typed')`,
    );
    await ds.query(
      `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
       VALUES ('typed-chunk', '6e1d8c2f-9b4a-4f73-8ae5-2a3b4c5d6e7f', '[1,2,3]', 't', '{"document_id": "typed-doc"}')`,
    );
    // Every migration applied, and still the check failed, proposing to drop and re-add the columns.
    expect((await check(ds)).lines).toContain(
      '  - TypeORM would run: ALTER TABLE "documents" DROP COLUMN "total_chunks"',
    );
    const types = () =>
      ds.query<Array<{ column: string; type: string }>>(
        `SELECT table_name || '.' || column_name AS column, udt_name || coalesce('(' || character_maximum_length || ')', '') AS type
           FROM information_schema.columns
          WHERE table_schema = current_schema()
            AND (table_name, column_name) IN (('documents', 'document_id'), ('documents', 'document_name'), ('documents', 'status'),
                                              ('documents', 'total_chunks'), ('langchain_pg_collection', 'name'), ('langchain_pg_embedding', 'id'))
          ORDER BY 1`,
      );
    const altered = await types();

    // A value that does not fit: every such column named at once, with the query that finds its rows; nothing changed.
    await expect(runPendingMigrations(ds)).rejects.toThrow(
      "Some values do not fit this service's column types, so nothing was changed: " +
        'documents.total_chunks holds 1 value(s) outside the integer range for integer (SELECT * FROM documents WHERE total_chunks NOT BETWEEN -2147483648 AND 2147483647); ' +
        'documents.status holds 1 value(s) longer than 50 characters for varchar(50) (SELECT * FROM documents WHERE length(status) > 50). ' +
        'Correct them, then run db:migrate again.',
    );
    expect(await types()).toEqual(altered);

    await ds.query(`UPDATE documents SET total_chunks = 1, status = 'active' WHERE document_id = 'typed-doc'`);
    expect(await runPendingMigrations(ds)).toEqual(['AlignBaselineColumnTypes1764000000011']);
    expect(await types()).toEqual([
      { column: 'documents.document_id', type: 'varchar(255)' },
      { column: 'documents.document_name', type: 'text' },
      { column: 'documents.status', type: 'varchar(50)' },
      { column: 'documents.total_chunks', type: 'int4' },
      { column: 'langchain_pg_collection.name', type: 'varchar' },
      { column: 'langchain_pg_embedding.id', type: 'varchar' },
    ]);
    expect(await schemaSnapshot(ds)).toEqual(fresh);
    expect(await check(ds)).toEqual({ exitCode: 0, lines: ['Schema matches the entities: no differences.'] });
    // The data is kept, and total_chunks reaches the service as a number again (bigint came as a string).
    expect(
      await ds.query(
        `SELECT d.document_id, d.total_chunks, e.id FROM documents d JOIN langchain_pg_embedding e ON e.cmetadata->>'document_id' = d.document_id
          WHERE d.document_id = 'typed-doc'`,
      ),
    ).toEqual([{ document_id: 'typed-doc', total_chunks: 1, id: 'typed-chunk' }]);

    // Where the types are InitialSchema's, down and up change nothing.
    expect((await revert(ds)).lines).toEqual([
      'Reverted AlignBaselineColumnTypes1764000000011',
      'Head: BoundChunkFullTextIndex1764000000010',
    ]);
    expect(await runPendingMigrations(ds)).toEqual(['AlignBaselineColumnTypes1764000000011']);
    expect(await schemaSnapshot(ds)).toEqual(fresh);
    await ds.query(`DELETE FROM langchain_pg_collection WHERE name = 'typed'`);
    await ds.query(`DELETE FROM documents WHERE document_id = 'typed-doc'`);
  });

  // The embedded database has one session: nothing else can hold a lock there.
  (TEST_TARGET === 'postgres' ? it : it.skip)(
    'KeepChunkVectorsInline gives up after its lock_timeout behind a long statement on the chunk table, changing nothing',
    async () => {
      await revertTo(ds, 'AddDocumentsCreatedAtIndex1764000000006');
      const storage = async () =>
        (
          await ds.query<Array<{ s: string }>>(
            `SELECT attstorage AS s FROM pg_attribute WHERE attrelid = 'langchain_pg_embedding'::regclass AND attname = 'embedding'`,
          )
        )[0].s;
      expect(await storage()).toBe('e');
      const reader = ds.createQueryRunner();
      await reader.connect();
      try {
        // A long read holds ACCESS SHARE until its transaction ends.
        await reader.startTransaction();
        await reader.query(`SELECT count(*) FROM langchain_pg_embedding`);
        const migrating = runPendingMigrations(ds);
        migrating.catch(() => undefined); // awaited below; not an unhandled rejection meanwhile
        // The ALTER queues behind the reader's lock (it does not fail at once for another reason).
        let waiting = false;
        for (let poll = 0; poll < 200 && !waiting; poll++) {
          // Asked outside the reader's transaction, which would see one snapshot of pg_stat_activity.
          const rows = await ds.query<unknown[]>(
            `SELECT 1 FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'
                AND query LIKE 'ALTER TABLE langchain_pg_embedding%'`,
          );
          waiting = rows.length > 0;
          if (!waiting) await new Promise((resolve) => setTimeout(resolve, 20));
        }
        expect(waiting).toBe(true);
        await expect(migrating).rejects.toThrow(/lock timeout/);
        expect(await storage()).toBe('e');
        expect((await migrationStates(ds)).filter((m) => !m.applied).map((m) => m.name)).toEqual(
          ALL_MIGRATIONS.slice(ALL_MIGRATIONS.indexOf('KeepChunkVectorsInline1764000000007')),
        );
      } finally {
        await reader.rollbackTransaction();
        await reader.release();
      }
      expect(await runPendingMigrations(ds)).toEqual(
        ALL_MIGRATIONS.slice(ALL_MIGRATIONS.indexOf('KeepChunkVectorsInline1764000000007')),
      );
      expect(await storage()).toBe('m');

      // Its down() too: db:revert behind the same reader gives up instead of queueing every reader
      // and writer of the chunk table behind it for as long as the reader stays.
      await revertTo(ds, 'KeepChunkVectorsInline1764000000007');
      const other = ds.createQueryRunner();
      await other.connect();
      try {
        await other.startTransaction();
        await other.query(`SELECT count(*) FROM langchain_pg_embedding`);
        await expect(revert(ds)).rejects.toThrow(/lock timeout/);
        expect(await storage()).toBe('m');
      } finally {
        await other.rollbackTransaction();
        await other.release();
      }
      expect((await revert(ds)).lines).toEqual([
        'Reverted KeepChunkVectorsInline1764000000007',
        'Head: AddDocumentsCreatedAtIndex1764000000006',
      ]);
      expect(await runPendingMigrations(ds)).toEqual(
        ALL_MIGRATIONS.slice(ALL_MIGRATIONS.indexOf('KeepChunkVectorsInline1764000000007')),
      );
    },
  );
});

// The embedded database has one owner: two instances cannot share it.
(TEST_TARGET === 'postgres' ? describe : describe.skip)(
  'Two instances starting at once on an empty database with DB_MIGRATE_ON_START (server only)',
  () => {
    it('both start and serve; each migration runs and is recorded once, under the migration lock', async () => {
      const db = await createTestDatabase();
      try {
        const apps = await Promise.all([createApp(testConfig(db)), createApp(testConfig(db))]);
        try {
          for (const app of apps) await request(app.getHttpServer()).get('/health/ready').expect(200);
          const [first] = apps;
          const recorded = await first
            .get(DataSource)
            .query<Array<{ name: string; n: number }>>(
              `SELECT name, count(*)::int AS n FROM migrations GROUP BY name ORDER BY min(id)`,
            );
          expect(recorded).toEqual(ALL_MIGRATIONS.map((name) => ({ name, n: 1 })));
          await request(apps[1].getHttpServer())
            .post('/documents')
            .send({ documentName: 'x', documentType: 'law', category: 'c', sourceFile: '/x.pdf' })
            .expect(201);
        } finally {
          await Promise.all(apps.map((app) => app.close()));
        }
      } finally {
        await db.drop();
      }
    });
  },
);
