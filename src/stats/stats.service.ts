import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { MIGRATIONS } from '../../migrations/index.js';
import { MIGRATIONS_TABLE } from '../database/data-source-options.js';
import { DatabaseRuntime } from '../database/database-runtime.js';
import { ReadReplicas } from '../database/read-replicas.service.js';
import type { DocumentsStatsDto, SchemaStatsDto, StatsResponseDto } from './dto/stats-response.dto.js';
import {
  appliedMigrationsSql,
  CHUNKS_SCAN_SQL,
  CHUNKS_SQL,
  DATABASE_SQL,
  DOCUMENTS_SQL,
  TABLES_PRESENT_SQL,
} from './stats.sql.js';

/** Key under which a NULL documents.status is counted. */
export const NULL_STATUS_KEY = '(none)';

type Count = string | number;

interface DocumentsRow {
  by_type: boolean;
  by_category: boolean;
  by_status: boolean;
  document_type: string | null;
  category: string | null;
  status: string | null;
  n: Count;
}

interface ChunksRow {
  total: Count;
  collections: Array<{ name: string; n: number; dims: number | null }>;
  chunks_without_document: Count;
  documents_without_chunks: Count;
  total_chunks_mismatch: Count;
}

@Injectable()
export class StatsService {
  constructor(
    private readonly replicas: ReadReplicas,
    private readonly runtime: DatabaseRuntime,
  ) {}

  /**
   * Every figure from one snapshot: a single REPEATABLE READ, READ ONLY transaction, on a read
   * replica when there are some (its figures may lag the primary by the replication delay).
   */
  getStats(): Promise<StatsResponseDto> {
    return this.replicas.transaction(async (manager) => {
      await manager.query(`SET TRANSACTION READ ONLY`);
      const [present] = await manager.query<Array<{ migrations: boolean; chunk_counts: boolean }>>(TABLES_PRESENT_SQL, [
        MIGRATIONS_TABLE,
      ]);
      const documents = await this.documents(manager);
      // The summary table when it exists; before its migration is applied, the same figures by a scan.
      const [chunks] = await manager.query<ChunksRow[]>(present.chunk_counts ? CHUNKS_SQL : CHUNKS_SCAN_SQL);
      const schema = await this.schema(manager, present.migrations);
      const [db] =
        await manager.query<Array<{ server_version: string; pgvector_version: string | null }>>(DATABASE_SQL);
      return {
        documents,
        embeddings: {
          total: Number(chunks.total),
          byCollection: Object.fromEntries(chunks.collections.map((c) => [c.name, Number(c.n)])),
          dimensions: Object.fromEntries(chunks.collections.map((c) => [c.name, c.dims])),
        },
        collections: chunks.collections.length,
        orphans: {
          chunksWithoutDocument: Number(chunks.chunks_without_document),
          documentsWithoutChunks: Number(chunks.documents_without_chunks),
          totalChunksMismatch: Number(chunks.total_chunks_mismatch),
        },
        schema,
        database: { mode: this.runtime.mode, serverVersion: db.server_version, pgvectorVersion: db.pgvector_version },
      };
    }, 'REPEATABLE READ');
  }

  private async documents(manager: EntityManager): Promise<DocumentsStatsDto> {
    const rows = await manager.query<DocumentsRow[]>(DOCUMENTS_SQL);
    // Without a prototype: a value named `__proto__` (or `constructor`) is a key like any other,
    // where `{}[key] = n` would set the object's prototype instead and lose that count.
    const result: DocumentsStatsDto = { total: 0, byType: counts(), byCategory: counts(), byStatus: counts() };
    // Added, not set: a NULL (legacy row) and a stored value spelled like NULL_STATUS_KEY share a key,
    // and each bucket's counts must still add up to the total.
    const add = (bucket: Record<string, number>, key: string | null, n: number): void => {
      const k = key ?? NULL_STATUS_KEY;
      bucket[k] = (bucket[k] ?? 0) + n;
    };
    for (const row of rows) {
      const n = Number(row.n);
      if (row.by_type) add(result.byType, row.document_type, n);
      else if (row.by_category) add(result.byCategory, row.category, n);
      else if (row.by_status) add(result.byStatus, row.status, n);
      else result.total = n;
    }
    return result;
  }

  private async schema(manager: EntityManager, present: boolean): Promise<SchemaStatsDto> {
    const applied = present
      ? (await manager.query<Array<{ name: string }>>(appliedMigrationsSql(MIGRATIONS_TABLE))).map((r) => r.name)
      : [];
    const appliedNames = new Set(applied);
    const known = MIGRATIONS.map((M) => new M().name);
    return {
      appliedMigrations: applied.length,
      pendingMigrations: known.filter((name) => !appliedNames.has(name)).length,
      lastMigration: applied[0] ?? null,
    };
  }
}

/** An empty map of counts by name, as a JSON object whose every key, `__proto__` included, is its own. */
function counts(): Record<string, number> {
  return Object.create(null) as Record<string, number>;
}
