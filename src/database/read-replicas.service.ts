import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type pg from 'pg';
import { DataSource, type DataSourceOptions, type EntityManager, QueryFailedError } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { isConnectionFailure, isRecoveryConflict, sqlState } from './connection-errors.js';
import { buildReplicaDataSourceOptions } from './data-source-options.js';
import { driverPool } from './driver-pool.js';

/** How long a replica that failed at the connection level is left out before it is tried again. */
export const REPLICA_RETRY_AFTER_MS = 5000;

/** Isolation levels a hot standby accepts (SERIALIZABLE is refused there). */
export type ReadIsolation = 'READ COMMITTED' | 'REPEATABLE READ';

/** A replica could not give a connection at all (as opposed to a query failing on it). */
class ReplicaUnreachable extends Error {
  constructor(override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
    this.name = 'ReplicaUnreachable';
  }
}

interface Replica {
  /** `replica#1`: its place in DATABASE_REPLICA_URLS, for answers to clients (the public readiness probe). */
  readonly name: string;
  /** `replica#1 (host:port)`: for logs, never the credentials. */
  readonly label: string;
  readonly dataSource: DataSource;
  initializing?: Promise<DataSource>;
  /** Date.now() before which the replica is not tried (0 = up). */
  downUntil: number;
  /** A read is trying the replica after its retry delay; the others keep skipping it meanwhile. */
  probing: boolean;
}

/**
 * Where reads that tolerate replication lag run: the replicas in DATABASE_REPLICA_URLS, round
 * robin, falling back to the next replica and finally to the primary when one cannot be reached.
 * Writes never come here; without replicas every method runs on the primary DataSource.
 *
 * Each replica has its own DataSource (built by buildReplicaDataSourceOptions) rather than using
 * TypeORM's `replication` option, because that option
 * - connects to every slave inside DataSource.initialize(), so one replica down stops the service
 *   from starting;
 * - picks a slave at random for each 'slave' QueryRunner, with no way to skip one that is down;
 * - with its default `defaultMode: 'slave'` sends every QueryBuilder/find read outside a transaction
 *   to a replica, including the read-back after a write in the same request (stale reads by surprise).
 *
 * A connection-level failure (see isConnectionFailure) marks the replica down for
 * REPLICA_RETRY_AFTER_MS and the work is retried on the next candidate; any other error is thrown
 * at once. The work callback may therefore run more than once: it must only read.
 *
 * Replicas lag behind the primary: a read right after a write may not see it yet. Clients that
 * need to read their own writes use the write's response (it is read back on the primary).
 */
