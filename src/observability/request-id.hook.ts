import { Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance } from 'fastify';
import { REQUEST_ID_HEADER, requestIdFor } from './logging.js';

/**
 * Makes Fastify's own request id the one the logs use (middie passes it to pino-http as req.id)
 * and returns it as `x-request-id` on every response: routes, 404s and errors alike.
 */
@Injectable()
export class RequestIdHook implements OnModuleInit {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  onModuleInit(): void {
    // No HTTP adapter in an application context (the CLIs): no requests to identify.
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    if (!fastify) return;
    fastify.setGenReqId(requestIdFor);
    // onSend, not onRequest: it also runs for replies that earlier onRequest hooks send (CORS preflight, 503 on shutdown).
    fastify.addHook('onSend', (request, reply, payload, done) => {
      void reply.header(REQUEST_ID_HEADER, request.id);
      done(null, payload);
    });
  }
}
