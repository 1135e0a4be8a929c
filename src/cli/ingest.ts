import 'reflect-metadata';
import { HttpException, type LogLevel as NestLogLevel } from '@nestjs/common';
import cliProgress from 'cli-progress';
import { createHash } from 'node:crypto';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import { basename, extname, join, relative, resolve, sep } from 'node:path';
import { DataSource } from 'typeorm';
import { createCliContext } from './app-context.js';
import { schemaNotAtHead } from './db-commands.js';
import { ConfigValidationError, loadAppConfig, loadDotEnv } from '../config/app-config.js';
import { IngestService } from '../ingest/ingest.service.js';
import { createValidationPipe } from '../common/validation.js';
import { IngestOptionsDto, MAX_CHUNK_OVERLAP, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE } from '../ingest/dto/ingest.dto.js';
import { SUPPORTED_EXTENSIONS } from '../ingest/text-extraction.js';
import { limitHeapGrowth } from './heap-budget.js';

const USAGE = `Usage: npm run ingest -- <files or folders...> [options]   (or node dist/src/cli/ingest.js ...)

  --type <T>            documentType of every document (default: document)
  --category <C>        category of every document (default: general)
  --collection <N>      collection of the chunks (default: DEFAULT_COLLECTION)
  --chunk-size <n>      largest chunk in characters (default: INGEST_CHUNK_SIZE)
  --chunk-overlap <n>   overlap in characters (default: INGEST_CHUNK_OVERLAP, at most half the chunk size)

Folders are walked recursively for ${SUPPORTED_EXTENSIONS.join(' ')} files. Each file's documentId
comes from its path (folder name + path inside it), so a second run skips unchanged files.
Honours DATABASE_URL; without it works on the embedded database in DATA_DIR (default ./data).`;

interface Options {
  paths: string[];
  documentType: string;
  category: string;
  collection?: string;
  chunkSize?: number;
  chunkOverlap?: number;
}

class UsageError extends Error {}

const FLAGS = ['--type', '--category', '--collection', '--chunk-size', '--chunk-overlap'] as const;

function parseArgs(argv: string[]): Options | 'help' {
  const options: Options = { paths: [], documentType: 'document', category: 'general' };
  // The bounds of the API's chunkSize and chunkOverlap, checked here before the database starts.
  const integer = (flag: string, value: string, min: number, max: number): number => {
    if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
      throw new UsageError(`${flag} must be a whole number from ${min} to ${max} (got "${value}")`);
    }
    return Number(value);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--help' || arg === '-h') return 'help';
    if (!arg.startsWith('--')) {
      options.paths.push(arg);
      continue;
    }
    const [flag, inline] = arg.includes('=')
      ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)]
      : [arg];
    if (!(FLAGS as readonly string[]).includes(flag)) throw new UsageError(`Unknown option ${flag}`);
    const value = inline ?? argv[++i];
    // `--type --category c` is a missing value, not the type "--category".
    if (value === undefined || value === '' || (inline === undefined && value.startsWith('--'))) {
      throw new UsageError(`${flag} needs a value`);
    }
    switch (flag as (typeof FLAGS)[number]) {
      case '--type':
        options.documentType = value;
        break;
      case '--category':
        options.category = value;
        break;
      case '--collection':
        options.collection = value;
        break;
      case '--chunk-size':
        options.chunkSize = integer(flag, value, MIN_CHUNK_SIZE, MAX_CHUNK_SIZE);
        break;
      case '--chunk-overlap':
        options.chunkOverlap = integer(flag, value, 0, MAX_CHUNK_OVERLAP);
        break;
    }
  }
  if (options.paths.length === 0) throw new UsageError('No files or folders given');
  return options;
}

/** A file to ingest: where it is, and the path its documentId is derived from. */
interface Job {
  path: string;
  /** The folder argument's name plus the path inside it (posix), or the file's name. */
  idPath: string;
}

/** `<path>: <why>`, for the failures list: ENOENT and EACCES in words, anything else as it is. */
function fsFailure(path: string, err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'no such file or folder' : code === 'EACCES' ? 'permission denied' : String(err);
  return `${path}: ${why}`;
}

/**
 * The supported files under `dir`, in name order. A symbolic link counts as what it points to (a
 * folder of links to the documents was read as empty: "0 ingested", exit 0); a folder reached
 * twice through links is walked once. A folder or link that cannot be read is a failure, and the
 * walk goes on with the rest (one unreadable subfolder had ended the whole argument's walk).
 */
