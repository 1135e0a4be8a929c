import { readFileSync } from 'node:fs';
import { buildDataSourceOptions } from '../database/data-source-options.js';
import { ConfigValidationError, loadAppConfig } from './app-config.js';

describe('loadAppConfig', () => {
  it('uses the embedded database and documented defaults when nothing is set', () => {
    const config = loadAppConfig({});
    expect(config).toMatchObject({
      port: 3000,
      database: { mode: 'embedded', dataDir: './data', migrateOnStart: true, poolMax: 10, preparedStatements: false },
      embeddings: { provider: 'local', dimensions: 384, maxBatch: 1000, defaultCollection: 'docs' },
    });
  });

  it('uses the server, without migrating on start, when DATABASE_URL is set', () => {
    const config = loadAppConfig({ DATABASE_URL: 'postgresql://u:p@db:5432/kb', PORT: '8080' });
    expect(config.database).toMatchObject({ mode: 'server', migrateOnStart: false, preparedStatements: true });
    expect(config.port).toBe(8080);
    expect(
      loadAppConfig({ DATABASE_URL: 'postgres://db/kb', DB_MIGRATE_ON_START: 'true' }).database.migrateOnStart,
    ).toBe(true);
  });

  it('turns prepared statements off on request, and always on the embedded database', () => {
    const server = { DATABASE_URL: 'postgres://db/kb', DB_PREPARED_STATEMENTS: 'false' };
    expect(loadAppConfig(server).database.preparedStatements).toBe(false);
    expect(loadAppConfig({ DB_PREPARED_STATEMENTS: 'true' }).database.preparedStatements).toBe(false);
    expect(() => loadAppConfig({ DB_PREPARED_STATEMENTS: 'maybe' })).toThrow(
      /DB_PREPARED_STATEMENTS must be true or false/,
    );
  });

  it('bounds how long a request may take to arrive: 5 minutes by default, 0 for no limit', () => {
    expect(loadAppConfig({}).http.requestTimeoutMs).toBe(300_000);
    expect(loadAppConfig({ HTTP_REQUEST_TIMEOUT_MS: '0' }).http.requestTimeoutMs).toBe(0);
    expect(() => loadAppConfig({ HTTP_REQUEST_TIMEOUT_MS: '-1' })).toThrow(
      /HTTP_REQUEST_TIMEOUT_MS must not be less than 0/,
    );
  });

  it('treats empty values as unset', () => {
    expect(loadAppConfig({ DATABASE_URL: '', PORT: '' })).toMatchObject({ port: 3000, database: { mode: 'embedded' } });
  });

  it('names every wrong variable in one line', () => {
    let error: unknown;
    try {
      loadAppConfig({ PORT: '70000', DB_POOL_MAX: '0' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigValidationError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    expect(message).toMatch(/PORT must not be greater than 65535/);
    expect(message).toMatch(/DB_POOL_MAX must not be less than 1/);
  });

  it('names the rule a value breaks first: its type before its range, a missing value before its form', () => {
    const messageOf = (env: Record<string, string>): string => {
      try {
        loadAppConfig(env);
      } catch (err) {
        return (err as Error).message;
      }
      return 'no error';
    };
    expect(messageOf({ PORT: '80a' })).toBe('Invalid configuration: PORT must be an integer number');
    expect(messageOf({ DB_POOL_MAX: 'ten' })).toBe('Invalid configuration: DB_POOL_MAX must be an integer number');
    expect(messageOf({ PORT: '99999' })).toBe('Invalid configuration: PORT must not be greater than 65535');
    expect(
      messageOf({ EMBEDDINGS_PROVIDER: 'openai', EMBEDDINGS_BASE_URL: 'http://x', EMBEDDINGS_DIMENSIONS: '768' }),
    ).toBe('Invalid configuration: EMBEDDINGS_MODEL is required with EMBEDDINGS_PROVIDER=openai');
    expect(messageOf({ EMBEDDINGS_MODEL: 'two words' })).toBe(
      'Invalid configuration: EMBEDDINGS_MODEL must be 1-200 characters without spaces',
    );
  });

  it('reads the search settings, and the server connections start with them', () => {
    expect(loadAppConfig({}).search).toEqual({
      hnswEfSearch: 150,
      hnswMaxScanTuples: 20_000,
      parallelWorkers: 0,
      hybridTextMatchLimit: 1000,
      targetCacheTtlMs: 5000,
      rejectSqlProbes: true,
    });
    const config = loadAppConfig({
      SEARCH_HNSW_EF_SEARCH: '250',
      SEARCH_HNSW_MAX_SCAN_TUPLES: '5000',
      SEARCH_PARALLEL_WORKERS: '4',
      SEARCH_HYBRID_TEXT_MATCH_LIMIT: '50',
      SEARCH_TARGET_CACHE_TTL_MS: '0',
    });
    expect(config.search).toEqual({
      hnswEfSearch: 250,
      hnswMaxScanTuples: 5000,
      parallelWorkers: 4,
      hybridTextMatchLimit: 50,
      targetCacheTtlMs: 0,
      rejectSqlProbes: true,
    });
    expect(() => loadAppConfig({ SEARCH_TARGET_CACHE_TTL_MS: '-1' })).toThrow(
      /SEARCH_TARGET_CACHE_TTL_MS must not be less than 0/,
    );
    expect(() => loadAppConfig({ SEARCH_PARALLEL_WORKERS: '-1' })).toThrow(
      /SEARCH_PARALLEL_WORKERS must not be less than 0/,
    );
    expect(() => loadAppConfig({ SEARCH_HYBRID_TEXT_MATCH_LIMIT: '5' })).toThrow(
      /SEARCH_HYBRID_TEXT_MATCH_LIMIT must not be less than 10/,
    );
    expect(() => loadAppConfig({ SEARCH_HNSW_MAX_SCAN_TUPLES: '0' })).toThrow(
      /SEARCH_HNSW_MAX_SCAN_TUPLES must not be less than 1/,
    );
    const server = loadAppConfig({
      DATABASE_URL: 'postgres://db/kb',
      SEARCH_HNSW_EF_SEARCH: '250',
      SEARCH_HNSW_MAX_SCAN_TUPLES: '5000',
      SEARCH_PARALLEL_WORKERS: '4',
    });
    expect(buildDataSourceOptions(server, { url: 'postgres://db/kb' }).extra).toMatchObject({
      options:
        '-c hnsw.ef_search=250 -c hnsw.iterative_scan=relaxed_order -c hnsw.max_scan_tuples=5000 -c max_parallel_workers_per_gather=4',
    });
    // PGlite's socket server ignores the startup options: EmbeddedPostgres sets them on its one session.
    expect(buildDataSourceOptions(config, { host: '127.0.0.1', port: 1 }).extra).not.toHaveProperty('options');
  });

  it('turns the filter SQL-probe check off only when asked, and refuses other words', () => {
    expect(loadAppConfig({}).search.rejectSqlProbes).toBe(true);
    expect(loadAppConfig({ FILTER_REJECT_SQL_PROBES: 'false' }).search.rejectSqlProbes).toBe(false);
    expect(() => loadAppConfig({ FILTER_REJECT_SQL_PROBES: 'maybe' })).toThrow(
      /FILTER_REJECT_SQL_PROBES must be true or false/,
    );
  });

  it('takes any collection name as DEFAULT_COLLECTION, an adopted one with spaces too, and refuses blank ones', () => {
    expect(loadAppConfig({ DEFAULT_COLLECTION: 'Luật thuế 2024' }).embeddings.defaultCollection).toBe('Luật thuế 2024');
    expect(loadAppConfig({ DEFAULT_COLLECTION: 'x'.repeat(500) }).embeddings.defaultCollection).toHaveLength(500);
    for (const name of ['   ', 'x'.repeat(501)]) {
      expect(() => loadAppConfig({ DEFAULT_COLLECTION: name })).toThrow(
        /DEFAULT_COLLECTION must be 1-500 characters, not all whitespace/,
      );
    }
  });

  it('parses API_KEYS with implied scopes, and refuses short keys and unknown scopes', () => {
    const { auth } = loadAppConfig({
      API_KEYS: 'reader-key-0123456789:read, writer-key-0123456789:write,admin-key-01234567890',
      API_READS_PUBLIC: 'false',
    });
    expect(auth.readsPublic).toBe(false);
    expect(auth.apiKeys.map((k) => [k.label, k.key, [...k.scopes].sort()])).toEqual([
      ['key#1', 'reader-key-0123456789', ['read']],
      ['key#2', 'writer-key-0123456789', ['read', 'write']],
      ['key#3', 'admin-key-01234567890', ['admin', 'read', 'write']],
    ]);
    expect(() => loadAppConfig({ API_KEYS: 'short:read' })).toThrow(/API_KEYS entry 1 is invalid/);
    expect(() => loadAppConfig({ API_KEYS: 'reader-key-0123456789:owner' })).toThrow(/unknown scope "owner"/);
    expect(loadAppConfig({}).auth.apiKeys).toEqual([]);
  });

  it('refuses a database URL the driver cannot parse, naming the variable, and takes the forms it can', () => {
    const rule =
      'must be a postgres:// or postgresql:// URL that parses (a numeric port; special characters of the password percent-encoded)';
    expect(() => loadAppConfig({ DATABASE_URL: 'postgresql://u:p@host:abc/db' })).toThrow(
      `Invalid configuration: DATABASE_URL ${rule}`,
    );
    // A password with a bad escape or a raw %: the driver's decoding threw "URI malformed" at start-up.
    for (const url of ['postgresql://u:S3cret%ZZPw@h/db', 'postgresql://u:50%@h/db', 'postgresql://h/d%E0%A4%A']) {
      expect(() => loadAppConfig({ DATABASE_URL: url })).toThrow(`Invalid configuration: DATABASE_URL ${rule}`);
    }
    expect(() =>
      loadAppConfig({
        DATABASE_URL: 'postgres://db/kb',
        DATABASE_REPLICA_URLS: 'postgres://r1/kb, postgres://r2:5432x/kb',
      }),
    ).toThrow(`Invalid configuration: DATABASE_REPLICA_URLS entry 2 ${rule}`);
    for (const url of [
      'postgres://u:p%40x@h:5432/d?sslmode=require',
      'postgresql://[::1]:5432/db',
      'postgresql:///db?host=/var/run/postgresql',
    ]) {
      expect(loadAppConfig({ DATABASE_URL: url }).database.url).toBe(url);
    }
  });

  it('reads TRUST_PROXY as Fastify takes it, and refuses what is none of its forms', () => {
    expect(loadAppConfig({}).http.trustProxy).toBe(false);
    expect(loadAppConfig({ TRUST_PROXY: 'false' }).http.trustProxy).toBe(false);
    expect(loadAppConfig({ TRUST_PROXY: 'TRUE' }).http.trustProxy).toBe(true);
    expect(loadAppConfig({ TRUST_PROXY: '2' }).http.trustProxy).toBe(2);
    expect(loadAppConfig({ TRUST_PROXY: '10.0.0.0/8, 127.0.0.1,::1,fd00::/8' }).http.trustProxy).toEqual([
      '10.0.0.0/8',
      '127.0.0.1',
      '::1',
      'fd00::/8',
    ]);
    for (const value of ['0', '11', 'yes', '10.0.0.0/33', '10.0.0/8', 'lb.internal', '10.0.0.1/8/1', '::1/129']) {
      expect(() => loadAppConfig({ TRUST_PROXY: value })).toThrow(
        'Invalid configuration: TRUST_PROXY must be true, false, a number of proxy hops (1-10), or comma-separated proxy addresses or CIDR ranges',
      );
    }
  });

  it('takes any http(s) base URL fetch() can call, and refuses one with credentials before they reach a log', () => {
    const openai = { EMBEDDINGS_PROVIDER: 'openai', EMBEDDINGS_MODEL: 'm', EMBEDDINGS_DIMENSIONS: '8' };
    // A Docker Compose service name: validator.js's isURL refused the underscore.
    expect(
      loadAppConfig({ ...openai, EMBEDDINGS_BASE_URL: 'http://my_ollama:11434/v1' }).embeddings.openai?.baseUrl,
    ).toBe('http://my_ollama:11434/v1');
    expect(loadAppConfig({ LLM_BASE_URL: 'https://llm_gateway.internal/v1' }).llm?.baseUrl).toBe(
      'https://llm_gateway.internal/v1',
    );
    expect(() => loadAppConfig({ ...openai, EMBEDDINGS_BASE_URL: 'https://user:s3cret@ollama.example/v1' })).toThrow(
      'Invalid configuration: EMBEDDINGS_BASE_URL must not contain a user name or password (fetch() refuses them): send the key as the API key',
    );
    expect(() => loadAppConfig({ LLM_BASE_URL: 'http://user@llm.example/v1' })).toThrow(
      'Invalid configuration: LLM_BASE_URL must not contain a user name or password',
    );
    expect(() => loadAppConfig({ ...openai, EMBEDDINGS_BASE_URL: 'ftp://ollama.example/v1' })).toThrow(
      'Invalid configuration: EMBEDDINGS_BASE_URL must be an http(s) URL (required with EMBEDDINGS_PROVIDER=openai)',
    );
    expect(() => loadAppConfig({ LLM_BASE_URL: 'not a url' })).toThrow(
      'Invalid configuration: LLM_BASE_URL must be an http(s) URL',
    );
  });

  it('requires what the openai provider needs, and replicas only beside a primary', () => {
    expect(() => loadAppConfig({ EMBEDDINGS_PROVIDER: 'openai' })).toThrow(/EMBEDDINGS_BASE_URL/);
    expect(() =>
      loadAppConfig({
        EMBEDDINGS_PROVIDER: 'openai',
        EMBEDDINGS_BASE_URL: 'http://localhost:11434/v1',
        EMBEDDINGS_MODEL: 'm',
      }),
    ).toThrow('Invalid configuration: EMBEDDINGS_DIMENSIONS is required with EMBEDDINGS_PROVIDER=openai');
    const openai = loadAppConfig({
      EMBEDDINGS_PROVIDER: 'openai',
      EMBEDDINGS_BASE_URL: 'http://localhost:11434/v1',
      EMBEDDINGS_MODEL: 'nomic-embed-text',
      EMBEDDINGS_DIMENSIONS: '768',
    });
    expect(openai.embeddings).toMatchObject({
      provider: 'openai',
      dimensions: 768,
      openai: { model: 'nomic-embed-text' },
    });
    expect(() => loadAppConfig({ DATABASE_REPLICA_URLS: 'postgres://replica/kb' })).toThrow(/needs DATABASE_URL/);
    expect(() => loadAppConfig({ DATABASE_URL: 'postgres://db/kb', DATABASE_REPLICA_URLS: 'mysql://x' })).toThrow(
      /DATABASE_REPLICA_URLS entry 1/,
    );
    expect(
      loadAppConfig({ DATABASE_URL: 'postgres://db/kb', DATABASE_REPLICA_URLS: 'postgres://r1/kb, postgres://r2/kb' })
        .database.replicaUrls,
    ).toEqual(['postgres://r1/kb', 'postgres://r2/kb']);
    expect(() => loadAppConfig({ INGEST_CHUNK_SIZE: '500', INGEST_CHUNK_OVERLAP: '500' })).toThrow(
      /INGEST_CHUNK_OVERLAP must be at most half of INGEST_CHUNK_SIZE/,
    );
  });
});

describe('the documented configuration', () => {
  // Every variable the configuration class declares, read from its source as written.
  const declared = [
    ...readFileSync('src/config/app-config.ts', 'utf8').matchAll(/^ {2}([A-Z][A-Z0-9_]+)\??(?: =|:)/gm),
  ].map((m) => m[1]);

  it('lists every variable in .env.example and in the README', () => {
    expect(declared.length).toBeGreaterThan(40);
    const example = readFileSync('.env.example', 'utf8');
    const readme = readFileSync('README.md', 'utf8');
    expect(declared.filter((name) => !new RegExp(`^#? ?${name}=`, 'm').test(example))).toEqual([]);
    expect(declared.filter((name) => !readme.includes(`\`${name}\``))).toEqual([]);
  });
});
