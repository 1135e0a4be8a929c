#!/usr/bin/env node
// GET /stats at 1,000,000 chunks: times the exact SQL that StatsService runs (imported from dist).
//
//   npm run build && node bench/stats-million.mjs
//
// BENCH_DATABASE_URL (default: the dev server of scripts/dev-postgres.sh) must allow CREATE DATABASE.
// BENCH_CHUNKS (default 1000000), BENCH_DOCUMENTS (default 2000), BENCH_RUNS (default 20);
// BENCH_KEEP=1 keeps the database afterwards for experiments (then drop it yourself).
// A fresh database is created, migrated with the compiled InitialSchema migration, filled with
// generate_series, ANALYZEd and VACUUMed; then the compiled AddChunkCounts migration is applied
// (its backfill timed: that is how long it holds chunk writers), the statements are measured, and
// the database is dropped. `chunks` is the statement /stats runs (the chunk_counts summary);
// `chunks-scan` is the fallback that scans the chunk table (the statement before AddChunkCounts).
import pg from 'pg';
import { InitialSchema1764000000000 } from '../dist/migrations/1764000000000-InitialSchema.js';
import { AddChunkCounts1764000000004 } from '../dist/migrations/1764000000004-AddChunkCounts.js';
import { CHUNKS_SCAN_SQL, CHUNKS_SQL, DATABASE_SQL, DOCUMENTS_SQL } from '../dist/src/stats/stats.sql.js';

const adminUrl = process.env.BENCH_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:54329/postgres';
const CHUNKS = Number(process.env.BENCH_CHUNKS ?? 1_000_000);
const DOCUMENTS = Number(process.env.BENCH_DOCUMENTS ?? 2_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const name = `kb_bench_${process.pid}`;

const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
await admin.query(`CREATE DATABASE ${name}`);
const url = new URL(adminUrl);
url.pathname = `/${name}`;
const client = new pg.Client({ connectionString: url.toString() });

const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;
const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)];

