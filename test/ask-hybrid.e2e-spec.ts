import request from 'supertest';
import { startTestApp, type TestApp } from './support/test-app.js';

/** SEARCH_HYBRID_TEXT_MATCH_LIMIT for this file. */
const LIMIT = 20;

interface HybridResult {
  id: string;
  score: number | null;
  vectorRank: number | null;
  textRank: number | null;
}

/**
 * Hybrid search ranks by text every chunk containing a word of the question while there are at most
 * SEARCH_HYBRID_TEXT_MATCH_LIMIT of them, and only the vector side's candidates among them when there
 * are more. Each collection below has three chunks with a vector and the rest without one, all
 * containing the word: a chunk without a vector can only come back through the text side.
 */
describe('POST /ask hybrid: how many chunks the text side ranks', () => {
  let t: TestApp;

  /** A collection of `chunks` chunks that all contain "hiếm"; the first three have a vector. */
  const seed = (name: string, chunks: number) =>
    t.dataSource.query(
      `WITH c AS (INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES (gen_random_uuid(), $1, '{}') RETURNING uuid)
       INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
       SELECT $1 || '-' || i, c.uuid, CASE WHEN i <= 3 THEN ('[1,' || i || ',0,0]')::vector END,
              'Điều ' || i || ': loại hiếm' || repeat(' hiếm', i % 4), '{}'
         FROM c, generate_series(1, $2) AS i`,
      [name, chunks],
    );
  const askHybrid = async (collection: string): Promise<HybridResult[]> =>
    (
      await request(t.server)
        .post('/ask')
        .send({ question: 'hiếm', mode: 'hybrid', k: 10, collection, queryEmbedding: [1, 0, 0, 0] })
        .expect(200)
    ).body.results as HybridResult[];

  beforeAll(async () => {
    t = await startTestApp({ SEARCH_HYBRID_TEXT_MATCH_LIMIT: String(LIMIT) });
    await seed('few', LIMIT - 5);
    await seed('many', LIMIT * 2);
  });
  afterAll(() => t.close());

  it('ranks every chunk that contains a word of the question when at most the limit do', async () => {
    const results = await askHybrid('few');
    expect(results).toHaveLength(10);
    for (const r of results) expect(r.textRank).not.toBeNull();
    // Chunks without a vector, found by their text alone: no score (no distance to the question).
    const textOnly = results.filter((r) => r.vectorRank === null);
    expect(textOnly.length).toBeGreaterThan(0);
    for (const r of textOnly) expect({ id: r.id, score: r.score }).toEqual({ id: r.id, score: null });
    for (const r of results.filter((x) => x.vectorRank !== null)) expect(typeof r.score).toBe('number');
    // minScore keeps only results that have a score, even at its lowest value.
    const scored = (
      await request(t.server)
        .post('/ask')
        .send({
          question: 'hiếm',
          mode: 'hybrid',
          k: 10,
          collection: 'few',
          queryEmbedding: [1, 0, 0, 0],
          minScore: -1,
        })
        .expect(200)
    ).body.results as HybridResult[];
    expect(scored.map((r) => r.id).sort()).toEqual(
      results
        .filter((r) => r.vectorRank !== null)
        .map((r) => r.id)
        .sort(),
    );
  });

  it('finds chunks by their text in a collection that holds no vector at all; vector mode finds none', async () => {
    await t.dataSource.query(
      `WITH c AS (INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES (gen_random_uuid(), 'no-vectors', '{}') RETURNING uuid)
       INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
       SELECT 'nv-' || i, c.uuid, NULL, 'Điều ' || i || CASE WHEN i % 2 = 0 THEN ': loại hiếm' ELSE '' END, '{}'
         FROM c, generate_series(1, 6) AS i`,
    );
    const ask = (body: Record<string, unknown>) =>
      request(t.server)
        .post('/ask')
        .send({ question: 'hiếm', collection: 'no-vectors', k: 10, ...body })
        .expect(200);
    // No queryEmbedding: none is needed, and the local provider's would have nothing to meet.
    const hybrid = (await ask({ mode: 'hybrid' })).body.results as HybridResult[];
    expect(hybrid.map((r) => [r.id, r.score, r.vectorRank]).sort()).toEqual([
      ['nv-2', null, null],
      ['nv-4', null, null],
      ['nv-6', null, null],
    ]);
    expect((await ask({ mode: 'vector' })).body.results).toEqual([]);
    // The same word typed decomposed (as some keyboards and macOS file names write it) finds the same
    // chunks; and a chunk stored decomposed (POST /embeddings and LangChain store texts as sent) is
    // found by the word typed either way.
    await t.dataSource.query(
      `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
       SELECT 'nv-nfd', collection_id, NULL, $1, '{}' FROM langchain_pg_embedding WHERE id = 'nv-1'`,
      ['Điều 7: loại hiếm'.normalize('NFD')],
    );
    for (const question of ['hiếm', 'hiếm'.normalize('NFD')]) {
      const found = (await ask({ mode: 'hybrid', question })).body.results as HybridResult[];
      expect(found.map((r) => r.id).sort()).toEqual(['nv-2', 'nv-4', 'nv-6', 'nv-nfd']);
    }
  });

  it('still finds chunks by text in a collection without vectors when more than the limit contain the word', async () => {
    await t.dataSource.query(
      `WITH c AS (INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES (gen_random_uuid(), 'no-vectors-many', '{}') RETURNING uuid)
       INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
       SELECT 'nvm-' || i, c.uuid, NULL, 'Điều ' || i || ': thuế', '{}'
         FROM c, generate_series(1, $1::int) AS i`,
      [LIMIT * 3],
    );
    const res = await request(t.server)
      .post('/ask')
      .send({ question: 'thuế', collection: 'no-vectors-many', k: 5, mode: 'hybrid' })
      .expect(200);
    const results = res.body.results as HybridResult[];
    expect(results).toHaveLength(5);
    for (const r of results) expect([r.id.startsWith('nvm-'), r.score, r.vectorRank]).toEqual([true, null, null]);
  });

  it("ranks by text only the vector side's candidates when more chunks than the limit contain one", async () => {
    const results = await askHybrid('many');
    expect(results.map((r) => r.id).sort()).toEqual(['many-1', 'many-2', 'many-3']);
    for (const r of results) {
      expect(r.vectorRank).not.toBeNull();
      // The text side still ranks them (a re-ranking of what the vectors found).
      expect(r.textRank).not.toBeNull();
    }
  });
});
