import request from 'supertest';
import type { EntityManager } from 'typeorm';
import {
  ChunkSearchRepository,
  hybridCandidates,
  SET_LOCAL_SEARCH_SETTINGS_SQL,
  setLocalSearchSettings,
} from '../src/ask/chunk-search.repository.js';
import { APP_CONFIG, type AppConfig } from '../src/config/app-config.js';
import { type OptionsDroppingProxy, startOptionsDroppingProxy } from './support/options-dropping-proxy.js';
import { TEST_TARGET } from './support/test-database.js';
import { startTestApp, type TestApp } from './support/test-app.js';

const DIMS = 8;
const CHUNKS = 3000;
/** One chunk in RARE_EVERY carries kind = 'rare'. */
const RARE_EVERY = 100;

/** Pseudo-random components, the same in SQL in seedGraph: fract(sin(x) × 43758.5453) − 0.5. */
const component = (i: number, d: number) => {
  const x = Math.sin(i * 12.9898 + d * 78.233) * 43758.5453;
  return x - Math.floor(x) - 0.5;
};
const vector = (i: number) => Array.from({ length: DIMS }, (_, d) => component(i, d));

/** The collection `graph`: CHUNKS chunks g1… with vector(i), one in RARE_EVERY of kind 'rare', and its HNSW index. */
async function seedGraph(t: TestApp): Promise<string> {
  await t.dataSource.query(
    `INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES (gen_random_uuid(), 'graph', '{}')`,
  );
  await t.dataSource.query(
    `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
     SELECT 'g' || i, (SELECT uuid FROM langchain_pg_collection WHERE name = 'graph'),
            (SELECT array_agg(x - floor(x) - 0.5 ORDER BY d)::real[]::vector
               FROM generate_series(0, $1 - 1) AS d, LATERAL (SELECT sin(i * 12.9898 + d * 78.233) * 43758.5453 AS x) AS c),
            'chunk ' || i, jsonb_build_object('kind', CASE WHEN i % $2 = 0 THEN 'rare' ELSE 'common' END)
       FROM generate_series(1, $3) AS i`,
    [DIMS, RARE_EVERY, CHUNKS],
  );
  await t.dataSource.query(`ANALYZE langchain_pg_embedding`);
  return (await request(t.server).put('/collections/graph/vector-index').expect(200)).body.name as string;
}

/** POST /ask on the collection `graph`, expecting a 200. */
const askGraph = (t: TestApp, body: Record<string, unknown>) =>
  request(t.server)
    .post('/ask')
    .send({ question: 'q', collection: 'graph', ...body })
    .expect(200);

/** A stand-in EntityManager whose query() EXPLAINs the statement (`explain` options) and appends the plan's text to `plans`. */
function explainingManager(t: TestApp, plans: string[], explain = ''): EntityManager {
  return {
    query: async (sql: string, params: unknown[]) => {
      const rows = await t.dataSource.query<Array<Record<string, string>>>(`EXPLAIN ${explain} ${sql}`, params);
      plans.push(rows.map((r) => Object.values(r)[0]).join('\n'));
      return [];
    },
  } as unknown as EntityManager;
}

/**
 * hnsw.ef_search caps what one index scan returns, and without pgvector 0.8's iterative scan a
 * filter is applied to those rows only. With SEARCH_HNSW_EF_SEARCH=10, a k above it, or a filter
 * that only 1 % of the chunks pass, would come back short unless /ask gives the scan the settings:
 * on a server the connection starts with them (k ≤ ef_search: one statement), otherwise SET LOCAL.
 */
