import { BadRequestException, ConflictException, Inject, Injectable, Logger, NotFoundException } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import { DataSource, type EntityManager } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { assertStorableJson } from '../common/validation.js';
import { PREPARED_STATEMENTS, ReadReplicas } from '../database/read-replicas.service.js';
import {
  ChunkOwnerChangedException,
  ChunkStore,
  retryWriteConflicts,
  type TotalChunksChange,
} from '../embeddings/chunk.store.js';
import { DocumentEntity, isDocumentIdConflict } from './document.entity.js';
import {
  MAX_CHUNKS_WITH_EMBEDDINGS,
  type CreateDocumentDto,
  type DocumentChunkListDto,
  type DocumentDto,
  type DocumentListDto,
  type ListChunksQueryDto,
  type ListDocumentsQueryDto,
  MAX_RECOUNT_LISTED,
  type RecountDocumentsDto,
  type RecountResultDto,
  type UpdateDocumentDto,
} from './dto/document.dto.js';
import { GET_DOCUMENT_SQL, listDocumentsStatement } from './documents.sql.js';

/** A row of the list statement: a document and the count of all documents matching the filters. */
type DocumentPageRow = DocumentEntity & { total: number };

/** A chunk's integer chunk_index, NULL when it is missing or not an integer. */
const CHUNK_POSITION = `CASE WHEN e.cmetadata->>'chunk_index' ~ '^-?[0-9]{1,9}$'
                          THEN (e.cmetadata->>'chunk_index')::int END`;

/** Orders chunks by their integer chunk_index (a non-integer or missing index sorts last), then id. */
const CHUNK_ORDER = `${CHUNK_POSITION} NULLS LAST, e.id`;

/** Writes the changed document fields (status, document_type, category) into every chunk's cmetadata. */
const PROPAGATE_FIELDS = `UPDATE langchain_pg_embedding
    SET cmetadata = (CASE WHEN jsonb_typeof(cmetadata) = 'object' THEN cmetadata ELSE '{}'::jsonb END) || $2::jsonb
  WHERE cmetadata->>'document_id' = $1`;

/**
 * Entries a chunk's processing_metadata.status_change_history keeps: the newest. The Python service
 * appended without bound, and every chunk of a document carries the whole list, so a document whose
 * status changes often would grow each chunk's metadata (and every search answer) without end.
 */
export const STATUS_HISTORY_MAX = 100;

/**
 * Same, plus the nested status keys and one more entry in the status change history, of which the
 * newest STATUS_HISTORY_MAX ($5) are kept (a lax jsonpath range clamps to a shorter array).
 */
const PROPAGATE_STATUS = `UPDATE langchain_pg_embedding
    SET cmetadata = (CASE WHEN jsonb_typeof(cmetadata) = 'object' THEN cmetadata ELSE '{}'::jsonb END) || $2::jsonb
      || jsonb_build_object(
           'document_info',
           (CASE WHEN jsonb_typeof(cmetadata->'document_info') = 'object'
                 THEN cmetadata->'document_info' ELSE '{}'::jsonb END)
             || jsonb_build_object('document_status', $3::text),
           'processing_metadata',
           (CASE WHEN jsonb_typeof(cmetadata->'processing_metadata') = 'object'
                 THEN cmetadata->'processing_metadata' ELSE '{}'::jsonb END)
             || jsonb_build_object(
                  'processing_status', $3::text,
                  'status_change_history',
                  jsonb_path_query_array(
                    (CASE WHEN jsonb_typeof(cmetadata->'processing_metadata'->'status_change_history') = 'array'
                          THEN cmetadata->'processing_metadata'->'status_change_history' ELSE '[]'::jsonb END)
                      || jsonb_build_array($4::jsonb),
                    '$[last - $keep + 1 to last]',
                    jsonb_build_object('keep', $5::int))))
  WHERE cmetadata->>'document_id' = $1`;

/** The document fields a PATCH (and a re-ingest) may change. */
const DOCUMENT_FIELDS = ['documentName', 'documentType', 'category', 'sourceFile', 'fileName', 'status'] as const;

