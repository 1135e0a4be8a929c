import request from 'supertest';
import {
  DOCUMENT_LIST_RESPONSE_SCHEMA,
  DOCUMENT_RESPONSE_SCHEMA,
} from '../src/documents/dto/document.response-schema.js';
import { driverPool } from '../src/database/driver-pool.js';
import { PREPARED_STATEMENTS } from '../src/database/read-replicas.service.js';
import { STATUS_HISTORY_MAX } from '../src/documents/documents.service.js';
import { float32Base64, float32Values } from './support/float32-base64.js';
import { rowsSnapshot, startTestApp, type TestApp } from './support/test-app.js';
import { TEST_TARGET } from './support/test-database.js';

interface ChunkMeta {
  [key: string]: unknown;
  chunk_index?: number;
  status?: string;
  document_info: { document_status: string; title?: string };
  processing_metadata: { processing_status: string; status_change_history: Array<Record<string, string>> };
}

/** The fields of list items that the assertions read. */
function items<T>(res: request.Response): T[] {
  return (res.body as { items: T[] }).items;
}

async function chunkMetadata(t: TestApp, documentId: string): Promise<ChunkMeta[]> {
  const rows = await t.dataSource.query<Array<{ cmetadata: ChunkMeta }>>(
    `SELECT cmetadata FROM langchain_pg_embedding WHERE cmetadata->>'document_id' = $1 ORDER BY id`,
    [documentId],
  );
  return rows.map((r) => r.cmetadata);
}

const base = { documentType: 'law', category: 'dat-dai', sourceFile: '/data/laws/file.pdf' };

