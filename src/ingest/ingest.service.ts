import {
  BadGatewayException,
  BadRequestException,
  Inject,
  Injectable,
  PayloadTooLargeException,
  UnprocessableEntityException,
  UnsupportedMediaTypeException,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { createHash, randomUUID } from 'node:crypto';
import { DataSource, type EntityManager } from 'typeorm';
import {
  fieldTooLargeToIndex,
  ServiceUnavailableWithRetryAfter,
  tooLargeToIndexMessage,
} from '../common/database-exception.filter.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { DocumentEntity, type DocumentStatus, isDocumentIdConflict } from '../documents/document.entity.js';
import { DocumentsService } from '../documents/documents.service.js';
import { ChunkStore, type ChunkDraft, retryWriteConflicts } from '../embeddings/chunk.store.js';
import { EMBEDDING_PROVIDER, type EmbeddingProvider } from '../embeddings/providers/embedding-provider.js';
import { CHUNKING_VERSION, chunkText, type ChunkOptions, type TextChunk } from './chunker.js';
import { MAX_CHUNK_SIZE, MIN_CHUNK_SIZE } from './dto/ingest.dto.js';
import { InconsistentVectorLengthError, SpilledVectors } from './spilled-vectors.js';
import {
  detectFormat,
  ExtractionError,
  extractText,
  type IngestFormat,
  SUPPORTED_EXTENSIONS,
  TEXT_FORMATS,
  type TextFormat,
  textOf,
} from './text-extraction.js';

/** Retry-After of the 503 of a file that waited its whole time budget for a reader: reads take seconds. */
const READER_RETRY_AFTER_SECONDS = 5;

/** Retry-After of the 503 of a long text whose vectors found no temporary disk space: space frees slowly. */
const NO_SPILL_SPACE_RETRY_AFTER_SECONDS = 60;

/**
 * The embedding provider's 422 (a text longer than its model takes), saying what an ingest can
 * change: the chunks are the service's cut of the text, at chunkSize (INGEST_CHUNK_SIZE by default).
 */
function chunksTooLongForModel(error: unknown): never {
  if (error instanceof UnprocessableEntityException) {
    throw new UnprocessableEntityException(
      `${error.message} (here: a chunk; ingest with a smaller chunkSize, whose default is INGEST_CHUNK_SIZE)`,
    );
  }
  throw error;
}

/**
 * The vectors of a text's chunks, computed before its transaction: in memory for a text of at most
 * INGEST_EMBED_FIRST_MAX_CHUNKS chunks, in a temporary file beyond.
 */
type PrecomputedVectors = number[][] | SpilledVectors;

/**
 * The filesystem's refusals of the temporary directory: full (disk or quota), read-only (a container
 * with readOnlyRootFilesystem and no writable /tmp), missing or not writable.
 */
const SPILL_DIRECTORY_REFUSALS = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'ENOENT', 'EACCES', 'EPERM', 'ENOTDIR']);

/**
 * A 503 for a long text whose vectors the temporary directory (TMPDIR) could not take, naming why
 * (the operator's to fix: docs/OPERATIONS.md); any other error as it is.
 */
function noSpillSpace(error: unknown, total: number): never {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  if (code !== undefined && SPILL_DIRECTORY_REFUSALS.has(code)) {
    const why = code === 'ENOSPC' || code === 'EDQUOT' ? 'has no space left' : `cannot be written (${code})`;
    throw new ServiceUnavailableWithRetryAfter(
      `The service's temporary directory (INGEST_TEMP_DIR or TMPDIR) ${why} for the vectors of this text's ${total} chunks; retry later`,
      NO_SPILL_SPACE_RETRY_AFTER_SECONDS,
    );
  }
  throw error;
}

/** What IngestService.write writes: the document, its text and how it is chunked, and the vectors computed before. */
interface IngestTarget {
  documentId: string;
  collectionName: string;
  text: string;
  contentHash: string;
  options: ChunkOptions;
  total: number;
  /**
   * One per chunk; none for a re-ingest that looked unchanged, whose vectors the transaction
   * computes itself in the rare case that it is no longer unchanged under the lock.
   */
  vectors: PrecomputedVectors | undefined;
}

