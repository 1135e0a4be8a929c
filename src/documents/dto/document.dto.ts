import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsBoolean,
  IsIn,
  IsInt,
  IsString,
  Matches,
  Max,
  Min,
  MinLength,
  ValidateNested,
} from 'class-validator';
import { IsCollectionName } from '../../embeddings/dto/collection.dto.js';
import { DecimalInteger, IsOptionalNotNull, MaxChars, StorableText } from '../../common/validation.js';
import { EmbeddingItemDto } from '../../embeddings/dto/embedding.dto.js';
import { DOCUMENT_STATUSES, type DocumentStatus } from '../document.entity.js';

/**
 * A new document's documentId: 1-255 characters without whitespace, not `.` or `..` (as a path
 * segment, GET /documents/:documentId or a Location, a client resolves those away). The rule and
 * its OpenAPI pattern.
 */
export const DOCUMENT_ID_PATTERN = '^(?!\\.{1,2}$)\\S{1,255}$';
export const DOCUMENT_ID_MESSAGE = 'documentId must be 1-255 characters without whitespace, and not . or ..';
/** DOCUMENT_ID_PATTERN over code points (`u`): characters as varchar(255) counts them, an emoji one. */
export const DOCUMENT_ID_REGEXP = new RegExp(DOCUMENT_ID_PATTERN, 'u');

/** Upper bound of the schema; the effective limit is EMBEDDINGS_MAX_BATCH, checked by the service. */
const ABSOLUTE_MAX_CHUNKS = 100_000;

export const DOCUMENT_SORTS = ['createdAt', 'updatedAt', 'documentName', 'documentId'] as const;
export type DocumentSort = (typeof DOCUMENT_SORTS)[number];
export const SORT_ORDERS = ['asc', 'desc'] as const;
export type SortOrder = (typeof SORT_ORDERS)[number];

const toBool = ({ value }: { value: unknown }): unknown => {
  if (value === 'true') return true;
  if (value === 'false') return false;
  return value;
};

/** A chunk of a new document: an embeddings item whose metadata the service completes. */
export class ChunkInputDto extends EmbeddingItemDto {
  @ApiPropertyOptional({
    example: { section_title: 'Chương I', level: 1 },
    description:
      'Extra metadata; document_id, chunk_id, chunk_index, total_chunks, document_type, category and status are set by the service',
    type: 'object',
    additionalProperties: true,
  })
  declare metadata?: Record<string, unknown>;
}

/**
 * Request bodies for Swagger UI's "Try it out" (it sends the first): chunk vectors computed by the
 * provider, since an example vector's dimension would have to be the collection's.
 */
export const CREATE_DOCUMENT_EXAMPLES = {
  withChunks: {
    summary: 'A document and its chunks, in one transaction',
    value: {
      documentId: 'luat-dat-dai-2024',
      documentName: 'Luật Đất đai 2024',
      documentType: 'law',
      category: 'dat-dai',
      sourceFile: '/data/laws/luat-dat-dai-2024.pdf',
      chunks: [
        { content: 'Điều 1. Phạm vi điều chỉnh', metadata: { section_title: 'Chương I' } },
        { content: 'Điều 2. Đối tượng áp dụng', metadata: { section_title: 'Chương I' } },
      ],
    },
  },
  documentOnly: {
    summary: 'A document without chunks (add them later with POST /embeddings)',
    value: {
      documentName: 'Nghị định hướng dẫn',
      documentType: 'decree',
      category: 'dat-dai',
      sourceFile: '/data/decrees/nghi-dinh.pdf',
    },
  },
};

export class CreateDocumentDto {
  @ApiPropertyOptional({
    example: 'luat-dat-dai-2024',
    pattern: DOCUMENT_ID_PATTERN,
    description: 'Business id, 1-255 characters without whitespace, not . or ..; a uuid when absent',
  })
  @IsOptionalNotNull()
  @IsString()
  @Matches(DOCUMENT_ID_REGEXP, { message: DOCUMENT_ID_MESSAGE })
  @StorableText()
  documentId?: string;