describe('Documents API', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
    const seed = [
      { documentId: 'luat-dat-dai', documentName: 'Luật Đất đai 2024', documentType: 'law', category: 'dat-dai' },
      { documentId: 'nd-101', documentName: 'Nghị định 101 về thuế', documentType: 'decree', category: 'thue' },
      { documentId: 'tt-50_pct', documentName: 'Thông tư 50% phí', documentType: 'circular', category: 'thue' },
      {
        documentId: 'guide-1',
        documentName: 'Hướng dẫn',
        documentType: 'guide',
        category: 'dat-dai',
        status: 'inactive',
      },
    ];
    for (const doc of seed) {
      await request(t.server)
        .post('/documents')
        .send({ ...doc, sourceFile: `/data/${doc.documentId}.pdf` })
        .expect(201);
    }
  });
  afterAll(async () => {
    await t.close();
  });

  it('answers each 201 with the Location of what it created, which a GET finds', async () => {
    const documentId = 'luật-2024/sửa-đổi?bản=1#2';
    const created = await request(t.server)
      .post('/documents')
      .send({ documentId, documentName: 'x', ...base })
      .expect(201);
    expect(created.headers.location).toBe(`/documents/${encodeURIComponent(documentId)}`);
    expect((await request(t.server).get(created.headers.location).expect(200)).body.documentId).toBe(documentId);

    // A documentId or collection name of dots would be resolved away as a path segment: refused.
    for (const documentId of ['.', '..']) {
      const refused = await request(t.server)
        .post('/documents')
        .send({ documentId, documentName: 'x', ...base })
        .expect(400);
      expect(refused.body.message).toEqual(['documentId must be 1-255 characters without whitespace, and not . or ..']);
    }
    expect((await request(t.server).post('/collections').send({ name: '..' }).expect(400)).body.message).toEqual([
      'name must not be . or .. (a path segment cannot carry it)',
    ]);
    expect(
      await request(t.server)
        .post('/documents')
        .send({ documentId: '...', documentName: 'x', ...base })
        .expect(201),
    ).toMatchObject({ headers: { location: '/documents/...' } });
    await request(t.server).delete('/documents/...').expect(204);

    const collection = await request(t.server).post('/collections').send({ name: 'nơi chứa/1' }).expect(201);
    expect(collection.headers.location).toBe(`/collections/${encodeURIComponent('nơi chứa/1')}`);
    expect((await request(t.server).get(collection.headers.location).expect(200)).body.name).toBe('nơi chứa/1');

    const ingest = { documentId: 'located-ingest', documentType: 'law', category: 'c', text: 'Điều 1. Phạm vi' };
    const ingested = await request(t.server).post('/documents/ingest').send(ingest).expect(201);
    expect(ingested.headers.location).toBe('/documents/located-ingest');
    // A skipped re-ingest (200) created nothing.
    const skipped = await request(t.server).post('/documents/ingest').send(ingest).expect(200);
    expect(skipped.headers.location).toBeUndefined();

    await request(t.server).delete(created.headers.location).expect(204);
    await request(t.server).delete('/documents/located-ingest').expect(204);
    await request(t.server).delete(collection.headers.location).expect(204);
  });

  describe('POST /documents', () => {
    it('creates a document with defaults (uuid id, basename fileName, active, no chunks)', async () => {
      const res = await request(t.server)
        .post('/documents')
        .send({ documentName: 'Mặc định', ...base })
        .expect(201);
      expect(res.body).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        documentId: expect.stringMatching(/^[0-9a-f-]{36}$/),
        documentName: 'Mặc định',
        documentType: 'law',
        category: 'dat-dai',
        sourceFile: '/data/laws/file.pdf',
        fileName: 'file.pdf',
        totalChunks: 0,
        status: 'active',
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
      });
      await request(t.server).get(`/documents/${res.body.documentId}`).expect(200);
    });

    it('creates a document with chunks, their metadata and total_chunks in one go', async () => {
      const res = await request(t.server)
        .post('/documents')
        .send({
          documentId: 'with-chunks',
          documentName: 'Có chunk',
          ...base,
          fileName: 'given.pdf',
          status: 'processing',
          collection: 'laws',
          chunks: [
            { id: 'wc-0', content: 'Điều 1', metadata: { section_title: 'Chương I', document_id: 'ignored' } },
            { id: 'wc-1', content: 'Điều 2', embedding: Array.from({ length: 384 }, () => 0.5) },
            { content: 'Điều 3' },
          ],
        })
        .expect(201);
      expect(res.body).toMatchObject({
        documentId: 'with-chunks',
        fileName: 'given.pdf',
        status: 'processing',
        totalChunks: 3,
      });
      const [row] = await t.dataSource.query<Array<{ total_chunks: number }>>(
        `SELECT total_chunks FROM documents WHERE document_id = 'with-chunks'`,
      );
      expect(row.total_chunks).toBe(3);
      const chunks = await request(t.server).get('/documents/with-chunks/chunks').expect(200);
      expect(chunks.body.total).toBe(3);
      expect(items<{ content: string }>(chunks).map((c) => c.content)).toEqual(['Điều 1', 'Điều 2', 'Điều 3']);
      expect(chunks.body.items[0]).toEqual({
        id: 'wc-0',
        collection: 'laws',
        content: 'Điều 1',
        metadata: {
          section_title: 'Chương I',
          document_id: 'with-chunks',
          chunk_id: 'wc-0',
          chunk_index: 0,
          total_chunks: 3,
          document_type: 'law',
          category: 'dat-dai',
          status: 'processing',
        },
      });
      expect(chunks.body.items[2].id).toMatch(/^[0-9a-f-]{36}$/);
      expect(chunks.body.items[2].metadata.chunk_id).toBe(chunks.body.items[2].id);
    });

    it('puts chunks into the default collection when none is given', async () => {
      await request(t.server)
        .post('/documents')
        .send({ documentId: 'in-default', documentName: 'x', ...base, chunks: [{ content: 'a' }] })
        .expect(201);
      const res = await request(t.server).get('/documents/in-default/chunks').expect(200);
      expect(res.body.items[0].collection).toBe(t.config.embeddings.defaultCollection);
    });

    it('refuses a duplicate documentId with 409 and changes nothing', async () => {
      const before = await rowsSnapshot(t);
      const res = await request(t.server)
        .post('/documents')
        .send({ documentId: 'luat-dat-dai', documentName: 'Dup', ...base, chunks: [{ content: 'x' }] })
        .expect(409);
      expect(res.body).toEqual({
        statusCode: 409,
        message: 'Document "luat-dat-dai" already exists',
        error: 'Conflict',
      });
      expect(await rowsSnapshot(t)).toEqual(before);
    });

    it.each([
      [{ documentName: 'x', ...base, extra: 1 }, 'property extra should not exist'],
      [{ documentType: 'law', category: 'c', sourceFile: 's' }, 'documentName'],
      [{ documentName: 'x', category: 'c', sourceFile: 's' }, 'documentType'],
      [{ documentName: 'x', documentType: 'law', sourceFile: 's' }, 'category'],
      [{ documentName: 'x', documentType: 'law', category: 'c' }, 'sourceFile'],
      [{ documentName: 'x', ...base, status: 'archived' }, 'status must be one of the following values'],
      [{ documentName: 'x', ...base, documentType: 'x'.repeat(51) }, 'documentType must be shorter'],
      [{ documentName: 'x', ...base, documentId: 'has space' }, 'documentId must be 1-255 characters'],
      [{ documentName: 'x', ...base, chunks: [{ metadata: {} }] }, 'chunks.0.content is required'],
      [
        { documentName: 'x', ...base, chunks: [{ content: 'a', bogus: 1 }] },
        'chunks.0.property bogus should not exist',
      ],
    ])('rejects %j with 400 naming the problem', async (body, message) => {
      const before = await rowsSnapshot(t);
      const res = await request(t.server).post('/documents').send(body).expect(400);
      expect(JSON.stringify(res.body.message)).toContain(message);
      expect(await rowsSnapshot(t)).toEqual(before);
    });

    it('takes chunk embeddings as base64 float32, and refuses an invalid one naming the chunk', async () => {
      const vector = Array.from({ length: 384 }, (_, i) => Math.sin(i) / 3);
      await request(t.server)
        .post('/documents')
        .send({
          documentId: 'base64-chunks',
          documentName: 'Base64',
          ...base,
          chunks: [
            { id: 'b64-doc-0', content: 'a', embedding: float32Base64(vector) },
            { id: 'b64-doc-1', content: 'b', embedding: vector },
          ],
        })
        .expect(201);
      const [row] = await t.dataSource.query<Array<{ same: boolean; dims: number }>>(
        `SELECT embedding = $1::vector AS same, vector_dims(embedding) AS dims FROM langchain_pg_embedding WHERE id = 'b64-doc-0'`,
        [`[${float32Values(vector).join(',')}]`],
      );
      expect(row).toEqual({ same: true, dims: 384 });

      const before = await rowsSnapshot(t);
      const res = await request(t.server)
        .post('/documents')
        .send({
          documentId: 'base64-bad',
          documentName: 'x',
          ...base,
          chunks: [{ content: 'a' }, { content: 'b', embedding: float32Base64([Infinity]) }],
        })
        .expect(400);
      expect(res.body.message).toEqual(['chunks.1.each value in embedding must be a finite number']);
      expect(await rowsSnapshot(t)).toEqual(before);
    });

    it('rolls back everything when the last chunk has another embedding dimension', async () => {
      const before = await rowsSnapshot(t);
      const res = await request(t.server)
        .post('/documents')
        .send({
          documentId: 'bad-dim',
          documentName: 'x',
          ...base,
          collection: 'fresh-collection',
          chunks: [{ content: 'a' }, { content: 'b' }, { content: 'c', embedding: [1, 2, 3] }],
        })
        .expect(400);
      expect(res.body.message).toContain('dimension mismatch');
      expect(await rowsSnapshot(t)).toEqual(before);
      await request(t.server).get('/documents/bad-dim').expect(404);
    });

    it('rolls back everything when a chunk id is repeated in the request', async () => {
      const before = await rowsSnapshot(t);
      const res = await request(t.server)
        .post('/documents')
        .send({
          documentId: 'dup-chunk',
          documentName: 'x',
          ...base,
          chunks: [{ id: 'same', content: 'a' }, { content: 'b' }, { id: 'same', content: 'c' }],
        })
        .expect(400);
      expect(res.body.message).toContain('"same" appears more than once');
      expect(await rowsSnapshot(t)).toEqual(before);
    });

    it('refuses with 409 a chunk id that belongs to another document, and changes nothing', async () => {
      const before = await rowsSnapshot(t);
      const res = await request(t.server)
        .post('/documents')
        .send({
          documentId: 'thief',
          documentName: 'x',
          ...base,
          chunks: [{ content: 'a' }, { id: 'wc-1', content: 'b' }],
        })
        .expect(409);
      expect(res.body.message).toBe('Chunk id "wc-1" already belongs to another document');
      expect(await rowsSnapshot(t)).toEqual(before);
    });

    it('adopts a chunk id that belongs to no document, as POST /embeddings does', async () => {
      await request(t.server)
        .post('/embeddings')
        .send({ items: [{ id: 'loose-1', content: 'loose', metadata: { source: 'langchain' } }] })
        .expect(201);
      await request(t.server)
        .post('/documents')
        .send({ documentId: 'adopter', documentName: 'x', ...base, chunks: [{ id: 'loose-1', content: 'adopted' }] })
        .expect(201);
      const [chunk] = await t.dataSource.query<Array<{ document: string; owner: string }>>(
        `SELECT document, cmetadata->>'document_id' AS owner FROM langchain_pg_embedding WHERE id = 'loose-1'`,
      );
      expect(chunk).toEqual({ document: 'adopted', owner: 'adopter' });
      expect((await request(t.server).get('/documents/adopter').expect(200)).body.totalChunks).toBe(1);
    });

    it('refuses more chunks than EMBEDDINGS_MAX_BATCH', async () => {
      const chunks = Array.from({ length: t.config.embeddings.maxBatch + 1 }, (_, i) => ({ content: `c${i}` }));
      const res = await request(t.server)
        .post('/documents')
        .send({ documentName: 'x', ...base, chunks })
        .expect(400);
      expect(res.body.message).toContain(`at most ${t.config.embeddings.maxBatch}`);
    });
  });

  describe('GET /documents', () => {
    const ids = (res: request.Response): string[] => items<{ documentId: string }>(res).map((d) => d.documentId);

    it('lists with defaults: limit 50, offset 0, newest first', async () => {
      const res = await request(t.server).get('/documents').expect(200);
      expect(res.body).toMatchObject({ limit: 50, offset: 0 });
      expect(res.body.total).toBe(res.body.items.length);
      const created = items<{ createdAt: string }>(res).map((d) => d.createdAt);
      expect([...created].sort().reverse()).toEqual(created);
    });

    it.each([
      ['documentType=decree', ['nd-101']],
      ['category=thue&sort=documentId&order=asc', ['nd-101', 'tt-50_pct']],
      ['status=inactive', ['guide-1']],
      ['category=dat-dai&status=inactive', ['guide-1']],
    ])('filters by %s', async (query, expected) => {
      const res = await request(t.server).get(`/documents?${query}`).expect(200);
      expect(ids(res).sort()).toEqual([...expected].sort());
      expect(res.body.total).toBe(expected.length);
    });

    it.each([
      ['luật đất đai', ['luat-dat-dai']],
      ['LUẬT ĐẤT ĐAI', ['luat-dat-dai']],
      ['Luật Đất đai', ['luat-dat-dai']],
      // Decomposed (NFD), as some macOS tools send it: the same words.
      ['Luật Đất đai'.normalize('NFD'), ['luat-dat-dai']],
      ['ND-1', ['nd-101']],
      ['50%', ['tt-50_pct']],
      ['_pct', ['tt-50_pct']],
      ['%', ['tt-50_pct']],
      ['5%p', []],
      ['0_p', ['tt-50_pct']],
      ['0%p', []],
      ['_', ['tt-50_pct']],
      ['\\', []],
    ])('searches %j case-insensitively, wildcards literal', async (search, expected) => {
      const res = await request(t.server).get('/documents').query({ search }).expect(200);
      expect(ids(res).sort()).toEqual(expected);
    });

    it('finds a name stored decomposed (a macOS file name, a row another writer stored) by its composed words too', async () => {
      await request(t.server)
        .post('/documents')
        .send({ ...base, documentId: 'nfd-name', documentName: 'Nghị định đất đai.txt'.normalize('NFD') })
        .expect(201);
      try {
        for (const search of ['nghị định đất', 'Nghị định đất'.normalize('NFD')]) {
          const res = await request(t.server).get('/documents').query({ search }).expect(200);
          expect({ search, ids: ids(res) }).toEqual({ search, ids: ['nfd-name'] });
          expect(res.body.total).toBe(1);
        }
      } finally {
        await request(t.server).delete('/documents/nfd-name').expect(204);
      }
    });

    it('sorts by documentId in both orders', async () => {
      const asc = ids(await request(t.server).get('/documents?sort=documentId&order=asc&limit=500').expect(200));
      const desc = ids(await request(t.server).get('/documents?sort=documentId&order=desc&limit=500').expect(200));
      expect(asc).toEqual([...asc].sort());
      expect(desc).toEqual([...asc].reverse());
    });

    it('sorts by documentName in both orders', async () => {
      const names = (res: request.Response): string[] =>
        items<{ documentName: string }>(res).map((d) => d.documentName);
      const asc = names(
        await request(t.server).get('/documents?sort=documentName&order=asc&category=thue').expect(200),
      );
      const desc = names(
        await request(t.server).get('/documents?sort=documentName&order=desc&category=thue').expect(200),
      );
      expect(asc).toEqual(['Nghị định 101 về thuế', 'Thông tư 50% phí']);
      expect(desc).toEqual(['Thông tư 50% phí', 'Nghị định 101 về thuế']);
    });

    it('paginates with a stable order and bounds', async () => {
      const all = ids(await request(t.server).get('/documents?sort=updatedAt&order=asc&limit=500').expect(200));
      const pages: string[] = [];
      for (let offset = 0; offset < all.length; offset += 2) {
        const res = await request(t.server)
          .get(`/documents?sort=updatedAt&order=asc&limit=2&offset=${offset}`)
          .expect(200);
        expect(res.body).toMatchObject({ limit: 2, offset, total: all.length });
        pages.push(...ids(res));
      }
      expect(pages).toEqual(all);
      const beyond = await request(t.server).get(`/documents?offset=${all.length}`).expect(200);
      expect(beyond.body).toMatchObject({ items: [], total: all.length });
      await request(t.server).get('/documents?limit=1').expect(200);
      await request(t.server).get('/documents?limit=500').expect(200);
    });

    it.each([
      ['limit=0', 'limit must not be less than 1'],
      ['limit=501', 'limit must not be greater than 500'],
      ['limit=abc', 'limit must be an integer'],
      // Decimal digits only: Number() would take these as 16, 100 and 0.
      ['limit=0x10', 'limit must be an integer'],
      ['limit=1e2', 'limit must be an integer'],
      ['offset=', 'offset must be an integer'],
      ['offset=-1', 'offset must not be less than 0'],
      ['sort=password', 'sort must be one of the following values'],
      ['order=sideways', 'order must be one of the following values'],
      ['status=archived', 'status must be one of the following values'],
      ['unknown=1', 'property unknown should not exist'],
    ])('rejects %s with 400', async (query, message) => {
      const res = await request(t.server).get(`/documents?${query}`).expect(400);
      expect(JSON.stringify(res.body.message)).toContain(message);
    });
  });

  describe('GET /documents/:documentId', () => {
    it('returns one document', async () => {
      const res = await request(t.server).get('/documents/nd-101').expect(200);
      expect(res.body).toMatchObject({ documentId: 'nd-101', documentType: 'decree', fileName: 'nd-101.pdf' });
    });

    it('reaches a documentId of the longest kind: 255 UTF-16 units, astral characters among them', async () => {
      // 1,155 characters percent-encoded.
      const documentId = `${'đ'.repeat(125)}${'😀'.repeat(65)}`;
      const path = `/documents/${encodeURIComponent(documentId)}`;
      await request(t.server)
        .post('/documents')
        .send({ documentId, documentName: 'Dài', ...base, chunks: [{ content: 'Điều 1' }] })
        .expect(201);
      expect((await request(t.server).get(path).expect(200)).body.documentId).toBe(documentId);
      expect((await request(t.server).get(`${path}/chunks`).expect(200)).body.total).toBe(1);
      await request(t.server).patch(path).send({ status: 'inactive' }).expect(200);
      await request(t.server).delete(path).expect(204);
      await request(t.server).get(path).expect(404);
    });

    it('answers 404 for a missing document', async () => {
      const res = await request(t.server).get('/documents/nope').expect(404);
      expect(res.body).toEqual({ statusCode: 404, message: 'Document "nope" not found', error: 'Not Found' });
    });

    it('writes NULL total_chunks and status as null', async () => {
      await t.dataSource.query(
        `INSERT INTO documents (document_id, document_name, category, document_type, source_file, file_name,
                                total_chunks, status)
         VALUES ('null-fields', 'Null fields', 'null-fields', 'law', '/x.pdf', 'x.pdf', NULL, NULL)`,
      );
      try {
        const one = await request(t.server).get('/documents/null-fields').expect(200);
        expect(one.body).toMatchObject({ documentId: 'null-fields', totalChunks: null, status: null });
        const list = await request(t.server).get('/documents?category=null-fields').expect(200);
        expect(list.body.items).toEqual([one.body]);
      } finally {
        await t.dataSource.query(`DELETE FROM documents WHERE document_id = 'null-fields'`);
      }
    });
  });

  // GET /documents and GET /documents/:documentId are serialized through Fastify response schemas,
  // which write only the properties they list: none of the documented ones may go missing.
  describe('response schemas of the document reads', () => {
    let schemas: Record<string, { properties: Record<string, unknown>; required?: string[] }>;
    const documented = (name: string): string[] => Object.keys(schemas[name].properties).sort();

    beforeAll(async () => {
      schemas = (await request(t.server).get('/docs-json').expect(200)).body.components.schemas;
    });

    it('list exactly the properties of DocumentDto and DocumentListDto in the OpenAPI document', () => {
      expect(Object.keys(DOCUMENT_RESPONSE_SCHEMA.properties).sort()).toEqual(documented('DocumentDto'));
      expect([...DOCUMENT_RESPONSE_SCHEMA.required].sort()).toEqual(documented('DocumentDto'));
      expect(Object.keys(DOCUMENT_LIST_RESPONSE_SCHEMA.properties).sort()).toEqual(documented('DocumentListDto'));
    });

    it('leave every documented property in the bodies, with the values the unschematized routes send', async () => {
      const one = await request(t.server).get('/documents/nd-101').expect(200);
      expect(Object.keys(one.body).sort()).toEqual(documented('DocumentDto'));
      // PATCH answers the same DocumentDto through JSON.stringify (no response schema): same JSON.
      const patched = await request(t.server).patch('/documents/nd-101').send({}).expect(200);
      expect(one.body).toEqual(patched.body);
      expect(one.body.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

      const list = await request(t.server).get('/documents?sort=documentId&order=asc&limit=500').expect(200);
      expect(Object.keys(list.body).sort()).toEqual(documented('DocumentListDto'));
      const listed = items<{ documentId: string }>(list);
      for (const item of listed) expect(Object.keys(item).sort()).toEqual(documented('DocumentDto'));
      expect(listed.find((d) => d.documentId === 'nd-101')).toEqual(one.body);
    });
  });

  describe('PATCH /documents/:documentId', () => {
    beforeAll(async () => {
      await request(t.server)
        .post('/documents')
        .send({
          documentId: 'patch-me',
          documentName: 'Patch',
          ...base,
          chunks: [
            { id: 'pm-0', content: 'a' },
            {
              id: 'pm-1',
              content: 'b',
              metadata: {
                document_info: { document_status: 'active', title: 'T' },
                processing_metadata: {
                  processing_status: 'active',
                  status_change_history: [{ from: 'x', to: 'active' }],
                },
              },
            },
          ],
        })
        .expect(201);
    });

    it('updates fields and writes status into every chunk, nested keys and history included', async () => {
      const res = await request(t.server)
        .patch('/documents/patch-me')
        .send({ status: 'inactive', documentName: 'Patched' })
        .expect(200);
      expect(res.body).toMatchObject({ documentId: 'patch-me', status: 'inactive', documentName: 'Patched' });
      const [m0, m1] = await chunkMetadata(t, 'patch-me');
      for (const m of [m0, m1]) {
        expect(m.status).toBe('inactive');
        expect(m.document_info.document_status).toBe('inactive');
        expect(m.processing_metadata.processing_status).toBe('inactive');
        expect(m.processing_metadata.status_change_history.at(-1)).toEqual({
          from: 'active',
          to: 'inactive',
          changed_at: expect.any(String),
        });
      }
      expect(m0.processing_metadata.status_change_history).toHaveLength(1);
      expect(m1.processing_metadata.status_change_history).toEqual([
        { from: 'x', to: 'active' },
        { from: 'active', to: 'inactive', changed_at: expect.any(String) },
      ]);
      expect(m1.document_info.title).toBe('T');
      expect(m0.chunk_index).toBe(0);
    });

    it(`keeps the newest ${STATUS_HISTORY_MAX} entries of a chunk's status history`, async () => {
      // A full history from the Python service, which appended without bound, plus a longer one.
      const entries = (n: number) => Array.from({ length: n }, (_, i) => ({ from: `s${i}`, to: `s${i + 1}` }));
      await request(t.server)
        .post('/documents')
        .send({
          documentId: 'long-history',
          documentName: 'History',
          ...base,
          status: 'active',
          chunks: [
            { id: 'lh-0', content: 'a', metadata: { processing_metadata: { status_change_history: entries(100) } } },
            { id: 'lh-1', content: 'b', metadata: { processing_metadata: { status_change_history: entries(150) } } },
          ],
        })
        .expect(201);
      await request(t.server).patch('/documents/long-history').send({ status: 'inactive' }).expect(200);
      const [m0, m1] = await chunkMetadata(t, 'long-history');
      for (const [m, first] of [
        [m0, 1],
        [m1, 51],
      ] as const) {
        const history = m.processing_metadata.status_change_history;
        expect(history).toHaveLength(STATUS_HISTORY_MAX);
        expect(history[0]).toEqual({ from: `s${first}`, to: `s${first + 1}` });
        expect(history.at(-2)).toEqual({ from: `s${first + 98}`, to: `s${first + 99}` });
        expect(history.at(-1)).toEqual({ from: 'active', to: 'inactive', changed_at: expect.any(String) });
      }
    });

    it('writes documentType and category into every chunk', async () => {
      await request(t.server)
        .patch('/documents/patch-me')
        .send({ documentType: 'decree', category: 'thue' })
        .expect(200);
      const metas = await chunkMetadata(t, 'patch-me');
      for (const m of metas) expect(m).toMatchObject({ document_type: 'decree', category: 'thue', status: 'inactive' });
      expect(metas[0].processing_metadata.status_change_history).toHaveLength(1);
    });

    it('bumps updated_at', async () => {
      // Set far back first: a PATCH that left it alone could not pass for one that wrote it.
      await t.dataSource.query(`UPDATE documents SET updated_at = '2000-01-01' WHERE document_id = 'patch-me'`);
      const after = (await request(t.server).patch('/documents/patch-me').send({ fileName: 'z.pdf' }).expect(200)).body;
      expect(after.fileName).toBe('z.pdf');
      expect(new Date(after.updatedAt).getUTCFullYear()).toBeGreaterThan(2000);
      // The stored values again: nothing written, updatedAt and the chunks' metadata as they were.
      const metas = await chunkMetadata(t, 'patch-me');
      const same = await request(t.server)
        .patch('/documents/patch-me')
        .send({ fileName: 'z.pdf', status: after.status, documentType: after.documentType })
        .expect(200);
      expect(same.body).toEqual(after);
      expect(await chunkMetadata(t, 'patch-me')).toEqual(metas);
    });

    it.each([
      [{ documentId: 'other' }, 'property documentId should not exist'],
      [{ status: 'archived' }, 'status must be one of the following values'],
      [{ documentName: '' }, 'documentName must be longer than or equal to 1'],
    ])('rejects %j with 400', async (body, message) => {
      const res = await request(t.server).patch('/documents/patch-me').send(body).expect(400);
      expect(JSON.stringify(res.body.message)).toContain(message);
    });

    it('answers 404 for a missing document', async () => {
      await request(t.server).patch('/documents/nope').send({ status: 'active' }).expect(404);
    });
  });

  describe('GET /documents/:documentId/chunks', () => {
    it('pages chunks in chunk_index order, with embeddings on request', async () => {
      const res = await request(t.server)
        .get('/documents/with-chunks/chunks?limit=1&offset=1&includeEmbedding=true')
        .expect(200);
      // The page is echoed, as GET /documents does.
      expect(res.body).toMatchObject({ total: 3, limit: 1, offset: 1 });
      expect(res.body.items).toHaveLength(1);
      expect(res.body.items[0].id).toBe('wc-1');
      expect(res.body.items[0].embedding).toHaveLength(384);
      expect(res.body.items[0].embedding[0]).toBeCloseTo(0.5);
      const without = await request(t.server).get('/documents/with-chunks/chunks?includeEmbedding=false').expect(200);
      expect(without.body.items[0]).not.toHaveProperty('embedding');
    });

    it('returns chunks with NULL text and odd chunk_index values', async () => {
      await request(t.server)
        .post('/documents')
        .send({ documentId: 'legacy', documentName: 'L', ...base })
        .expect(201);
      const [{ uuid }] = await t.dataSource.query<Array<{ uuid: string }>>(
        `SELECT uuid FROM langchain_pg_collection WHERE name = 'laws'`,
      );
      await t.dataSource.query(
        `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata) VALUES
           ('lg-b', $1, NULL, NULL, '{"document_id":"legacy","chunk_index":"x"}'),
           ('lg-a', $1, NULL, 'one', '{"document_id":"legacy","chunk_index":1}'),
           ('lg-c', $1, NULL, 'zero', '{"document_id":"legacy","chunk_index":"0"}')`,
        [uuid],
      );
      const res = await request(t.server).get('/documents/legacy/chunks?includeEmbedding=true').expect(200);
      expect(items<{ id: string }>(res).map((c) => c.id)).toEqual(['lg-c', 'lg-a', 'lg-b']);
      expect(res.body.items[2]).toMatchObject({ content: null, embedding: null });
    });

    it.each([['limit=0'], ['limit=1001'], ['includeEmbedding=yes'], ['x=1']])('rejects %s with 400', async (query) => {
      await request(t.server).get(`/documents/with-chunks/chunks?${query}`).expect(400);
    });

    it('bounds a page with vectors to 100 chunks, naming the rule', async () => {
      const res = await request(t.server).get('/documents/with-chunks/chunks?limit=101&includeEmbedding=true');
      expect([res.status, res.body.message]).toEqual([
        400,
        'limit must be at most 100 with includeEmbedding=true (got 101)',
      ]);
      await request(t.server).get('/documents/with-chunks/chunks?limit=101').expect(200);
      await request(t.server).get('/documents/with-chunks/chunks?limit=100&includeEmbedding=true').expect(200);
    });

    it('answers 404 for a missing document', async () => {
      await request(t.server).get('/documents/nope/chunks').expect(404);
    });
  });

  describe('DELETE /documents/:documentId', () => {
    it('deletes the document and its chunks, nothing else', async () => {
      const before = await rowsSnapshot(t);
      await request(t.server).delete('/documents/with-chunks').expect(204);
      await request(t.server).get('/documents/with-chunks').expect(404);
      expect(await chunkMetadata(t, 'with-chunks')).toEqual([]);
      const after = await rowsSnapshot(t);
      expect(after.documents).toBe(before.documents - 1);
      expect(after.chunks).toBe(before.chunks - 3);
    });

    it('answers 404 for a missing document', async () => {
      await request(t.server).delete('/documents/with-chunks').expect(404);
    });
  });

  describe('orphan chunks', () => {
    it('never break any route', async () => {
      const [{ uuid }] = await t.dataSource.query<Array<{ uuid: string }>>(
        `SELECT uuid FROM langchain_pg_collection WHERE name = 'laws'`,
      );
      await t.dataSource.query(
        `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata) VALUES
           ('orphan-1', $1, '[1,2,3]', NULL, '{"document_id":"ghost","chunk_index":0}'),
           ('orphan-2', $1, NULL, 'x', 'null'),
           ('orphan-3', $1, NULL, 'x', NULL)`,
        [uuid],
      );
      await request(t.server).get('/documents').expect(200);
      await request(t.server).get('/documents/ghost').expect(404);
      await request(t.server).get('/documents/ghost/chunks').expect(404);
      await request(t.server).patch('/documents/ghost').send({ status: 'inactive' }).expect(404);
      await request(t.server).delete('/documents/ghost').expect(404);
      await request(t.server).patch('/documents/patch-me').send({ status: 'expired' }).expect(200);
      // A new document named like the orphan's document adopts it on recount; its own chunks are added.
      const res = await request(t.server)
        .post('/documents')
        .send({ documentId: 'ghost', documentName: 'G', ...base, chunks: [{ content: 'new' }] })
        .expect(201);
      expect(res.body.totalChunks).toBe(2);
      const [{ n }] = await t.dataSource.query<Array<{ n: number }>>(
        `SELECT count(*)::int AS n FROM langchain_pg_embedding WHERE id IN ('orphan-2', 'orphan-3')`,
      );
      expect(n).toBe(2);
      await request(t.server).delete('/documents/ghost').expect(204);

      // Without chunks in the request too: the chunks written before the document are counted.
      await request(t.server)
        .post('/embeddings')
        .send({ items: [{ id: 'early-1', content: 'a', metadata: { document_id: 'early' } }] })
        .expect(201);
      const early = await request(t.server)
        .post('/documents')
        .send({ documentId: 'early', documentName: 'E', ...base })
        .expect(201);
      expect(early.body.totalChunks).toBe(1);
      expect((await request(t.server).get('/documents/early').expect(200)).body.totalChunks).toBe(1);
      await request(t.server).delete('/documents/early').expect(204);
    });
  });
});

