import fc from 'fast-check';
import type { DataSource, QueryRunner } from 'typeorm';
import { check, migrate, revert, stamp } from '../src/cli/db-commands.js';
import { loadAppConfig } from '../src/config/app-config.js';
import { runPendingMigrations } from '../src/database/migration-runner.js';
import { CHUNKS_SCAN_SQL, CHUNKS_SQL } from '../src/stats/stats.sql.js';
import { buildLegacySchema, persistentTestDatabase } from './support/legacy-schema.js';
import { eventually } from './support/private-postgres.js';
import {
  createTestDatabase,
  openRawDataSource,
  TEST_TARGET,
  type TestDatabase,
  testConfig,
} from './support/test-database.js';

/**
 * chunk_counts (migration AddChunkCounts) against a full recount, after writes made with plain SQL
 * the way LangChain and other writers make them, bypassing this service.
 */

const COLLECTIONS = [
  { uuid: '7c0f3a5e-1111-4111-8111-000000000001', name: 'cc-a', dims: 3 },
  { uuid: '7c0f3a5e-1111-4111-8111-000000000002', name: 'cc-b', dims: 2 },
  { uuid: '7c0f3a5e-1111-4111-8111-000000000003', name: 'cc-c', dims: 4 },
] as const;
/** Vectors of chunks without a collection. */
const NO_COLLECTION_DIMS = 5;
/** SQL: the dimension of the stored chunk's collection (inside ON CONFLICT DO UPDATE). */
const DIMS_OF_STORED_COLLECTION = `CASE langchain_pg_embedding.collection_id ${COLLECTIONS.map(
  (c) => `WHEN '${c.uuid}' THEN ${c.dims}`,
).join(' ')} ELSE ${NO_COLLECTION_DIMS} END`;

/** The summary and the recount, each as sorted lines (dims: one dimension per collection here). */
async function summaryAndRecount(ds: DataSource): Promise<{ summary: string[]; recount: string[] }> {
  const line = `coalesce(collection_id::text, '<null>') || ' ' || coalesce(to_json(document_id)::text, '<null>')
                || ' n=' || n || ' vectors=' || vectors || ' dims=' || coalesce(dims::text, '-')`;
  const summary = await ds.query<Array<{ line: string }>>(`SELECT ${line} AS line FROM chunk_counts ORDER BY 1`);
  const recount = await ds.query<Array<{ line: string }>>(
    `SELECT ${line} AS line FROM (
       SELECT collection_id, cmetadata->>'document_id' AS document_id, count(*) AS n, count(embedding) AS vectors,
              max(vector_dims(embedding)) AS dims
         FROM langchain_pg_embedding GROUP BY 1, 2) g ORDER BY 1`,
  );
  return { summary: summary.map((r) => r.line), recount: recount.map((r) => r.line) };
}

async function expectExact(ds: DataSource): Promise<void> {
  const { summary, recount } = await summaryAndRecount(ds);
  expect(summary).toEqual(recount);
  // Every /stats figure from the summary equals the figure from scanning the chunks.
  expect(await ds.query(CHUNKS_SQL)).toEqual(await ds.query(CHUNKS_SCAN_SQL));
}

const vector = (dims: number, seed: number): string =>
  `[${Array.from({ length: dims }, (_, i) => ((seed + i) % 7) / 7).join(',')}]`;

// ---------------------------------------------------------------------------------------------
// Random LangChain-style writes
// ---------------------------------------------------------------------------------------------

const ids = fc.constantFrom(...Array.from({ length: 12 }, (_, i) => `chunk-${i}`));
/** Index into COLLECTIONS, or null: a chunk without a collection. */
const collection = fc.option(fc.constantFrom(0, 1, 2), { nil: null, freq: 6 });
/** A document id, or one of the ways of having none. */
const documentField = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('doc-1', 'doc-2', 'doc-3', '') },
  { weight: 1, arbitrary: fc.constantFrom('absent', 'json-null', 'no-metadata', 'number') },
);
const chunk = fc.record({ id: ids, collection, document: documentField, hasVector: fc.boolean(), seed: fc.nat(50) });
type Chunk = typeof chunk extends fc.Arbitrary<infer T> ? T : never;

