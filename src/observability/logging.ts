import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Params } from 'nestjs-pino';
import { stdSerializers } from 'pino';
import type { AppConfig } from '../config/app-config.js';
import { redactConnectionStrings } from './redact.js';

export const REQUEST_ID_HEADER = 'x-request-id';

/** What a caller may send as its own request id: short, and safe to echo in headers and logs. */
const VALID_REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

/** Paths polled by probes and scrapers: their per-request lines would drown everything else. */
const QUIET_PATHS = /^\/(health(\/.*)?|metrics)$/;

/**
 * The request id: the caller's `x-request-id` when it is well-formed (so one id follows a request
 * across services), a new UUID otherwise. Anything else a caller sends is dropped, not echoed.
 */
export function requestIdFor(req: IncomingMessage): string {
  const incoming = req.headers[REQUEST_ID_HEADER];
  return typeof incoming === 'string' && VALID_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/** The path as requested (`originalUrl` in case a middleware runner has cut `req.url`). */
function requestPath(req: IncomingMessage): string {
  return ((req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '').split('?')[0];
}

/** Probe and scrape requests write no access line. */
export function isQuietPath(req: IncomingMessage): boolean {
  return QUIET_PATHS.test(requestPath(req));
}

/** 4xx are the client's business; a 5xx is ours (the exception filter has already logged its cause). */
export function accessLineLevel(statusCode: number): 'info' | 'error' {
  return statusCode >= 500 ? 'error' : 'info';
}

/** Set by the API-key guard on the raw request, so request lines name the key (never the secret). */
export interface LabelledRequest extends IncomingMessage {
  apiKeyLabel?: string;
}

/**
 * nestjs-pino options: JSON lines at the configured level, secrets redacted. pino-http only builds the
 * process's root logger (its serializers): nestjs-pino mounts no middleware (`forRoutes: []`), because
 * RequestLoggingHook gives each request its `reqId` context and writes the access line itself, at a
 * fraction of the middleware's per-request cost.
 * nestjs-pino builds one pino-http instance per process, from the first app's options: apps built
 * later in the same process (tests) log through it too.
 */
export function loggerParams(config: AppConfig): Params {
  return {
    forRoutes: [],
    pinoHttp: [
      {
        level: config.logLevel,
        redact: {
          paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie'],
          censor: '[redacted]',
        },
        serializers: {
          // pino-http hands it the standard request object; a key or token sent in the query string
          // (the service takes none there) would otherwise be written in url and query.
          req: (req: { url?: string; query?: unknown }) => ({
            ...req,
            url: typeof req.url === 'string' ? redactSecretParameters(req.url) : req.url,
            query: redactSecretQuery(req.query),
          }),
          // The status is what matters; response headers are the same few on every line.
          res: (res: ServerResponse) => ({ statusCode: res.statusCode }),
          err: (err: Error) => {
            const serialized = stdSerializers.err(err);
            serialized.message = redactConnectionStrings(serialized.message);
            serialized.stack = redactConnectionStrings(serialized.stack);
            return serialized;
          },
        },
        hooks: {
          logMethod(args, method) {
            const redacted = args.map((arg: unknown) => (typeof arg === 'string' ? redactConnectionStrings(arg) : arg));
            method.apply(this, redacted as Parameters<typeof method>);
          },
        },
      },
      // process.stdout rather than pino's own fd writer: the same bytes, and a test can observe them.
      process.stdout,
    ],
  };
}

/** Query parameters whose value is a credential, whatever route they were sent to. */
const SECRET_PARAMETER = /^(?:api[_-]?key|key|token|access[_-]?token|auth|password|secret)$/i;

/** `/stats?api_key=abc&x=1` → `/stats?api_key=[redacted]&x=1`. */
export function redactSecretParameters(url: string): string {
  const at = url.indexOf('?');
  if (at === -1) return url;
  const query = url
    .slice(at + 1)
    .split('&')
    .map((pair) => {
      const name = pair.split('=', 1)[0];
      let decoded = name;
      try {
        decoded = decodeURIComponent(name);
      } catch {
        // A malformed escape: compared as sent.
      }
      return SECRET_PARAMETER.test(decoded) && pair.includes('=') ? `${name}=[redacted]` : pair;
    })
    .join('&');
  return `${url.slice(0, at)}?${query}`;
}

function redactSecretQuery(query: unknown): unknown {
  if (typeof query !== 'object' || query === null) return query;
  return Object.fromEntries(
    Object.entries(query).map(([name, value]) => [name, SECRET_PARAMETER.test(name) ? '[redacted]' : value]),
  );
}
