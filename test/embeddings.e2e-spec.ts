import { isDeepStrictEqual } from 'node:util';
import request from 'supertest';
import { createValidationPipe } from '../src/common/validation.js';
import { CreateEmbeddingsDto } from '../src/embeddings/dto/embedding.dto.js';
import { MAX_JSON_DEPTH } from '../src/limits/json-body.js';
import { float32Base64, float32Values } from './support/float32-base64.js';
import { eventually } from './support/private-postgres.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { TEST_TARGET } from './support/test-database.js';

/** Every chunk row, exactly: a change anywhere changes the checksum. */
async function snapshot(
  t: TestApp,
): Promise<{ chunks: number; collections: number; documents: string; checksum: string | null }> {
  const [row] = await t.dataSource.query<
    Array<{ chunks: number; collections: number; documents: string; checksum: string | null }>
  >(`SELECT (SELECT count(*)::int FROM langchain_pg_embedding) AS chunks,
            (SELECT count(*)::int FROM langchain_pg_collection) AS collections,
            (SELECT coalesce(string_agg(document_id || '=' || total_chunks || '@' || updated_at, ',' ORDER BY document_id), '')
               FROM documents) AS documents,
            (SELECT md5(string_agg(id || coalesce(collection_id::text, '') || coalesce(embedding::text, '')
                                   || coalesce(document, '') || coalesce(cmetadata::text, ''), ',' ORDER BY id))
               FROM langchain_pg_embedding) AS checksum`);
  return row;
}

async function totalChunks(t: TestApp, documentId: string): Promise<number> {
  const [row] = await t.dataSource.query<Array<{ total_chunks: number }>>(
    `SELECT total_chunks FROM documents WHERE document_id = $1`,
    [documentId],
  );
  return row.total_chunks;
}

