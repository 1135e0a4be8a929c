import { ApiProperty } from '@nestjs/swagger';

const COUNTS = { type: 'object', additionalProperties: { type: 'integer', minimum: 0 } } as const;

export class DocumentsStatsDto {
  @ApiProperty({ type: 'integer', description: 'Rows in `documents`', example: 42, minimum: 0 })
  total: number;

  @ApiProperty({ ...COUNTS, description: 'Documents per document_type', example: { law: 30, decree: 12 } })
  byType: Record<string, number>;

  @ApiProperty({ ...COUNTS, description: 'Documents per category', example: { tax: 25, labour: 17 } })
  byCategory: Record<string, number>;

  @ApiProperty({
    ...COUNTS,
    description: 'Documents per status; a NULL status is counted under "(none)"',
    example: { active: 40, inactive: 2 },
  })
  byStatus: Record<string, number>;
}

export class EmbeddingsStatsDto {
  @ApiProperty({ type: 'integer', description: 'Rows in `langchain_pg_embedding` (chunks)', example: 1250, minimum: 0 })
  total: number;

  @ApiProperty({
    ...COUNTS,
    description: 'Chunks per collection name; every collection appears, with 0 when empty',
    example: { docs: 1200, archive: 50 },
  })
  byCollection: Record<string, number>;

  @ApiProperty({
    type: 'object',
    additionalProperties: { type: 'integer', nullable: true },
    description: 'Dimension of the vectors stored in each collection; null when it holds no vector',
    example: { docs: 384, archive: 1536, empty: null },
  })
  dimensions: Record<string, number | null>;
}

export class OrphansStatsDto {
  @ApiProperty({
    type: 'integer',
    description: "Chunks whose cmetadata->>'document_id' is missing or names no row of `documents`",
    example: 3,
    minimum: 0,
  })
  chunksWithoutDocument: number;

  @ApiProperty({ type: 'integer', description: 'Documents that no chunk names', example: 1, minimum: 0 })
  documentsWithoutChunks: number;

  @ApiProperty({
    type: 'integer',
    description: 'Documents whose total_chunks (NULL counts as 0) differs from the number of chunks that name them',
    example: 2,
    minimum: 0,
  })
  totalChunksMismatch: number;
}

export class SchemaStatsDto {
  @ApiProperty({
    type: 'integer',
    description: 'Rows of the TypeORM migrations table (0 when it does not exist)',
    example: 1,
  })
  appliedMigrations: number;

  @ApiProperty({
    type: 'integer',
    description: 'Migrations this build ships that the database has not applied',
    example: 0,
  })
  pendingMigrations: number;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Name of the newest applied migration, null when none is applied',
    example: 'InitialSchema1764000000000',
  })
  lastMigration: string | null;
}

export class DatabaseStatsDto {
  @ApiProperty({
    enum: ['embedded', 'server'],
    description: 'Embedded PGlite or a PostgreSQL server',
    example: 'server',
  })
  mode: 'embedded' | 'server';

  @ApiProperty({ description: 'SHOW server_version', example: '17.12 (Debian 17.12-0+deb13u1)' })
  serverVersion: string;

  @ApiProperty({
    type: String,
    nullable: true,
    description: 'Installed pgvector version, null when the extension is not installed',
    example: '0.8.1',
  })
  pgvectorVersion: string | null;
}

export class StatsResponseDto {
  @ApiProperty({ type: DocumentsStatsDto })
  documents: DocumentsStatsDto;

  @ApiProperty({ type: EmbeddingsStatsDto })
  embeddings: EmbeddingsStatsDto;

  @ApiProperty({ type: 'integer', description: 'Rows in `langchain_pg_collection`', example: 2, minimum: 0 })
  collections: number;

  @ApiProperty({ type: OrphansStatsDto })
  orphans: OrphansStatsDto;

  @ApiProperty({ type: SchemaStatsDto })
  schema: SchemaStatsDto;

  @ApiProperty({ type: DatabaseStatsDto })
  database: DatabaseStatsDto;
}
