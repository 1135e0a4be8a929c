#!/usr/bin/env node
// Filtered searches next to an HNSW index, from broad filters to one document: the plan the
// planner picks, p50 latency and recall@10 against exact search, with the service's statement
// (equalities as metadata terms AND jsonpath, so the planner may read ix_cmetadata_terms) and with
// the jsonpath form alone (what a database without AddMetadataTermsIndex runs: always the HNSW
// scan). The statements come from the service's own ChunkSearchRepository (dist/), run in a
// transaction with the service's hnsw settings, as /ask runs them.
//
//   node bench/run.mjs --scenarios hnsw --keep        # a 100,000-chunk database with its index
//   node bench/filter-plans.mjs postgresql://…/kb_bench_<pid> [--queries N]
import 'reflect-metadata';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const load = (path) => import(pathToFileURL(resolve(root, 'dist', path)).href);
const { ChunkSearchRepository } = await load('src/ask/chunk-search.repository.js');
const { loadAppConfig } = await load('src/config/app-config.js');

const url = process.argv[2];
if (!url) {
  console.error('Usage: node bench/filter-plans.mjs postgresql://…/kb_bench_<pid> [--queries N]');
  process.exit(2);
}
const queriesArg = process.argv.indexOf('--queries');
const QUERIES = queriesArg > 0 ? Number(process.argv[queriesArg + 1]) : 30;
const K = 10;
const { hnswEfSearch } = loadAppConfig({ SEARCH_HNSW_EF_SEARCH: process.env.SEARCH_HNSW_EF_SEARCH }).search;

const client = new pg.Client({ connectionString: url });
await client.connect();
const manager = { query: async (sql, params) => (await client.query(sql, params)).rows };
const search = new ChunkSearchRepository();
const target = await search.findTarget(manager, 'bench');
if (!target?.index)
  throw new Error('No HNSW index on the bench collection: run the bench with --scenarios hnsw --keep');

const sample = async (sql) => (await client.query(sql, [target.uuid, QUERIES])).rows;
const queries = await sample(
  `SELECT embedding::real[] AS v FROM langchain_pg_embedding WHERE collection_id = $1 ORDER BY random() LIMIT $2`,
);
const documents = await sample(
  `SELECT cmetadata->>'document_id' AS id FROM langchain_pg_embedding WHERE collection_id = $1 ORDER BY random() LIMIT $2`,
);
const share = async (filter) => {
  const [field, value] = Object.entries(filter)[0];
  const [{ n }] = await manager.query(
    `SELECT count(*) FILTER (WHERE cmetadata->>$2 = $3)::float8 / count(*) AS n FROM langchain_pg_embedding WHERE collection_id = $1`,
    [target.uuid, field, String(value)],
  );
  return n;
};

/** Runs one search the way /ask does next to an index; returns its ids, time and plan. */
async function run(query, { index, metadataTerms }) {
  let captured;
  await search.vectorSearch(
    { query: async (sql, params) => ((captured = { sql, params }), []) },
    {
      ...query,
      index,
      metadataTerms,
    },
  );
  await client.query('BEGIN');
  try {
    await client.query(`SET LOCAL hnsw.ef_search = ${Number(hnswEfSearch)}`);
    await client.query(`SET LOCAL hnsw.iterative_scan = relaxed_order`);
    const plan = (await client.query(`EXPLAIN ${captured.sql}`, captured.params)).rows
      .map((r) => r['QUERY PLAN'])
      .join('\n');
    const t0 = performance.now();
    const rows = (await client.query(captured.sql, captured.params)).rows;
    const ms = performance.now() - t0;
    return { ids: rows.map((r) => r.id), ms, path: plan.includes(target.index.name) ? 'HNSW scan' : 'terms index' };
  } finally {
    await client.query('COMMIT');
  }
}

const FILTERS = [
  ['document_type = law', () => ({ document_type: 'law' })],
  ['status = inactive', () => ({ status: 'inactive' })],
  ['chunk_index = 0', () => ({ chunk_index: 0 })],
  ['chunk_index = 30', () => ({ chunk_index: 30 })],
  ['total_chunks = 40', () => ({ total_chunks: 40 })],
  ['one document_id', (i) => ({ document_id: documents[i].id })],
];

console.log(
  `\n${QUERIES} queries, k = ${K}, ef_search ${hnswEfSearch}, relaxed iterative scan; recall against exact search\n`,
);
console.log(
  '| filter | chunks passing | exact p50 ms | jsonpath alone: p50 ms, recall, path | metadata terms: p50 ms, recall, path |',
);
console.log('| --- | --- | --- | --- | --- |');
const p50 = (a) => [...a].sort((x, y) => x - y)[a.length >> 1].toFixed(1);
for (const [label, make] of FILTERS) {
  const stats = {
    exact: [],
    jsonpath: { ms: [], hits: 0, paths: new Set() },
    terms: { ms: [], hits: 0, paths: new Set() },
  };
  let truth = 0;
  for (let i = 0; i < queries.length; i++) {
    const query = { collectionUuid: target.uuid, embedding: queries[i].v, k: K, question: '', filter: make(i) };
    const exact = await run(query, { index: null, metadataTerms: true });
    stats.exact.push(exact.ms);
    truth += exact.ids.length;
    for (const [name, metadataTerms] of [
      ['jsonpath', false],
      ['terms', true],
    ]) {
      const r = await run(query, { index: target.index, metadataTerms });
      stats[name].ms.push(r.ms);
      stats[name].hits += r.ids.filter((id) => exact.ids.includes(id)).length;
      stats[name].paths.add(r.path);
    }
  }
  const cell = (s) => `${p50(s.ms)}, ${(s.hits / truth).toFixed(3)}, ${[...s.paths].join(' / ')}`;
  const passing = label === 'one document_id' ? 'one document' : `${(100 * (await share(make(0)))).toFixed(1)} %`;
  console.log(`| ${label} | ${passing} | ${p50(stats.exact)} | ${cell(stats.jsonpath)} | ${cell(stats.terms)} |`);
}
await client.end();
