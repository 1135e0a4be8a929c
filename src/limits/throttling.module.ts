import { type CanActivate, type ExecutionContext, HttpException, HttpStatus, Injectable, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ThrottlerGuard, type ThrottlerLimitDetail, ThrottlerModule } from '@nestjs/throttler';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';

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

const NO_THROTTLING: CanActivate = { canActivate: () => true };

/**
 * Rate limiting per client IP (Fastify's `req.ip`: behind a proxy, configure its trustProxy), one
 * budget across all routes: THROTTLE_LIMIT requests per THROTTLE_TTL_MS, 0 = off. Over the budget a
 * request is a 429 with `Retry-After`. Health probes and metrics scraping opt out with @SkipThrottle().
 */
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        throttlers: [{ name: 'default', limit: config.http.throttleLimit, ttl: config.http.throttleTtlMs }],
        skipIf: () => config.http.throttleLimit === 0,
        // The default key includes the route, which would give each client a budget per route.
        generateKey: (_context, tracker, name) => `${name}:${tracker}`,
      }),
    }),
  ],
  providers: [
    ClientThrottlerGuard,
    {
      provide: APP_GUARD,
      inject: [APP_CONFIG, ClientThrottlerGuard],
      // THROTTLE_LIMIT=0: a guard with nothing to do, rather than ThrottlerGuard's per-request
      // metadata lookups and promises only to reach its skipIf.
      useFactory: (config: AppConfig, guard: ClientThrottlerGuard): CanActivate =>
        config.http.throttleLimit === 0 ? NO_THROTTLING : guard,
    },
  ],
})
export class ThrottlingModule {}
