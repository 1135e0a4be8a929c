import { Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PinoLogger } from 'nestjs-pino';
import type { Logger } from 'pino';
import { accessLineLevel, isQuietPath, REQUEST_ID_HEADER, requestIdFor, type LabelledRequest } from './logging.js';

/**
 * Request ids and request logging, as Fastify hooks rather than nestjs-pino's pino-http middleware.
 * The middleware built two child loggers on every request, one of them serializing and redacting the
 * whole request, and added three response listeners, even when the level wrote nothing. Here a request
 * costs one `child({ reqId })` for the logging context; the access line (same fields as pino-http's)
 * is built in onResponse only when its level is enabled.
 */
@Injectable()
export class RequestLoggingHook implements OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly pinoLogger: PinoLogger,
  ) {}

  onModuleInit(): void {
    // No HTTP adapter in an application context (the CLIs): no requests to identify.
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    if (!fastify) return;
    fastify.setGenReqId(requestIdFor);
    // Every line logged while the request runs (hooks, body parsing, handler, filters) carries its reqId.
    fastify.addHook('onRequest', (request, _reply, done) => {
      this.pinoLogger.runInContext(done, { bindings: { reqId: request.id } });
    });
    // onSend, not onRequest: it also runs for replies that earlier onRequest hooks send (CORS preflight).
    // Not for the 503 Fastify writes itself to a request that arrives while the server closes: no hook runs for it.
    fastify.addHook('onSend', (request, reply, payload, done) => {
      void reply.header(REQUEST_ID_HEADER, request.id);
      // What the client was told, for the access line: "400" alone does not say which field to fix.
      if (reply.statusCode >= 400 && typeof payload === 'string') {
        const reason = errorReason(payload);
        if (reason !== undefined) reasons.set(reply.raw, reason);
      }
      done(null, payload);
    });
    fastify.addHook('onResponse', (request, reply, done) => {
      const level = accessLineLevel(reply.statusCode);
      // PinoLogger.root is the one pino logger of the process (built from loggerParams' options).
      const root = PinoLogger.root as Logger;
      if (root.isLevelEnabled(level) && !isQuietPath(request.raw)) writeAccessLine(root, level, request, reply);
      done();
    });
  }
}

/** The reason of each error response, from its body, until its access line is written. */
const reasons = new WeakMap<object, string>();

/** Longest reason written on an access line: a list of field messages can be long. */
const MAX_REASON_LENGTH = 1000;

/**
 * The `message` of an error body in the service's shape ({statusCode, message, error}), its list
 * joined with "; "; undefined for any other body. It is what the client saw, so it holds no secret.
 */
export function errorReason(payload: string): string | undefined {
  if (!payload.startsWith('{')) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(payload);
  } catch {
    return undefined;
  }
  const message = (body as { message?: unknown } | null)?.message;
  const text = Array.isArray(message) ? message.map(String).join('; ') : typeof message === 'string' ? message : '';
  if (text === '') return undefined;
  return text.length > MAX_REASON_LENGTH ? `${text.slice(0, MAX_REASON_LENGTH)}…` : text;
}

/**
 * pino-http's completion line: reqId, req, apiKey (when a key was used), res, responseTime, msg;
 * and the reason an error response gave its client.
 */
function writeAccessLine(root: Logger, level: 'info' | 'error', request: FastifyRequest, reply: FastifyReply): void {
  // The request serializer (pino-std-serializers) reads these from the raw request, as middie set them.
  const raw = request.raw as LabelledRequest & { id?: string; query?: unknown };
  raw.id = request.id;
  raw.query = request.query;
  let log = root.child({ reqId: request.id }).child({ req: raw });
  if (raw.apiKeyLabel) log = log.child({ apiKey: raw.apiKeyLabel });
  const responseTime = Math.round(reply.elapsedTime);
  const reason = reasons.get(reply.raw);
  const fields = reason === undefined ? { res: reply.raw, responseTime } : { res: reply.raw, responseTime, reason };
  if (level === 'error') {
    log.error(fields, 'request errored');
  } else {
    const finished = !raw.readableAborted && reply.raw.writableEnded;
    log.info(fields, finished ? 'request completed' : 'request aborted');
  }
}
