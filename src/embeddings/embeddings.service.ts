import { BadRequestException, Inject, Injectable, NotFoundException } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { assertStorableJson } from '../common/validation.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ChunkStore, retryWriteConflicts } from './chunk.store.js';
import type {
  CreateEmbeddingsDto,
  CreateEmbeddingsResponseDto,
  DeleteEmbeddingsDto,
  DeleteEmbeddingsResponseDto,
  EmbeddingResponseDto,
} from './dto/embedding.dto.js';

const MAX_METADATA_CHARS = 100_000;

/**
 * The document a chunk's metadata names, as `cmetadata->>'document_id'` reads it: a string, or an
 * integer (whose text is the same in JavaScript and PostgreSQL). Anything else is a 400: `true`, an
 * object, or a number such as 1e21 (JavaScript's text "1e+21", PostgreSQL's "1000000000000000000000")
 * would name a document in SQL that the locks and the recount of this write did not see.
 */
function documentIdOf(metadata: Record<string, unknown> | undefined, field: string): string | null {
  const id = metadata?.document_id;
  if (id === undefined || id === null) return null;
  if (typeof id === 'string') return id;
  if (typeof id === 'number' && Number.isSafeInteger(id)) return String(id);
  throw new BadRequestException(`${field}.document_id must be a string or an integer: it names the chunk's document`);
}

/** The 400 of a POST /embeddings batch over EMBEDDINGS_MAX_BATCH items. */
export function tooManyItemsMessage(count: number, max: number): string {
  return `items must contain at most ${max} items (EMBEDDINGS_MAX_BATCH); got ${count}`;
}

@Injectable()
export class EmbeddingsService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly chunks: ChunkStore,
  ) {}

  /**
   * Upserts a batch the way LangChain does, in one transaction: vectors checked against the
   * collection's dimension before anything is written, affected documents locked and recounted.
   */
  async add(dto: CreateEmbeddingsDto): Promise<CreateEmbeddingsResponseDto> {
    const max = this.config.embeddings.maxBatch;
    // EmbeddingsBodyPipe refuses it before validation; here for any other caller.
    if (dto.items.length > max) throw new BadRequestException(tooManyItemsMessage(dto.items.length, max));
    // Serialized once: the length check and the upsert use the same text.
    const metadataJson = dto.items.map((item, i) => {
      const json = JSON.stringify(item.metadata ?? {});
      // JSON.stringify writes U+0000 as the escape \u0000, an unpaired surrogate as \udXXX and a
      // number beyond a double's range as null: without any of those texts there is nothing to look for.
      if (json.includes('\\u0000') || json.includes('\\ud') || json.includes('null')) {
        assertStorableJson(item.metadata, `items.${i}.metadata`);
      }
      if (json.length > MAX_METADATA_CHARS) {
        throw new BadRequestException(`items.${i}.metadata must be at most ${MAX_METADATA_CHARS} characters as JSON`);
      }
      return json;
    });
    const named = dto.items
      .map((item, i) => documentIdOf(item.metadata, `items.${i}.metadata`))
      .filter((d): d is string => d !== null);
    const collectionName = dto.collection ?? this.config.embeddings.defaultCollection;
    // Vectors are computed before the transaction opens: a slow provider must not hold a connection.
    const rows = await this.chunks.complete(dto.items, 'items');
    this.chunks.assertUniqueIds(rows);
    const ids = rows.map((r) => r.id);
    await retryWriteConflicts(() =>
      this.dataSource.transaction(async (manager) => {
        const { collection, dimension, previousDocumentIds } = await this.chunks.prepareWrite(
          manager,
          collectionName,
          ids,
        );
        this.chunks.assertDimension(collection, dimension, rows);
        const documentIds = [...new Set([...named, ...previousDocumentIds])];
        await this.chunks.lockDocuments(manager, documentIds);
        await (dimension === null
          ? this.chunks.assertFirstVectorsDimension(manager, collection, rows)
          : this.chunks.assertStoredVectorsDimension(manager, collection, rows));
        await this.chunks.upsert(manager, collection.uuid, rows, documentIds, metadataJson, 'items');
        await this.chunks.recountDocuments(manager, documentIds);
      }),
    );
    return { ids: rows.map((r) => r.id), count: rows.length };
  }

  async get(id: string): Promise<EmbeddingResponseDto> {
    if (id.includes('\u0000')) throw new NotFoundException('Embedding not found');
    const [row] = await this.dataSource.query<
      Array<{
        id: string;
        collection: string | null;
        document: string | null;
        cmetadata: Record<string, unknown> | null;
        embedding: string | null;
      }>
    >(
      `SELECT e.id, c.name AS collection, e.document, e.cmetadata, e.embedding::text AS embedding
         FROM langchain_pg_embedding e
         LEFT JOIN langchain_pg_collection c ON c.uuid = e.collection_id
        WHERE e.id = $1`,
      [id],
    );
    if (!row) throw new NotFoundException(`Embedding "${id}" not found`);
    return {
      id: row.id,
      collection: row.collection,
      content: row.document,
      metadata: row.cmetadata,
      embedding: row.embedding === null ? null : (JSON.parse(row.embedding) as number[]),
    };
  }

  /** Deletes one chunk (removeMany); a 404 when no chunk has the id. */
  async remove(id: string): Promise<void> {
    if (id.includes('\u0000')) throw new NotFoundException('Embedding not found');
    const { deleted } = await this.removeMany({ ids: [id] });
    if (deleted.length === 0) throw new NotFoundException(`Embedding "${id}" not found`);
  }

  /**
   * Deletes the chunks of dto.ids and recounts their documents in one transaction, the documents
   * locked first; a chunk moved to another document meanwhile is read and locked again
   * (retryWriteConflicts). Ids no chunk has are answered as not found.
   */
  async removeMany(dto: Readonly<DeleteEmbeddingsDto>): Promise<DeleteEmbeddingsResponseDto> {
    const ids = [...new Set(dto.ids)];
    const deleted = await retryWriteConflicts(() =>
      this.dataSource.transaction(async (manager) => {
        // Documents are locked before the chunk rows are touched, in the order every chunk writer uses.
        const owners = await this.chunks.documentIdsOfChunks(manager, ids);
        await this.chunks.lockDocuments(manager, owners);
        const gone = await this.chunks.deleteChunks(manager, ids, owners);
        if (gone.size > 0) await this.chunks.recountDocuments(manager, owners);
        return gone;
      }),
    );
    return { deleted: ids.filter((id) => deleted.has(id)), notFound: ids.filter((id) => !deleted.has(id)) };
  }
}
