#!/usr/bin/env node
// The comparison worker: a child process of bench/run.mjs that holds the comparisons' database
// connections and serves them over a minimal node:http server, so they are measured the way the
// service is (from the bench process, over loopback).
//
//   /ask, /documents, /documents/:id, /stats   the driver floor: the service's own SQL (imported from
//                                              dist/) through `pg`, with no framework in between
//   /prepared/documents/:id                    the same lookup as a named prepared statement (reference)
//   /health/live                               the service's constant liveness JSON, no database: the
//                                              reference for the framework's own ceiling (reads)
//   /langchain/ask                             LangChain JS PGVectorStore.similaritySearchVectorWithScore
//   /_bench/*                                  control: timed ingest batches (LangChain addVectors,
//                                              COPY FROM STDIN), exact search, EXPLAIN, SQL
//
// Environment: PORT, BENCH_DATABASE (a postgresql:// URL, or `embedded:<DATA_DIR>`: then the worker
// opens its own embedded PGlite there through the service's EmbeddedPostgres, the same pg-over-
// socket stack as the service; BENCH_MIGRATE=1 migrates a new one, EMBEDDED_TEMPLATE seeds it),
// BENCH_SEED, BENCH_CHUNKS, BENCH_DIMS, BENCH_COLLECTION, BENCH_DIST.
import 'reflect-metadata';
import { createServer } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { Document } from '@langchain/core/documents';
import { BenchData } from './data.mjs';
import { langchainStore } from './langchain-store.mjs';

const env = process.env;
const dist = resolve(env.BENCH_DIST ?? 'dist');
const load = (path) => import(pathToFileURL(resolve(dist, path)).href);
const { ChunkSearchRepository } = await load('src/ask/chunk-search.repository.js');
const { toAskResult } = await load('src/ask/ask.service.js');
const stats = await load('src/stats/stats.sql.js');

const collectionName = env.BENCH_COLLECTION ?? 'bench';
const data = new BenchData({
  seed: Number(env.BENCH_SEED ?? 42),
  chunks: Number(env.BENCH_CHUNKS),
  dims: Number(env.BENCH_DIMS),
});
/** The service's SEARCH_HNSW_EF_SEARCH (its default unless set): the floor searches the index with the same setting. */
const EF_SEARCH = Number(
  env.BENCH_EF_SEARCH ??
    (await load('src/config/app-config.js')).loadAppConfig({ SEARCH_HNSW_EF_SEARCH: env.SEARCH_HNSW_EF_SEARCH }).search
      .hnswEfSearch,
);

let embedded;
let poolConfig;
const { loadAppConfig } = await load('src/config/app-config.js');
const { buildDataSourceOptions, searchSessionOptions, searchSessionSettings } = await load(
  'src/database/data-source-options.js',
);
if (env.BENCH_DATABASE.startsWith('embedded:')) {
  const { EmbeddedPostgres } = await load('src/database/embedded-postgres.js');
  const dataDir = env.BENCH_DATABASE.slice('embedded:'.length);
  const config = loadAppConfig({ DATA_DIR: dataDir, LOG_LEVEL: 'warn', SEARCH_HNSW_EF_SEARCH: String(EF_SEARCH) });
  // The search settings the service's embedded session starts with (searchSessionSettings).
  embedded = await EmbeddedPostgres.start(dataDir, env.EMBEDDED_TEMPLATE || undefined, searchSessionSettings(config));
  if (env.BENCH_MIGRATE === '1') {
    // A new embedded database: migrated the way the service migrates its own, then disconnected
    // (the socket server takes one connection at a time).
    const { initializeDataSource } = await load('src/database/database-runtime.js');
    const dataSource = await initializeDataSource(
      buildDataSourceOptions(config, { host: embedded.host, port: embedded.port }),
    );
    await dataSource.destroy();
  }
  // One connection, as the service has on the embedded database (PGlite is a single session).
  poolConfig = { host: embedded.host, port: embedded.port, user: 'postgres', database: 'postgres', max: 1 };
} else {
  // The service's default pool size (DB_POOL_MAX=10), and the search settings its server
  // connections start with (the startup `options` of data-source-options.ts).
  const config = loadAppConfig({ DATABASE_URL: env.BENCH_DATABASE, SEARCH_HNSW_EF_SEARCH: String(EF_SEARCH) });
  poolConfig = { connectionString: env.BENCH_DATABASE, max: 10, options: searchSessionOptions(config) };
}
const pool = new pg.Pool({ ...poolConfig, application_name: 'kb-bench-floor' });
pool.on('error', (error) => process.stderr.write(`idle connection failed: ${error.message}\n`));
/** The rows of one statement; with `name`, run as a named prepared statement (pg prepares it once per connection). */
async function rows(sql, params, name) {
  const client = await pool.connect();
  try {
    return (await client.query(name ? { name, text: sql, values: params } : { text: sql, values: params })).rows;
  } finally {
    client.release();
  }
}
/** The one method of TypeORM's EntityManager that ChunkSearchRepository calls. */
const manager = { query: rows };
const search = new ChunkSearchRepository();