  @ApiProperty({ minLength: 1, example: 'Luật Đất đai 2024', maxLength: 10_000 })
  @IsString()
  @MinLength(1)
  @MaxChars(10_000)
  @StorableText()
  documentName: string;

  @ApiProperty({ minLength: 1, example: 'law', maxLength: 50 })
  @IsString()
  @MinLength(1)
  @MaxChars(50)
  @StorableText()
  documentType: string;

  @ApiProperty({ minLength: 1, example: 'dat-dai', maxLength: 100 })
  @IsString()
  @MinLength(1)
  @MaxChars(100)
  @StorableText()
  category: string;

  @ApiProperty({ minLength: 1, example: '/data/laws/luat-dat-dai-2024.pdf', maxLength: 4096 })
  @IsString()
  @MinLength(1)
  @MaxChars(4096)
  @StorableText()
  sourceFile: string;

  @ApiPropertyOptional({
    minLength: 1,
    example: 'luat-dat-dai-2024.pdf',
    description: 'Basename of sourceFile when absent',
    maxLength: 1024,
  })
  @IsOptionalNotNull()
  @IsString()
  @MinLength(1)
  @MaxChars(1024)
  @StorableText()
  fileName?: string;

  @ApiPropertyOptional({ example: 'active', enum: DOCUMENT_STATUSES, default: 'active' })
  @IsOptionalNotNull()
  @IsIn(DOCUMENT_STATUSES)
  status?: DocumentStatus;

  @ApiPropertyOptional({
    example: 'docs',
    minLength: 1,
    maxLength: 500,
    description: 'Collection of the chunks; DEFAULT_COLLECTION when absent',
  })
  @IsOptionalNotNull()
  @IsCollectionName()
  collection?: string;

  @ApiPropertyOptional({ type: [ChunkInputDto], description: 'At most EMBEDDINGS_MAX_BATCH (default 1000) chunks' })
  @IsOptionalNotNull()
  @IsArray()
  @ArrayMaxSize(ABSOLUTE_MAX_CHUNKS)
  @ValidateNested({ each: true })
  @Type(() => ChunkInputDto)
  chunks?: ChunkInputDto[];
}

export class UpdateDocumentDto {
  @ApiPropertyOptional({ minLength: 1, example: 'Luật Đất đai 2024 (sửa đổi)', maxLength: 10_000 })
  @IsOptionalNotNull()
  @IsString()
  @MinLength(1)
  @MaxChars(10_000)
  @StorableText()
  documentName?: string;

  @ApiPropertyOptional({ minLength: 1, example: 'decree', maxLength: 50 })
  @IsOptionalNotNull()
  @IsString()
  @MinLength(1)
  @MaxChars(50)
  @StorableText()
  documentType?: string;

  @ApiPropertyOptional({ minLength: 1, example: 'thue', maxLength: 100 })
  @IsOptionalNotNull()
  @IsString()
  @MinLength(1)
  @MaxChars(100)
  @StorableText()
  category?: string;

  @ApiPropertyOptional({ minLength: 1, example: '/data/laws/new.pdf', maxLength: 4096 })
  @IsOptionalNotNull()
  @IsString()
  @MinLength(1)
  @MaxChars(4096)
  @StorableText()
  sourceFile?: string;

  @ApiPropertyOptional({ minLength: 1, example: 'new.pdf', maxLength: 1024 })
  @IsOptionalNotNull()
  @IsString()
  @MinLength(1)
  @MaxChars(1024)
  @StorableText()
  fileName?: string;

  @ApiPropertyOptional({ example: 'inactive', enum: DOCUMENT_STATUSES })
  @IsOptionalNotNull()
  @IsIn(DOCUMENT_STATUSES)
  status?: DocumentStatus;
}

export class ListDocumentsQueryDto {
  @ApiPropertyOptional({ example: 'law', maxLength: 50 })
  @IsOptionalNotNull()
  @IsString()
  @MaxChars(50)
  @StorableText()
  documentType?: string;

