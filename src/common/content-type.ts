import {
  type CallHandler,
  type ExecutionContext,
  Injectable,
  type NestInterceptor,
  UnsupportedMediaTypeException,
} from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants.js';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum.js';
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
 * types its OpenAPI operation declares (@ApiConsumes), JSON for a route that reads a @Body(); a
 * route that reads no body ignores one, as before. Fastify parses text/plain
 * and @fastify/multipart accepts multipart/form-data on every route, so such a body reached a JSON
 * route as a string or not at all: `POST /documents/recount` sent as a form ran a real recount
 * (dryRun missing), and JSON sent as text/plain (fetch's default for a string) was answered with
 * every field missing.
 */
@Injectable()
export class ContentTypeInterceptor implements NestInterceptor {
  /** Per handler: the media types it takes, or null when it reads no body (a stray one is ignored). */
  private readonly consumed = new WeakMap<object, string[] | null>();

  constructor(private readonly reflector: Reflector) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const contentType = request.headers['content-type'];
    if (contentType !== undefined && hasBody(request)) {
      const consumes = this.consumes(context);
      const mediaType = contentType.split(';')[0].trim().toLowerCase();
      if (consumes !== null && !consumes.includes(mediaType)) {
        throw new UnsupportedMediaTypeException(
          `Content-Type ${mediaType} is not accepted here: send ${consumes.join(' or ')}`,
        );
      }
    }
    return next.handle();
  }

  /** What the route's OpenAPI operation says it takes: its @ApiConsumes types, JSON for a @Body(), else nothing. */
  private consumes(context: ExecutionContext): string[] | null {
    const handler = context.getHandler();
    let consumes = this.consumed.get(handler);
    if (consumes === undefined) {
      const declared = this.reflector.getAllAndOverride<string[] | undefined>(API_CONSUMES_METADATA, [
        handler,
        context.getClass(),
      ]);
      const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, context.getClass(), handler.name) ?? {}) as object;
      const readsBody = Object.keys(args).some((key) => key.startsWith(`${RouteParamtypes.BODY}:`));
      consumes = declared ?? (readsBody ? DEFAULT_CONSUMES : null);
      this.consumed.set(handler, consumes);
    }
    return consumes;
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
