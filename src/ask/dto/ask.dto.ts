import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsIn, IsInt, IsNumber, IsOptional, IsString, Matches, Max, Min, MinLength } from 'class-validator';
import { IsCollectionName } from '../../embeddings/dto/collection.dto.js';
import { IsJsonObject, IsOptionalNotNull, MaxChars, StorableText } from '../../common/validation.js';
import {
  IsVector,
  VECTOR_INPUT_DESCRIPTION,
  VECTOR_INPUT_FORMS,
  type VectorComponents,
} from '../../embeddings/dto/embedding.dto.js';

export const SEARCH_MODES = ['vector', 'hybrid'] as const;
export type SearchMode = (typeof SEARCH_MODES)[number];
export const MAX_K = 100;
export const MAX_QUESTION_LENGTH = 4000;

const FILTER_DESCRIPTION = `Metadata filter in LangChain's JSONB filter language (langchain_postgres PGVector).
A bare value means $eq; several top-level fields are ANDed.
Comparison ($eq $ne $lt $lte $gt $gte) compares JSON values (numbers as numbers, booleans as booleans);
$in $nin $like $ilike compare the field as text; $between [low, high]; $exists true|false;
$and / $or take a list of filters, $not a filter or a list.
Field names: ASCII letters, digits and _, not starting with a digit (max 63). Every value is a bound parameter;
a value that looks like an SQL-injection probe (x' OR '1'='1) is a 400. Full reference: docs/FILTERS.md.
Examples:
{"document_type": "law"}
{"chunk_index": {"$lt": 3}, "status": {"$in": ["active", "processing"]}}
{"$or": [{"document_type": "law"}, {"year": {"$between": [2019, 2024]}}]}
{"$not": {"section_title": {"$ilike": "%phạt%"}}}`;

/**
 * Request bodies for Swagger UI's "Try it out" (it sends the first): without a query vector, whose
 * dimension must be the collection's, so that they work against the default collection as it is.
 */
export const ASK_REQUEST_EXAMPLES = {
  question: {
    summary: 'A question, embedded by the configured provider',
    value: { question: 'Thuế suất thuế thu nhập cá nhân đối với tiền lương là bao nhiêu?', k: 5 },
  },
  filtered: {
    summary: 'Only chunks whose metadata matches a filter',
    value: {
      question: 'Quyền sử dụng đất được chuyển nhượng khi nào?',
      k: 5,
      filter: { document_type: 'law', chunk_index: { $lt: 10 } },
    },
  },
  hybrid: {
    summary: 'Vector and full-text ranks fused (reciprocal rank fusion)',
    value: { question: 'Điều 1. Phạm vi điều chỉnh', k: 5, mode: 'hybrid' },
  },
};

export class AskRequestDto {
  @ApiProperty({
    example: 'Thuế suất thuế thu nhập cá nhân đối với tiền lương là bao nhiêu?',
    minLength: 1,
    maxLength: MAX_QUESTION_LENGTH,
    pattern: '\\S',
    description: 'Not blank: at least one character that is not whitespace',
  })
  @IsString()
  @MinLength(1)
  @MaxChars(MAX_QUESTION_LENGTH)
  @Matches(/\S/, { message: 'question must not be blank' })
  @StorableText()
  question: string;

  @ApiPropertyOptional({
    type: 'integer',
    minimum: 1,
    maximum: MAX_K,
    default: 5,
    description: 'Number of chunks to return',
  })
  @IsOptionalNotNull()
  @IsInt()
  @Min(1)
  @Max(MAX_K)
  k?: number;

