/**
 * Fastify response schemas (JSON Schema) of the hot document reads, so Fastify serializes their
 * 200 bodies with a compiled serializer (fast-json-stringify) instead of JSON.stringify.
 *
 * They restate DocumentDto and DocumentListDto, which stay the source of the OpenAPI document. A
 * compiled serializer writes only the properties listed here: a field added to the DTO and not here
 * would be dropped silently, so test/documents.e2e-spec.ts checks that these schemas list exactly the
 * properties the OpenAPI document gives those DTOs, and that the responses carry every one of them.
 * Every property is required: a missing value is a 500, never a quietly smaller object.
 */
const nullable = (type: 'string' | 'integer') => ({ type: [type, 'null'] }) as const;

export const DOCUMENT_RESPONSE_SCHEMA = {
  type: 'object',
  required: [
    'id',
    'documentId',
    'documentName',
    'documentType',
    'category',
    'sourceFile',
    'fileName',
    'totalChunks',
    'status',
    'createdAt',
    'updatedAt',
  ],
  properties: {
    id: { type: 'string' },
    documentId: { type: 'string' },
    documentName: { type: 'string' },
    documentType: { type: 'string' },
    category: { type: 'string' },
    sourceFile: { type: 'string' },
    fileName: { type: 'string' },
    totalChunks: nullable('integer'),
    status: nullable('string'),
    // Date objects from the driver: written as toISOString(), as JSON.stringify does.
    createdAt: { type: 'string', format: 'date-time' },
    updatedAt: { type: 'string', format: 'date-time' },
  },
} as const;

export const DOCUMENT_LIST_RESPONSE_SCHEMA = {
  type: 'object',
  required: ['items', 'total', 'limit', 'offset'],
  properties: {
    items: { type: 'array', items: DOCUMENT_RESPONSE_SCHEMA },
    total: { type: 'integer' },
    limit: { type: 'integer' },
    offset: { type: 'integer' },
  },
} as const;
