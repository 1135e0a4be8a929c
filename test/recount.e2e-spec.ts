import request from 'supertest';
import type { QueryRunner } from 'typeorm';
import { MISMATCHES_OF_DOCUMENTS_SQL, RECOUNT_DOCUMENTS_SQL } from '../src/embeddings/chunk.store.js';
import { LogCapture } from './support/log-capture.js';
import { openApiOperations } from './support/openapi.js';
import { eventually } from './support/private-postgres.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { TEST_TARGET } from './support/test-database.js';

const base = { documentType: 'law', category: 'dat-dai', sourceFile: '/data/laws/file.pdf' };
const collection = 'recount';

interface Counts {
  document_id: string;
  total_chunks: number | null;
  n: number;
}

/** Every document's total_chunks beside the number of chunks that name it. */
function countsByDocument(t: TestApp): Promise<Counts[]> {
  return t.dataSource.query<Counts[]>(
    `SELECT d.document_id, d.total_chunks, count(e.id)::int AS n
       FROM documents d LEFT JOIN langchain_pg_embedding e ON e.cmetadata->>'document_id' = d.document_id
      GROUP BY d.document_id, d.total_chunks ORDER BY 1`,
  );
}

/** Documents created through the API, each with `chunks` chunks: their total_chunks start right. */
async function createDocuments(t: TestApp, chunks: number, ...documentIds: string[]): Promise<void> {
  for (const documentId of documentIds) {
    await request(t.server)
      .post('/documents')
      .send({
        documentId,
        documentName: documentId,
        ...base,
        collection,
        chunks: Array.from({ length: chunks }, (_, i) => ({ content: `${documentId} ${i}`, embedding: [1, i] })),
      })
      .expect(201);
  }
}

/** A chunk written the way LangChain writes it: straight into the table, no document touched. */
async function writeChunkDirectly(t: TestApp, id: string, documentId: string): Promise<void> {
  await t.dataSource.query(
    `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
     SELECT $1::text, uuid, '[0,1]', $1::text, jsonb_build_object('document_id', $2::text)
       FROM langchain_pg_collection WHERE name = $3`,
    [id, documentId, collection],
  );
}

async function totalChunksMismatch(t: TestApp): Promise<number> {
  const res = await request(t.server).get('/stats').expect(200);
  return (res.body as { orphans: { totalChunksMismatch: number } }).orphans.totalChunksMismatch;
}

