#!/usr/bin/env node
// How fast can ANY writer be, against LangChain JS, on LangChain's chunk table? The ingest target
// asks for 2× LangChain JS addVectors; this measures raw COPY … FROM STDIN (PostgreSQL's fastest
// bulk path, no service in between) against addVectors, batch by batch, interleaved, on two
// schemas at once:
//   service    every migration applied (full-text GIN, metadata terms GIN, chunk_counts triggers)
//   langchain  the same database minus what this service adds: the indexes and triggers of
//              langchain_postgres and the Python service only (pkey, ix_cmetadata_gin, two btrees)
// If COPY itself is below 2× LangChain on a schema, no service writing through PostgreSQL can reach
// 2× there; the service's own upsert statement, timed alone, is the ceiling of any request. Then, on
// the service schema, what each index and trigger costs that statement (indexCosts). Server only
// (PGlite has no COPY over the wire).
//
//   BENCH_DATABASE_URL=postgresql://…/postgres node bench/ingest-ceiling.mjs [--batches N]
//
// Creates kb_ceiling_<pid>_{service,langchain} on that server and drops them at the end. Needs the
// build (npm run build): the schema comes from the service's own migrations (dist/src/cli/db.js).
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Document } from '@langchain/core/documents';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { BenchData } from './lib/data.mjs';
import { langchainStore } from './lib/langchain-store.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { ChunkStore } = await import(pathToFileURL(resolve(root, 'dist/src/embeddings/chunk.store.js')).href);
/** The service's chunk statements; the provider only names a new collection's model. */
const chunkStore = new ChunkStore({ model: 'bench', dimensions: 384 });
const serverUrl = process.env.BENCH_DATABASE_URL;
if (!serverUrl) {
  console.error('Set BENCH_DATABASE_URL to a PostgreSQL server with pgvector (this measurement needs COPY).');
  process.exit(2);
}
const batchesArg = process.argv.indexOf('--batches');
const BATCHES = batchesArg > 0 ? Number(process.argv[batchesArg + 1]) : 40;
const BATCH = 500;
const WARM_UP = 2;

/** What this service adds to LangChain's chunk table (see migrations/): removed for `langchain`. */
const SERVICE_ADDITIONS = [
  'DROP INDEX ix_embedding_document_fts',
  'DROP INDEX ix_cmetadata_terms',
  'ALTER TABLE langchain_pg_embedding DISABLE TRIGGER USER',
];

