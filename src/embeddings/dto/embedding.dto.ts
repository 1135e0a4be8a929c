import { ApiProperty, ApiPropertyOptional, type SchemaObject } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsString, MinLength, ValidateBy, ValidateNested } from 'class-validator';
import os from 'node:os';
import { IsJsonObject, IsOptionalNotNull, MaxChars, StorableText } from '../../common/validation.js';
import { IsCollectionName } from './collection.dto.js';

export const MAX_CONTENT_LENGTH = 100_000;
export const MAX_EMBEDDING_DIMENSIONS = 16_000;
/** Largest magnitude a pgvector component (float4) can hold. */
export const FLOAT4_MAX = 3.4e38;
/** Upper bound of the schema; the effective limit is EMBEDDINGS_MAX_BATCH, checked by the service. */
const ABSOLUTE_MAX_ITEMS = 100_000;

/**
 * A vector once VectorBodyPipe has checked it: the JSON numbers as sent, or the float32 components a
 * base64 string holds, kept as a Float32Array (they are float32 already, and pgvector's binary
 * format is float32: no per-component conversion on the way to the database).
 */
export type VectorComponents = number[] | Float32Array;

/** A vector as checked by parseVector: its components, or why it is not a pgvector value. */
export type ParsedVector = { vector: VectorComponents } | { problem: string };

/**
 * A vector as a request body may give it: a JSON array of numbers, or a string holding its float32
 * components, little-endian, in base64 (what OpenAI's embeddings API returns with
 * `encoding_format: "base64"`): shorter than the JSON numbers, and exact.
 * The components, or why the value is not a pgvector value (1 to MAX_EMBEDDING_DIMENSIONS finite
 * numbers that fit a float4) in the words class-validator's own decorators use. An array is handed
 * back as it is, a string decoded once.
 */
export function parseVector(value: unknown, property: string): ParsedVector {
  if (Array.isArray(value)) {
    const problem = dimensionsProblem(value.length, property) ?? componentsProblem(value, property);
    return problem === null ? { vector: value as number[] } : { problem };
  }
  if (typeof value === 'string') return parseBase64Vector(value, property);
  return { problem: `${property} must be an array of numbers or a base64 string of little-endian float32 values` };
}

/** Why a value is not a pgvector value (see parseVector); null when it is one. */
export function vectorProblem(value: unknown, property: string): string | null {
  const parsed = parseVector(value, property);
  return 'problem' in parsed ? parsed.problem : null;
}

/** RFC 4648 base64, standard alphabet, `=` only as padding at the end (the length is checked apart). */
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The platform's byte order: typed arrays read and write in it. */
export const LITTLE_ENDIAN = os.endianness() === 'LE';

/**
 * Float32 values stored little-endian in `bytes` (a whole number of 4-byte values), as a
 * Float32Array: one copy into the array's own aligned memory (the bytes may sit at any offset of
 * Buffer's pool), byte-swapped only on a big-endian platform. OpenAI's base64 embeddings, whether a
 * client sends them (parseVector) or the provider receives them, are such bytes.
 */
export function float32FromLittleEndian(bytes: Uint8Array): Float32Array {
  const values = new Float32Array(bytes.length / 4);
  new Uint8Array(values.buffer).set(bytes);
  if (!LITTLE_ENDIAN) Buffer.from(values.buffer).swap32();
  return values;
}

function parseBase64Vector(text: string, property: string): ParsedVector {
  // Buffer.from(…, 'base64') skips characters outside the alphabet and accepts a missing padding or
  // the URL-safe alphabet, so a damaged vector would decode to other numbers: the text must be what
  // encoding its bytes gives back. A native encode and compare: 7× faster than testing BASE64 on
  // every vector (500 × 2,048 characters per batch); the expression only words the refusal.
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) {
    return {
      problem:
        text.length % 4 === 0 && BASE64.test(text)
          ? `${property} base64 has bits set after its last byte (not canonical, RFC 4648 section 3.5)`
          : `${property} must be base64 in the standard alphabet (A-Z a-z 0-9 + /), padded with = to a multiple of 4 characters`,
    };
  }
  if (bytes.length % 4 !== 0) {
    return { problem: `${property} base64 holds ${bytes.length} bytes, not a whole number of float32 values` };
  }
  const dimensions = bytes.length / 4;
  const problem = dimensionsProblem(dimensions, property);
  if (problem !== null) return { problem };
  const vector = float32FromLittleEndian(bytes);
  for (let i = 0; i < dimensions; i++) {
    if (!Number.isFinite(vector[i])) return { problem: `each value in ${property} must be a finite number` };
  }
  // Every finite float32 is a float4, but the array rule stops short of its largest values: the
  // same number is refused whichever way it is sent.
  const range = componentsProblem(vector, property);
  return range === null ? { vector } : { problem: range };
}