/** Chunks per provider call and per upsert: bounds the vectors held in memory at once. */
export const INGEST_BATCH_SIZE = 256;

/** The text's chunks, INGEST_BATCH_SIZE at a time, each batch with the index of its first chunk. */
function* chunkBatches(text: string, options: ChunkOptions): Generator<{ start: number; chunks: TextChunk[] }> {
  let batch: TextChunk[] = [];
  let start = 0;
  for (const chunk of chunkText(text, options)) {
    batch.push(chunk);
    if (batch.length === INGEST_BATCH_SIZE) {
      yield { start, chunks: batch };
      start += batch.length;
      batch = [];
    }
  }
  if (batch.length > 0) yield { start, chunks: batch };
}

/**
 * The most chunks of a text whose vectors are held in memory from before its transaction opens
 * until they are written: 2,048 chunks' vectors are about 25 MB at 1,536 dimensions (50 MB at
 * 3,072). A longer text's vectors are also computed before the transaction, batch by batch, and kept
 * in a temporary file (SpilledVectors) that the transaction reads one batch at a time.
 */
export const INGEST_EMBED_FIRST_MAX_CHUNKS = 2048;

/** One document to ingest: either a file's bytes or a text, plus the document fields. */
export interface IngestInput {
  /** The file's bytes (multipart upload, CLI). */
  buffer?: Buffer;
  /** The text itself (JSON body); read as `format`. */
  text?: string;
  /** Stored as fileName; its extension selects the format. */
  fileName?: string;
  /** The upload's Content-Type, used when the file name has no known extension. */
  mimeType?: string;
  /** Explicit format of `text`. */
  format?: TextFormat;
  /** Stored as sourceFile; the file name (or 'inline') when absent. */
  sourceFile?: string;
  documentType: string;
  category: string;
  documentId?: string;
  documentName?: string;
  collection?: string;
  chunkSize?: number;
  chunkOverlap?: number;
  status?: DocumentStatus;
}

export interface IngestResult {
  documentId: string;
  documentName: string;
  /** Chunks the document has now. */
  chunks: number;
  /** True when the stored chunks already came from the same text and chunking options. */
  skipped: boolean;
  contentHash: string;
  collection: string;
}

const ALLOWED = `allowed formats: ${SUPPORTED_EXTENSIONS.join(', ')}`;

/**
 * Chunks one ingest may write: a bound on one request's work (25 MB of text, the largest file, makes
 * about 33,000 at the default chunkSize 1000 and chunkOverlap 200).
 */
const MAX_INGEST_CHUNKS = 100_000;

/**
 * Files or text in, a document with its chunks and embeddings out: extraction, structure-aware
 * chunking, vectors from the configured provider, and one transaction for the document and all of
 * its chunks. The SQL over the chunk tables is ChunkStore's.
 */