  @ApiPropertyOptional({ example: 'dat-dai', maxLength: 100 })
  @IsOptionalNotNull()
  @IsString()
  @MaxChars(100)
  @StorableText()
  category?: string;

  @ApiPropertyOptional({ example: 'active', enum: DOCUMENT_STATUSES })
  @IsOptionalNotNull()
  @IsIn(DOCUMENT_STATUSES)
  status?: DocumentStatus;

  @ApiPropertyOptional({
    example: 'luật đất',
    maxLength: 255,
    description:
      'Case-insensitive substring of documentName or documentId; composed or decomposed Unicode (NFC, NFD) finds ' +
      'names stored either way',
  })
  @IsOptionalNotNull()
  @IsString()
  @MaxChars(255)
  @StorableText()
  search?: string;

  @ApiPropertyOptional({ type: 'integer', example: 50, minimum: 1, maximum: 500, default: 50 })
  @IsOptionalNotNull()
  @DecimalInteger()
  @IsInt()
  @Min(1)
  @Max(500)
  limit: number = 50;

  @ApiPropertyOptional({ type: 'integer', example: 0, minimum: 0, maximum: 2_147_483_647, default: 0 })
  @IsOptionalNotNull()
  @DecimalInteger()
  @IsInt()
  @Min(0)
  @Max(2_147_483_647)
  offset: number = 0;

  @ApiPropertyOptional({ example: 'createdAt', enum: DOCUMENT_SORTS, default: 'createdAt' })
  @IsOptionalNotNull()
  @IsIn(DOCUMENT_SORTS)
  sort: DocumentSort = 'createdAt';

  @ApiPropertyOptional({ example: 'desc', enum: SORT_ORDERS, default: 'desc' })
  @IsOptionalNotNull()
  @IsIn(SORT_ORDERS)
  order: SortOrder = 'desc';
}

/**
 * The largest page of chunks with their vectors: a vector of 3,072 dimensions is about 40 KB of
 * JSON, and a page of 1,000 of them was held several times over in memory while it was sent.
 */
export const MAX_CHUNKS_WITH_EMBEDDINGS = 100;

export class ListChunksQueryDto {
  @ApiPropertyOptional({
    type: 'integer',
    example: 100,
    minimum: 1,
    maximum: 1000,
    default: 100,
    description: `At most ${MAX_CHUNKS_WITH_EMBEDDINGS} with includeEmbedding=true; a page holds at most CHUNKS_PAGE_MAX_BYTES (64 MiB) of chunk text and metadata`,
  })
  @IsOptionalNotNull()
  @DecimalInteger()
  @IsInt()
  @Min(1)
  @Max(1000)
  limit: number = 100;

  @ApiPropertyOptional({ type: 'integer', example: 0, minimum: 0, maximum: 2_147_483_647, default: 0 })
  @IsOptionalNotNull()
  @DecimalInteger()
  @IsInt()
  @Min(0)
  @Max(2_147_483_647)
  offset: number = 0;

  @ApiPropertyOptional({ example: false, default: false, description: 'Include each chunk vector' })
  @IsOptionalNotNull()
  @Transform(toBool)
  @IsBoolean({ message: 'includeEmbedding must be true or false' })
  includeEmbedding: boolean = false;
}

export class DocumentDto {
  @ApiProperty({ example: '0b7e6a1c-3f4d-4e5a-8b9c-0d1e2f3a4b5c' })
  id: string;

  @ApiProperty({ example: 'luat-dat-dai-2024' })
  documentId: string;

  @ApiProperty({ example: 'Luật Đất đai 2024' })
  documentName: string;

  @ApiProperty({ example: 'law' })
  documentType: string;

  @ApiProperty({ example: 'dat-dai' })
  category: string;

  @ApiProperty({ example: '/data/laws/luat-dat-dai-2024.pdf' })
  sourceFile: string;

