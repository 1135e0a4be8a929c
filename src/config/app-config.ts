import { plainToInstance, Transform } from 'class-transformer';
import { isIP } from 'node:net';
import { EXTRACTION_LIMITS } from '../ingest/extraction-limits.js';
import { COLLECTION_NAME, COLLECTION_NAME_MESSAGE } from '../common/collection-name.js';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  Min,
  ValidateBy,
  ValidateIf,
  validateSync,
  type ValidationOptions,
} from 'class-validator';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const EMBEDDING_PROVIDERS = ['local', 'openai'] as const;
export type EmbeddingProviderName = (typeof EMBEDDING_PROVIDERS)[number];

/** Raised for a bad environment; main() prints its one-line message and exits 1. */
export class ConfigValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigValidationError';
  }
}

/**
 * What is wrong with an http(s) base URL of an embedding or LLM service, or null. Any host WHATWG
 * URL parsing accepts, as fetch() does: loopback and LAN hosts, and Docker Compose service names
 * with underscores (`http://my_ollama:11434/v1`). No user name or password: fetch() refuses such a
 * URL at every call, and its error message, which repeats the URL, would reach logs and responses.
 */
export function httpBaseUrlProblem(value: unknown): string | null {
  const url = typeof value === 'string' && URL.canParse(value) ? new URL(value) : null;
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    return 'must be an http(s) URL';
  }
  if (url.username !== '' || url.password !== '') {
    return 'must not contain a user name or password (fetch() refuses them): send the key as the API key';
  }
  return null;
}

/**
 * TRUST_PROXY as Fastify's `trustProxy` takes it: false (the default: the socket's address is the
 * client, whatever X-Forwarded-For says), true (trust every hop), a number of hops, or the
 * addresses and CIDR ranges of the proxies; undefined for a value that is none of these.
 */
export function trustProxyOf(value: string | undefined): boolean | number | string[] | undefined {
  const text = (value ?? '').trim().toLowerCase();
  if (text === '' || text === 'false') return false;
  if (text === 'true') return true;
  if (/^\d+$/.test(text)) {
    const hops = Number(text);
    return hops >= 1 && hops <= 10 ? hops : undefined;
  }
  const entries = text.split(',').map((entry) => entry.trim());
  const valid = entries.every((entry) => {
    const [address, prefix, extra] = entry.split('/');
    const family = isIP(address);
    if (family === 0 || extra !== undefined) return false;
    if (prefix === undefined) return true;
    return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
  });
  return valid ? entries : undefined;
}

/** An http(s) base URL (httpBaseUrlProblem); `hint` ends the message about a value that is not one. */
function IsHttpBaseUrl(hint = '', options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isHttpBaseUrl',
      validator: {
        validate: (value: unknown) => httpBaseUrlProblem(value) === null,
        defaultMessage: (args) => {
          const problem = httpBaseUrlProblem(args?.value) ?? '';
          return `${args?.property} ${problem}${problem === 'must be an http(s) URL' ? hint : ''}`;
        },
      },
    },
    options,
  );
}

const toInt = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value;

const toBool = ({ value }: { value: unknown }): unknown => {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  return value;
};

/**
 * The environment as the service reads it. Each property is named after its variable so that
 * class-validator's messages name the variable the operator has to fix.
 */
class EnvironmentVariables {
  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(65535)
  PORT = 3000;

  @IsOptional()
  @IsString()
  HOST = '0.0.0.0';

  @IsOptional()
  @ValidateBy({
    name: 'isPostgresUrl',
    validator: {
      validate: (value: unknown) => typeof value === 'string' && isPostgresUrl(value),
      defaultMessage: () => `DATABASE_URL ${POSTGRES_URL_RULE}`,
    },
  })
  DATABASE_URL?: string;

  @IsOptional()
  @IsString()
  DATA_DIR = './data';

  @IsOptional()
  @IsString()
  EMBEDDED_TEMPLATE?: string;

