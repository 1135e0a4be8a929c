import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { loadAppConfig, loadDotEnv } from '../config/app-config.js';
import { buildDataSourceOptions } from '../database/data-source-options.js';
import { DatabaseRuntime } from '../database/database-runtime.js';
import { check, type CommandResult, create, generate, migrate, revert, stamp, status } from './db-commands.js';

const USAGE = `Usage: node dist/src/cli/db.js <command> [options]
  (or npm run db:<command> -- [options]; create and generate: npm run migration:create|migration:generate -- <Name>)

  status              every migration (applied or pending), the head, foreign tables / alembic_version
  migrate [--dry-run] apply pending migrations; --dry-run prints the SQL and changes nothing
  stamp [name]        verify the baseline tables and record <name> (default InitialSchema) and all before it
  check               compare the live schema with the entities; exit 1 on differences
  revert [--drop-tables]  revert the last applied migration (the baseline only with --drop-tables)
  create <Name>       new empty migration in migrations/, registered in migrations/index.ts
  generate <Name>     new migration from the differences between entities and database
  help, --help, -h    this text (anywhere on the line: then nothing runs)

An unknown option or a surplus argument is refused (exit 1) before anything runs.

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

/** What each command accepts: its options, and how many names (positional arguments) at most. */
const COMMANDS: Record<string, { options: readonly string[]; names: number }> = {
  status: { options: [], names: 0 },
  show: { options: [], names: 0 },
  migrate: { options: ['--dry-run'], names: 0 },
  run: { options: ['--dry-run'], names: 0 },
  stamp: { options: [], names: 1 },
  check: { options: [], names: 0 },
  revert: { options: ['--drop-tables'], names: 0 },
  create: { options: [], names: 1 },
  generate: { options: [], names: 1 },
};

/**
 * Why `rest` does not fit `command`, or null. Every word starting with "-" is an option: an unknown
 * one, or a name too many, is refused before anything runs (a mistyped `--dryrun` would otherwise
 * apply every pending migration for real).
 */
function argumentsProblem(command: string, rest: string[]): string | null {
  const { options, names } = COMMANDS[command];
  const unknown = rest.find((a) => a.startsWith('-') && !options.includes(a));
  if (unknown !== undefined) {
    const known = options.length === 0 ? 'it takes no options' : `it takes ${options.join(', ')}`;
    return `Unknown option "${unknown}" for ${command}: ${known}. Nothing was done.`;
  }
  const extra = rest.filter((a) => !a.startsWith('-')).slice(names);
  if (extra.length > 0) {
    return `Unexpected argument "${extra[0]}" for ${command}: it takes ${names === 0 ? 'none' : `at most ${names}`}. Nothing was done.`;
  }
  return null;
}

async function run(argv: string[]): Promise<CommandResult> {
  const [command, ...rest] = argv;
  // Asking for help anywhere runs nothing: `db:revert -- --help` must not revert.
  if (command === 'help' || argv.includes('--help') || argv.includes('-h')) return { exitCode: 0, lines: [USAGE] };
  if (command === undefined) return { exitCode: 1, lines: [USAGE] };
  if (!Object.hasOwn(COMMANDS, command)) return { exitCode: 1, lines: [`Unknown command "${command}".`, USAGE] };
  const problem = argumentsProblem(command, rest);
  if (problem !== null) return { exitCode: 1, lines: [problem, USAGE] };
  const flags = new Set(rest.filter((a) => a.startsWith('-')));
  const args = rest.filter((a) => !a.startsWith('-'));
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