describe('POST /documents/recount', () => {
  let t: TestApp;
  const logs = new LogCapture();

  beforeEach(async () => {
    logs.lines.length = 0;
    logs.start();
    t = await startTestApp({ LOG_LEVEL: 'info' });
    await createDocuments(t, 2, 'right', 'gained', 'lost', 'overwritten', 'nulled');
    // Writers that bypass the service leave total_chunks as it was.
    await writeChunkDirectly(t, 'gained-extra', 'gained');
    await t.dataSource.query(`DELETE FROM langchain_pg_embedding WHERE cmetadata->>'document_id' = 'lost'`);
    await t.dataSource.query(`UPDATE documents SET total_chunks = 7 WHERE document_id = 'overwritten'`);
    await t.dataSource.query(`UPDATE documents SET total_chunks = NULL WHERE document_id = 'nulled'`);
  });
  afterEach(async () => {
    await t.close();
    logs.stop();
  });

  const wrong = [
    { documentId: 'gained', before: 2, after: 3 },
    { documentId: 'lost', before: 2, after: 0 },
    { documentId: 'nulled', before: null, after: 2 },
    { documentId: 'overwritten', before: 7, after: 2 },
  ];

  it('corrects every document whose total_chunks differs from its chunks, and lists them', async () => {
    expect(await totalChunksMismatch(t)).toBe(4);
    const res = await request(t.server).post('/documents/recount').send({}).expect(200);
    expect(res.body).toEqual({ dryRun: false, checked: 5, corrected: 4, documents: wrong });
    // Operators see what was corrected in the log.
    expect(logs.lines).toContainEqual(
      expect.objectContaining({
        context: 'DocumentsService',
        msg: 'Recount corrected total_chunks of 4 of 5 document(s)',
      }),
    );
    expect(await countsByDocument(t)).toEqual([
      { document_id: 'gained', total_chunks: 3, n: 3 },
      { document_id: 'lost', total_chunks: 0, n: 0 },
      { document_id: 'nulled', total_chunks: 2, n: 2 },
      { document_id: 'overwritten', total_chunks: 2, n: 2 },
      { document_id: 'right', total_chunks: 2, n: 2 },
    ]);
    expect(await totalChunksMismatch(t)).toBe(0);
    const got = await request(t.server).get('/documents/gained').expect(200);
    expect(got.body.totalChunks).toBe(3);

    // Nothing left to correct: a second run changes nothing. No body, as the OpenAPI document allows.
    const again = await request(t.server).post('/documents/recount').expect(200);
    expect(again.body).toEqual({ dryRun: false, checked: 5, corrected: 0, documents: [] });
    // Nor with a JSON Content-Type and no body, as client generators send (Fastify's 400 for an empty JSON body).
    const typed = await request(t.server).post('/documents/recount').set('Content-Type', 'application/json');
    expect([typed.status, typed.body]).toEqual([200, { dryRun: false, checked: 5, corrected: 0, documents: [] }]);
    // A body of another type is named as such, not as a missing field.
    for (const body of [[], 5]) {
      const wrong = await request(t.server)
        .post('/documents/recount')
        .set('Content-Type', 'application/json')
        .send(JSON.stringify(body));
      expect([wrong.status, wrong.body.message]).toEqual([400, ['Validation failed (object is expected)']]);
    }
    // A route whose body is required still names what is missing.
    const create = await request(t.server).post('/documents').set('Content-Type', 'application/json');
    expect(create.status).toBe(400);
    const operations = await openApiOperations(t.server);
    const recount = operations.find((o) => o.name === 'post /documents/recount');
    expect(recount?.operation.requestBody?.required).toBe(false);
  });

  it('dryRun reports the same differences and changes nothing', async () => {
    const before = await countsByDocument(t);
    const res = await request(t.server).post('/documents/recount').send({ dryRun: true }).expect(200);
    expect(res.body).toEqual({ dryRun: true, checked: 5, corrected: 4, documents: wrong });
    expect(await countsByDocument(t)).toEqual(before);
    expect(logs.lines.filter((l) => l.context === 'DocumentsService')).toEqual([]);
  });

  it('recounts only the documentIds given', async () => {
    const res = await request(t.server)
      .post('/documents/recount')
      .send({ documentIds: ['lost', 'right', 'lost'] })
      .expect(200);
    expect(res.body).toEqual({ dryRun: false, checked: 2, corrected: 1, documents: [wrong[1]] });
    const counts = await countsByDocument(t);
    expect(counts.find((c) => c.document_id === 'lost')).toEqual({ document_id: 'lost', total_chunks: 0, n: 0 });
    expect(counts.find((c) => c.document_id === 'gained')).toEqual({ document_id: 'gained', total_chunks: 2, n: 3 });
  });

  it('takes total_chunks NULL for 0, as /stats does: a document without chunks saying NULL is no difference', async () => {
    await createDocuments(t, 0, 'empty-null');
    await t.dataSource.query(`UPDATE documents SET total_chunks = NULL WHERE document_id = 'empty-null'`);
    expect(await totalChunksMismatch(t)).toBe(4);
    for (const body of [{ dryRun: true }, { documentIds: ['empty-null'] }]) {
      const res = await request(t.server).post('/documents/recount').send(body).expect(200);
      expect(
        (res.body as { documents: Array<{ documentId: string }> }).documents.map((d) => d.documentId),
      ).not.toContain('empty-null');
    }
    await request(t.server).post('/documents/recount').send({}).expect(200);
    const counts = await countsByDocument(t);
    expect(counts.find((c) => c.document_id === 'empty-null')).toEqual({
      document_id: 'empty-null',
      total_chunks: null,
      n: 0,
    });
    expect(await totalChunksMismatch(t)).toBe(0);
  });

  it('answers 404 naming an unknown documentId, and changes none of the others', async () => {
    const before = await countsByDocument(t);
    const res = await request(t.server)
      .post('/documents/recount')
      .send({ documentIds: ['lost', 'no-such-document', 'gained'] })
      .expect(404);
    expect(res.body.message).toBe('Document "no-such-document" not found');
    expect(await countsByDocument(t)).toEqual(before);
  });

  it('corrects more documents than one transaction locks, and lists the first 1000', async () => {
    // 1,200 documents that claim a chunk they do not have: three batches of at most 500.
    await t.dataSource.query(
      `INSERT INTO documents (document_id, document_name, document_type, category, source_file, file_name, total_chunks)
       SELECT 'bulk-' || lpad(i::text, 4, '0'), 'bulk', 'law', 'dat-dai', '/x', 'x', 1 FROM generate_series(1, 1200) i`,
    );
    const res = await request(t.server).post('/documents/recount').expect(200);
    const body = res.body as { checked: number; corrected: number; documents: Array<{ documentId: string }> };
    expect(body.checked).toBe(1205);
    expect(body.corrected).toBe(1204);
    expect(body.documents).toHaveLength(1000);
    expect(body.documents[0]).toEqual({ documentId: 'bulk-0001', before: 1, after: 0 });
    expect(body.documents[999]).toEqual({ documentId: 'bulk-1000', before: 1, after: 0 });
    expect(await totalChunksMismatch(t)).toBe(0);
  });
});

