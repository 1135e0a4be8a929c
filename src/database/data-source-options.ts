import type { DataSourceOptions } from 'typeorm';
import { MIGRATIONS } from '../../migrations/index.js';
import type { AppConfig } from '../config/app-config.js';
import { DocumentEntity } from '../documents/document.entity.js';
import { CollectionEntity } from '../embeddings/collection.entity.js';
import { EmbeddingEntity } from '../embeddings/embedding.entity.js';
import { PgTypes } from './pg-types.js';

export const ENTITIES = [DocumentEntity, CollectionEntity, EmbeddingEntity];

/** Table TypeORM records applied migrations in (its default name, kept explicit for the docs). */
export const MIGRATIONS_TABLE = 'migrations';

/** Where the pool connects: the server from DATABASE_URL, or the embedded server's loopback port. */
export type DatabaseEndpoint = { url: string } | { host: string; port: number };

/**
 * The single definition of the TypeORM DataSource, shared by the Nest app, the CLI and the tests.
 * `synchronize` is always off: the schema changes only through migrations.
 */
export function buildDataSourceOptions(config: AppConfig, endpoint: DatabaseEndpoint): DataSourceOptions {
  const embedded = config.database.mode === 'embedded';
  const connection =
    'url' in endpoint
      ? { url: endpoint.url }
      : { host: endpoint.host, port: endpoint.port, username: 'postgres', database: 'postgres' };
  return {
    type: 'postgres',
    ...connection,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    migrationsTableName: MIGRATIONS_TABLE,
    migrationsTransactionMode: 'each',
    synchronize: false,
    // Honoured by initializeDataSource (under an advisory lock), never by TypeORM itself.
    migrationsRun: config.database.migrateOnStart,
    uuidExtension: 'pgcrypto',
    // Extensions come from migrations (vector) or the server itself (gen_random_uuid is core since PG 13).
    installExtensions: false,
    // Embedded PGlite serves one session: one connection, so transactions queue instead of interleaving.
    poolSize: embedded ? 1 : config.database.poolMax,
    extra: {
      connectionTimeoutMillis: config.database.acquireTimeoutMs,
      // Its own: readTimestampsInSessionTimeZone sets its zone once the DataSource is up.
      types: new PgTypes(),
      // A server-side limit on every statement, so one slow query cannot hold a connection forever.
      ...(config.database.statementTimeoutMs > 0 && !embedded
        ? { statement_timeout: config.database.statementTimeoutMs }
        : {}),
      application_name: 'rag-knowledge-base',
      // TCP keepalive: a server that vanished without closing its connections (a partitioned or
      // powered-off host) is noticed within seconds of idleness, so a pooled connection waiting on
      // it errors (a 503, a replica taken out of rotation) instead of hanging until the kernel gives up.
      ...(embedded ? {} : { keepAlive: true, keepAliveInitialDelayMillis: 10_000 }),
      // Not the "session-wide SET on a pooled connection" anti-pattern: every connection starts
      // with these same values (startup packet), nothing a request sets outlives its transaction
      // (SET LOCAL), and RESET ALL returns to them; so no request sees another's settings. It lets
      // an indexed search run as one statement, without BEGIN/SET LOCAL/COMMIT (see AskService).
      // PGlite's socket server ignores the parameter (EmbeddedPostgres sets them on its session);
      // a pooler may drop it: AskService checks what a connection has.
      ...(embedded ? {} : { options: searchSessionOptions(config) }),
    },
    // Failed queries are reported by the exception filter; the SQL itself only at debug level.
    logging:
      config.logLevel === 'debug' || config.logLevel === 'trace'
        ? ['error', 'warn', 'migration']
        : ['warn', 'migration'],
  };
}

/**
 * The search settings every connection starts with: the configured `hnsw.ef_search`, and
 * pgvector 0.8's relaxed iterative scan, so a filtered index scan keeps walking the graph until k
 * rows pass the filter (without a filter it never iterates: the first pass yields ef_search ≥ k
 * rows), or until it has visited `hnsw.max_scan_tuples` chunks; and the parallel workers an exact search may use (SEARCH_PARALLEL_WORKERS, 0 by default).
 * An older pgvector drops the unknown iterative_scan placeholder with a warning. A server
 * connection gets them in its startup packet (searchSessionOptions); the embedded database's one
 * session gets them when it opens (EmbeddedPostgres.start).
 */
export function searchSessionSettings(config: AppConfig): Record<string, string> {
  return {
    'hnsw.ef_search': String(config.search.hnswEfSearch),
    'hnsw.iterative_scan': 'relaxed_order',
    'hnsw.max_scan_tuples': String(config.search.hnswMaxScanTuples),
    max_parallel_workers_per_gather: String(config.search.parallelWorkers),
  };
}

/** searchSessionSettings as the `options` of a server connection's startup packet. */
export function searchSessionOptions(config: AppConfig): string {
  return Object.entries(searchSessionSettings(config))
    .map(([name, value]) => `-c ${name}=${value}`)
    .join(' ');
}

/**
 * A read replica's own DataSource: the primary's options on the replica's URL, without migrations
 * (a streaming replica receives the schema from the primary). See ReadReplicas for why each replica
 * has its own DataSource instead of TypeORM's `replication` option.
 */
export function buildReplicaDataSourceOptions(config: AppConfig, url: string): DataSourceOptions {
  const options = buildDataSourceOptions(config, { url });
  const extra = options.extra as Record<string, unknown>;
  return {
    ...options,
    migrations: [],
    migrationsRun: false,
    extra: { ...extra, application_name: 'rag-knowledge-base-replica' },
  };
}