  @IsOptional()
  @Transform(toBool)
  @IsBoolean({ message: 'DB_MIGRATE_ON_START must be true or false' })
  DB_MIGRATE_ON_START = false;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1000)
  DB_POOL_MAX = 10;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(600_000)
  DB_POOL_ACQUIRE_TIMEOUT_MS = 5000;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(3_600_000)
  DB_STATEMENT_TIMEOUT_MS = 30_000;

  @IsOptional()
  @Transform(toBool)
  @IsBoolean({ message: 'DB_PREPARED_STATEMENTS must be true or false' })
  DB_PREPARED_STATEMENTS = true;

  @IsOptional()
  @IsIn(LOG_LEVELS)
  LOG_LEVEL: LogLevel = 'info';

  @IsOptional()
  @IsIn(EMBEDDING_PROVIDERS)
  EMBEDDINGS_PROVIDER: EmbeddingProviderName = 'local';

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(8)
  @Max(16_000)
  EMBEDDINGS_DIMENSIONS = 384;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(100_000)
  EMBEDDINGS_MAX_BATCH = 1000;

  @IsOptional()
  @IsString()
  // Any name a collection may have (an adopted "Luật thuế" too; an environment variable holds no NUL).
  @Matches(COLLECTION_NAME, { message: COLLECTION_NAME_MESSAGE })
  DEFAULT_COLLECTION = 'docs';

  @ValidateIf((o: EnvironmentVariables) => o.EMBEDDINGS_PROVIDER === 'openai' || o.EMBEDDINGS_BASE_URL !== undefined)
  @IsHttpBaseUrl(' (required with EMBEDDINGS_PROVIDER=openai)')
  EMBEDDINGS_BASE_URL?: string;

  @IsOptional()
  @IsString()
  EMBEDDINGS_API_KEY?: string;

  @ValidateIf((o: EnvironmentVariables) => o.EMBEDDINGS_PROVIDER === 'openai' || o.EMBEDDINGS_MODEL !== undefined)
  @IsString({ message: 'EMBEDDINGS_MODEL is required with EMBEDDINGS_PROVIDER=openai' })
  @Matches(/^\S{1,200}$/, { message: 'EMBEDDINGS_MODEL must be 1-200 characters without spaces' })
  EMBEDDINGS_MODEL?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(600_000)
  EMBEDDINGS_TIMEOUT_MS = 30_000;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(10)
  EMBEDDINGS_MAX_RETRIES = 3;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(2048)
  EMBEDDINGS_REQUEST_BATCH = 128;

  @IsOptional()
  @IsHttpBaseUrl()
  LLM_BASE_URL?: string;

  @IsOptional()
  @IsString()
  LLM_API_KEY?: string;

  @IsOptional()
  @Matches(/^\S{1,200}$/, { message: 'LLM_MODEL must be 1-200 characters without spaces' })
  LLM_MODEL = 'gpt-4o-mini';

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(600_000)
  LLM_TIMEOUT_MS = 60_000;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  @Max(10_000_000)
  LLM_CONTEXT_MAX_CHARS = 24_000;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(1000)
  // 150, not pgvector's 40 or 100: on the 100k × 384 benchmark 2–3 % of queries at 100 ended in the
  // wrong cluster (recall@10 0.96–0.98); 150 about halves that for at most +0.2 ms per statement with
  // the service's m = 16 (docs/PERFORMANCE.md).
  SEARCH_HNSW_EF_SEARCH = 150;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1)
  @Max(100_000_000)
  // pgvector's own default. A filtered search that ends with fewer than k chunks is answered by the
  // exact search anyway (AskService.searchIn), so a lower value trades recall for nothing but time.
  SEARCH_HNSW_MAX_SCAN_TUPLES = 20_000;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(64)
  // 0: on the 2-vCPU benchmark server an exact search of 100,000 chunks took 62.4 ms serial, 70.8
  // with one worker and 94.9 with two, a filtered one 17.7 against 39.9 with one (docs/OPERATIONS.md);
  // and workers take cores from concurrent requests.
  SEARCH_PARALLEL_WORKERS = 0;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(10)
  @Max(100_000)
  // Ranking a chunk by its text recomputes its tsvector (about 80 µs for 750 characters): a
  // question whose words are in every chunk made a hybrid search of 100,000 chunks take 15–17 s.
  SEARCH_HYBRID_TEXT_MATCH_LIMIT = 1000;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(600_000)
  SEARCH_TARGET_CACHE_TTL_MS = 5000;

  @IsOptional()
  @Transform(toBool)
  @IsBoolean({ message: 'FILTER_REJECT_SQL_PROBES must be true or false' })
  FILTER_REJECT_SQL_PROBES = true;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(100_000)
  INGEST_CHUNK_SIZE = 1000;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(50_000)
  INGEST_CHUNK_OVERLAP = 200;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1024)
  @Max(1024 * 1024 * 1024)
  INGEST_MAX_FILE_BYTES = 25 * 1024 * 1024;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(100)
  @Max(3_600_000)
  INGEST_READ_TIMEOUT_MS = EXTRACTION_LIMITS.readTimeoutMs;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(16)
  @Max(16_384)
  INGEST_READER_HEAP_MB = EXTRACTION_LIMITS.readerHeapMb;

  @IsOptional()
  @IsString()
  @Matches(/\S/, { message: 'INGEST_TEMP_DIR must name a directory' })
  INGEST_TEMP_DIR?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1024 * 1024)
  @Max(1024 * 1024 * 1024)
  // 64 MiB: a page of the default 100 chunks fits whatever this API accepted (100,000 characters of
  // text and of metadata each, up to 3 bytes a character), and 1,000 chunks of that would not.
  CHUNKS_PAGE_MAX_BYTES = 64 * 1024 * 1024;

  @IsOptional()
  @IsString()
  API_KEYS?: string;

  @IsOptional()
  @Transform(toBool)
  @IsBoolean({ message: 'API_READS_PUBLIC must be true or false' })
  API_READS_PUBLIC = true;

  @IsOptional()
  @IsString()
  CORS_ORIGINS?: string;

  @IsOptional()
  @ValidateBy({
    name: 'isTrustProxy',
    validator: {
      validate: (value: unknown) => typeof value === 'string' && trustProxyOf(value) !== undefined,
      defaultMessage: () =>
        'TRUST_PROXY must be true, false, a number of proxy hops (1-10), or comma-separated proxy addresses or CIDR ranges',
    },
  })
  TRUST_PROXY?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(1_000_000)
  THROTTLE_LIMIT = 600;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1000)
  @Max(3_600_000)
  THROTTLE_TTL_MS = 60_000;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(1024)
  @Max(1024 * 1024 * 1024)
  BODY_LIMIT_BYTES = 32 * 1024 * 1024;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(3_600_000)
  HTTP_REQUEST_TIMEOUT_MS = 300_000;

  @IsOptional()
  @IsString()
  DATABASE_REPLICA_URLS?: string;

  @IsOptional()
  @Transform(toInt)
  @IsInt()
  @Min(0)
  @Max(600_000)
  SHUTDOWN_TIMEOUT_MS = 10_000;

  @IsOptional()
  @Transform(toBool)
  @IsBoolean({ message: 'METRICS_ENABLED must be true or false' })
  METRICS_ENABLED = true;
}

