import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The baseline: exactly the schema the Python service (SQLAlchemy + langchain_postgres 0.0.15)
 * describes. On a database that service already created, do not run this: record it with
 * `npm run db:stamp` (the equivalent of `alembic stamp head`), which first verifies the tables.
 *
 * Migrations are frozen history: they never import entity code, so later entity changes cannot
 * rewrite what this migration did.
 */
export class InitialSchema1764000000000 implements MigrationInterface {
  name = 'InitialSchema1764000000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`CREATE EXTENSION IF NOT EXISTS vector`);

    await queryRunner.query(`
      CREATE TABLE documents (
        id uuid NOT NULL DEFAULT gen_random_uuid(),
        document_id varchar(255) NOT NULL,
        document_name text NOT NULL,
        category varchar(100) NOT NULL,
        document_type varchar(50) NOT NULL,
        source_file text NOT NULL,
        file_name text NOT NULL,
        total_chunks integer DEFAULT 0,
        status varchar(50) DEFAULT 'active',
        created_at timestamp without time zone NOT NULL DEFAULT now(),
        updated_at timestamp without time zone NOT NULL DEFAULT now(),
        CONSTRAINT documents_pkey PRIMARY KEY (id)
      )`);
    await queryRunner.query(`CREATE UNIQUE INDEX ix_documents_document_id ON documents (document_id)`);
    await queryRunner.query(`CREATE INDEX idx_documents_category_status ON documents (category, status)`);
    await queryRunner.query(`CREATE INDEX idx_documents_status_type ON documents (status, document_type)`);
    await queryRunner.query(`CREATE INDEX ix_documents_category ON documents (category)`);
    await queryRunner.query(`CREATE INDEX ix_documents_document_type ON documents (document_type)`);
    await queryRunner.query(`CREATE INDEX ix_documents_source_file ON documents (source_file)`);
    await queryRunner.query(`CREATE INDEX ix_documents_status ON documents (status)`);

    // Other writers (the Python service) may share the database, so updated_at is kept by the
    // database itself rather than by this service alone.
    await queryRunner.query(`
      CREATE OR REPLACE FUNCTION update_documents_updated_at() RETURNS trigger AS $$
      BEGIN
        NEW.updated_at = now();
        RETURN NEW;
      END;
      $$ LANGUAGE plpgsql`);
    await queryRunner.query(`
      CREATE TRIGGER trigger_documents_updated_at BEFORE UPDATE ON documents
      FOR EACH ROW EXECUTE FUNCTION update_documents_updated_at()`);

    await queryRunner.query(`
      CREATE TABLE langchain_pg_collection (
        uuid uuid NOT NULL,
        name varchar NOT NULL,
        cmetadata jsonb,
        CONSTRAINT langchain_pg_collection_pkey PRIMARY KEY (uuid)
      )`);
    await queryRunner.query(`CREATE UNIQUE INDEX langchain_pg_collection_name_key ON langchain_pg_collection (name)`);

    await queryRunner.query(`
      CREATE TABLE langchain_pg_embedding (
        id varchar NOT NULL,
        collection_id uuid,
        embedding vector,
        document text,
        cmetadata jsonb,
        CONSTRAINT langchain_pg_embedding_pkey PRIMARY KEY (id),
        CONSTRAINT langchain_pg_embedding_collection_id_fkey FOREIGN KEY (collection_id)
          REFERENCES langchain_pg_collection (uuid) ON DELETE CASCADE
      )`);
    await queryRunner.query(
      `CREATE INDEX ix_cmetadata_gin ON langchain_pg_embedding USING gin (cmetadata jsonb_path_ops)`,
    );
    await queryRunner.query(
      `CREATE INDEX idx_embedding_document_type ON langchain_pg_embedding ((cmetadata->>'document_type'))`,
    );
    await queryRunner.query(
      `CREATE INDEX idx_embedding_document_id ON langchain_pg_embedding ((cmetadata->>'document_id'))`,
    );

    for (const [table, column, text] of COMMENTS) {
      const target = column ? `COLUMN ${table}.${column}` : `TABLE ${table}`;
      await queryRunner.query(`COMMENT ON ${target} IS '${text.replace(/'/g, "''")}'`);
    }
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE IF EXISTS langchain_pg_embedding`);
    await queryRunner.query(`DROP TABLE IF EXISTS langchain_pg_collection`);
    await queryRunner.query(`DROP TRIGGER IF EXISTS trigger_documents_updated_at ON documents`);
    await queryRunner.query(`DROP TABLE IF EXISTS documents`);
    await queryRunner.query(`DROP FUNCTION IF EXISTS update_documents_updated_at()`);
    // The extension goes too, unless something outside this schema still uses it.
    await queryRunner.query(`
      DO $$ BEGIN
        DROP EXTENSION IF EXISTS vector;
      EXCEPTION WHEN dependent_objects_still_exist THEN
        RAISE NOTICE 'extension vector kept: other objects depend on it';
      END $$`);
  }
}

/** [table, column or null, comment]: fixed literals, never user input. */
const COMMENTS: ReadonlyArray<readonly [string, string | null, string]> = [
  ['documents', null, 'Application-level document management table'],
  ['documents', 'id', 'Primary key (UUID)'],
  [
    'documents',
    'document_id',
    'Business identifier of the document, shared with chunk metadata (cmetadata.document_id)',
  ],
  ['documents', 'document_name', 'Human-readable document name'],
  ['documents', 'category', 'Document category'],
  ['documents', 'document_type', 'Document type (e.g. law, decree, guide)'],
  ['documents', 'source_file', 'Path or URI of the source file'],
  ['documents', 'file_name', 'File name of the source file'],
  ['documents', 'total_chunks', 'Number of chunks stored for this document in langchain_pg_embedding'],
  ['documents', 'status', 'Lifecycle status: active, inactive, processing, expired or deleted'],
  ['documents', 'created_at', 'Creation time'],
  ['documents', 'updated_at', 'Last update time (also set by trigger_documents_updated_at)'],
  ['langchain_pg_collection', null, 'LangChain internal collection management - DO NOT modify directly'],
  ['langchain_pg_collection', 'uuid', 'Collection id, supplied by the writer (no server default, as in LangChain)'],
  ['langchain_pg_collection', 'name', 'Unique collection name'],
  ['langchain_pg_collection', 'cmetadata', 'Collection metadata (embedding model, dimensions, ...)'],
  ['langchain_pg_embedding', null, 'Vector embeddings storage with metadata'],
  ['langchain_pg_embedding', 'id', 'Chunk id (string; LangChain writes str(uuid4()))'],
  ['langchain_pg_embedding', 'collection_id', 'Owning collection'],
  ['langchain_pg_embedding', 'embedding', 'Embedding vector (unsized; one dimension per collection)'],
  ['langchain_pg_embedding', 'document', 'Chunk text'],
  ['langchain_pg_embedding', 'cmetadata', 'Chunk metadata (document_id, chunk_index, status, ...)'],
];
