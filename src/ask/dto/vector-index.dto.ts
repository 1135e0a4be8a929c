import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsOptional, Max, Min } from 'class-validator';
import type { HnswBuildOptions } from '../vector-index.js';
import type { VectorIndexInfo } from '../vector-index.service.js';

export class VectorIndexDto implements VectorIndexInfo {
  @ApiProperty({
    example: 'docs',
    description:
      "The collection's name; '(deleted collection)' for an index left behind by a collection deleted outside the service",
  })
  collection: string;

  @ApiProperty({ example: 'ix_embedding_hnsw_6f1c2b0e5a534bde9d4c0c3d1b8d2f10' })
  name: string;

  @ApiProperty({ enum: ['vector', 'halfvec'], description: 'halfvec above 2000 dimensions' })
  type: 'vector' | 'halfvec';

  @ApiProperty({
    type: 'integer',
    example: 384,
    description: "The indexed dimension; 0 when the index's definition does not name one",
  })
  dimensions: number;

  @ApiProperty({ description: 'False while a concurrent build runs or after one failed (build again to repair)' })
  valid: boolean;

  @ApiProperty({ type: 'integer', example: 1572864 })
  sizeBytes: number;
}

/**
 * The build parameters of PUT /collections/:name/vector-index, as npm run index:create takes them.
 * Both optional: a new index gets m 16 and ef_construction 128; a built index is kept when it has
 * the ones asked for, and one built with others is a 409 (drop it first).
 */
export class BuildVectorIndexDto implements HnswBuildOptions {
  @ApiPropertyOptional({
    type: 'integer',
    minimum: 2,
    maximum: 100,
    example: 16,
    description: 'Connections per graph layer (HNSW m); a new index gets 16',
  })
  @IsOptional()
  @IsInt()
  @Min(2)
  @Max(100)
  m?: number;

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 4,
    maximum: 1000,
    example: 128,
    description: 'Candidate list size while building (ef_construction), at least 2 × m; a new index gets 128',
  })
  @IsOptional()
  @IsInt()
  @Min(4)
  @Max(1000)
  efConstruction?: number;
}