async function* walk(dir: string, failures: string[], walked: Set<string>): AsyncGenerator<string> {
  let entries;
  try {
    const real = await realpath(dir);
    if (walked.has(real)) return;
    walked.add(real);
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    failures.push(fsFailure(dir, err));
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue; // .git, .DS_Store and other hidden files
    const path = join(dir, entry.name);
    let isDirectory = entry.isDirectory();
    let isFile = entry.isFile();
    if (entry.isSymbolicLink()) {
      try {
        const target = await stat(path);
        isDirectory = target.isDirectory();
        isFile = target.isFile();
      } catch (err) {
        failures.push(fsFailure(path, err));
        continue;
      }
    }
    if (isDirectory) yield* walk(path, failures, walked);
    else if (isFile && SUPPORTED_EXTENSIONS.includes(extname(entry.name).toLowerCase())) yield path;
  }
}

/** The files under the arguments; an argument that cannot be read becomes a failure. */
async function collectJobs(paths: string[], failures: string[]): Promise<Job[]> {
  const jobs: Job[] = [];
  for (const arg of paths) {
    try {
      const info = await stat(arg);
      if (info.isDirectory()) {
        const root = resolve(arg);
        for await (const file of walk(root, failures, new Set())) {
          jobs.push({ path: file, idPath: [basename(root), ...relative(root, file).split(sep)].join('/') });
        }
      } else if (info.isFile()) {
        jobs.push({ path: arg, idPath: basename(arg) });
      } else {
        // A FIFO or a device: reading it could wait forever, and every file after it with it.
        failures.push(`${arg}: not a regular file or folder`);
      }
    } catch (err) {
      failures.push(fsFailure(arg, err));
    }
  }
  return withoutSharedDocumentIds(await withoutRepeatedFiles(jobs), failures);
}

/**
 * The jobs with each file once, as it was first reached: a file given by name and inside a folder
 * argument too (`docs docs/a.md`) got two documentIds, one per path, and was stored twice.
 */
async function withoutRepeatedFiles(jobs: Job[]): Promise<Job[]> {
  const seen = new Set<string>();
  const kept: Job[] = [];
  for (const job of jobs) {
    const file = await realpath(job.path).catch(() => resolve(job.path));
    if (seen.has(file)) continue;
    seen.add(file);
    kept.push(job);
  }
  return kept;
}

/**
 * The jobs with one per documentId: a file named twice is ingested once, and a second file that
 * would get the documentId of another of this run (`a/readme.md b/readme.md`: a file's id comes
 * from its name) becomes a failure instead of silently replacing the first one's chunks.
 */
function withoutSharedDocumentIds(jobs: Job[], failures: string[]): Job[] {
  const firstById = new Map<string, Job>();
  return jobs.filter((job) => {
    const id = documentIdForPath(job.idPath);
    const first = firstById.get(id);
    if (first === undefined) {
      firstById.set(id, job);
      return true;
    }
    if (resolve(first.path) !== resolve(job.path)) {
      failures.push(
        `${job.path}: would get documentId ${id}, as ${first.path} does in this run, and replace its chunks; ` +
          'rename one, or pass their common parent folder (its files get ids from their path inside it)',
      );
    }
    return false;
  });
}

/** A readable, stable documentId: the path as a slug plus a short hash that keeps distinct paths apart. */
function documentIdForPath(idPath: string): string {
  const slug = idPath
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .replace(/[đĐ]/g, 'd')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 200);
  const hash = createHash('sha1').update(idPath.normalize('NFC')).digest('hex').slice(0, 10);
  return slug ? `${slug}-${hash}` : hash;
}

/** The flag behind each field of the API's ingest options. */
const FLAG_OF_FIELD = { documentType: '--type', category: '--category', collection: '--collection' } as const;

/**
 * --type, --category and --collection checked by the API's own rules (IngestOptionsDto), named by
 * their flags, before the database starts: a --type of 51 characters was a "value too long for type
 * character varying(50)" once per file.
 */
async function optionProblems(options: Options): Promise<string[]> {
  const fields = { documentType: options.documentType, category: options.category, collection: options.collection };
  try {
    await createValidationPipe().transform(fields, { type: 'body', metatype: IngestOptionsDto });
    return [];
  } catch (err) {
    if (!(err instanceof HttpException)) throw err;
    return messageOf(err)
      .split('; ')
      .map((m) =>
        m.replace(
          /^(documentType|category|collection)\b/,
          (field) => FLAG_OF_FIELD[field as keyof typeof FLAG_OF_FIELD],
        ),
      );
  }
}

