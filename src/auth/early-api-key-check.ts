import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { OpenAPIObject } from '@nestjs/swagger';
import { hasBody } from '../common/content-type.js';
import { documentOperations } from '../common/openapi-errors.js';
import type { ApiScope, AppConfig } from '../config/app-config.js';
import { ApiKeys, presentedApiKey } from './api-key.guard.js';
import { operationAccess } from './openapi-security.js';

/**
 * Refuses a request with a body that presents no API key where ApiKeyGuard would refuse it, before
 * Fastify reads the body. Nest's guards run after the body is read and parsed, so without this an
 * anonymous client could make the service read and parse up to the route's body limit (32 MiB on
 * the bulk writes) per request only to be told 401. Same rule (ApiKeys), same answer; each route's
 * access comes from its OpenAPI operation (`@Public()`, `@RequiredScope`, the method), as the
 * 401/403 the document declares do. A request that presents a key, right or wrong, is left to the
 * guards: the rate-limit guard runs before the key guard, so guessed keys keep counting against
 * THROTTLE_LIMIT (answered here, they would not). Requests without a body (reads) are left to them
 * too. A no-op without API_KEYS. Call before init, after the security headers.
 */
export function useEarlyApiKeyCheck(app: NestFastifyApplication, document: OpenAPIObject, config: AppConfig): void {
  const keys = new ApiKeys(config);
  if (!keys.enabled) return;
  const access = new Map<string, ApiScope | 'public'>();
  for (const [operation, method, path] of documentOperations(document)) {
    access.set(
      `${method.toUpperCase()} ${path.replace(/\{([^}]+)\}/g, ':$1')}`,
      operationAccess(document, operation, method),
    );
  }
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onRequest', (request, reply, done) => {
      if (!hasBody(request) || presentedApiKey(request.headers) !== undefined) return done();
      const scope = access.get(`${request.method} ${request.routeOptions.url}`);
      if (scope === undefined || scope === 'public') return done();
      const decision = keys.decide(scope, request.headers);
      if (decision.allowed) return done();
      if (decision.challenge) void reply.header('WWW-Authenticate', decision.challenge);
      void reply.code(decision.status).send({
        statusCode: decision.status,
        message: decision.message,
        error: decision.status === 401 ? 'Unauthorized' : 'Forbidden',
      });
    });
}
