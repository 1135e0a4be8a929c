import { ApiProperty, ApiPropertyOptional, PickType } from '@nestjs/swagger';
import { IsIn, IsInt, IsString, Matches, Max, Min, MinLength } from 'class-validator';
import {
  CreateDocumentDto,
  DOCUMENT_ID_MESSAGE,
  DOCUMENT_ID_PATTERN,
  DOCUMENT_ID_REGEXP,
} from '../../documents/dto/document.dto.js';
import { DOCUMENT_STATUSES, type DocumentStatus } from '../../documents/document.entity.js';
import { DecimalInteger, IsOptionalNotNull, MaxChars, StorableText } from '../../common/validation.js';
import { TEXT_FORMATS, type TextFormat } from '../text-extraction.js';

/** Bounds of chunkSize/chunkOverlap in a request (the same as INGEST_CHUNK_SIZE/INGEST_CHUNK_OVERLAP). */
export const MIN_CHUNK_SIZE = 100;
export const MAX_CHUNK_SIZE = 100_000;
export const MAX_CHUNK_OVERLAP = 50_000;

/**
 * The document fields and chunking options of an ingestion: the text fields of the multipart form,
 * and the JSON body without its text. Numbers may arrive as strings (multipart) and are converted.
 */
export class IngestOptionsDto extends PickType(CreateDocumentDto, [
  'documentType',
  'category',
  'status',
  'collection',
] as const) {
  @ApiPropertyOptional({
    example: 'luat-dat-dai-2024',
    pattern: DOCUMENT_ID_PATTERN,
    description:
      'Business id, 1-255 characters without whitespace, not . or ..; a uuid when absent. An existing id is re-ingested: its ' +
      'chunks are kept when nothing that makes them changed (skipped), else replaced',
  })
  @IsOptionalNotNull()
  @IsString()
  @Matches(DOCUMENT_ID_REGEXP, { message: DOCUMENT_ID_MESSAGE })
  @StorableText()
  documentId?: string;

  @ApiPropertyOptional({
    example: 'active',
    enum: DOCUMENT_STATUSES,
    description: "'active' for a new document when absent; a re-ingest keeps the stored status when absent",
  })
  declare status?: DocumentStatus;

  @ApiPropertyOptional({
    example: 'Luật Đất đai 2024',
    minLength: 1,
    maxLength: 10_000,
    description: 'The file name when absent (on re-ingest: the stored name)',
  })
  @IsOptionalNotNull()
  @IsString()
  @MinLength(1)
  @MaxChars(10_000)
  @StorableText()
  documentName?: string;

  @ApiPropertyOptional({
    type: 'integer',
    example: 1000,
    minimum: MIN_CHUNK_SIZE,
    maximum: MAX_CHUNK_SIZE,
    description: 'Largest chunk in characters; INGEST_CHUNK_SIZE when absent',
  })
  @IsOptionalNotNull()
  @IsInt({ message: 'chunkSize must be an integer' })
  @Min(MIN_CHUNK_SIZE)
  @Max(MAX_CHUNK_SIZE)
  chunkSize?: number;

  @ApiPropertyOptional({
    type: 'integer',
    example: 200,
    minimum: 0,
    maximum: MAX_CHUNK_OVERLAP,
    description:
      'Characters shared by consecutive pieces of a split unit, at most half of chunkSize; when absent INGEST_CHUNK_OVERLAP, ' +
      'or half of chunkSize if that is less',
  })
  @IsOptionalNotNull()
  @IsInt({ message: 'chunkOverlap must be an integer' })
  @Min(0)
  @Max(MAX_CHUNK_OVERLAP)
  chunkOverlap?: number;
}

/**
 * The text fields of a `multipart/form-data` upload, as IngestOptionsDto checks them: a form sends
 * every value as text, so its integers are read from their decimal digits. A JSON body sends numbers,
 * and "1000" there is a 400, as on every JSON route.
 */
export class IngestFormFieldsDto extends IngestOptionsDto {
  @DecimalInteger()
  declare chunkSize?: number;