export const API_SCOPES = ['read', 'write', 'admin'] as const;
export type ApiScope = (typeof API_SCOPES)[number];

/** One entry of API_KEYS: the secret and what it may do. */
export interface ApiKey {
  /** Shown in logs instead of the key: `key#1`, `key#2`… in API_KEYS order. */
  readonly label: string;
  readonly key: string;
  readonly scopes: ReadonlySet<ApiScope>;
}

/**
 * API_KEYS is a comma-separated list of `key` or `key:scope+scope` (scopes read, write, admin).
 * A key without scopes may do everything. admin includes write, and write includes read, so
 * `key:write` can read too. Keys must be at least 16 characters: short keys are guessable.
 */
export function parseApiKeys(raw: string | undefined): ApiKey[] {
  if (raw === undefined || raw.trim() === '') return [];
  const implied: Record<ApiScope, ApiScope[]> = {
    read: ['read'],
    write: ['read', 'write'],
    admin: ['read', 'write', 'admin'],
  };
  return raw.split(',').map((entry, i) => {
    const [key, scopeList, extra] = entry.trim().split(':');
    if (extra !== undefined || !key || key.length < 16 || /\s/.test(key)) {
      throw new ConfigValidationError([
        `API_KEYS entry ${i + 1} is invalid: use key or key:scope+scope, with keys of at least 16 characters and no spaces or colons`,
      ]);
    }
    const scopes = new Set<ApiScope>();
    for (const scope of scopeList === undefined ? ['admin'] : scopeList.split('+')) {
      if (!(API_SCOPES as readonly string[]).includes(scope)) {
        throw new ConfigValidationError([
          `API_KEYS entry ${i + 1} has an unknown scope "${scope}": use ${API_SCOPES.join(', ')}`,
        ]);
      }
      for (const s of implied[scope as ApiScope]) scopes.add(s);
    }
    return { label: `key#${i + 1}`, key, scopes };
  });
}

