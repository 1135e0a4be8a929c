import request from 'supertest';
import { startTestApp, type TestApp } from './support/test-app.js';

const base = { documentType: 'law', category: 'dat-dai', sourceFile: '/data/laws/file.pdf' };

describe('Concurrent document and chunk writes', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
    for (let i = 0; i < 12; i++) {
      await request(t.server)
        .post('/documents')
        .send({
          documentId: `seed-${i}`,
          documentName: `Seed ${i}`,
          ...base,
          chunks: [{ content: `seed ${i} a` }, { content: `seed ${i} b` }],
        })
        .expect(201);
    }
  });
  afterAll(async () => {
    await t.close();
  });

  it('keeps every total_chunks equal to the chunk count after 30 mixed concurrent writes, without a 5xx', async () => {
    const statuses = ['inactive', 'processing', 'expired', 'active'] as const;
    const ops: Array<() => request.Test> = [];
    for (let i = 0; i < 30; i++) {
      const seed = `seed-${i % 12}`;
      switch (i % 5) {
        case 0: // a new document with chunks
          ops.push(() =>
            request(t.server)
              .post('/documents')
              .send({
                documentId: `new-${i}`,
                documentName: `New ${i}`,
                ...base,
                chunks: Array.from({ length: 1 + (i % 4) }, (_, k) => ({ content: `new ${i} ${k}` })),
              }),
          );
          break;
        case 1: // status change, written into every chunk
        case 3:
          ops.push(() =>
            request(t.server)
              .patch(`/documents/${seed}`)
              .send({ status: statuses[i % statuses.length] }),
          );
          break;
        case 2: // chunks added to an existing document through the embeddings API
          ops.push(() =>
            request(t.server)
              .post('/embeddings')
              .send({
                items: [
                  { content: `extra ${i} a`, metadata: { document_id: seed } },
                  { content: `extra ${i} b`, metadata: { document_id: seed } },
                ],
              }),
          );
          break;
        case 4: // delete (the same document may be deleted twice: 404, never 5xx)
          ops.push(() => request(t.server).delete(`/documents/seed-${(i * 7) % 12}`));
          break;
      }
    }
    const responses = await Promise.all(ops.map((op) => op()));
    const codes = responses.map((r) => r.status);
    expect(codes.filter((c) => c >= 500)).toEqual([]);
    expect(codes.every((c) => [200, 201, 204, 404].includes(c))).toBe(true);
    expect(codes.filter((c) => c === 201).length).toBeGreaterThanOrEqual(12);

    const mismatched = await t.dataSource.query<Array<{ document_id: string; total_chunks: number; n: number }>>(
      `SELECT d.document_id, d.total_chunks, count(e.id)::int AS n
         FROM documents d
         LEFT JOIN langchain_pg_embedding e ON e.cmetadata->>'document_id' = d.document_id
        GROUP BY d.document_id, d.total_chunks
       HAVING d.total_chunks IS DISTINCT FROM count(e.id)::int`,
    );
    expect(mismatched).toEqual([]);

    // Every chunk of a surviving document carries the document's current status.
    const stale = await t.dataSource.query<Array<{ id: string }>>(
      `SELECT e.id FROM langchain_pg_embedding e
         JOIN documents d ON d.document_id = e.cmetadata->>'document_id'
        WHERE e.cmetadata ? 'status' AND e.cmetadata->>'status' IS DISTINCT FROM d.status`,
    );
    expect(stale).toEqual([]);
  });
  it('counts chunks that arrive for a document while its create is still in flight', async () => {
    for (let round = 0; round < 15; round++) {
      const documentId = `racing-${round}`;
      const create = request(t.server)
        .post('/documents')
        .send({
          documentId,
          documentName: documentId,
          ...base,
          chunks: Array.from({ length: 40 }, (_, k) => ({ content: `racing ${round} ${k}` })),
        });
      const added = request(t.server)
        .post('/embeddings')
        .send({
          items: [1, 2, 3].map((k) => ({ content: `late ${round} ${k}`, metadata: { document_id: documentId } })),
        });
      const [created, embedded] = await Promise.all([create, added]);
      expect([created.status, embedded.status]).toEqual([201, 201]);
    }
    const rows = await t.dataSource.query<Array<{ document_id: string; total_chunks: number; n: number }>>(
      `SELECT d.document_id, d.total_chunks, count(e.id)::int AS n
         FROM documents d LEFT JOIN langchain_pg_embedding e ON e.cmetadata->>'document_id' = d.document_id
        WHERE d.document_id LIKE 'racing-%' GROUP BY d.document_id, d.total_chunks ORDER BY 1`,
    );
    expect(rows).toHaveLength(15);
    for (const row of rows) expect(row).toEqual({ document_id: row.document_id, total_chunks: 43, n: 43 });
  });

  it('lets exactly one of several concurrent creates of one documentId win; the others get 409', async () => {
    const responses = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        request(t.server)
          .post('/documents')
          .send({ documentId: 'contested', documentName: `Try ${i}`, ...base, chunks: [{ content: `try ${i}` }] }),
      ),
    );
    const codes = responses.map((r) => r.status).sort();
    expect(codes).toEqual([201, 409, 409, 409, 409, 409]);
    for (const res of responses.filter((r) => r.status === 409)) {
      expect(res.body.message).toBe('Document "contested" already exists');
    }
    const [row] = await t.dataSource.query<Array<{ total_chunks: number; n: number }>>(
      `SELECT d.total_chunks,
              (SELECT count(*)::int FROM langchain_pg_embedding e WHERE e.cmetadata->>'document_id' = 'contested') AS n
         FROM documents d WHERE d.document_id = 'contested'`,
    );
    expect(row).toEqual({ total_chunks: 1, n: 1 });
  });
});