const uniqueChunks = fc.uniqueArray(chunk, { minLength: 1, maxLength: 6, selector: (c) => c.id });
const op = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), chunks: uniqueChunks }),
  fc.record({ kind: fc.constant('upsert' as const), chunks: uniqueChunks, moveCollection: fc.boolean() }),
  fc.record({ kind: fc.constant('delete' as const), ids: fc.uniqueArray(ids, { minLength: 1, maxLength: 5 }) }),
  fc.record({
    kind: fc.constant('set-document' as const),
    ids: fc.uniqueArray(ids, { minLength: 1, maxLength: 5 }),
    document: documentField,
  }),
  fc.record({
    kind: fc.constant('set-collection' as const),
    ids: fc.uniqueArray(ids, { minLength: 1, maxLength: 5 }),
    collection,
  }),
  fc.record({ kind: fc.constant('drop-collection' as const), collection: fc.constantFrom(0, 1, 2) }),
  fc.record({ kind: fc.constant('rolled-back' as const), chunks: uniqueChunks }),
  fc.constant({ kind: 'truncate' as const }),
);
type Op = typeof op extends fc.Arbitrary<infer T> ? T : never;

function metadata(document: string, chunkIndex: number): string | null {
  switch (document) {
    case 'absent':
      return JSON.stringify({ chunk_index: chunkIndex });
    case 'json-null':
      return JSON.stringify({ document_id: null, chunk_index: chunkIndex });
    case 'no-metadata':
      return null;
    case 'number':
      return JSON.stringify({ document_id: 42 });
    default:
      return JSON.stringify({ document_id: document, chunk_index: chunkIndex, status: 'active' });
  }
}

const dimsOf = (c: number | null): number => (c === null ? NO_COLLECTION_DIMS : COLLECTIONS[c].dims);
const uuidOf = (c: number | null): string | null => (c === null ? null : COLLECTIONS[c].uuid);

