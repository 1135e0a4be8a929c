import type { ServerOptions } from 'node:http';

/** Node's own interval for checking request and header timeouts. */
const NODE_CHECKING_INTERVAL_MS = 30_000;
/** Node's own limit for the request headers to arrive. */
const NODE_HEADERS_TIMEOUT_MS = 60_000;

/**
 * Fastify options that bound how long a request may take to arrive (HTTP_REQUEST_TIMEOUT_MS).
 * Fastify turns Node's request timeout off by default (requestTimeout 0), so a client could send
 * its body as slowly as it likes and hold a socket and a parser for as long; with a limit Node
 * answers 408 and closes the connection. Node checks every connectionsCheckingInterval (30 s by
 * default): here a tenth of the limit, at most 30 s, so the 408 comes within 10 % of it. The
 * headers' own limit (60 s in Node) may not exceed the whole request's. Handlers are not bounded:
 * a slow query has DB_STATEMENT_TIMEOUT_MS.
 */
export function requestTimeoutOptions(timeoutMs: number): { requestTimeout: number; http?: ServerOptions } {
  if (timeoutMs === 0) return { requestTimeout: 0 };
  return {
    requestTimeout: timeoutMs,
    http: {
      requestTimeout: timeoutMs,
      headersTimeout: Math.min(NODE_HEADERS_TIMEOUT_MS, timeoutMs),
      connectionsCheckingInterval: Math.min(NODE_CHECKING_INTERVAL_MS, Math.max(10, Math.floor(timeoutMs / 10))),
    },
  };
}
