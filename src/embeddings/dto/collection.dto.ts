import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsString, Matches } from 'class-validator';
import { COLLECTION_NAME, COLLECTION_NAME_MESSAGE } from '../../common/collection-name.js';
import { IsJsonObject, IsOptionalNotNull, StorableText } from '../../common/validation.js';

/**
 * The name of a collection POST /collections creates: also not `.` or `..`, which as a path segment
 * (GET /collections/:name, its Location) URL parsers resolve away, even percent-encoded. Fields
 * that name a collection in a body (a search, a write) keep COLLECTION_NAME: an adopted collection
 * of such a name stays searchable and writable.
 */
const NEW_COLLECTION_NAME = /^(?!\.{1,2}$)/u;

/** A collection name (COLLECTION_NAME), without NUL or unpaired surrogates. */
export function IsCollectionName(): PropertyDecorator {
  return applyDecorators(IsString(), Matches(COLLECTION_NAME, { message: COLLECTION_NAME_MESSAGE }), StorableText());
}

export class CreateCollectionDto {
  @ApiProperty({
    example: 'luat-thue',
    minLength: 1,
    maxLength: 500,
    description: 'Unique collection name, 1-500 characters, not all whitespace, not . or ..',
  })
  @IsCollectionName()
  @Matches(NEW_COLLECTION_NAME, { message: 'name must not be . or .. (a path segment cannot carry it)' })
  name: string;

  @ApiPropertyOptional({
    example: { embedding_model: 'local-hash-ngram-384', dimensions: 384 },
    description: "Collection metadata; embedding_model and dimensions default to the configured provider's",
    type: 'object',
    additionalProperties: true,
  })
  @IsOptionalNotNull()
  @IsJsonObject()
  metadata?: Record<string, unknown>;
}

export class CollectionResponseDto {
  @ApiProperty({ example: '9f1c1f0e-5a53-4bde-9d4c-0c3d1b8d2f10' })
  uuid: string;

  @ApiProperty({ example: 'docs' })
  name: string;

  @ApiProperty({
    example: { embedding_model: 'local-hash-ngram-384', dimensions: 384 },
    type: 'object',
    additionalProperties: true,
    nullable: true,
  })
  metadata: Record<string, unknown> | null;

  @ApiProperty({ type: 'integer', example: 42, description: 'Number of chunks in the collection' })
  chunkCount: number;

  @ApiProperty({
    example: 384,
    type: 'integer',
    nullable: true,
    description: 'Dimension of the stored vectors; null when the collection holds none',
  })
  dimensions: number | null;
}
