import { BadRequestException, Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { CollectionEntity } from './collection.entity.js';
import { EMBEDDING_PROVIDER, type EmbeddingProvider } from './providers/embedding-provider.js';

/** A chunk ready to be written: id, text, metadata and its vector. */
export interface ChunkRow {
  id: string;
  content: string | null;
  metadata: Record<string, unknown>;
  embedding: number[];
}

/** A chunk as a client sends it: the id and the vector are optional. */
export interface ChunkDraft {
  id?: string;
  content: string | null;
  metadata?: Record<string, unknown>;
  embedding?: number[];
}

/**
 * SQL over LangChain's tables, shared by the documents and embeddings services. Every method takes
 * the EntityManager of the caller's transaction: the services own the transactions, this class
 * owns the statements. Writes go the way LangChain writes (string ids, `ON CONFLICT (id) DO UPDATE`).
 */
@Injectable()
export class ChunkStore {
  constructor(@Inject(EMBEDDING_PROVIDER) private readonly provider: EmbeddingProvider) {}

  findCollection(manager: EntityManager, name: string): Promise<CollectionEntity | null> {
    return manager.findOne(CollectionEntity, { where: { name } });
  }

  /** The named collection, created (with the provider's model and dimension in cmetadata) if missing. */
  async getOrCreateCollection(
    manager: EntityManager,
    name: string,
    metadata: Record<string, unknown> = {},
  ): Promise<CollectionEntity> {
    await manager.query(
      `INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO NOTHING`,
      [randomUUID(), name, { embedding_model: this.provider.model, dimensions: this.provider.dimensions, ...metadata }],
    );
    return manager.findOneOrFail(CollectionEntity, { where: { name } });
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
    const rows = await manager.query<Array<{ uuid: string }>>(
      `INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES ($1, $2, $3)
       ON CONFLICT (name) DO NOTHING RETURNING uuid`,
      [randomUUID(), name, { embedding_model: this.provider.model, dimensions: this.provider.dimensions, ...metadata }],
    );
    if (rows.length === 0) return null;
    return manager.findOneOrFail(CollectionEntity, { where: { uuid: rows[0].uuid } });
  }

  /** The dimension of the vectors already stored in a collection, or null when it holds none. */
  async collectionDimension(manager: EntityManager, collectionUuid: string): Promise<number | null> {
    const rows = await manager.query<Array<{ dims: number }>>(
      `SELECT vector_dims(embedding) AS dims FROM langchain_pg_embedding
        WHERE collection_id = $1 AND embedding IS NOT NULL LIMIT 1`,
      [collectionUuid],
    );
    return rows[0]?.dims ?? null;
  }

  /** Fills in missing ids (uuid4 strings, as LangChain writes them) and missing vectors (one provider call). */
  async complete(drafts: ChunkDraft[]): Promise<ChunkRow[]> {
    const missing = drafts.flatMap((d, i) => (d.embedding ? [] : [i]));
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
   */
  async assertWritable(manager: EntityManager, collection: CollectionEntity, rows: ChunkRow[]): Promise<void> {
    const seen = new Set<string>();
    for (const row of rows) {
      if (seen.has(row.id)) throw new BadRequestException(`Chunk id "${row.id}" appears more than once in the request`);
      seen.add(row.id);
    }
    if (rows.length === 0) return;
    const expected = (await this.collectionDimension(manager, collection.uuid)) ?? rows[0].embedding.length;
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
   * added for it while its create has not committed would otherwise miss both recounts.
   */
  async lockDocuments(manager: EntityManager, documentIds: Iterable<string>): Promise<void> {
    const ids = [...new Set(documentIds)].sort();
    if (ids.length === 0) return;
    // WITH ORDINALITY keeps the array's (sorted) order, so every transaction locks in the same order.
    await manager.query(
      `SELECT pg_advisory_xact_lock(hashtextextended('rag-kb:document:' || t.id, 0))
         FROM unnest($1::text[]) WITH ORDINALITY AS t(id, n)`,
      [ids],
    );
    await manager.query(`SELECT 1 FROM documents WHERE document_id = ANY($1) ORDER BY document_id FOR UPDATE`, [ids]);
  }

  /** The document ids that existing chunks with these ids belong to (an upsert may move them). */
  async documentIdsOfChunks(manager: EntityManager, chunkIds: string[]): Promise<string[]> {
    if (chunkIds.length === 0) return [];
    const rows = await manager.query<Array<{ document_id: string }>>(
      `SELECT DISTINCT cmetadata->>'document_id' AS document_id FROM langchain_pg_embedding
        WHERE id = ANY($1) AND cmetadata ? 'document_id'`,
      [chunkIds],
    );
    return rows.map((r) => r.document_id);
  }

  /**
   * Upserts the rows in one statement (arrays unnested server-side: one round trip whatever the
   * batch size, and a constant number of bound parameters).
   */
  async upsert(manager: EntityManager, collectionUuid: string, rows: ChunkRow[]): Promise<void> {
    if (rows.length === 0) return;
    await manager.query(
      `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
       SELECT t.id, $1::uuid, t.embedding::vector, t.document, t.cmetadata::jsonb
         FROM unnest($2::varchar[], $3::text[], $4::text[], $5::text[]) AS t(id, embedding, document, cmetadata)
       ON CONFLICT (id) DO UPDATE SET
         collection_id = EXCLUDED.collection_id,
         embedding = EXCLUDED.embedding,
         document = EXCLUDED.document,
         cmetadata = EXCLUDED.cmetadata`,
      [
        collectionUuid,
        rows.map((r) => r.id),
        rows.map((r) => `[${r.embedding.join(',')}]`),
        rows.map((r) => r.content),
        rows.map((r) => JSON.stringify(r.metadata)),
      ],
    );
  }

  /** Deletes every chunk that names the document (in any collection); callers lock the document first. */
  async deleteDocumentChunks(manager: EntityManager, documentId: string): Promise<void> {
    await manager.query(`DELETE FROM langchain_pg_embedding WHERE cmetadata->>'document_id' = $1`, [documentId]);
  }

  /** Sets documents.total_chunks to the number of chunks that name each document. */
  async recountDocuments(manager: EntityManager, documentIds: Iterable<string>): Promise<void> {
    const ids = [...new Set(documentIds)];
    if (ids.length === 0) return;
    await manager.query(
      `UPDATE documents d SET total_chunks = c.n
         FROM (SELECT d2.document_id, count(e.id)::int AS n
                 FROM documents d2
                 LEFT JOIN langchain_pg_embedding e ON e.cmetadata->>'document_id' = d2.document_id
                WHERE d2.document_id = ANY($1)
                GROUP BY d2.document_id) c
        WHERE d.document_id = c.document_id AND d.total_chunks IS DISTINCT FROM c.n`,
      [ids],
    );
  }
}