  @DecimalInteger()
  declare chunkOverlap?: number;
}

/** `multipart/form-data`: the file plus the fields of IngestOptionsDto (documented for OpenAPI). */
export class IngestFileDto extends IngestOptionsDto {
  @ApiProperty({
    type: 'string',
    format: 'binary',
    description: '.txt, .md, .html/.htm, .docx or .pdf, at most INGEST_MAX_FILE_BYTES (default 25 MiB)',
  })
  file: unknown;
}

/** `application/json`: the text itself instead of a file. */
export class IngestTextDto extends IngestOptionsDto {
  @ApiProperty({
    example: 'Chương I\nQUY ĐỊNH CHUNG\nĐiều 1. Phạm vi điều chỉnh\nLuật này quy định về chế độ sở hữu đất đai.',
    minLength: 1,
    description:
      'The document text, at most INGEST_MAX_FILE_BYTES bytes as UTF-8 (and the whole JSON body at most BODY_LIMIT_BYTES)',
  })
  @IsString()
  @MinLength(1, { message: 'text must not be empty' })
  @StorableText()
  text: string;

  @ApiPropertyOptional({
    example: 'luat-dat-dai-2024.md',
    minLength: 1,
    maxLength: 1024,
    description:
      "Stored as fileName and sourceFile, as sent (a path too); when absent, 'inline' (a re-ingest keeps the stored " +
      'ones). A re-ingest that sends it replaces both, also when its chunks are kept (skipped: true)',
  })
  @IsOptionalNotNull()
  @IsString()
  @MinLength(1)
  @MaxChars(1024)
  @StorableText()
  fileName?: string;

  @ApiPropertyOptional({
    example: 'md',
    enum: TEXT_FORMATS,
    description: "How to read text; from fileName's extension when absent, else txt",
  })
  @IsOptionalNotNull()
  @IsIn(TEXT_FORMATS)
  format?: TextFormat;
}

/** JSON request bodies for Swagger UI's "Try it out" (it sends the first). */
export const INGEST_TEXT_EXAMPLES = {
  markdown: {
    summary: 'A markdown text, chunked by its headings',
    value: {
      documentId: 'huong-dan-nop-thue',
      documentType: 'guide',
      category: 'thue',
      fileName: 'huong-dan-nop-thue.md',
      text: '# Hướng dẫn nộp thuế\n\n## Thời hạn\nNộp tờ khai trước ngày 20 của tháng sau.',
    },
  },
  law: {
    summary: 'A Vietnamese legal text, chunked by its units (Chương, Điều, khoản)',
    value: {
      // Not POST /documents' example document: ingesting it would replace that one's chunks.
      documentId: 'luat-dat-dai-2013',
      documentType: 'law',
      category: 'dat-dai',
      text: 'Chương I\nQUY ĐỊNH CHUNG\nĐiều 1. Phạm vi điều chỉnh\nLuật này quy định về chế độ sở hữu đất đai.',
    },
  },
};

/** The name of an uploaded file, checked with the rules of the JSON body's `fileName`. */
export class UploadedFileNameDto extends PickType(IngestTextDto, ['fileName'] as const) {}

export class IngestResultDto {
  @ApiProperty({ example: 'luat-dat-dai-2024' })
  documentId: string;

  @ApiProperty({ example: 'Luật Đất đai 2024' })
  documentName: string;

  @ApiProperty({
    type: 'integer',
    example: 42,
    description: 'Chunks of the document (when skipped: those already stored)',
  })
  chunks: number;

  @ApiProperty({
    example: false,
    description:
      'True when all of the stored chunks came from the same text and options, in the same collection, with the ' +
      'configured embedding model: kept, only changed fields written',
  })
  skipped: boolean;

  @ApiProperty({
    example: '3f79bb7b435b05321651daefd374cdc681dc06faa65e374e38337b88ca046dea',
    description: 'sha256 of the extracted text, chunkSize and chunkOverlap (also in every chunk as content_hash)',
  })
  contentHash: string;

  @ApiProperty({ example: 'docs' })
  collection: string;
}