const POSTGRES_URL_RULE =
  'must be a postgres:// or postgresql:// URL that parses (a numeric port; special characters of the password percent-encoded)';

/**
 * Whether the driver can read this connection URL: the scheme, a URL that WHATWG parsing accepts,
 * and percent-escapes that pg's connection-string parser can decode in the user, password, host and
 * database (`host:abc` failed at start-up with "Invalid URL", and a password holding `%ZZ` or a raw
 * `%` with "URI malformed", each naming no variable).
 */
function isPostgresUrl(value: string): boolean {
  if (!/^postgres(ql)?:\/\/\S+$/.test(value) || !URL.canParse(value)) return false;
  const url = new URL(value);
  try {
    for (const part of [url.username, url.password, url.hostname]) decodeURIComponent(part);
    decodeURI(url.pathname);
    return true;
  } catch {
    return false;
  }
}

/** Comma-separated postgres URLs; each one checked like DATABASE_URL. */
function parseReplicaUrls(raw: string | undefined): string[] {
  if (raw === undefined || raw.trim() === '') return [];
  return raw.split(',').map((url, i) => {
    const trimmed = url.trim();
    if (!isPostgresUrl(trimmed)) {
      throw new ConfigValidationError([`DATABASE_REPLICA_URLS entry ${i + 1} ${POSTGRES_URL_RULE}`]);
    }
    return trimmed;
  });
}

export type DatabaseMode = 'embedded' | 'server';

/** The one typed configuration object; the app, the CLI and the tests all build it here. */
export interface AppConfig {
  readonly port: number;
  readonly host: string;
  readonly database: {
    readonly mode: DatabaseMode;
    readonly url?: string;
    /** Where the embedded database keeps its files; `memory://` keeps nothing. */
    readonly dataDir: string;
    /** A PGlite data-directory dump that seeds a new embedded database (skips initdb). */
    readonly embeddedTemplate?: string;
    readonly migrateOnStart: boolean;
    readonly poolMax: number;
    readonly acquireTimeoutMs: number;
    readonly statementTimeoutMs: number;
    /**
     * Whether the hottest constant reads run as named prepared statements (server mode only): parsed
     * and planned once per connection instead of on every request.
     */
    readonly preparedStatements: boolean;
    /** Read replicas (server mode only): /ask, /stats and list/get reads go there. */
    readonly replicaUrls: readonly string[];
  };
  readonly logLevel: LogLevel;
  readonly embeddings: {
    readonly provider: EmbeddingProviderName;
    readonly dimensions: number;
    readonly maxBatch: number;
    readonly defaultCollection: string;
    /** OpenAI-compatible `/v1/embeddings` endpoint (provider `openai`). */
    readonly openai?: {
      readonly baseUrl: string;
      readonly apiKey?: string;
      readonly model: string;
      readonly timeoutMs: number;
      readonly maxRetries: number;
      /** Texts per HTTP request. */
      readonly requestBatch: number;
    };
  };
  /** OpenAI-compatible chat completions for `/ask {answer: true}`; absent when LLM_BASE_URL is unset. */
  readonly llm?: {
    readonly baseUrl: string;
    readonly apiKey?: string;
    readonly model: string;
    readonly timeoutMs: number;
    /** Characters of retrieved passages one answer prompt holds at most (LLM_CONTEXT_MAX_CHARS). */
    readonly contextMaxChars: number;
  };
  readonly search: {
    /**
     * `hnsw.ef_search` every server connection starts with, and the lower bound when a search needs
     * more candidates (k, hybrid) and raises it with SET LOCAL.
     */
    readonly hnswEfSearch: number;
    /**
     * `hnsw.max_scan_tuples` every server connection starts with (pgvector ≥ 0.8): how many chunks a
     * filtered index scan visits, at most, looking for k that pass the filter.
     */
    readonly hnswMaxScanTuples: number;
    /**
     * `max_parallel_workers_per_gather` every server connection starts with: the workers
     * PostgreSQL may add to an exact search (no HNSW index, `exact`, or a filter read through
     * ix_cmetadata_terms), the one kind of statement of this service that scans many rows.
     */
    readonly parallelWorkers: number;
    /**
     * Hybrid search ranks by text every chunk that contains a word of the question when there are
     * at most this many; when there are more (the words are that common), only the vector side's
     * candidates among them. Bounds the text side's cost (see ChunkSearchRepository.hybridSearch).
     */
    readonly hybridTextMatchLimit: number;
    /**
     * How long /ask reuses what it looked up about a collection (uuid, dimension, HNSW index) before
     * looking again; 0 = every request. Changes by other processes are seen within this time.
     */
    readonly targetCacheTtlMs: number;
    /** Whether a filter value that looks like an SQL-injection probe is a 400 (docs/FILTERS.md). */
    readonly rejectSqlProbes: boolean;
  };
  readonly ingest: {
    readonly chunkSize: number;
    readonly chunkOverlap: number;
    readonly maxFileBytes: number;
    /** How long reading one HTML, .docx or PDF file may take (a 422 after); also a file's wait for a reader (a 503 after). */
    readonly readTimeoutMs: number;
    /** The heap of the worker that reads one .docx or PDF (a 413 beyond). */
    readonly readerHeapMb: number;
    /** Where a text of more than 2,048 chunks keeps its vectors until they are written; the OS temporary directory when unset. */
    readonly tempDir: string | undefined;
  };
  readonly http: {
    /** Largest JSON body; a bigger one is a 413. */
    readonly bodyLimitBytes: number;
    /** Most bytes of chunk text and metadata in one page of GET /documents/:id/chunks (a 400 above). */
    readonly chunksPageMaxBytes: number;
    /** How long a request may take to arrive, headers and body (408 and the connection closed after); 0 = no limit. */
    readonly requestTimeoutMs: number;
    /** Allowed CORS origins; empty = CORS off, ['*'] = any origin. */
    readonly corsOrigins: readonly string[];
    /**
     * Fastify's trustProxy (TRUST_PROXY): which proxies' X-Forwarded-For names the client, for the
     * rate limit (request.ip). false: the socket's address is the client.
     */
    readonly trustProxy: boolean | number | string[];
    /** Requests per client per window; 0 turns rate limiting off. */
    readonly throttleLimit: number;
    readonly throttleTtlMs: number;
    /** How long SIGTERM waits for in-flight requests before closing anyway. */
    readonly shutdownTimeoutMs: number;
    readonly metricsEnabled: boolean;
  };
  readonly auth: {
    /** Empty: the service is open (it says so at startup). */
    readonly apiKeys: readonly ApiKey[];
    /** With API keys set: whether reads need a key too. */
    readonly readsPublic: boolean;
  };
}