  @ApiPropertyOptional({
    example: 'docs',
    minLength: 1,
    maxLength: 500,
    description: 'Collection to search; default DEFAULT_COLLECTION',
  })
  @IsOptionalNotNull()
  @IsCollectionName()
  collection?: string;

  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    nullable: true,
    description: FILTER_DESCRIPTION,
    example: { document_type: 'law', chunk_index: { $lt: 10 } },
  })
  // null is documented (docs/FILTERS.md): no filter, as when absent.
  @IsOptional()
  @IsJsonObject({ message: 'filter must be a JSON object' })
  filter?: Record<string, unknown>;

  @ApiPropertyOptional({
    enum: SEARCH_MODES,
    default: 'vector',
    description:
      'vector: cosine similarity of embeddings. hybrid: reciprocal rank fusion of the vector ranking and PostgreSQL full-text ranking (simple configuration) of the chunk text. ' +
      'The full-text side ranks every chunk containing a word of the question while at most SEARCH_HYBRID_TEXT_MATCH_LIMIT (default 1000) do; ' +
      "when more do, the words are too common to tell chunks apart, and it ranks only the vector side's candidates",
  })
  @IsOptionalNotNull()
  @IsIn(SEARCH_MODES)
  mode?: SearchMode;

  @ApiPropertyOptional({
    minimum: -1,
    maximum: 1,
    example: 0.3,
    description: 'Drop results whose score (1 − cosine distance) is below this, and those without a score',
  })
  @IsOptionalNotNull()
  @IsNumber({ allowNaN: false, allowInfinity: false })
  @Min(-1)
  @Max(1)
  minScore?: number;

  @ApiPropertyOptional({
    default: false,
    description:
      "Compare the query with every chunk the filter passes instead of searching the collection's HNSW index: the " +
      'exact k nearest, where the index finds most of them (recall@10 0.95–0.99 on the benchmark, lower under a ' +
      'selective filter on a small collection), at the cost of a scan (26 ms p50 for 40,000 × 384 chunks without a ' +
      'filter on the 2-vCPU benchmark server). In hybrid mode it applies to the vector ranking. A collection without ' +
      'an index is always searched exactly, and so is a filtered search whose index scan found fewer than k chunks.',
  })
  @IsOptionalNotNull()
  @IsBoolean()
  exact?: boolean;

  @ApiPropertyOptional({
    default: false,
    description: 'Also write an answer from the results with an LLM (needs LLM_BASE_URL), citing result ids',
  })
  @IsOptionalNotNull()
  @IsBoolean()
  answer?: boolean;

  @ApiPropertyOptional({
    oneOf: VECTOR_INPUT_FORMS,
    example: [0.12, -0.03, 0.5],
    description:
      'A precomputed query vector (same dimension as the collection); when given, the question is not embedded. ' +
      VECTOR_INPUT_DESCRIPTION,
  })
  @IsOptionalNotNull()
  @IsVector()
  /** VectorComponents once VectorBodyPipe has checked it (a base64 string decoded). */
  queryEmbedding?: VectorComponents;
}

export class AskResultDto {
  @ApiProperty({ example: 'b7e6a1c2-3f4d-4e5a-8b9c-0d1e2f3a4b5c', description: 'Chunk id' })
  id: string;

  @ApiProperty({ example: 'luat-thue-tncn-2007', nullable: true, type: String, description: 'cmetadata.document_id' })
  documentId: string | null;

  @ApiProperty({ example: 'Điều 22. Biểu thuế lũy tiến từng phần…', nullable: true, type: String })
  content: string | null;

  @ApiProperty({
    example: 0.83,
    nullable: true,
    type: Number,
    description:
      '1 − cosine distance between the chunk and the question; null for a chunk whose stored vector is all zeros ' +
      '(this service refuses such vectors, another writer of the table may not), and for a hybrid match by text of a chunk without a vector',
  })
  score: number | null;

  @ApiProperty({ type: 'object', additionalProperties: true, example: { document_id: 'luat-thue-tncn-2007' } })
  metadata: Record<string, unknown>;

  @ApiPropertyOptional({
    example: 0.0325,
    description: 'hybrid only: reciprocal rank fusion score, Σ 1/(60 + rank)',
  })
  fusedScore?: number;

  @ApiPropertyOptional({ example: 1, nullable: true, type: 'integer', description: 'hybrid only: rank by vector' })
  vectorRank?: number | null;

  @ApiPropertyOptional({ example: 2, nullable: true, type: 'integer', description: 'hybrid only: rank by full text' })
  textRank?: number | null;
}

export class AskAnswerDto {
  @ApiProperty({ example: 'Thuế suất từ 5% đến 35% theo biểu lũy tiến [b7e6a1c2-…].' })
  text: string;

  @ApiProperty({ type: [String], description: 'Result ids the answer cites, in order of first citation' })
  citations: string[];

  @ApiProperty({ example: 'gpt-4o-mini' })
  model: string;
}

export class AskResponseDto {
  @ApiProperty()
  question: string;

  @ApiProperty({ enum: SEARCH_MODES })
  mode: SearchMode;

  @ApiProperty({ example: 'docs' })
  collection: string;

  @ApiProperty({ type: [AskResultDto] })
  results: AskResultDto[];

  @ApiPropertyOptional({ type: AskAnswerDto })
  answer?: AskAnswerDto;

  @ApiProperty({ example: 12.4, description: 'Server-side time in milliseconds' })
  tookMs: number;
}
