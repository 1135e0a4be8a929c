import { applyDecorators } from '@nestjs/common';
import { ApiBadGatewayResponse, ApiGatewayTimeoutResponse } from '@nestjs/swagger';
import type {
  ContentObject,
  HeaderObject,
  OpenAPIObject,
  OperationObject,
  ReferenceObject,
  ResponseObject,
  SchemaObject,
} from '@nestjs/swagger';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyRequest } from 'fastify';
import { REQUEST_ID_HEADER } from '../observability/logging.js';
import { CONFLICT_RETRY_AFTER_SECONDS, DATABASE_RETRY_AFTER_SECONDS } from './database-exception.filter.js';

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

/** Every operation of the document with its method and path, for the passes that complete the document. */
export function* documentOperations(document: OpenAPIObject): Generator<[OperationObject, HttpMethod, string]> {
  for (const [route, path] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const operation = path[method];
      if (operation) yield [operation, method, route];
    }
  }
}

/**
 * A route as Fastify names it (`POST /documents/:documentId`), from an operation of the document
 * (`post`, `/documents/{documentId}`): the key under which the Fastify hooks that act on the
 * document's declarations (media types, API-key access) look a request up (requestRouteKey).
 */
export function documentRouteKey(method: HttpMethod, path: string): string {
  return `${method.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ':$1')}`;
}

/** A request's route as documentRouteKey names it. */
export function requestRouteKey(request: FastifyRequest): string {
  return `${request.method} ${request.routeOptions.url}`;
}

/** The body of an error the service answers itself (ERROR_RESPONSE_SCHEMA). */
export interface ErrorBody {
  statusCode: number;
  message: string;
  error: string;
}

/**
 * A Fastify `onRequest` hook that answers a request `refusal` finds fault with, in the service's
 * error body, before its body is read; any other request goes on. A hook, not a Nest interceptor:
 * the first global interceptor puts every request through Nest's RxJS pipeline (about a tenth of
 * the throughput of /health/live). Call before init.
 */
export function refuseOnRequest(
  app: NestFastifyApplication,
  refusal: (request: FastifyRequest) => ErrorBody | undefined,
): void {
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onRequest', (request, reply, done) => {
      const body = refusal(request);
      if (body === undefined) return done();
      void reply.code(body.statusCode).send(body);
    });
}

/**
 * Declares a response that a mechanism shared by every route answers (the body limit, the media
 * type check) on one operation. An operation that declares the status itself for its own reasons
 * keeps its text and its body, and gains this one's reason: either can happen.
 */