@Injectable()
export class IngestService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly chunks: ChunkStore,
    private readonly documents: DocumentsService,
    @Inject(EMBEDDING_PROVIDER) private readonly provider: EmbeddingProvider,
  ) {}

  async ingest(input: IngestInput): Promise<IngestResult> {
    const chunkSize = input.chunkSize ?? this.config.ingest.chunkSize;
    const options: ChunkOptions = {
      chunkSize,
      // The configured overlap, but at most half of a chunkSize the request chose (see below).
      chunkOverlap: input.chunkOverlap ?? Math.min(this.config.ingest.chunkOverlap, Math.floor(chunkSize / 2)),
    };
    if (
      !Number.isInteger(options.chunkSize) ||
      options.chunkSize < MIN_CHUNK_SIZE ||
      options.chunkSize > MAX_CHUNK_SIZE
    ) {
      throw new BadRequestException(`chunkSize must be an integer from ${MIN_CHUNK_SIZE} to ${MAX_CHUNK_SIZE}`);
    }
    if (!Number.isInteger(options.chunkOverlap) || options.chunkOverlap < 0) {
      throw new BadRequestException('chunkOverlap must be a non-negative integer');
    }
    if (options.chunkOverlap * 2 > options.chunkSize) {
      // More overlap repeats most of each chunk in the next: at chunkSize 100 and chunkOverlap 99 a
      // 94 KB text made 14,974 chunks, and the request held the database for 37 s.
      throw new BadRequestException(
        `chunkOverlap (${options.chunkOverlap}) must be at most half of chunkSize (${options.chunkSize})`,
      );
    }
    const text = await this.extract(input);
    let total = 0;
    for (const chunks = chunkText(text, options); !chunks.next().done;) total += 1;
    if (total > MAX_INGEST_CHUNKS) {
      throw new PayloadTooLargeException(
        `The text makes ${total} chunks at chunkSize ${options.chunkSize}, more than the limit of ${MAX_INGEST_CHUNKS} per document: use a larger chunkSize, or split the document`,
      );
    }
    // The chunking version too: a release that chunks the same text otherwise must not skip it.
    const contentHash = createHash('sha256')
      .update(text)
      .update(`\u0000${options.chunkSize}\u0000${options.chunkOverlap}\u0000${CHUNKING_VERSION}`)
      .digest('hex');
    const documentId = input.documentId ?? randomUUID();
    const collectionName = input.collection ?? this.config.embeddings.defaultCollection;
    const target: IngestTarget = { documentId, collectionName, text, contentHash, options, total, vectors: undefined };
    target.vectors = await this.vectorsBeforeTransaction(target);
    try {
      // Run again on a deadlock or serialization failure: the vectors are computed before, so a retry
      // pays the provider nothing.
      const write = () => retryWriteConflicts(() => this.write(input, target));
      try {
        return await write();
      } catch (error) {
        // A concurrent first ingest of the same documentId committed first: now it is a re-ingest.
        if (!isDocumentIdConflict(error)) throw error;
        return await write();
      }
    } catch (error) {
      // An upload's or a text's sourceFile is its fileName: the 400 names the field the client sent.
      if (input.sourceFile === undefined && fieldTooLargeToIndex(error) === 'sourceFile') {
        throw new BadRequestException(tooLargeToIndexMessage('fileName'));
      }
      throw error;
    } finally {
      if (target.vectors instanceof SpilledVectors) await target.vectors.close();
    }
  }

  /** The document's text, or the 4xx that says why there is none. */
  private async extract(input: IngestInput): Promise<string> {
    const { maxFileBytes, readTimeoutMs, readerHeapMb } = this.config.ingest;
    try {
      if (input.text !== undefined) {
        if (Buffer.byteLength(input.text, 'utf8') > maxFileBytes) {
          throw new PayloadTooLargeException(`text is larger than the limit of ${maxFileBytes} bytes`);
        }
        return await textOf(input.text, this.textFormat(input), readTimeoutMs);
      }
      if (input.buffer === undefined) throw new BadRequestException('Either a file or text is required');
      // Before the format: an empty file is empty whatever its name or type says.
      if (input.buffer.length === 0) throw new BadRequestException('The file is empty');
      const format = detectFormat(input.fileName, input.mimeType);
      if (format === null) {
        const what = input.fileName ? `"${input.fileName}"` : `of type ${input.mimeType ?? 'unknown'}`;
        throw new UnsupportedMediaTypeException(`Unsupported file ${what}: ${ALLOWED}`);
      }
      if (input.buffer.length > maxFileBytes) {
        throw new PayloadTooLargeException(`The file is larger than the limit of ${maxFileBytes} bytes`);
      }
      return await extractText(input.buffer, format, { readTimeoutMs, readerHeapMb });
    } catch (error) {
      if (error instanceof ExtractionError) {
        switch (error.reason) {
          case 'too-large':
            throw new PayloadTooLargeException(error.message);
          case 'busy':
            throw new ServiceUnavailableWithRetryAfter(error.message, READER_RETRY_AFTER_SECONDS);
          case 'empty':
          case 'unreadable':
          case 'too-slow':
            throw new UnprocessableEntityException(error.message);
        }
      }
      throw error;
    }
  }

  private textFormat(input: IngestInput): TextFormat {
    if (input.format) return input.format;
    const byName: IngestFormat | null = input.fileName ? detectFormat(input.fileName) : null;
    if (byName === null) return 'txt';
    if ((TEXT_FORMATS as readonly string[]).includes(byName)) return byName as TextFormat;
    throw new UnsupportedMediaTypeException(
      `text cannot be read as ${byName} (fileName "${input.fileName}"): send ${TEXT_FORMATS.join(', ')} as text, ` +
        'upload other files as multipart/form-data',
    );
  }

  /**
   * The vectors of the text's chunks, computed before the transaction opens, as POST /documents
   * computes its chunks': a slow provider then holds no connection and no lock (the document's; a
   * new collection's uncommitted row and an empty collection's first-vectors lock, which every other
   * writer of that collection waits for). Beyond INGEST_EMBED_FIRST_MAX_CHUNKS they go to a
   * temporary file batch by batch, so that one batch of vectors is in memory at a time
   * (docs/INGESTION.md). None for a re-ingest that looks unchanged: it is going to be skipped
   * (decided again under the lock).
   */
  private async vectorsBeforeTransaction(target: IngestTarget): Promise<PrecomputedVectors | undefined> {
    const { documentId, collectionName, text, contentHash, options, total } = target;
    const manager = this.dataSource.manager;
    const existing = await manager.findOne(DocumentEntity, { where: { documentId } });
    if (existing && (await this.isUnchanged(manager, existing, contentHash, collectionName, total))) return undefined;
    await this.assertProviderFitsCollection(manager, collectionName);
    if (total > INGEST_EMBED_FIRST_MAX_CHUNKS) return this.spillVectors(text, options, total);
    return this.provider
      .embed(Array.from(chunkText(text, options), (chunk) => chunk.content))
      .catch(chunksTooLongForModel);
  }

  /** The vectors of a long text, computed INGEST_BATCH_SIZE chunks at a time into a temporary file. */
  private async spillVectors(text: string, options: ChunkOptions, total: number): Promise<SpilledVectors> {
    const spill = await SpilledVectors.create(this.config.ingest.tempDir).catch((error: unknown) =>
      noSpillSpace(error, total),
    );
    try {
      for (const { chunks } of chunkBatches(text, options)) {
        const vectors = await this.provider.embed(chunks.map((chunk) => chunk.content)).catch(chunksTooLongForModel);
        // Stored by position: one vector missing would give every later chunk another's vector.
        if (vectors.length !== chunks.length) {
          throw new BadGatewayException(
            `The embedding provider returned ${vectors.length} vectors for ${chunks.length} texts`,
          );
        }
        await spill.append(vectors);
      }
      return spill;
    } catch (error) {
      await spill.close();
      if (error instanceof InconsistentVectorLengthError) throw new BadGatewayException(error.message);
      return noSpillSpace(error, total);
    }
  }

  /**
   * A 400 before any vector is computed when the collection holds vectors of another dimension than
   * the provider makes (a collection the Python service filled with another model, say): the write
   * would refuse them anyway, after paying the provider for every chunk, and its message spoke of
   * "item 0" of a batch the client never sent. The write checks again under its lock.
   */
  private async assertProviderFitsCollection(manager: EntityManager, collectionName: string): Promise<void> {
    const collection = await this.chunks.findCollection(manager, collectionName);
    if (!collection) return;
    const stored = await this.chunks.collectionDimension(manager, collection.uuid);
    const { model, dimensions } = this.provider;
    if (stored === null || stored === dimensions) return;
    throw new BadRequestException(
      `Collection "${collectionName}" holds ${stored}-dimensional vectors, and the embedding model "${model}" ` +
        `makes ${dimensions}-dimensional ones: ingest into another collection, or configure the model that filled ` +
        'this one (EMBEDDINGS_PROVIDER, EMBEDDINGS_MODEL, EMBEDDINGS_DIMENSIONS)',
    );
  }

  private write(input: IngestInput, target: IngestTarget): Promise<IngestResult> {
    const { documentId, collectionName, text, contentHash, options, total, vectors } = target;
    return this.dataSource.transaction(async (manager) => {
      // The collection before the document's lock, the order of every chunk writer (see DocumentsService.create).
      const collection = await this.chunks.getOrCreateCollection(manager, collectionName);
      await this.chunks.lockDocuments(manager, [documentId]);
      const existing = await manager.findOne(DocumentEntity, { where: { documentId } });
      // Text re-sent without a file name keeps the stored name and source: "inline" must not replace
      // the path that an upload, the CLI or POST /documents gave.
      const fileName = input.fileName ?? existing?.fileName ?? 'inline';
      // The same fields whether the chunks are kept or replaced.
      const fields = {
        documentName: input.documentName ?? existing?.documentName ?? fileName,
        documentType: input.documentType,
        category: input.category,
        sourceFile: input.sourceFile ?? (input.fileName === undefined && existing ? existing.sourceFile : fileName),
        fileName,
        status: input.status ?? (existing?.status as DocumentStatus | null | undefined) ?? 'active',
      };
      if (existing && (await this.isUnchanged(manager, existing, contentHash, collectionName, total))) {
        // Same text and options: the chunks and their vectors stay; changed fields are written as PATCH does.
        await this.documents.writeFields(manager, existing, fields);
        return {
          documentId,
          documentName: fields.documentName,
          chunks: total,
          skipped: true,
          contentHash,
          collection: collectionName,
        };
      }
      if (existing) {
        await this.chunks.deleteDocumentChunks(manager, documentId);
        await manager.update(DocumentEntity, { id: existing.id }, fields);
      } else {
        await manager.insert(DocumentEntity, { documentId, ...fields, totalChunks: 0 });
      }

      // Counted first (in ingest) so every chunk can carry total_chunks; then written batch by batch,
      // so only one batch of vectors is in memory at a time.
      const base = {
        document_id: documentId,
        total_chunks: total,
        document_type: fields.documentType,
        category: fields.category,
        status: fields.status,
        content_hash: contentHash,
        // Which model made the vectors: a re-ingest after a model change must not keep them.
        embedding_model: this.provider.model,
      };
      for (const { start, chunks } of chunkBatches(text, options)) {
        const computed =
          vectors instanceof SpilledVectors
            ? await vectors.read(start, chunks.length)
            : vectors?.slice(start, start + chunks.length);
        const drafts: ChunkDraft[] = chunks.map((chunk, i) => ({
          content: chunk.content,
          metadata: { ...base, chunk_index: start + i, ...chunk.metadata },
          embedding: computed?.[i],
        }));
        const rows = await this.chunks.complete(drafts).catch(chunksTooLongForModel);
        for (const row of rows) row.metadata = { ...row.metadata, chunk_id: row.id };
        await this.chunks.assertWritable(manager, collection, rows);
        await this.chunks.upsert(manager, collection.uuid, rows, [documentId]);
      }
      await this.chunks.recountDocuments(manager, [documentId]);
      return {
        documentId,
        documentName: fields.documentName,
        chunks: total,
        skipped: false,
        contentHash,
        collection: collectionName,
      };
    });
  }

  /**
   * Whether the document's stored chunks are exactly those the text makes: every one still there,
   * from this content hash and embedded by the configured model. A chunk deleted since (DELETE
   * /embeddings/:id, which recounts total_chunks) or a model changed since makes the text write
   * them all again.
   */
  private async isUnchanged(
    manager: EntityManager,
    existing: DocumentEntity,
    contentHash: string,
    collection: string,
    total: number,
  ): Promise<boolean> {
    const stored = await this.storedChunks(manager, existing.documentId, contentHash, collection);
    return stored > 0 && stored === total && stored === existing.totalChunks;
  }

  /**
   * How many chunks of the document are stored, provided that all of them came from this content
   * hash, sit in this collection and hold vectors of the configured model and dimension; 0
   * otherwise (the document must be re-chunked and re-embedded). A chunk ingested before chunks
   * recorded their embedding_model counts as another model's.
   */
  private async storedChunks(
    manager: EntityManager,
    documentId: string,
    contentHash: string,
    collection: string,
  ): Promise<number> {
    const [row] = await manager.query<Array<{ total: number; same: number }>>(
      `SELECT count(*)::int AS total,
              count(*) FILTER (
                WHERE e.cmetadata->>'content_hash' = $2 AND c.name = $3
                  AND e.cmetadata->>'embedding_model' = $4 AND vector_dims(e.embedding) = $5
              )::int AS same
         FROM langchain_pg_embedding e
         LEFT JOIN langchain_pg_collection c ON c.uuid = e.collection_id
        WHERE e.cmetadata->>'document_id' = $1`,
      [documentId, contentHash, collection, this.provider.model, this.provider.dimensions],
    );
    return row.total === row.same ? row.total : 0;
  }
}
