import { BadRequestException, Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { isTransientConflict, RetryableConflictException } from '../common/database-exception.filter.js';
import {
  firstBeyondHalfvec,
  HALFVEC_MAX,
  isOutOfRangeError,
  MAX_VECTOR_INDEX_DIMENSIONS,
  parseIndexDefinition,
  storedDimensionSql,
  VECTOR_INDEX_PREFIX,
  vectorIndexDefinitionSql,
} from '../ask/vector-index.js';
import { CollectionEntity } from './collection.entity.js';
import { LITTLE_ENDIAN, type VectorComponents } from './dto/embedding.dto.js';
import { EMBEDDING_PROVIDER, type EmbeddingProvider } from './providers/embedding-provider.js';

/** A chunk ready to be written: id, text, metadata and its vector. */
export interface ChunkRow {
  id: string;
  content: string | null;
  metadata: Record<string, unknown>;
  embedding: VectorComponents;
}

/** A chunk as a client sends it: the id and the vector are optional. */
export interface ChunkDraft {
  id?: string;
  content: string | null;
  metadata?: Record<string, unknown>;
  embedding?: VectorComponents;
}

/** What a batch write needs to know before it writes, read by ChunkStore.prepareWrite in one round trip. */
export interface WriteTarget {
  collection: CollectionEntity;
  /** The dimension of the vectors the collection already holds; null when it holds none. */
  dimension: number | null;
  /** The documents that existing chunks with the batch's ids belong to (the upsert may move them away). */
  previousDocumentIds: string[];
}

/**
 * ChunkStore.upsert found a chunk of the batch that belongs to a document the transaction has not
 * locked: another writer created or moved that chunk after the write read the chunks' owners, and
 * overwriting it would leave that document's total_chunks wrong. Nothing of the statement is kept
 * once this is thrown (the transaction rolls back). A writer that can read the owners again retries
 * (EmbeddingsService.add); what remains is a 409.
 */
export class ChunkOwnerChangedException extends RetryableConflictException {
  constructor() {
    super('A chunk of this request was written by a concurrent request; retry');
  }
}

/** How many transactions a batch may take when its chunks keep changing owner under it. */
const MAX_WRITE_ATTEMPTS = 3;

/**
 * Runs a chunk write again, in a new transaction, when it met a chunk that another writer gave an
 * owner after the write had read the owners (ChunkOwnerChangedException: the next attempt reads
 * them again and locks that document too), when PostgreSQL cancelled it for a concurrent
 * transaction, or when its collection was deleted after it looked it up (isTransientConflict: the
 * next attempt creates the collection again). The writes it runs hold no provider call: their vectors are
 * computed before. A conflict still there after the last attempt is the 409.
 */
export async function retryWriteConflicts<T>(write: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await write();
    } catch (error) {
      // A deadlock here is typically with a writer outside the service that inserts chunks and then
      // updates documents (the Python service's order), where this service locks the document first.
      const transient = error instanceof ChunkOwnerChangedException || isTransientConflict(error);
      if (!transient || attempt >= MAX_WRITE_ATTEMPTS) throw error;
    }
  }
}

/**
 * A buffer for one binary array parameter, its header written: one dimension of `length` elements
 * of one type. Its own memory (allocUnsafeSlow), so offset 0 of the buffer is 8-byte aligned and
 * typed-array views over it can be created at any 4-byte-aligned offset.
 */
function arrayParameter(size: number, elementTypeOid: number, length: number, hasNull: boolean): Buffer {
  const out = Buffer.allocUnsafeSlow(size);
  out.writeInt32BE(1, 0); // one array dimension
  out.writeInt32BE(hasNull ? 1 : 0, 4);
  out.writeUInt32BE(elementTypeOid, 8); // array_recv rejects any other element type
  out.writeInt32BE(length, 12);
  out.writeInt32BE(1, 16); // lower bound
  return out;
}