function toDto(e: DocumentEntity): DocumentDto {
  return {
    id: e.id,
    documentId: e.documentId,
    documentName: e.documentName,
    documentType: e.documentType,
    category: e.category,
    sourceFile: e.sourceFile,
    fileName: e.fileName,
    totalChunks: e.totalChunks,
    status: e.status,
    createdAt: e.createdAt,
    updatedAt: e.updatedAt,
  };
}

/**
 * A 409 naming the first of `ids` that a chunk of a document other than `documentId` holds. A chunk
 * of no document (no `document_id` in its metadata) is not taken: the create adopts it, as
 * ChunkStore.upsert and POST /embeddings do.
 */
async function assertChunksUntaken(manager: EntityManager, ids: string[], documentId: string): Promise<void> {
  const taken = await manager.query<Array<{ id: string }>>(
    `SELECT id FROM langchain_pg_embedding
      WHERE id = ANY($1) AND cmetadata->>'document_id' <> $2 ORDER BY id LIMIT 1`,
    [ids, documentId],
  );
  if (taken.length > 0) throw new ConflictException(`Chunk id "${taken[0].id}" already belongs to another document`);
}

/**
 * Documents locked and recounted per transaction by recountTotalChunks. Each document's recount
 * stands alone, so nothing needs them in one transaction, and a short one holds its locks (up to
 * DOCUMENT_LOCK_BUCKETS of them) and the documents' row locks only briefly.
 */
const RECOUNT_BATCH = 500;

/** documentId order as lockDocuments sorts (UTF-16 code units), for a stable response. */
function byDocumentId(a: TotalChunksChange, b: TotalChunksChange): number {
  return a.documentId < b.documentId ? -1 : a.documentId > b.documentId ? 1 : 0;
}

function notFound(documentId: string): NotFoundException {
  return new NotFoundException(`Document "${documentId}" not found`);
}

/** The 400 of a POST /documents body with more than EMBEDDINGS_MAX_BATCH chunks. */
export function tooManyChunksMessage(count: number, max: number): string {
  return `chunks must contain at most ${max} items (got ${count})`;
}

