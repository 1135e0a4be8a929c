import request from 'supertest';
import { startTestApp, type TestApp } from './support/test-app.js';

/**
 * /ask remembers what it looked up about a collection (SearchTargetCache, 60 s here so every step
 * below runs on a cached entry). Other processes change collections behind its back — LangChain,
 * the index CLI, direct SQL — and the cached entry must never make a search fail, return a
 * deleted collection's rows, or miss the new ones.
 */
describe('POST /ask with a stale cached collection', () => {
  let t: TestApp;
  const ask = (body: Record<string, unknown>) => request(t.server).post('/ask').send(body);
  const ids = (res: { body: { results: Array<{ id: string }> } }) => res.body.results.map((r) => r.id);

  /** Replaces the collection through SQL alone, as another process would: new uuid, new chunks. */
  async function recreateThroughSql(name: string, dims: number, chunkIds: string[]): Promise<void> {
    await t.dataSource.transaction(async (manager) => {
      await manager.query(`DELETE FROM langchain_pg_collection WHERE name = $1`, [name]);
      const [{ uuid }] = await manager.query<Array<{ uuid: string }>>(
        `INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES (gen_random_uuid(), $1, '{}') RETURNING uuid`,
        [name],
      );
      for (const [i, id] of chunkIds.entries()) {
        const vector = Array.from({ length: dims }, (_, d) => (d === i % dims ? 1 : 0.1));
        await manager.query(
          `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
           VALUES ($1, $2, $3::vector, $4, $5)`,
          [id, uuid, `[${vector.join(',')}]`, `chunk ${id}`, { kind: 'new' }],
        );
      }
    });
  }

  async function addThroughApi(name: string, dims: number, chunkIds: string[]): Promise<void> {
    await request(t.server)
      .post('/embeddings')
      .send({
        collection: name,
        items: chunkIds.map((id, i) => ({
          id,
          content: `chunk ${id}`,
          metadata: { kind: 'old' },
          embedding: Array.from({ length: dims }, (_, d) => (d === i % dims ? 1 : 0.1)),
        })),
      })
      .expect(201);
  }

  const unit = (dims: number, axis = 0) => Array.from({ length: dims }, (_, d) => (d === axis ? 1 : 0));

  beforeAll(async () => {
    t = await startTestApp({ SEARCH_TARGET_CACHE_TTL_MS: '60000' });
  });
  afterAll(() => t.close());

  it('finds the new chunks after the collection is deleted and recreated with another dimension', async () => {
    await addThroughApi('moving', 4, ['old-1', 'old-2']);
    expect(ids(await ask({ question: 'q', collection: 'moving', queryEmbedding: unit(4), k: 5 }).expect(200))).toEqual([
      'old-1',
      'old-2',
    ]);

    await recreateThroughSql('moving', 3, ['new-1', 'new-2', 'new-3']);
    const res = await ask({ question: 'q', collection: 'moving', queryEmbedding: unit(3, 1), k: 5 }).expect(200);
    expect(ids(res)[0]).toBe('new-2');
    expect(ids(res).sort()).toEqual(['new-1', 'new-2', 'new-3']);
    const wrongSize = await ask({ question: 'q', collection: 'moving', queryEmbedding: unit(4), k: 5 }).expect(400);
    expect(wrongSize.body.message).toBe(
      'queryEmbedding has 4 dimensions, but collection "moving" holds 3-dimensional vectors',
    );
  });

  it('finds the new chunks after a recreation with the same dimension, with and without a filter', async () => {
    await addThroughApi('same-size', 4, ['old-a', 'old-b']);
    await ask({ question: 'q', collection: 'same-size', queryEmbedding: unit(4), k: 5 }).expect(200);

    await recreateThroughSql('same-size', 4, ['new-a']);
    const plain = await ask({ question: 'q', collection: 'same-size', queryEmbedding: unit(4), k: 5 }).expect(200);
    expect(ids(plain)).toEqual(['new-a']);
    await recreateThroughSql('same-size', 4, ['newer-a', 'newer-b']);
    const filtered = await ask({
      question: 'q',
      collection: 'same-size',
      queryEmbedding: unit(4, 1),
      k: 5,
      filter: { kind: 'new' },
    }).expect(200);
    expect(ids(filtered)).toEqual(['newer-b', 'newer-a']);
  });

  it('answers 404 once the cached collection was deleted by another process', async () => {
    await addThroughApi('doomed', 4, ['d-1']);
    await ask({ question: 'q', collection: 'doomed', queryEmbedding: unit(4), k: 5 }).expect(200);
    await t.dataSource.query(`DELETE FROM langchain_pg_collection WHERE name = 'doomed'`);
    const gone = await ask({ question: 'q', collection: 'doomed', queryEmbedding: unit(4), k: 5 }).expect(404);
    expect(gone.body.message).toBe('Collection "doomed" not found');
  });

  describe('with an HNSW index', () => {
    it('keeps answering, with the same results, after another process drops the index', async () => {
      await addThroughApi('indexed', 4, ['i-1', 'i-2', 'i-3']);
      const built = await request(t.server).put('/collections/indexed/vector-index').expect(200);
      const before = await ask({ question: 'q', collection: 'indexed', queryEmbedding: unit(4, 2), k: 3 }).expect(200);
      expect(ids(before)[0]).toBe('i-3');

      await t.dataSource.query(`DROP INDEX ${built.body.name as string}`);
      const after = await ask({ question: 'q', collection: 'indexed', queryEmbedding: unit(4, 2), k: 3 }).expect(200);
      expect(after.body.results).toEqual(before.body.results);
      const filtered = await ask({
        question: 'q',
        collection: 'indexed',
        queryEmbedding: unit(4, 2),
        k: 3,
        filter: { kind: 'old' },
      }).expect(200);
      expect(filtered.body.results).toEqual(before.body.results);
    });

    it('names the right dimension when the indexed collection now holds vectors of another one', async () => {
      await addThroughApi('reshaped', 4, ['r-1', 'r-2']);
      const built = await request(t.server).put('/collections/reshaped/vector-index').expect(200);
      await ask({ question: 'q', collection: 'reshaped', queryEmbedding: unit(4), k: 2 }).expect(200);

      // Same collection (same uuid), index dropped, its chunks replaced by 3-dimensional ones.
      await t.dataSource.query(`DROP INDEX ${built.body.name as string}`);
      await t.dataSource.query(
        `UPDATE langchain_pg_embedding SET embedding = '[0,1,0]'::vector
          WHERE collection_id = (SELECT uuid FROM langchain_pg_collection WHERE name = 'reshaped')`,
      );
      // The cached index casts to vector(4): PostgreSQL refuses 3-dimensional rows; looked up again.
      const res = await ask({ question: 'q', collection: 'reshaped', queryEmbedding: unit(4), k: 2 }).expect(400);
      expect(res.body.message).toBe(
        'queryEmbedding has 4 dimensions, but collection "reshaped" holds 3-dimensional vectors',
      );
      const ok = await ask({ question: 'q', collection: 'reshaped', queryEmbedding: unit(3, 1), k: 2 }).expect(200);
      expect(ids(ok).sort()).toEqual(['r-1', 'r-2']);
    });
  });
});
