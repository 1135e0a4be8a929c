import request from 'supertest';
import { TEST_TARGET } from './support/test-database.js';
import type { EntityManager } from 'typeorm';
import { ConflictException } from '@nestjs/common';
import { ChunkSearchRepository } from '../src/ask/chunk-search.repository.js';
import { SearchTargetCache } from '../src/ask/search-target.cache.js';
import { VectorIndexService } from '../src/ask/vector-index.service.js';
import { LocalEmbeddingProvider } from '../src/embeddings/providers/local-embedding.provider.js';
import { check } from '../src/cli/db-commands.js';
import { makeCorpus } from './support/corpus.js';
import { float32Base64 } from './support/float32-base64.js';
import { startFakeOpenAIServer, type FakeOpenAIServer } from './support/fake-openai-server.js';
import { dataFingerprint } from './support/legacy-schema.js';
import { startTestApp, type TestApp } from './support/test-app.js';

/** Documents on unrelated topics, each chunk with a sentence a question can find. */
const DOCUMENTS = [
  {
    documentId: 'luat-thue-tncn',
    documentType: 'law',
    category: 'tax',
    year: 2007,
    chunks: [
      'Điều 1. Phạm vi điều chỉnh: Luật này quy định về thuế thu nhập cá nhân đối với người lao động.',
      'Điều 22. Biểu thuế lũy tiến từng phần áp dụng đối với thu nhập từ tiền lương, tiền công.',
      'Điều 23. Thuế suất đối với thu nhập từ chuyển nhượng bất động sản là hai phần trăm.',
    ],
  },
  {
    documentId: 'nghi-dinh-giao-thong',
    documentType: 'decree',
    category: 'traffic',
    year: 2019,
    chunks: [
      'Điều 5. Xử phạt người điều khiển xe ô tô vi phạm quy tắc giao thông đường bộ.',
      'Điều 6. Xử phạt người điều khiển xe mô tô, xe gắn máy không đội mũ bảo hiểm.',
    ],
  },
  {
    documentId: 'beekeeping-guide',
    documentType: 'guide',
    category: 'agriculture',
    year: 2022,
    chunks: [
      'Beekeepers should inspect every hive for varroa mites at least once a month during spring.',
      'Honey is extracted by centrifuge after the frames are uncapped with a heated knife.',
      'Lighthouse lenses are cleaned with isopropyl alcohol every week.',
    ],
  },
];

/** The typed results of an /ask response. */
const results = (res: { body: unknown }) => (res.body as { results: Array<{ id: string; score: number }> }).results;

const QUESTIONS: Array<[question: string, documentId: string, chunkIndex: number]> = [
  ['thuế suất chuyển nhượng bất động sản', 'luat-thue-tncn', 2],
  ['biểu thuế lũy tiến tiền lương', 'luat-thue-tncn', 1],
  ['xử phạt không đội mũ bảo hiểm xe máy', 'nghi-dinh-giao-thong', 1],
  ['how often to inspect a hive for varroa mites', 'beekeeping-guide', 0],
  ['extract honey with a centrifuge', 'beekeeping-guide', 1],
];