describe('POST /ask through an HNSW index with a small ef_search', () => {
  let t: TestApp;
  let indexName: string;
  const ask = (body: Record<string, unknown>) => askGraph(t, body);

  beforeAll(async () => {
    t = await startTestApp({ SEARCH_HNSW_EF_SEARCH: '10' });
    indexName = await seedGraph(t);
  });
  afterAll(() => t.close());

  it('the planner searches this collection through its index (so the settings below matter)', async () => {
    const target = (await t.app.get(ChunkSearchRepository).findTarget(t.dataSource.manager, 'graph'))!;
    const plans: string[] = [];
    const explaining = explainingManager(t, plans);
    const query = {
      collectionUuid: target.uuid,
      embedding: vector(5),
      k: 25,
      question: 'q',
      index: target.index,
      metadataTerms: target.metadataTerms,
    };
    await t.app.get(ChunkSearchRepository).vectorSearch(explaining, query);
    // $ne is not an equality: ix_cmetadata_terms cannot serve it, so the HNSW scan filters its rows.
    await t.app
      .get(ChunkSearchRepository)
      .vectorSearch(explaining, { ...query, k: 5, filter: { kind: { $ne: 'common' } } });
    expect(plans).toHaveLength(2);
    for (const plan of plans) expect(plan).toContain(`Index Scan using ${indexName}`);
  });

  it("ranks hybrid mode's vector candidates once it has them: read from the index, or kept by a top-N sort without it", async () => {
    const target = (await t.app.get(ChunkSearchRepository).findTarget(t.dataSource.manager, 'graph'))!;
    const plans: string[] = [];
    const explaining = explainingManager(t, plans, '(ANALYZE, COSTS OFF, TIMING OFF)');
    const query = {
      collectionUuid: target.uuid,
      embedding: vector(5),
      k: 5,
      question: 'chunk',
      index: target.index,
      metadataTerms: target.metadataTerms,
    };
    const repository = t.app.get(ChunkSearchRepository);
    await repository.hybridSearch(explaining, query, t.config.search.hybridTextMatchLimit);
    await repository.hybridSearch(explaining, { ...query, index: null }, t.config.search.hybridTextMatchLimit);
    const vectorSide = (plan: string) => plan.slice(plan.indexOf('CTE vector_hits'), plan.indexOf('CTE text_query'));
    expect(vectorSide(plans[0])).toContain(`Index Scan using ${indexName}`);
    // Exact: the sort keeps the 20 candidates. A window function over the scan had it sort all 3,000.
    expect(vectorSide(plans[1])).toContain('top-N heapsort');
  });

  it('reads ix_cmetadata_terms for a filter equality: always in an exact search, next to the HNSW index when few chunks pass', async () => {
    const target = (await t.app.get(ChunkSearchRepository).findTarget(t.dataSource.manager, 'graph'))!;
    expect(target.metadataTerms).toBe(true);
    const plan = async (
      search: 'vectorSearch' | 'hybridSearch',
      index: typeof target.index,
      { metadataTerms = true, kind = 'rare' } = {},
    ) => {
      const plans: string[] = [];
      const explaining = explainingManager(t, plans);
      const query = {
        collectionUuid: target.uuid,
        embedding: vector(5),
        k: 5,
        question: 'chunk',
        filter: { kind },
        index,
        metadataTerms,
      };
      const repository = t.app.get(ChunkSearchRepository);
      await (search === 'vectorSearch'
        ? repository.vectorSearch(explaining, query)
        : repository.hybridSearch(explaining, query, t.config.search.hybridTextMatchLimit));
      return plans[0];
    };
    // Exact distances: 30 of 3,000 chunks pass, and the GIN index finds them without reading the rest.
    expect(await plan('vectorSearch', null)).toContain('Bitmap Index Scan on ix_cmetadata_terms');
    expect(await plan('hybridSearch', null)).toContain('Bitmap Index Scan on ix_cmetadata_terms');
    // With the HNSW index, the planner chooses: 1 % of the chunks pass, so it reads them through the
    // terms index and sorts them exactly (an HNSW scan would walk most of the graph to find them)...
    const selective = await plan('vectorSearch', target.index);
    expect(selective).toContain('Bitmap Index Scan on ix_cmetadata_terms');
    expect(selective).not.toContain(`Index Scan using ${indexName}`);
    // ...while 99 % pass 'common': the HNSW scan, its rows checked by the filter.
    const broad = await plan('vectorSearch', target.index, { kind: 'common' });
    expect(broad).toContain(`Index Scan using ${indexName}`);
    expect(broad).not.toContain('ix_cmetadata_terms');
    // Without the terms function (AddMetadataTermsIndex pending), the statement does not call it.
    expect(await plan('vectorSearch', null, { metadataTerms: false })).not.toContain('chunk_metadata_terms');
    expect(await plan('vectorSearch', target.index, { metadataTerms: false })).not.toContain('chunk_metadata_terms');
  });

  // PGlite plans no parallel workers at all.
  (TEST_TARGET === 'postgres' ? it : it.skip)(
    'plans exact searches without parallel workers: connections start with SEARCH_PARALLEL_WORKERS (0)',
    async () => {
      const target = (await t.app.get(ChunkSearchRepository).findTarget(t.dataSource.manager, 'graph'))!;
      const statements: Array<{ sql: string; params: unknown[] }> = [];
      const capturing = {
        query: (sql: string, params: unknown[]) => {
          statements.push({ sql, params });
          return Promise.resolve([]);
        },
      } as unknown as EntityManager;
      const query = { collectionUuid: target.uuid, embedding: vector(5), k: 5, question: 'q', index: null };
      const repository = t.app.get(ChunkSearchRepository);
      await repository.vectorSearch(capturing, { ...query, metadataTerms: target.metadataTerms });
      await repository.vectorSearch(capturing, {
        ...query,
        filter: { kind: 'common' },
        metadataTerms: target.metadataTerms,
      });
      // On a pooled connection, as AskService runs them; `workers` as the fallback sets it.
      const plan = (statement: { sql: string; params: unknown[] }, workers?: number) =>
        t.dataSource.transaction(async (manager) => {
          // Parallel plans made free, so the planner takes one wherever it is allowed to.
          for (const setting of ['parallel_setup_cost', 'parallel_tuple_cost', 'min_parallel_table_scan_size']) {
            await manager.query(`SELECT set_config($1, '0', true)`, [setting]);
          }
          if (workers !== undefined)
            await setLocalSearchSettings(manager, { max_parallel_workers_per_gather: workers });
          const rows = await manager.query<Array<Record<string, string>>>(`EXPLAIN ${statement.sql}`, statement.params);
          return rows.map((r) => Object.values(r)[0]).join('\n');
        });
      expect(statements).toHaveLength(2);
      for (const statement of statements) {
        expect(await plan(statement)).not.toContain('Gather');
        // The server's own default (2) would add workers.
        expect(await plan(statement, 2)).toContain('Gather');
      }
    },
  );

  it('every connection starts with the configured search settings, embedded too (k ≤ ef_search: no SET LOCAL)', async () => {
    // At once, each holding its connection a moment: three connections of the pool (the embedded
    // database's one session there), not the same idle one three times.
    const rows = await Promise.all(
      Array.from({ length: 3 }, () =>
        t.dataSource.query<Array<{ pid: number; ef: string; it: string; workers: string }>>(
          `SELECT pg_backend_pid() AS pid, current_setting('hnsw.ef_search') AS ef,
                  current_setting('hnsw.iterative_scan') AS it,
                  current_setting('max_parallel_workers_per_gather') AS workers FROM pg_sleep(0.05)`,
        ),
      ),
    );
    expect(new Set(rows.map(([row]) => row.pid)).size).toBe(TEST_TARGET === 'postgres' ? 3 : 1);
    for (const [{ ef, it, workers }] of rows)
      expect({ ef, it, workers }).toEqual({ ef: '10', it: 'relaxed_order', workers: '0' });
  });

  it('setLocalSearchSettings sets the given settings for its transaction only, leaving out the undefined ones', async () => {
    const read = (manager: EntityManager) =>
      manager
        .query<Array<{ ef: string; it: string; workers: string }>>(
          `SELECT current_setting('hnsw.ef_search') AS ef, current_setting('hnsw.iterative_scan') AS it,
                  current_setting('max_parallel_workers_per_gather') AS workers`,
        )
        .then(([row]) => row);
    const inside = await t.dataSource.transaction(async (manager) => {
      await setLocalSearchSettings(manager, {
        'hnsw.ef_search': 77,
        'hnsw.iterative_scan': undefined,
        max_parallel_workers_per_gather: 3,
      });
      return read(manager);
    });
    expect(inside).toEqual({ ef: '77', it: 'relaxed_order', workers: '3' });
    expect(await read(t.dataSource.manager)).toEqual({ ef: '10', it: 'relaxed_order', workers: '0' });
  });

  it('returns k results when k is above ef_search', async () => {
    const res = await ask({ queryEmbedding: vector(5), k: 25 });
    expect(res.body.results).toHaveLength(25);
    expect(res.body.results[0].id).toBe('g5');
  });

  it('returns k results that pass a filter most chunks fail (iterative scan)', async () => {
    const res = await ask({ queryEmbedding: vector(500), k: 5, filter: { kind: { $ne: 'common' } } });
    expect(res.body.results).toHaveLength(5);
    expect(res.body.results[0].id).toBe('g500');
    for (const r of res.body.results as Array<{ metadata: { kind: string } }>) expect(r.metadata.kind).toBe('rare');
  });

  it('returns the exact nearest chunks for an equality most chunks fail, through the terms index', async () => {
    for (const query of [500, 1234, 2999]) {
      const exact = await t.dataSource.query<Array<{ id: string }>>(
        `SELECT id FROM langchain_pg_embedding WHERE cmetadata->>'kind' = 'rare'
          ORDER BY embedding <=> $1::vector, id LIMIT 5`,
        [`[${vector(query).join(',')}]`],
      );
      const res = await ask({ queryEmbedding: vector(query), k: 5, filter: { kind: 'rare' } });
      expect((res.body.results as Array<{ id: string }>).map((r) => r.id)).toEqual(exact.map((r) => r.id));
    }
  });

  it('exact: true returns the exact nearest chunks, which the index at ef_search 10 misses', async () => {
    const exactIds = async (query: number[], kind?: string) =>
      (
        await t.dataSource.query<Array<{ id: string }>>(
          `SELECT id FROM langchain_pg_embedding WHERE ($2::text IS NULL OR cmetadata->>'kind' <> $2)
            ORDER BY embedding <=> $1::vector, id LIMIT 10`,
          [`[${query.join(',')}]`, kind ?? null],
        )
      ).map((r) => r.id);
    const ids = (res: request.Response) => (res.body.results as Array<{ id: string }>).map((r) => r.id);
    // Vectors no chunk has (chunks hold vector(1) to vector(CHUNKS)). At ef_search 10 the index misses
    // one of the 10 nearest for 3–4 queries in 100 here: the first one it misses is found long before 500.
    let missed: number[] | undefined;
    for (let i = 1; i <= 500 && !missed; i++) {
      const query = vector(CHUNKS + i);
      if (ids(await ask({ queryEmbedding: query, k: 10 })).join() !== (await exactIds(query)).join()) missed = query;
    }
    // Otherwise this test could not tell exact from approximate search.
    expect(missed).toBeDefined();
    for (const query of [missed!, vector(CHUNKS + 1000), vector(CHUNKS + 1001)]) {
      const expected = await exactIds(query);
      expect(ids(await ask({ queryEmbedding: query, k: 10, exact: true }))).toEqual(expected);
      // The question matches no chunk's text, so the fused ranking is the vector ranking.
      expect(ids(await ask({ queryEmbedding: query, k: 10, exact: true, mode: 'hybrid' }))).toEqual(expected);
      // $ne is no equality: without exact the HNSW scan would filter its rows (first test above).
      const filtered = { queryEmbedding: query, k: 10, exact: true, filter: { kind: { $ne: 'common' } } };
      expect(ids(await ask(filtered))).toEqual(await exactIds(query, 'common'));
    }
  });

  it('in hybrid mode too, whose candidate count (60 for k = 15) is above ef_search', async () => {
    const res = await ask({ queryEmbedding: vector(7), k: 15, mode: 'hybrid' });
    expect(res.body.results).toHaveLength(15);
    const ranks = (res.body.results as Array<{ vectorRank: number | null }>).map((r) => r.vectorRank);
    expect(ranks.filter((rank) => rank !== null)).toHaveLength(15);
  });
});

