import { Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { CollectionEntity } from './collection.entity.js';

/**
 * LangChain's chunk table (langchain_postgres `EmbeddingStore`). LangChain keeps writing to it, so
 * ids stay strings without a server default and `embedding` stays unsized (collections may differ
 * in dimension). Indexes TypeORM cannot express (jsonb_path_ops, expressions) are created by the
 * migrations and marked `synchronize: false` so schema comparison leaves them alone.
 */
@Entity({ name: 'langchain_pg_embedding', comment: 'Vector embeddings storage with metadata' })
@Index('ix_cmetadata_gin', { synchronize: false })
@Index('idx_embedding_document_type', { synchronize: false })
@Index('idx_embedding_document_id', { synchronize: false })
@Index('ix_embedding_document_fts', { synchronize: false })
@Index('ix_cmetadata_terms', { synchronize: false })
export class EmbeddingEntity {
  @PrimaryColumn({
    type: 'varchar',
    primaryKeyConstraintName: 'langchain_pg_embedding_pkey',
    comment: 'Chunk id (string; LangChain writes str(uuid4()))',
  })
  id: string;

  @Column({ name: 'collection_id', type: 'uuid', nullable: true, comment: 'Owning collection' })
  collectionId: string | null;

  @ManyToOne(() => CollectionEntity, { onDelete: 'CASCADE', nullable: true })
  @JoinColumn({
    name: 'collection_id',
    referencedColumnName: 'uuid',
    foreignKeyConstraintName: 'langchain_pg_embedding_collection_id_fkey',
  })
  collection?: Relation<CollectionEntity>;

  @Column({ type: 'vector', nullable: true, comment: 'Embedding vector (unsized; one dimension per collection)' })
  embedding: number[] | null;

  @Column({ type: 'text', nullable: true, comment: 'Chunk text' })
  document: string | null;

  @Column({ type: 'jsonb', nullable: true, comment: 'Chunk metadata (document_id, chunk_index, status, ...)' })
  cmetadata: Record<string, unknown> | null;
}