describe('POST /ask', () => {
  let t: TestApp;
  let llm: FakeOpenAIServer;
  let ids: Map<string, string>;

  const ask = (body: Record<string, unknown>) => request(t.server).post('/ask').send(body);

  beforeAll(async () => {
    llm = await startFakeOpenAIServer();
    t = await startTestApp({ LLM_BASE_URL: llm.url, LLM_MODEL: 'fake-chat' });
    for (const d of DOCUMENTS) {
      await request(t.server)
        .post('/documents')
        .send({
          documentId: d.documentId,
          documentName: d.documentId,
          documentType: d.documentType,
          category: d.category,
          sourceFile: `${d.documentId}.txt`,
          chunks: d.chunks.map((content, i) => ({ content, metadata: { year: d.year, section: `s${i}` } })),
        })
        .expect(201);
    }
    // A chunk LangChain wrote itself, without document_id and with other metadata types.
    await request(t.server)
      .post('/embeddings')
      .send({
        items: [{ id: 'lc-1', content: 'Bảo hiểm xe cơ giới bắt buộc', metadata: { flag: true, year: '2020' } }],
      })
      .expect(201);
    const rows = await t.dataSource.query<Array<{ id: string; key: string }>>(
      `SELECT id, (cmetadata->>'document_id') || '#' || (cmetadata->>'chunk_index') AS key FROM langchain_pg_embedding`,
    );
    ids = new Map(rows.map((r) => [r.key, r.id]));
  });

  afterAll(async () => {
    await t.close();
    await llm.close();
  });

  it.each(['vector', 'hybrid'])('%s mode puts the chunk that answers each question at rank 1', async (mode) => {
    for (const [question, documentId, chunkIndex] of QUESTIONS) {
      const res = await ask({ question, mode, k: 3 }).expect(200);
      expect(res.body.mode).toBe(mode);
      expect(res.body.collection).toBe('docs');
      expect(res.body.results).toHaveLength(3);
      expect(res.body.results[0]).toMatchObject({ id: ids.get(`${documentId}#${chunkIndex}`), documentId });
      expect(typeof res.body.tookMs).toBe('number');
      const scores = results(res).map((r) => r.score);
      if (mode === 'vector') expect(scores).toEqual([...scores].sort((a, b) => b - a));
    }
  });

  it('returns scores as 1 − cosine distance, content and metadata', async () => {
    const question = 'varroa mites hive inspection';
    const res = await ask({ question, k: 1 }).expect(200);
    const [hit] = res.body.results;
    // The question's vector as the service computes it (the local provider), against the stored chunk's.
    const [queryVector] = await new LocalEmbeddingProvider(t.config.embeddings.dimensions).embed([question]);
    const [row] = await t.dataSource.query<Array<{ score: number }>>(
      `SELECT 1 - (embedding <=> $2::vector) AS score FROM langchain_pg_embedding WHERE id = $1`,
      [hit.id, `[${queryVector.join(',')}]`],
    );
    expect(hit.score).toBeCloseTo(row.score, 5);
    expect(hit.score).toBeGreaterThan(0.3);
    expect(hit.score).toBeLessThanOrEqual(1);
    expect(hit.content).toContain('varroa');
    expect(hit.metadata).toMatchObject({ document_id: 'beekeeping-guide', chunk_index: 0, year: 2022 });
  });

  it('hybrid results carry their fused score and both ranks', async () => {
    const res = await ask({ question: 'mũ bảo hiểm', mode: 'hybrid', k: 2 }).expect(200);
    const [first] = res.body.results;
    expect(first.fusedScore).toBeGreaterThan(0);
    expect(first.textRank).toBe(1);
    expect(first.vectorRank).toBeGreaterThanOrEqual(1);
  });

  it('honours k, minScore and the collection', async () => {
    expect((await ask({ question: 'thuế', k: 100 }).expect(200)).body.results).toHaveLength(9);
    const strict = await ask({ question: 'thuế thu nhập cá nhân', k: 100, minScore: 0.2 }).expect(200);
    expect(strict.body.results.length).toBeGreaterThan(0);
    expect(strict.body.results.length).toBeLessThan(9);
    for (const r of strict.body.results) expect(r.score).toBeGreaterThanOrEqual(0.2);
    await request(t.server).post('/collections').send({ name: 'empty' }).expect(201);
    expect((await ask({ question: 'thuế', collection: 'empty' }).expect(200)).body.results).toEqual([]);
    const missing = await ask({ question: 'thuế', collection: 'nope' }).expect(404);
    expect(missing.body.message).toBe('Collection "nope" not found');
  });

  it('returns whole, current results while the chunks it finds are being rewritten', async () => {
    // The search fetches its winners by ctid, which an upsert changes: the fetch must still find
    // each winner (the statement reads with one snapshot), in both modes, with and without a filter.
    const collection = 'churn';
    const embedding = (i: number) => [1, i / 10, 0.5];
    const upsert = (round: number) =>
      request(t.server)
        .post('/embeddings')
        .send({
          collection,
          items: Array.from({ length: 12 }, (_, i) => ({
            id: `churn-${i}`,
            content: `churn ${i} round ${round}`,
            metadata: { kind: i % 2 === 0 ? 'even' : 'odd' },
            embedding: embedding(i),
          })),
        })
        .expect(201);
    await upsert(0);
    const searches = [
      [{}, ['churn-0', 'churn-1', 'churn-2', 'churn-3', 'churn-4']],
      [{ mode: 'hybrid' }, ['churn-0', 'churn-1', 'churn-2', 'churn-3', 'churn-4']],
      [{ filter: { kind: 'even' } }, ['churn-0', 'churn-2', 'churn-4', 'churn-6', 'churn-8']],
    ] as const;
    try {
      for (let round = 1; round <= 8; round++) {
        const [, ...answers] = await Promise.all([
          upsert(round),
          ...searches.map(([body]) =>
            ask({ question: 'zzz', collection, queryEmbedding: embedding(0), k: 5, ...body }).expect(200),
          ),
        ]);
        answers.forEach((res, s) => {
          const found = res.body.results as Array<{ id: string; content: string }>;
          expect(found.map((r) => r.id)).toEqual(searches[s][1]);
          for (const r of found)
            expect(r.content).toMatch(new RegExp(`^${r.id.replace('-', ' ')} round [${round - 1}${round}]$`));
        });
      }
    } finally {
      // The filter tests below compare /ask with the same filter over every chunk in the table.
      await request(t.server).delete(`/collections/${collection}`).expect(204);
    }
  });

  it('leaves out chunks without a vector, even when k asks for more chunks than have one', async () => {
    // LangChain's column is nullable: a chunk may be stored without its vector.
    await t.dataSource.query(
      `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
       SELECT 'no-vector', uuid, NULL, 'Thuế suất chưa có vector', '{"document_type": "law"}'
         FROM langchain_pg_collection WHERE name = 'docs'`,
    );
    try {
      for (const [body, count] of [
        [{ k: 100 }, 9],
        [{ k: 100, exact: true }, 9],
        [{ k: 100, filter: { document_type: 'law' } }, 3],
      ] as const) {
        const ids = results(await ask({ question: 'thuế suất', ...body }).expect(200)).map((r) => r.id);
        expect(ids).toHaveLength(count);
        expect(ids).not.toContain('no-vector');
      }
    } finally {
      await t.dataSource.query(`DELETE FROM langchain_pg_embedding WHERE id = 'no-vector'`);
    }
  });

  /** The ids the same filter selects when written by hand in SQL, as langchain_postgres writes it. */
  const FILTER_CASES: Array<[filter: Record<string, unknown>, where: string]> = [
    [{ document_type: 'law' }, `jsonb_path_match(cmetadata, '$.document_type == "law"')`],
    [{ year: { $gte: 2019 } }, `jsonb_path_match(cmetadata, '$.year >= 2019')`],
    [{ year: { $between: [2007, 2019] } }, `jsonb_path_match(cmetadata, '$.year >= 2007 && $.year <= 2019')`],
    [{ chunk_index: { $in: [0, 2] } }, `cmetadata->>'chunk_index' IN ('0', '2')`],
    [{ document_type: { $nin: ['law'] } }, `NOT (cmetadata->>'document_type' IN ('law'))`],
    [{ document_id: { $like: 'luat%' } }, `cmetadata->>'document_id' LIKE 'luat%'`],
    [{ flag: { $exists: true } }, `cmetadata ? 'flag'`],
    [{ flag: true }, `jsonb_path_match(cmetadata, '$.flag == true')`],
    [
      { $or: [{ document_type: 'decree' }, { $and: [{ year: 2022 }, { chunk_index: { $lt: 1 } }] }] },
      `jsonb_path_match(cmetadata, '$.document_type == "decree"') OR (jsonb_path_match(cmetadata, '$.year == 2022') AND jsonb_path_match(cmetadata, '$.chunk_index < 1'))`,
    ],
    [{ $not: { category: 'tax' } }, `NOT jsonb_path_match(cmetadata, '$.category == "tax"')`],
    [
      { document_type: 'law', chunk_index: { $ne: 0 } },
      `jsonb_path_match(cmetadata, '$.document_type == "law" && $.chunk_index != 0')`,
    ],
  ];

  it.each(['vector', 'hybrid'])(
    '%s mode: each filter returns exactly what the same filter in SQL returns',
    async (mode) => {
      // Chunk metadata carries category only through documents; give chunks one for the $not case.
      await t.dataSource.query(
        `UPDATE langchain_pg_embedding e SET cmetadata = e.cmetadata || jsonb_build_object('category', d.category)
         FROM documents d WHERE d.document_id = e.cmetadata->>'document_id'`,
      );
      for (const [filter, where] of FILTER_CASES) {
        const expected = await t.dataSource.query<Array<{ id: string }>>(
          `SELECT id FROM langchain_pg_embedding WHERE ${where} ORDER BY id`,
        );
        // hybrid fuses two candidate lists; questions sharing words with every chunk keep both full.
        const res = await ask({ question: 'Điều thuế xe honey hive', mode, k: 100, filter }).expect(200);
        const got = results(res)
          .map((r) => r.id)
          .sort();
        // Every case matches some chunks, or the equality below would prove nothing.
        expect({ filter, matches: expected.length > 0 }).toEqual({ filter, matches: true });
        expect({ filter, ids: got }).toEqual({ filter, ids: expected.map((r) => r.id) });
      }
    },
  );

  it('answers the same filters on a server where AddMetadataTermsIndex is still pending', async () => {
    const filtered = async () => {
      const found: Array<{ filter: unknown; ids: string[] }> = [];
      for (const [filter] of FILTER_CASES) {
        const res = await ask({ question: 'Điều thuế xe', k: 100, filter }).expect(200);
        found.push({ filter, ids: results(res).map((r) => r.id) });
      }
      return found;
    };
    const withTerms = await filtered();
    // What a database migrated by an older release has: no terms function (and so no index).
    await t.dataSource.query(`DROP INDEX ix_cmetadata_terms`);
    await t.dataSource.query(`ALTER FUNCTION chunk_metadata_terms(jsonb) RENAME TO chunk_metadata_terms_hidden`);
    t.app.get(SearchTargetCache).invalidate('docs');
    try {
      expect(await filtered()).toEqual(withTerms);
    } finally {
      await t.dataSource.query(`ALTER FUNCTION chunk_metadata_terms_hidden(jsonb) RENAME TO chunk_metadata_terms`);
      await t.dataSource.query(
        `CREATE INDEX ix_cmetadata_terms ON langchain_pg_embedding USING gin (chunk_metadata_terms(cmetadata))`,
      );
      t.app.get(SearchTargetCache).invalidate('docs');
    }
  });

  it('rejects malformed filters and injection attempts with a 400 naming the part, and changes nothing', async () => {
    const before = await dataFingerprint(t.dataSource);
    const cases: Array<[unknown, RegExp]> = [
      [{ "document_type'; DROP TABLE documents; --": 'x' }, /field name/i],
      [{ year: { $regex: '.*' } }, /\$regex/],
      [{ $and: { year: 1 } }, /\$and/],
      [{ year: { $gt: 1, $lt: 3 } }, /year/],
      [{ year: { $in: 'x' } }, /\$in/],
      [{ $where: 'true' }, /\$where/],
      [{ year: { $between: [1] } }, /\$between/],
      [[{ year: 1 }], /filter must be a JSON object/],
    ];
    for (const [filter, message] of cases) {
      const res = await ask({ question: 'thuế', filter }).expect(400);
      expect(JSON.stringify(res.body.message)).toMatch(message);
      expect(JSON.stringify(res.body)).not.toMatch(/SELECT|jsonb_path_match|langchain_pg_embedding/);
    }
    // Values that probe for SQL injection are refused too, naming the value's place (they would be
    // bound as data anyway: see filter.e2e-spec.ts).
    const probes: Array<[unknown, string]> = [
      [{ document_type: "law' OR '1'='1" }, 'filter.document_type'],
      [{ document_type: { $in: ['law', "x'; DROP TABLE documents; --"] } }, 'filter.document_type.$in[1]'],
      [{ $or: [{ year: 1 }, { title: { $like: "%' UNION SELECT version() --" } }] }, 'filter.$or[1].title.$like'],
    ];
    for (const [filter, path] of probes) {
      const res = await ask({ question: 'thuế', filter }).expect(400);
      const message = String(res.body.message);
      expect(message.startsWith('Value refused: it looks like an SQL injection attempt (')).toBe(true);
      expect(message.endsWith(` at ${path}`)).toBe(true);
    }
    // Text that only resembles a probe is searched for as data.
    for (const title of ["Why 'yes' and 'no' is hard", 'The "new" -- revised law', 'The "Best" #1 song']) {
      expect((await ask({ question: 'thuế', filter: { title } }).expect(200)).body.results).toEqual([]);
    }
    expect(await dataFingerprint(t.dataSource)).toEqual(before);
  });

  it('rejects bad bodies with a 400 that names the field', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{}, 'question'],
      [{ question: '   ' }, 'question must not be blank'],
      [{ question: 'x', k: 0 }, 'k must not be less than 1'],
      [{ question: 'x', k: 101 }, 'k must not be greater than 100'],
      [{ question: 'x', mode: 'keyword' }, 'mode must be one of the following values: vector, hybrid'],
      [{ question: 'x', minScore: 2 }, 'minScore must not be greater than 1'],
      [{ question: 'x', exact: 'yes' }, 'exact must be a boolean value'],
      [{ question: 'x', queryEmbedding: [] }, 'queryEmbedding must contain at least 1 elements'],
      [{ question: 'x', queryEmbedding: 'abc' }, 'queryEmbedding must be base64 in the standard alphabet'],
      [
        { question: 'x', queryEmbedding: 7 },
        'queryEmbedding must be an array of numbers or a base64 string of little-endian float32 values',
      ],
      [
        { question: 'x', queryEmbedding: 'AAAAAAA=' },
        'queryEmbedding base64 holds 5 bytes, not a whole number of float32 values',
      ],
      [
        { question: 'x', queryEmbedding: float32Base64([1, NaN]) },
        'each value in queryEmbedding must be a finite number',
      ],
      [
        { question: 'x', queryEmbedding: [0.5, '1'] },
        'each value in queryEmbedding must be a number conforming to the specified constraints',
      ],
      [{ question: 'x', queryEmbedding: [1e39] }, 'each value in queryEmbedding must not be greater than 3.4e+38'],
      [{ question: 'x', unknown: 1 }, 'property unknown should not exist'],
      [{ question: 'x', queryEmbedding: [0.5], unknown: 1 }, 'property unknown should not exist'],
    ];
    for (const [body, message] of cases) {
      const res = await ask(body).expect(400);
      expect(JSON.stringify(res.body.message)).toContain(message);
    }
    // Every problem at once, the vector's included.
    const both = await ask({ question: '   ', k: 0, queryEmbedding: [Number.MAX_VALUE] }).expect(400);
    expect(both.body.message).toEqual(
      expect.arrayContaining([
        'question must not be blank',
        'k must not be less than 1',
        'each value in queryEmbedding must not be greater than 3.4e+38',
      ]),
    );
  });

  it('takes a precomputed query vector, and names the dimensions when it does not fit', async () => {
    const [row] = await t.dataSource.query<Array<{ embedding: string }>>(
      `SELECT embedding::text AS embedding FROM langchain_pg_embedding WHERE id = $1`,
      [ids.get('beekeeping-guide#1')],
    );
    const queryEmbedding = JSON.parse(row.embedding) as number[];
    const res = await ask({ question: 'anything', queryEmbedding, k: 1 }).expect(200);
    expect(res.body.results[0].id).toBe(ids.get('beekeeping-guide#1'));
    expect(res.body.results[0].score).toBeCloseTo(1, 5);
    const wrong = await ask({ question: 'x', queryEmbedding: [1, 2, 3] }).expect(400);
    expect(wrong.body.message).toBe(
      'queryEmbedding has 3 dimensions, but collection "docs" holds 384-dimensional vectors',
    );
  });

  it('searches and writes a collection LangChain named with spaces, as any name it stores', async () => {
    const name = 'Luật thuế 2024 (bản gốc)';
    await t.dataSource.query(
      `WITH c AS (INSERT INTO langchain_pg_collection (uuid, name, cmetadata)
                  VALUES (gen_random_uuid(), $1, '{}') RETURNING uuid)
       INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
       SELECT 'spaced-1', c.uuid, '[1,0,0]', 'thuế', '{}' FROM c`,
      [name],
    );
    const found = await ask({ question: 'x', collection: name, queryEmbedding: [1, 0, 0] }).expect(200);
    expect((found.body.results as Array<{ id: string }>).map((r) => r.id)).toEqual(['spaced-1']);
    await request(t.server)
      .post('/embeddings')
      .send({ collection: name, items: [{ id: 'spaced-2', content: 'phí', embedding: [0, 1, 0] }] })
      .expect(201);
    const listed = await request(t.server)
      .get(`/collections/${encodeURIComponent(name)}`)
      .expect(200);
    expect(listed.body).toMatchObject({ name, chunkCount: 2 });
  });

  it('answers a search of a collection that another tool filled with two dimensions with a 400 naming both', async () => {
    // LangChain, say, wrote 3- and 4-dimensional vectors into one collection.
    await t.dataSource.query(
      `WITH c AS (INSERT INTO langchain_pg_collection (uuid, name, cmetadata)
                  VALUES (gen_random_uuid(), 'mixed-dims', '{}') RETURNING uuid)
       INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
       SELECT v.id, c.uuid, v.embedding::vector, v.id, '{}' FROM c,
              (VALUES ('mixed-3', '[1,0,0]'), ('mixed-4', '[1,0,0,0]')) AS v(id, embedding)`,
    );
    // The service takes the collection's dimension from one of its vectors: query with that one.
    const [{ dims }] = await t.dataSource.query<Array<{ dims: number }>>(
      `SELECT vector_dims(e.embedding) AS dims FROM langchain_pg_embedding e
         JOIN langchain_pg_collection c ON c.uuid = e.collection_id
        WHERE c.name = 'mixed-dims' AND e.embedding IS NOT NULL LIMIT 1`,
    );
    const res = await ask({
      question: 'x',
      collection: 'mixed-dims',
      queryEmbedding: Array.from({ length: dims }, (_, i) => (i === 0 ? 1 : 0)),
    }).expect(400);
    expect(res.body).toEqual({
      statusCode: 400,
      message: expect.stringMatching(
        /^Vectors of (3 and 4|4 and 3) dimensions met: the collection holds vectors of more than one dimension, which cannot be compared$/,
      ) as unknown,
      error: 'Bad Request',
    });
  });

  it('takes the query vector as base64 float32 too, with the same results as the array', async () => {
    const [row] = await t.dataSource.query<Array<{ embedding: string }>>(
      `SELECT embedding::text AS embedding FROM langchain_pg_embedding WHERE id = $1`,
      [ids.get('luat-thue-tncn#2')],
    );
    // Each component as pgvector prints it, so that both forms hold the same float4 values.
    const queryEmbedding = JSON.parse(row.embedding) as number[];
    for (const mode of ['vector', 'hybrid']) {
      const body = { question: 'chuyển nhượng bất động sản', mode, k: 5 };
      const asArray = await ask({ ...body, queryEmbedding }).expect(200);
      const asBase64 = await ask({ ...body, queryEmbedding: float32Base64(queryEmbedding) }).expect(200);
      expect(results(asArray)[0].id).toBe(ids.get('luat-thue-tncn#2'));
      expect(results(asBase64).map((r) => [r.id, r.score])).toEqual(results(asArray).map((r) => [r.id, r.score]));
    }
    const wrong = await ask({ question: 'x', queryEmbedding: float32Base64([1, 2, 3]) }).expect(400);
    expect(wrong.body.message).toBe(
      'queryEmbedding has 3 dimensions, but collection "docs" holds 384-dimensional vectors',
    );
  });

  it('answers from the results with citations when answer: true', async () => {
    const res = await ask({ question: 'extract honey with a centrifuge', k: 2, answer: true }).expect(200);
    const top = res.body.results[0].id;
    expect(res.body.answer).toMatchObject({ model: 'fake-chat', citations: [top] });
    expect(res.body.answer.text).toContain(`[${top}]`);
    const prompt = JSON.stringify(llm.requests.at(-1)?.body);
    expect(prompt).toContain('Honey is extracted by centrifuge');
  });

  describe('with an HNSW index', () => {
    it('builds the per-collection index idempotently, and the search query uses it (EXPLAIN)', async () => {
      const built = await request(t.server).put('/collections/docs/vector-index').expect(200);
      expect(built.body).toMatchObject({ collection: 'docs', type: 'vector', dimensions: 384, valid: true });
      expect(built.body.name).toMatch(/^ix_embedding_hnsw_[0-9a-f]{32}$/);
      const again = await request(t.server).put('/collections/docs/vector-index').expect(200);
      expect(again.body.name).toBe(built.body.name);
      expect((await request(t.server).get('/vector-indexes').expect(200)).body).toEqual([again.body]);

      const collection = await t.dataSource.query<Array<{ uuid: string }>>(
        `SELECT uuid FROM langchain_pg_collection WHERE name = 'docs'`,
      );
      const { index } = (await t.app.get(ChunkSearchRepository).findTarget(t.dataSource.manager, 'docs'))!;
      expect(index).toMatchObject({ name: built.body.name, dimensions: 384, type: 'vector' });
      const embedding = Array.from({ length: 384 }, (_, i) => (i % 7) / 7);
      const repo = t.app.get(ChunkSearchRepository);
      // EXPLAIN the exact statements the service runs, with the parameters it binds.
      const plans: string[] = [];
      await t.dataSource.transaction(async (manager) => {
        const explaining = {
          query: async (sql: string, params: unknown[]) => {
            const rows = await manager.query<Array<Record<string, string>>>(`EXPLAIN ${sql}`, params);
            plans.push(rows.map((r) => Object.values(r)[0]).join('\n'));
            return [];
          },
        } as unknown as EntityManager;
        // The table is tiny: without this the planner rightly prefers a sequential scan. Disabling
        // it proves the query's expression matches the index (otherwise no plan could use it).
        // Bitmap scans too: with the filter, a bitmap scan of the metadata terms index plus a sort
        // competes, and which wins follows the statistics, fresh after the ANALYZE or not.
        await manager.query(`ANALYZE langchain_pg_embedding`);
        await manager.query(`SET LOCAL enable_seqscan = off`);
        await manager.query(`SET LOCAL enable_bitmapscan = off`);
        const q = { collectionUuid: collection[0].uuid, embedding, k: 5, question: 'thuế', index, metadataTerms: true };
        await repo.vectorSearch(explaining, q);
        await repo.vectorSearch(explaining, { ...q, filter: { document_type: 'law' } });
        await repo.hybridSearch(explaining, q, 1000);
      });
      expect(plans).toHaveLength(3);
      for (const plan of plans) expect(plan).toContain(`Index Scan using ${built.body.name}`);
    });

    it('takes build parameters in the body: kept when the built index has them, 409 naming both when not, 400 out of range', async () => {
      // Built by the test before with the defaults, m 16 and ef_construction 128.
      const same = await request(t.server).put('/collections/docs/vector-index').send({ m: 16, efConstruction: 128 });
      expect(same.status).toBe(200);
      const other = await request(t.server).put('/collections/docs/vector-index').send({ m: 24 });
      expect([other.status, other.body.message]).toEqual([
        409,
        `Collection "docs" already has its HNSW index ${same.body.name}, built with m=16, ef_construction=128; ` +
          'requested m=24. To rebuild it with the requested parameters, drop it first: ' +
          'DELETE /collections/docs/vector-index, or npm run index:drop -- --collection docs',
      ]);
      for (const [body, message] of [
        [{ m: 1 }, 'm must not be less than 2'],
        [{ efConstruction: 2000 }, 'efConstruction must not be greater than 1000'],
        [{ m: 'x' }, 'm must be an integer number'],
        [{ mm: 16 }, 'property mm should not exist'],
      ] as const) {
        const refused = await request(t.server).put('/collections/docs/vector-index').send(body);
        expect([refused.status, refused.body.message]).toEqual([400, [message]]);
      }
      // The rule between the two is the builder's: checked when a build would use them.
      await request(t.server).delete('/collections/docs/vector-index').expect(204);
      const under = await request(t.server).put('/collections/docs/vector-index').send({ m: 48, efConstruction: 64 });
      expect([under.status, under.body.message]).toEqual([
        400,
        'ef_construction must be an integer from 4 to 1000 and at least 2 × m',
      ]);
      const rebuilt = await request(t.server).put('/collections/docs/vector-index').send({ m: 24 }).expect(200);
      const [{ options }] = await t.dataSource.query<Array<{ options: string[] }>>(
        `SELECT reloptions AS options FROM pg_class WHERE relname = $1`,
        [rebuilt.body.name],
      );
      expect(options).toEqual(['m=24', 'ef_construction=128']);
      expect((await request(t.server).put('/collections/docs/vector-index').send({ m: 24 })).status).toBe(200);
    });

    it('still finds the right chunk at rank 1 through the index, with and without filters', async () => {
      for (const mode of ['vector', 'hybrid']) {
        for (const [question, documentId, chunkIndex] of QUESTIONS) {
          const res = await ask({ question, mode, k: 3 }).expect(200);
          expect(res.body.results[0].id).toBe(ids.get(`${documentId}#${chunkIndex}`));
          const filtered = await ask({ question, mode, k: 3, filter: { document_id: documentId } }).expect(200);
          expect(filtered.body.results[0].id).toBe(ids.get(`${documentId}#${chunkIndex}`));
          for (const r of filtered.body.results) expect(r.documentId).toBe(documentId);
        }
      }
    });

    it('leaves db:check clean: managed vector indexes are not schema drift', async () => {
      await request(t.server).put('/collections/docs/vector-index').expect(200);
      expect(await check(t.dataSource)).toEqual({
        exitCode: 0,
        lines: ['Schema matches the entities: no differences.'],
      });
    });

    it('indexes 3072-dimensional collections as halfvec, and searches them through it', async () => {
      const vector = (seed: number) => Array.from({ length: 3072 }, (_, i) => Math.sin(seed * 1000 + i));
      await request(t.server)
        .post('/embeddings')
        .send({
          collection: 'openai-3072',
          items: [1, 2, 3].map((seed) => ({ id: `big-${seed}`, content: `chunk ${seed}`, embedding: vector(seed) })),
        })
        .expect(201);
      const built = await request(t.server).put('/collections/openai-3072/vector-index').expect(200);
      expect(built.body).toMatchObject({ type: 'halfvec', dimensions: 3072, valid: true });
      const res = await ask({ question: 'x', collection: 'openai-3072', queryEmbedding: vector(2), k: 3 }).expect(200);
      expect(results(res)[0].id).toBe('big-2');
      expect(res.body.results[0].score).toBeCloseTo(1, 5);
      // Scored on the stored vectors, not their half-precision copies: the same scores as an exact search.
      const other = vector(2).map((x, i) => (i % 2 === 0 ? x : x / 3));
      const scores = (r: request.Response) =>
        (r.body as { results: Array<{ id: string; score: number }> }).results.map(({ id, score }) => ({ id, score }));
      const indexed = await ask({ question: 'x', collection: 'openai-3072', queryEmbedding: other, k: 3 }).expect(200);
      const exact = await ask({ question: 'x', collection: 'openai-3072', queryEmbedding: other, k: 3, exact: true });
      expect(scores(indexed)).toEqual(scores(exact));
      await request(t.server).delete('/collections/openai-3072/vector-index').expect(204);
    });

    it('a halfvec index and components beyond ±65504: 400s naming them, and searches that still answer', async () => {
      const vector = (seed: number) => Array.from({ length: 2001 }, (_, i) => Math.cos(seed * 1000 + i));
      const huge = (seed: number) => vector(seed).map((x, i) => (i === 7 ? 70000 : x));
      const collection = 'halfvec-range';
      const post = (items: unknown[]) => request(t.server).post('/embeddings').send({ collection, items });
      await post(
        [1, 2].map((seed) => ({ id: `hr-${seed}`, content: `chunk ${seed}`, embedding: vector(seed) })),
      ).expect(201);
      await post([{ id: 'hr-big', content: 'big', embedding: huge(3) }]).expect(201);
      // The build meets the big component: a 400 saying so, and no index (not even an invalid one) left.
      const refused = await request(t.server).put(`/collections/${collection}/vector-index`).expect(400);
      expect(refused.body.message).toBe(
        `Collection "${collection}" holds a vector with a component beyond ±65504: above 2000 dimensions HNSW indexes half-precision (halfvec) vectors, which cannot hold it`,
      );
      const listed = await request(t.server).get('/vector-indexes').expect(200);
      expect(JSON.stringify(listed.body)).not.toContain(collection);

      await request(t.server).delete('/embeddings/hr-big').expect(204);
      await request(t.server).put(`/collections/${collection}/vector-index`).expect(200);
      const before = await request(t.server).get(`/collections/${collection}`).expect(200);
      // A write with such a component is a 400 naming the item; nothing of the batch is written.
      const res = await post([
        { id: 'hr-ok', content: 'ok', embedding: vector(4) },
        { id: 'hr-big', content: 'big', embedding: huge(5) },
      ]).expect(400);
      expect(res.body.message).toBe(
        "items.1.embedding has a component beyond ±65504, which the collection's vector index cannot hold: above 2000 dimensions it stores half-precision (halfvec) vectors",
      );
      await request(t.server).get('/embeddings/hr-ok').expect(404);
      expect((await request(t.server).get(`/collections/${collection}`).expect(200)).body).toEqual(before.body);
      // A query vector the index cannot hold is answered by the exact search, with its answer.
      const found = await ask({ question: 'x', collection, queryEmbedding: huge(2), k: 2 }).expect(200);
      const exact = await ask({ question: 'x', collection, queryEmbedding: huge(2), k: 2, exact: true }).expect(200);
      expect(results(found)).toHaveLength(2);
      expect(results(found)).toEqual(results(exact));
      // So is one whose components are all below what half precision holds (it became a zero vector,
      // NaN distances, and the index scan answered arbitrary chunks with a null score).
      const tiny = vector(2).map((x) => x * 1e-9);
      const tinyFound = await ask({ question: 'x', collection, queryEmbedding: tiny, k: 2 }).expect(200);
      const tinyExact = await ask({ question: 'x', collection, queryEmbedding: tiny, k: 2, exact: true }).expect(200);
      expect(results(tinyFound)).toEqual(results(tinyExact));
      expect(tinyFound.body.results[0]).toMatchObject({ id: 'hr-2', score: expect.any(Number) });
      await request(t.server).delete(`/collections/${collection}`).expect(204);
    });

    it('drops the index; search goes back to exact distances', async () => {
      await request(t.server).delete('/collections/docs/vector-index').expect(204);
      await request(t.server).delete('/collections/docs/vector-index').expect(204);
      expect((await request(t.server).get('/vector-indexes').expect(200)).body).toEqual([]);
      const res = await ask({ question: QUESTIONS[0][0], k: 1 }).expect(200);
      expect(res.body.results[0].id).toBe(ids.get('luat-thue-tncn#2'));
      await request(t.server).put('/collections/nope/vector-index').expect(404);
      const empty = await request(t.server).put('/collections/empty/vector-index').expect(400);
      expect(empty.body.message).toContain('holds no vectors yet');
    });

    it('builds and drops one index for concurrent requests: each waits for the one before', async () => {
      // On a server, a lock that holds every CREATE INDEX back until all three requests have looked
      // for the index (without the per-collection lock, all three then tried to build it).
      const blocker = TEST_TARGET === 'postgres' ? t.dataSource.createQueryRunner() : undefined;
      await blocker?.startTransaction();
      await blocker?.query(`LOCK TABLE langchain_pg_embedding IN SHARE UPDATE EXCLUSIVE MODE`);
      const pending = Promise.all([1, 2, 3].map(() => request(t.server).put('/collections/docs/vector-index')));
      if (blocker) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        await blocker.commitTransaction();
        await blocker.release();
      }
      const puts = await pending;
      expect(puts.map((r) => r.status)).toEqual([200, 200, 200]);
      expect(new Set(puts.map((r) => (r.body as { name: string }).name)).size).toBe(1);
      expect((await request(t.server).get('/vector-indexes').expect(200)).body).toEqual([puts[0].body]);
      const deletes = await Promise.all(
        [1, 2, 3].map(() => request(t.server).delete('/collections/docs/vector-index')),
      );
      expect(deletes.map((r) => r.status)).toEqual([204, 204, 204]);
      expect((await request(t.server).get('/vector-indexes').expect(200)).body).toEqual([]);
    });

    it('keeps an index built with other parameters on a PUT; refuses explicitly different ones with a 409', async () => {
      const indexes = t.app.get(VectorIndexService);
      const options = async (name: string) =>
        (
          await t.dataSource.query<Array<{ options: string }>>(
            `SELECT array_to_string(reloptions, ',') AS options FROM pg_class WHERE oid = to_regclass($1)`,
            [name],
          )
        )[0].options;
      const { index, created } = await indexes.create('docs', { m: 24, efConstruction: 100 });
      expect(created).toBe(true);
      // A PUT asks for no parameters: the index stays as built, not rebuilt with the defaults.
      expect((await request(t.server).put('/collections/docs/vector-index').expect(200)).body).toEqual(index);
      expect(await options(index.name)).toBe('m=24,ef_construction=100');
      await expect(indexes.create('docs', { m: 24 })).resolves.toMatchObject({ created: false });
      const conflict = indexes.create('docs', { m: 32, efConstruction: 100 });
      await expect(conflict).rejects.toBeInstanceOf(ConflictException);
      await expect(conflict).rejects.toMatchObject({
        status: 409,
        message:
          `Collection "docs" already has its HNSW index ${index.name}, built with m=24, ef_construction=100; ` +
          'requested m=32, ef_construction=100. To rebuild it with the requested parameters, drop it first: ' +
          'DELETE /collections/docs/vector-index, or npm run index:drop -- --collection docs',
      });
      expect(await options(index.name)).toBe('m=24,ef_construction=100');

      // An index built without WITH (…) has pgvector's defaults, m=16 and ef_construction=64.
      await request(t.server).delete('/collections/docs/vector-index').expect(204);
      const [{ uuid }] = await t.dataSource.query<Array<{ uuid: string }>>(
        `SELECT uuid FROM langchain_pg_collection WHERE name = 'docs'`,
      );
      await t.dataSource.query(
        `CREATE INDEX ${index.name} ON langchain_pg_embedding USING hnsw ((embedding::vector(384)) vector_cosine_ops)
          WHERE collection_id = '${uuid}'::uuid`,
      );
      await expect(indexes.create('docs', { m: 16, efConstruction: 64 })).resolves.toMatchObject({ created: false });
      await expect(indexes.create('docs', { efConstruction: 128 })).rejects.toMatchObject({
        status: 409,
        message: expect.stringContaining('built with m=16, ef_construction=64; requested ef_construction=128.'),
      });
      await request(t.server).delete('/collections/docs/vector-index').expect(204);
    });

    it("DELETE /collections/:name drops the collection's index with it", async () => {
      await request(t.server)
        .post('/embeddings')
        .send({
          collection: 'doomed',
          items: [1, 2, 3].map((i) => ({ id: `doomed-${i}`, content: `c ${i}`, embedding: [i, 1, 0] })),
        })
        .expect(201);
      const built = await request(t.server).put('/collections/doomed/vector-index').expect(200);
      await request(t.server).delete('/collections/doomed').expect(204);
      expect((await request(t.server).get('/vector-indexes').expect(200)).body).toEqual([]);
      const [left] = await t.dataSource.query<Array<{ found: boolean }>>(
        `SELECT to_regclass($1) IS NOT NULL AS found`,
        [(built.body as { name: string }).name],
      );
      expect(left.found).toBe(false);
    });
  });
});

