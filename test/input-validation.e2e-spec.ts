import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { rowsSnapshot, startTestApp, type TestApp } from './support/test-app.js';
import { DOCUMENT_ID_MESSAGE } from '../src/documents/dto/document.dto.js';

/**
 * Inputs an audit found answered with a 500, a generic database message, a silently changed value
 * or a misleading 400: NUL characters in stored strings and JSON metadata, null for optional
 * fields, metadata keys named like Object.prototype members, prototype-poisoning keys, and a
 * document type named `__proto__` in GET /stats. Every bad input is a 4xx naming the problem that
 * writes nothing (read back from the tables); every good one is stored exactly as sent.
 */

const base = { documentType: 'law', category: 'dat-dai', sourceFile: '/data/laws/file.pdf' };

/** A metadata object whose keys name members of Object.prototype, at several depths (JSON.parse: own keys). */
const PROTOTYPE_NAMED = JSON.parse(
  '{"constructor": "x", "toString": "y", "hasOwnProperty": 1, "valueOf": {}, "isPrototypeOf": null, "prototype": 2,' +
    ' "a": 1, "nested": {"constructor": {"a": 1}, "toString": [{"valueOf": 2, "__defineGetter__": "g"}]}}',
) as Record<string, unknown>;

type Method = 'get' | 'post' | 'patch' | 'put' | 'delete';