function dimensionsProblem(dimensions: number, property: string): string | null {
  if (dimensions < 1) return `${property} must contain at least 1 elements`;
  if (dimensions > MAX_EMBEDDING_DIMENSIONS) {
    return `${property} must contain no more than ${MAX_EMBEDDING_DIMENSIONS} elements`;
  }
  return null;
}

/**
 * Why the components are not float4 values, null when they are. One loop over the array: the
 * equivalent stack of `{ each: true }` decorators makes three validator calls per component (576,000
 * per batch of 500 × 384-dim vectors), which was a third of the ingest CPU time.
 */
export function componentsProblem(vector: ArrayLike<unknown>, property: string): string | null {
  let largest = 0;
  // An index, not for…of: here the iterator allocated per component (10 MB of garbage per batch of
  // 500 × 384-dimensional vectors) and took 6× as long.
  for (let i = 0; i < vector.length; i++) {
    const v: unknown = vector[i];
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      return `each value in ${property} must be a number conforming to the specified constraints`;
    }
    if (v > FLOAT4_MAX) return `each value in ${property} must not be greater than ${FLOAT4_MAX}`;
    if (v < -FLOAT4_MAX) return `each value in ${property} must not be less than ${-FLOAT4_MAX}`;
    const magnitude = v < 0 ? -v : v;
    if (magnitude > largest) largest = magnitude;
  }
  // pgvector computes cosine distance in float32: a vector whose float32 squares sum to less than
  // the smallest normal float32 (all zeros, or 1e-30 in every component) has no usable norm, and its
  // distance to every vector is NaN or meaningless (every chunk scored 1). Only a vector without any
  // component of 1e-18 or more can be one, so the sum is taken for those alone.
  if (largest < 1e-18 && float32SquaredNorm(vector as ArrayLike<number>) < FLOAT32_MIN_NORMAL) {
    return `${property} must not be all zeros, or so close to it that its float32 norm underflows: its cosine distance to any vector is undefined`;
  }
  // The other end: squares summing beyond the largest float32 (1e19 in two components, 1e18 in
  // 384) make the norm infinite, and every distance NaN or 1. Below 1e17 in every component no
  // vector of up to MAX_EMBEDDING_DIMENSIONS components can get there.
  if (largest >= 1e17 && float32SquaredNorm(vector as ArrayLike<number>) === Infinity) {
    return `${property} is too large: the sum of its float32 squares overflows, so its cosine distance to any vector is undefined`;
  }
  return null;
}

/** The smallest positive normal float32. */
const FLOAT32_MIN_NORMAL = 2 ** -126;

/** The sum of the squares of the components as float32 values, as pgvector adds them. */
function float32SquaredNorm(vector: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < vector.length; i++) {
    const component = Math.fround(vector[i]);
    sum = Math.fround(sum + Math.fround(component * component));
  }
  return sum;
}

/**
 * A pgvector value (see parseVector). The validator cannot replace a base64 string by its numbers:
 * a route taking such a DTO decodes its vectors through VectorBodyPipe, which hands on VectorComponents.
 */
export function IsVector(): PropertyDecorator {
  return ValidateBy({
    name: 'isVector',
    validator: {
      validate: (value: unknown, args) => vectorProblem(value, args?.property ?? 'value') === null,
      defaultMessage: (args) => vectorProblem(args?.value, args?.property ?? 'value') ?? '',
    },
  });
}

/** How a vector in a request body may be given (OpenAPI): either form parseVector takes, by example [0.12, -0.03, 0.5]. */
export const VECTOR_INPUT_FORMS: SchemaObject[] = [
  {
    type: 'array',
    items: { type: 'number' },
    minItems: 1,
    maxItems: MAX_EMBEDDING_DIMENSIONS,
    example: [0.12, -0.03, 0.5],
  },
  { type: 'string', format: 'byte', example: 'j8L1PY/C9bwAAAA/' },
];

export const VECTOR_INPUT_DESCRIPTION =
  'A JSON array of numbers, or a string holding the float32 components, little-endian, in base64 ' +
  '(RFC 4648 standard alphabet, padded), as OpenAI returns them with encoding_format "base64": ' +
  'shorter than the JSON numbers, and exact (no decimal round trip).';