/**
 * The vectors as one `vector[]` parameter in PostgreSQL's binary array format, each element in
 * pgvector's binary format (int16 dimension, int16 unused, big-endian float4 components). Against
 * text this spares Node formatting every component as a decimal string and the server parsing it
 * back (for 500 × 384 components that was the largest single cost of a batch), and the bytes sent
 * shrink from about 10 per component to 4. float4 is what pgvector stores, so nothing is lost.
 * Every offset is a multiple of 4 (a 20-byte header, 8-byte element headers, 4-byte components),
 * as writeVector needs.
 */
export function encodeVectorArray(vectors: ReadonlyArray<ArrayLike<number>>, vectorTypeOid: number): Buffer {
  let size = 20;
  for (const v of vectors) size += 8 + 4 * v.length;
  const out = arrayParameter(size, vectorTypeOid, vectors.length, false);
  let at = 20;
  for (const v of vectors) {
    out.writeInt32BE(4 + 4 * v.length, at);
    at = writeVector(out, at + 4, v);
  }
  return out;
}

/**
 * One vector as a `vector` parameter in pgvector's binary format (see encodeVectorArray for why
 * binary): what a search sends its query vector as, where the text `[0.1,…]` cost Node 0.12 ms
 * of formatting per 384-component query and the server its parsing.
 */
export function encodeVector(vector: ArrayLike<number>): Buffer {
  const out = Buffer.allocUnsafeSlow(4 + 4 * vector.length);
  writeVector(out, 0, vector);
  return out;
}

/**
 * Writes `v` at `at` in pgvector's binary format (int16 dimension, int16 unused, big-endian float4
 * components) and returns the offset after it. The components go in through a Float32Array view
 * (the same rounding as writeFloatBE, one native copy) and are byte-swapped in place: 5× faster
 * than writeFloatBE per component. `out` must be its own memory (allocUnsafeSlow) and `at` a
 * multiple of 4, so that the view is aligned.
 */
function writeVector(out: Buffer, at: number, v: ArrayLike<number>): number {
  out.writeInt16BE(v.length, at);
  out.writeInt16BE(0, at + 2);
  const start = at + 4;
  new Float32Array(out.buffer, out.byteOffset + start, v.length).set(v);
  // Float32Array writes in the platform's byte order; PostgreSQL wants big-endian.
  if (LITTLE_ENDIAN) out.subarray(start, start + 4 * v.length).swap32();
  return start + 4 * v.length;
}

/**
 * The condition under which a chunk write may overwrite or delete an existing chunk row: the row
 * belongs to no document, or to one of the documents the transaction has locked, given as the
 * text[] parameter `lockedParam`. Shared by ChunkStore.upsert and ChunkStore.deleteChunks.
 */
const OWNER_LOCKED_OR_NONE = (lockedParam: string): string =>
  `(langchain_pg_embedding.cmetadata->>'document_id' IS NULL
    OR langchain_pg_embedding.cmetadata->>'document_id' = ANY(${lockedParam}::text[]))`;

/**
 * The transaction-scoped lock a write of a collection's first vectors takes (see
 * ChunkStore.assertFirstVectorsDimension), keyed by the collection's uuid in $1. Every instance of
 * the service takes the same one.
 */