  @ApiProperty({ example: 'luat-dat-dai-2024.pdf' })
  fileName: string;

  @ApiProperty({ example: 12, type: 'integer', nullable: true })
  totalChunks: number | null;

  @ApiProperty({ example: 'active', type: String, nullable: true })
  status: string | null;

  @ApiProperty({ example: '2026-11-24T10:00:00.000Z' })
  createdAt: Date;

  @ApiProperty({ example: '2026-11-24T10:00:00.000Z' })
  updatedAt: Date;
}

export class DocumentListDto {
  @ApiProperty({ type: [DocumentDto] })
  items: DocumentDto[];

  @ApiProperty({ type: 'integer', example: 1 })
  total: number;

  @ApiProperty({ type: 'integer', example: 50 })
  limit: number;

  @ApiProperty({ type: 'integer', example: 0 })
  offset: number;
}

export class DocumentChunkDto {
  @ApiProperty({ example: 'law-1-chunk-0' })
  id: string;

  @ApiProperty({ example: 'docs', type: String, nullable: true })
  collection: string | null;

  @ApiProperty({ example: 'Điều 1. Phạm vi điều chỉnh', type: String, nullable: true })
  content: string | null;

  @ApiProperty({ example: { document_id: 'law-1', chunk_index: 0 }, type: 'object', additionalProperties: true })
  metadata: Record<string, unknown> | null;

  @ApiPropertyOptional({ example: [0.12, -0.03, 0.5], type: [Number], nullable: true })
  embedding?: number[] | null;
}

export class DocumentChunkListDto {
  @ApiProperty({ type: [DocumentChunkDto] })
  items: DocumentChunkDto[];

  @ApiProperty({ type: 'integer', example: 3 })
  total: number;

  /** The page, as GET /documents echoes its own. */
  @ApiProperty({ type: 'integer', example: 100 })
  limit: number;

  @ApiProperty({ type: 'integer', example: 0 })
  offset: number;
}

/** Most documentIds one recount request may name. */
export const MAX_RECOUNT_IDS = 1000;
/** Most corrected documents a recount response lists (the count covers them all). */
export const MAX_RECOUNT_LISTED = 1000;

export class RecountDocumentsDto {
  @ApiPropertyOptional({
    example: ['luat-dat-dai-2024'],
    type: 'array',
    items: { type: 'string', minLength: 1, maxLength: 255 },
    minItems: 1,
    maxItems: MAX_RECOUNT_IDS,
    description: 'The documents to recount (each 1-255 characters); every document when absent',
  })
  @IsOptionalNotNull()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_RECOUNT_IDS)
  @IsString({ each: true })
  @MinLength(1, { each: true })
  @MaxChars(255, { each: true })
  @StorableText({ each: true })
  documentIds?: string[];

  @ApiPropertyOptional({ example: false, default: false, description: 'Report the differences, change nothing' })
  @IsOptionalNotNull()
  @IsBoolean()
  dryRun: boolean = false;
}

export class RecountedDocumentDto {
  @ApiProperty({ example: 'luat-dat-dai-2024' })
  documentId: string;

  @ApiProperty({ example: 12, type: 'integer', nullable: true, description: 'total_chunks before the recount' })
  before: number | null;

  @ApiProperty({
    type: 'integer',
    example: 14,
    description: 'The number of chunks that name the document, in any collection',
  })
  after: number;
}

export class RecountResultDto {
  @ApiProperty({ example: false })
  dryRun: boolean;

  @ApiProperty({ type: 'integer', example: 2000, description: 'Documents compared' })
  checked: number;

  @ApiProperty({
    type: 'integer',
    example: 1,
    description: 'Documents whose total_chunks was changed (would be, in a dry run)',
  })
  corrected: number;

  @ApiProperty({
    type: [RecountedDocumentDto],
    description: `The corrected documents in documentId order, at most ${MAX_RECOUNT_LISTED}`,
  })
  documents: RecountedDocumentDto[];
}
