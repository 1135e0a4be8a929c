import { type DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import type { AppConfig } from '../config/app-config.js';
import { ApiKeyGuard } from './api-key.guard.js';

/**
 * Registers ApiKeyGuard for every controller route (Swagger UI and CORS preflights are not controller
 * routes) when API_KEYS is set. Without keys the guard would let everything through, and a route
 * with no global guard skips Nest's guard step (an execution context and three promises per request).
 */
@Module({})
export class AuthModule {
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AuthModule,
      providers: config.auth.apiKeys.length > 0 ? [{ provide: APP_GUARD, useClass: ApiKeyGuard }] : [],
    };
  }
}