describe('Input validation (NUL, null, prototype-named keys)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
    await request(t.server)
      .post('/documents')
      .send({ ...base, documentId: 'd1', documentName: 'Document 1', chunks: [{ id: 'd1-c0', content: 'một' }] })
      .expect(201);
  });

  afterAll(async () => {
    await t.close();
  });

  /** Sends the request, expects `status` with `message` (a string, or the one message of a list), and no write. */
  async function expectRefused(
    method: Method,
    url: string,
    body: unknown,
    status: number,
    message: string,
    raw = false,
  ): Promise<void> {
    const before = await rowsSnapshot(t);
    let req = request(t.server)[method](url);
    if (body !== undefined)
      req = raw ? req.set('content-type', 'application/json').send(body as string) : req.send(body as object);
    const res = await req;
    expect({ url, status: res.status }).toEqual({ url, status });
    const sent = (res.body as { message: unknown }).message;
    expect(Array.isArray(sent) ? sent : [sent]).toEqual([message]);
    expect(await rowsSnapshot(t)).toEqual(before);
  }

  describe('NUL characters', () => {
    it('refuses NUL in collection metadata, in a value or a key at any depth, with a 400 naming metadata', async () => {
      await expectRefused(
        'post',
        '/collections',
        { name: 'cm', metadata: { k: '\u0000' } },
        400,
        'metadata must not contain NUL characters',
      );
      await expectRefused(
        'post',
        '/collections',
        { name: 'cm', metadata: { a: [{ 'k\u0000': 1 }] } },
        400,
        'metadata must not contain NUL characters',
      );
      await request(t.server).get('/collections/cm').expect(404);
    });

    it('refuses NUL in chunk metadata of POST /documents with a 400 naming the chunk, and creates nothing', async () => {
      await expectRefused(
        'post',
        '/documents',
        { ...base, documentId: 'dn', documentName: 'x', chunks: [{ content: 'x', metadata: { 'k\u0000': 1 } }] },
        400,
        'chunks.0.metadata must not contain NUL characters',
      );
      await expectRefused(
        'post',
        '/documents',
        {
          ...base,
          documentId: 'dn',
          documentName: 'x',
          chunks: [{ content: 'x' }, { content: 'y', metadata: { a: { b: ['ok', 'n\u0000'] } } }],
        },
        400,
        'chunks.1.metadata must not contain NUL characters',
      );
      await request(t.server).get('/documents/dn').expect(404);
    });

    it('still refuses NUL in POST /embeddings metadata', async () => {
      await expectRefused(
        'post',
        '/embeddings',
        { items: [{ id: 'en', content: 'a', metadata: { k: '\u0000' } }] },
        400,
        'items.0.metadata must not contain NUL characters',
      );
    });

    it('refuses NUL in stored strings of a body with a 400 naming the field', async () => {
      const cases: Array<[Method, string, Record<string, unknown>, string]> = [
        ['post', '/documents', { ...base, documentId: 'd\u0000', documentName: 'x' }, 'documentId'],
        ['post', '/documents', { ...base, documentId: 'dq', documentName: 'x\u0000' }, 'documentName'],
        ['post', '/documents', { ...base, documentId: 'dq', documentName: 'x', collection: 'c\u0000' }, 'collection'],
        ['post', '/collections', { name: 'c\u0000m' }, 'name'],
        ['post', '/embeddings', { collection: 'c\u0000', items: [{ content: 'a' }] }, 'collection'],
        ['post', '/ask', { question: 'x', collection: 'c\u0000' }, 'collection'],
        ['patch', '/documents/d1', { documentName: 'a\u0000' }, 'documentName'],
        [
          'post',
          '/documents/ingest',
          { text: 'hello', documentType: 'law', category: 'x', documentId: 'i\u0000' },
          'documentId',
        ],
      ];
      for (const [method, url, body, field] of cases) {
        await expectRefused(method, url, body, 400, `${field} must not contain NUL characters`);
      }
    });

    it('refuses NUL in a path or query parameter with a 400 naming it, not a database message', async () => {
      const cases: Array<[Method, string, unknown, string]> = [
        ['get', '/documents/a%00b', undefined, 'documentId'],
        ['get', '/documents/a%00b/chunks', undefined, 'documentId'],
        ['patch', '/documents/a%00b', { status: 'inactive' }, 'documentId'],
        ['delete', '/documents/a%00b', undefined, 'documentId'],
        ['get', '/collections/a%00b', undefined, 'name'],
        ['delete', '/collections/a%00b', undefined, 'name'],
        ['put', '/collections/a%00b/vector-index', undefined, 'name'],
        ['delete', '/collections/a%00b/vector-index', undefined, 'name'],
        ['get', '/embeddings/a%00b', undefined, 'id'],
        ['delete', '/embeddings/a%00b', undefined, 'id'],
        ['get', '/documents?documentType=a%00b', undefined, 'documentType'],
        ['get', '/documents?category=a%00b', undefined, 'category'],
      ];
      for (const [method, url, body, field] of cases) {
        await expectRefused(method, url, body, 400, `${field} must not contain NUL characters`);
      }
    });
  });

  describe('unpaired UTF-16 surrogates', () => {
    // A JSON "\ud800" escape parses to a lone surrogate, which UTF-8 cannot encode: the driver used
    // to store U+FFFD in its place, so the text read back differed from the one sent.
    const UNPAIRED = 'must not contain unpaired UTF-16 surrogates';

    it('refuses one in a stored string with a 400 naming the field, and writes nothing', async () => {
      const cases: Array<[string, Record<string, unknown>, string]> = [
        ['/embeddings', { items: [{ id: 's0', content: 'a\ud800b', embedding: [1, 0] }] }, 'items.0.content'],
        [
          '/embeddings',
          {
            items: [
              { id: 's1', content: 'fine', embedding: [1, 0] },
              { id: 's2', content: '\udc00 low first', embedding: [0, 1] },
            ],
          },
          'items.1.content',
        ],
        ['/embeddings', { items: [{ id: 's3\ud83d', content: 'a', embedding: [1, 0] }] }, 'items.0.id'],
        [
          '/documents',
          { ...base, documentId: 'ds', documentName: 'x', chunks: [{ content: 'end \ud83d', embedding: [1, 0] }] },
          'chunks.0.content',
        ],
        ['/documents', { ...base, documentId: 'ds', documentName: 'x\udfff' }, 'documentName'],
        ['/documents/ingest', { text: 'hello \ud800', documentType: 'law', category: 'x' }, 'text'],
        // In JSON metadata, a key or a value at any depth.
        [
          '/embeddings',
          { items: [{ id: 's4', content: 'a', embedding: [1, 0], metadata: { a: [{ b: 'x\ud800' }] } }] },
          'items.0.metadata',
        ],
        [
          '/documents',
          { ...base, documentId: 'ds', documentName: 'x', chunks: [{ content: 'x', metadata: { 'k\udc00': 1 } }] },
          'chunks.0.metadata',
        ],
        ['/collections', { name: 'cs', metadata: { k: '\ud800' } }, 'metadata'],
      ];
      for (const [url, body, field] of cases) {
        await expectRefused('post', url, body, 400, `${field} ${UNPAIRED}`);
      }
      await request(t.server).get('/documents/ds').expect(404);
    });

    it('stores a surrogate pair (an emoji) exactly as sent', async () => {
      await request(t.server)
        .post('/embeddings')
        .send({ collection: 'emoji', items: [{ id: 'emoji', content: 'grinning \ud83d\ude00', embedding: [1, 0] }] })
        .expect(201);
      const res = await request(t.server).get('/embeddings/emoji').expect(200);
      expect(res.body.content).toBe('grinning 😀');
      await request(t.server).delete('/embeddings/emoji').expect(204);
    });
  });

  describe('all-zero vectors', () => {
    const ZERO =
      'must not be all zeros, or so close to it that its float32 norm underflows: its cosine distance to any vector is undefined';
    it('POST /embeddings refuses an all-zero vector, as numbers or as base64, with a 400 naming it', async () => {
      await expectRefused(
        'post',
        '/embeddings',
        { items: [{ id: 'z0', content: 'a', embedding: [0, 0, -0] }] },
        400,
        `items.0.embedding ${ZERO}`,
      );
      await expectRefused(
        'post',
        '/embeddings',
        {
          items: [
            { id: 'z1', content: 'a', embedding: [1, 0, 0] },
            { id: 'z2', content: 'b', embedding: Buffer.alloc(12).toString('base64') },
          ],
        },
        400,
        `items.1.embedding ${ZERO}`,
      );
    });

    it('POST /ask refuses an all-zero queryEmbedding', async () => {
      await expectRefused('post', '/ask', { question: 'q', queryEmbedding: [0, 0, 0] }, 400, `queryEmbedding ${ZERO}`);
      // Not zero as a double, but its float32 squares underflow: every chunk would score the same.
      await expectRefused(
        'post',
        '/ask',
        { question: 'q', queryEmbedding: [1e-30, 1e-30, 1e-30] },
        400,
        `queryEmbedding ${ZERO}`,
      );
    });
  });

  describe('metadata that would not be stored or counted as sent', () => {
    it('refuses a number beyond a double (stored as null) in chunk, document and collection metadata', async () => {
      const problem = 'must not hold a number beyond the range of a double (it would be stored as null)';
      await expectRefused(
        'post',
        '/embeddings',
        '{"items":[{"id":"n1","content":"a","metadata":{"document_id":"d1","score":1e400}}]}',
        400,
        `items.0.metadata ${problem}`,
        true,
      );
      await expectRefused(
        'post',
        '/documents',
        '{"documentId":"huge","documentName":"x","documentType":"t","category":"c","sourceFile":"s","chunks":[{"content":"a","metadata":{"v":1e400}}]}',
        400,
        `chunks.0.metadata ${problem}`,
        true,
      );
      await expectRefused(
        'post',
        '/collections',
        '{"name":"huge-meta","metadata":{"limits":[1,-1e999]}}',
        400,
        `metadata ${problem}`,
        true,
      );
    });

    it('refuses a document_id that SQL would read as another text than the service (true, 1e21)', async () => {
      for (const documentId of [true, 1e21, 0.5, { id: 'd1' }]) {
        await expectRefused(
          'post',
          '/embeddings',
          { items: [{ id: 'n2', content: 'a', metadata: { document_id: documentId } }] },
          400,
          "items.0.metadata.document_id must be a string or an integer: it names the chunk's document",
        );
      }
    });
  });

  describe('lengths counted as PostgreSQL counts characters', () => {
    it('counts an emoji in a documentId as one of its 255 characters, as varchar(255) does', async () => {
      const doc = { documentName: 'x', documentType: 't', category: 'c', sourceFile: 's' };
      // 255 characters for PostgreSQL, 510 UTF-16 units: the pattern without `u` counted the units.
      const res = await request(t.server)
        .post('/documents')
        .send({ ...doc, documentId: '😀'.repeat(255) })
        .expect(201);
      expect((res.body as { documentId: string }).documentId).toBe('😀'.repeat(255));
      await request(t.server)
        .delete(`/documents/${encodeURIComponent('😀'.repeat(255))}`)
        .expect(204);
      await expectRefused('post', '/documents', { ...doc, documentId: '😀'.repeat(256) }, 400, DOCUMENT_ID_MESSAGE);
    });

    it('counts U+FE0F (emoji presentation) as the character varchar(50) counts it', async () => {
      const doc = { documentId: 'fe0f', documentName: 'x', category: 'c', sourceFile: 's' };
      // 60 characters for PostgreSQL; class-validator's MaxLength saw 30 and the insert failed.
      await expectRefused(
        'post',
        '/documents',
        { ...doc, documentType: '☺\uFE0F'.repeat(30) },
        400,
        'documentType must be shorter than or equal to 50 characters',
      );
      // 50 characters, as many as the column holds; a surrogate pair (an emoji) is one of them.
      const res = await request(t.server)
        .post('/documents')
        .send({ ...doc, documentType: '☺\uFE0F'.repeat(24) + '😀😀' })
        .expect(201);
      expect((res.body as { documentType: string }).documentType).toBe('☺\uFE0F'.repeat(24) + '😀😀');
      await request(t.server).delete('/documents/fe0f').expect(204);
    });
  });

  describe('values too large for a btree index', () => {
    it('are a 400 naming the field, and nothing is written', async () => {
      // Random text does not compress: 3,200 bytes stay above a btree entry's 2,704.
      const incompressible = randomBytes(2400).toString('base64');
      const problem = 'is too large to be indexed: a btree index entry holds about 2,700 bytes (after compression)';
      await expectRefused(
        'post',
        '/documents',
        { documentId: 'long-source', documentName: 'x', documentType: 't', category: 'c', sourceFile: incompressible },
        400,
        `sourceFile ${problem}`,
      );
      await expectRefused(
        'post',
        '/embeddings',
        { items: [{ id: 'long-type', content: 'a', metadata: { document_type: incompressible } }] },
        400,
        `metadata.document_type ${problem}`,
      );
      // 2,688 characters fit idx_embedding_document_id's entry but not chunk_counts_key's, which
      // holds the collection's uuid beside them.
      await expectRefused(
        'post',
        '/embeddings',
        { items: [{ id: 'long-id', content: 'a', metadata: { document_id: randomBytes(2016).toString('base64') } }] },
        400,
        `metadata.document_id ${problem}`,
      );
    });
  });

  describe('vectors too large for a float32 norm', () => {
    const HUGE =
      'is too large: the sum of its float32 squares overflows, so its cosine distance to any vector is undefined';
    it('POST /embeddings and POST /ask refuse them with a 400 naming the vector, as numbers or as base64', async () => {
      // Every component a valid float4, but pgvector's float32 sum of squares is infinite: every
      // distance would be NaN or 1, every score 0.
      await expectRefused(
        'post',
        '/embeddings',
        { items: [{ id: 'h0', content: 'a', embedding: Array(384).fill(1e18) }] },
        400,
        `items.0.embedding ${HUGE}`,
      );
      await expectRefused(
        'post',
        '/embeddings',
        {
          items: [
            { id: 'h1', content: 'a', embedding: Buffer.from(Float32Array.of(2e19, 0).buffer).toString('base64') },
          ],
        },
        400,
        `items.0.embedding ${HUGE}`,
      );
      await expectRefused(
        'post',
        '/ask',
        { question: 'q', queryEmbedding: [2e19, 0, 0] },
        400,
        `queryEmbedding ${HUGE}`,
      );
    });
  });

  describe('null for optional fields', () => {
    it('PATCH /documents refuses null for every field with a 400 naming it, and changes neither the document nor its chunks', async () => {
      for (const field of ['documentName', 'documentType', 'category', 'sourceFile', 'fileName', 'status']) {
        await expectRefused('patch', '/documents/d1', { [field]: null }, 400, `${field} must not be null`);
      }
      const doc = await request(t.server).get('/documents/d1').expect(200);
      expect(doc.body).toMatchObject({ documentName: 'Document 1', status: 'active' });
      const chunks = await request(t.server).get('/documents/d1/chunks').expect(200);
      const metadata = (chunks.body as { items: Array<{ metadata: Record<string, unknown> }> }).items[0].metadata;
      expect(metadata.status).toBe('active');
      expect(metadata).not.toHaveProperty('processing_metadata');
    });

    it('POST /documents/recount refuses dryRun: null and documentIds: null instead of running a recount', async () => {
      // A count the recount would correct: a dry run with null would have been a real one.
      await t.dataSource.query(`UPDATE documents SET total_chunks = 7 WHERE document_id = 'd1'`);
      await expectRefused('post', '/documents/recount', { dryRun: null }, 400, 'dryRun must not be null');
      await expectRefused('post', '/documents/recount', { documentIds: null }, 400, 'documentIds must not be null');
      const [row] = await t.dataSource.query<Array<{ total_chunks: number }>>(
        `SELECT total_chunks FROM documents WHERE document_id = 'd1'`,
      );
      expect(row.total_chunks).toBe(7);
      const recount = await request(t.server).post('/documents/recount').send({ dryRun: false }).expect(200);
      expect(recount.body).toMatchObject({ dryRun: false, corrected: 1 });
    });

    it('POST /documents, /embeddings, /collections, /documents/ingest and /ask refuse null for optional fields', async () => {
      const document = { ...base, documentId: 'dz', documentName: 'x' };
      const cases: Array<[string, Record<string, unknown>, string]> = [
        ['/documents', { ...document, documentId: null }, 'documentId'],
        ['/documents', { ...document, fileName: null }, 'fileName'],
        ['/documents', { ...document, status: null }, 'status'],
        ['/documents', { ...document, collection: null }, 'collection'],
        ['/documents', { ...document, chunks: null }, 'chunks'],
        ['/documents', { ...document, chunks: [{ id: null, content: 'a' }] }, 'chunks.0.id'],
        ['/documents', { ...document, chunks: [{ content: 'a', metadata: null }] }, 'chunks.0.metadata'],
        [
          '/documents',
          { ...document, chunks: [{ content: 'a' }, { content: 'b', embedding: null }] },
          'chunks.1.embedding',
        ],
        ['/embeddings', { collection: null, items: [{ content: 'a' }] }, 'collection'],
        ['/embeddings', { items: [{ content: 'a', id: null }] }, 'items.0.id'],
        [
          '/embeddings',
          { items: [{ content: 'a' }, { content: 'b', metadata: null }, { content: 'c' }] },
          'items.1.metadata',
        ],
        ['/collections', { name: 'cz', metadata: null }, 'metadata'],
        [
          '/documents/ingest',
          { text: 'hello', documentType: 'law', category: 'x', documentName: null },
          'documentName',
        ],
        ['/documents/ingest', { text: 'hello', documentType: 'law', category: 'x', chunkSize: null }, 'chunkSize'],
        ['/ask', { question: 'x', k: null }, 'k'],
        ['/ask', { question: 'x', mode: null }, 'mode'],
        ['/ask', { question: 'x', minScore: null }, 'minScore'],
        ['/ask', { question: 'x', exact: null }, 'exact'],
        ['/ask', { question: 'x', queryEmbedding: null }, 'queryEmbedding'],
      ];
      for (const [url, body, field] of cases) await expectRefused('post', url, body, 400, `${field} must not be null`);
    });

    it('keeps filter: null on POST /ask, documented as no filter', async () => {
      const res = await request(t.server).post('/ask').send({ question: 'một', filter: null }).expect(200);
      expect((res.body as { results: Array<{ id: string }> }).results.map((r) => r.id)).toContain('d1-c0');
    });

    it('documents no request field as nullable but the filter', async () => {
      const res = await request(t.server).get('/docs-json').expect(200);
      const schemas = (
        res.body as { components: { schemas: Record<string, { properties?: Record<string, { nullable?: boolean }> }> } }
      ).components.schemas;
      const requests = [
        'CreateDocumentDto',
        'UpdateDocumentDto',
        'RecountDocumentsDto',
        'ChunkInputDto',
        'EmbeddingItemDto',
        'CreateEmbeddingsDto',
        'CreateCollectionDto',
        'AskRequestDto',
        'IngestTextDto',
      ];
      const nullable = requests.flatMap((name) =>
        Object.entries(schemas[name].properties ?? {})
          .filter(([, property]) => property.nullable === true)
          .map(([property]) => `${name}.${property}`),
      );
      expect(nullable).toEqual(['AskRequestDto.filter']);
    });
  });

  describe('metadata keys named like Object.prototype members', () => {
    it('POST /embeddings stores them as sent, for one item and in a batch', async () => {
      await request(t.server)
        .post('/embeddings')
        .send({ items: [{ id: 'ck1', content: 'a', metadata: PROTOTYPE_NAMED }] })
        .expect(201);
      await request(t.server)
        .post('/embeddings')
        .send({
          items: [
            { id: 'ck2', content: 'b', metadata: { a: 2 } },
            { id: 'ck3', content: 'c', metadata: PROTOTYPE_NAMED },
            { id: 'ck4', content: 'd', metadata: { toString: 'x' } },
          ],
        })
        .expect(201);
      for (const [id, metadata] of [
        ['ck1', PROTOTYPE_NAMED],
        ['ck2', { a: 2 }],
        ['ck3', PROTOTYPE_NAMED],
        ['ck4', { toString: 'x' }],
      ] as const) {
        const res = await request(t.server).get(`/embeddings/${id}`).expect(200);
        expect(JSON.stringify((res.body as { metadata: unknown }).metadata)).toBe(
          JSON.stringify((await storedMetadata(id)) ?? null),
        );
        expect(sortedJson((res.body as { metadata: unknown }).metadata)).toBe(sortedJson(metadata));
      }
    });

    it('POST /documents stores them in chunk metadata as sent, beside the keys the service sets', async () => {
      await request(t.server)
        .post('/documents')
        .send({
          ...base,
          documentId: 'dp',
          documentName: 'x',
          chunks: [
            { id: 'dp-0', content: 'x', metadata: PROTOTYPE_NAMED },
            { id: 'dp-1', content: 'y', metadata: { constructor: 'z' } },
          ],
        })
        .expect(201);
      const service = {
        document_id: 'dp',
        document_type: 'law',
        category: base.category,
        status: 'active',
        total_chunks: 2,
      };
      expect(sortedJson(await storedMetadata('dp-0'))).toBe(
        sortedJson({ ...PROTOTYPE_NAMED, ...service, chunk_id: 'dp-0', chunk_index: 0 }),
      );
      expect(sortedJson(await storedMetadata('dp-1'))).toBe(
        sortedJson({ constructor: 'z', ...service, chunk_id: 'dp-1', chunk_index: 1 }),
      );
    });

    it('POST /collections stores them in collection metadata as sent', async () => {
      const res = await request(t.server)
        .post('/collections')
        .send({ name: 'cp', metadata: PROTOTYPE_NAMED })
        .expect(201);
      const expected = sortedJson({ embedding_model: 'local-hash-ngram-384', dimensions: 384, ...PROTOTYPE_NAMED });
      expect(sortedJson((res.body as { metadata: unknown }).metadata)).toBe(expected);
      const read = await request(t.server).get('/collections/cp').expect(200);
      expect(sortedJson((read.body as { metadata: unknown }).metadata)).toBe(expected);
    });

    it('POST /ask takes {"toString": …} and {"constructor": …} as field filters', async () => {
      const ids = async (filter: Record<string, unknown>): Promise<string[]> => {
        const res = await request(t.server).post('/ask').send({ question: 'a', k: 100, filter }).expect(200);
        return (res.body as { results: Array<{ id: string }> }).results.map((r) => r.id).sort();
      };
      expect(await ids({ toString: 'x' })).toEqual(['ck4']);
      expect(await ids({ toString: 'y' })).toEqual(['ck1', 'ck3', 'dp-0']);
      expect(await ids({ constructor: 'z' })).toEqual(['dp-1']);
      expect(await ids({ hasOwnProperty: { $eq: 1 } })).toEqual(['ck1', 'ck3', 'dp-0']);
    });

    it('refuses a __proto__ key, or a constructor object with a prototype key, with a 400 naming it', async () => {
      const cases: Array<[string, string, string]> = [
        [
          '/embeddings',
          '{"items": [{"id": "pp", "content": "a", "metadata": {"a": 1, "__proto__": {"admin": true}}}]}',
          'A JSON body must not hold a "__proto__" key (found at items.0.metadata.__proto__)',
        ],
        [
          '/documents',
          `{"documentId": "pp", "documentName": "x", "documentType": "law", "category": "c", "sourceFile": "s",
            "chunks": [{"content": "a", "metadata": {"n": {"\\u005f_proto__": 1}}}]}`,
          'A JSON body must not hold a "__proto__" key (found at chunks.0.metadata.n.__proto__)',
        ],
        [
          '/collections',
          '{"name": "pp", "metadata": {"constructor": {"prototype": {"admin": true}}}}',
          'A JSON body must not hold a "constructor" object with a "prototype" key (found at metadata.constructor.prototype)',
        ],
        [
          '/ask',
          '{"question": "a", "__proto__": {}}',
          'A JSON body must not hold a "__proto__" key (found at __proto__)',
        ],
      ];
      for (const [url, body, message] of cases) await expectRefused('post', url, body, 400, message, true);
    });
  });

  describe('fields named like Object.prototype members', () => {
    it('are refused like any unknown field, in a body at any depth and in a query, outside free-form metadata', async () => {
      const doc = { documentId: 'proto-named', documentName: 'x', documentType: 't', category: 'c', sourceFile: 's' };
      // Each was dropped without a word (Nest's pipe deletes some, class-transformer's copy skips the rest).
      const cases: Array<[Method, string, unknown, string]> = [
        ['post', '/documents', { ...doc, constructor: 5 }, 'property constructor should not exist'],
        ['post', '/documents/recount', { dryRun: true, toString: 'x' }, 'property toString should not exist'],
        ['post', '/collections', { name: 'zz1', valueOf: {} }, 'property valueOf should not exist'],
        [
          'post',
          '/embeddings',
          {
            items: [
              { id: 'p1', content: 'a' },
              { id: 'p2', content: 'b', hasOwnProperty: 1 },
            ],
          },
          'items.1.property hasOwnProperty should not exist',
        ],
        ['post', '/ask', { question: 'a', isPrototypeOf: true }, 'property isPrototypeOf should not exist'],
        ['get', '/documents?constructor=1', undefined, 'property constructor should not exist'],
        ['get', '/documents?toString=1', undefined, 'property toString should not exist'],
      ];
      for (const [method, url, body, message] of cases) await expectRefused(method, url, body, 400, message);
    });
  });

  describe('blank texts without a vector', () => {
    it('are a 400 naming the chunk on POST /embeddings and POST /documents, and nothing is written', async () => {
      const cases: Array<[string, unknown, string]> = [
        ['/embeddings', { items: [{ content: 'một' }, { content: '' }] }, 'items.1.content'],
        ['/embeddings', { items: [{ content: ' \n\t ' }] }, 'items.0.content'],
        [
          '/documents',
          { ...base, documentId: 'blank', documentName: 'x', chunks: [{ content: '   ' }] },
          'chunks.0.content',
        ],
      ];
      for (const [url, body, field] of cases) {
        await expectRefused(
          'post',
          url,
          body,
          400,
          `${field} is blank: a chunk without an embedding needs a text to compute it from`,
        );
      }
      // With its vector, a blank text is stored as sent (LangChain writes such chunks too).
      await request(t.server)
        .post('/embeddings')
        .send({
          items: [
            {
              id: 'blank-with-vector',
              content: '',
              embedding: Array.from({ length: 384 }, (_, i) => (i === 0 ? 1 : 0)),
            },
          ],
        })
        .expect(201);
      expect((await request(t.server).get('/embeddings/blank-with-vector').expect(200)).body.content).toBe('');
    });
  });

  describe('query parameters on routes that take none', () => {
    it('DELETE /collections/:name?dryRun=true and DELETE /documents/:id?dryRun=true are a 400 naming dryRun, and delete nothing', async () => {
      await request(t.server).post('/collections').send({ name: 'kept' }).expect(201);
      await expectRefused(
        'delete',
        '/collections/kept?dryRun=true',
        undefined,
        400,
        'Unknown query parameter "dryRun": DELETE /collections/{name} takes no query parameters',
      );
      await expectRefused(
        'delete',
        '/documents/d1?dryRun=true',
        undefined,
        400,
        'Unknown query parameter "dryRun": DELETE /documents/{documentId} takes no query parameters',
      );
      await request(t.server).get('/collections/kept').expect(200);
      await request(t.server).get('/documents/d1').expect(200);
    });

    it('every operation without query parameters refuses one with a 400 its OpenAPI operation declares, and writes nothing', async () => {
      type Operation = { parameters?: Array<{ in: string }>; tags?: string[]; responses: Record<string, unknown> };
      const api = (await request(t.server).get('/docs-json').expect(200)).body as {
        paths: Record<string, Record<Method, Operation>>;
      };
      const checked: string[] = [];
      for (const [path, operations] of Object.entries(api.paths)) {
        for (const [method, operation] of Object.entries(operations) as Array<[Method, Operation]>) {
          if (operation.tags?.includes('health')) continue;
          if ((operation.parameters ?? []).some((parameter) => parameter.in === 'query')) continue;
          const route = `${method.toUpperCase()} ${path}`;
          expect({ route, declares400: '400' in operation.responses }).toEqual({ route, declares400: true });
          const url = `${path.replace(/\{[^}]+\}/g, 'd1')}?limit=10`;
          await expectRefused(
            method,
            url,
            undefined,
            400,
            `Unknown query parameter "limit": ${route} takes no query parameters`,
          );
          checked.push(route);
        }
      }
      // The writes are among them, and so are the reads a client would paginate.
      expect(checked).toEqual(
        expect.arrayContaining([
          'GET /collections',
          'GET /vector-indexes',
          'POST /embeddings',
          'DELETE /collections/{name}',
        ]),
      );
    });

    it('HEAD, which Fastify answers on every GET route, refuses one too', async () => {
      const res = await request(t.server).head('/collections?limit=10');
      expect(res.status).toBe(400);
      await request(t.server).head('/collections').expect(200);
    });

    it('routes that declare query parameters and the health checks keep their own rules', async () => {
      await request(t.server).get('/documents?limit=1').expect(200);
      await expectRefused('get', '/documents?unknown=1', undefined, 400, 'property unknown should not exist');
      await request(t.server).get('/documents/d1/chunks?limit=1').expect(200);
      // Probes and uptime monitors add cache-busting parameters of their own.
      await request(t.server).get('/health/live?_=1733570000').expect(200);
      await request(t.server).get('/health?_=1733570000').expect(200);
    });
  });

  it('GET /stats counts every document type, category and status, __proto__ and constructor included', async () => {
    for (const [documentId, documentType, category] of [
      ['s1', '__proto__', 'constructor'],
      ['s2', '__proto__', 'toString'],
      ['s3', 'constructor', '__proto__'],
      ['s4', 'hasOwnProperty', 'valueOf'],
    ]) {
      await request(t.server)
        .post('/documents')
        .send({ documentId, documentName: 'x', documentType, category, sourceFile: 's' })
        .expect(201);
    }
    // A status written by another writer than this service (its API takes only the five statuses).
    await t.dataSource.query(`UPDATE documents SET status = '__proto__' WHERE document_id = 's4'`);
    const res = await request(t.server).get('/stats').expect(200);
    const documents = (res.body as { documents: Record<string, unknown> }).documents;
    const [{ total }] = await t.dataSource.query<Array<{ total: number }>>(
      `SELECT count(*)::int AS total FROM documents`,
    );
    expect(documents.total).toBe(total);
    const sum = (counts: unknown): number => Object.values(counts as Record<string, number>).reduce((a, b) => a + b, 0);
    for (const key of ['byType', 'byCategory', 'byStatus']) expect(sum(documents[key])).toBe(total);
    expect(Object.entries(documents.byType as object)).toEqual(
      expect.arrayContaining([
        ['__proto__', 2],
        ['constructor', 1],
        ['hasOwnProperty', 1],
      ]),
    );
    expect(Object.entries(documents.byCategory as object)).toEqual(
      expect.arrayContaining([
        ['__proto__', 1],
        ['constructor', 1],
        ['toString', 1],
        ['valueOf', 1],
      ]),
    );
    expect(Object.entries(documents.byStatus as object)).toEqual(expect.arrayContaining([['__proto__', 1]]));
  });

  async function storedMetadata(id: string): Promise<unknown> {
    const [row] = await t.dataSource.query<Array<{ cmetadata: unknown }>>(
      `SELECT cmetadata FROM langchain_pg_embedding WHERE id = $1`,
      [id],
    );
    return row?.cmetadata;
  }
});

/** JSON with every object's keys sorted (jsonb reorders keys): equal for the same JSON value. */
function sortedJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