/** One multi-row statement with the columns LangChain sends; collections created first if needed. */
async function writeChunks(ds: DataSource, chunks: Chunk[], conflict: string): Promise<void> {
  for (const c of new Set(chunks.map((x) => x.collection))) {
    if (c === null) continue;
    await ds.query(`INSERT INTO langchain_pg_collection (uuid, name) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [
      COLLECTIONS[c].uuid,
      COLLECTIONS[c].name,
    ]);
  }
  const params: unknown[] = [];
  const rows = chunks.map((c, i) => {
    params.push(
      c.id,
      uuidOf(c.collection),
      c.hasVector ? vector(dimsOf(c.collection), c.seed) : null,
      `Điều ${i}`,
      metadata(c.document, i),
    );
    const b = params.length - 5;
    return `($${b + 1}, $${b + 2}::uuid, $${b + 3}::vector, $${b + 4}, $${b + 5}::jsonb)`;
  });
  await ds.query(
    `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata) VALUES ${rows.join(', ')} ${conflict}`,
    params,
  );
}

async function apply(ds: DataSource, o: Op): Promise<void> {
  switch (o.kind) {
    case 'insert':
      // Plain INSERT of new ids (existing ones are skipped, as add_documents with fresh ids never meets them).
      return writeChunks(ds, o.chunks, 'ON CONFLICT (id) DO NOTHING');
    case 'upsert':
      // langchain_postgres' upsert (metadata, text, vector), or one that also moves the chunk's
      // collection. A chunk that stays keeps its collection's dimension.
      return writeChunks(
        ds,
        o.chunks,
        o.moveCollection
          ? `ON CONFLICT (id) DO UPDATE SET embedding = EXCLUDED.embedding, document = EXCLUDED.document,
               cmetadata = EXCLUDED.cmetadata, collection_id = EXCLUDED.collection_id`
          : `ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document, cmetadata = EXCLUDED.cmetadata,
               embedding = CASE WHEN EXCLUDED.embedding IS NOT NULL
                 THEN array_fill(0.5::real, ARRAY[${DIMS_OF_STORED_COLLECTION}])::vector END`,
      );
    case 'delete':
      await ds.query(`DELETE FROM langchain_pg_embedding WHERE id = ANY($1)`, [o.ids]);
      return;
    case 'set-document':
      await ds.query(`UPDATE langchain_pg_embedding SET cmetadata = $2::jsonb WHERE id = ANY($1)`, [
        o.ids,
        metadata(o.document, 0),
      ]);
      return;
    case 'set-collection':
      if (o.collection !== null) {
        await ds.query(`INSERT INTO langchain_pg_collection (uuid, name) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [
          COLLECTIONS[o.collection].uuid,
          COLLECTIONS[o.collection].name,
        ]);
      }
      // The vector follows the collection's dimension (one dimension per collection).
      await ds.query(
        `UPDATE langchain_pg_embedding SET collection_id = $2::uuid,
                embedding = CASE WHEN embedding IS NULL THEN NULL ELSE $3::vector END
          WHERE id = ANY($1)`,
        [o.ids, uuidOf(o.collection), vector(dimsOf(o.collection), 1)],
      );
      return;
    case 'drop-collection':
      // ON DELETE CASCADE removes its chunks.
      await ds.query(`DELETE FROM langchain_pg_collection WHERE uuid = $1`, [COLLECTIONS[o.collection].uuid]);
      return;
    case 'rolled-back': {
      const runner = ds.createQueryRunner();
      try {
        await runner.startTransaction();
        await runner.query(`DELETE FROM langchain_pg_embedding`);
        await runner.query(`INSERT INTO langchain_pg_collection (uuid, name) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [
          COLLECTIONS[0].uuid,
          COLLECTIONS[0].name,
        ]);
        await runner.query(
          `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, cmetadata)
           SELECT 'rb-' || i, $1::uuid, $2::vector, '{"document_id": "doc-1"}' FROM generate_series(1, $3::int) i`,
          [COLLECTIONS[0].uuid, vector(3, 0), o.chunks.length],
        );
        await runner.rollbackTransaction();
      } finally {
        await runner.release();
      }
      return;
    }
    case 'truncate':
      await ds.query(`TRUNCATE langchain_pg_embedding`);
      return;
  }
}

describe(`chunk_counts: the summary behind GET /stats (${TEST_TARGET})`, () => {
  let db: TestDatabase;
  let ds: DataSource;
  let close: () => Promise<void>;

  beforeAll(async () => {
    db = await createTestDatabase();
    ({ dataSource: ds, close } = await openRawDataSource(testConfig(db)));
    await runPendingMigrations(ds);
  });
  afterAll(async () => {
    await close();
    await db.drop();
  });

  it('stays equal to a full recount after any mix of direct LangChain-style writes', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (ops) => {
        await ds.query(`TRUNCATE langchain_pg_collection CASCADE`);
        for (const o of ops) await apply(ds, o);
        await expectExact(ds);
      }),
      { numRuns: 40 },
    );
  });

  it('counts each kind of write exactly, step by step', async () => {
    await ds.query(`TRUNCATE langchain_pg_collection CASCADE`);
    const steps: Op[] = [
      {
        kind: 'insert',
        chunks: [
          { id: 'chunk-0', collection: 0, document: 'doc-1', hasVector: true, seed: 1 },
          { id: 'chunk-1', collection: 0, document: 'doc-1', hasVector: false, seed: 2 },
          { id: 'chunk-2', collection: null, document: 'absent', hasVector: true, seed: 3 },
          { id: 'chunk-3', collection: 1, document: 'no-metadata', hasVector: true, seed: 4 },
        ],
      },
      // An upsert that inserts one chunk and moves another to a different document and collection.
      {
        kind: 'upsert',
        moveCollection: true,
        chunks: [
          { id: 'chunk-0', collection: 1, document: 'doc-2', hasVector: true, seed: 5 },
          { id: 'chunk-4', collection: 0, document: 'doc-1', hasVector: true, seed: 6 },
        ],
      },
      { kind: 'set-document', ids: ['chunk-1', 'chunk-2'], document: 'json-null' },
      { kind: 'set-collection', ids: ['chunk-4'], collection: null },
      { kind: 'delete', ids: ['chunk-3'] },
      { kind: 'drop-collection', collection: 1 },
      { kind: 'truncate' },
    ];
    for (const step of steps) {
      await apply(ds, step);
      await expectExact(ds);
    }
    expect(await ds.query(`SELECT count(*)::int AS n FROM chunk_counts`)).toEqual([{ n: 0 }]);
  });

  it('an upsert that rewrites chunks in place changes no summary row', async () => {
    await ds.query(`TRUNCATE langchain_pg_collection CASCADE`);
    const chunks: Chunk[] = [0, 1, 2].map((i) => ({
      id: `chunk-${i}`,
      collection: 0,
      document: 'doc-1',
      hasVector: true,
      seed: i,
    }));
    await apply(ds, { kind: 'insert', chunks });
    const [before] = await ds.query<Array<{ xmin: string }>>(`SELECT xmin::text FROM chunk_counts`);
    await apply(ds, { kind: 'upsert', chunks, moveCollection: false });
    expect(await ds.query(`SELECT xmin::text FROM chunk_counts`)).toEqual([before]);
    await expectExact(ds);
  });

  it('concurrent writers of overlapping documents neither deadlock nor lose counts', async () => {
    await ds.query(`TRUNCATE langchain_pg_collection CASCADE`);
    await ds.query(`INSERT INTO langchain_pg_collection (uuid, name) VALUES ($1, $2)`, [
      COLLECTIONS[0].uuid,
      COLLECTIONS[0].name,
    ]);
    const documents = Array.from({ length: 8 }, (_, i) => `doc-${i}`);
    // Each writer's one statement touches every document, in its own order; half of them run a second
    // statement in the same transaction, as a multi-batch writer does.
    const writer = async (w: number): Promise<void> => {
      const order = w % 2 === 0 ? documents : [...documents].reverse();
      const runner = ds.createQueryRunner();
      try {
        await runner.startTransaction();
        for (let round = 0; round < (w % 2) + 1; round++) {
          await runner.query(
            `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, cmetadata)
             SELECT 'w' || $1 || '-' || $2 || '-' || i, $3::uuid, '[1,2,3]', jsonb_build_object('document_id', d)
               FROM unnest($4::text[]) WITH ORDINALITY AS t(d, i)`,
            [w, round, COLLECTIONS[0].uuid, order],
          );
        }
        await runner.commitTransaction();
      } finally {
        await runner.release();
      }
    };
    await Promise.all(Array.from({ length: 6 }, (_, w) => writer(w)));
    await Promise.all(
      Array.from({ length: 3 }, (_, w) => ds.query(`DELETE FROM langchain_pg_embedding WHERE id LIKE $1`, [`w${w}-%`])),
    );
    await expectExact(ds);
    expect(await ds.query(`SELECT sum(n)::int AS n FROM chunk_counts`)).toEqual([{ n: 3 * 8 + 3 * 16 - 8 - 16 - 8 }]);
  });

  (TEST_TARGET === 'postgres' ? it : it.skip)(
    'two LangChain upserts, each rewriting a chunk of one document in place and adding one to the other, do not deadlock',
    async () => {
      await ds.query(`TRUNCATE langchain_pg_collection CASCADE`);
      const uuid = COLLECTIONS[0].uuid;
      await ds.query(`INSERT INTO langchain_pg_collection (uuid, name) VALUES ($1, $2)`, [uuid, COLLECTIONS[0].name]);
      // LangChain's add_embeddings: one INSERT … ON CONFLICT (id) DO UPDATE per batch.
      const upsert = (runner: DataSource | QueryRunner, chunks: Array<[string, string]>) =>
        runner.query(
          `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
           SELECT c.id, $1::uuid, '[1,2,3]', 'text', jsonb_build_object('document_id', c.doc)
             FROM unnest($2::text[], $3::text[]) AS c(id, doc)
           ON CONFLICT (id) DO UPDATE
             SET embedding = excluded.embedding, document = excluded.document, cmetadata = excluded.cmetadata`,
          [uuid, chunks.map((c) => c[0]), chunks.map((c) => c[1])],
        );
      await upsert(ds, [
        ['a-0', 'doc-a'],
        ['b-0', 'doc-b'],
      ]);
      const first = ds.createQueryRunner();
      const second = ds.createQueryRunner();
      try {
        await first.startTransaction();
        await second.startTransaction();
        const [{ pid }] = (await first.query(`SELECT pg_backend_pid() AS pid`)) as Array<{ pid: number }>;
        // The second writer's batch, as far as its rewrite of b-0 ...
        await upsert(second, [['b-0', 'doc-b']]);
        // ... while the first writes its batch: a-0 rewritten, b-1 added.
        const firstBatch = upsert(first, [
          ['a-0', 'doc-a'],
          ['b-1', 'doc-b'],
        ]).then(
          () => 'done',
          (error: Error) => error.message,
        );
        let settled: string | undefined;
        void firstBatch.then((outcome) => (settled = outcome));
        // It finishes, or waits for a lock the second holds (the rewrite of b-0 locked doc-b's summary row).
        const reached = await eventually(async () => {
          if (settled !== undefined) return true;
          const [row] = await ds.query<Array<{ waiting: boolean }>>(
            `SELECT wait_event_type = 'Lock' AS waiting FROM pg_stat_activity WHERE pid = $1`,
            [pid],
          );
          return row?.waiting === true;
        });
        expect(reached).toBe(true);
        // The rest of the second's batch: a-1 added to doc-a, whose summary row the first locked if
        // its rewrite of a-0 did. Then the two wait for each other, and the server cancels one.
        const secondRest = await upsert(second, [['a-1', 'doc-a']]).then(
          () => 'done',
          (error: Error) => error.message,
        );
        expect(secondRest).toBe('done');
        await second.commitTransaction();
        expect(await firstBatch).toBe('done');
        await first.commitTransaction();
      } finally {
        if (first.isTransactionActive) await first.rollbackTransaction();
        if (second.isTransactionActive) await second.rollbackTransaction();
        await first.release();
        await second.release();
      }
      await expectExact(ds);
      expect(await ds.query(`SELECT document_id, n::int FROM chunk_counts ORDER BY 1`)).toEqual([
        { document_id: 'doc-a', n: 2 },
        { document_id: 'doc-b', n: 2 },
      ]);
    },
  );

  it('goes down and up again, backfilling the chunks already stored; db:check is clean, and flags a disabled trigger', async () => {
    await ds.query(`TRUNCATE langchain_pg_collection CASCADE`);
    await apply(ds, {
      kind: 'insert',
      chunks: [
        { id: 'chunk-0', collection: 0, document: 'doc-1', hasVector: true, seed: 1 },
        { id: 'chunk-1', collection: 2, document: 'doc-1', hasVector: true, seed: 2 },
        { id: 'chunk-2', collection: null, document: 'absent', hasVector: true, seed: 3 },
        { id: 'chunk-3', collection: 1, document: 'no-metadata', hasVector: false, seed: 4 },
      ],
    });
    expect((await revert(ds)).lines).toEqual([
      'Reverted AlignBaselineColumnTypes1764000000011',
      'Head: BoundChunkFullTextIndex1764000000010',
    ]);
    expect((await revert(ds)).lines).toEqual([
      'Reverted BoundChunkFullTextIndex1764000000010',
      'Head: SkipUnchangedChunkCountGroups1764000000009',
    ]);
    expect((await revert(ds)).lines).toEqual([
      'Reverted SkipUnchangedChunkCountGroups1764000000009',
      'Head: HashLongMetadataTerms1764000000008',
    ]);
    expect((await revert(ds)).lines).toEqual([
      'Reverted HashLongMetadataTerms1764000000008',
      'Head: KeepChunkVectorsInline1764000000007',
    ]);
    expect((await revert(ds)).lines).toEqual([
      'Reverted KeepChunkVectorsInline1764000000007',
      'Head: AddDocumentsCreatedAtIndex1764000000006',
    ]);
    expect((await revert(ds)).lines).toEqual([
      'Reverted AddDocumentsCreatedAtIndex1764000000006',
      'Head: AddMetadataTermsIndex1764000000005',
    ]);
    expect((await revert(ds)).lines).toEqual([
      'Reverted AddMetadataTermsIndex1764000000005',
      'Head: AddChunkCounts1764000000004',
    ]);
    expect(await revert(ds)).toEqual({
      exitCode: 0,
      lines: ['Reverted AddChunkCounts1764000000004', 'Head: AddChunkFullTextIndex1764000000003'],
    });
    expect(await ds.query(`SELECT to_regclass('chunk_counts') AS t`)).toEqual([{ t: null }]);
    expect(
      await ds.query(`SELECT tgname FROM pg_trigger WHERE tgname LIKE 'chunk_counts%'
                       UNION ALL SELECT proname FROM pg_proc WHERE proname = 'chunk_counts_track'`),
    ).toEqual([]);
    // Without the summary the chunk table takes writes as before.
    await apply(ds, {
      kind: 'upsert',
      moveCollection: true,
      chunks: [
        { id: 'chunk-0', collection: 1, document: 'doc-2', hasVector: true, seed: 1 },
        { id: 'chunk-9', collection: 0, document: 'json-null', hasVector: true, seed: 7 },
      ],
    });
    expect((await check(ds)).lines).toEqual([
      'Pending migrations (run `npm run db:migrate`): AddChunkCounts1764000000004, AddMetadataTermsIndex1764000000005, AddDocumentsCreatedAtIndex1764000000006, KeepChunkVectorsInline1764000000007, HashLongMetadataTerms1764000000008, SkipUnchangedChunkCountGroups1764000000009, BoundChunkFullTextIndex1764000000010, AlignBaselineColumnTypes1764000000011',
      '4 difference(s) between the database and the entities:',
      '  - TypeORM would run: CREATE INDEX "ix_documents_created_at_id" ON "documents" ("created_at", "id")',
      '  - index ix_cmetadata_terms is missing (expected: CREATE INDEX ix_cmetadata_terms ON public.langchain_pg_embedding USING gin (chunk_metadata_terms(cmetadata)))',
      '  - table chunk_counts is missing (migration AddChunkCounts)',
      '  - column langchain_pg_embedding.embedding has storage EXTERNAL, expected MAIN (migration KeepChunkVectorsInline)',
    ]);

    expect((await migrate(ds)).lines).toEqual([
      'Applied AddChunkCounts1764000000004',
      'Applied AddMetadataTermsIndex1764000000005',
      'Applied AddDocumentsCreatedAtIndex1764000000006',
      'Applied KeepChunkVectorsInline1764000000007',
      'Applied HashLongMetadataTerms1764000000008',
      'Applied SkipUnchangedChunkCountGroups1764000000009',
      'Applied BoundChunkFullTextIndex1764000000010',
      'Applied AlignBaselineColumnTypes1764000000011',
      'Head: AlignBaselineColumnTypes1764000000011',
    ]);
    await expectExact(ds);
    expect(await check(ds)).toEqual({ exitCode: 0, lines: ['Schema matches the entities: no differences.'] });

    await ds.query(`ALTER TABLE langchain_pg_embedding DISABLE TRIGGER chunk_counts_after_delete`);
    expect((await check(ds)).lines).toContain(
      '  - trigger chunk_counts_after_delete is disabled: chunk_counts may be stale; enable it and recount (docs/MIGRATIONS.md)',
    );
    await ds.query(`ALTER TABLE langchain_pg_embedding ENABLE TRIGGER chunk_counts_after_delete`);
  });

  it('the recount documented in docs/MIGRATIONS.md repairs a summary left stale by disabled triggers', async () => {
    await ds.query(`ALTER TABLE langchain_pg_embedding DISABLE TRIGGER chunk_counts_after_insert`);
    await apply(ds, {
      kind: 'insert',
      chunks: [{ id: 'chunk-5', collection: 0, document: 'doc-3', hasVector: true, seed: 1 }],
    });
    await ds.query(`ALTER TABLE langchain_pg_embedding ENABLE TRIGGER chunk_counts_after_insert`);
    expect((await summaryAndRecount(ds)).summary).not.toEqual((await summaryAndRecount(ds)).recount);
    await ds.query(RECOUNT_SQL);
    await expectExact(ds);
  });
});

/** Kept word for word in docs/MIGRATIONS.md ("Recounting chunk_counts"). */
const RECOUNT_SQL = `
DO $$ BEGIN
  LOCK TABLE langchain_pg_embedding IN SHARE ROW EXCLUSIVE MODE;
  DELETE FROM chunk_counts;
  INSERT INTO chunk_counts (collection_id, document_id, n, vectors, dims)
  SELECT collection_id, cmetadata->>'document_id', count(*), count(embedding), max(vector_dims(embedding))
    FROM langchain_pg_embedding
   GROUP BY 1, 2;
END $$`;

describe(`chunk_counts on a database the Python service filled (${TEST_TARGET})`, () => {
  it('stamp → migrate backfills the existing chunks exactly, and /stats figures match the scan', async () => {
    const db = await persistentTestDatabase();
    const { dataSource: ds, close } = await openRawDataSource(loadAppConfig({ LOG_LEVEL: 'warn', ...db.env }));
    try {
      await buildLegacySchema(ds);
      const scanned = await ds.query(CHUNKS_SCAN_SQL);
      expect((await stamp(ds)).exitCode).toBe(0);
      expect((await migrate(ds)).lines).toContain('Applied AddChunkCounts1764000000004');
      await expectExact(ds);
      expect(await ds.query(CHUNKS_SQL)).toEqual(scanned);
      expect((await check(ds)).exitCode).toBe(0);
    } finally {
      await close();
      await db.drop();
    }
  });
});