export const FIRST_VECTORS_LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtextextended('rag-kb:collection:' || $1::text, 0))`;

/**
 * The same lock in shared mode, taken by a write into a collection that holds vectors (see
 * ChunkStore.assertStoredVectorsDimension): such writes do not wait for each other, only for a
 * write of first vectors.
 */
export const STORED_VECTORS_LOCK_SQL = `SELECT pg_advisory_xact_lock_shared(hashtextextended('rag-kb:collection:' || $1::text, 0))`;

/**
 * Document locks (ChunkStore.lockDocuments) are advisory locks on a fixed number of buckets, the
 * bucket a hash of the documentId. PostgreSQL keeps every advisory lock in its shared lock table
 * (max_locks_per_transaction × max_connections entries, 6,400 by default) until the transaction
 * ends: a lock per document made a delete of a collection of many documents run out of it
 * ("out of shared memory", a 500 at every try) and fail every other session's locks meanwhile. A
 * transaction now holds at most this many; two documents sharing a bucket only wait for each other.
 */
export const DOCUMENT_LOCK_BUCKETS = 512;
/**
 * The first key of every document lock. Advisory locks with two int4 keys do not share their key
 * space with the one-bigint form (FIRST_VECTORS_LOCK_SQL, the migration lock).
 */
export const DOCUMENT_LOCK_CLASS = 0x7261_6b64; // 'rakd'

/** The bucket (second lock key) of a document's lock: FNV-1a over the id's UTF-16 code units. */
export function documentLockBucket(documentId: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < documentId.length; i++) {
    hash ^= documentId.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % DOCUMENT_LOCK_BUCKETS;
}

/** Built-in type oids (fixed in every PostgreSQL). */
const TEXT_OID = 25;
const VARCHAR_OID = 1043;

/**
 * Strings as one binary array parameter (`text[]`, `varchar[]`): their UTF-8 bytes as they are,
 * where the text format would quote and backslash-escape every element in Node and unescape it on
 * the server (half a megabyte of chunk text per batch of 500). Each string is encoded straight
 * into the parameter, sized for the worst case (3 UTF-8 bytes per UTF-16 code unit), instead of
 * into a buffer of its own that is then copied.
 */
export function encodeTextArray(values: Array<string | null>, elementTypeOid: number): Buffer {
  let size = 20;
  let hasNull = false;
  for (const v of values) {
    size += 4 + (v === null ? 0 : 3 * v.length);
    if (v === null) hasNull = true;
  }
  const out = arrayParameter(size, elementTypeOid, values.length, hasNull);
  let at = 20;
  for (const v of values) {
    if (v === null) {
      at = out.writeInt32BE(-1, at);
    } else {
      const length = out.write(v, at + 4);
      out.writeInt32BE(length, at);
      at += 4 + length;
    }
  }
  return out.subarray(0, at);
}

/** A document whose total_chunks a recount changed (or, in a dry run, would change). */
export interface TotalChunksChange {
  documentId: string;
  /** total_chunks as it was (null in a legacy row that never had one). */
  before: number | null;
  /** The number of chunks that name the document, in any collection. */
  after: number;
}

/**
 * The documents named in $1, each with its total_chunks (`before`) and the number of chunks naming it
 * (`n`): one count per document, a subquery the planner runs as a lookup in idx_embedding_document_id
 * whatever the statistics say (a scan per document never costs less). As a join it was planned from
 * statistics: while a table fills faster than autovacuum analyzes it, the planner took each
 * document for 0.5 % of the chunks and hashed a scan of the whole table, on every write (90–260 ms a
 * batch at 36,000 chunks, where the lookups take 2 ms; docs/PERFORMANCE.md). MATERIALIZED: each
 * count once, not once per reference to it.
 */
const COUNTS_OF_DOCUMENTS_CTE = `c AS MATERIALIZED (
   SELECT d2.document_id, d2.total_chunks AS before,
          (SELECT count(*) FROM langchain_pg_embedding e
            WHERE e.cmetadata->>'document_id' = d2.document_id)::int AS n
     FROM documents d2
    WHERE d2.document_id = ANY($1))`;

/**
 * Sets documents.total_chunks of the documents named in $1 to the number of chunks naming each,
 * where it differs, and returns them with the value before and after. NULL (a legacy row) counts
 * as 0, as in /stats: a document without chunks keeps its NULL.
 */
export const RECOUNT_DOCUMENTS_SQL = `WITH ${COUNTS_OF_DOCUMENTS_CTE}
 UPDATE documents d SET total_chunks = c.n
   FROM c
  WHERE d.document_id = c.document_id AND coalesce(d.total_chunks, 0) <> c.n
  RETURNING d.document_id AS "documentId", c.before AS "before", c.n AS "after"`;

/** Of the documents named in $1, those whose total_chunks differs from their chunks, with both values. */
export const MISMATCHES_OF_DOCUMENTS_SQL = `WITH ${COUNTS_OF_DOCUMENTS_CTE}
 SELECT c.document_id AS "documentId", c.before AS "before", c.n AS "after"
   FROM c
  WHERE coalesce(c.before, 0) <> c.n`;

/**
 * Every document whose total_chunks differs from its chunks, with both values: one scan of the
 * chunk table grouped by document_id.
 */
const ALL_MISMATCHES_SQL = `SELECT d.document_id AS "documentId", d.total_chunks AS "before", coalesce(p.n, 0)::int AS "after"
   FROM documents d
   LEFT JOIN (SELECT cmetadata->>'document_id' AS document_id, count(*)::int AS n
                FROM langchain_pg_embedding
               GROUP BY 1) p ON p.document_id = d.document_id
  WHERE d.document_id IS NOT NULL -- a legacy row before AlignLegacySchema may lack one: no chunk can name it
    AND coalesce(d.total_chunks, 0) <> coalesce(p.n, 0)`;

/**
 * The 400 for an upsert that failed because a vector has a component beyond ±65504 and the
 * collection's HNSW index (above 2000 dimensions) stores half precision, naming the first such
 * `<field>.<i>.embedding`; null for any other failure. Looked for only once the statement failed,
 * so a write pays nothing for it.
 */
function halfvecRangeProblem(error: unknown, rows: ChunkRow[], field: string): BadRequestException | null {
  if (!isOutOfRangeError(error)) return null;
  const i = rows.findIndex((r) => firstBeyondHalfvec(r.embedding) !== -1);
  if (i === -1) return null;
  return new BadRequestException(
    `${field}.${i}.embedding has a component beyond ±${HALFVEC_MAX}, which the collection's vector index cannot hold: above ${MAX_VECTOR_INDEX_DIMENSIONS} dimensions it stores half-precision (halfvec) vectors`,
  );
}

