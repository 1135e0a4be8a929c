import type { ContentObject, OpenAPIObject, OperationObject, SchemaObject } from '@nestjs/swagger';

export const ERROR_RESPONSE_SCHEMA_NAME = 'ErrorResponse';

/**
 * The body of every error the service answers itself: Nest's shape, which the global
 * DatabaseExceptionFilter keeps for HttpExceptions and uses for database errors.
 */
const ERROR_RESPONSE_SCHEMA: SchemaObject = {
  type: 'object',
  required: ['statusCode', 'message', 'error'],
  properties: {
    statusCode: { type: 'integer', example: 404 },
    message: {
      description: 'What is wrong: one sentence, or one per failed rule when a body or query fails validation',
      oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
      example: 'Document "luat-dat-dai-2024" not found',
    },
    error: { type: 'string', description: "The status code's name", example: 'Not Found' },
  },
};

const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options'] as const;
export type HttpMethod = (typeof METHODS)[number];

/** Every operation of the document with its method, for the passes that complete the document. */
export function* documentOperations(document: OpenAPIObject): Generator<[OperationObject, HttpMethod]> {
  for (const path of Object.values(document.paths)) {
    for (const method of METHODS) {
      const operation = path[method];
      if (operation) yield [operation, method];
    }
  }
}

/** A JSON body of the shared ErrorResponse schema. */
export function errorResponseContent(example?: Record<string, unknown>): ContentObject {
  return {
    'application/json': {
      schema: { $ref: `#/components/schemas/${ERROR_RESPONSE_SCHEMA_NAME}` },
      ...(example ? { example } : {}),
    },
  };
}

/**
 * Gives every 4xx and 5xx response that the controllers declare by description only a body, the
 * shared ErrorResponse schema, so an explorer of the document (and a client generator) sees what
 * an error carries. A response that declares its own body (the health checks' 503) keeps it.
 */
export function documentErrorResponses(document: OpenAPIObject): OpenAPIObject {
  document.components ??= {};
  document.components.schemas ??= {};
  document.components.schemas[ERROR_RESPONSE_SCHEMA_NAME] = ERROR_RESPONSE_SCHEMA;
  for (const [operation] of documentOperations(document)) {
    for (const [code, response] of Object.entries(operation.responses)) {
      if (Number(code) < 400 || !response || '$ref' in response || response.content) continue;
      response.content = errorResponseContent();
    }
  }
  return document;
}
