import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { OpenAPIObject } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import {
  declareSharedResponse,
  documentOperations,
  documentRouteKey,
  errorResponseContent,
  refuseOnRequest,
  requestRouteKey,
} from './openapi-errors.js';

/** Whether the request carries a body (RFC 9112 §6.3: a length above 0, or a chunked transfer). */
export function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Per route (`POST /documents/:documentId`, as Fastify names it), the request body its OpenAPI
 * operation takes: its media types, and whether it is required. A route that takes none is absent.
 */
function requestBodies(document: OpenAPIObject): Map<string, { mediaTypes: string[]; required: boolean }> {
  const bodies = new Map<string, { mediaTypes: string[]; required: boolean }>();
  for (const [operation, method, path] of documentOperations(document)) {
    const body = operation.requestBody;
    if (!body || '$ref' in body) continue;
    bodies.set(documentRouteKey(method, path), {
      mediaTypes: Object.keys(body.content),
      required: body.required === true,
    });
  }
  return bodies;
}

/**
 * Refuses a body in a media type the route does not take, with a 415 naming what it takes: the
 * types of its OpenAPI operation's request body (JSON, and multipart for the upload), before the
 * body is read. Fastify parses text/plain and @fastify/multipart accepts multipart/form-data on every
 * route, so such a body reached a JSON route as a string or not at all: `POST /documents/recount`
 * sent as a form ran a real recount (dryRun missing), and JSON sent as text/plain (fetch's default
 * for a string) was answered with every field missing. A route that takes no body ignores one.
 * Call before init.
 */
export function useContentTypeCheck(app: NestFastifyApplication, document: OpenAPIObject): void {
  const bodies = requestBodies(document);
  refuseOnRequest(app, (request) => {
    const contentType = request.headers['content-type'];
    // The route's body is looked up only when the request says something of one: not on every read.
    if (!hasBody(request)) {
      // No body, though a Content-Type says what it would be (client generators send one always): on a
      // route whose body is optional that is the request without one, not Fastify's 400 for an empty JSON body.
      if (contentType !== undefined && bodies.get(requestRouteKey(request))?.required === false) {
        delete request.headers['content-type'];
      }
      return undefined;
    }
    const takes = bodies.get(requestRouteKey(request))?.mediaTypes;
    if (contentType === undefined) {
      // Fastify refuses it too, but with a bare "Unsupported Media Type" that says nothing of what to send.
      return takes === undefined
        ? undefined
        : {
            statusCode: 415,
            message: `The body has no Content-Type: send ${takes.join(' or ')}`,
            error: 'Unsupported Media Type',
          };
    }
    const mediaType = contentType.split(';')[0].trim().toLowerCase();
    if (takes === undefined || takes.includes(mediaType)) return undefined;
    return {
      statusCode: 415,
      message: `Content-Type ${mediaType} is not accepted here: send ${takes.join(' or ')}`,
      error: 'Unsupported Media Type',
    };
  });
}

/** Declares useContentTypeCheck's 415 on every operation that takes a body; an operation's own 415 gains this reason. */
export function documentUnsupportedMediaType(document: OpenAPIObject): OpenAPIObject {
  for (const [operation] of documentOperations(document)) {
    const body = operation.requestBody;
    if (!body || '$ref' in body) continue;
    const consumes = Object.keys(body.content);
    declareSharedResponse(operation, '415', {
      description: `The body is not ${consumes.join(' or ')}`,
      content: errorResponseContent({
        statusCode: 415,
        message: `Content-Type text/plain is not accepted here: send ${consumes.join(' or ')}`,
        error: 'Unsupported Media Type',
      }),
    });
  }
  return document;
}
