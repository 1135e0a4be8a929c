import {
  BadRequestException,
  ConflictException,
  Inject,
  Injectable,
  NotFoundException,
  type OnModuleInit,
} from '@nestjs/common';
import { setTimeout } from 'node:timers/promises';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ChunkStore } from '../embeddings/chunk.store.js';
import { CollectionsService } from '../embeddings/collections.service.js';
import { SearchTargetCache } from './search-target.cache.js';
import {
  createIndexStatement,
  INDEXED_CAST,
  type HnswBuildOptions,
  VECTOR_INDEX_PREFIX,
  collectionUuidOf,
  HALFVEC_MAX,
  isOutOfRangeError,
  MAX_VECTOR_INDEX_DIMENSIONS,
  vectorIndexName,
  vectorIndexSpec,
  type VectorIndexSpec,
} from './vector-index.js';

export interface VectorIndexInfo {
  collection: string;
  name: string;
  type: 'vector' | 'halfvec';
  dimensions: number;
  /** False while a CONCURRENTLY build runs, or after one failed (then create again rebuilds it). */
  valid: boolean;
  sizeBytes: number;
}

interface IndexRow {
  name: string;
  collection: string | null;
  definition: string;
  valid: boolean;
  size_bytes: string;
}

/** What GET /vector-indexes shows as the collection of an index whose collection no longer exists. */
const ORPHAN_COLLECTION = '(deleted collection)';

/**
 * pgvector's HNSW build parameters when CREATE INDEX names none (the service always names both, see
 * createIndexStatement; an index built by hand or by another tool may not).
 */
const PGVECTOR_DEFAULT_M = 16;
const PGVECTOR_DEFAULT_EF_CONSTRUCTION = 64;

/** How often a build or drop waiting for another one on the same collection asks for its lock. */
const LOCK_POLL_MS = 100;

/** How long a build or drop waits for another one when HTTP_REQUEST_TIMEOUT_MS is 0 (none). */
const MAX_LOCK_WAIT_MS = 3_600_000;

/**
 * Builds, finds and drops the per-collection HNSW indexes (see vector-index.ts). DDL runs outside
 * any transaction: CREATE INDEX CONCURRENTLY refuses to run inside one.
 */
