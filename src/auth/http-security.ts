import helmet, { type FastifyHelmetOptions } from '@fastify/helmet';
import { Logger } from '@nestjs/common';
import Fastify from 'fastify';
import { IncomingMessage, type OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { AppConfig } from '../config/app-config.js';
import { RATE_LIMIT_HEADERS } from '../limits/throttling.module.js';

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
  if (config.http.trustProxy === true) logger.warn(TRUST_ANY_PROXY_WARNING);
}

/**
 * TRUST_PROXY=true takes the left-most X-Forwarded-For address as the client's, and the client
 * writes that one itself (a proxy appends the address it saw): every forged address gets a fresh
 * rate-limit budget. Said at startup, since true is what many setups try first.
 */
export const TRUST_ANY_PROXY_WARNING =
  "TRUST_PROXY=true trusts every X-Forwarded-For address, including the ones a client writes itself: the rate limit can be bypassed. Set the proxies' addresses or CIDR ranges, or the number of proxy hops, instead";

const HELMET_OPTIONS: FastifyHelmetOptions = {
  contentSecurityPolicy: {
    // Helmet's default CSP suits Swagger UI (its scripts are same-origin files, its inline styles are
    // allowed), except upgrade-insecure-requests: over plain HTTP on a non-localhost address it makes
    // the browser fetch /docs assets over HTTPS, and the page breaks.
    directives: { upgradeInsecureRequests: null },
  },
};

/**
 * The headers @fastify/helmet sets with `options`, taken from one request routed through a throwaway
 * Fastify instance: helmet sets them on the raw response in its onRequest hooks, before Fastify
 * writes any of its own, so the handler sees exactly helmet's. Without CSP nonces they depend on
 * nothing in the request, so they are computed once here rather than by the plugin, which rebuilds
 * helmet's middleware from its options on every request (a measurable cost on the hot reads).
 */
export async function helmetHeaders(options: FastifyHelmetOptions = HELMET_OPTIONS): Promise<OutgoingHttpHeaders> {
  const probe = Fastify();
  try {
    await probe.register(helmet, options);
    const headers = new Promise<OutgoingHttpHeaders>((resolve, reject) => {
      probe.get('/', (_request, reply) => {
        resolve({ ...reply.raw.getHeaders() });
        reply.hijack();
      });
      probe.setErrorHandler((error) => reject(error instanceof Error ? error : new Error(String(error))));
    });
    await probe.ready();
    // Fastify's own request handler on an unconnected request: no socket, no port.
    const request = new IncomingMessage(new Socket());
    request.method = 'GET';
    request.url = '/';
    probe.routing(request, new ServerResponse(request));
    return await headers;
  } finally {
    await probe.close();
  }
}

/**
 * Helmet's default headers on every response (routes, Swagger UI, 404s, errors), and CORS for
 * CORS_ORIGINS (off when empty, any origin for `*`). Must run before routes are registered (before
 * SwaggerModule.setup and init).
 */
export async function registerHttpSecurity(app: NestFastifyApplication, config: AppConfig): Promise<void> {
  const headers = Object.entries(await helmetHeaders()).filter(
    (entry): entry is [string, string | number | string[]] => entry[1] !== undefined,
  );
  // Set in onRequest, where @fastify/helmet sets them, but as Fastify reply headers rather than on the
  // raw response: Node keeps setHeader's headers in a second map, and writeHead then copies Fastify's
  // headers into it one setHeader call at a time; with only Fastify's, writeHead takes them as they are.
  // Fastify keeps them through error replies too (its error handler drops only content-type/-length).
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onRequest', (_request, reply, done) => {
      for (const [name, value] of headers) void reply.header(name, value);
      done();
    });
  const origins = config.http.corsOrigins;
  if (origins.length > 0) {
    app.enableCors({
      origin: origins.includes('*') ? true : [...origins],
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      // What a browser client may read: the request id, when to retry, a new resource's URL, and the
      // rate limit's counters (set while THROTTLE_LIMIT > 0).
      exposedHeaders: ['x-request-id', 'Retry-After', 'Location', ...Object.values(RATE_LIMIT_HEADERS)],
      maxAge: 600,
    });
  }
}