describe('Embeddings API', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
    await t.dataSource.query(
      `INSERT INTO documents (document_id, document_name, category, document_type, source_file, file_name, total_chunks)
       VALUES ('law-1', 'Luật Thuế thu nhập cá nhân', 'thuế', 'law', 's', 'f', 0),
              ('law-2', 'Bộ luật Lao động', 'lao động', 'law', 's', 'f', 0)`,
    );
  });
  afterAll(async () => {
    await t.close();
  });

  it('adds chunks to the default collection, computing ids and vectors', async () => {
    const res = await request(t.server)
      .post('/embeddings')
      .send({ items: [{ content: 'Điều 1. Phạm vi điều chỉnh' }, { content: 'Điều 2. Đối tượng áp dụng' }] })
      .expect(201);
    expect(res.body).toEqual({ ids: [expect.any(String), expect.any(String)], count: 2 });
    expect(res.body.ids[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    const chunk = await request(t.server).get(`/embeddings/${res.body.ids[0]}`).expect(200);
    expect(chunk.body).toEqual({
      id: res.body.ids[0],
      collection: 'docs',
      content: 'Điều 1. Phạm vi điều chỉnh',
      metadata: {},
      embedding: expect.any(Array),
    });
    expect(chunk.body.embedding).toHaveLength(384);
    const norm = Math.sqrt((chunk.body.embedding as number[]).reduce((s, v) => s + v * v, 0));
    expect(norm).toBeCloseTo(1, 5);

    const collection = await request(t.server).get('/collections/docs').expect(200);
    expect(collection.body).toMatchObject({
      chunkCount: 2,
      dimensions: 384,
      metadata: { embedding_model: 'local-hash-ngram-384', dimensions: 384 },
    });
  });

  it('stores given vectors and Vietnamese text exactly', async () => {
    await request(t.server)
      .post('/embeddings')
      .send({
        collection: 'small',
        items: [
          {
            id: 'vi-1',
            content: 'Người nộp thuế – quyết toán năm 2024 ✓',
            metadata: { lang: 'vi' },
            embedding: [0.5, -1, 2.25],
          },
        ],
      })
      .expect(201);
    const res = await request(t.server).get('/embeddings/vi-1').expect(200);
    expect(res.body).toEqual({
      id: 'vi-1',
      collection: 'small',
      content: 'Người nộp thuế – quyết toán năm 2024 ✓',
      metadata: { lang: 'vi' },
      embedding: [0.5, -1, 2.25],
    });
  });

  it('updates an existing id (upsert), including moving it to another collection', async () => {
    await request(t.server)
      .post('/embeddings')
      .send({
        collection: 'small',
        items: [{ id: 'vi-1', content: 'Đã sửa', metadata: { v: 2 }, embedding: [1, 2, 3] }],
      })
      .expect(201);
    expect((await request(t.server).get('/embeddings/vi-1').expect(200)).body).toEqual({
      id: 'vi-1',
      collection: 'small',
      content: 'Đã sửa',
      metadata: { v: 2 },
      embedding: [1, 2, 3],
    });
    await request(t.server)
      .post('/embeddings')
      .send({ collection: 'small-2', items: [{ id: 'vi-1', content: 'Đã chuyển', embedding: [3, 2, 1] }] })
      .expect(201);
    const moved = await request(t.server).get('/embeddings/vi-1').expect(200);
    expect(moved.body).toMatchObject({
      collection: 'small-2',
      content: 'Đã chuyển',
      metadata: {},
      embedding: [3, 2, 1],
    });
    const [{ n }] = await t.dataSource.query<Array<{ n: number }>>(
      `SELECT count(*)::int AS n FROM langchain_pg_embedding WHERE id = 'vi-1'`,
    );
    expect(n).toBe(1);
  });

  it("keeps documents' total_chunks right through add, move and delete", async () => {
    await request(t.server)
      .post('/embeddings')
      .send({
        items: [
          { id: 'law-1-0', content: 'Điều 1', metadata: { document_id: 'law-1', chunk_index: 0 } },
          { id: 'law-1-1', content: 'Điều 2', metadata: { document_id: 'law-1', chunk_index: 1 } },
          { id: 'law-2-0', content: 'Điều 1', metadata: { document_id: 'law-2', chunk_index: 0 } },
          { id: 'orphan', content: 'không thuộc tài liệu nào', metadata: { document_id: 'missing-doc' } },
        ],
      })
      .expect(201);
    expect(await totalChunks(t, 'law-1')).toBe(2);
    expect(await totalChunks(t, 'law-2')).toBe(1);

    // Move law-1-1 to law-2: both documents are recounted.
    await request(t.server)
      .post('/embeddings')
      .send({ items: [{ id: 'law-1-1', content: 'Điều 2', metadata: { document_id: 'law-2', chunk_index: 1 } }] })
      .expect(201);
    expect(await totalChunks(t, 'law-1')).toBe(1);
    expect(await totalChunks(t, 'law-2')).toBe(2);

    // Dropping the document_id from the metadata detaches the chunk.
    await request(t.server)
      .post('/embeddings')
      .send({ items: [{ id: 'law-1-1', content: 'Điều 2' }] })
      .expect(201);
    expect(await totalChunks(t, 'law-2')).toBe(1);

    await request(t.server).delete('/embeddings/law-1-0').expect(204);
    expect(await totalChunks(t, 'law-1')).toBe(0);
    await request(t.server).get('/embeddings/law-1-0').expect(404);
    await request(t.server).delete('/embeddings/orphan').expect(204);
  });

  it('serves chunks written by another writer with NULL text, metadata and vector', async () => {
    const [{ uuid }] = await t.dataSource.query<Array<{ uuid: string }>>(
      `SELECT uuid FROM langchain_pg_collection WHERE name = 'small'`,
    );
    await t.dataSource.query(
      `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
       VALUES ('null-text', $1, '[1,1,1]', NULL, '{"document_id":"law-2"}'), ('all-null', NULL, NULL, NULL, NULL)`,
      [uuid],
    );
    expect((await request(t.server).get('/embeddings/null-text').expect(200)).body).toEqual({
      id: 'null-text',
      collection: 'small',
      content: null,
      metadata: { document_id: 'law-2' },
      embedding: [1, 1, 1],
    });
    expect((await request(t.server).get('/embeddings/all-null').expect(200)).body).toEqual({
      id: 'all-null',
      collection: null,
      content: null,
      metadata: null,
      embedding: null,
    });
    // A wrong stored count is corrected by the delete's recount: law-2 keeps one chunk (law-2-0).
    await t.dataSource.query(`UPDATE documents SET total_chunks = 99 WHERE document_id = 'law-2'`);
    await request(t.server).delete('/embeddings/null-text').expect(204);
    expect(await totalChunks(t, 'law-2')).toBe(1);
  });

  it('writes, rewrites and deletes chunks whose document_id is JSON null (no document), as LangChain may write them', async () => {
    const chunk = { id: 'null-owner', content: 'không thuộc văn bản nào', metadata: { document_id: null } };
    await request(t.server)
      .post('/embeddings')
      .send({ collection: 'null-owners', items: [chunk] })
      .expect(201);
    // A retry of the same batch: the chunk now exists, and its stored document_id is null.
    await request(t.server)
      .post('/embeddings')
      .send({ collection: 'null-owners', items: [chunk] })
      .expect(201);
    await request(t.server).delete('/embeddings/null-owner').expect(204);
    await request(t.server)
      .post('/embeddings')
      .send({ collection: 'null-owners', items: [chunk] })
      .expect(201);
    await request(t.server).delete('/collections/null-owners').expect(204);
    await request(t.server).get('/embeddings/null-owner').expect(404);
  });

  it('answers 404 for a missing chunk', async () => {
    const get = await request(t.server).get('/embeddings/nope').expect(404);
    expect(get.body).toEqual({ statusCode: 404, message: 'Embedding "nope" not found', error: 'Not Found' });
    const del = await request(t.server).delete('/embeddings/nope').expect(404);
    expect(del.body).toEqual({ statusCode: 404, message: 'Embedding "nope" not found', error: 'Not Found' });
  });

  it('deletes chunks by id in bulk, in any collection, recounting their documents, and names the ids it did not find', async () => {
    await request(t.server)
      .post('/embeddings')
      .send({
        collection: 'bulk-a',
        items: [
          { id: 'bulk-1', content: 'Điều 1', metadata: { document_id: 'law-1' } },
          { id: 'bulk-2', content: 'Điều 2', metadata: { document_id: 'law-1' } },
          { id: 'bulk-3', content: 'Điều 3', metadata: { document_id: 'law-2' } },
          { id: 'bulk-kept', content: 'Điều 4', metadata: { document_id: 'law-2' } },
        ],
      })
      .expect(201);
    await request(t.server)
      .post('/embeddings')
      .send({ collection: 'bulk-b', items: [{ id: 'bulk-free', content: 'không thuộc văn bản nào' }] })
      .expect(201);
    const before = { law1: await totalChunks(t, 'law-1'), law2: await totalChunks(t, 'law-2') };
    const res = await request(t.server)
      .post('/embeddings/delete')
      .send({ ids: ['bulk-3', 'nope-1', 'bulk-1', 'bulk-free', 'bulk-3', 'bulk-2'] })
      .expect(200);
    // Request order, a repeated id once.
    expect(res.body).toEqual({ deleted: ['bulk-3', 'bulk-1', 'bulk-free', 'bulk-2'], notFound: ['nope-1'] });
    expect(await totalChunks(t, 'law-1')).toBe(before.law1 - 2);
    expect(await totalChunks(t, 'law-2')).toBe(before.law2 - 1);
    await request(t.server).get('/embeddings/bulk-kept').expect(200);
    for (const id of ['bulk-1', 'bulk-2', 'bulk-3', 'bulk-free'])
      await request(t.server).get(`/embeddings/${id}`).expect(404);
    // Nothing left to delete is not an error.
    expect(
      (
        await request(t.server)
          .post('/embeddings/delete')
          .send({ ids: ['bulk-1'] })
          .expect(200)
      ).body,
    ).toEqual({
      deleted: [],
      notFound: ['bulk-1'],
    });
    // Refused whole, nothing deleted.
    for (const [body, message] of [
      [{ ids: [] }, 'ids must contain at least 1 elements'],
      [{ ids: ['bulk-kept', ''] }, 'each value in ids must be longer than or equal to 1 characters'],
      [{ ids: Array.from({ length: 1001 }, (_, i) => `x${i}`) }, 'ids must contain no more than 1000 elements'],
      [{}, 'ids is required'],
    ] as const) {
      const refused = await request(t.server).post('/embeddings/delete').send(body).expect(400);
      expect([(refused.body as { message: unknown }).message].flat()).toContain(message);
    }
    await request(t.server).get('/embeddings/bulk-kept').expect(200);
  });

  it('rejects a dimension mismatch in the last item of a batch and writes nothing', async () => {
    const before = await snapshot(t);
    const items = [
      { id: 'law-1-0', content: 'Điều 1 mới', metadata: { document_id: 'law-1' } },
      { id: 'new-1', content: 'mới', metadata: { document_id: 'law-2' } },
      { id: 'new-2', content: 'sai chiều', metadata: { document_id: 'law-1' }, embedding: [1, 2, 3] },
    ];
    const res = await request(t.server).post('/embeddings').send({ items }).expect(400);
    expect(res.body).toEqual({
      statusCode: 400,
      message: 'Embedding dimension mismatch in collection "docs": it holds 384-dimensional vectors, item 2 has 3',
      error: 'Bad Request',
    });
    // Also into a collection that does not exist yet: the collection is not created either.
    await request(t.server)
      .post('/embeddings')
      .send({
        collection: 'brand-new',
        items: [
          { content: 'a', embedding: [1, 2] },
          { content: 'b', embedding: [1, 2, 3] },
        ],
      })
      .expect(400);
    expect(await snapshot(t)).toEqual(before);
    await request(t.server).get('/collections/brand-new').expect(404);
  });

  it('rejects an id repeated within a batch', async () => {
    const before = await snapshot(t);
    const res = await request(t.server)
      .post('/embeddings')
      .send({
        items: [
          { id: 'dup', content: 'a' },
          { id: 'dup', content: 'b' },
        ],
      })
      .expect(400);
    expect(res.body.message).toBe('Chunk id "dup" appears more than once in the request');
    expect(await snapshot(t)).toEqual(before);
  });

  it('rejects more than EMBEDDINGS_MAX_BATCH items, naming the limit', async () => {
    const before = await snapshot(t);
    const items = Array.from({ length: 1001 }, (_, i) => ({ content: `c${i}` }));
    const res = await request(t.server).post('/embeddings').send({ items }).expect(400);
    expect(res.body).toEqual({
      statusCode: 400,
      message: 'items must contain at most 1000 items (EMBEDDINGS_MAX_BATCH); got 1001',
      error: 'Bad Request',
    });
    expect(await snapshot(t)).toEqual(before);
  });

  it.each([
    ['no items', {}, 'items is required'],
    ['items not a list', { items: 5 }, 'items must be an array'],
    ['empty items', { items: [] }, 'items must contain at least 1 elements'],
    ['items not an array', { items: 'x' }, 'items must be an array'],
    ['unknown top-level field', { items: [{ content: 'a' }], extra: 1 }, 'property extra should not exist'],
    ['unknown item field', { items: [{ content: 'a', text: 'b' }] }, 'items.0.property text should not exist'],
    ['missing content', { items: [{ id: 'x' }] }, 'items.0.content is required'],
    ['content not a string', { items: [{ content: 5 }] }, 'items.0.content must be a string'],
    [
      'content too long',
      { items: [{ content: 'x'.repeat(100_001) }] },
      'items.0.content must be shorter than or equal to 100000 characters',
    ],
    ['NUL in content', { items: [{ content: 'a\u0000b' }] }, 'items.0.content must not contain NUL characters'],
    ['empty id', { items: [{ id: '', content: 'a' }] }, 'items.0.id must be longer than or equal to 1 characters'],
    ['id not a string', { items: [{ id: 7, content: 'a' }] }, 'items.0.id must be a string'],
    ['metadata an array', { items: [{ content: 'a', metadata: [1] }] }, 'items.0.metadata must be an object'],
    ['metadata a string', { items: [{ content: 'a', metadata: 'x' }] }, 'items.0.metadata must be an object'],
    [
      'NUL in metadata',
      { items: [{ content: 'a', metadata: { k: 'a\u0000' } }] },
      'items.0.metadata must not contain NUL characters',
    ],
    [
      'NUL in a metadata key',
      { items: [{ content: 'a', metadata: { nested: [{ 'k\u0000': 1 }] } }] },
      'items.0.metadata must not contain NUL characters',
    ],
    [
      'metadata longer than 100,000 characters as JSON',
      { items: [{ content: 'a' }, { content: 'b', metadata: { k: 'x'.repeat(99_993) } }] },
      'items.1.metadata must be at most 100000 characters as JSON',
    ],
    [
      'empty embedding',
      { items: [{ content: 'a', embedding: [] }] },
      'items.0.embedding must contain at least 1 elements',
    ],
    [
      'embedding of strings',
      { items: [{ content: 'a', embedding: ['1', 2] }] },
      'items.0.each value in embedding must be a number',
    ],
    [
      'embedding too long',
      { items: [{ content: 'a', embedding: Array(16_001).fill(0) }] },
      'items.0.embedding must contain no more than 16000 elements',
    ],
    [
      'embedding out of float4 range',
      { items: [{ content: 'a', embedding: [1e39] }] },
      'items.0.each value in embedding must not be greater than',
    ],
    [
      'bad collection name',
      { collection: '   ', items: [{ content: 'a' }] },
      'collection must be 1-500 characters, not all whitespace',
    ],
  ])('rejects %s with 400 and writes nothing', async (_label, body, message) => {
    const before = await snapshot(t);
    const res = await request(t.server).post('/embeddings').send(body).expect(400);
    expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
    expect([res.body.message].flat().join('; ')).toContain(message);
    expect(await snapshot(t)).toEqual(before);
  });

  it('stores each vector component as the float4 that its decimal text parses to', async () => {
    // Components that need care in a binary encoding: signs, float4's extremes, values that are not
    // exact in binary, negative zero, more digits than a float4 holds.
    const embedding = [0.1, -0.1, 1 / 3, 1e19, -1e19, 1.2e-38, -0, 0, 123456.789, 1e-7, 0.30000000000000004, 7];
    await request(t.server)
      .post('/embeddings')
      .send({ collection: 'float4', items: [{ id: 'f4', content: 'f4', embedding }] })
      .expect(201);
    const [row] = await t.dataSource.query<Array<{ same: boolean; stored: string; parsed: string }>>(
      `SELECT embedding = $1::vector AS same, embedding::text AS stored, $1::vector::text AS parsed
         FROM langchain_pg_embedding WHERE id = 'f4'`,
      [`[${embedding.join(',')}]`],
    );
    expect(row.stored).toBe(row.parsed);
    expect(row.same).toBe(true);
    const res = await request(t.server).get('/embeddings/f4').expect(200);
    expect(res.body.embedding).toEqual(JSON.parse(row.parsed));
  });

  it('stores a batch mixing JSON and base64 float32 vectors, the base64 ones exactly', async () => {
    // Values a decimal round trip would not give back exactly, and float4's extremes.
    const sent = [0.1, -1 / 3, 1e19, -1.2e-38, 1.4e-45, 0, 123456.789, Math.PI];
    const json = [0.5, -1, 2.25, 0, 7, 1e-7, -1e19, 0.30000000000000004];
    await request(t.server)
      .post('/embeddings')
      .send({
        collection: 'base64',
        items: [
          { id: 'b64-json', content: 'json', embedding: json },
          { id: 'b64-base64', content: 'base64', embedding: float32Base64(sent) },
          { id: 'b64-json-2', content: 'json again', embedding: [1, 2, 3, 4, 5, 6, 7, 8] },
        ],
      })
      .expect(201);
    const base64 = await request(t.server).get('/embeddings/b64-base64').expect(200);
    expect(base64.body).toMatchObject({ collection: 'base64', content: 'base64' });
    // GET prints each float4 as the shortest decimal that reads back as it: as float32, exactly the sent values.
    expect((base64.body.embedding as number[]).map(Math.fround)).toEqual(float32Values(sent));
    const [row] = await t.dataSource.query<Array<{ same: boolean }>>(
      `SELECT embedding = $1::vector AS same FROM langchain_pg_embedding WHERE id = 'b64-base64'`,
      [`[${float32Values(sent).join(',')}]`],
    );
    expect(row.same).toBe(true);
    const [jsonRow] = await t.dataSource.query<Array<{ same: boolean }>>(
      `SELECT embedding = $1::vector AS same FROM langchain_pg_embedding WHERE id = 'b64-json'`,
      [`[${json.join(',')}]`],
    );
    expect(jsonRow.same).toBe(true);
    expect((await request(t.server).get('/collections/base64').expect(200)).body).toMatchObject({
      chunkCount: 3,
      dimensions: 8,
    });
  });

  it.each([
    [
      'invalid base64',
      'AAAAAAAAAAA*',
      'items.1.embedding must be base64 in the standard alphabet (A-Z a-z 0-9 + /), padded with = to a multiple of 4 characters',
    ],
    ['unpadded base64', 'AAAAAAAAAAAAAA', 'items.1.embedding must be base64 in the standard alphabet'],
    [
      'base64 of a byte length not a multiple of 4',
      Buffer.alloc(10).toString('base64'),
      'items.1.embedding base64 holds 10 bytes, not a whole number of float32 values',
    ],
    ['an encoded NaN', float32Base64([0.5, NaN, 1]), 'items.1.each value in embedding must be a finite number'],
    ['an encoded Infinity', float32Base64([-Infinity]), 'items.1.each value in embedding must be a finite number'],
    ['no values', '', 'items.1.embedding must contain at least 1 elements'],
    [
      'a number',
      42,
      'items.1.embedding must be an array of numbers or a base64 string of little-endian float32 values',
    ],
  ])(
    'rejects an embedding given as %s with 400 naming the item, and writes nothing',
    async (_label, embedding, message) => {
      const before = await snapshot(t);
      const res = await request(t.server)
        .post('/embeddings')
        .send({
          collection: 'base64-bad',
          items: [
            { id: 'b64-bad-0', content: 'a', embedding: float32Base64([1, 2, 3]) },
            { id: 'b64-bad-1', content: 'b', embedding },
          ],
        })
        .expect(400);
      expect(res.body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
      expect([res.body.message].flat().join('; ')).toContain(message);
      expect(await snapshot(t)).toEqual(before);
      await request(t.server).get('/collections/base64-bad').expect(404);
    },
  );

  it('rejects a base64 vector of the wrong dimension for the collection and writes nothing', async () => {
    const before = await snapshot(t);
    const res = await request(t.server)
      .post('/embeddings')
      .send({
        items: [
          { id: 'b64-dim-0', content: 'a' },
          { id: 'b64-dim-1', content: 'b', embedding: float32Base64([1, 2, 3]) },
        ],
      })
      .expect(400);
    expect(res.body.message).toBe(
      'Embedding dimension mismatch in collection "docs": it holds 384-dimensional vectors, item 1 has 3',
    );
    expect(await snapshot(t)).toEqual(before);
  });

  it("refuses new vectors of another dimension than an emptied collection's vector index, naming it, until it is dropped", async () => {
    const collection = 'reembedded';
    await request(t.server)
      .post('/embeddings')
      .send({ collection, items: [{ id: 'old-model-1', content: 'a', embedding: [0.1, 0.2, 0.3] }] })
      .expect(201);
    await request(t.server).put(`/collections/${collection}/vector-index`).expect(200);
    await request(t.server).delete('/embeddings/old-model-1').expect(204);

    const before = await snapshot(t);
    const refused = await request(t.server)
      .post('/embeddings')
      .send({ collection, items: [{ id: 'new-model-1', content: 'b', embedding: [0.1, 0.2, 0.3, 0.4] }] })
      .expect(400);
    expect(refused.body).toEqual({
      statusCode: 400,
      message: `Collection "${collection}" holds no vectors, but its vector index was built for 3-dimensional ones and item 0 has 4: drop the index first (DELETE /collections/${collection}/vector-index)`,
      error: 'Bad Request',
    });
    expect(await snapshot(t)).toEqual(before);
    // Vectors of the index's dimension still go in.
    await request(t.server)
      .post('/embeddings')
      .send({ collection, items: [{ id: 'old-model-2', content: 'c', embedding: [0.3, 0.2, 0.1] }] })
      .expect(201);
    await request(t.server).delete('/embeddings/old-model-2').expect(204);

    await request(t.server).delete(`/collections/${collection}/vector-index`).expect(204);
    await request(t.server)
      .post('/embeddings')
      .send({ collection, items: [{ id: 'new-model-1', content: 'b', embedding: [0.1, 0.2, 0.3, 0.4] }] })
      .expect(201);
    const [stored] = await t.dataSource.query<Array<{ dims: number }>>(
      `SELECT vector_dims(embedding) AS dims FROM langchain_pg_embedding WHERE id = 'new-model-1'`,
    );
    expect(stored.dims).toBe(4);
  });

  it('stores a large batch of non-ASCII text, metadata and vectors exactly as sent', async () => {
    // Over 64 KB of mostly non-ASCII JSON (the body parser's transcoding path), text with 4-byte
    // characters, metadata holding the literal text \u0000 (not a NUL) and at the length limit.
    const items = Array.from({ length: 12 }, (_, i) => ({
      id: `large-${i}`,
      content: `Điều ${i}. Phạm vi điều chỉnh 📄 ${'thuế thu nhập cá nhân, người nộp thuế 𝄞 '.repeat(200)}`,
      metadata: {
        document_id: 'law-2',
        'tiêu đề': `Chương ${i}`,
        path: 'C:\\u0000\\tệp',
        list: [i, -0.5, 'ệ', null, { ok: true }],
      },
      embedding: [i, -0, 0.1, 1 / 3, 1e19, -1.2e-38, 1.4e-45],
    }));
    items[11].metadata.path = '';
    items[11].metadata.path = 'x'.repeat(100_000 - JSON.stringify(items[11].metadata).length);
    const body = JSON.stringify({ collection: 'large-text', items });
    expect(Buffer.byteLength(body)).toBeGreaterThan(64 * 1024);
    expect(JSON.stringify(items[11].metadata).length).toBe(100_000);
    await request(t.server).post('/embeddings').set('content-type', 'application/json').send(body).expect(201);
    for (const item of items) {
      const res = await request(t.server).get(`/embeddings/${item.id}`).expect(200);
      expect(res.body.content).toBe(item.content);
      expect(res.body.metadata).toEqual(item.metadata);
      const [row] = await t.dataSource.query<Array<{ same: boolean }>>(
        `SELECT embedding = $1::vector AS same FROM langchain_pg_embedding WHERE id = $2`,
        [`[${item.embedding.join(',')}]`, item.id],
      );
      expect(row.same).toBe(true);
    }
    const [{ n }] = await t.dataSource.query<Array<{ n: number }>>(
      `SELECT count(*)::int AS n FROM langchain_pg_embedding WHERE cmetadata->>'document_id' = 'law-2'`,
    );
    expect(await totalChunks(t, 'law-2')).toBe(n);
  });

  it('answers an invalid body with exactly the messages of the global ValidationPipe', async () => {
    const vector = (n: number) => Array.from({ length: n }, (_, i) => i / n);
    const bodies: unknown[] = [
      // Valid vectors next to invalid ones: each message names its item, in the usual order.
      {
        items: [
          { content: 'a', embedding: vector(4) },
          { content: 'b', embedding: [1, 'x', 3] },
          { content: 5, embedding: vector(4), extra: true },
          { content: 'd', embedding: [] },
          { embedding: vector(4) },
        ],
        unknown: 1,
      },
      { collection: 'ok', items: [{ content: 'a', embedding: vector(3), metadata: 'm' }, 7, null, [1]] },
      // Base64 vectors: a valid one, then each kind of invalid one.
      {
        items: [
          { content: 'a', embedding: float32Base64(vector(4)) },
          { content: 'b', embedding: 'AAAA*AAA' },
          { content: 'c', embedding: Buffer.alloc(6).toString('base64') },
          { content: 'd', embedding: float32Base64([NaN]), id: 3 },
          { content: 'e', embedding: float32Base64(vector(2)), extra: 1 },
        ],
      },
      { items: [{ content: 'a', embedding: { 0: 1 } }] },
      // null for optional fields: one message each, naming the field.
      {
        collection: null,
        items: [
          { content: 'a', id: null, metadata: null },
          { content: 'b', embedding: null },
        ],
      },
      { items: { 0: { content: 'a', embedding: [1] } } },
      [{ content: 'a', embedding: [1] }],
    ];
    const pipe = createValidationPipe();
    for (const body of bodies) {
      const expected = await pipe
        .transform(structuredClone(body), { type: 'body', metatype: CreateEmbeddingsDto })
        .then(
          () => 'no error',
          (error: { getResponse(): unknown }) => error.getResponse(),
        );
      const res = await request(t.server)
        .post('/embeddings')
        .set('content-type', 'application/json')
        .send(body as object);
      expect(res.status).toBe(400);
      expect(res.body).toEqual(expected);
    }
  });

  (TEST_TARGET === 'postgres' ? it : it.skip)(
    'writes into a collection that another transaction creates while the batch waits for it (server only)',
    async () => {
      // The batch's collection insert waits on the other transaction's uncommitted row, then finds
      // the row committed after its statement began: invisible to that statement's snapshot.
      const other = t.dataSource.createQueryRunner();
      await other.connect();
      await other.startTransaction();
      await other.query(
        `INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES (gen_random_uuid(), 'raced', '{"by":"other"}')`,
      );
      const post = request(t.server)
        .post('/embeddings')
        .send({ collection: 'raced', items: [{ id: 'raced-1', content: 'a', embedding: [1, 2] }] })
        .then((r) => r);
      const blocked = await eventually(async () => {
        const [{ n }] = await t.dataSource.query<Array<{ n: number }>>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%langchain_pg_collection%'`,
        );
        return n > 0;
      });
      await other.commitTransaction();
      await other.release();
      expect(blocked).toBe(true);
      const res = await post;
      expect(res.status).toBe(201);
      const rows = await t.dataSource.query<Array<{ by: string; n: number }>>(
        `SELECT c.cmetadata->>'by' AS by, count(e.id)::int AS n FROM langchain_pg_collection c
           LEFT JOIN langchain_pg_embedding e ON e.collection_id = c.uuid WHERE c.name = 'raced' GROUP BY c.uuid`,
      );
      expect(rows).toEqual([{ by: 'other', n: 1 }]);
    },
  );

  it('stores metadata exactly as sent: keys named like prototype members kept, at any depth', async () => {
    const metadatas: Array<Record<string, unknown>> = [
      { document_id: 'law-2', Điều: 'một', nested: { a: [1, 'x', null, true, { b: [] }], e: 1.5e-7 } },
      {},
      { toString: 'x', kept: 1 },
      {
        constructor: 'c',
        prototype: { p: 1 },
        valueOf: 2,
        list: [{ hasOwnProperty: 1, ok: 2 }, [{ isPrototypeOf: 0 }]],
      },
      { a: { b: { __lookupGetter__: 0, c: 'd', then: 'not a promise' } } },
    ];
    const body = {
      collection: 'metadata-copy',
      items: metadatas.map((metadata, i) => ({ id: `meta-${i}`, content: 'c', metadata, embedding: [1, 2] })),
    };
    await request(t.server).post('/embeddings').send(body).expect(201);
    for (const [i, metadata] of metadatas.entries()) {
      const res = await request(t.server).get(`/embeddings/meta-${i}`).expect(200);
      // isDeepStrictEqual, not toEqual: jest compares a `constructor` key as the object's class.
      expect({ i, same: isDeepStrictEqual(res.body.metadata, metadata) }).toEqual({ i, same: true });
    }
  });

  it('counts JSON nesting outside strings only, escapes included, and refuses a body past MAX_JSON_DEPTH', async () => {
    // The metadata is the 4th level (body, items, item, metadata); `levels` more objects nest in it.
    const nested = (levels: number): string => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
    const brackets = '['.repeat(MAX_JSON_DEPTH + 1);
    const raw = (id: string, levels: number): string =>
      `{"collection": "depth", "items": [{"id": "${id}", "embedding": [1, 2],` +
      // A string ending in an escaped backslash, then one holding an escaped quote: read wrongly,
      // either would expose the brackets that follow it.
      ` "content": "ends in a backslash \\\\", "metadata": {"quoted": "say \\"${brackets}\\" ${brackets}",` +
      ` "deep": ${nested(levels)}}}]}`;
    const before = await snapshot(t);
    const tooDeep = await request(t.server)
      .post('/embeddings')
      .set('content-type', 'application/json')
      .send(raw('too-deep', MAX_JSON_DEPTH - 3));
    expect(tooDeep.status).toBe(400);
    expect(tooDeep.body).toMatchObject({ message: `The JSON body nests deeper than ${MAX_JSON_DEPTH} levels` });
    expect(await snapshot(t)).toEqual(before);

    await request(t.server)
      .post('/embeddings')
      .set('content-type', 'application/json')
      .send(raw('at-limit', MAX_JSON_DEPTH - 4))
      .expect(201);
    const res = await request(t.server).get('/embeddings/at-limit').expect(200);
    expect(res.body.content).toBe('ends in a backslash \\');
    expect(res.body.metadata.quoted).toBe(`say "${brackets}" ${brackets}`);
  });

  it('rejects a non-JSON-object body', async () => {
    await request(t.server).post('/embeddings').set('content-type', 'application/json').send('[1,2]').expect(400);
  });
});