try {
  await client.connect();
  await new InitialSchema1764000000000().up({ query: (sql, params) => client.query(sql, params) });

  let t0 = process.hrtime.bigint();
  await client.query(`
    INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES
      ('00000000-0000-4000-8000-000000000001', 'docs', '{"dimensions": 8}'),
      ('00000000-0000-4000-8000-000000000002', 'archive', '{"dimensions": 4}')`);
  // Documents: 5 types, 7 categories, 4 statuses; every 50th has a wrong total_chunks, the last
  // 10 have no chunk at all.
  await client.query(
    `INSERT INTO documents (document_id, document_name, category, document_type, source_file, file_name, total_chunks, status)
     SELECT 'doc-' || i, 'Văn bản số ' || i, 'category-' || (i % 7), (ARRAY['law','decree','circular','guide','other'])[1 + i % 5],
            '/data/doc-' || i || '.pdf', 'doc-' || i || '.pdf',
            CASE WHEN i > $1 - 10 THEN 0 ELSE ($2 / ($1 - 10)) + CASE WHEN i % 50 = 0 THEN 1 ELSE 0 END END,
            (ARRAY['active','inactive','processing','expired'])[1 + i % 4]
       FROM generate_series(1, $1) AS i`,
    [DOCUMENTS, CHUNKS],
  );
  // Chunks spread round-robin over the first DOCUMENTS-10 documents; 1 in 1000 is an orphan (its
  // document_id names no document), 1 in 1000 has no document_id. 3/4 in 'docs' (8 dims), 1/4 in
  // 'archive' (4 dims). Vectors are small: /stats never reads them (one per collection, for its
  // dimension), so their size only matters through the size of the table it scans.
  await client.query(
    `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
     SELECT 'chunk-' || i,
            CASE WHEN i % 4 = 0 THEN '00000000-0000-4000-8000-000000000002'::uuid ELSE '00000000-0000-4000-8000-000000000001'::uuid END,
            CASE WHEN i % 4 = 0 THEN '[0.1,0.2,0.3,0.4]'::vector ELSE '[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]'::vector END,
            'Điều ' || i || '. Nội dung của đoạn văn bản, dài khoảng một câu để giống dữ liệu thật.',
            jsonb_build_object(
              'chunk_id', 'chunk-' || i, 'chunk_index', i / $2, 'total_chunks', $1 / $2,
              'document_type', 'law', 'status', 'active', 'level', 2, 'section_title', 'Chương ' || (i % 20),
              'hierarchy', jsonb_build_array('Chương I', 'Điều ' || (i % 100)),
              'document_info', jsonb_build_object('document_status', 'active'),
              'processing_metadata', jsonb_build_object('processing_status', 'completed', 'status_change_history', '[]'::jsonb)
            ) || CASE
                   WHEN i % 1000 = 1 THEN '{}'::jsonb
                   WHEN i % 1000 = 2 THEN jsonb_build_object('document_id', 'missing-' || i)
                   ELSE jsonb_build_object('document_id', 'doc-' || (1 + i % ($2 - 10)))
                 END
       FROM generate_series(1, $1) AS i`,
    [CHUNKS, DOCUMENTS],
  );
  await client.query(`VACUUM ANALYZE documents, langchain_pg_collection, langchain_pg_embedding`);
  const { rows: size } = await client.query(
    `SELECT pg_size_pretty(pg_total_relation_size('langchain_pg_embedding')) AS total,
            pg_size_pretty(pg_relation_size('langchain_pg_embedding')) AS heap`,
  );
  console.log(
    `loaded ${CHUNKS} chunks, ${DOCUMENTS} documents in ${(ms(t0) / 1000).toFixed(1)} s; ` +
      `langchain_pg_embedding ${size[0].heap} heap, ${size[0].total} with indexes`,
  );

  // The migration as the runner applies it: one transaction (lock, table, backfill, triggers).
  t0 = process.hrtime.bigint();
  await client.query('BEGIN');
  await new AddChunkCounts1764000000004().up({ query: (sql, params) => client.query(sql, params).then((r) => r.rows) });
  await client.query('COMMIT');
  const { rows: summary } = await client.query(
    `SELECT count(*)::int AS n, pg_size_pretty(pg_total_relation_size('chunk_counts')) AS size FROM chunk_counts`,
  );
  await client.query(`ANALYZE chunk_counts`);
  console.log(
    `AddChunkCounts (lock + backfill + triggers, one transaction): ${(ms(t0) / 1000).toFixed(2)} s; ` +
      `chunk_counts ${summary[0].n} rows, ${summary[0].size}`,
  );

  const statements = {
    documents: DOCUMENTS_SQL,
    chunks: CHUNKS_SQL,
    'chunks-scan': CHUNKS_SCAN_SQL,
    database: DATABASE_SQL,
  };
  const runOnce = async () => {
    const times = {};
    await client.query('START TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
    let all = 0;
    for (const [key, sql] of Object.entries(statements)) {
      const s = process.hrtime.bigint();
      await client.query(sql);
      times[key] = ms(s);
      // `all` is what /stats runs: the scan fallback is measured for reference only.
      if (key !== 'chunks-scan') all += times[key];
    }
    await client.query('COMMIT');
    times.all = all;
    return times;
  };
  for (let i = 0; i < 3; i++) await runOnce(); // warm-up
  const samples = [];
  for (let i = 0; i < RUNS; i++) samples.push(await runOnce());
  console.log(`\n${RUNS} runs after 3 warm-up runs (ms):`);
  for (const key of [...Object.keys(statements), 'all']) {
    const xs = samples.map((s) => s[key]);
    console.log(
      `  ${key.padEnd(10)} p50 ${pct(xs, 50).toFixed(1).padStart(7)}  p95 ${pct(xs, 95).toFixed(1).padStart(7)}  max ${Math.max(
        ...xs,
      )
        .toFixed(1)
        .padStart(7)}`,
    );
  }
  // Reference floor: the bare sequential scan that any exact count over the chunk table needs.
  const floor = [];
  for (let i = 0; i < RUNS; i++) {
    const t = process.hrtime.bigint();
    await client.query('SELECT count(*) FROM langchain_pg_embedding');
    floor.push(ms(t));
  }
  console.log(
    `  reference: SELECT count(*) FROM langchain_pg_embedding  p50 ${pct(floor, 50).toFixed(1)}  p95 ${pct(floor, 95).toFixed(1)}`,
  );
  const { rows: check } = await client.query(CHUNKS_SQL);
  const { rows: scanned } = await client.query(CHUNKS_SCAN_SQL);
  console.log('\nfigures:', JSON.stringify(check[0]));
  if (JSON.stringify(check[0]) !== JSON.stringify(scanned[0])) {
    throw new Error(`the summary disagrees with the scan: ${JSON.stringify(scanned[0])}`);
  }
  console.log('the summary and the scan agree');

  const { rows: plan0 } = await client.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${CHUNKS_SQL}`);
  console.log('\nEXPLAIN ANALYZE of the chunks statement (the summary):');
  for (const r of plan0) console.log(r['QUERY PLAN']);
  const slowest = Object.keys(statements).sort(
    (a, b) =>
      pct(
        samples.map((s) => s[b]),
        50,
      ) -
      pct(
        samples.map((s) => s[a]),
        50,
      ),
  )[0];
  const { rows: plan } = await client.query(`EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) ${statements[slowest]}`);
  console.log(`\nEXPLAIN ANALYZE of the slowest statement (${slowest}):`);
  for (const r of plan) console.log(r['QUERY PLAN']);
} finally {
  await client.end().catch(() => undefined);
  if (process.env.BENCH_KEEP === '1') console.log(`\nkept database ${name} (BENCH_KEEP=1): drop it yourself`);
  else await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
}