describe('POST /ask without an LLM, and with FILTER_REJECT_SQL_PROBES=false', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ FILTER_REJECT_SQL_PROBES: 'false' });
    await request(t.server)
      .post('/documents')
      .send({
        documentId: 'probe-doc',
        documentName: 'Probe',
        documentType: 'law',
        sourceFile: '/data/probe.pdf',
        category: 'thue',
        chunks: [{ content: 'Thuế thu nhập cá nhân', metadata: { author: "O'Brien' OR '1'='1" } }],
      })
      .expect(201);
  });
  afterAll(() => t.close());

  it('compares a probe-like filter value as data when the check is off', async () => {
    const before = await dataFingerprint(t.dataSource);
    const probe = "O'Brien' OR '1'='1";
    const found = await request(t.server)
      .post('/ask')
      .send({ question: 'thuế', filter: { author: probe } })
      .expect(200);
    expect(results(found).map((r) => r.id)).toHaveLength(1);
    const none = await request(t.server)
      .post('/ask')
      .send({ question: 'thuế', filter: { document_type: "law' OR '1'='1" } })
      .expect(200);
    expect(results(none)).toEqual([]);
    expect(await dataFingerprint(t.dataSource)).toEqual(before);
  });

  it('answer: true is a 400 that says how to configure one', async () => {
    const res = await request(t.server).post('/ask').send({ question: 'x', answer: true }).expect(400);
    expect(res.body.message).toContain('set LLM_BASE_URL');
  });
});

