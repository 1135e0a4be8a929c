import request from 'supertest';
import { MIGRATIONS } from '../migrations/index.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { TEST_TARGET } from './support/test-database.js';

const DOCS = '6a1f0c52-0d7e-4c1b-9a4e-0d9c8e1f0001';
const ARCHIVE = '6a1f0c52-0d7e-4c1b-9a4e-0d9c8e1f0002';
const EMPTY = '6a1f0c52-0d7e-4c1b-9a4e-0d9c8e1f0003';

/** The migrations this build ships, oldest first (InitialSchema1764000000000 is the first). */
const NAMES = MIGRATIONS.map((M) => new M().name);
const FULLY_MIGRATED = { appliedMigrations: NAMES.length, pendingMigrations: 0, lastMigration: NAMES.at(-1) };

/** The data set, written with plain SQL as another writer (the Python service) would leave it. */
async function seed(t: TestApp): Promise<void> {
  await t.dataSource.query(
    `INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES ($1, 'docs', '{}'), ($2, 'archive', '{}'), ($3, 'empty', NULL)`,
    [DOCS, ARCHIVE, EMPTY],
  );
  await t.dataSource.query(
    `INSERT INTO documents (document_id, document_name, category, document_type, source_file, file_name, total_chunks, status)
     VALUES ('law-1', 'Luật Thuế thu nhập cá nhân', 'thuế', 'law', 's', 'f', 2, 'active'),
            ('law-2', 'Bộ luật Lao động', 'lao động', 'law', 's', 'f', 3, 'inactive'),
            ('dec-1', 'Nghị định 126/2020/NĐ-CP', 'thuế', 'decree', 's', 'f', NULL, 'active'),
            ('guide-1', 'Hướng dẫn quyết toán', 'lao động', 'guide', 's', 'f', 1, NULL),
            ('guide-2', 'Hướng dẫn đăng ký', 'thuế', 'guide', 's', 'f', NULL, 'processing')`,
  );
  const chunk = `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata) VALUES ($1, $2, $3, $4, $5)`;
  const rows: Array<[string, string, string | null, string | null, string | null]> = [
    ['c1', DOCS, '[1,2,3]', 'Điều 1. Phạm vi điều chỉnh', '{"document_id":"law-1","chunk_index":0}'],
    ['c2', DOCS, '[1,2,3]', 'Điều 2. Đối tượng áp dụng', '{"document_id":"law-1","chunk_index":1}'],
    ['c3', DOCS, '[4,5,6]', 'Điều 3. Giải thích từ ngữ', '{"document_id":"law-2"}'],
    ['c4', ARCHIVE, '[1,2,3,4,5]', 'Chương II', '{"document_id":"law-2"}'],
    ['c5', DOCS, '[7,8,9]', null, '{"document_id":"guide-1"}'],
    ['c6', ARCHIVE, '[5,4,3,2,1]', 'Mẫu tờ khai', '{"document_id":"guide-2"}'],
    // Orphans: a document_id that names no document, no document_id key, no metadata at all.
    ['c7', ARCHIVE, '[0,0,0,0,1]', 'Văn bản đã xoá', '{"document_id":"ghost"}'],
    ['c8', DOCS, null, 'Không có vector', '{"chunk_index":7}'],
    ['c9', DOCS, '[0,0,1]', 'Không có metadata', null],
  ];
  for (const row of rows) await t.dataSource.query(chunk, row);
}