@Injectable()
export class VectorIndexService implements OnModuleInit {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly chunks: ChunkStore,
    private readonly searchTargets: SearchTargetCache,
    private readonly collections: CollectionsService,
  ) {}

  /** A deleted collection's index goes with it (DELETE /collections/:name). */
  onModuleInit(): void {
    this.collections.onRemoved(async (uuid, name) => {
      await this.dropOrphan(uuid);
      this.searchTargets.invalidate(name);
    });
  }

  async list(manager: EntityManager = this.dataSource.manager): Promise<VectorIndexInfo[]> {
    const rows = await manager.query<IndexRow[]>(
      `SELECT c.relname AS name, col.name AS collection, pg_get_indexdef(i.indexrelid) AS definition,
              i.indisvalid AS valid, pg_relation_size(i.indexrelid)::text AS size_bytes
         FROM pg_index i
         JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN langchain_pg_collection col ON replace(col.uuid::text, '-', '') = substr(c.relname, $2)
        WHERE n.nspname = current_schema() AND c.relname LIKE $1
        ORDER BY col.name NULLS LAST, c.relname`,
      [`${VECTOR_INDEX_PREFIX}%`, VECTOR_INDEX_PREFIX.length + 1],
    );
    return rows.map((r) => {
      const cast = INDEXED_CAST.exec(r.definition);
      return {
        collection: r.collection ?? ORPHAN_COLLECTION,
        name: r.name,
        type: cast?.[1] === 'halfvec' ? 'halfvec' : 'vector',
        dimensions: Number(cast?.[2] ?? 0),
        valid: r.valid,
        sizeBytes: Number(r.size_bytes),
      };
    });
  }

  /**
   * Builds the collection's HNSW index for the dimension of the vectors it holds. Idempotent: a
   * valid index of the right dimension is kept (`created: false`), unless `options` names build
   * parameters it was not built with (409); an invalid one (a failed concurrent build) or one of
   * another dimension is dropped and built again.
   */
  async create(
    collectionName: string,
    options: HnswBuildOptions = {},
  ): Promise<{ index: VectorIndexInfo; created: boolean }> {
    const collection = await this.chunks.findCollection(this.dataSource.manager, collectionName);
    if (!collection) throw new NotFoundException(`Collection "${collectionName}" not found`);
    const dimensions = await this.chunks.collectionDimension(this.dataSource.manager, collection.uuid);
    if (dimensions === null) {
      // A DELETE of the collection that committed since the lookup above left it without vectors
      // too: that is a 404, not "no vectors yet".
      if (!(await this.chunks.findCollection(this.dataSource.manager, collectionName))) {
        throw new NotFoundException(`Collection "${collectionName}" not found`);
      }
      throw new BadRequestException(
        `Collection "${collectionName}" holds no vectors yet: its dimension is unknown, so no index can be built. Add chunks first`,
      );
    }
    const [{ n: mixed }] = await this.dataSource.query<Array<{ n: number }>>(
      `SELECT count(*)::int AS n FROM langchain_pg_embedding
        WHERE collection_id = $1 AND embedding IS NOT NULL AND vector_dims(embedding) <> $2`,
      [collection.uuid, dimensions],
    );
    if (mixed > 0) {
      throw new BadRequestException(
        `Collection "${collectionName}" mixes vector dimensions (${mixed} chunks are not ${dimensions}-dimensional): one HNSW index cannot cover it`,
      );
    }
    let spec: VectorIndexSpec;
    try {
      spec = vectorIndexSpec(collection.uuid, dimensions);
    } catch (error) {
      throw new BadRequestException(`Collection "${collectionName}": ${(error as Error).message}`);
    }
    let statement: string;
    try {
      statement = createIndexStatement(spec, { ...options, concurrently: this.config.database.mode === 'server' });
    } catch (error) {
      throw new BadRequestException((error as Error).message);
    }
    let created = false;
    try {
      await this.withBuildSession(collection.uuid, async (manager) => {
        // Looked at under the collection's lock: a concurrent PUT has built the index meanwhile (then
        // this one keeps it), or a DELETE of the collection has committed (then no index is built).
        if (!(await this.chunks.findCollection(manager, collectionName))) return;
        const existing = (await this.list(manager)).find((i) => i.name === spec.name);
        if (existing?.valid && existing.dimensions === dimensions && existing.type === spec.type) {
          await this.refuseOtherParameters(manager, collectionName, spec.name, options);
          return;
        }
        if (existing) await manager.query(this.dropIndexStatement(spec.name));
        try {
          await manager.query(statement);
        } catch (error) {
          if (spec.type !== 'halfvec' || !isOutOfRangeError(error)) throw error;
          // A failed CREATE INDEX CONCURRENTLY leaves its index behind, invalid: drop it.
          await manager.query(this.dropIndexStatement(spec.name));
          throw new BadRequestException(
            `Collection "${collectionName}" holds a vector with a component beyond ±${HALFVEC_MAX}: above ${MAX_VECTOR_INDEX_DIMENSIONS} dimensions HNSW indexes half-precision (halfvec) vectors, which cannot hold it`,
          );
        }
        created = true;
      });
    } finally {
      // Searches go through the new index at once (or stop naming the dropped one).
      if (created) this.searchTargets.invalidate(collectionName);
    }
    const index = (await this.list()).find((i) => i.name === spec.name);
    if (!index) throw new NotFoundException(`Collection "${collectionName}" not found`);
    return { index, created };
  }

  /**
   * Refuses (409) build parameters that differ from those of the collection's built index: keeping
   * the index would silently ignore them, and rebuilding it is the caller's call (a build takes
   * minutes, and searches go exact meanwhile). Only the parameters asked for are compared, so a
   * plain create stays idempotent whatever the index was built with.
   */
  private async refuseOtherParameters(
    manager: EntityManager,
    collectionName: string,
    indexName: string,
    requested: HnswBuildOptions,
  ): Promise<void> {
    if (requested.m === undefined && requested.efConstruction === undefined) return;
    const built = await this.buildParameters(manager, indexName);
    const differs =
      (requested.m !== undefined && requested.m !== built.m) ||
      (requested.efConstruction !== undefined && requested.efConstruction !== built.efConstruction);
    if (!differs) return;
    const asked = [
      requested.m === undefined ? null : `m=${requested.m}`,
      requested.efConstruction === undefined ? null : `ef_construction=${requested.efConstruction}`,
    ].filter((p) => p !== null);
    throw new ConflictException(
      `Collection "${collectionName}" already has its HNSW index ${indexName}, built with m=${built.m}, ` +
        `ef_construction=${built.efConstruction}; requested ${asked.join(', ')}. To rebuild it with the requested ` +
        `parameters, drop it first: DELETE /collections/${encodeURIComponent(collectionName)}/vector-index, or ` +
        `npm run index:drop -- ${collectionOption(collectionName)}`,
    );
  }

  /** The m and ef_construction an index was built with: its reloptions, pgvector's defaults for those absent. */
  private async buildParameters(
    manager: EntityManager,
    indexName: string,
  ): Promise<{ m: number; efConstruction: number }> {
    const rows = await manager.query<Array<{ name: string; value: string }>>(
      `SELECT option_name AS name, option_value AS value
         FROM pg_class c, pg_options_to_table(c.reloptions)
        WHERE c.oid = to_regclass($1)`,
      [indexName],
    );
    const option = (name: string) => rows.find((r) => r.name === name)?.value;
    return {
      m: Number(option('m') ?? PGVECTOR_DEFAULT_M),
      efConstruction: Number(option('ef_construction') ?? PGVECTOR_DEFAULT_EF_CONSTRUCTION),
    };
  }

  /** Drops the collection's index; `dropped: false` when it had none. */
  async drop(collectionName: string): Promise<{ name: string; dropped: boolean }> {
    const collection = await this.chunks.findCollection(this.dataSource.manager, collectionName);
    if (!collection) throw new NotFoundException(`Collection "${collectionName}" not found`);
    const name = vectorIndexName(collection.uuid);
    let dropped = false;
    try {
      await this.withBuildSession(collection.uuid, async (manager) => {
        // Under the collection's lock: waits for a build of this index in progress.
        const [{ indexed }] = await manager.query<Array<{ indexed: boolean }>>(
          `SELECT to_regclass($1) IS NOT NULL AS indexed`,
          [name],
        );
        if (!indexed) return;
        await manager.query(this.dropIndexStatement(name));
        dropped = true;
      });
    } finally {
      if (dropped) this.searchTargets.invalidate(collectionName);
    }
    return { name, dropped };
  }

  /**
   * Drops the index of every collection that no longer exists: one deleted by LangChain
   * (`delete_collection`) or by SQL leaves its index behind, and nothing else removes it.
   * Returns the names dropped.
   */
  async dropOrphans(): Promise<string[]> {
    const dropped: string[] = [];
    for (const index of await this.list()) {
      const uuid = collectionUuidOf(index.name);
      if (index.collection !== ORPHAN_COLLECTION || uuid === null) continue;
      if (await this.dropOrphan(uuid)) dropped.push(index.name);
    }
    return dropped;
  }

  /** Drops the index of the collection `uuid` if the collection is gone (looked at under its lock). */
  private async dropOrphan(uuid: string): Promise<boolean> {
    const name = vectorIndexName(uuid);
    let dropped = false;
    await this.withBuildSession(uuid, async (manager) => {
      const [row] = await manager.query<Array<{ gone: boolean; indexed: boolean }>>(
        `SELECT NOT EXISTS (SELECT 1 FROM langchain_pg_collection WHERE uuid = $1) AS gone,
                to_regclass($2) IS NOT NULL AS indexed`,
        [uuid, name],
      );
      if (!row.gone || !row.indexed) return;
      await manager.query(this.dropIndexStatement(name));
      dropped = true;
    });
    return dropped;
  }

  /** DROP INDEX of a managed index (a name built by vectorIndexName), CONCURRENTLY on a server. */
  private dropIndexStatement(name: string): string {
    return `DROP INDEX ${this.config.database.mode === 'server' ? 'CONCURRENTLY ' : ''}IF EXISTS ${name}`;
  }

  /**
   * One dedicated connection, outside any transaction, holding the collection's advisory lock (so
   * two builds or a build and a drop of one collection's index run one after the other: without it
   * two concurrent PUTs both saw no index and the second CREATE failed), with the statement timeout
   * lifted (an index build on a million chunks takes minutes, far beyond the per-request limit) and
   * more memory for the build (HNSW builds much faster when the graph fits in maintenance_work_mem).
   * A session lock and session settings, because CREATE INDEX CONCURRENTLY runs outside any
   * transaction: both are released and reset before the connection goes back to the pool.
   */
  private async withBuildSession(collectionUuid: string, fn: (manager: EntityManager) => Promise<void>): Promise<void> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    const lockKey = `${VECTOR_INDEX_PREFIX}${collectionUuid}`;
    let locked = false;
    try {
      if (this.config.database.mode === 'server') {
        await runner.query(`SET statement_timeout = 0`);
        await runner.query(`SET maintenance_work_mem = '512MB'`);
      }
      // Polled, not pg_advisory_lock: a statement waiting for the lock holds a snapshot, and CREATE
      // INDEX CONCURRENTLY in the session holding the lock waits for every older snapshot to end: a
      // deadlock (answered 409). Bounded: a lock that is never released (a session a transaction
      // pooler kept after its unlock went to another backend) would keep this connection polling.
      const waitMs = this.config.http.requestTimeoutMs || MAX_LOCK_WAIT_MS;
      const deadline = Date.now() + waitMs;
      while (!locked) {
        if (Date.now() > deadline) {
          // Not a RetryableConflictException: the other build may run for minutes, and Retry-After: 1
          // would send the client straight back into the same wait.
          throw new ConflictException(
            `Another build or drop of this collection's vector index still held its lock after ${waitMs / 1000} s; retry later`,
          );
        }
        const [row] = await runner.manager.query<Array<{ locked: boolean }>>(
          `SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked`,
          [lockKey],
        );
        locked = row.locked;
        if (!locked) await setTimeout(LOCK_POLL_MS);
      }
      // The runner's manager: its queries run on this connection (the embedded database has one).
      await fn(runner.manager);
    } finally {
      if (locked) {
        await runner.query(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, [lockKey]).catch(() => undefined);
      }
      if (this.config.database.mode === 'server') await runner.query(`RESET ALL`).catch(() => undefined);
      await runner.release();
    }
  }
}

/**
 * `--collection NAME` as typed in a POSIX shell: the name quoted unless plainly safe, and attached
 * with `=` when it starts with "-" (the CLI would take it for an option).
 */
function collectionOption(name: string): string {
  const word = /^[\w.,:@%+=/-]+$/.test(name) ? name : `'${name.replace(/'/g, `'\\''`)}'`;
  return name.startsWith('-') ? `--collection=${word}` : `--collection ${word}`;
}
