import request from 'supertest';
import { startTestApp, type TestApp } from './support/test-app.js';

const LEGACY = '7b2e0c52-0d7e-4c1b-9a4e-0d9c8e1f0001';

async function totalChunks(t: TestApp, documentId: string): Promise<number> {
  const [row] = await t.dataSource.query<Array<{ total_chunks: number }>>(
    `SELECT total_chunks FROM documents WHERE document_id = $1`,
    [documentId],
  );
  return row.total_chunks;
}

describe('Collections API', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
    // A collection written by another writer (LangChain), with a chunk whose text is NULL.
    await t.dataSource.query(
      `INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES ($1, 'legacy', NULL)`,
      [LEGACY],
    );
    await t.dataSource.query(
      `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
       VALUES ('l1', $1, '[1,2,3]', NULL, '{}'), ('l2', $1, '[3,2,1]', 'Điều 2', NULL)`,
      [LEGACY],
    );
  });
  afterAll(async () => {
    await t.close();
  });

  it('creates a collection recording the provider model and dimension', async () => {
    const res = await request(t.server).post('/collections').send({ name: 'luật-thuế' }).expect(201);
    expect(res.body).toEqual({
      uuid: expect.stringMatching(/^[0-9a-f-]{36}$/),
      name: 'luật-thuế',
      metadata: { embedding_model: 'local-hash-ngram-384', dimensions: 384 },
      chunkCount: 0,
      dimensions: null,
    });
    const [row] = await t.dataSource.query<Array<{ uuid: string }>>(
      `SELECT uuid FROM langchain_pg_collection WHERE name = 'luật-thuế'`,
    );
    expect(row.uuid).toBe(res.body.uuid);
  });

  it('keeps given metadata over the defaults', async () => {
    const res = await request(t.server)
      .post('/collections')
      .send({ name: 'custom', metadata: { embedding_model: 'bge-m3', dimensions: 1024, owner: 'tax' } })
      .expect(201);
    expect(res.body.metadata).toEqual({ embedding_model: 'bge-m3', dimensions: 1024, owner: 'tax' });
  });

  it('refuses a duplicate name with 409 and leaves the existing one alone', async () => {
    const res = await request(t.server)
      .post('/collections')
      .send({ name: 'legacy', metadata: { x: 1 } })
      .expect(409);
    expect(res.body).toEqual({ statusCode: 409, message: 'Collection "legacy" already exists', error: 'Conflict' });
    const [row] = await t.dataSource.query<Array<{ cmetadata: unknown }>>(
      `SELECT cmetadata FROM langchain_pg_collection WHERE name = 'legacy'`,
    );
    expect(row.cmetadata).toBeNull();
  });

  it.each([
    [{}, 'name is required'],
    [{ name: ' \t ' }, 'name must be 1-500 characters, not all whitespace'],
    [{ name: '' }, 'name must be 1-500 characters, not all whitespace'],
    [{ name: 'x'.repeat(501) }, 'name must be 1-500 characters, not all whitespace'],
    [{ name: 5 }, 'name must be a string'],
    [{ name: 'ok', metadata: [1, 2] }, 'metadata must be an object'],
    [{ name: 'ok', metadata: 'x' }, 'metadata must be an object'],
    [{ name: 'ok', extra: 1 }, 'property extra should not exist'],
  ])('rejects %j with 400', async (body, message) => {
    const res = await request(t.server).post('/collections').send(body).expect(400);
    expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
    expect(res.body.message).toContain(message);
    const [{ n }] = await t.dataSource.query<Array<{ n: number }>>(
      `SELECT count(*)::int AS n FROM langchain_pg_collection WHERE name = 'ok'`,
    );
    expect(n).toBe(0);
  });

  it('lists collections with chunk counts and dimensions', async () => {
    const res = await request(t.server).get('/collections').expect(200);
    expect(res.body).toEqual(
      expect.arrayContaining([
        { uuid: LEGACY, name: 'legacy', metadata: null, chunkCount: 2, dimensions: 3 },
        expect.objectContaining({ name: 'luật-thuế', chunkCount: 0, dimensions: null }),
        expect.objectContaining({ name: 'custom', chunkCount: 0, dimensions: null }),
      ]),
    );
    const names = (res.body as Array<{ name: string }>).map((c) => c.name);
    expect(names).toEqual([...names].sort());
  });

  it('reads the counts from chunk_counts, and from the chunks while chunk_counts is absent (AddChunkCounts not applied)', async () => {
    const listed = async () => {
      const res = await request(t.server).get('/collections').expect(200);
      return (res.body as Array<{ name: string }>).find((c) => c.name === 'legacy');
    };
    const one = async () => (await request(t.server).get('/collections/legacy').expect(200)).body as unknown;
    const exact = { uuid: LEGACY, name: 'legacy', metadata: null, chunkCount: 2, dimensions: 3 };
    // Which one it read shows when the summary is made to disagree with the chunks: nothing but the
    // triggers writes chunk_counts, so a user never sees this.
    await t.dataSource.query(`UPDATE chunk_counts SET n = n + 1000 WHERE collection_id = $1`, [LEGACY]);
    try {
      expect(await listed()).toEqual({ ...exact, chunkCount: 1002 });
      expect(await one()).toEqual({ ...exact, chunkCount: 1002 });
      await t.dataSource.query(`ALTER TABLE chunk_counts RENAME TO chunk_counts_hidden_by_collections_test`);
      try {
        // The first statement without it fails (42P01) and is answered by the scan; so are the next.
        expect(await listed()).toEqual(exact);
        expect(await one()).toEqual(exact);
      } finally {
        await t.dataSource.query(`ALTER TABLE chunk_counts_hidden_by_collections_test RENAME TO chunk_counts`);
      }
      expect(await listed()).toEqual({ ...exact, chunkCount: 1002 });
    } finally {
      await t.dataSource.query(`UPDATE chunk_counts SET n = n - 1000 WHERE collection_id = $1`, [LEGACY]);
    }
    expect(await one()).toEqual(exact);
  });

  it('gets one collection by name, 404 when missing', async () => {
    const res = await request(t.server).get('/collections/legacy').expect(200);
    expect(res.body).toEqual({ uuid: LEGACY, name: 'legacy', metadata: null, chunkCount: 2, dimensions: 3 });
    const encoded = await request(t.server)
      .get(`/collections/${encodeURIComponent('luật-thuế')}`)
      .expect(200);
    expect(encoded.body.name).toBe('luật-thuế');
    const missing = await request(t.server).get('/collections/nope').expect(404);
    expect(missing.body).toEqual({ statusCode: 404, message: 'Collection "nope" not found', error: 'Not Found' });
  });

  it('deletes a collection, cascading its chunks and recounting the documents that lost chunks', async () => {
    await t.dataSource.query(
      `INSERT INTO documents (document_id, document_name, category, document_type, source_file, file_name, total_chunks)
       VALUES ('law-1', 'Luật Thuế thu nhập cá nhân', 'thuế', 'law', 's', 'f', 0),
              ('law-2', 'Bộ luật Lao động', 'lao động', 'law', 's', 'f', 0)`,
    );
    await request(t.server)
      .post('/embeddings')
      .send({
        collection: 'doomed',
        items: [
          { id: 'd1', content: 'Điều 1', metadata: { document_id: 'law-1' } },
          { id: 'd2', content: 'Điều 2', metadata: { document_id: 'law-1' } },
          { id: 'd3', content: 'Điều 3', metadata: { document_id: 'law-2' } },
        ],
      })
      .expect(201);
    await request(t.server)
      .post('/embeddings')
      .send({ collection: 'kept', items: [{ id: 'k1', content: 'Điều 9', metadata: { document_id: 'law-1' } }] })
      .expect(201);
    expect(await totalChunks(t, 'law-1')).toBe(3);
    expect(await totalChunks(t, 'law-2')).toBe(1);

    await request(t.server).delete('/collections/doomed').expect(204);

    expect(await totalChunks(t, 'law-1')).toBe(1);
    expect(await totalChunks(t, 'law-2')).toBe(0);
    const chunks = await t.dataSource.query<Array<{ id: string }>>(
      `SELECT id FROM langchain_pg_embedding WHERE id IN ('d1', 'd2', 'd3', 'k1') ORDER BY id`,
    );
    expect(chunks).toEqual([{ id: 'k1' }]);
    await request(t.server).get('/collections/doomed').expect(404);
    await request(t.server).get('/collections/kept').expect(200);
  });

  it('deletes a collection whose chunks belong to more documents than the lock table holds', async () => {
    // 100,000 documents: more than a lock per document fits in the server's lock table
    // (max_locks_per_transaction × max_connections, nominally; 19,200 on the CI server, where 60,000 locks fail).
    await t.dataSource.query(
      `INSERT INTO documents (document_id, document_name, category, document_type, source_file, file_name, total_chunks)
       VALUES ('crowd-0', 'Nghị định', 'c', 'decree', 's', 'f', 0)`,
    );
    await request(t.server)
      .post('/embeddings')
      .send({ collection: 'crowded', items: [{ id: 'crowded-0', content: 'x', metadata: { document_id: 'crowd-0' } }] })
      .expect(201);
    await t.dataSource.query(
      `INSERT INTO langchain_pg_embedding (id, collection_id, document, cmetadata)
       SELECT 'crowded-' || i, c.uuid, 'x', jsonb_build_object('document_id', 'crowd-' || i)
         FROM langchain_pg_collection c, generate_series(1, 100000) AS i WHERE c.name = 'crowded'`,
    );
    expect(await totalChunks(t, 'crowd-0')).toBe(1);

    await request(t.server).delete('/collections/crowded').expect(204);

    expect(await totalChunks(t, 'crowd-0')).toBe(0);
    const [left] = await t.dataSource.query<Array<{ n: number }>>(
      `SELECT count(*)::int AS n FROM langchain_pg_embedding WHERE id LIKE 'crowded-%'`,
    );
    expect(left.n).toBe(0);
  });

  it('reaches a collection name of the longest kind: 500 astral characters', async () => {
    const name = '😀'.repeat(500);
    const path = `/collections/${encodeURIComponent(name)}`;
    await request(t.server).post('/collections').send({ name }).expect(201);
    expect((await request(t.server).get(path).expect(200)).body.name).toBe(name);
    await request(t.server).delete(path).expect(204);
    await request(t.server).get(path).expect(404);
  });

  it('answers 404 when deleting a missing collection', async () => {
    const res = await request(t.server).delete('/collections/nope').expect(404);
    expect(res.body).toEqual({ statusCode: 404, message: 'Collection "nope" not found', error: 'Not Found' });
  });
});

