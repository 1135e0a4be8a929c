import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { loadAppConfig, loadDotEnv } from '../config/app-config.js';
import { buildDataSourceOptions } from '../database/data-source-options.js';
import { DatabaseRuntime } from '../database/database-runtime.js';
import { check, type CommandResult, create, generate, migrate, revert, stamp, status } from './db-commands.js';

const USAGE = `Usage: node dist/src/cli/db.js <command> [options]   (or npm run db:<command> -- [options])

  status              every migration (applied or pending), the head, foreign tables / alembic_version
  migrate [--dry-run] apply pending migrations; --dry-run prints the SQL and changes nothing
  stamp [name]        verify the baseline tables and record <name> (default InitialSchema) and all before it
  check               compare the live schema with the entities; exit 1 on differences
  revert [--drop-tables]  revert the last applied migration (the baseline only with --drop-tables)
  create <Name>       new empty migration in migrations/, registered in migrations/index.ts
  generate <Name>     new migration from the differences between entities and database

Honours DATABASE_URL; without it works on the embedded database in DATA_DIR (default ./data).`;

/** Runs one command on a DataSource opened from the app's own configuration, then closes it. */
async function withDataSource(fn: (ds: DataSource) => Promise<CommandResult>): Promise<CommandResult> {
  loadDotEnv();
  const config = loadAppConfig(process.env);
  const runtime = await DatabaseRuntime.open(config);
  try {
    const dataSource = new DataSource({
      ...buildDataSourceOptions(config, runtime.endpoint),
      migrationsRun: false,
      logging: ['error'],
    });
    await dataSource.initialize();
    try {
      return await fn(dataSource);
    } finally {
      await dataSource.destroy();
    }
  } finally {
    await runtime.close();
  }
}

async function run(argv: string[]): Promise<CommandResult> {
  const [command, ...rest] = argv;
  const flags = new Set(rest.filter((a) => a.startsWith('--')));
  const args = rest.filter((a) => !a.startsWith('--'));
  switch (command) {
    case 'status':
    case 'show':
      return withDataSource((ds) => status(ds));
    case 'migrate':
    case 'run':
      return withDataSource((ds) => migrate(ds, { dryRun: flags.has('--dry-run') }));
    case 'stamp':
      return withDataSource((ds) => stamp(ds, args[0]));
    case 'check':
      return withDataSource((ds) => check(ds));
    case 'revert':
      return withDataSource((ds) => revert(ds, { dropTables: flags.has('--drop-tables') }));
    case 'create':
      return create(args[0]);
    case 'generate':
      return withDataSource((ds) => generate(ds, args[0]));
    case undefined:
    case 'help':
    case '--help':
      return { exitCode: command === undefined ? 1 : 0, lines: [USAGE] };
    default:
      return { exitCode: 1, lines: [`Unknown command "${command}".`, USAGE] };
  }
}

try {
  const result = await run(process.argv.slice(2));
  const out = result.exitCode === 0 ? console.log : console.error;
  for (const line of result.lines) out(line);
  process.exitCode = result.exitCode;
} catch (err) {
  console.error(`Error: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
}
