#!/usr/bin/env node
// Runs jest on one database: `embedded` (PGlite, no server needed) or `postgres` (TEST_DATABASE_URL).
// Jest needs --experimental-vm-modules to load the ESM sources; extra arguments go to jest.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const [target = 'embedded', ...jestArgs] = process.argv.slice(2);
// ENV_FILE empty: the processes the tests start (CLIs, the service) load no `.env`, which could
// point them at a developer's own database instead of the test database.
const env = { ...process.env, TEST_DB_TARGET: target, ENV_FILE: '' };
if (target === 'postgres') {
  if (!env.TEST_DATABASE_URL) {
    console.error(
      'TEST_DATABASE_URL is not set: point it at a PostgreSQL server with pgvector where the tests may create databases, e.g. TEST_DATABASE_URL=$(scripts/dev-postgres.sh start)',
    );
    process.exit(2);
  }
} else if (target === 'embedded') {
  delete env.TEST_DATABASE_URL;
} else {
  console.error(`unknown test target "${target}": use embedded or postgres`);
  process.exit(2);
}
env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ''} --experimental-vm-modules --no-warnings=ExperimentalWarning`.trim();
const jestBin = createRequire(import.meta.url).resolve('jest/bin/jest');
const result = spawnSync(process.execPath, [jestBin, ...jestArgs], { stdio: 'inherit', env });
process.exit(result.status ?? 1);