const describeOnServer = TEST_TARGET === 'postgres' ? describe : describe.skip;

describeOnServer(
  'GET /documents/:documentId as a prepared statement (postgres target only: embedded never prepares)',
  () => {
    const documentId = 'prepared-read';
    let t: TestApp;

    /** The prepared statements of the connection the app's pool hands out next (its most recently released one). */
    async function preparedOnNextConnection(app: TestApp): Promise<string[]> {
      const client = await driverPool(app.dataSource)!.connect();
      try {
        const { rows } = await client.query<{ name: string }>('SELECT name FROM pg_prepared_statements ORDER BY name');
        return rows.map((row) => row.name);
      } finally {
        client.release();
      }
    }

    beforeAll(async () => {
      t = await startTestApp();
      await request(t.server)
        .post('/documents')
        .send({ ...base, documentId, documentName: 'Prepared' })
        .expect(201);
    });

    afterAll(async () => {
      await t.close();
    });

    it('prepares the lookup on the connection that served it, and not with DB_PREPARED_STATEMENTS=false', async () => {
      await request(t.server).get(`/documents/${documentId}`).expect(200);
      expect(await preparedOnNextConnection(t)).toEqual([PREPARED_STATEMENTS.getDocument]);

      const unprepared = await startTestApp({ DB_PREPARED_STATEMENTS: 'false' });
      try {
        await request(unprepared.server)
          .post('/documents')
          .send({ ...base, documentId, documentName: 'Unprepared' })
          .expect(201);
        const res = await request(unprepared.server).get(`/documents/${documentId}`).expect(200);
        expect(res.body).toMatchObject({ documentId, documentName: 'Unprepared' });
        expect(await preparedOnNextConnection(unprepared)).toEqual([]);
      } finally {
        await unprepared.close();
      }
    });

    it('prepares each shape of the list under its own name, and the same shape again under the same one', async () => {
      // preparedOnNextConnection reads the connection that served the request just before it.
      await request(t.server).get('/documents?limit=5').expect(200);
      expect(await preparedOnNextConnection(t)).toContain(`${PREPARED_STATEMENTS.listDocuments}_0000_createdAt_desc`);
      const filtered = await request(t.server)
        .get(`/documents?documentType=${base.documentType}&search=Prep&sort=documentName&order=asc`)
        .expect(200);
      const items = (filtered.body as { items: Array<{ documentId: string }> }).items;
      expect(items.map((d) => d.documentId)).toEqual([documentId]);
      expect(await preparedOnNextConnection(t)).toContain(`${PREPARED_STATEMENTS.listDocuments}_1001_documentName_asc`);
      // The same shape with other values: the prepared statement answers them.
      const other = await request(t.server)
        .get(`/documents?documentType=${base.documentType}&search=nothing-like-it&sort=documentName&order=asc`)
        .expect(200);
      expect(other.body).toMatchObject({ items: [], total: 0 });
    });

    it('keeps answering after a migration changes a column the prepared statement returns', async () => {
      // Every connection of the pool serves the read, so each one holds the statement as prepared before the change.
      const poolMax = t.config.database.poolMax;
      const reads = await Promise.all(
        Array.from({ length: poolMax }, () => request(t.server).get(`/documents/${documentId}`)),
      );
      expect(reads.map((res) => res.status)).toEqual(reads.map(() => 200));
      // varchar(100) → text: the statement's result type changes, which the server refuses to run prepared (0A000).
      await t.dataSource.query('ALTER TABLE documents ALTER COLUMN category TYPE text');
      for (let i = 0; i <= poolMax; i += 1) {
        const res = await request(t.server).get(`/documents/${documentId}`);
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({ documentId, category: base.category });
      }
      expect(await preparedOnNextConnection(t)).toEqual([PREPARED_STATEMENTS.getDocument]);
    });
  },
);