describe('POST /ask over an ingested corpus (txt, md, html, docx, pdf made by the test)', () => {
  let t: TestApp;
  const corpus = makeCorpus();

  beforeAll(async () => {
    t = await startTestApp();
    for (const file of await corpus) {
      await request(t.server)
        .post('/documents/ingest')
        .field('documentType', 'guide')
        .field('category', 'corpus')
        .field('documentId', file.fileName)
        .field('chunkSize', '300')
        .field('chunkOverlap', '30')
        .attach('file', file.buffer, { filename: file.fileName, contentType: file.mimeType })
        .expect(201);
    }
  });
  afterAll(() => t.close());

  it.each(['vector', 'hybrid'])('%s mode: each question finds the chunk with its answer at rank 1', async (mode) => {
    for (const file of await corpus) {
      const res = await request(t.server).post('/ask').send({ question: file.question, mode, k: 5 }).expect(200);
      const [top] = (res.body as { results: Array<{ documentId: string; content: string }> }).results;
      expect({ question: file.question, documentId: top.documentId }).toEqual({
        question: file.question,
        documentId: file.fileName,
      });
      // Chunking may cut the sentence at a boundary; its opening words are in the top chunk.
      expect(top.content).toContain(file.sentence.split(' ').slice(0, 5).join(' '));
    }
  });

  it('filters on the chunk metadata ingestion wrote (hierarchy, level, section_title)', async () => {
    const res = await request(t.server)
      .post('/ask')
      .send({ question: 'đăng ký đàn ong', k: 100, filter: { level: { $in: ['article', 'clause', 'point'] } } })
      .expect(200);
    const expected = await t.dataSource.query<Array<{ id: string }>>(
      `SELECT id FROM langchain_pg_embedding WHERE cmetadata->>'level' IN ('article', 'clause', 'point') ORDER BY id`,
    );
    expect(expected.length).toBeGreaterThan(0);
    expect(
      results(res)
        .map((r) => r.id)
        .sort(),
    ).toEqual(expected.map((r) => r.id));
  });
});
