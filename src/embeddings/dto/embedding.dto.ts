import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsObject,
  IsOptional,
  IsString,
  MaxLength,
  MinLength,
  ValidateBy,
  ValidateNested,
} from 'class-validator';
import { IsCollectionName } from './collection.dto.js';

export const MAX_CONTENT_LENGTH = 100_000;
export const MAX_EMBEDDING_DIMENSIONS = 16_000;
/** Largest magnitude a pgvector component (float4) can hold. */
export const FLOAT4_MAX = 3.4e38;
/** Upper bound of the schema; the effective limit is EMBEDDINGS_MAX_BATCH, checked by the service. */
const ABSOLUTE_MAX_ITEMS = 100_000;

/** PostgreSQL text cannot hold U+0000: reject it as a 400 rather than let the insert fail. */
export function NoNul(): PropertyDecorator {
  return ValidateBy({
    name: 'noNul',
    validator: {
      validate: (value: unknown) => typeof value !== 'string' || !value.includes('\u0000'),
      defaultMessage: () => '$property must not contain NUL characters',
    },
  });
}

/**
 * Why a value is not a pgvector value (1 to MAX_EMBEDDING_DIMENSIONS finite numbers that fit a
 * float4), in the words class-validator's own decorators use; null when it is one. One loop over the
 * array: the equivalent stack of `{ each: true }` decorators makes three validator calls per
 * component (576,000 per batch of 500 × 384-dim vectors), which was a third of the ingest CPU time.
 */
export function vectorProblem(value: unknown, property: string): string | null {
  if (!Array.isArray(value)) return `${property} must be an array`;
  if (value.length < 1) return `${property} must contain at least 1 elements`;
  if (value.length > MAX_EMBEDDING_DIMENSIONS) {
    return `${property} must contain no more than ${MAX_EMBEDDING_DIMENSIONS} elements`;
  }
  // An index, not for…of: here the iterator allocated per component (10 MB of garbage per batch of
  // 500 × 384-dimensional vectors) and took 6× as long.
  for (let i = 0; i < value.length; i++) {
    const v: unknown = value[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      return `each value in ${property} must be a number conforming to the specified constraints`;
    }
    if (v > FLOAT4_MAX) return `each value in ${property} must not be greater than ${FLOAT4_MAX}`;
    if (v < -FLOAT4_MAX) return `each value in ${property} must not be less than ${-FLOAT4_MAX}`;
  }
  return null;
}

/** A pgvector value (see vectorProblem). */
export function IsVector(): PropertyDecorator {
  return ValidateBy({
    name: 'isVector',
    validator: {
      validate: (value: unknown, args) => vectorProblem(value, args?.property ?? 'value') === null,
      defaultMessage: (args) => vectorProblem(args?.value, args?.property ?? 'value') ?? '',
    },
  });
}

export class EmbeddingItemDto {
  @ApiPropertyOptional({
    example: 'b7e6a1c2-3f4d-4e5a-8b9c-0d1e2f3a4b5c',
    description: 'Chunk id; an existing id is updated (upsert). Generated (uuid4) when absent',
  })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(255)
  @NoNul()
  id?: string;

  @ApiProperty({ example: 'Điều 1. Phạm vi điều chỉnh', maxLength: MAX_CONTENT_LENGTH })
  @IsString()
  @MaxLength(MAX_CONTENT_LENGTH)
  @NoNul()
  content: string;

  @ApiPropertyOptional({
    example: { document_id: 'law-1', chunk_index: 0 },
    description: 'Chunk metadata; document_id links the chunk to a document',
    type: 'object',
    additionalProperties: true,
  })
  @IsOptional()
  @IsObject()
  metadata?: Record<string, unknown>;

  @ApiPropertyOptional({
    example: [0.12, -0.03, 0.5],
    type: [Number],
    minItems: 1,
    maxItems: MAX_EMBEDDING_DIMENSIONS,
    description: 'The vector; computed by the configured provider when absent',
  })
  @IsOptional()
  @IsVector()
  embedding?: number[];
}

export class CreateEmbeddingsDto {
  @ApiPropertyOptional({
    example: 'docs',
    description: 'Target collection (created if missing); DEFAULT_COLLECTION when absent',
  })
  @IsOptional()
  @IsCollectionName()
  collection?: string;

  @ApiProperty({
    type: [EmbeddingItemDto],
    minItems: 1,
    description: 'At most EMBEDDINGS_MAX_BATCH (default 1000) items',
  })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(ABSOLUTE_MAX_ITEMS)
  @ValidateNested({ each: true })
  @Type(() => EmbeddingItemDto)
  items: EmbeddingItemDto[];
}

export class CreateEmbeddingsResponseDto {
  @ApiProperty({ example: ['b7e6a1c2-3f4d-4e5a-8b9c-0d1e2f3a4b5c'], type: [String] })
  ids: string[];

  @ApiProperty({ example: 1 })
  count: number;
}

export class EmbeddingResponseDto {
  @ApiProperty({ example: 'b7e6a1c2-3f4d-4e5a-8b9c-0d1e2f3a4b5c' })
  id: string;

  @ApiProperty({ example: 'docs', type: String, nullable: true, description: 'Name of the owning collection' })
  collection: string | null;

  @ApiProperty({ example: 'Điều 1. Phạm vi điều chỉnh', type: String, nullable: true })
  content: string | null;

  @ApiProperty({ example: { document_id: 'law-1' }, type: 'object', additionalProperties: true, nullable: true })
  metadata: Record<string, unknown> | null;

  @ApiProperty({ example: [0.12, -0.03, 0.5], type: [Number], nullable: true })
  embedding: number[] | null;
}