function messageOf(err: unknown): string {
  if (err instanceof HttpException) {
    const response = err.getResponse();
    const message = typeof response === 'string' ? response : (response as { message?: unknown }).message;
    if (Array.isArray(message)) return message.join('; ');
    return typeof message === 'string' ? message : err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

async function run(argv: string[]): Promise<number> {
  let options: Options | 'help';
  try {
    options = parseArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    console.error(`${err.message}\n\n${USAGE}`);
    return 1;
  }
  if (options === 'help') {
    console.log(USAGE);
    return 0;
  }
  const problems = await optionProblems(options);
  if (problems.length > 0) {
    console.error(`${problems.join('\n')}\n\n${USAGE}`);
    return 1;
  }
  loadDotEnv();
  const config = loadAppConfig(process.env);
  const started = process.hrtime.bigint();
  const failures: string[] = [];
  const jobs = await collectJobs(options.paths, failures);
  // The same rule as the API's, before the database starts rather than once per file.
  const chunkSize = options.chunkSize ?? config.ingest.chunkSize;
  if (options.chunkOverlap !== undefined && options.chunkOverlap * 2 > chunkSize) {
    console.error(`--chunk-overlap (${options.chunkOverlap}) must be at most half of the chunk size (${chunkSize})`);
    return 1;
  }
  if (jobs.length === 0) {
    // Nothing to open the database for (an embedded one would be created for nothing).
    for (const failure of failures) console.error(`failed: ${failure}`);
    if (failures.length === 0) {
      console.error(`No ${SUPPORTED_EXTENSIONS.join(' ')} files under ${options.paths.join(' ')}`);
    }
    console.log(summary(0, 0, failures.length, 0, started));
    return failures.length > 0 ? 1 : 0;
  }

  const stopHeapLimit = limitHeapGrowth();
  const verbose: NestLogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];
  const app = await createCliContext(
    config,
    config.logLevel === 'debug' || config.logLevel === 'trace' ? verbose : ['fatal', 'error', 'warn'],
  );
  let ingested = 0;
  let skipped = 0;
  let chunks = 0;
  const bar = process.stderr.isTTY
    ? new cliProgress.SingleBar(
        { stream: process.stderr, format: '{bar} {value}/{total} files | {file}', hideCursor: true },
        cliProgress.Presets.shades_classic,
      )
    : null;
  // Ctrl-C (or SIGTERM) lets the file being ingested finish (its transaction commits or rolls back,
  // its temporary files go) and ends the run with its summary; a second one stops at once.
  let interrupted: NodeJS.Signals | null = null;
  let startedFiles = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted !== null) process.exit(EXIT_INTERRUPTED);
    interrupted = signal;
    bar?.stop();
    console.error(`${signal}: stopping after the file being ingested (again to stop at once)`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const notAtHead = await schemaNotAtHead(app.get(DataSource));
    if (notAtHead !== null) {
      console.error(notAtHead);
      return 1;
    }
    const service = app.get(IngestService);
    bar?.start(jobs.length, 0, { file: '' });
    for (const job of jobs) {
      if (interrupted !== null) break;
      startedFiles += 1;
      bar?.update({ file: job.idPath });
      try {
        const info = await stat(job.path);
        if (info.size > config.ingest.maxFileBytes) {
          throw new Error(`larger than INGEST_MAX_FILE_BYTES (${info.size} > ${config.ingest.maxFileBytes} bytes)`);
        }
        const result = await service.ingest({
          buffer: await readFile(job.path),
          fileName: basename(job.path),
          sourceFile: job.idPath,
          documentId: documentIdForPath(job.idPath),
          documentType: options.documentType,
          category: options.category,
          collection: options.collection,
          chunkSize: options.chunkSize,
          chunkOverlap: options.chunkOverlap,
        });
        if (result.skipped) skipped += 1;
        else {
          ingested += 1;
          chunks += result.chunks;
        }
      } catch (err) {
        // One bad file does not stop the others.
        failures.push(`${job.path}: ${messageOf(err)}`);
      }
      bar?.increment();
    }
  } finally {
    bar?.stop();
    await app.close();
    stopHeapLimit();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  for (const failure of failures) console.error(`failed: ${failure}`);
  const notStarted = jobs.length - startedFiles;
  console.log(
    summary(ingested, skipped, failures.length, chunks, started) +
      (interrupted !== null ? `; interrupted, ${notStarted} not started` : ''),
  );
  if (interrupted !== null) return EXIT_INTERRUPTED;
  return failures.length > 0 ? 1 : 0;
}

/** The exit code of a run stopped by a signal: 128 + SIGINT's number, as a shell reports Ctrl-C. */
const EXIT_INTERRUPTED = 130;

/** The run's last line. */
function summary(ingested: number, skipped: number, failed: number, chunks: number, started: bigint): string {
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return `files: ${ingested} ingested, ${skipped} skipped, ${failed} failed; chunks: ${chunks}; seconds: ${seconds.toFixed(1)}`;
}

try {
  process.exitCode = await run(process.argv.slice(2));
} catch (err) {
  console.error(err instanceof ConfigValidationError ? err.message : `Error: ${messageOf(err)}`);
  process.exitCode = 1;
}
