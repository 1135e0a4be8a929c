import 'reflect-metadata';
import { HttpException } from '@nestjs/common';
import { createCliContext } from './app-context.js';
import { VectorIndexService } from '../ask/vector-index.service.js';
import { ConfigValidationError, loadAppConfig, loadDotEnv } from '../config/app-config.js';

const USAGE = `Usage: npm run index:create -- --collection NAME [--m 16] [--ef-construction 128]
       npm run index:drop -- --collection NAME
       npm run index:prune
       node dist/src/cli/vector-index.js list

  create   build the collection's HNSW index (partial, on embedding::vector(N); halfvec(N) above
           2000 dimensions), CONCURRENTLY on a server; idempotent, rebuilds an INVALID leftover
  drop     drop it (search falls back to exact distances)
  prune    drop the indexes of collections that no longer exist (deleted by LangChain or SQL;
           DELETE /collections/:name drops its own)
  list     every managed vector index with its dimension, validity and size

Honours DATABASE_URL; without it works on the embedded database in DATA_DIR (default ./data).`;

interface Parsed {
  command: string | undefined;
  collection?: string;
  m?: number;
  efConstruction?: number;
}

function parseArgs(argv: string[]): Parsed {
  const [command, ...rest] = argv;
  const parsed: Parsed = { command };
  for (let i = 0; i < rest.length; i++) {
    const [flag, inline] = rest[i].includes('=') ? rest[i].split(/=(.*)/s, 2) : [rest[i], undefined];
    const value = inline ?? rest[++i];
    if (value === undefined) throw new UsageError(`${flag} needs a value`);
    const integer = () => {
      if (!/^\d+$/.test(value)) throw new UsageError(`${flag} must be a whole number (got "${value}")`);
      return Number(value);
    };
    if (flag === '--collection') parsed.collection = value;
    else if (flag === '--m') parsed.m = integer();
    else if (flag === '--ef-construction') parsed.efConstruction = integer();
    else throw new UsageError(`Unknown option ${flag}`);
  }
  return parsed;
}

class UsageError extends Error {}

async function run(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (args.command === undefined) {
    console.error(USAGE);
    return 1;
  }
  if (args.command === 'help' || args.command === '--help' || args.command === '-h') {
    console.log(USAGE);
    return 0;
  }
  if (!['create', 'drop', 'prune', 'list'].includes(args.command)) {
    throw new UsageError(`Unknown command "${args.command}"`);
  }
  if ((args.command === 'create' || args.command === 'drop') && !args.collection) {
    throw new UsageError('--collection NAME is required');
  }

  loadDotEnv();
  const config = loadAppConfig(process.env);
  const app = await createCliContext(config, ['fatal', 'error', 'warn']);
  try {
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
      default: {
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
