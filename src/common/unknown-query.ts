import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { OpenAPIObject } from '@nestjs/swagger';
import {
  declareSharedResponse,
  documentOperations,
  documentRouteKey,
  errorResponseContent,
  refuseOnRequest,
  requestRouteKey,
} from './openapi-errors.js';

/**
 * The routes (as Fastify names them) whose OpenAPI operation declares no query parameter, each
 * with its documented name (`DELETE /collections/{name}`). The health checks are left out: probes
 * and uptime monitors add cache-busting parameters of their own.
 */
export function routesWithoutQuery(document: OpenAPIObject): Map<string, string> {
  const routes = new Map<string, string>();
  for (const [operation, method, path] of documentOperations(document)) {
    if (operation.tags?.includes('health')) continue;
    const declaresQuery = (operation.parameters ?? []).some(
      (parameter) => 'in' in parameter && parameter.in === 'query',
    );
    if (declaresQuery) continue;
    routes.set(documentRouteKey(method, path), `${method.toUpperCase()} ${path}`);
    // Fastify answers HEAD on every GET route, with the GET handler.
    if (method === 'get') routes.set(documentRouteKey('head', path), `${method.toUpperCase()} ${path}`);
  }
  return routes;
}

/**
 * Refuses a query parameter on a route that takes none, with a 400 naming it, before the body is
 * read. Routes with a query DTO refuse unknown parameters through the ValidationPipe
 * (forbidNonWhitelisted); without this, every other route ignored them, so
 * `DELETE /collections/x?dryRun=true` deleted the collection and `GET /collections?limit=10`
 * answered every one as if it had paginated. Call before init, after the early API-key check.
 */
export function useUnknownQueryCheck(app: NestFastifyApplication, document: OpenAPIObject): void {
  const routes = routesWithoutQuery(document);
  refuseOnRequest(app, (request) => {
    const unknown = Object.keys(request.query as Record<string, unknown>)[0];
    const route = unknown === undefined ? undefined : routes.get(requestRouteKey(request));
    if (route === undefined) return undefined;
    return {
      statusCode: 400,
      message: `Unknown query parameter "${unknown}": ${route} takes no query parameters`,
      error: 'Bad Request',
    };
  });
}

/** Declares useUnknownQueryCheck's 400 on every operation it applies to; an operation's own 400 gains this reason. */
export function documentUnknownQuery(document: OpenAPIObject): OpenAPIObject {
  const routes = routesWithoutQuery(document);
  for (const [operation, method, path] of documentOperations(document)) {
    const route = routes.get(documentRouteKey(method, path));
    if (route === undefined) continue;
    declareSharedResponse(operation, '400', {
      description: 'A query parameter was sent: this operation takes none',
      content: errorResponseContent({
        statusCode: 400,
        message: `Unknown query parameter "limit": ${route} takes no query parameters`,
        error: 'Bad Request',
      }),
    });
  }
  return document;
}
