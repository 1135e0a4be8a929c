import type { DataSourceOptions } from 'typeorm';
import { MIGRATIONS } from '../../migrations/index.js';
import type { AppConfig } from '../config/app-config.js';
import { DocumentEntity } from '../documents/document.entity.js';
import { CollectionEntity } from '../embeddings/collection.entity.js';
import { EmbeddingEntity } from '../embeddings/embedding.entity.js';

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
      // A server-side limit on every statement, so one slow query cannot hold a connection forever.
      ...(config.database.statementTimeoutMs > 0 && !embedded
        ? { statement_timeout: config.database.statementTimeoutMs }
        : {}),
      application_name: 'rag-knowledge-base',
    },
    // Failed queries are reported by the exception filter; the SQL itself only at debug level.
    logging:
      config.logLevel === 'debug' || config.logLevel === 'trace'
        ? ['error', 'warn', 'migration']
        : ['warn', 'migration'],
  };
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
