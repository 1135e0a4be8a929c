import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { OpenAPIObject } from '@nestjs/swagger';
import { getStorageToken, normalizeIp, type ThrottlerStorage } from '@nestjs/throttler';
import { hasBody } from '../common/content-type.js';
import { documentOperations, documentRouteKey, requestRouteKey } from '../common/openapi-errors.js';
import type { ApiScope, AppConfig } from '../config/app-config.js';
import { THROTTLER_NAME, throttleKey, tooManyRequestsBody } from '../limits/throttling.module.js';
import { ApiKeys, type RequestWithApiKeyLabel } from './api-key.guard.js';
import { operationAccess } from './openapi-security.js';

/**
 * Refuses a request with a body that ApiKeyGuard would refuse (no key, an unknown key, a key
 * without the route's scope) before Fastify reads the body. Nest's guards run after the body is
 * read and parsed, so without this a client could make the service read and parse up to the
 * route's body limit (32 MiB on the bulk writes) per request only to be told 401, with any key
 * header at all. Same rule (ApiKeys), same answers; each route's access comes from its OpenAPI
 * operation (`@Public()`, `@RequiredScope`, the method), as the 401/403 the document declares do.
 * A request refused here never reaches the rate-limit guard, so it is counted here against
 * THROTTLE_LIMIT under the guard's own key: guessed keys use up the client's budget as before, and
 * past it the answer is the guard's 429. Requests without a body (reads) are left to the guards. A
 * no-op without API_KEYS. Call before init, after the security headers.
 */
export function useEarlyApiKeyCheck(app: NestFastifyApplication, document: OpenAPIObject, config: AppConfig): void {
  const keys = new ApiKeys(config);
  if (!keys.enabled) return;
  const access = new Map<string, ApiScope | 'public'>();
  for (const [operation, method, path] of documentOperations(document)) {
    access.set(documentRouteKey(method, path), operationAccess(document, operation, method));
  }
  const { throttleLimit: limit, throttleTtlMs: ttl } = config.http;
  const storage = limit > 0 ? app.get<ThrottlerStorage>(getStorageToken(), { strict: false }) : undefined;
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onRequest', async (request, reply) => {
      if (!hasBody(request)) return;
      const scope = access.get(requestRouteKey(request));
      if (scope === undefined || scope === 'public') return;
      const decision = keys.decide(scope, request.headers);
      if (decision.allowed) return;
      if (storage) {
        const { isBlocked, timeToBlockExpire, totalHits, timeToExpire } = await storage.increment(
          throttleKey(normalizeIp(request.ip)),
          ttl,
          limit,
          ttl,
          THROTTLER_NAME,
        );
        if (isBlocked) {
          void reply.header('Retry-After', String(timeToBlockExpire));
          return reply.code(429).send(tooManyRequestsBody(limit, ttl, timeToBlockExpire));
        }
        // As the guard reports them on every request it counts.
        void reply.header('X-RateLimit-Limit', String(limit));
        void reply.header('X-RateLimit-Remaining', String(Math.max(0, limit - totalHits)));
        void reply.header('X-RateLimit-Reset', String(timeToExpire));
      }
      if (decision.label !== undefined) {
        request.apiKeyLabel = decision.label;
        (request.raw as RequestWithApiKeyLabel).apiKeyLabel = decision.label;
      }
      if (decision.challenge) void reply.header('WWW-Authenticate', decision.challenge);
      return reply.code(decision.status).send({
        statusCode: decision.status,
        message: decision.message,
        error: decision.status === 401 ? 'Unauthorized' : 'Forbidden',
      });
    });
}