describe('POST /documents/recount: bad requests and the OpenAPI document', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
    await createDocuments(t, 1, 'one');
    await t.dataSource.query(`UPDATE documents SET total_chunks = 3 WHERE document_id = 'one'`);
  });
  afterAll(async () => {
    await t.close();
  });

  it.each([
    ['a string for documentIds', { documentIds: 'lost' }, 'documentIds must be an array'],
    ['no documentIds', { documentIds: [] }, 'documentIds must contain at least 1 elements'],
    [
      'an empty documentId',
      { documentIds: [''] },
      'each value in documentIds must be longer than or equal to 1 characters',
    ],
    [
      'a NUL in a documentId',
      { documentIds: ['a\u0000b'] },
      'each value in documentIds must not contain NUL characters',
    ],
    ['a number for a documentId', { documentIds: [42] }, 'each value in documentIds must be a string'],
    [
      '1001 documentIds',
      { documentIds: Array.from({ length: 1001 }, (_, i) => `d-${i}`) },
      'documentIds must contain no more than 1000 elements',
    ],
    ['a string for dryRun', { dryRun: 'yes' }, 'dryRun must be a boolean value'],
    ['an unknown property', { collection }, 'property collection should not exist'],
  ])('answers 400 for %s, naming the problem, and changes nothing', async (_case, body, message) => {
    const before = await countsByDocument(t);
    const res = await request(t.server).post('/documents/recount').send(body).expect(400);
    expect(res.body.message).toEqual(expect.arrayContaining([message]));
    expect(await countsByDocument(t)).toEqual(before);
  });

  it('is in the OpenAPI document with its 200, 400 and 404', async () => {
    const res = await request(t.server).get('/docs-json').expect(200);
    const op = (res.body as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }).paths[
      '/documents/recount'
    ].post;
    expect(Object.keys(op.responses).sort()).toEqual(expect.arrayContaining(['200', '400', '404']));
  });
});