/** Injection token for AppConfig (an interface has no runtime value). */
export const APP_CONFIG = Symbol('APP_CONFIG');

export function loadAppConfig(env: Record<string, string | undefined> = process.env): AppConfig {
  // Empty strings mean "unset", as they do in most .env files.
  const raw = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const vars = plainToInstance(EnvironmentVariables, raw, { exposeDefaultValues: true });
  const errors = validateSync(vars, { whitelist: false, skipMissingProperties: false });
  if (errors.length > 0) {
    // One message per variable: the rule declared first (a type before its range). Decorators apply
    // bottom-up, so class-validator lists a property's failed rules in reverse declaration order:
    // "PORT=80a" failed the range checks too, and was reported as "must not be greater than 65535".
    throw new ConfigValidationError(
      errors.map((e) => Object.values(e.constraints ?? {}).at(-1) ?? `${e.property} is invalid`),
    );
  }
  if (vars.EMBEDDINGS_PROVIDER === 'openai' && raw.EMBEDDINGS_DIMENSIONS === undefined) {
    // The 384 default fits the local provider only; a remote model's dimension must be stated.
    throw new ConfigValidationError(['EMBEDDINGS_DIMENSIONS is required with EMBEDDINGS_PROVIDER=openai']);
  }
  if (vars.INGEST_CHUNK_OVERLAP * 2 > vars.INGEST_CHUNK_SIZE) {
    throw new ConfigValidationError(['INGEST_CHUNK_OVERLAP must be at most half of INGEST_CHUNK_SIZE']);
  }
  const url = vars.DATABASE_URL;
  const replicaUrls = parseReplicaUrls(vars.DATABASE_REPLICA_URLS);
  if (replicaUrls.length > 0 && !url) {
    throw new ConfigValidationError(['DATABASE_REPLICA_URLS needs DATABASE_URL (the primary)']);
  }
  return {
    port: vars.PORT,
    host: vars.HOST,
    database: {
      mode: url ? 'server' : 'embedded',
      url,
      dataDir: vars.DATA_DIR,
      embeddedTemplate: vars.EMBEDDED_TEMPLATE,
      // The embedded database belongs to this service alone, so it is always kept migrated.
      migrateOnStart: url ? vars.DB_MIGRATE_ON_START : true,
      poolMax: vars.DB_POOL_MAX,
      acquireTimeoutMs: vars.DB_POOL_ACQUIRE_TIMEOUT_MS,
      statementTimeoutMs: vars.DB_STATEMENT_TIMEOUT_MS,
      // Never on the embedded database: PGlite is one session that outlives the pool's connections,
      // so a new connection would find the previous one's statement names taken (42P05).
      preparedStatements: url ? vars.DB_PREPARED_STATEMENTS : false,
      replicaUrls,
    },
    logLevel: vars.LOG_LEVEL,
    embeddings: {
      provider: vars.EMBEDDINGS_PROVIDER,
      dimensions: vars.EMBEDDINGS_DIMENSIONS,
      maxBatch: vars.EMBEDDINGS_MAX_BATCH,
      defaultCollection: vars.DEFAULT_COLLECTION,
      openai:
        vars.EMBEDDINGS_PROVIDER === 'openai'
          ? {
              baseUrl: vars.EMBEDDINGS_BASE_URL!,
              apiKey: vars.EMBEDDINGS_API_KEY,
              model: vars.EMBEDDINGS_MODEL!,
              timeoutMs: vars.EMBEDDINGS_TIMEOUT_MS,
              maxRetries: vars.EMBEDDINGS_MAX_RETRIES,
              requestBatch: vars.EMBEDDINGS_REQUEST_BATCH,
            }
          : undefined,
    },
    llm: vars.LLM_BASE_URL
      ? {
          baseUrl: vars.LLM_BASE_URL,
          apiKey: vars.LLM_API_KEY,
          model: vars.LLM_MODEL,
          timeoutMs: vars.LLM_TIMEOUT_MS,
          contextMaxChars: vars.LLM_CONTEXT_MAX_CHARS,
        }
      : undefined,
    search: {
      hnswEfSearch: vars.SEARCH_HNSW_EF_SEARCH,
      hnswMaxScanTuples: vars.SEARCH_HNSW_MAX_SCAN_TUPLES,
      parallelWorkers: vars.SEARCH_PARALLEL_WORKERS,
      hybridTextMatchLimit: vars.SEARCH_HYBRID_TEXT_MATCH_LIMIT,
      targetCacheTtlMs: vars.SEARCH_TARGET_CACHE_TTL_MS,
      rejectSqlProbes: vars.FILTER_REJECT_SQL_PROBES,
    },
    ingest: {
      chunkSize: vars.INGEST_CHUNK_SIZE,
      chunkOverlap: vars.INGEST_CHUNK_OVERLAP,
      maxFileBytes: vars.INGEST_MAX_FILE_BYTES,
      readTimeoutMs: vars.INGEST_READ_TIMEOUT_MS,
      readerHeapMb: vars.INGEST_READER_HEAP_MB,
      tempDir: vars.INGEST_TEMP_DIR,
    },
    http: {
      bodyLimitBytes: vars.BODY_LIMIT_BYTES,
      chunksPageMaxBytes: vars.CHUNKS_PAGE_MAX_BYTES,
      requestTimeoutMs: vars.HTTP_REQUEST_TIMEOUT_MS,
      corsOrigins: (vars.CORS_ORIGINS ?? '')
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean),
      trustProxy: trustProxyOf(vars.TRUST_PROXY) ?? false,
      throttleLimit: vars.THROTTLE_LIMIT,
      throttleTtlMs: vars.THROTTLE_TTL_MS,
      shutdownTimeoutMs: vars.SHUTDOWN_TIMEOUT_MS,
      metricsEnabled: vars.METRICS_ENABLED,
    },
    auth: { apiKeys: parseApiKeys(vars.API_KEYS), readsPublic: vars.API_READS_PUBLIC },
  };
}

/**
 * Loads `.env` from the working directory when there is one; real environment variables win.
 * ENV_FILE names another file, and an empty ENV_FILE loads none: the test runner sets it so that
 * the processes the tests start never take DATABASE_URL from a developer's `.env`.
 */
export function loadDotEnv(path = process.env.ENV_FILE ?? '.env'): void {
  if (path === '') return;
  try {
    process.loadEnvFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
