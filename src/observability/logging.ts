import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { RequestMethod } from '@nestjs/common';
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

/** The path as requested: Nest's middleware runner may have cut `req.url` down to `/`. */
function requestPath(req: IncomingMessage): string {
  return ((req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '').split('?')[0];
}

/** Set by the API-key guard on the raw request, so request lines name the key (never the secret). */
interface LabelledRequest extends IncomingMessage {
  apiKeyLabel?: string;
}

/**
 * nestjs-pino options: one JSON line per request (`reqId`, method, URL, status, time), and every
 * log line written while a request runs carries its `reqId`. Secrets are redacted.
 * nestjs-pino builds one pino-http instance per process, from the first app's options: apps built
 * later in the same process (tests) log through it too.
 */
export function loggerParams(config: AppConfig): Params {
  return {
    // nestjs-pino's default route `{/*splat}` becomes `/{/*splat}` under @fastify/middie 9.3, which
    // matches no request: spell out "every path".
    forRoutes: [{ path: '/{*splat}', method: RequestMethod.ALL }],
    pinoHttp: [
      {
        level: config.logLevel,
        // Fastify has made the id already (RequestIdHook) and middie hands it over as req.id.
        genReqId: requestIdFor,
        // Lines logged by services carry `reqId` alone; the completion line adds req and res.
        quietReqLogger: true,
        customProps: (req: LabelledRequest) => (req.apiKeyLabel ? { apiKey: req.apiKeyLabel } : {}),
        autoLogging: { ignore: (req) => QUIET_PATHS.test(requestPath(req)) },
        // 4xx are the client's business; a 5xx is ours. The filter has already logged its cause.
        customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
        // For a 5xx pino-http invents an Error("failed with status code 500") whose stack says nothing.
        customErrorObject: (_req, _res, err, value: Record<string, unknown>) =>
          err.message.startsWith('failed with status code') ? { ...value, err: undefined } : value,
        redact: {
          paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers.cookie'],
          censor: '[redacted]',
        },
        serializers: {
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
