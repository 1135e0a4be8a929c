import { Column, Entity, Index, PrimaryColumn } from 'typeorm';

/** LangChain's collection table (langchain_postgres `CollectionStore`); the writer supplies the uuid. */
@Entity({
  name: 'langchain_pg_collection',
  comment: 'LangChain internal collection management - DO NOT modify directly',
})
@Index('langchain_pg_collection_name_key', ['name'], { unique: true })
export class CollectionEntity {
  @PrimaryColumn({
    type: 'uuid',
    primaryKeyConstraintName: 'langchain_pg_collection_pkey',
    comment: 'Collection id, supplied by the writer (no server default, as in LangChain)',
  })
  uuid: string;

  @Column({ type: 'varchar', comment: 'Unique collection name' })
  name: string;

  @Column({ type: 'jsonb', nullable: true, comment: 'Collection metadata (embedding model, dimensions, ...)' })
  cmetadata: Record<string, unknown> | null;
}
