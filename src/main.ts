// First: V8 settings that must hold before any request (see v8-heap.ts).
import './lifecycle/v8-heap.js';
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import type { Server } from 'node:net';
import { ConfigValidationError, loadAppConfig, loadDotEnv } from './config/app-config.js';
import { createApp } from './app.factory.js';
import { installGracefulShutdown } from './lifecycle/graceful-shutdown.js';
import { redactConnectionStrings } from './observability/redact.js';

async function main(): Promise<void> {
  loadDotEnv();
  const config = loadAppConfig(process.env);
  const app = await createApp(config);
  // SIGTERM/SIGINT: drain in-flight requests, close the pool and the database, exit 0 (see graceful-shutdown.ts).
  installGracefulShutdown(app, { timeoutMs: config.http.shutdownTimeoutMs });
  try {
    await app.listen(config.port, config.host);
  } catch (err) {
    // Port taken, say: close the database cleanly before reporting the failure.
    await app.close();
    throw err;
  }
  // The port bound, which PORT=0 leaves to the system.
  const address = (app.getHttpServer() as Server).address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  new Logger('Main').log(
    `Listening on http://${config.host}:${port} (database: ${config.database.mode}${
      config.database.mode === 'embedded' ? `, ${config.database.dataDir}` : ''
    }); OpenAPI at /docs`,
  );
}

main().catch((err: unknown) => {
  // Expected start-up failures get one line, not a stack trace.
  if (err instanceof ConfigValidationError) {
    console.error(err.message);
  } else {
    // Not through the logger, so redacted here: a driver's message may quote DATABASE_URL.
    console.error(`Start-up failed: ${redactConnectionStrings(err instanceof Error ? err.message : String(err))}`);
  }
  process.exit(1);
});
