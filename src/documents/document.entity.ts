import {
  Column,
  CreateDateColumn,
  Entity,
  Index,
  PrimaryGeneratedColumn,
  QueryFailedError,
  UpdateDateColumn,
} from 'typeorm';
import { sqlState } from '../database/connection-errors.js';

export const DOCUMENT_STATUSES = ['active', 'inactive', 'processing', 'expired', 'deleted'] as const;
export type DocumentStatus = (typeof DOCUMENT_STATUSES)[number];

/**
 * The application's own table, as the Python service created it. Column names, types, index names
 * and comments match that schema exactly, so `db:check` finds no difference on an adopted database.
 */
@Entity({ name: 'documents', comment: 'Application-level document management table' })
@Index('ix_documents_document_id', ['documentId'], { unique: true })
@Index('idx_documents_category_status', ['category', 'status'])
@Index('idx_documents_status_type', ['status', 'documentType'])
@Index('ix_documents_category', ['category'])
@Index('ix_documents_document_type', ['documentType'])
@Index('ix_documents_source_file', ['sourceFile'])
@Index('ix_documents_status', ['status'])
@Index('ix_documents_created_at_id', ['createdAt', 'id'])
export class DocumentEntity {
  @PrimaryGeneratedColumn('uuid', {
    primaryKeyConstraintName: 'documents_pkey',
    comment: 'Primary key (UUID)',
  })
  id: string;

  @Column({
    name: 'document_id',
    type: 'varchar',
    length: 255,
    comment: 'Business identifier of the document, shared with chunk metadata (cmetadata.document_id)',
  })
  documentId: string;

  @Column({ name: 'document_name', type: 'text', comment: 'Human-readable document name' })
  documentName: string;

  @Column({ type: 'varchar', length: 100, comment: 'Document category' })
  category: string;

  @Column({ name: 'document_type', type: 'varchar', length: 50, comment: 'Document type (e.g. law, decree, guide)' })
  documentType: string;

  @Column({ name: 'source_file', type: 'text', comment: 'Path or URI of the source file' })
  sourceFile: string;

  @Column({ name: 'file_name', type: 'text', comment: 'File name of the source file' })
  fileName: string;

  @Column({
    name: 'total_chunks',
    type: 'integer',
    nullable: true,
    default: 0,
    comment: 'Number of chunks stored for this document in langchain_pg_embedding',
  })
  totalChunks: number | null;

  @Column({
    type: 'varchar',
    length: 50,
    nullable: true,
    default: 'active',
    comment: 'Lifecycle status: active, inactive, processing, expired or deleted',
  })
  status: string | null;

  @CreateDateColumn({
    name: 'created_at',
    type: 'timestamp without time zone',
    default: () => 'now()',
    comment: 'Creation time',
  })
  createdAt: Date;

  @UpdateDateColumn({
    name: 'updated_at',
    type: 'timestamp without time zone',
    default: () => 'now()',
    comment: 'Last update time (also set by trigger_documents_updated_at)',
  })
  updatedAt: Date;
}

/** A unique violation of documentId (ix_documents_document_id): a concurrent create won the race. */
export function isDocumentIdConflict(error: unknown): boolean {
  if (!(error instanceof QueryFailedError) || sqlState(error) !== '23505') return false;
  const { constraint } = error.driverError as { constraint?: string };
  return (constraint ?? 'ix_documents_document_id') === 'ix_documents_document_id';
}