describe('GET /documents/:documentId/chunks: CHUNKS_PAGE_MAX_BYTES', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ CHUNKS_PAGE_MAX_BYTES: String(1024 * 1024) });
    await request(t.server)
      .post('/documents')
      .send({ documentId: 'big-texts', documentName: 'B', ...base })
      .expect(201);
    // 20 chunks of 100,000 characters (2 MB), as LangChain or POST /embeddings may write them.
    await t.dataSource.query(
      `INSERT INTO langchain_pg_embedding (id, document, cmetadata)
       SELECT 'bt-' || lpad(i::text, 3, '0'), repeat('x', 100000), jsonb_build_object('document_id', 'big-texts', 'chunk_index', i)
         FROM generate_series(0, 19) i`,
    );
  });
  afterAll(() => t.close());

  const page = (query: string) => request(t.server).get(`/documents/big-texts/chunks?${query}`);
  const ids = (res: request.Response) => items<{ id: string }>(res).map((c) => c.id);
  const chunkId = (i: number) => `bt-${String(i).padStart(3, '0')}`;

  it('refuses a page over it with a 400 naming the limit that fits, and serves that limit', async () => {
    const refused = await page('limit=1000');
    expect([refused.status, (refused.body as { message: string }).message]).toEqual([
      400,
      // 1 MiB holds 10 chunks of 100,000 bytes and their metadata as JSON.
      'limit 1000 is too large for these chunks: the 11 chunks from offset 0 hold more than 1 MiB of text and metadata (CHUNKS_PAGE_MAX_BYTES); ask for limit=10 or less',
    ]);
    expect(ids(await page('limit=10').expect(200))).toEqual(Array.from({ length: 10 }, (_, i) => chunkId(i)));
    await page('limit=11').expect(400);
    // What is left after an offset fits.
    const rest = await page('limit=1000&offset=15').expect(200);
    expect(rest.body).toMatchObject({ total: 20, limit: 1000, offset: 15 });
    expect(ids(rest)).toEqual([15, 16, 17, 18, 19].map(chunkId));
  });

  it('counts metadata as the JSON it is sent as, not its compressed stored size', async () => {
    // 1.1 MB of one letter: a few KB stored.
    await t.dataSource.query(
      `UPDATE langchain_pg_embedding SET cmetadata = cmetadata || jsonb_build_object('note', repeat('z', 1100000)) WHERE id = 'bt-016'`,
    );
    const refused = await page('limit=2&offset=15');
    expect([refused.status, (refused.body as { message: string }).message]).toEqual([
      400,
      'limit 2 is too large for these chunks: the 2 chunks from offset 15 hold more than 1 MiB of text and metadata (CHUNKS_PAGE_MAX_BYTES); ask for limit=1 or less',
    ]);
    expect(ids(await page('limit=1&offset=15').expect(200))).toEqual([chunkId(15)]);
  });

  it('serves a chunk larger than a page alone', async () => {
    await t.dataSource.query(`UPDATE langchain_pg_embedding SET document = repeat('y', 1100000) WHERE id = 'bt-000'`);
    const refused = await page('limit=2');
    expect([refused.status, (refused.body as { message: string }).message]).toEqual([
      400,
      'limit 2 is too large for these chunks: the 2 chunks from offset 0 hold more than 1 MiB of text and metadata (CHUNKS_PAGE_MAX_BYTES); ask for limit=1 or less',
    ]);
    const one = await page('limit=1').expect(200);
    expect(items<{ id: string; content: string }>(one).map((c) => [c.id, c.content.length])).toEqual([
      ['bt-000', 1_100_000],
    ]);
  });
});