export class EmbeddingItemDto {
  @ApiPropertyOptional({
    example: 'b7e6a1c2-3f4d-4e5a-8b9c-0d1e2f3a4b5c',
    minLength: 1,
    maxLength: 255,
    description: 'Chunk id; an existing id is updated (upsert). Generated (uuid4) when absent',
  })
  @IsOptionalNotNull()
  @IsString()
  @MinLength(1)
  @MaxChars(255)
  @StorableText()
  id?: string;

  @ApiProperty({ example: 'Điều 1. Phạm vi điều chỉnh', maxLength: MAX_CONTENT_LENGTH })
  @IsString()
  @MaxChars(MAX_CONTENT_LENGTH)
  @StorableText()
  content: string;

  @ApiPropertyOptional({
    example: { document_id: 'law-1', chunk_index: 0 },
    description: 'Chunk metadata; document_id links the chunk to a document',
    type: 'object',
    additionalProperties: true,
  })
  @IsOptionalNotNull()
  @IsJsonObject()
  metadata?: Record<string, unknown>;

  @ApiPropertyOptional({
    oneOf: VECTOR_INPUT_FORMS,
    example: [0.12, -0.03, 0.5],
    description: `The vector; computed by the configured provider when absent. ${VECTOR_INPUT_DESCRIPTION}`,
  })
  @IsOptionalNotNull()
  @IsVector()
  /** VectorComponents once VectorBodyPipe has checked it (a base64 string decoded). */
  embedding?: VectorComponents;
}

/**
 * Request bodies for Swagger UI's "Try it out" (it sends the first): vectors computed by the
 * provider, since an example vector's dimension would have to be the collection's.
 */
export const CREATE_EMBEDDINGS_EXAMPLES = {
  chunks: {
    summary: 'Chunks of a document; their vectors computed by the configured provider',
    value: {
      items: [
        {
          content: 'Điều 1. Phạm vi điều chỉnh: Luật này quy định về chế độ sở hữu đất đai.',
          metadata: { document_id: 'luat-dat-dai-2024', chunk_index: 0 },
        },
        {
          content: 'Điều 2. Đối tượng áp dụng: cơ quan nhà nước, người sử dụng đất.',
          metadata: { document_id: 'luat-dat-dai-2024', chunk_index: 1 },
        },
      ],
    },
  },
  upsert: {
    summary: 'Your own chunk id: sending it again updates the chunk (as LangChain does)',
    value: {
      items: [
        {
          id: 'faq-thue-1',
          content: 'Hạn nộp tờ khai thuế tháng là ngày 20 của tháng sau.',
          // The document of POST /documents/ingest's first example: a chunk names a stored document.
          metadata: { document_id: 'huong-dan-nop-thue', chunk_index: 1 },
        },
      ],
    },
  },
};

export class CreateEmbeddingsDto {
  @ApiPropertyOptional({
    example: 'docs',
    minLength: 1,
    maxLength: 500,
    description: 'Target collection (created if missing); DEFAULT_COLLECTION when absent',
  })
  @IsOptionalNotNull()
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

  @ApiProperty({ type: 'integer', example: 1 })
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

/** Most chunk ids one POST /embeddings/delete may name. */
export const MAX_DELETE_IDS = 1000;

export class DeleteEmbeddingsDto {
  @ApiProperty({
    example: ['b7e6a1c2-3f4d-4e5a-8b9c-0d1e2f3a4b5c', 'luat-dat-dai-2024-0001'],
    type: 'array',
    items: { type: 'string', minLength: 1, maxLength: 1000 },
    minItems: 1,
    maxItems: MAX_DELETE_IDS,
    description:
      "The chunks to delete, in any collection (as LangChain's delete(ids) takes them); a repeated id counts once",
  })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_DELETE_IDS)
  @IsString({ each: true })
  @MinLength(1, { each: true })
  // As long as a path parameter may be (DELETE /embeddings/:id): LangChain writes ids of any length.
  @MaxChars(1000, { each: true })
  @StorableText({ each: true })
  ids: string[];
}

export class DeleteEmbeddingsResponseDto {
  @ApiProperty({
    example: ['b7e6a1c2-3f4d-4e5a-8b9c-0d1e2f3a4b5c'],
    type: [String],
    description: 'Ids deleted, in request order',
  })
  deleted: string[];

  @ApiProperty({
    example: ['luat-dat-dai-2024-0001'],
    type: [String],
    description: 'Ids no chunk had, in request order',
  })
  notFound: string[];
}
