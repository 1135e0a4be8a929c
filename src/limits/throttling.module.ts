import {
  applyDecorators,
  type DynamicModule,
  type ExecutionContext,
  HttpException,
  HttpStatus,
  Injectable,
  Module,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ApiExtension, type OpenAPIObject } from '@nestjs/swagger';
import { SkipThrottle, ThrottlerGuard, type ThrottlerLimitDetail, ThrottlerModule } from '@nestjs/throttler';
import {
  declareComponentHeaders,
  documentOperations,
  errorResponseContent,
  retryAfterHeader,
} from '../common/openapi-errors.js';
import type { AppConfig } from '../config/app-config.js';

/** The headers @nestjs/throttler sets on every request it counts (its default names, no throttler name). */
export const RATE_LIMIT_HEADERS = {
  limit: 'X-RateLimit-Limit',
  remaining: 'X-RateLimit-Remaining',
  reset: 'X-RateLimit-Reset',
} as const;

/** OpenAPI extension of an operation the rate limit does not apply to (`false`). */
export const OPENAPI_RATE_LIMITED_EXTENSION = 'x-rate-limited';

/**
 * No rate limit on these routes, for the guard and in the OpenAPI document: health probes and
 * metrics scraping, which an orchestrator must never be told to back off from.
 */
export function Unthrottled(): ClassDecorator & MethodDecorator {
  return applyDecorators(SkipThrottle(), ApiExtension(OPENAPI_RATE_LIMITED_EXTENSION, false));
}

/** The message of the 429, for a client over `limit` requests per `ttlMs`, `retryAfter` seconds before it may retry. */
function tooManyRequestsMessage(limit: number, ttlMs: number, retryAfter: number): string {
  return `Too many requests: at most ${limit} per ${Math.ceil(ttlMs / 1000)} s per client; retry after ${retryAfter} s`;
}

/** The 429 body, in the standard error shape: the guard's, and useEarlyApiKeyCheck's for the requests it refuses. */
export function tooManyRequestsBody(
  limit: number,
  ttlMs: number,
  retryAfter: number,
): { statusCode: number; message: string; error: string } {
  return {
    statusCode: HttpStatus.TOO_MANY_REQUESTS,
    message: tooManyRequestsMessage(limit, ttlMs, retryAfter),
    error: 'Too Many Requests',
  };
}

/**
 * Declares the 429 (with Retry-After) on every operation the rate limit applies to, and the
 * X-RateLimit-* headers on its 2xx responses, while THROTTLE_LIMIT > 0; operations marked
 * Unthrottled are left alone.
 */
export function documentRateLimit(document: OpenAPIObject, config: AppConfig): OpenAPIObject {
  const { throttleLimit: limit, throttleTtlMs: ttlMs } = config.http;
  if (limit <= 0) return document;
  const seconds = Math.ceil(ttlMs / 1000);
  const rateLimitHeaders = declareComponentHeaders(document, {
    [RATE_LIMIT_HEADERS.limit]: {
      description: `Requests one client may send per window (THROTTLE_LIMIT, here ${limit})`,
      schema: { type: 'integer', minimum: 0, example: limit },
    },
    [RATE_LIMIT_HEADERS.remaining]: {
      description: 'Requests this client has left in the current window',
      schema: { type: 'integer', minimum: 0, example: limit - 1 },
    },
    [RATE_LIMIT_HEADERS.reset]: {
      description: `Seconds until the current window ends (THROTTLE_TTL_MS, here ${seconds} s a window)`,
      schema: { type: 'integer', minimum: 0, example: seconds },
    },
  });
  for (const [operation] of documentOperations(document)) {
    if ((operation as unknown as Record<string, unknown>)[OPENAPI_RATE_LIMITED_EXTENSION] === false) continue;
    // The counters of the window this request was counted in, on every answer that got past the limit.
    for (const [code, response] of Object.entries(operation.responses)) {
      if (!code.startsWith('2') || !response || '$ref' in response) continue;
      response.headers = { ...response.headers, ...rateLimitHeaders };
    }
    operation.responses['429'] ??= {
      description: `Over THROTTLE_LIMIT: ${limit} requests per ${seconds} s from one client, across all routes`,
      headers: { 'Retry-After': retryAfterHeader('Seconds until the client may send again') },
      content: errorResponseContent({
        statusCode: 429,
        message: tooManyRequestsMessage(limit, ttlMs, 12),
        error: 'Too Many Requests',
      }),
    };
  }
  return document;
}

/**
 * ThrottlerGuard with a 429 in the standard error shape (`error: 'Too Many Requests'`) and a message
 * that says the limit and when to retry; `Retry-After` (seconds) is set by the base guard.
 */
@Injectable()
export class ClientThrottlerGuard extends ThrottlerGuard {
  protected override throwThrottlingException(_context: ExecutionContext, detail: ThrottlerLimitDetail): Promise<void> {
    throw new HttpException(
      tooManyRequestsBody(detail.limit, detail.ttl, detail.timeToBlockExpire),
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}

/** The one throttler's name. */
export const THROTTLER_NAME = 'default';

/**
 * A client's key in the throttler's storage: one budget per client across all routes. Shared with
 * useEarlyApiKeyCheck, which counts the requests it refuses before the guard would have.
 */
export function throttleKey(tracker: string): string {
  return `${THROTTLER_NAME}:${tracker}`;
}

/**
 * Rate limiting per client IP (Fastify's `req.ip`: behind a proxy, TRUST_PROXY says whose
 * X-Forwarded-For counts), one budget across all routes: THROTTLE_LIMIT requests per THROTTLE_TTL_MS, 0 = off. Over the budget a
 * request is a 429 with `Retry-After`. Health probes and metrics scraping opt out with @Unthrottled().
 * At THROTTLE_LIMIT=0 no guard is registered at all (not a guard that lets everything through): a
 * route with no global guard skips Nest's guard step, an execution context and three promises per request.
 */
@Module({})
export class ThrottlingModule {
  static forRoot(config: AppConfig): DynamicModule {
    const throttles = config.http.throttleLimit > 0;
    return {
      module: ThrottlingModule,
      imports: [
        ThrottlerModule.forRoot({
          throttlers: [{ name: THROTTLER_NAME, limit: config.http.throttleLimit, ttl: config.http.throttleTtlMs }],
          // The default key includes the route, which would give each client a budget per route.
          generateKey: (_context, tracker) => throttleKey(tracker),
        }),
      ],
      providers: throttles ? [{ provide: APP_GUARD, useClass: ClientThrottlerGuard }] : [],
    };
  }
}
