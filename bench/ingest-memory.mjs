#!/usr/bin/env node
// Peak memory of `npm run ingest` on a generated corpus of about 10,000 chunks.
//
//   npm run build && node bench/ingest-memory.mjs
//
// BENCH_CHUNKS (default 10000) articles of ~900 characters each ("Điều N. …"), one chunk each at
// the default INGEST_CHUNK_SIZE=1000, spread over BENCH_FILES (default 1: the worst case, one
// document and one transaction) .txt files. Runs dist/src/cli/ingest.js on an embedded database in
// a temporary DATA_DIR (PGlite runs in the same process, so its WASM heap counts too), or on
// BENCH_DATABASE_URL when set (a database you can write to; already migrated, or migrated with
// DB_MIGRATE_ON_START=true). Prints the CLI's summary and its peak RSS (getrusage maxrss at exit).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeLegalCorpus, writeMaxRssProbe } from './lib/ingest-corpus.mjs';

const CHUNKS = Number(process.env.BENCH_CHUNKS ?? 10_000);
const FILES = Number(process.env.BENCH_FILES ?? 1);
const dir = mkdtempSync(join(tmpdir(), 'kb-ingest-bench-'));
const corpus = join(dir, 'corpus');
writeLegalCorpus(corpus, CHUNKS, Math.ceil(CHUNKS / FILES));
// Preloaded into the CLI: reports its own peak resident set size when it exits.
const probe = writeMaxRssProbe(dir);

const env = { ...process.env, LOG_LEVEL: 'warn', NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${probe}` };
if (process.env.BENCH_DATABASE_URL) env.DATABASE_URL = process.env.BENCH_DATABASE_URL;
else {
  delete env.DATABASE_URL;
  env.DATA_DIR = join(dir, 'data');
}
const result = spawnSync(process.execPath, ['dist/src/cli/ingest.js', corpus], { env, encoding: 'utf8' });
rmSync(dir, { recursive: true, force: true });
const maxRss = /maxrss_kb=(\d+)/.exec(result.stderr)?.[1];
process.stdout.write(result.stdout);
if (result.status !== 0) process.stderr.write(result.stderr);
console.log(
  `database: ${process.env.BENCH_DATABASE_URL ? 'server' : 'embedded'}; files: ${FILES}; chunks: ${CHUNKS}; ` +
    `peak RSS: ${maxRss ? (Number(maxRss) / 1024).toFixed(0) : '?'} MiB`,
);
process.exitCode = result.status ?? 1;
