import { ConflictException, Injectable, Logger, NotFoundException } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { assertStorableJson } from '../common/validation.js';
import { sqlState } from '../database/connection-errors.js';
import { ReadReplicas } from '../database/read-replicas.service.js';
import { ChunkOwnerChangedException, ChunkStore, retryWriteConflicts } from './chunk.store.js';
import type { CollectionResponseDto, CreateCollectionDto } from './dto/collection.dto.js';

interface CollectionRow {
  uuid: string;
  name: string;
  cmetadata: Record<string, unknown> | null;
  chunk_count: number;
  dimensions: number | null;
}

/**
 * Collections with their chunk counts and vector dimensions, from chunk_counts (AddChunkCounts): a
 * row per document of each collection, where counting the chunks themselves read every chunk and
 * every vector (100,000 chunks: 129 ms against 7; docs/PERFORMANCE.md). A collection's dimension is
 * that of the vectors last written to each of its documents, as GET /stats reports it.
 */
const COLLECTIONS_SQL = `
  SELECT c.uuid, c.name, c.cmetadata, coalesce(sum(cc.n), 0)::int AS chunk_count, min(cc.dims) AS dimensions
    FROM langchain_pg_collection c
    LEFT JOIN chunk_counts cc ON cc.collection_id = c.uuid`;

/** The same figures by reading the chunks, for a database where AddChunkCounts is still pending. */
const COLLECTIONS_SCAN_SQL = `
  SELECT c.uuid, c.name, c.cmetadata, count(e.id)::int AS chunk_count, min(vector_dims(e.embedding)) AS dimensions
    FROM langchain_pg_collection c
    LEFT JOIN langchain_pg_embedding e ON e.collection_id = c.uuid`;

function toDto(row: CollectionRow): CollectionResponseDto {
  return {
    uuid: row.uuid,
    name: row.name,
    metadata: row.cmetadata,
    chunkCount: row.chunk_count,
    dimensions: row.dimensions === null ? null : Number(row.dimensions),
  };
}

/** Work that follows a committed collection removal (its HNSW index: see VectorIndexService). */
export type CollectionRemovalListener = (collectionUuid: string, name: string) => Promise<void>;

@Injectable()
export class CollectionsService {
  private readonly logger = new Logger('Collections');
  private readonly removalListeners: CollectionRemovalListener[] = [];
  /** Whether chunk_counts (AddChunkCounts) exists, once seen: see collectionRows. */
  private chunkCountsExists = false;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly chunks: ChunkStore,
    private readonly replicas: ReadReplicas,
  ) {}

  /** Reads (list, get) go to a read replica when there are some; see ReadReplicas. */
  async list(): Promise<CollectionResponseDto[]> {
    return (await this.collectionRows('GROUP BY c.uuid ORDER BY c.name')).map(toDto);
  }

  async get(name: string): Promise<CollectionResponseDto> {
    const [found] = name.includes('\u0000')
      ? []
      : await this.collectionRows('WHERE c.name = $1 GROUP BY c.uuid', [name]);
    if (!found) throw new NotFoundException(`Collection "${name}" not found`);
    return toDto(found);
  }

  async create(dto: CreateCollectionDto): Promise<CollectionResponseDto> {
    // jsonb cannot hold U+0000 or an unpaired surrogate: a 400 naming the field rather than the database's refusal.
    assertStorableJson(dto.metadata, 'metadata');
    const created = await this.chunks.createCollection(this.dataSource.manager, dto.name, dto.metadata ?? {});
    if (!created) throw new ConflictException(`Collection "${dto.name}" already exists`);
    return { uuid: created.uuid, name: created.name, metadata: created.cmetadata, chunkCount: 0, dimensions: null };
  }

  /**
   * Deletes the collection; its chunks go by the FK cascade and their documents are recounted. The
   * documents are locked first, in the order every chunk writer locks them, and the collection row
   * after them: that row lock waits for the chunk inserts into the collection in flight and blocks
   * new ones (their foreign-key check takes a key-share lock on it). Taken the other way round, a
   * writer holding one of the documents and inserting into the collection deadlocked with the delete.
   * A document whose chunks arrived between the two reads was not locked: the transaction starts again.
   */
  async remove(name: string): Promise<void> {
    if (name.includes('\u0000')) throw new NotFoundException('Collection not found');
    const uuid = await retryWriteConflicts(() =>
      this.dataSource.transaction(async (manager) => {
        const collection = await this.chunks.findCollection(manager, name);
        if (!collection) throw new NotFoundException(`Collection "${name}" not found`);
        const documentIds = await this.chunks.documentIdsOfCollection(manager, collection.uuid);
        await this.chunks.lockDocuments(manager, documentIds);
        const locked = await manager.query<Array<{ uuid: string }>>(
          `SELECT uuid FROM langchain_pg_collection WHERE uuid = $1 FOR UPDATE`,
          [collection.uuid],
        );
        if (locked.length === 0) throw new NotFoundException(`Collection "${name}" not found`);
        const lockedDocuments = new Set(documentIds);
        const owners = await this.chunks.documentIdsOfCollection(manager, collection.uuid);
        if (owners.some((documentId) => !lockedDocuments.has(documentId))) throw new ChunkOwnerChangedException();
        await manager.query(`DELETE FROM langchain_pg_collection WHERE uuid = $1`, [collection.uuid]);
        await this.chunks.recountDocuments(manager, documentIds);
        return collection.uuid;
      }),
    );
    // After the commit: the collection is gone whatever follows. A listener that fails leaves
    // something to clean up (an orphaned index: `npm run index:prune`), not a failed DELETE.
    for (const listener of this.removalListeners) {
      await listener(uuid, name).catch((error: unknown) =>
        this.logger.warn(
          `Collection "${name}" is deleted, but what follows its removal failed: ${error instanceof Error ? error.message : String(error)}`,
        ),
      );
    }
  }

  /**
   * Runs `listener` after each committed removal. The module that owns what hangs off a collection
   * registers itself (the ask module, for HNSW indexes), so this module does not depend on it.
   */
  onRemoved(listener: CollectionRemovalListener): void {
    this.removalListeners.push(listener);
  }

  /**
   * COLLECTIONS_SQL followed by `rest`, or COLLECTIONS_SCAN_SQL while chunk_counts does not exist.
   * Its existence is asked until it exists, then remembered: migrations only add it, and should an
   * operator revert AddChunkCounts, the first statement that misses it (42P01) asks again.
   */
  private async collectionRows(rest: string, parameters: unknown[] = []): Promise<CollectionRow[]> {
    this.chunkCountsExists ||= await this.replicas
      .query<{ present: boolean }>(`SELECT to_regclass('chunk_counts') IS NOT NULL AS present`)
      .then(([row]) => row.present);
    const scan = () => this.replicas.query<CollectionRow>(`${COLLECTIONS_SCAN_SQL} ${rest}`, parameters);
    if (!this.chunkCountsExists) return scan();
    try {
      return await this.replicas.query<CollectionRow>(`${COLLECTIONS_SQL} ${rest}`, parameters);
    } catch (error) {
      if (sqlState(error) !== '42P01') throw error;
      this.chunkCountsExists = false;
      return scan();
    }
  }
}