/**
 * A filtered index scan visits at most hnsw.max_scan_tuples chunks looking for k that pass the
 * filter. With SEARCH_HNSW_MAX_SCAN_TUPLES=100 and a filter 1 % of the chunks pass, it stops with
 * about one: /ask sees fewer than k and answers with the exact search instead.
 */
describe('POST /ask when a filtered index scan stops at SEARCH_HNSW_MAX_SCAN_TUPLES', () => {
  let t: TestApp;
  const ask = (body: Record<string, unknown>) => askGraph(t, body);
  const rareFilter = { kind: { $ne: 'common' } };
  /** The k nearest rare chunks, by exact distance. */
  const exactRareIds = async (query: number[], k: number) =>
    (
      await t.dataSource.query<Array<{ id: string }>>(
        `SELECT id FROM langchain_pg_embedding WHERE cmetadata->>'kind' <> 'common'
          ORDER BY embedding <=> $1::vector, id LIMIT $2`,
        [`[${query.join(',')}]`, k],
      )
    ).map((r) => r.id);
  const ids = (res: request.Response) => (res.body.results as Array<{ id: string }>).map((r) => r.id);

  beforeAll(async () => {
    t = await startTestApp({ SEARCH_HNSW_EF_SEARCH: '10', SEARCH_HNSW_MAX_SCAN_TUPLES: '100' });
    await seedGraph(t);
  });
  afterAll(() => t.close());

  it('the index scan alone comes back short (what this block is about)', async () => {
    const repository = t.app.get(ChunkSearchRepository);
    const target = (await repository.findTarget(t.dataSource.manager, 'graph'))!;
    for (const i of [500, 1234, 2999]) {
      const hits = await repository.vectorSearch(t.dataSource.manager, {
        collectionUuid: target.uuid,
        embedding: vector(i),
        k: 5,
        question: 'q',
        filter: rareFilter,
        index: target.index,
        metadataTerms: target.metadataTerms,
      });
      expect(hits.length).toBeLessThan(5);
    }
  });

  it('returns the exact k nearest chunks that pass the filter, and counts the retry', async () => {
    for (const i of [500, 1234, 2999]) {
      expect(ids(await ask({ queryEmbedding: vector(i), k: 5, filter: rareFilter }))).toEqual(
        await exactRareIds(vector(i), 5),
      );
    }
    // The question matches no chunk's text, so the fused ranking is the vector ranking.
    expect(ids(await ask({ queryEmbedding: vector(77), k: 5, filter: rareFilter, mode: 'hybrid' }))).toEqual(
      await exactRareIds(vector(77), 5),
    );
    const metrics = (await request(t.server).get('/metrics').expect(200)).text;
    expect(metrics).toContain('search_exact_retries_total{mode="vector"} 3');
    // The hybrid statement asks the scan for more candidates than k (ef_search 40 here), and what a
    // scan capped at 100 tuples finds depends on the HNSW graph, which differs from build to build:
    // usually 4 of the 5 rare chunks, once in CI all 5. The retry is counted exactly when the search
    // /ask makes, with its settings, came back short.
    const config = t.app.get<AppConfig>(APP_CONFIG).search;
    const repository = t.app.get(ChunkSearchRepository);
    const target = (await repository.findTarget(t.dataSource.manager, 'graph'))!;
    const first = await t.dataSource.transaction(async (manager) => {
      await setLocalSearchSettings(manager, {
        'hnsw.ef_search': Math.max(config.hnswEfSearch, hybridCandidates(5)),
        'hnsw.iterative_scan': 'relaxed_order',
        'hnsw.max_scan_tuples': config.hnswMaxScanTuples,
      });
      const query = { collectionUuid: target.uuid, embedding: vector(77), k: 5, question: 'q', filter: rareFilter };
      return repository.hybridSearch(
        manager,
        { ...query, index: target.index, metadataTerms: target.metadataTerms },
        config.hybridTextMatchLimit,
      );
    });
    expect(metrics).toContain(`search_exact_retries_total{mode="hybrid"} ${first.vectorCandidates < 5 ? 1 : 0}`);

    // A question every chunk's text matches ("chunk <i>"): the text side fills the fused hits up to
    // k whatever the scan found, so only the scan's own count can tell that it came back short.
    const hybrid = { queryEmbedding: vector(77), k: 5, filter: rareFilter, mode: 'hybrid', question: 'chunk' };
    const answered = (await ask(hybrid)).body.results as Array<{ id: string; vectorRank: number | null }>;
    const exact = (await ask({ ...hybrid, exact: true })).body.results as typeof answered;
    const after = (await request(t.server).get('/metrics').expect(200)).text;
    if (first.vectorCandidates < 5) {
      expect(answered).toEqual(exact);
      expect(after).toContain('search_exact_retries_total{mode="hybrid"} 2');
    } else {
      expect(after).toContain('search_exact_retries_total{mode="hybrid"} 0');
    }
  });

  it('does not search again when the index scan finds k that pass the filter', async () => {
    const res = await ask({ queryEmbedding: vector(500), k: 5, filter: { kind: { $ne: 'rare' } } });
    expect(res.body.results).toHaveLength(5);
    const metrics = (await request(t.server).get('/metrics').expect(200)).text;
    expect(metrics).toContain('search_exact_retries_total{mode="vector"} 3');
  });

  it('takes filter: null for no filter: fewer than k chunks in an indexed collection is no retry', async () => {
    await request(t.server)
      .post('/embeddings')
      .send({ collection: 'tiny', items: [1, 2, 3].map((i) => ({ id: `tiny-${i}`, content: 't', embedding: [i, 1] })) })
      .expect(201);
    await request(t.server).put('/collections/tiny/vector-index').expect(200);
    const res = await request(t.server)
      .post('/ask')
      .send({ question: 'q', collection: 'tiny', queryEmbedding: [1, 1], k: 5, filter: null })
      .expect(200);
    expect(res.body.results).toHaveLength(3);
    const metrics = (await request(t.server).get('/metrics').expect(200)).text;
    expect(metrics).toContain('search_exact_retries_total{mode="vector"} 3');
  });
});

