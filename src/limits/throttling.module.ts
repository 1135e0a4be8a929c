import {
  type DynamicModule,
  type ExecutionContext,
  HttpException,
  HttpStatus,
  Injectable,
  Module,
} from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerGuard, type ThrottlerLimitDetail, ThrottlerModule } from '@nestjs/throttler';
import type { AppConfig } from '../config/app-config.js';

/**
 * ThrottlerGuard with a 429 in the standard error shape (`error: 'Too Many Requests'`) and a message
 * that says the limit and when to retry; `Retry-After` (seconds) is set by the base guard.
 */
@Injectable()
export class ClientThrottlerGuard extends ThrottlerGuard {
  protected override throwThrottlingException(_context: ExecutionContext, detail: ThrottlerLimitDetail): Promise<void> {
    const windowSeconds = Math.ceil(detail.ttl / 1000);
    throw new HttpException(
      {
        statusCode: HttpStatus.TOO_MANY_REQUESTS,
        message: `Too many requests: at most ${detail.limit} per ${windowSeconds} s per client; retry after ${detail.timeToBlockExpire} s`,
        error: 'Too Many Requests',
      },
      HttpStatus.TOO_MANY_REQUESTS,
    );
  }
}

/**
 * Rate limiting per client IP (Fastify's `req.ip`: behind a proxy, configure its trustProxy), one
 * budget across all routes: THROTTLE_LIMIT requests per THROTTLE_TTL_MS, 0 = off. Over the budget a
 * request is a 429 with `Retry-After`. Health probes and metrics scraping opt out with @SkipThrottle().
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
          throttlers: [{ name: 'default', limit: config.http.throttleLimit, ttl: config.http.throttleTtlMs }],
          // The default key includes the route, which would give each client a budget per route.
          generateKey: (_context, tracker, name) => `${name}:${tracker}`,
        }),
      ],
      providers: throttles ? [{ provide: APP_GUARD, useClass: ClientThrottlerGuard }] : [],
    };
  }
}