describe(`GET /stats (${TEST_TARGET})`, () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('reports zeros and empty maps on an empty database', async () => {
    const res = await request(t.server).get('/stats').expect(200);
    expect(res.body.documents).toEqual({ total: 0, byType: {}, byCategory: {}, byStatus: {} });
    expect(res.body.embeddings).toEqual({ total: 0, byCollection: {}, dimensions: {} });
    expect(res.body.collections).toBe(0);
    expect(res.body.orphans).toEqual({ chunksWithoutDocument: 0, documentsWithoutChunks: 0, totalChunksMismatch: 0 });
  });

  it('reports the schema and the database it runs on', async () => {
    const res = await request(t.server).get('/stats').expect(200);
    expect(NAMES[0]).toBe('InitialSchema1764000000000');
    expect(res.body.schema).toEqual(FULLY_MIGRATED);
    expect(res.body.database.mode).toBe(TEST_TARGET === 'postgres' ? 'server' : 'embedded');
    expect(res.body.database.pgvectorVersion).toMatch(/^0\.\d+/);
    const [{ server_version }] = await t.dataSource.query<Array<{ server_version: string }>>(`SHOW server_version`);
    expect(res.body.database.serverVersion).toBe(server_version);
  });

  it('counts every pending migration when the migrations table is absent', async () => {
    await t.dataSource.query(`ALTER TABLE migrations RENAME TO migrations_hidden_by_stats_test`);
    try {
      const res = await request(t.server).get('/stats').expect(200);
      expect(res.body.schema).toEqual({ appliedMigrations: 0, pendingMigrations: NAMES.length, lastMigration: null });
    } finally {
      await t.dataSource.query(`ALTER TABLE migrations_hidden_by_stats_test RENAME TO migrations`);
    }
  });

  it('counts a shipped migration missing from the migrations table as pending', async () => {
    const [row] = await t.dataSource.query<Array<{ timestamp: string; name: string }>>(
      `SELECT "timestamp", name FROM migrations WHERE name = $1`,
      [NAMES.at(-1)],
    );
    await t.dataSource.query(`DELETE FROM migrations WHERE name = $1`, [row.name]);
    try {
      const res = await request(t.server).get('/stats').expect(200);
      expect(res.body.schema).toEqual({
        appliedMigrations: NAMES.length - 1,
        pendingMigrations: 1,
        lastMigration: NAMES.at(-2) ?? null,
      });
    } finally {
      await t.dataSource.query(`INSERT INTO migrations ("timestamp", name) VALUES ($1, $2)`, [row.timestamp, row.name]);
    }
  });

  it('reports exact figures: per type, category, status, collection, dimension, and the orphans', async () => {
    await seed(t);
    const res = await request(t.server).get('/stats').expect(200);
    expect(res.body).toEqual({
      documents: {
        total: 5,
        byType: { law: 2, decree: 1, guide: 2 },
        byCategory: { thuế: 3, 'lao động': 2 },
        byStatus: { active: 2, inactive: 1, processing: 1, '(none)': 1 },
      },
      embeddings: {
        total: 9,
        byCollection: { docs: 6, archive: 3, empty: 0 },
        dimensions: { docs: 3, archive: 5, empty: null },
      },
      collections: 3,
      orphans: {
        // c7 (ghost), c8 (no document_id), c9 (no metadata)
        chunksWithoutDocument: 3,
        // dec-1
        documentsWithoutChunks: 1,
        // law-2 says 3 but has 2; guide-2 says NULL (0) but has 1. dec-1 says NULL and has 0: consistent.
        totalChunksMismatch: 2,
      },
      schema: FULLY_MIGRATED,
      database: {
        mode: TEST_TARGET === 'postgres' ? 'server' : 'embedded',
        serverVersion: expect.any(String),
        pgvectorVersion: expect.stringMatching(/^0\.\d+/),
      },
    });
  });

  it('gives the same figures by scanning the chunks when chunk_counts is absent (AddChunkCounts not applied)', async () => {
    const fromSummary = await request(t.server).get('/stats').expect(200);
    await t.dataSource.query(`ALTER TABLE chunk_counts RENAME TO chunk_counts_hidden_by_stats_test`);
    try {
      const scanned = await request(t.server).get('/stats').expect(200);
      expect(scanned.body).toEqual(fromSummary.body);
    } finally {
      await t.dataSource.query(`ALTER TABLE chunk_counts_hidden_by_stats_test RENAME TO chunk_counts`);
    }
  });

  it('follows later writes: a recount and a deleted collection change the figures', async () => {
    await t.dataSource.query(`UPDATE documents SET total_chunks = 2 WHERE document_id = 'law-2'`);
    await t.dataSource.query(`DELETE FROM langchain_pg_collection WHERE name = 'archive'`);
    const res = await request(t.server).get('/stats').expect(200);
    expect(res.body.embeddings).toEqual({
      total: 6,
      byCollection: { docs: 6, empty: 0 },
      dimensions: { docs: 3, empty: null },
    });
    expect(res.body.collections).toBe(2);
    // law-2 now has 1 chunk (says 2); guide-2 lost its only chunk (says NULL = 0): no mismatch, no chunks.
    expect(res.body.orphans).toEqual({ chunksWithoutDocument: 2, documentsWithoutChunks: 2, totalChunksMismatch: 1 });
  });

  it('adds a stored status spelled like the NULL key to the NULL ones: every map still sums to the total', async () => {
    await t.dataSource.query(
      `INSERT INTO documents (document_id, document_name, category, document_type, source_file, file_name, total_chunks, status)
       VALUES ('odd-1', 'Odd', 'thuế', 'law', 's', 'f', NULL, '(none)')`,
    );
    const { documents } = (await request(t.server).get('/stats').expect(200)).body as {
      documents: { total: number; byStatus: Record<string, number>; byType: Record<string, number> };
    };
    expect(documents.byStatus['(none)']).toBe(2);
    const sum = (m: Record<string, number>): number => Object.values(m).reduce((a, b) => a + b, 0);
    expect([sum(documents.byStatus), sum(documents.byType)]).toEqual([documents.total, documents.total]);
    await t.dataSource.query(`DELETE FROM documents WHERE document_id = 'odd-1'`);
  });

  it('documents the response in OpenAPI', async () => {
    const res = await request(t.server).get('/docs-json').expect(200);
    const op = res.body.paths['/stats'].get;
    expect(op.responses['200'].content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/StatsResponseDto',
    });
    const schemas = res.body.components.schemas;
    expect(Object.keys(schemas.StatsResponseDto.properties).sort()).toEqual(
      ['collections', 'database', 'documents', 'embeddings', 'orphans', 'schema'].sort(),
    );
    expect(schemas.OrphansStatsDto.properties.chunksWithoutDocument.example).toBe(3);
    expect(schemas.EmbeddingsStatsDto.properties.dimensions.example).toEqual({ docs: 384, archive: 1536, empty: null });
  });
});