@Injectable()
export class ReadReplicas implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(ReadReplicas.name);
  private readonly replicas: Replica[];
  private readonly preparedStatements: boolean;
  private nextIndex = 0;

  constructor(
    @InjectDataSource() private readonly primary: DataSource,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.replicas = config.database.replicaUrls.map((url, i) => ({
      name: `replica#${i + 1}`,
      label: `replica#${i + 1} (${describeEndpoint(url)})`,
      dataSource: new DataSource(withPrimaryTypes(buildReplicaDataSourceOptions(config, url), primary)),
      downUntil: 0,
      probing: false,
    }));
    this.preparedStatements = config.database.preparedStatements;
  }

  /** Whether reads may go to replicas at all. */
  get enabled(): boolean {
    return this.replicas.length > 0;
  }

  /** Opens the replicas' pools early; one that is down only gets a warning (reads use the others). */
  async onModuleInit(): Promise<void> {
    await Promise.all(
      this.replicas.map((replica) =>
        this.initialized(replica).then(
          () => this.logger.log(`Reads go to ${replica.label}`),
          (error: unknown) => this.markDown(replica, error),
        ),
      ),
    );
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all(
      this.replicas.map(async (replica) => {
        await replica.initializing?.catch(() => undefined);
        if (replica.dataSource.isInitialized) await replica.dataSource.destroy();
      }),
    );
  }

  /**
   * Whether each replica (by name, `replica#1`: the answer goes to clients, the host stays in the
   * logs) answers `SELECT 1` within timeoutMs (for readiness probes); does not change the routing
   * state.
   */
  ping(timeoutMs: number): Promise<Array<{ replica: string; up: boolean }>> {
    return Promise.all(
      this.replicas.map(async (replica) => {
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), timeoutMs);
        });
        const answered = this.initialized(replica)
          .then((dataSource) => dataSource.query('SELECT 1'))
          .then(
            () => true,
            () => false,
          );
        try {
          return { replica: replica.name, up: await Promise.race([answered, timedOut]) };
        } finally {
          clearTimeout(timer);
        }
      }),
    );
  }

  /**
   * One read statement, its rows as `manager.query` returns them, on a connection taken straight
   * from the driver's pool: the single-statement reads (GET /documents, GET /documents/:id,
   * GET /collections) skip TypeORM's QueryRunner, whose per-statement bookkeeping and promises were
   * about 14 % of a GET /documents/:id request's CPU (326 → 282 µs, docs/PERFORMANCE.md). Errors are the ones `manager.query` throws (QueryFailedError
   * around the driver's error), so the exception filter maps them the same way.
   *
   * With `statementName` (a constant of PREPARED_STATEMENTS) and DB_PREPARED_STATEMENTS on, the
   * statement is prepared once per connection under that name and then only bound and executed:
   * the server skips parsing and planning, half of its CPU for a lookup by key (docs/PERFORMANCE.md).
   */
  query<T = unknown>(sql: string, parameters: unknown[] = [], statementName?: PreparedStatementName): Promise<T[]> {
    const name = this.preparedStatements ? statementName : undefined;
    return this.firstAvailable(
      async (replica) =>
        pooledQuery<T>(
          await this.reachable(replica),
          { sql, parameters, name },
          (error: Error) => new ReplicaUnreachable(error),
        ),
      () => pooledQuery<T>(this.primary, { sql, parameters, name }),
    );
  }

  /** Several reads on one connection of one server (a replica's, or the primary's manager without replicas). */
  run<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.route(work);
  }

  /** Reads in one transaction on one server: for SET LOCAL, or one snapshot (REPEATABLE READ). */
  transaction<T>(work: (manager: EntityManager) => Promise<T>, isolation?: ReadIsolation): Promise<T> {
    const inTransaction = (manager: EntityManager): Promise<T> =>
      isolation ? manager.transaction(isolation, work) : manager.transaction(work);
    return this.route(inTransaction);
  }

  private route<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.firstAvailable(
      (replica) => this.onReplica(replica, work),
      () => work(this.primary.manager),
    );
  }

  /** `onReplica` on the replicas that are up, in turn, while they fail at the connection level; then `onPrimary`. */
  private firstAvailable<T>(onReplica: (replica: Replica) => Promise<T>, onPrimary: () => Promise<T>): Promise<T> {
    // Without replicas, the primary at once: no extra promise on every read (see pooledQuery).
    return this.replicas.length === 0 ? onPrimary() : this.tryReplicas(onReplica, onPrimary);
  }

  private async tryReplicas<T>(onReplica: (replica: Replica) => Promise<T>, onPrimary: () => Promise<T>): Promise<T> {
    const { ordered, probes } = this.candidates();
    try {
      return await this.tryInTurn(ordered, onReplica, onPrimary);
    } finally {
      for (const replica of probes) replica.probing = false;
    }
  }

  private async tryInTurn<T>(
    ordered: Replica[],
    onReplica: (replica: Replica) => Promise<T>,
    onPrimary: () => Promise<T>,
  ): Promise<T> {
    for (const replica of ordered) {
      try {
        const result = await onReplica(replica);
        if (replica.downUntil !== 0) {
          replica.downUntil = 0;
          this.logger.log(`${replica.label} is back`);
        }
        return result;
      } catch (error) {
        // Cancelled by the replay of the primary's changes: run elsewhere; the replica is not down.
        if (isRecoveryConflict(error)) continue;
        const failure = error instanceof ReplicaUnreachable ? error.cause : error;
        if (!(error instanceof ReplicaUnreachable) && !isConnectionFailure(error)) throw error;
        this.markDown(replica, failure);
      }
    }
    return onPrimary();
  }

  /**
   * The replicas to try, starting with the next one in round-robin order: those that are up, and
   * one whose retry delay is over if no other read is trying it (`probes`: this read's, released
   * when it is done). Every read let back at once into a replica whose host does not answer waited
   * DB_POOL_ACQUIRE_TIMEOUT_MS for it, every retry delay.
   */
  private candidates(): { ordered: Replica[]; probes: Replica[] } {
    const count = this.replicas.length;
    if (count === 0) return { ordered: [], probes: [] };
    const start = this.nextIndex;
    this.nextIndex = (start + 1) % count;
    const now = Date.now();
    const probes: Replica[] = [];
    const ordered = [...this.replicas.slice(start), ...this.replicas.slice(0, start)].filter((replica) => {
      if (replica.downUntil === 0) return true;
      if (replica.downUntil > now || replica.probing) return false;
      replica.probing = true;
      probes.push(replica);
      return true;
    });
    return { ordered, probes };
  }

  private async onReplica<T>(replica: Replica, work: (manager: EntityManager) => Promise<T>): Promise<T> {
    // Any failure to get a connection (refused, timeout, wrong password, missing database) is the
    // replica's, whatever its cause: the next server is tried.
    const runner = (await this.reachable(replica)).createQueryRunner();
    try {
      await runner.connect().catch((error: unknown) => {
        throw new ReplicaUnreachable(error);
      });
      return await work(runner.manager);
    } finally {
      await runner.release();
    }
  }

  /** The replica's initialised DataSource; a failed start is the replica's (ReplicaUnreachable). */
  private reachable(replica: Replica): Promise<DataSource> {
    return this.initialized(replica).catch((error: unknown) => {
      throw new ReplicaUnreachable(error);
    });
  }

  /** The replica's DataSource, initialised on first use; a failed start is tried again next time. */
  private initialized(replica: Replica): Promise<DataSource> {
    if (replica.dataSource.isInitialized) return Promise.resolve(replica.dataSource);
    replica.initializing ??= replica.dataSource.initialize().catch((error: unknown) => {
      replica.initializing = undefined;
      throw error;
    });
    return replica.initializing;
  }

  private markDown(replica: Replica, error: unknown): void {
    const wasUp = replica.downUntil === 0;
    replica.downUntil = Date.now() + REPLICA_RETRY_AFTER_MS;
    if (wasUp) {
      const reason = error instanceof Error ? error.message : String(error);
      this.logger.warn(
        `${replica.label} is unavailable (${reason}); reads go to the other replicas or the primary, retrying it in ${REPLICA_RETRY_AFTER_MS} ms`,
      );
    }
  }
}