(TEST_TARGET === 'postgres' ? describe : describe.skip)('POST /documents/recount beside a writer (server only)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
    await createDocuments(t, 2, 'raced');
  });
  afterAll(async () => {
    await t.close();
  });

  it('waits for a writer holding the document and keeps the count that writer committed', async () => {
    // A wrong count, so the recount's scan picks the document.
    await t.dataSource.query(`UPDATE documents SET total_chunks = 9 WHERE document_id = 'raced'`);
    // A writer that locks the document as the service's writers do, adds three chunks and counts them.
    const writer: QueryRunner = t.dataSource.createQueryRunner();
    await writer.connect();
    await writer.startTransaction();
    const [{ pid }] = (await writer.query(`SELECT pg_backend_pid() AS pid`)) as Array<{ pid: number }>;
    await writer.query(`SELECT 1 FROM documents WHERE document_id = 'raced' FOR UPDATE`);
    for (const id of ['raced-x', 'raced-y', 'raced-z']) {
      await writer.query(
        `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
         SELECT $1::text, uuid, '[0,1]', $1::text, '{"document_id": "raced"}' FROM langchain_pg_collection WHERE name = $2`,
        [id, collection],
      );
    }
    await writer.query(`UPDATE documents SET total_chunks = 5 WHERE document_id = 'raced'`);

    const recount = request(t.server)
      .post('/documents/recount')
      .then((r) => r);
    const blocked = await eventually(async () => {
      const [{ n }] = await t.dataSource.query<Array<{ n: number }>>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND $1::int = ANY(pg_blocking_pids(pid))`,
        [pid],
      );
      return n > 0;
    });
    await writer.commitTransaction();
    await writer.release();
    expect(blocked).toBe(true);

    // The scan saw 9 against 2 chunks; the recount, made once it held the lock, saw 5 against 5.
    const res = await recount;
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ dryRun: false, checked: 1, corrected: 0, documents: [] });
    expect(await countsByDocument(t)).toEqual([{ document_id: 'raced', total_chunks: 5, n: 5 }]);
  });
});

describe('the recount by document', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
    // No statistics on the chunk table, as while a bulk load outruns autovacuum's analyze.
    await t.dataSource.query(`ALTER TABLE langchain_pg_embedding SET (autovacuum_enabled = false)`);
    await createDocuments(t, 1, 'seed');
    await t.dataSource.query(
      `INSERT INTO documents (document_id, document_name, category, document_type, source_file, file_name, total_chunks)
       SELECT 'bulk-' || g, 'bulk', 'c', 'law', 's', 'f', 50 FROM generate_series(0, 399) g`,
    );
    await t.dataSource.query(
      `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
       SELECT 'bulk-chunk-' || g, c.uuid, '[0,1]', 'text ' || g, jsonb_build_object('document_id', 'bulk-' || (g / 50))
         FROM langchain_pg_collection c, generate_series(0, 19999) g WHERE c.name = $1`,
      [collection],
    );
  });
  afterAll(() => t.close());

  it('counts each document by index lookups, also on a table that has no statistics yet', async () => {
    const ids = Array.from({ length: 10 }, (_, i) => `bulk-${i}`);
    // The recount after every write, and POST /documents/recount with documentIds.
    for (const sql of [RECOUNT_DOCUMENTS_SQL, MISMATCHES_OF_DOCUMENTS_SQL]) {
      const rows = await t.dataSource.query<Array<Record<string, string>>>(`EXPLAIN ${sql}`, [ids]);
      const plan = rows.map((r) => Object.values(r)[0]).join('\n');
      // A hash join over the whole table took 90–260 ms per ingest batch at 36,000 chunks (PERFORMANCE.md).
      expect(plan).toMatch(/idx_embedding_document_id/);
      expect(plan).not.toMatch(/Seq Scan on langchain_pg_embedding/);
    }

    // And the count is right: a batch for bulk-3 moves its total from 50 to 52.
    await request(t.server)
      .post('/embeddings')
      .send({
        collection,
        items: [0, 1].map((i) => ({
          id: `bulk-3-new-${i}`,
          content: `new ${i}`,
          embedding: [1, i],
          metadata: { document_id: 'bulk-3' },
        })),
      })
      .expect(201);
    expect((await request(t.server).get('/documents/bulk-3').expect(200)).body.totalChunks).toBe(52);
  });
});