/**
 * Behind a pooler that drops the startup `options`, connections start with the server's defaults
 * (ef_search 40, no iterative scan, its parallel workers), and each search must set what it needs
 * with SET LOCAL in its own transaction. Server only: the embedded database has no startup packet.
 */
(TEST_TARGET === 'postgres' ? describe : describe.skip)(
  'POST /ask behind a pooler that drops the startup options',
  () => {
    let proxy: OptionsDroppingProxy;
    let t: TestApp;
    const ask = (body: Record<string, unknown>) => askGraph(t, body);
    /** The statements of the transaction in which a connection sent the statement containing `fragment`. */
    const transactionOf = (fragment: string): string[] => {
      const log = proxy.statements.find((l) => l.some((sql) => sql.includes(fragment)));
      if (!log) return [];
      const at = log.findIndex((sql) => sql.includes(fragment));
      const start = log.slice(0, at).findLastIndex((sql) => sql === 'START TRANSACTION');
      const end = log.indexOf('COMMIT', at);
      return start < 0 || end < 0 ? [log[at]] : log.slice(start, end + 1);
    };

    beforeAll(async () => {
      proxy = await startOptionsDroppingProxy(process.env.TEST_DATABASE_URL!);
      t = await startTestApp((env) => ({ SEARCH_HNSW_EF_SEARCH: '10', DATABASE_URL: proxy.via(env.DATABASE_URL) }));
      await seedGraph(t);
    });
    afterAll(async () => {
      await t?.close();
      await proxy?.close();
    });

    it('the connections start without the search settings (what this block is about)', async () => {
      const [row] = await t.dataSource.query<Array<{ ef: string | null; it: string | null; workers: string }>>(
        `SELECT current_setting('hnsw.ef_search', true) AS ef, current_setting('hnsw.iterative_scan', true) AS it,
              current_setting('max_parallel_workers_per_gather') AS workers`,
      );
      expect(row.ef).not.toBe('10');
      expect(row.it).not.toBe('relaxed_order');
      expect(row.workers).not.toBe('0');
    });

    it('sets ef_search, the iterative scan and the workers in the search transaction: a filter most chunks fail still gets k rows', async () => {
      proxy.clear();
      const res = await ask({ queryEmbedding: vector(500), k: 5, filter: { kind: { $ne: 'common' } } });
      // At the server's ef_search 40 without an iterative scan, 1 % of 40 rows would pass.
      expect(res.body.results).toHaveLength(5);
      expect(res.body.results[0].id).toBe('g500');
      expect(transactionOf('WITH hits')).toEqual([
        'START TRANSACTION',
        SET_LOCAL_SEARCH_SETTINGS_SQL,
        expect.stringContaining('WITH hits'),
        'COMMIT',
      ]);
    });

    it('runs an exact search in a transaction that sets SEARCH_PARALLEL_WORKERS', async () => {
      proxy.clear();
      const res = await ask({ queryEmbedding: vector(5), k: 5, exact: true });
      expect(res.body.results[0].id).toBe('g5');
      expect(transactionOf('WITH hits')).toEqual([
        'START TRANSACTION',
        SET_LOCAL_SEARCH_SETTINGS_SQL,
        expect.stringContaining('WITH hits'),
        'COMMIT',
      ]);
    });
  },
);
