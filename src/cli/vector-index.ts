import 'reflect-metadata';
import { HttpException } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { createCliContext } from './app-context.js';
import { schemaNotAtHead } from './db-commands.js';
import { VectorIndexService } from '../ask/vector-index.service.js';
import { ConfigValidationError, loadAppConfig, loadDotEnv } from '../config/app-config.js';

const USAGE = `Usage: npm run index:create -- --collection NAME [--m 16] [--ef-construction 128]
       npm run index:drop -- --collection NAME
       npm run index:prune
       node dist/src/cli/vector-index.js list

  create   build the collection's HNSW index (partial, on embedding::vector(N); halfvec(N) above
           2000 dimensions), CONCURRENTLY on a server; idempotent, rebuilds an INVALID leftover;
           refuses --m / --ef-construction other than those the built index has (drop it first)
  drop     drop it (search falls back to exact distances)
  prune    drop the indexes of collections that no longer exist (deleted by LangChain or SQL;
           DELETE /collections/:name drops its own)
  list     every managed vector index with its dimension, validity and size
  help, --help, -h   this text (anywhere on the line: then nothing runs)

An unknown option, an option the command does not take or a stray word is refused (exit 1).
Honours DATABASE_URL; without it works on the embedded database in DATA_DIR (default ./data).`;

type Command = 'create' | 'drop' | 'prune' | 'list';

/** The options each command takes. */
const COMMAND_OPTIONS: Record<Command, readonly string[]> = {
  create: ['--collection', '--m', '--ef-construction'],
  drop: ['--collection'],
  prune: [],
  list: [],
};

interface Parsed {
  command: Command;
  collection?: string;
  m?: number;
  efConstruction?: number;
}

function isCommand(word: string): word is Command {
  return Object.hasOwn(COMMAND_OPTIONS, word);
}

/**
 * The command and its options; null when the line asks for help. Every word after the command is
 * an option (`--flag value` or `--flag=value`): a word the command would otherwise ignore (a
 * collection named without --collection, an option of another command) is refused, so that the
 * command runs as written or not at all.
 */
function parseArgs(argv: string[]): Parsed | null {
  // Asking for help anywhere runs nothing, as with db.js: `index:drop -- --collection x --help` must not drop.
  if (argv[0] === 'help' || argv.includes('--help') || argv.includes('-h')) return null;
  const [command, ...rest] = argv;
  if (!isCommand(command)) throw new UsageError(`Unknown command "${command}"`);
  const takes = COMMAND_OPTIONS[command];
  const parsed: Parsed = { command };
  const seen = new Set<string>();
  for (let i = 0; i < rest.length; i++) {
    if (!rest[i].startsWith('-')) {
      throw new UsageError(
        takes.includes('--collection')
          ? `Unexpected argument "${rest[i]}" (a collection is named with --collection ${rest[i]})`
          : `Unexpected argument "${rest[i]}"`,
      );
    }
    const [flag, inline] = rest[i].includes('=') ? rest[i].split(/=(.*)/s, 2) : [rest[i], undefined];
    if (!Object.values(COMMAND_OPTIONS).some((options) => options.includes(flag))) {
      throw new UsageError(`Unknown option ${flag}`);
    }
    if (!takes.includes(flag)) {
      throw new UsageError(
        takes.length === 0
          ? `${command} takes no options (got ${flag})`
          : `${command} takes only ${takes.join(', ')} (got ${flag})`,
      );
    }
    if (seen.has(flag)) throw new UsageError(`${flag} is given twice`);
    seen.add(flag);
    // The next word is this option's value unless it is another option (`--collection --m 8`); a
    // value that starts with "--" goes after "=".
    const value = inline ?? (rest[i + 1]?.startsWith('--') ? undefined : rest[++i]);
    if (value === undefined) throw new UsageError(`${flag} needs a value`);
    const integer = () => {
      if (!/^\d+$/.test(value)) throw new UsageError(`${flag} must be a whole number (got "${value}")`);
      return Number(value);
    };
    if (flag === '--collection') parsed.collection = value;
    else if (flag === '--m') parsed.m = integer();
    else parsed.efConstruction = integer();
  }
  if (takes.includes('--collection') && !parsed.collection) {
    throw new UsageError('--collection NAME is required');
  }
  return parsed;
}

class UsageError extends Error {}

async function run(argv: string[]): Promise<number> {
  if (argv.length === 0) {
    console.error(USAGE);
    return 1;
  }
  const args = parseArgs(argv);
  if (args === null) {
    console.log(USAGE);
    return 0;
  }

  loadDotEnv();
  const config = loadAppConfig(process.env);
  const app = await createCliContext(config, ['fatal', 'error', 'warn']);
  try {
    const notAtHead = await schemaNotAtHead(app.get(DataSource));
    if (notAtHead !== null) {
      console.error(notAtHead);
      return 1;
    }
    const indexes = app.get(VectorIndexService);
    switch (args.command) {
      case 'create': {
        const started = Date.now();
        const { index, created } = await indexes.create(args.collection!, {
          m: args.m,
          efConstruction: args.efConstruction,
        });
        console.log(
          created
            ? `Built ${index.name} on collection "${index.collection}": hnsw on ${index.type}(${index.dimensions}), ${formatBytes(index.sizeBytes)}, ${((Date.now() - started) / 1000).toFixed(1)} s`
            : `Already built: ${index.name} on collection "${index.collection}" (${index.type}(${index.dimensions}))`,
        );
        return 0;
      }
      case 'drop': {
        const { name, dropped } = await indexes.drop(args.collection!);
        console.log(dropped ? `Dropped ${name}` : `Collection "${args.collection}" has no vector index`);
        return 0;
      }
      case 'prune': {
        const dropped = await indexes.dropOrphans();
        console.log(
          dropped.length === 0 ? 'No orphaned vector indexes.' : dropped.map((n) => `Dropped ${n}`).join('\n'),
        );
        return 0;
      }
      case 'list': {
        const all = await indexes.list();
        if (all.length === 0) console.log('No vector indexes.');
        for (const i of all) {
          console.log(
            `${i.collection}\t${i.name}\t${i.type}(${i.dimensions})\t${i.valid ? 'valid' : 'INVALID'}\t${formatBytes(i.sizeBytes)}`,
          );
        }
        return 0;
      }
    }
  } finally {
    await app.close();
  }
}

function formatBytes(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MB` : `${Math.ceil(bytes / 1024)} kB`;
}

try {
  process.exitCode = await run(process.argv.slice(2));
} catch (error) {
  if (error instanceof UsageError) console.error(`${error.message}\n\n${USAGE}`);
  else if (error instanceof HttpException || error instanceof ConfigValidationError) console.error(error.message);
  else console.error(`Error: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