export function declareSharedResponse(operation: OperationObject, status: string, response: ResponseObject): void {
  const own = operation.responses[status];
  if (own === undefined) {
    operation.responses[status] = response;
    return;
  }
  if ('$ref' in own || own.description.includes(response.description)) return;
  own.description = `${own.description}; or: ${response.description}`;
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

/** The Retry-After header of a 429 or 503, in seconds. */
export function retryAfterHeader(description: string): HeaderObject {
  return { description, schema: { type: 'integer', minimum: 0 } };
}

/**
 * Declares the 503 that DatabaseExceptionFilter answers, with its Retry-After, on every operation
 * but the health checks (their 503 is their own result, and /health/live touches no database): any
 * statement can meet a pool that stays busy, a restarting server or DB_STATEMENT_TIMEOUT_MS. A 503
 * a controller declares itself keeps its description and gains the header.
 */
export function documentServiceUnavailable(document: OpenAPIObject): OpenAPIObject {
  for (const [operation] of documentOperations(document)) {
    if (operation.tags?.includes('health')) continue;
    const response = (operation.responses['503'] ??= {
      description:
        'The database is busy, restarting or unreachable, or a statement ran past DB_STATEMENT_TIMEOUT_MS ' +
        '(and, where vectors are computed, the embedding provider is unreachable): retry after Retry-After',
    });
    if ('$ref' in response) continue;
    response.headers = {
      ...response.headers,
      'Retry-After': retryAfterHeader(
        `Seconds before retrying: ${DATABASE_RETRY_AFTER_SECONDS} for the database; an embedding provider's or LLM's own wait when it rate-limits`,
      ),
    };
    response.content ??= errorResponseContent({
      statusCode: 503,
      message: 'The database is unavailable; retry shortly',
      error: 'Service Unavailable',
    });
  }
  return document;
}

/**
 * Declares on every write the 409 of a conflict worth retrying as it is, with its Retry-After: a
 * transaction PostgreSQL cancelled for a concurrent one (deadlock, serialization failure) or
 * another RetryableConflictException. Any write can meet one; a search (POST /ask) only reads. An
 * operation's own 409 (a lasting conflict, such as a documentId that exists) keeps its text and
 * gains this reason, and the header says which of the two a client got.
 */
export function documentRetryableConflict(document: OpenAPIObject): OpenAPIObject {
  for (const [operation, method, path] of documentOperations(document)) {
    if (method === 'get' || operation.tags?.includes('health') || path === '/ask') continue;
    declareSharedResponse(operation, '409', {
      description:
        "A concurrent change got in the way and this request's transaction was rolled back (a recount keeps " +
        'the batches it committed before): retry after Retry-After',
      content: errorResponseContent({
        statusCode: 409,
        message: 'The request conflicted with a concurrent change; retry it',
        error: 'Conflict',
      }),
    });
    const response = operation.responses['409'];
    if (response === undefined || '$ref' in response) continue;
    response.headers = {
      ...response.headers,
      'Retry-After': retryAfterHeader(
        `Seconds before retrying (${CONFLICT_RETRY_AFTER_SECONDS}), on a conflict worth retrying at once; absent on a ` +
          'lasting one, and on a vector-index build still running (retry later)',
      ),
    };
  }
  return document;
}

/**
 * Marks every object schema a request body uses (its own and those it nests, through $ref, items and
 * oneOf) `additionalProperties: false`, as the ValidationPipe enforces (forbidNonWhitelisted: an
 * undeclared field is a 400). Free-form objects (metadata, filter) declare additionalProperties
 * themselves and keep it. Without it a client, a validator or a mock server built from the document
 * took extra fields for allowed.
 */
export function documentClosedRequestBodies(document: OpenAPIObject): OpenAPIObject {
  const schemas = (document.components?.schemas ?? {}) as Record<string, SchemaObject>;
  const seen = new Set<string>();
  const close = (schema: unknown): void => {
    if (typeof schema !== 'object' || schema === null) return;
    const ref = (schema as { $ref?: unknown }).$ref;
    if (typeof ref === 'string') {
      const name = ref.slice(ref.lastIndexOf('/') + 1);
      if (seen.has(name) || schemas[name] === undefined) return;
      seen.add(name);
      close(schemas[name]);
      return;
    }
    const object = schema as SchemaObject;
    if (object.properties !== undefined) {
      object.additionalProperties ??= false;
      for (const property of Object.values(object.properties)) close(property);
    }
    close(object.items);
    for (const form of object.oneOf ?? []) close(form);
  };
  for (const [operation] of documentOperations(document)) {
    const body = operation.requestBody;
    if (!body || '$ref' in body) continue;
    for (const media of Object.values(body.content)) close(media.schema);
  }
  return document;
}

/**
 * Declares headers once under components.headers, and gives the references that responses use:
 * declared inline, each header would be repeated in every response of every operation.
 */
export function declareComponentHeaders(
  document: OpenAPIObject,
  headers: Record<string, HeaderObject>,
): Record<string, ReferenceObject> {
  document.components ??= {};
  document.components.headers = { ...document.components.headers, ...headers };
  return Object.fromEntries(Object.keys(headers).map((name) => [name, { $ref: `#/components/headers/${name}` }]));
}

/** The name, under components.headers, of the request id header every response carries. */
const REQUEST_ID_HEADER_COMPONENT = 'X-Request-Id';

/**
 * Declares on every response the request id header that the logger sets (REQUEST_ID_HEADER): a
 * client quotes it to find its request in the logs. Declared once under components.headers.
 */
export function documentRequestIdHeader(document: OpenAPIObject): OpenAPIObject {
  const { [REQUEST_ID_HEADER_COMPONENT]: requestId } = declareComponentHeaders(document, {
    [REQUEST_ID_HEADER_COMPONENT]: {
      description:
        "The request's id in the service's logs: the caller's own x-request-id when it is 1–128 characters of " +
        'A–Z, a–z, 0–9, ".", "_" and "-", a new UUID otherwise',
      schema: { type: 'string', example: '0b9e4c1e-3f4a-4d2b-9a57-2f1f6f0c8e11' },
    },
  });
  for (const [operation] of documentOperations(document)) {
    for (const response of Object.values(operation.responses)) {
      if (!response || '$ref' in response) continue;
      response.headers = { [REQUEST_ID_HEADER]: requestId, ...response.headers };
    }
  }
  return document;
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

/** The 422 of an operation that sends the client's texts to EMBEDDINGS_PROVIDER (OpenAIHttpClient). */
export const EMBEDDING_INPUT_TOO_LONG = 'the embedding provider refused a text as longer than its model takes';

/**
 * The 502 and 504 of an operation that may compute vectors with EMBEDDINGS_PROVIDER (OpenAIHttp's
 * answers when the provider fails or does not answer in time; unreachable is the global 503).
 * `extra` names what else the operation calls, such as the LLM.
 */
export function ApiEmbeddingProviderResponses(extra = ''): MethodDecorator {
  const also = extra === '' ? '' : ` or ${extra}`;
  return applyDecorators(
    ApiBadGatewayResponse({
      description: `The embedding provider${also} answered with an error or an unusable response, through its retries`,
    }),
    ApiGatewayTimeoutResponse({
      description: `The embedding provider${also} did not answer within its timeout (EMBEDDINGS_TIMEOUT_MS${extra === '' ? '' : ', LLM_TIMEOUT_MS'})`,
    }),
  );
}
