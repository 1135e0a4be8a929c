import { type INestApplication, Logger } from '@nestjs/common';
import type { Server } from 'node:http';

export const SHUTDOWN_SIGNALS = ['SIGTERM', 'SIGINT'] as const;
export type ShutdownSignal = (typeof SHUTDOWN_SIGNALS)[number];

export interface GracefulShutdownOptions {
  /** How long in-flight requests may take after the signal; 0 = no limit. */
  readonly timeoutMs: number;
  /** Ends the process; replaced in tests. */
  readonly exit?: (code: number) => void;
}

/**
 * On SIGTERM/SIGINT: stop accepting connections, let in-flight requests finish, then close the
 * pool and the database (the modules' shutdown hooks, run by `app.close()`), and exit 0.
 * Past `timeoutMs` the process exits 1 without waiting any longer; a second signal exits 1 at once.
 * Exiting early loses no acknowledged write: a committed transaction is already in the database
 * (embedded: in the OS page cache, see EmbeddedPostgres), and an unfinished one rolls back.
 *
 * Returns a function that removes the signal handlers again.
 */
export function installGracefulShutdown(app: INestApplication, options: GracefulShutdownOptions): () => void {
  const logger = new Logger('Shutdown');
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let started = false;

  const onSignal = (signal: ShutdownSignal): void => {
    if (started) {
      logger.warn(`${signal} received again: exiting without waiting for in-flight requests`);
      exit(1);
      return;
    }
    started = true;
    const limit = options.timeoutMs > 0 ? `up to ${options.timeoutMs} ms` : 'without a time limit';
    logger.log(`${signal} received: refusing new connections, waiting ${limit} for in-flight requests`);
    const timer =
      options.timeoutMs > 0
        ? setTimeout(() => {
            logger.error(`Shutdown did not finish within ${options.timeoutMs} ms (SHUTDOWN_TIMEOUT_MS): exiting`);
            exit(1);
          }, options.timeoutMs)
        : undefined;
    const server = app.getHttpServer() as Server;
    // Fastify's forceCloseConnections: 'idle' closes the connections idle when the close starts; a
    // keep-alive connection whose request finishes afterwards (a load balancer's upstream) stayed
    // open until its client closed it, and held the shutdown until SHUTDOWN_TIMEOUT_MS.
    const closeIdle = setInterval(() => server.closeIdleConnections(), 100);
    closeIdle.unref();
    // Emitted once the listener is closed and the last connection has ended.
    server.once('close', () => {
      clearInterval(closeIdle);
      logger.log('HTTP server closed: in-flight requests finished');
    });
    app.close().then(
      () => {
        clearTimeout(timer);
        logger.log('Shutdown complete');
        exit(0);
      },
      (err: unknown) => {
        clearTimeout(timer);
        logger.error(`Shutdown failed: ${err instanceof Error ? err.message : String(err)}`);
        exit(1);
      },
    );
  };

  for (const signal of SHUTDOWN_SIGNALS) process.on(signal, onSignal);
  return () => {
    for (const signal of SHUTDOWN_SIGNALS) process.removeListener(signal, onSignal);
  };
}
