import helmet from '@fastify/helmet';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { AppConfig } from '../config/app-config.js';

export const OPEN_SERVICE_WARNING = 'API_KEYS is not set: every route is open to anyone who can reach this port';

/** What the service says at startup about access control; never a key. */
export function accessControlSummary(auth: AppConfig['auth']): { level: 'warn' | 'log'; message: string } {
  if (auth.apiKeys.length === 0) return { level: 'warn', message: OPEN_SERVICE_WARNING };
  const count = auth.apiKeys.length;
  return {
    level: 'log',
    message: `API keys required: ${count} key${count === 1 ? '' : 's'} configured; reads ${
      auth.readsPublic ? 'are public (API_READS_PUBLIC=true)' : 'need a key (API_READS_PUBLIC=false)'
    }`,
  };
}

export function logAccessControl(config: AppConfig, logger = new Logger('Auth')): void {
  const { level, message } = accessControlSummary(config.auth);
  if (level === 'warn') logger.warn(message);
  else logger.log(message);
}

/**
 * Helmet's default headers on every response, and CORS for CORS_ORIGINS (off when empty, any
 * origin for `*`). Must run before routes are registered (before SwaggerModule.setup and init).
 */
export async function registerHttpSecurity(app: NestFastifyApplication, config: AppConfig): Promise<void> {
  await app.register(helmet, {
    contentSecurityPolicy: {
      // Helmet's default CSP suits Swagger UI (its scripts are same-origin files, its inline styles are
      // allowed), except upgrade-insecure-requests: over plain HTTP on a non-localhost address it makes
      // the browser fetch /docs assets over HTTPS, and the page breaks.
      directives: { upgradeInsecureRequests: null },
    },
  });
  const origins = config.http.corsOrigins;
  if (origins.length > 0) {
    app.enableCors({
      origin: origins.includes('*') ? true : [...origins],
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      exposedHeaders: ['x-request-id', 'Retry-After'],
      maxAge: 600,
    });
  }
}