let collection = null;
let index = null;
let metadataTerms = false;
/** The service's own lookup (ChunkSearchRepository.findTarget), so the floor's SQL is the service's. */
async function refresh() {
  const target = await search.findTarget(manager, collectionName);
  collection = target ? { uuid: target.uuid, name: target.name } : null;
  index = target?.index ?? null;
  metadataTerms = target?.metadataTerms ?? false;
  return { collection, index };
}
// Right after the migration's connection closed, PGlite's one-connection socket server may still
// refuse the next one for a moment.
for (let attempt = 1; ; attempt++) {
  try {
    await refresh();
    break;
  } catch (error) {
    if (attempt >= 50 || !/terminated|ECONNRESET|ECONNREFUSED/.test(String(error?.message))) throw error;
    await new Promise((r) => setTimeout(r, 100));
  }
}

// LangChain over the same tables, as the brief prescribes; one store per collection name.
const stores = new Map();
function langchain(name) {
  let store = stores.get(name);
  if (!store) {
    store = langchainStore(pool, name);
    stores.set(name, store);
  }
  return store;
}

// --- floor handlers: the service's SQL, minimal code around it -------------------------------

/** The service's SEARCH_HYBRID_TEXT_MATCH_LIMIT: its default, or the value the bench's environment gives both. */
const HYBRID_TEXT_MATCH_LIMIT = loadAppConfig({
  SEARCH_HYBRID_TEXT_MATCH_LIMIT: env.SEARCH_HYBRID_TEXT_MATCH_LIMIT,
}).search.hybridTextMatchLimit;

async function floorAsk(body, { exact = false, via } = {}) {
  const started = performance.now();
  const query = {
    collectionUuid: collection.uuid,
    embedding: body.queryEmbedding,
    k: body.k ?? 5,
    question: body.question,
    filter: body.filter,
    index: exact ? null : index,
    metadataTerms,
  };
  // One statement on the pool, as AskService sends it: the connections start with the service's
  // search settings (hnsw.ef_search, iterative scan, parallel workers), so nothing is set per search.
  // (A hybrid search's 40 candidates for k = 10 stay under the bench's ef_search.)
  const mode = body.mode === 'hybrid' ? 'hybrid' : 'vector';
  const hits =
    mode === 'hybrid'
      ? (await search.hybridSearch(via ?? manager, query, HYBRID_TEXT_MATCH_LIMIT)).hits
      : await search.vectorSearch(via ?? manager, query);
  const results = hits.map(toAskResult);
  return {
    question: body.question,
    mode,
    collection: collection.name,
    results,
    tookMs: performance.now() - started,
  };
}

async function langchainAsk(body) {
  const started = performance.now();
  // LangChain's own filter syntax: {field: value} is `cmetadata->>'field' = value`.
  const found = await langchain(body.collection ?? collectionName).similaritySearchVectorWithScore(
    body.queryEmbedding,
    body.k ?? 5,
    body.filter,
  );
  const results = found.map(([doc, distance]) => ({
    id: doc.id,
    documentId: doc.metadata?.document_id ?? null,
    content: doc.pageContent,
    score: 1 - distance,
    metadata: doc.metadata,
  }));
  return {
    question: body.question,
    mode: 'vector',
    collection: collectionName,
    results,
    tookMs: performance.now() - started,
  };
}

// DocumentsService.list / get send these statements (imported from dist/, so the SQL is identical);
// the rows carry the DTO's property names already, so the floor's JSON shape is the service's.
const { GET_DOCUMENT_SQL, listDocumentsStatement } = await load('src/documents/documents.sql.js');
const { PREPARED_STATEMENTS } = await load('src/database/read-replicas.service.js');

