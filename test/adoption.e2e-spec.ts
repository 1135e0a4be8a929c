import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { createApp } from '../src/app.factory.js';
import { check, migrate, revert, stamp, status } from '../src/cli/db-commands.js';
import { loadAppConfig } from '../src/config/app-config.js';
import { DatabaseNotStampedError, migrationStates, runPendingMigrations } from '../src/database/migration-runner.js';
import {
  buildLegacySchema,
  COLLECTION_SMALL,
  dataFingerprint,
  persistentTestDatabase,
  runCli,
  schemaSnapshot,
} from './support/legacy-schema.js';
import { openRawDataSource, TEST_TARGET } from './support/test-database.js';

describe('adopting a database the Python service created (stamp → migrate → check)', () => {
  let db: { env: Record<string, string>; drop: () => Promise<void> };
  let ds: DataSource;
  let close: () => Promise<void>;
  let original: Record<string, string | number>;

  beforeAll(async () => {
    db = await persistentTestDatabase();
    ({ dataSource: ds, close } = await openRawDataSource(loadAppConfig({ LOG_LEVEL: 'warn', ...db.env })));
    await buildLegacySchema(ds);
    original = await dataFingerprint(ds);
  });
  afterAll(async () => {
    if (ds.isInitialized) await close();
    await db.drop();
  });

  it('has the fixture it claims: NULL timestamps, two dimensions, orphans, Vietnamese text', async () => {
    expect(original).toMatchObject({ documents: 3, collections: 2, chunks: 7 });
    const [row] = await ds.query<Array<{ nulls: number; dims: number[] }>>(`
      SELECT (SELECT count(*)::int FROM documents WHERE created_at IS NULL OR updated_at IS NULL) AS nulls,
             (SELECT array_agg(DISTINCT vector_dims(embedding) ORDER BY vector_dims(embedding)) FROM langchain_pg_embedding) AS dims`);
    expect(row.nulls).toBe(3);
    expect(row.dims).toEqual([8, 12]);
  });

  it('refuses to migrate while unstamped, pointing to db:stamp, and changes nothing', async () => {
    const before = await schemaSnapshot(ds);
    await expect(runPendingMigrations(ds)).rejects.toThrow(DatabaseNotStampedError);
    await expect(runPendingMigrations(ds)).rejects.toThrow(/npm run db:stamp/);
    await expect(migrate(ds, { dryRun: true })).rejects.toThrow(/db:stamp/);
    expect(await schemaSnapshot(ds)).toEqual(before);
    expect(await dataFingerprint(ds)).toEqual(original);
    expect((await migrationStates(ds)).every((m) => !m.applied)).toBe(true);

    const st = await status(ds);
    expect(st.exitCode).toBe(0);
    expect(st.lines).toEqual(
      expect.arrayContaining([
        '  [ ] InitialSchema1764000000000',
        '  [ ] AlignLegacySchema1764000000001',
        '  [ ] BuildChunkIndexesConcurrently1764000000002',
        '  [ ] AddChunkFullTextIndex1764000000003',
        '  [ ] AddChunkCounts1764000000004',
        '  [ ] AddMetadataTermsIndex1764000000005',
        '  [ ] AddDocumentsCreatedAtIndex1764000000006',
        '  [ ] KeepChunkVectorsInline1764000000007',
        '  [ ] HashLongMetadataTerms1764000000008',
        '  [ ] SkipUnchangedChunkCountGroups1764000000009',
        '  [ ] BoundChunkFullTextIndex1764000000010',
        '  [ ] AlignBaselineColumnTypes1764000000011',
        'Head: (none recorded)',
        expect.stringContaining('alembic_version: a1b2c3d4e5f6'),
        expect.stringContaining('run `npm run db:stamp` before `npm run db:migrate`'),
      ]),
    );
  });

  it('stamps the baseline without touching data, idempotently', async () => {
    const before = await schemaSnapshot(ds);
    const first = await stamp(ds);
    expect(first.exitCode).toBe(0);
    expect(first.lines).toContain('Stamped InitialSchema1764000000000 (recorded as applied, not run)');
    const again = await stamp(ds);
    expect(again.exitCode).toBe(0);
    expect(again.lines).toContain('Already recorded InitialSchema1764000000000');
    const rows = await ds.query<Array<{ name: string; timestamp: string }>>(`SELECT name, "timestamp" FROM migrations`);
    expect(rows).toEqual([{ name: 'InitialSchema1764000000000', timestamp: '1764000000000' }]);
    expect(await schemaSnapshot(ds)).toEqual(before);
    expect(await dataFingerprint(ds)).toEqual(original);
    // The Alembic record is left alone.
    expect(await ds.query(`SELECT version_num FROM alembic_version`)).toEqual([{ version_num: 'a1b2c3d4e5f6' }]);
  });

  it('check lists the differences of the unaligned schema and exits non-zero', async () => {
    const result = await check(ds);
    expect(result.exitCode).toBe(1);
    const text = result.lines.join('\n');
    expect(text).toContain(
      'Pending migrations (run `npm run db:migrate`): AlignLegacySchema1764000000001, BuildChunkIndexesConcurrently1764000000002, AddChunkFullTextIndex1764000000003, AddChunkCounts1764000000004, AddMetadataTermsIndex1764000000005, AddDocumentsCreatedAtIndex1764000000006, KeepChunkVectorsInline1764000000007, HashLongMetadataTerms1764000000008, SkipUnchangedChunkCountGroups1764000000009, BoundChunkFullTextIndex1764000000010, AlignBaselineColumnTypes1764000000011',
    );
    expect(text).toContain('index idx_embedding_document_type is missing');
    expect(text).toContain(
      `TypeORM would run: COMMENT ON TABLE "documents" IS 'Application-level document management table'`,
    );
    expect(text).toContain('TypeORM would run: ALTER TABLE "documents" ALTER COLUMN "created_at" SET NOT NULL');
    expect(text).toMatch(/TypeORM would run: .*documents_document_id_key/);
  });

  it('dry run prints the SQL of the alignment and changes nothing', async () => {
    const before = await schemaSnapshot(ds);
    const result = await migrate(ds, { dryRun: true });
    expect(result.exitCode).toBe(0);
    expect(result.lines).toEqual(
      expect.arrayContaining([
        '-- AlignLegacySchema1764000000001',
        'ALTER TABLE documents ALTER COLUMN created_at SET NOT NULL;',
        'ALTER TABLE langchain_pg_collection ALTER COLUMN cmetadata TYPE jsonb USING cmetadata::jsonb;',
        'ALTER TABLE langchain_pg_embedding ALTER COLUMN document TYPE text;',
        // The big table's index work runs outside a transaction, without blocking chunk writers.
        '-- BuildChunkIndexesConcurrently1764000000002',
        'DROP INDEX CONCURRENTLY IF EXISTS ix_langchain_pg_embedding_id;',
        "CREATE INDEX CONCURRENTLY idx_embedding_document_type ON langchain_pg_embedding ((cmetadata->>'document_type'));",
        '-- AddChunkFullTextIndex1764000000003',
        '-- AddChunkCounts1764000000004',
        'LOCK TABLE langchain_pg_embedding IN SHARE ROW EXCLUSIVE MODE;',
        '-- AddMetadataTermsIndex1764000000005',
        'CREATE INDEX CONCURRENTLY ix_cmetadata_terms ON langchain_pg_embedding USING gin (chunk_metadata_terms(cmetadata));',
        '-- AddDocumentsCreatedAtIndex1764000000006',
        'CREATE INDEX CONCURRENTLY ix_documents_created_at_id ON documents USING btree (created_at, id);',
        '-- KeepChunkVectorsInline1764000000007',
        'ALTER TABLE langchain_pg_embedding ALTER COLUMN embedding SET STORAGE MAIN;',
        '-- HashLongMetadataTerms1764000000008',
        // The index does not exist yet in a dry run (its build above is listed, not run): built, not reindexed.
        'CREATE INDEX CONCURRENTLY ix_cmetadata_terms ON langchain_pg_embedding USING gin (chunk_metadata_terms(cmetadata));',
        // Nor does the full-text index: the bounded one is built under its temporary name and renamed.
        '-- BoundChunkFullTextIndex1764000000010',
        'ALTER INDEX ix_embedding_document_fts_bounded RENAME TO ix_embedding_document_fts;',
        // The types are InitialSchema's already: nothing to convert.
        '-- AlignBaselineColumnTypes1764000000011',
      ]),
    );
    expect(result.lines.filter((l) => /^CREATE INDEX (?!CONCURRENTLY)\S+ ON langchain_pg_embedding/.test(l))).toEqual(
      [],
    );
    expect(await schemaSnapshot(ds)).toEqual(before);
    expect(await dataFingerprint(ds)).toEqual(original);
    expect((await migrationStates(ds)).map((m) => m.applied)).toEqual([
      true,
      false,
      false,
      false,
      false,
      false,
      false,
      false,
      false,
      false,
      false,
      false,
    ]);
  });

  let aligned: string[];

  // On the embedded database the service always migrates at start.
  (TEST_TARGET === 'postgres' ? it : it.skip)(
    'the service started on the stamped database before db:migrate warns that migrations are pending',
    async () => {
      const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      try {
        const app = await createApp(loadAppConfig({ LOG_LEVEL: 'warn', ...db.env, DB_MIGRATE_ON_START: 'false' }));
        await app.close();
        // Before: it served the older schema without a word (createdAt "" for the NULL timestamps).
        expect(warn.mock.calls.map((call) => String(call[0]))).toContainEqual(
          expect.stringMatching(
            /^The database is not at head: 11 migration\(s\) pending \(AlignLegacySchema1764000000001, .*\)\. Run `npm run db:migrate`/,
          ),
        );
      } finally {
        warn.mockRestore();
      }
    },
  );

  it('migrates to the target schema: check is clean, every chunk byte-for-byte the same', async () => {
    const result = await migrate(ds);
    expect(result).toEqual({
      exitCode: 0,
      lines: [
        'Applied AlignLegacySchema1764000000001',
        'Applied BuildChunkIndexesConcurrently1764000000002',
        'Applied AddChunkFullTextIndex1764000000003',
        'Applied AddChunkCounts1764000000004',
        'Applied AddMetadataTermsIndex1764000000005',
        'Applied AddDocumentsCreatedAtIndex1764000000006',
        'Applied KeepChunkVectorsInline1764000000007',
        'Applied HashLongMetadataTerms1764000000008',
        'Applied SkipUnchangedChunkCountGroups1764000000009',
        'Applied BoundChunkFullTextIndex1764000000010',
        'Applied AlignBaselineColumnTypes1764000000011',
        'Head: AlignBaselineColumnTypes1764000000011',
      ],
    });
    const checked = await check(ds);
    expect(checked).toEqual({ exitCode: 0, lines: ['Schema matches the entities: no differences.'] });
    expect(await dataFingerprint(ds)).toEqual(original);

    const docs = await ds.query<Array<{ document_id: string; created_at: Date; updated_at: Date }>>(
      `SELECT document_id, created_at, updated_at FROM documents ORDER BY document_id`,
    );
    for (const d of docs) {
      expect(d.created_at).toBeInstanceOf(Date);
      expect(d.updated_at).toBeInstanceOf(Date);
    }
    const nd = docs.find((d) => d.document_id === 'nghi-dinh-101');
    expect(nd?.updated_at.getTime()).toBe(nd?.created_at.getTime());
    // Timestamps that were set are kept as they were.
    expect(
      await ds.query(`SELECT document_id, created_at::text AS c, updated_at::text AS u FROM documents
                       WHERE document_id IN ('nghi-dinh-101', 'huong-dan-01') ORDER BY 1`),
    ).toEqual([
      { document_id: 'huong-dan-01', c: '2024-06-01 08:30:00', u: '2024-06-01 08:30:00' },
      { document_id: 'nghi-dinh-101', c: '2024-05-01 10:00:00', u: '2024-05-01 10:00:00' },
    ]);
    const hd = docs.find((d) => d.document_id === 'huong-dan-01');
    expect(hd?.created_at.getTime()).toBe(hd?.updated_at.getTime());

    aligned = await schemaSnapshot(ds);
    expect(aligned).toEqual(
      expect.arrayContaining([
        'index CREATE UNIQUE INDEX ix_documents_document_id ON public.documents USING btree (document_id)',
        'index CREATE UNIQUE INDEX langchain_pg_collection_name_key ON public.langchain_pg_collection USING btree (name)',
        expect.stringMatching(/^column langchain_pg_collection\.cmetadata jsonb null=YES default= comment=Collection/),
        expect.stringMatching(/^column langchain_pg_embedding\.document text null=YES default= comment=Chunk text/),
        'storage langchain_pg_embedding.embedding=m',
        expect.stringMatching(/^column documents\.created_at timestamp null=NO default=now\(\) comment=Creation time/),
        'trigger trigger_documents_updated_at',
      ]),
    );
    expect(aligned.filter((l) => /idx_documents_(category|type|status|source) /.test(l))).toEqual([]);
    expect(aligned.filter((l) => l.includes('ix_langchain_pg_embedding_id'))).toEqual([]);
    expect(aligned.filter((l) => l.startsWith('constraint') && l.endsWith('_key UNIQUE (name)'))).toEqual([]);
  });

  it('reverts to the pre-existing shape and migrates again to the same schema, data unchanged', async () => {
    expect(await revert(ds)).toEqual({
      exitCode: 0,
      lines: ['Reverted AlignBaselineColumnTypes1764000000011', 'Head: BoundChunkFullTextIndex1764000000010'],
    });
    expect(await revert(ds)).toEqual({
      exitCode: 0,
      lines: ['Reverted BoundChunkFullTextIndex1764000000010', 'Head: SkipUnchangedChunkCountGroups1764000000009'],
    });
    expect(await revert(ds)).toEqual({
      exitCode: 0,
      lines: ['Reverted SkipUnchangedChunkCountGroups1764000000009', 'Head: HashLongMetadataTerms1764000000008'],
    });
    expect(await revert(ds)).toEqual({
      exitCode: 0,
      lines: ['Reverted HashLongMetadataTerms1764000000008', 'Head: KeepChunkVectorsInline1764000000007'],
    });
    expect(await revert(ds)).toEqual({
      exitCode: 0,
      lines: ['Reverted KeepChunkVectorsInline1764000000007', 'Head: AddDocumentsCreatedAtIndex1764000000006'],
    });
    expect(await revert(ds)).toEqual({
      exitCode: 0,
      lines: ['Reverted AddDocumentsCreatedAtIndex1764000000006', 'Head: AddMetadataTermsIndex1764000000005'],
    });
    expect(await revert(ds)).toEqual({
      exitCode: 0,
      lines: ['Reverted AddMetadataTermsIndex1764000000005', 'Head: AddChunkCounts1764000000004'],
    });
    expect(await revert(ds)).toEqual({
      exitCode: 0,
      lines: ['Reverted AddChunkCounts1764000000004', 'Head: AddChunkFullTextIndex1764000000003'],
    });
    expect(await revert(ds)).toEqual({
      exitCode: 0,
      lines: ['Reverted AddChunkFullTextIndex1764000000003', 'Head: BuildChunkIndexesConcurrently1764000000002'],
    });
    expect(await revert(ds)).toEqual({
      exitCode: 0,
      lines: ['Reverted BuildChunkIndexesConcurrently1764000000002', 'Head: AlignLegacySchema1764000000001'],
    });
    expect(await revert(ds)).toEqual({
      exitCode: 0,
      lines: ['Reverted AlignLegacySchema1764000000001', 'Head: InitialSchema1764000000000'],
    });
    const legacy = await schemaSnapshot(ds);
    expect(legacy).toEqual(
      expect.arrayContaining([
        'constraint documents.documents_document_id_key UNIQUE (document_id)',
        'constraint langchain_pg_collection.langchain_pg_collection_name_key UNIQUE (name)',
        expect.stringMatching(/^column langchain_pg_collection\.cmetadata json null=YES/),
        expect.stringMatching(/^column documents\.created_at timestamp null=YES/),
        'table documents comment=Document management table',
      ]),
    );
    expect((await check(ds)).exitCode).toBe(1);
    expect(await dataFingerprint(ds)).toEqual(original);

    expect((await migrate(ds)).lines[0]).toBe('Applied AlignLegacySchema1764000000001');
    expect(await schemaSnapshot(ds)).toEqual(aligned);
    expect(await dataFingerprint(ds)).toEqual(original);
    expect((await migrate(ds)).lines).toEqual(['No pending migrations: the database is up to date.']);
  });

  it('accepts a LangChain-style upsert after adoption', async () => {
    const id = 'luat-dat-dai-2024_chunk_1';
    // What langchain_postgres PGVector.add_embeddings sends.
    await ds.query(
      `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
       VALUES ($1, $2, $3::vector, $4, $5::jsonb), ($6, $2, $3::vector, $7, $8::jsonb)
       ON CONFLICT (id) DO UPDATE SET embedding = EXCLUDED.embedding, document = EXCLUDED.document, cmetadata = EXCLUDED.cmetadata`,
      [
        id,
        COLLECTION_SMALL,
        '[1,0,0,0,0,0,0,0]',
        'Điều 2 (sửa đổi).',
        JSON.stringify({ document_id: 'luat-dat-dai-2024', chunk_index: 1 }),
        'new-chunk-1',
        'Đoạn mới',
        JSON.stringify({ document_id: 'luat-dat-dai-2024', chunk_index: 3 }),
      ],
    );
    const rows = await ds.query<Array<{ id: string; document: string }>>(
      `SELECT id, document FROM langchain_pg_embedding WHERE id = ANY($1) ORDER BY id`,
      [[id, 'new-chunk-1']],
    );
    expect(rows).toEqual([
      { id, document: 'Điều 2 (sửa đổi).' },
      { id: 'new-chunk-1', document: 'Đoạn mới' },
    ]);
    await ds.query(`UPDATE documents SET status = 'active' WHERE document_id = 'huong-dan-01'`);
    expect((await check(ds)).exitCode).toBe(0);
    await close();
  });

  it('the CLI reports the adopted database (exit codes, output)', () => {
    const st = runCli(db.env, 'status');
    expect(st.stderr).toBe('');
    expect(st.code).toBe(0);
    expect(st.stdout).toContain('[X] InitialSchema1764000000000');
    expect(st.stdout).toContain('[X] AlignLegacySchema1764000000001');
    expect(st.stdout).toContain('[X] AddChunkCounts1764000000004');
    expect(st.stdout).toContain('[X] AddMetadataTermsIndex1764000000005');
    expect(st.stdout).toContain('[X] AddDocumentsCreatedAtIndex1764000000006');
    expect(st.stdout).toContain('[X] KeepChunkVectorsInline1764000000007');
    expect(st.stdout).toContain('[X] HashLongMetadataTerms1764000000008');
    expect(st.stdout).toContain('[X] SkipUnchangedChunkCountGroups1764000000009');
    expect(st.stdout).toContain('[X] BoundChunkFullTextIndex1764000000010');
    expect(st.stdout).toContain('[X] AlignBaselineColumnTypes1764000000011');
    expect(st.stdout).toContain('Head: AlignBaselineColumnTypes1764000000011');
    const ck = runCli(db.env, 'check');
    expect(ck.code).toBe(0);
    expect(ck.stdout).toContain('no differences');
  });

  it('the app starts on the adopted database and serves its data', async () => {
    const app = await createApp(loadAppConfig({ LOG_LEVEL: 'warn', ...db.env, DB_MIGRATE_ON_START: 'true' }));
    try {
      const server = app.getHttpServer();
      const health = await request(server).get('/health');
      expect(health.status).toBe(200);
      const openapi = await request(server).get('/docs-json');
      const paths = Object.keys((openapi.body as { paths: Record<string, unknown> }).paths);
      // Every parameterless GET route answers 200 on the adopted data.
      for (const path of paths.filter((p) => !p.includes('{'))) {
        const spec = (openapi.body as { paths: Record<string, Record<string, unknown>> }).paths[path];
        if (!spec.get) continue;
        const res = await request(server).get(path);
        expect({ path, status: res.status }).toEqual({ path, status: 200 });
      }
      expect(paths).toContain('/documents');
      const res = await request(server).get('/documents');
      expect(JSON.stringify(res.body)).toContain('luat-dat-dai-2024');
      // The LangChain-style upsert above added a chunk past the service; the recount finds that one only.
      const stats = await request(server).get('/stats');
      expect(stats.body.orphans.totalChunksMismatch).toBe(1);
      const recount = await request(server).post('/documents/recount').send({});
      expect(recount.status).toBe(200);
      expect(recount.body).toEqual({
        dryRun: false,
        checked: 3,
        corrected: 1,
        documents: [{ documentId: 'luat-dat-dai-2024', before: 3, after: 4 }],
      });
      expect((await request(server).get('/stats')).body.orphans.totalChunksMismatch).toBe(0);
    } finally {
      await app.close();
    }
  });
});
