import {
  type CallHandler,
  type ExecutionContext,
  Injectable,
  type NestInterceptor,
  UnsupportedMediaTypeException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { OpenAPIObject } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import type { Observable } from 'rxjs';
import { documentOperations, errorResponseContent } from './openapi-errors.js';

/** Where @ApiConsumes keeps its media types: @nestjs/swagger's DECORATORS.API_CONSUMES, which its package does not export. */
const API_CONSUMES_METADATA = 'swagger/apiConsumes';

/** What a route takes when it declares nothing else with @ApiConsumes. */
const DEFAULT_CONSUMES = ['application/json'];

/** Whether the request carries a body (RFC 9112 §6.3: a length above 0, or a chunked transfer). */
function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Refuses a body in a media type the route does not take, with a 415 naming what it takes: the
 * types its OpenAPI operation declares (@ApiConsumes), JSON by default. Fastify parses text/plain
 * and @fastify/multipart accepts multipart/form-data on every route, so such a body reached a JSON
 * route as a string or not at all: `POST /documents/recount` sent as a form ran a real recount
 * (dryRun missing), and JSON sent as text/plain (fetch's default for a string) was answered with
 * every field missing.
 */
@Injectable()
export class ContentTypeInterceptor implements NestInterceptor {
  constructor(private readonly reflector: Reflector) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const contentType = request.headers['content-type'];
    if (contentType !== undefined && hasBody(request)) {
      const mediaType = contentType.split(';')[0].trim().toLowerCase();
      const consumes =
        this.reflector.getAllAndOverride<string[] | undefined>(API_CONSUMES_METADATA, [
          context.getHandler(),
          context.getClass(),
        ]) ?? DEFAULT_CONSUMES;
      if (!consumes.includes(mediaType)) {
        throw new UnsupportedMediaTypeException(
          `Content-Type ${mediaType} is not accepted here: send ${consumes.join(' or ')}`,
        );
      }
    }
    return next.handle();
  }
}

/** Declares ContentTypeInterceptor's 415 on every operation that takes a body; a 415 it declares itself is kept. */
export function documentUnsupportedMediaType(document: OpenAPIObject): OpenAPIObject {
  for (const [operation] of documentOperations(document)) {
    const body = operation.requestBody;
    if (!body || '$ref' in body) continue;
    const consumes = Object.keys(body.content);
    operation.responses['415'] ??= {
      description: `The body is not ${consumes.join(' or ')}`,
      content: errorResponseContent({
        statusCode: 415,
        message: `Content-Type text/plain is not accepted here: send ${consumes.join(' or ')}`,
        error: 'Unsupported Media Type',
      }),
    };
  }
  return document;
}
