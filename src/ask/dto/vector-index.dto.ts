import { ApiProperty } from '@nestjs/swagger';
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
