import { ConflictException, Injectable, NotFoundException } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource, type EntityManager } from 'typeorm';
import { ReadReplicas } from '../database/read-replicas.service.js';
import { ChunkStore } from './chunk.store.js';
import type { CollectionResponseDto, CreateCollectionDto } from './dto/collection.dto.js';

interface CollectionRow {
  uuid: string;
  name: string;
  cmetadata: Record<string, unknown> | null;
  chunk_count: number;
  dimensions: number | null;
}

/** Collections with their chunk counts and vector dimensions: one grouped query. */
const COLLECTIONS_SQL = `
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

@Injectable()
export class CollectionsService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly chunks: ChunkStore,
    private readonly replicas: ReadReplicas,
  ) {}

  /** Reads (list, get) go to a read replica when there are some; see ReadReplicas. */
  async list(): Promise<CollectionResponseDto[]> {
    const rows = await this.replicas.query<CollectionRow>(`${COLLECTIONS_SQL} GROUP BY c.uuid ORDER BY c.name`);
    return rows.map(toDto);
  }

  async get(name: string): Promise<CollectionResponseDto> {
    const found = await this.replicas.run((manager) => this.find(manager, name));
    if (!found) throw new NotFoundException(`Collection "${name}" not found`);
    return found;
  }

  async create(dto: CreateCollectionDto): Promise<CollectionResponseDto> {
    const created = await this.chunks.createCollection(this.dataSource.manager, dto.name, dto.metadata ?? {});
    if (!created) throw new ConflictException(`Collection "${dto.name}" already exists`);
    return { uuid: created.uuid, name: created.name, metadata: created.cmetadata, chunkCount: 0, dimensions: null };
  }

  /** Deletes the collection; its chunks go by the FK cascade and their documents are recounted. */
  async remove(name: string): Promise<void> {
    if (name.includes('\u0000')) throw new NotFoundException('Collection not found');
    await this.dataSource.transaction(async (manager) => {
      // Locking the collection row first blocks concurrent chunk inserts into it (they take a key-share lock).
      const [collection] = await manager.query<Array<{ uuid: string }>>(
        `SELECT uuid FROM langchain_pg_collection WHERE name = $1 FOR UPDATE`,
        [name],
      );
      if (!collection) throw new NotFoundException(`Collection "${name}" not found`);
      const rows = await manager.query<Array<{ document_id: string }>>(
        `SELECT DISTINCT cmetadata->>'document_id' AS document_id FROM langchain_pg_embedding
          WHERE collection_id = $1 AND cmetadata ? 'document_id'`,
        [collection.uuid],
      );
      const documentIds = rows.map((r) => r.document_id);
      await this.chunks.lockDocuments(manager, documentIds);
      await manager.query(`DELETE FROM langchain_pg_collection WHERE uuid = $1`, [collection.uuid]);
      await this.chunks.recountDocuments(manager, documentIds);
    });
  }

  private async find(manager: EntityManager, name: string): Promise<CollectionResponseDto | null> {
    if (name.includes('\u0000')) return null;
    const rows = await manager.query<CollectionRow[]>(`${COLLECTIONS_SQL} WHERE c.name = $1 GROUP BY c.uuid`, [name]);
    return rows[0] ? toDto(rows[0]) : null;
  }
}