@Injectable()
export class DocumentsService {
  private readonly logger = new Logger(DocumentsService.name);

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly chunks: ChunkStore,
    private readonly replicas: ReadReplicas,
  ) {}

  /**
   * Reads (list, get, listChunks) go to a read replica when there are some; see ReadReplicas. list
   * and get are one statement each, run through ReadReplicas.query (no QueryRunner).
   */
  async list(q: ListDocumentsQueryDto): Promise<DocumentListDto> {
    const { sql, parameters, name } = listDocumentsStatement(q);
    const rows = await this.replicas.query<DocumentPageRow>(sql, parameters, name);
    // One row with null columns when the page is empty (offset past the end): only the total is real.
    const total = rows.length > 0 ? rows[0].total : 0;
    const items = rows[0]?.id === null ? [] : rows.map(toDto);
    return { items, total, limit: q.limit, offset: q.offset };
  }

  async get(documentId: string): Promise<DocumentDto> {
    const [doc] = await this.replicas.query<DocumentEntity>(
      GET_DOCUMENT_SQL,
      [documentId],
      PREPARED_STATEMENTS.getDocument,
    );
    if (!doc) throw notFound(documentId);
    return toDto(doc);
  }

  async create(dto: CreateDocumentDto): Promise<DocumentDto> {
    const drafts = dto.chunks ?? [];
    const { maxBatch, defaultCollection } = this.config.embeddings;
    // CreateDocumentBodyPipe refuses it before validation; here for any other caller.
    if (drafts.length > maxBatch) throw new BadRequestException(tooManyChunksMessage(drafts.length, maxBatch));
    // jsonb cannot hold U+0000 or an unpaired surrogate: a 400 naming the chunk, before anything is written.
    drafts.forEach((chunk, i) => assertStorableJson(chunk.metadata, `chunks.${i}.metadata`));
    const documentId = dto.documentId ?? randomUUID();
    const status = dto.status ?? 'active';
    // Vectors are computed before the transaction opens: a slow provider must not hold a connection
    // (on the embedded database, the only one). A duplicate documentId is refused before paying for them.
    if (
      drafts.some((d) => !d.embedding) &&
      (await this.dataSource.manager.exists(DocumentEntity, { where: { documentId } }))
    ) {
      throw new ConflictException(`Document "${documentId}" already exists`);
    }
    const rows = await this.chunks.complete(drafts);
    rows.forEach((row, index) => {
      row.metadata = {
        ...row.metadata,
        document_id: documentId,
        chunk_id: row.id,
        chunk_index: index,
        total_chunks: rows.length,
        document_type: dto.documentType,
        // As ingest writes it and PATCH keeps it: a filter on category finds every document's chunks.
        category: dto.category,
        status,
      };
    });
    // Vectors are computed above: the transaction may run again (retryWriteConflicts).
    return retryWriteConflicts(() =>
      this.dataSource.transaction(async (manager) => {
        // The collection before the document's lock, the order of POST /embeddings (prepareWrite):
        // the other way round, this create waited for another writer's uncommitted new collection
        // while that writer waited for this document, a deadlock (409).
        const collection =
          rows.length > 0
            ? await this.chunks.getOrCreateCollection(manager, dto.collection ?? defaultCollection)
            : null;
        // Chunks that name this documentId and arrive while it is being created wait for it.
        await this.chunks.lockDocuments(manager, [documentId]);
        if (await manager.exists(DocumentEntity, { where: { documentId } })) {
          throw new ConflictException(`Document "${documentId}" already exists`);
        }
        await manager.insert(DocumentEntity, {
          documentId,
          documentName: dto.documentName,
          documentType: dto.documentType,
          category: dto.category,
          sourceFile: dto.sourceFile,
          fileName: dto.fileName ?? (posix.basename(dto.sourceFile.replace(/\\/g, '/')) || dto.sourceFile),
          status,
          totalChunks: 0,
        });
        if (collection !== null) {
          await this.chunks.assertWritable(manager, collection, rows);
          const ids = rows.map((r) => r.id);
          await assertChunksUntaken(manager, ids, documentId);
          try {
            await this.chunks.upsert(manager, collection.uuid, rows, [documentId]);
          } catch (error) {
            // Another document took one of the ids while this create ran: name it, as the check does.
            if (error instanceof ChunkOwnerChangedException) await assertChunksUntaken(manager, ids, documentId);
            throw error;
          }
        }
        // Also without chunks in the request: chunks that already name this documentId (written
        // before it existed, by POST /embeddings or LangChain) are its chunks from now on.
        await this.chunks.recountDocuments(manager, [documentId]);
        return toDto(await this.findOrFail(manager, documentId));
      }),
    ).catch((error: unknown) => {
      // A concurrent create of the same documentId committed between the pre-check and the insert.
      if (isDocumentIdConflict(error)) {
        throw new ConflictException(`Document "${documentId}" already exists`);
      }
      throw error;
    });
  }

  async update(documentId: string, dto: UpdateDocumentDto): Promise<DocumentDto> {
    return this.dataSource.transaction(async (manager) => {
      await this.chunks.lockDocuments(manager, [documentId]);
      const doc = await this.findOrFail(manager, documentId);
      if (!(await this.writeFields(manager, doc, dto))) return toDto(doc);
      return toDto(await this.findOrFail(manager, documentId));
    });
  }

  /**
   * Writes the fields of `fields` that differ from `doc` to its row, and a changed status,
   * document_type or category into every chunk's cmetadata (a status change also to the nested
   * status keys and the status history). Nothing is written when nothing differs, so updated_at
   * stays. The caller's transaction holds the document's lock (ChunkStore.lockDocuments). Returns
   * whether anything was written. Used by PATCH and by a re-ingest that keeps the chunks.
   */
  async writeFields(manager: EntityManager, doc: DocumentEntity, fields: UpdateDocumentDto): Promise<boolean> {
    const patch: { [K in (typeof DOCUMENT_FIELDS)[number]]?: string } = {};
    for (const key of DOCUMENT_FIELDS) {
      const value = fields[key];
      if (value !== undefined && value !== doc[key]) patch[key] = value;
    }
    if (Object.keys(patch).length === 0) return false;
    await manager.update(DocumentEntity, { id: doc.id }, patch);

    // The chunks carry status, document_type and category; a status change also its history.
    const changed: Record<string, string> = {};
    if (patch.documentType !== undefined) changed.document_type = patch.documentType;
    if (patch.category !== undefined) changed.category = patch.category;
    if (patch.status !== undefined) {
      changed.status = patch.status;
      const entry = { from: doc.status, to: patch.status, changed_at: new Date().toISOString() };
      await manager.query(PROPAGATE_STATUS, [
        doc.documentId,
        JSON.stringify(changed),
        patch.status,
        JSON.stringify(entry),
        STATUS_HISTORY_MAX,
      ]);
    } else if (Object.keys(changed).length > 0) {
      await manager.query(PROPAGATE_FIELDS, [doc.documentId, JSON.stringify(changed)]);
    }
    return true;
  }

  async remove(documentId: string): Promise<void> {
    await retryWriteConflicts(() =>
      this.dataSource.transaction(async (manager) => {
        await this.chunks.lockDocuments(manager, [documentId]);
        const doc = await this.findOrFail(manager, documentId);
        await this.chunks.deleteDocumentChunks(manager, documentId);
        await manager.delete(DocumentEntity, { id: doc.id });
      }),
    );
  }

  /**
   * Sets total_chunks to the number of chunks that name the document, wherever they differ: among
   * dto.documentIds (404 naming the first unknown one, before anything is written), or among every
   * document. The service's own writes keep total_chunks exact; writers that bypass it (LangChain,
   * SQL, the Python service before adoption) do not, and GET /stats counts the differences. Each
   * batch locks its documents as chunk writers do, so a recount never races a write to them.
   */
  async recountTotalChunks(dto: RecountDocumentsDto): Promise<RecountResultDto> {
    const ids = dto.documentIds ? [...new Set(dto.documentIds)] : null;
    const checked = ids ? await this.assertDocumentsExist(ids) : await this.countDocuments();
    const mismatches = await this.chunks.totalChunksMismatches(this.dataSource.manager, ids);
    let changes = mismatches;
    if (!dto.dryRun) {
      changes = [];
      for (let i = 0; i < mismatches.length; i += RECOUNT_BATCH) {
        const batch = mismatches.slice(i, i + RECOUNT_BATCH).map((m) => m.documentId);
        const recounted = await this.dataSource.transaction(async (manager) => {
          await this.chunks.lockDocuments(manager, batch);
          return this.chunks.recountDocuments(manager, batch);
        });
        changes.push(...recounted);
      }
    }
    changes.sort(byDocumentId);
    if (!dto.dryRun && changes.length > 0) {
      // A trace for operators: counts a writer outside the service had left wrong.
      this.logger.log(`Recount corrected total_chunks of ${changes.length} of ${checked} document(s)`);
    }
    return {
      dryRun: dto.dryRun,
      checked,
      corrected: changes.length,
      documents: changes.slice(0, MAX_RECOUNT_LISTED),
    };
  }

  /** How many of `ids` exist; a 404 naming the first (in request order) that does not. */
  private async assertDocumentsExist(ids: string[]): Promise<number> {
    const rows = await this.dataSource.query<Array<{ document_id: string }>>(
      `SELECT document_id FROM documents WHERE document_id = ANY($1)`,
      [ids],
    );
    const found = new Set(rows.map((r) => r.document_id));
    const missing = ids.find((id) => !found.has(id));
    if (missing !== undefined) throw notFound(missing);
    return ids.length;
  }

  private async countDocuments(): Promise<number> {
    const [{ n }] = await this.dataSource.query<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM documents`);
    return n;
  }

  async listChunks(documentId: string, q: ListChunksQueryDto): Promise<DocumentChunkListDto> {
    if (q.includeEmbedding && q.limit > MAX_CHUNKS_WITH_EMBEDDINGS) {
      throw new BadRequestException(
        `limit must be at most ${MAX_CHUNKS_WITH_EMBEDDINGS} with includeEmbedding=true (got ${q.limit})`,
      );
    }
    // One snapshot for the document, the count and the page: on separate statements a concurrent
    // write could make `total` disagree with `items`, or a deleted document answer 200 with nothing.
    return this.replicas.transaction((manager) => this.listChunksOn(manager, documentId, q), 'REPEATABLE READ');
  }

  private async listChunksOn(
    manager: EntityManager,
    documentId: string,
    q: ListChunksQueryDto,
  ): Promise<DocumentChunkListDto> {
    await this.findOrFail(manager, documentId);
    const [{ total }] = await manager.query<Array<{ total: number }>>(
      `SELECT count(*)::int AS total FROM langchain_pg_embedding WHERE cmetadata->>'document_id' = $1`,
      [documentId],
    );
    // The page's chunks whose text and metadata fit in CHUNKS_PAGE_MAX_BYTES, measured before they are
    // sent: octet_length of a stored text reads its size, not the text; the metadata is measured as
    // the JSON it is sent as (its stored size is compressed), for the page's rows only.
    const maxBytes = this.config.http.chunksPageMaxBytes;
    const rows = await manager.query<
      Array<{
        id: string;
        collection: string | null;
        content: string | null;
        metadata: Record<string, unknown> | null;
        embedding?: string | null;
      }>
    >(
      `SELECT p.id, c.name AS collection, p.document AS content, p.cmetadata AS metadata
              ${q.includeEmbedding ? ', p.embedding::text AS embedding' : ''}
         FROM (SELECT e.id, e.collection_id, e.document, e.cmetadata${q.includeEmbedding ? ', e.embedding' : ''}, w.position, b.bytes,
                      sum(b.bytes) OVER (ORDER BY w.position NULLS LAST, e.id ROWS UNBOUNDED PRECEDING) AS upto
                 FROM (SELECT e.id, ${CHUNK_POSITION} AS position
                         FROM langchain_pg_embedding e
                        WHERE e.cmetadata->>'document_id' = $1
                        ORDER BY ${CHUNK_ORDER}
                        LIMIT $2 OFFSET $3) w
                 JOIN langchain_pg_embedding e ON e.id = w.id
                 CROSS JOIN LATERAL (SELECT coalesce(octet_length(e.document), 0)
                                            + coalesce(octet_length(e.cmetadata::text), 0) AS bytes) b) p
         LEFT JOIN langchain_pg_collection c ON c.uuid = p.collection_id
        WHERE p.upto <= $4 OR p.upto = p.bytes
        ORDER BY p.position NULLS LAST, p.id`,
      [documentId, q.limit, q.offset, maxBytes],
    );
    const expected = Math.max(0, Math.min(q.limit, total - q.offset));
    if (rows.length < expected) {
      throw new BadRequestException(
        `limit ${q.limit} is too large for these chunks: the ${rows.length + 1} chunks from offset ${q.offset} ` +
          `hold more than ${maxBytes % 2 ** 20 === 0 ? `${maxBytes / 2 ** 20} MiB` : `${maxBytes} bytes`} of text and metadata (CHUNKS_PAGE_MAX_BYTES); ask for limit=${rows.length} or less`,
      );
    }
    return {
      total,
      limit: q.limit,
      offset: q.offset,
      items: rows.map((r) => ({
        id: r.id,
        collection: r.collection,
        content: r.content,
        metadata: r.metadata,
        ...(q.includeEmbedding ? { embedding: r.embedding ? (JSON.parse(r.embedding) as number[]) : null } : {}),
      })),
    };
  }

  /**
   * One document by documentId, in the caller's transaction (writes lock and re-read it). Plain SQL
   * with the entity's property names as aliases rather than `findOne`, like `get`: TypeORM's query
   * building and hydration were the largest CPU cost of GET /documents/:documentId in the
   * benchmark profile (docs/PERFORMANCE-HISTORY.md).
   */
  private async findOrFail(manager: EntityManager, documentId: string): Promise<DocumentEntity> {
    const [doc] = await manager.query<DocumentEntity[]>(GET_DOCUMENT_SQL, [documentId]);
    if (!doc) throw notFound(documentId);
    return doc;
  }
}