/**
 * Names of the statements run prepared (ReadReplicas.query's `statementName`): a fixed list, so a
 * connection holds a bounded number, and no name ever comes from a request. A statement whose text
 * has several shapes (the list of documents: its filters and sort) takes one name per shape, the
 * base name followed by a suffix built from fixed parts (listDocumentsStatement): pg refuses one name
 * for two texts.
 */
export const PREPARED_STATEMENTS = { getDocument: 'kb_get_document', listDocuments: 'kb_list_documents' } as const;
export type PreparedStatementName =
  typeof PREPARED_STATEMENTS.getDocument | `${typeof PREPARED_STATEMENTS.listDocuments}_${string}`;

interface PooledStatement {
  readonly sql: string;
  readonly parameters: unknown[];
  /** Run as this named prepared statement (pg prepares it on the connection's first use). */
  readonly name?: string;
}

/**
 * One statement on a connection of the DataSource's pool, rows returned. A failure to get a
 * connection is rejected as `connectFailure` makes it (by default as the pool reports it, as
 * QueryRunner.connect does); a failed statement as QueryFailedError, as `manager.query` does. A
 * connection that failed other than with an error from the server is not given back to the pool.
 * The driver's callbacks inside one promise, not awaits: every promise a request creates also runs
 * the AsyncLocalStorage hooks that carry its request id into log lines.
 */
function pooledQuery<T>(
  dataSource: DataSource,
  statement: PooledStatement,
  connectFailure: (error: Error) => Error = (error) => error,
): Promise<T[]> {
  const { sql, parameters } = statement;
  return new Promise((resolve, reject) => {
    const attempt = (name: string | undefined): void => {
      const pool = driverPool(dataSource);
      if (!pool) {
        // The error TypeORM's PostgresDriver throws when it has no pool (not yet initialised, or destroyed).
        reject(connectFailure(new Error('Driver not Connected')));
        return;
      }
      pool.connect((connectError, client, release) => {
        if (connectError || !client) {
          reject(connectFailure(connectError ?? new Error('The pool gave no connection')));
          return;
        }
        const config: pg.QueryConfig = name
          ? { name, text: sql, values: parameters }
          : { text: sql, values: parameters };
        client.query<T & pg.QueryResultRow>(config, (error, result) => {
          if (!error) {
            release();
            resolve(result.rows);
          } else if (name && isStalePreparedStatement(error)) {
            // A migration changed the columns this connection's prepared statement returns: drop the
            // connection (its statement cannot be used again) and run the statement once more unprepared.
            release(error);
            attempt(undefined);
          } else {
            release(isServerError(error) ? undefined : error);
            reject(new QueryFailedError(sql, parameters, error));
          }
        });
      });
    };
    attempt(statement.name);
  });
}

/**
 * "cached plan must not change result type" (feature_not_supported): the server refuses to run a
 * prepared statement whose result columns an ALTER TABLE has changed since it was prepared.
 */
function isStalePreparedStatement(error: Error): boolean {
  return sqlState(error) === '0A000';
}

/** An error the server sent for a statement (it has a SQLSTATE): the connection itself is fine. */
function isServerError(error: unknown): boolean {
  return sqlState(error) !== undefined;
}

/** host:port/database of a postgres URL, without user or password. */
function describeEndpoint(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.host}${parsed.pathname}`;
  } catch {
    return 'unparsable URL';
  }
}

/**
 * A replica's options with the primary's type parsers: a replica serves the primary's databases
 * with their settings (`ALTER DATABASE … SET TimeZone` included), so its `timestamp` values are read
 * in the zone the primary's sessions have (readTimestampsInSessionTimeZone).
 */
function withPrimaryTypes(options: DataSourceOptions, primary: DataSource): DataSourceOptions {
  const types = (primary.options.extra as { types?: unknown } | undefined)?.types;
  return types === undefined ? options : { ...options, extra: { ...(options.extra as object), types } };
}