function databaseUrl(name) {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A generated chunk as ChunkStore.upsert takes it. */
function chunkRow(c) {
  return { id: c.id, content: c.content, metadata: c.metadata, embedding: c.embedding };
}

/**
 * What each index and trigger of the chunk table costs the service's upsert of 500 rows: the
 * statement's server-side execution time (EXPLAIN ANALYZE) with that part dropped, inside a
 * transaction rolled back after it, interleaved over rounds; medians. On the service schema's
 * database once it holds the rows the ceiling run wrote.
 */
async function indexCosts(s, take) {
  const parts = {
    'without the full-text index (issue 5)': ['DROP INDEX ix_embedding_document_fts'],
    'without the metadata terms index': ['DROP INDEX ix_cmetadata_terms'],
    "without the jsonb_path_ops index (LangChain's)": ['DROP INDEX ix_cmetadata_gin'],
    "without the two btrees (the Python service's)": [
      'DROP INDEX idx_embedding_document_id',
      'DROP INDEX idx_embedding_document_type',
    ],
    'without the chunk_counts triggers': ['ALTER TABLE langchain_pg_embedding DISABLE TRIGGER USER'],
  };
  const variants = {
    'every index and trigger': [],
    ...parts,
    'primary key only': Object.values(parts).flat(),
  };
  const times = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
  const client = await s.pool.connect();
  try {
    for (let round = 0; round < 7; round++) {
      for (const [name, ddl] of Object.entries(variants)) {
        const rows = take().map(chunkRow);
        await client.query('BEGIN');
        try {
          for (const sql of ddl) await client.query(sql);
          const manager = {
            query: async (sql, params) => {
              if (!sql.includes('INSERT INTO langchain_pg_embedding')) return (await client.query(sql, params)).rows;
              const plan = await client.query(`EXPLAIN (ANALYZE) ${sql}`, params);
              const last = plan.rows.at(-1)['QUERY PLAN'];
              if (round > 0) times[name].push(Number(/Execution Time: ([\d.]+) ms/.exec(last)[1]));
              // What the statement itself answers: every row written (upsert checks the count).
              return [{ written: rows.length }];
            },
          };
          await chunkStore.upsert(manager, s.upsertCollection, rows, []);
        } finally {
          await client.query('ROLLBACK');
        }
      }
    }
  } finally {
    client.release();
  }
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  const all = median(times['every index and trigger']);
  console.log(
    `\nThe upsert of 500 rows on the service schema, by what the table maintains (EXPLAIN ANALYZE, median of 6)\n`,
  );
  console.log('| chunk table | execution ms | less than with everything |');
  console.log('| --- | --- | --- |');
  for (const name of Object.keys(variants)) {
    const ms = median(times[name]);
    console.log(
      `| ${name} | ${ms.toFixed(1)} | ${name === 'every index and trigger' ? '' : `${(all - ms).toFixed(1)} ms (${(((all - ms) / all) * 100).toFixed(0)} %)`} |`,
    );
  }
}

const admin = new pg.Client({ connectionString: serverUrl });
await admin.connect();
const schemas = ['service', 'langchain'].map((schema) => ({ schema, name: `kb_ceiling_${process.pid}_${schema}` }));
// Plus 49 batches for indexCosts (7 rounds × 7 variants).
const data = new BenchData({ chunks: (BATCHES * 3 * schemas.length + 49) * BATCH, dims: 384 });
try {
  for (const s of schemas) {
    await admin.query(`CREATE DATABASE ${s.name}`);
    const migrated = spawnSync(process.execPath, [resolve(root, 'dist/src/cli/db.js'), 'migrate'], {
      env: { ...process.env, DATABASE_URL: databaseUrl(s.name), LOG_LEVEL: 'warn' },
      encoding: 'utf8',
    });
    if (migrated.status !== 0) throw new Error(`migrate ${s.name}: ${migrated.stdout}${migrated.stderr}`);
    s.pool = new pg.Pool({ connectionString: databaseUrl(s.name), max: 2 });
    if (s.schema === 'langchain') for (const sql of SERVICE_ADDITIONS) await s.pool.query(sql);
    await s.pool.query(
      `INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES (gen_random_uuid(), 'copy', '{}')`,
    );
    await s.pool.query(
      `INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES (gen_random_uuid(), 'upsert', '{}')`,
    );
    const uuidOf = async (name) =>
      (await s.pool.query(`SELECT uuid FROM langchain_pg_collection WHERE name = $1`, [name])).rows[0].uuid;
    s.copyCollection = await uuidOf('copy');
    s.upsertCollection = await uuidOf('upsert');
    s.store = langchainStore(s.pool, 'langchain');
    s.times = { copy: [], upsert: [], langchain: [] };
  }

  const escape = (v) => v.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]);
  let next = 0;
  const take = () => {
    const chunks = [];
    for (let i = 0; i < BATCH; i++) chunks.push(data.chunk(next + i));
    next += BATCH;
    return chunks;
  };
  const writers = {
    async copy(s, chunks) {
      const lines = chunks.map(
        (c) =>
          `${escape(c.id)}\t${s.copyCollection}\t[${c.embedding.join(',')}]\t${escape(c.content)}\t${escape(JSON.stringify(c.metadata))}\n`,
      );
      const client = await s.pool.connect();
      try {
        const t0 = performance.now();
        await pipeline(
          Readable.from(lines),
          client.query(
            copyStreams.from(
              'COPY langchain_pg_embedding (id, collection_id, embedding, document, cmetadata) FROM STDIN',
            ),
          ),
        );
        return performance.now() - t0;
      } finally {
        client.release();
      }
    },
    // The statement POST /embeddings writes with (ChunkStore.upsert: binary arrays, ON CONFLICT), its
    // encoding included; the request's other statements (lock, recount) and HTTP are not.
    async upsert(s, chunks) {
      const client = await s.pool.connect();
      try {
        const manager = { query: async (sql, params) => (await client.query(sql, params)).rows };
        const rows = chunks.map(chunkRow);
        const t0 = performance.now();
        await chunkStore.upsert(manager, s.upsertCollection, rows, []);
        return performance.now() - t0;
      } finally {
        client.release();
      }
    },
    async langchain(s, chunks) {
      const docs = chunks.map((c) => new Document({ pageContent: c.content, metadata: c.metadata }));
      const t0 = performance.now();
      await s.store.addVectors(
        chunks.map((c) => c.embedding),
        docs,
        { ids: chunks.map((c) => c.id) },
      );
      return performance.now() - t0;
    },
  };

  // Every round writes one batch per (schema, writer), in an order that rotates, so load drift on
  // the machine falls on all four alike. Each writer gets its own rows.
  const pairs = schemas.flatMap((s) => Object.keys(writers).map((writer) => ({ s, writer })));
  for (let round = 0; round < BATCHES; round++) {
    for (let i = 0; i < pairs.length; i++) {
      const { s, writer } = pairs[(i + round) % pairs.length];
      s.times[writer].push(await writers[writer](s, take()));
    }
  }

  const mean = (a) => a.slice(WARM_UP).reduce((x, y) => x + y, 0) / (a.length - WARM_UP);
  console.log(
    `\n${BATCHES} batches of ${BATCH} × 384 per writer and schema (first ${WARM_UP} not counted), interleaved\n`,
  );
  console.log(
    '| schema | COPY ms / batch | service upsert statement ms / batch | LangChain ms / batch | COPY ÷ LangChain (chunks/s) | upsert ÷ COPY (chunks/s) | upsert ÷ LangChain (chunks/s) |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const s of schemas) {
    const [copy, upsert, langchain] = ['copy', 'upsert', 'langchain'].map((w) => mean(s.times[w]));
    console.log(
      `| ${s.schema} | ${copy.toFixed(1)} | ${upsert.toFixed(1)} | ${langchain.toFixed(1)} | ${(langchain / copy).toFixed(2)}× | ${(copy / upsert).toFixed(2)}× | ${(langchain / upsert).toFixed(2)}× |`,
    );
  }
  await indexCosts(
    schemas.find((s) => s.schema === 'service'),
    take,
  );
} finally {
  for (const s of schemas) {
    await s.pool?.end();
    await admin.query(`DROP DATABASE IF EXISTS ${s.name}`);
  }
  await admin.end();
}
