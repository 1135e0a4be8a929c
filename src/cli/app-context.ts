import type { INestApplicationContext, LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AppModule } from '../app.module.js';
import type { AppConfig } from '../config/app-config.js';

/**
 * The application without its HTTP server, for a CLI (ingest, vector indexes). A start-up failure
 * (database unreachable, DATA_DIR in use) is thrown to the CLI's one-line handler instead of Nest
 * printing a stack trace and exiting itself; the start-up's own log lines (its retry notice, and
 * the stack among them) are dropped with it, and printed only once it started.
 */
export async function createCliContext(config: AppConfig, logger: LogLevel[]): Promise<INestApplicationContext> {
  const app = await NestFactory.createApplicationContext(AppModule.forRoot(config), {
    logger,
    abortOnError: false,
    bufferLogs: true,
    autoFlushLogs: false,
  });
  app.flushLogs();
  return app;
}