/**
 * SQL over LangChain's tables, shared by the documents and embeddings services. Every method takes
 * the EntityManager of the caller's transaction: the services own the transactions, this class
 * owns the statements. Writes go the way LangChain writes (string ids, `ON CONFLICT (id) DO UPDATE`).
 */
@Injectable()
export class ChunkStore {
  /** The oid of pgvector's type, fixed while the extension exists (dropping it drops the vector column). */
  private vectorTypeOid: number | undefined;

  constructor(@Inject(EMBEDDING_PROVIDER) private readonly provider: EmbeddingProvider) {}

  findCollection(manager: EntityManager, name: string): Promise<CollectionEntity | null> {
    return manager.findOne(CollectionEntity, { where: { name } });
  }

  /**
   * The named collection, created (with the provider's model and dimension in cmetadata) if missing.
   * A concurrent DELETE /collections may remove it between the insert that found it and the read
   * (ON CONFLICT DO NOTHING does not wait for a row locked to be deleted): then it is created again,
   * as a write arriving just after the delete would create it.
   */
  async getOrCreateCollection(
    manager: EntityManager,
    name: string,
    metadata: Record<string, unknown> = {},
  ): Promise<CollectionEntity> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const collection =
        (await this.createCollection(manager, name, metadata)) ?? (await this.findCollection(manager, name));
      if (collection) return collection;
    }
    throw new RetryableConflictException(
      `Collection "${name}" was deleted concurrently, again and again; retry the request`,
    );
  }

  /** A new collection's cmetadata: the provider's model and dimension, then the caller's keys. */
  private newCollectionMetadata(metadata: Record<string, unknown> = {}): Record<string, unknown> {
    return { embedding_model: this.provider.model, dimensions: this.provider.dimensions, ...metadata };
  }

  /**
   * Creates the named collection with getOrCreateCollection's metadata defaults; null when a
   * collection of that name already exists (also when a concurrent writer created it first).
   */
  async createCollection(
    manager: EntityManager,
    name: string,
    metadata: Record<string, unknown> = {},
  ): Promise<CollectionEntity | null> {
    // The row from RETURNING: read again, it could be gone already (a concurrent delete).
    const rows = await manager.query<CollectionEntity[]>(
      `INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO NOTHING RETURNING uuid, name, cmetadata`,
      [randomUUID(), name, this.newCollectionMetadata(metadata)],
    );
    return rows[0] ?? null;
  }

  /**
   * For a batch upsert: the named collection (created if missing, as getOrCreateCollection does), the
   * dimension of its vectors and the documents the batch's ids belong to now, in one statement instead
   * of four round trips. The statement's snapshot predates its own insert, hence the UNION ALL: the
   * new row comes from RETURNING, an existing one from the table. A collection created by a
   * concurrent writer after that snapshot is in neither; then the separate statements (each with a
   * fresh snapshot) answer.
   */
  async prepareWrite(manager: EntityManager, name: string, chunkIds: string[]): Promise<WriteTarget> {
    const [row] = await manager.query<
      Array<CollectionEntity & { dims: number | null; previous_document_ids: string[] }>
    >(
      `WITH created AS (
         INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO NOTHING
         RETURNING uuid, name, cmetadata
       ), target AS (
         SELECT uuid, name, cmetadata FROM created
         UNION ALL
         SELECT uuid, name, cmetadata FROM langchain_pg_collection WHERE name = $2
       )
       SELECT t.uuid, t.name, t.cmetadata,
              ${storedDimensionSql('t.uuid')} AS dims,
              ARRAY(SELECT DISTINCT e.cmetadata->>'document_id' FROM langchain_pg_embedding e
                     WHERE e.id = ANY($4::varchar[]) AND e.cmetadata->>'document_id' IS NOT NULL) AS previous_document_ids
         FROM target t LIMIT 1`,
      [randomUUID(), name, this.newCollectionMetadata(), chunkIds],
    );
    if (!row) {
      const collection = await this.getOrCreateCollection(manager, name);
      return {
        collection,
        dimension: await this.collectionDimension(manager, collection.uuid),
        previousDocumentIds: await this.documentIdsOfChunks(manager, chunkIds),
      };
    }
    const { dims, previous_document_ids: previousDocumentIds, ...collection } = row;
    return { collection, dimension: dims, previousDocumentIds };
  }

  /** The dimension of the vectors already stored in a collection, or null when it holds none. */
  async collectionDimension(manager: EntityManager, collectionUuid: string): Promise<number | null> {
    const [row] = await manager.query<Array<{ dims: number | null }>>(
      `SELECT ${storedDimensionSql('$1::uuid')} AS dims`,
      [collectionUuid],
    );
    return row.dims;
  }

  /**
   * Fills in missing ids (uuid4 strings, as LangChain writes them) and missing vectors (one provider
   * call). A chunk without a vector whose text is blank is the client's 400 (`field` names the
   * array): it has no meaning to embed, and OpenAI refuses an empty input in a batch (a 502 then).
   */
  async complete(drafts: ChunkDraft[], field = 'chunks'): Promise<ChunkRow[]> {
    const missing = drafts.flatMap((d, i) => (d.embedding ? [] : [i]));
    const blank = missing.find((i) => (drafts[i].content ?? '').trim() === '');
    if (blank !== undefined) {
      throw new BadRequestException(
        `${field}.${blank}.content is blank: a chunk without an embedding needs a text to compute it from`,
      );
    }
    const computed = missing.length ? await this.provider.embed(missing.map((i) => drafts[i].content ?? '')) : [];
    const byIndex = new Map(missing.map((i, k) => [i, computed[k]]));
    return drafts.map((d, i) => ({
      id: d.id ?? randomUUID(),
      content: d.content,
      metadata: d.metadata ?? {},
      embedding: d.embedding ?? byIndex.get(i)!,
    }));
  }

  /**
   * Rejects a batch whose vectors differ in dimension from each other or from what the collection
   * already holds, and a batch that names one id twice. Nothing is written before this passes.
   * The caller's transaction holds its documents' locks (lockDocuments).
   */
  async assertWritable(manager: EntityManager, collection: CollectionEntity, rows: ChunkRow[]): Promise<void> {
    this.assertUniqueIds(rows);
    if (rows.length === 0) return;
    const stored = await this.collectionDimension(manager, collection.uuid);
    if (stored !== null) this.assertDimension(collection, stored, rows);
    await (stored !== null
      ? this.assertStoredVectorsDimension(manager, collection, rows)
      : this.assertFirstVectorsDimension(manager, collection, rows));
  }

  /**
   * For a write into a collection that held vectors when the caller looked: takes the collection's
   * lock in shared mode (STORED_VECTORS_LOCK_SQL), then checks the batch against the vectors it
   * holds now. The caller's look may be out of date: another transaction may have deleted every
   * vector of the collection and written its first ones of another dimension (a re-ingest after a
   * model change), uncommitted then. That writer holds the lock exclusively, so this one waits
   * for its commit and reads its vectors; and a first-vectors writer that comes second waits for
   * this one. Without it both wrote, and every search of the collection failed. Taken after the
   * documents' locks, like the exclusive one.
   */
  async assertStoredVectorsDimension(
    manager: EntityManager,
    collection: CollectionEntity,
    rows: ChunkRow[],
  ): Promise<void> {
    if (rows.length === 0) return;
    await manager.query(STORED_VECTORS_LOCK_SQL, [collection.uuid]);
    const stored = await this.collectionDimension(manager, collection.uuid);
    // Emptied meanwhile: these are its first vectors after all (the exclusive lock, still ours to take).
    if (stored === null) await this.assertFirstVectorsDimension(manager, collection, rows);
    else this.assertDimension(collection, stored, rows);
  }

  /**
   * For a write into a collection that held no vectors when the caller looked: takes the
   * collection's write lock (FIRST_VECTORS_LOCK_SQL), then checks the batch against what the
   * collection holds now, or, still empty, against its vector index. Without the lock two writers
   * of different dimensions both saw an empty collection and both wrote, and every search of it
   * then failed; the second now waits for the first to commit and reads its vectors. Only a
   * collection's first vectors take the lock. An index built while the collection held vectors of
   * another dimension stays when they are deleted, and would refuse every row of the new ones.
   * Taken after the documents' locks, the order every chunk writer and DELETE /collections use.
   */
  async assertFirstVectorsDimension(
    manager: EntityManager,
    collection: CollectionEntity,
    rows: ChunkRow[],
  ): Promise<void> {
    if (rows.length === 0) return;
    await manager.query(FIRST_VECTORS_LOCK_SQL, [collection.uuid]);
    const [row] = await manager.query<Array<{ dims: number | null; def: string | null }>>(
      `SELECT ${storedDimensionSql('$1::uuid')} AS dims, ${vectorIndexDefinitionSql('$1::uuid', '$2', 'indisready')} AS def`,
      [collection.uuid, VECTOR_INDEX_PREFIX],
    );
    if (row.dims !== null) {
      this.assertDimension(collection, Number(row.dims), rows);
      return;
    }
    const index = parseIndexDefinition(collection.uuid, row.def);
    const i = index === null ? -1 : rows.findIndex((r) => r.embedding.length !== index.dimensions);
    if (index !== null && i !== -1) {
      throw new BadRequestException(
        `Collection "${collection.name}" holds no vectors, but its vector index was built for ${index.dimensions}-dimensional ones and item ${i} has ${rows[i].embedding.length}: drop the index first (DELETE /collections/${encodeURIComponent(collection.name)}/vector-index)`,
      );
    }
    this.assertDimension(collection, null, rows);
  }

  /** Rejects a batch that names one id twice. */
  assertUniqueIds(rows: ChunkRow[]): void {
    const seen = new Set<string>();
    for (const row of rows) {
      if (seen.has(row.id)) throw new BadRequestException(`Chunk id "${row.id}" appears more than once in the request`);
      seen.add(row.id);
    }
  }

  /** Rejects vectors whose dimension differs from `stored` (the collection's; null: the batch's first). */
  assertDimension(collection: CollectionEntity, stored: number | null, rows: ChunkRow[]): void {
    if (rows.length === 0) return;
    const expected = stored ?? rows[0].embedding.length;
    rows.forEach((row, i) => {
      if (row.embedding.length !== expected) {
        throw new BadRequestException(
          `Embedding dimension mismatch in collection "${collection.name}": it holds ${expected}-dimensional vectors, item ${i} has ${row.embedding.length}`,
        );
      }
    });
  }

  /**
   * Locks the documents that a chunk write touches, in a fixed order, before the write: two
   * transactions changing chunks of one document then run one after the other, so the recount at
   * their end always sees the other's committed chunks. A transaction-scoped advisory lock per
   * documentId comes first because a row lock cannot cover a document that is being created: chunks
   * added for it while its create has not committed would otherwise miss both recounts. The lock
   * stands for the document's bucket (DOCUMENT_LOCK_BUCKETS), so a transaction takes a bounded number.
   */
  async lockDocuments(manager: EntityManager, documentIds: Iterable<string>): Promise<void> {
    const ids = [...new Set(documentIds)].sort();
    if (ids.length === 0) return;
    const buckets = [...new Set(ids.map(documentLockBucket))].sort((a, b) => a - b);
    // WITH ORDINALITY keeps the array's (sorted) order, so every transaction locks in the same order.
    await manager.query(
      `SELECT pg_advisory_xact_lock($1, t.bucket) FROM unnest($2::int[]) WITH ORDINALITY AS t(bucket, n)`,
      [DOCUMENT_LOCK_CLASS, buckets],
    );
    await manager.query(`SELECT 1 FROM documents WHERE document_id = ANY($1) ORDER BY document_id FOR UPDATE`, [ids]);
  }

  /** The documents that the chunks of a collection belong to. */
  async documentIdsOfCollection(manager: EntityManager, collectionUuid: string): Promise<string[]> {
    const rows = await manager.query<Array<{ document_id: string }>>(
      `SELECT DISTINCT cmetadata->>'document_id' AS document_id FROM langchain_pg_embedding
        WHERE collection_id = $1 AND cmetadata->>'document_id' IS NOT NULL`,
      [collectionUuid],
    );
    return rows.map((r) => r.document_id);
  }

  /** The document ids that existing chunks with these ids belong to (an upsert may move them). */
  async documentIdsOfChunks(manager: EntityManager, chunkIds: string[]): Promise<string[]> {
    if (chunkIds.length === 0) return [];
    const rows = await manager.query<Array<{ document_id: string }>>(
      `SELECT DISTINCT cmetadata->>'document_id' AS document_id FROM langchain_pg_embedding
        WHERE id = ANY($1) AND cmetadata->>'document_id' IS NOT NULL`,
      [chunkIds],
    );
    return rows.map((r) => r.document_id);
  }

  /**
   * Upserts the rows in one statement (arrays unnested server-side: one round trip whatever the
   * batch size, and a constant number of bound parameters), the arrays in binary (encodeVectorArray,
   * encodeTextArray). `metadataJson` is each row's metadata as JSON, for a caller that has already
   * serialized it (EmbeddingsService checks its length).
   *
   * `lockedDocumentIds` are the documents this transaction has locked (lockDocuments) and will
   * recount. An existing chunk is overwritten only when it belongs to one of them or to no document;
   * otherwise ChunkOwnerChangedException. The owners a caller read before locking can be stale: a
   * chunk id that another transaction was inserting then was invisible, and the insert here waited
   * for it and would have moved it out of a document nobody recounts. ON CONFLICT evaluates the
   * condition on the row as committed, after that wait.
   */
  async upsert(
    manager: EntityManager,
    collectionUuid: string,
    rows: ChunkRow[],
    lockedDocumentIds: readonly string[],
    metadataJson: string[] = rows.map((r) => JSON.stringify(r.metadata)),
    field = 'chunks',
  ): Promise<void> {
    if (rows.length === 0) return;
    if (this.vectorTypeOid === undefined) {
      const [type] = await manager.query<Array<{ oid: string }>>(`SELECT 'vector'::regtype::oid::text AS oid`);
      this.vectorTypeOid = Number(type.oid);
    }
    // A CTE makes the statement return its count as a plain row on every driver.
    const [{ written }] = await manager
      .query<Array<{ written: number }>>(
        `WITH written AS (
         INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
         SELECT t.id, $1::uuid, t.embedding, t.document, t.cmetadata::jsonb
           FROM unnest($2::varchar[], $3::vector[], $4::text[], $5::text[]) AS t(id, embedding, document, cmetadata)
         ON CONFLICT (id) DO UPDATE SET
           collection_id = EXCLUDED.collection_id,
           embedding = EXCLUDED.embedding,
           document = EXCLUDED.document,
           cmetadata = EXCLUDED.cmetadata
         WHERE ${OWNER_LOCKED_OR_NONE('$6')}
         RETURNING 1
       )
       SELECT count(*)::int AS written FROM written`,
        [
          collectionUuid,
          encodeTextArray(
            rows.map((r) => r.id),
            VARCHAR_OID,
          ),
          encodeVectorArray(
            rows.map((r) => r.embedding),
            this.vectorTypeOid,
          ),
          encodeTextArray(
            rows.map((r) => r.content),
            TEXT_OID,
          ),
          encodeTextArray(metadataJson, TEXT_OID),
          lockedDocumentIds,
        ],
      )
      .catch((error: unknown) => {
        throw halfvecRangeProblem(error, rows, field) ?? error;
      });
    // A row the condition skipped is neither inserted nor updated.
    if (written !== rows.length) throw new ChunkOwnerChangedException();
  }

  /**
   * Deletes the chunks of `ids` that belong to one of `lockedDocumentIds` (the documents this
   * transaction has locked and will recount) or to no document, and answers the ids deleted; an id
   * no chunk has is left out. A chunk that another writer moved to some other document after the
   * caller read its owner is left alone (ChunkOwnerChangedException, nothing deleted once the
   * transaction rolls back): deleting it would make this transaction recount a document it has not
   * locked, after taking the chunk's row lock, which is the reverse of the order every other writer
   * locks in. The DELETE re-checks its condition on the row as committed, after any wait.
   */
  async deleteChunks(
    manager: EntityManager,
    ids: readonly string[],
    lockedDocumentIds: readonly string[],
  ): Promise<Set<string>> {
    // Both parts of the statement read one snapshot, so `present` is whether the chunks existed before it.
    const [{ deleted, present }] = await manager.query<Array<{ deleted: string[]; present: number }>>(
      `WITH deleted AS (
         DELETE FROM langchain_pg_embedding
          WHERE id = ANY($1::varchar[])
            AND ${OWNER_LOCKED_OR_NONE('$2')}
         RETURNING id
       )
       SELECT coalesce((SELECT array_agg(id) FROM deleted), '{}') AS deleted,
              (SELECT count(*) FROM langchain_pg_embedding WHERE id = ANY($1::varchar[]))::int AS present`,
      [ids, lockedDocumentIds],
    );
    if (present > deleted.length) throw new ChunkOwnerChangedException();
    return new Set(deleted);
  }

  /** Deletes every chunk that names the document (in any collection); callers lock the document first. */
  async deleteDocumentChunks(manager: EntityManager, documentId: string): Promise<void> {
    await manager.query(`DELETE FROM langchain_pg_embedding WHERE cmetadata->>'document_id' = $1`, [documentId]);
  }

  /**
   * The documents whose total_chunks differs from the number of chunks that name them, with both
   * values, in no particular order: among `documentIds` (one index lookup each), or among every
   * document when null. Without ids it is one scan of the chunk table grouped by document_id
   * (0.6–0.7 s at a million chunks of 384 dimensions, a 2 GB table, on the benchmark machine); it
   * counts the chunks rather than reading chunk_counts, whose triggers an operator may have
   * disabled. No locks: recountDocuments, under lockDocuments, makes the change.
   */
  totalChunksMismatches(manager: EntityManager, documentIds: string[] | null): Promise<TotalChunksChange[]> {
    return documentIds
      ? manager.query<TotalChunksChange[]>(MISMATCHES_OF_DOCUMENTS_SQL, [documentIds])
      : manager.query<TotalChunksChange[]>(ALL_MISMATCHES_SQL);
  }

  /**
   * Sets documents.total_chunks to the number of chunks that name each document, where it differs,
   * and returns those documents with the value before and after. Callers lock the documents first
   * (lockDocuments), so the value read as `before` is the one this statement replaces.
   */
  async recountDocuments(manager: EntityManager, documentIds: Iterable<string>): Promise<TotalChunksChange[]> {
    const ids = [...new Set(documentIds)];
    if (ids.length === 0) return [];
    // TypeORM returns [rows, affected] for an UPDATE.
    const [changes] = await manager.query<[TotalChunksChange[], number]>(RECOUNT_DOCUMENTS_SQL, [ids]);
    return changes;
  }
}