describe('Collections and embeddings OpenAPI', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('documents every route with its responses', async () => {
    const res = await request(t.server).get('/docs-json').expect(200);
    const paths = res.body.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>;
    // 401 and 403 (API keys), 429 (rate limit) and 503 (database) are on every operation, 413 and 415
    // on every body; test/auth.e2e-spec.ts, test/limits.e2e-spec.ts and test/app.e2e-spec.ts cover them.
    const crossCutting = ['401', '403', '413', '415', '429', '503'];
    const codes = (path: string, method: string) =>
      Object.keys(paths[path][method].responses)
        .filter((code) => !crossCutting.includes(code))
        .sort();
    // The 400 of a query parameter, which it takes none of (useUnknownQueryCheck; so every operation below).
    expect(codes('/collections', 'get')).toEqual(['200', '400']);
    expect(codes('/collections', 'post')).toEqual(['201', '400', '409']);
    // The 400 of a path parameter holding a NUL character.
    expect(codes('/collections/{name}', 'get')).toEqual(['200', '400', '404']);
    expect(codes('/collections/{name}', 'delete')).toEqual(['204', '400', '404', '409']);
    // 502 and 504: the embedding provider, for items without a vector.
    expect(codes('/embeddings', 'post')).toEqual(['201', '400', '409', '422', '502', '504']);
    expect(codes('/embeddings/{id}', 'get')).toEqual(['200', '400', '404']);
    expect(codes('/embeddings/{id}', 'delete')).toEqual(['204', '400', '404', '409']);
    expect(codes('/embeddings/delete', 'post')).toEqual(['200', '400', '409']);
    // The length and form rules of names and ids, as a client generator reads them.
    const schemas = res.body.components.schemas as Record<string, { properties: Record<string, unknown> }>;
    expect(schemas.CreateCollectionDto.properties.name).toMatchObject({ minLength: 1, maxLength: 500 });
    expect(schemas.CreateEmbeddingsDto.properties.collection).toMatchObject({ minLength: 1, maxLength: 500 });
    expect(schemas.EmbeddingItemDto.properties.id).toMatchObject({ minLength: 1, maxLength: 255 });
    expect(schemas.CreateDocumentDto.properties.documentId).toMatchObject({ pattern: '^(?!\\.{1,2}$)\\S{1,255}$' });
  });
});