function toDocument(row) {
  return {
    id: row.id,
    documentId: row.documentId,
    documentName: row.documentName,
    documentType: row.documentType,
    category: row.category,
    sourceFile: row.sourceFile,
    fileName: row.fileName,
    totalChunks: row.totalChunks,
    status: row.status,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

async function floorListDocuments(limit, offset) {
  const { sql, parameters } = listDocumentsStatement({ limit, offset, sort: 'createdAt', order: 'desc' });
  const page = await rows(sql, parameters);
  // One row of NULL columns when the page is empty: only the total is real.
  const items = page[0]?.id === null ? [] : page.map(toDocument);
  return { items, total: page.length > 0 ? page[0].total : 0, limit, offset };
}

/** `prepared`: as the service runs it on a server (DB_PREPARED_STATEMENTS), for the reads scenario's reference. */
async function floorGetDocument(documentId, prepared = false) {
  const [row] = await rows(GET_DOCUMENT_SQL, [documentId], prepared ? PREPARED_STATEMENTS.getDocument : undefined);
  return row ? toDocument(row) : null;
}

async function floorStats() {
  const client = await pool.connect();
  try {
    await client.query('START TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    await client.query('SET TRANSACTION READ ONLY');
    // StatsService.getStats's statements, in its order.
    const [present] = (await client.query(stats.TABLES_PRESENT_SQL, ['migrations'])).rows;
    const documents = (await client.query(stats.DOCUMENTS_SQL)).rows;
    const [chunks] = (await client.query(present.chunk_counts ? stats.CHUNKS_SQL : stats.CHUNKS_SCAN_SQL)).rows;
    const applied = present.migrations ? (await client.query(stats.appliedMigrationsSql('migrations'))).rows : [];
    const [db] = (await client.query(stats.DATABASE_SQL)).rows;
    await client.query('COMMIT');
    return { documents, chunks, applied: applied.length, db };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

// --- timed comparisons (control endpoints) ---------------------------------------------------

const ms = (t0) => performance.now() - t0;

function copyField(value) {
  return value.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]);
}

async function collectionUuid(name) {
  await rows(
    `INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES (gen_random_uuid(), $1, '{}') ON CONFLICT (name) DO NOTHING`,
    [name],
  );
  return (await rows(`SELECT uuid FROM langchain_pg_collection WHERE name = $1`, [name]))[0].uuid;
}

/**
 * Inserts chunks [from, to) of the data set in batches of `batch`, timing each batch from the first
 * byte sent to the database (row generation is not timed). Variants: `langchain` (addVectors with
 * string ids), `copy` (one COPY … FROM STDIN per batch, text format), `copy-service` (COPY of the
 * service's own rows: the bulk set-up path when the ingest scenario is skipped).
 */
async function timedIngest({ variant, from, to, batch, collection: name }) {
  const latencies = [];
  const prefix = variant === 'copy-service' ? '' : variant;
  const uuid = variant === 'langchain' ? null : await collectionUuid(name);
  for (let start = from; start < to; start += batch) {
    const chunks = [];
    for (let i = start; i < Math.min(to, start + batch); i++) chunks.push(data.chunk(i, prefix));
    if (variant === 'langchain') {
      const vectors = chunks.map((c) => c.embedding);
      const docs = chunks.map((c) => new Document({ pageContent: c.content, metadata: c.metadata }));
      const t0 = performance.now();
      await langchain(name).addVectors(vectors, docs, { ids: chunks.map((c) => c.id) });
      latencies.push(ms(t0));
    } else {
      // Bytes, not strings: encoding them is part of generating the rows (not timed), as for the
      // service's request bodies.
      const lines = chunks.map((c) =>
        Buffer.from(
          `${copyField(c.id)}\t${uuid}\t[${c.embedding.join(',')}]\t${copyField(c.content)}\t${copyField(JSON.stringify(c.metadata))}\n`,
        ),
      );
      const copy = `COPY langchain_pg_embedding (id, collection_id, embedding, document, cmetadata) FROM STDIN`;
      if (embedded) {
        // PGlite's socket server does not speak the COPY sub-protocol; its own API reads COPY data
        // from a blob: the same statement and server-side path, minus the wire.
        const blob = new Blob(lines);
        const t0 = performance.now();
        await embedded.db.query(copy.replace('STDIN', `'/dev/blob'`), [], { blob });
        latencies.push(ms(t0));
      } else {
        const client = await pool.connect();
        try {
          const t0 = performance.now();
          await pipeline(Readable.from(lines), client.query(copyStreams.from(copy)));
          latencies.push(ms(t0));
        } finally {
          client.release();
        }
      }
    }
  }
  return { latencies, rows: to - from };
}

/** EXPLAIN (ANALYZE, BUFFERS) of the statements the service and LangChain send for one query. */
async function explain(body) {
  const plans = {};
  const run = async (name, sql, params) => {
    plans[name] = (await manager.query(`EXPLAIN (ANALYZE, BUFFERS) ${sql}`, params)).map((r) => r['QUERY PLAN']);
  };
  for (const [label, filter] of [
    ['', undefined],
    [' + filter', body.filter],
  ]) {
    for (const exact of index ? [true, false] : [true]) {
      let captured;
      const capture = { query: async (sql, params) => ((captured = { sql, params }), []) };
      await floorAsk({ ...body, filter }, { exact, via: capture });
      await run(`service SQL${exact ? ' (exact)' : ' (HNSW)'}${label}`, captured.sql, captured.params);
    }
    // LangChain's searchPostgres statement for the same query, as it builds it.
    await run(
      `LangChain SQL${label}`,
      `SELECT *, "embedding" <=> $1 as "_distance" FROM langchain_pg_embedding WHERE collection_id = $3${filter ? ` AND cmetadata->>'document_type' = $4` : ''} ORDER BY "_distance" ASC LIMIT $2`,
      [`[${body.queryEmbedding.join(',')}]`, body.k, collection.uuid, ...(filter ? [filter.document_type] : [])],
    );
  }
  return plans;
}

// --- HTTP -------------------------------------------------------------------------------------

function send(res, status, payload) {
  const body = JSON.stringify(payload);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

async function readJson(req) {
  const parts = [];
  for await (const part of req) parts.push(part);
  return parts.length ? JSON.parse(Buffer.concat(parts).toString('utf8')) : {};
}

const routes = {
  'POST /ask': async (req) => [200, await floorAsk(await readJson(req))],
  'POST /langchain/ask': async (req) => [200, await langchainAsk(await readJson(req))],
  'GET /documents': async (_req, url) => [
    200,
    await floorListDocuments(Number(url.searchParams.get('limit') ?? 50), Number(url.searchParams.get('offset') ?? 0)),
  ],
  'GET /stats': async () => [200, await floorStats()],
  'GET /_bench/ready': async () => [200, { ok: true, collection, index, efSearch: EF_SEARCH }],
  'POST /_bench/refresh': async () => [200, await refresh()],
  'POST /_bench/ingest': async (req) => [200, await timedIngest(await readJson(req))],
  'POST /_bench/exact': async (req) => [200, await floorAsk(await readJson(req), { exact: true })],
  'POST /_bench/explain': async (req) => [200, await explain(await readJson(req))],
  'POST /_bench/sql': async (req) => {
    const { sql, params } = await readJson(req);
    const t0 = performance.now();
    const result = await rows(sql, params);
    return [200, { rows: result, ms: ms(t0) }];
  },
};

/** The service's GET /health/live body (terminus, no indicators), for the reads scenario's framework reference. */
const LIVE_BODY = JSON.stringify({ status: 'ok', info: {}, error: {}, details: {} });

const server = createServer((req, res) => {
  // Answered synchronously, before any URL parsing: the least a node:http server does per request.
  if (req.method === 'GET' && req.url === '/health/live') {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': LIVE_BODY.length });
    return res.end(LIVE_BODY);
  }
  const url = new URL(req.url, 'http://localhost');
  let route = routes[`${req.method} ${url.pathname}`];
  // /prepared/documents/:id: the same lookup as a prepared statement (a reference, server only).
  const byId = /^(\/prepared)?\/documents\/([^/]+)$/.exec(url.pathname);
  if (!route && req.method === 'GET' && byId) {
    const id = decodeURIComponent(byId[2]);
    route = async () => {
      const doc = await floorGetDocument(id, byId[1] !== undefined);
      return doc ? [200, doc] : [404, { statusCode: 404, message: `Document "${id}" not found`, error: 'Not Found' }];
    };
  }
  if (!route) return send(res, 404, { statusCode: 404, message: 'Not Found' });
  route(req, url).then(
    ([status, payload]) => send(res, status, payload),
    (error) => send(res, 500, { statusCode: 500, message: error.message }),
  );
});
server.keepAliveTimeout = 60_000;
server.listen(Number(env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

async function shutdown() {
  server.close();
  await pool.end().catch(() => undefined);
  await embedded?.stop();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown());
process.on('SIGINT', () => void shutdown());
