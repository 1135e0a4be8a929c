import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Logger } from 'nestjs-pino';
import type { AppConfig } from './config/app-config.js';
import { StartupLogger } from './observability/startup-logger.js';
import { logAccessControl, registerHttpSecurity } from './auth/http-security.js';
import { useEarlyApiKeyCheck } from './auth/early-api-key-check.js';
import { documentApiKeySecurity, documentConfiguredAccess, withApiKeySecurity } from './auth/openapi-security.js';
import { AppModule } from './app.module.js';
import { documentUnsupportedMediaType, useContentTypeCheck } from './common/content-type.js';
import { documentUnknownQuery, useUnknownQueryCheck } from './common/unknown-query.js';
import { multipartForUploads } from './common/multipart.js';
import {
  documentErrorResponses,
  documentClosedRequestBodies,
  documentRequestIdHeader,
  documentRetryableConflict,
  documentServiceUnavailable,
} from './common/openapi-errors.js';
import { createValidationPipe } from './common/validation.js';
import {
  documentBodyLimit,
  routeBodyLimit,
  useDepthLimitedJsonParser,
  useRouteBodyLimits,
} from './limits/json-body.js';
import { requestTimeoutOptions } from './limits/request-timeout.js';
import { documentRateLimit } from './limits/throttling.module.js';

/** TRUST_PROXY for Fastify: a number of hops as the function Fastify itself makes of one (its types take none). */
function trustProxyOption(
  trustProxy: boolean | number | string[],
): boolean | string[] | ((address: string, hop: number) => boolean) {
  return typeof trustProxy === 'number' ? (_address, hop) => hop < trustProxy : trustProxy;
}

/**
 * Builds the application exactly as `main` serves it; the e2e tests call this too, so they test
 * the real pipes, filters and OpenAPI document rather than a copy.
 */
export async function createApp(config: AppConfig): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config),
    // 'idle': on close, idle keep-alive sockets are closed at once; in-flight requests finish (main.ts).
    new FastifyAdapter({
      // What a request no route matches may send (useRouteBodyLimits gives each route its own): its
      // body is read and parsed before the 404, with no key and no rate limit. At BODY_LIMIT_BYTES,
      // a PUT of 32 MB to any unknown path held the event loop for a second.
      bodyLimit: routeBodyLimit('', config.http.bodyLimitBytes),
      forceCloseConnections: 'idle',
      // A path parameter's length in UTF-16 units, once decoded (Fastify's default is 100): a
      // documentId of up to 255 characters, a collection name of up to 500, each character up to
      // two units. At 100, a longer documentId was created and then every route to it a 414.
      // Under routerOptions: at the top level Fastify 5 warns at every start (FSTDEP022).
      routerOptions: { maxParamLength: 1000 },
      // Behind a load balancer: its X-Forwarded-For names the client the rate limit counts (TRUST_PROXY).
      trustProxy: trustProxyOption(config.http.trustProxy),
      ...requestTimeoutOptions(config.http.requestTimeoutMs),
    }),
    {
      // Start-up lines as JSON as they happen, until the pino logger below takes over (StartupLogger).
      logger: new StartupLogger(config.logLevel),
      // A start-up failure (database unreachable, DATA_DIR in use) is thrown to the caller, which
      // prints one line and exits 1, instead of Nest printing a stack trace and exiting itself.
      abortOnError: false,
    },
  );
  app.useLogger(app.get(Logger));
  // JSON bodies: Fastify's parser behind a nesting-depth check (a 400, not a stack overflow).
  useDepthLimitedJsonParser(app);
  // Before init, when Nest registers the routes: each takes its own body limit.
  useRouteBodyLimits(app, config.http.bodyLimitBytes);
  // Uploads stream through @fastify/multipart; a file over the limit is a 413 (POST /documents/ingest).
  // Its per-request hooks run for multipart requests only (see multipartForUploads).
  await app.register(multipartForUploads, { limits: { fileSize: config.ingest.maxFileBytes, files: 1, fields: 20 } });
  // Helmet headers and CORS, before any route exists (Swagger UI's included).
  await registerHttpSecurity(app, config);
  logAccessControl(config);
  app.useGlobalPipes(createValidationPipe());
  const document = SwaggerModule.createDocument(
    app,
    withApiKeySecurity(
      new DocumentBuilder()
        .setTitle('RAG knowledge base')
        .setDescription(
          'Documents, LangChain chunks and embeddings, statistics and semantic search over PostgreSQL + pgvector.',
        )
        .setVersion('0.1.0')
        // Relative: the document describes the server that serves it, whatever its address.
        .addServer('/'),
    ).build(),
  );
  documentApiKeySecurity(document);
  documentRateLimit(document, config);
  documentBodyLimit(document, config.http.bodyLimitBytes);
  documentUnsupportedMediaType(document);
  documentUnknownQuery(document);
  // All three before the body is read, the key first: a request with a body and without a valid key
  // is a 401 whatever its media type or query. (A read's key is checked later, by ApiKeyGuard.)
  useEarlyApiKeyCheck(app, document, config);
  documentConfiguredAccess(document, config.auth);
  useContentTypeCheck(app, document);
  useUnknownQueryCheck(app, document);
  documentServiceUnavailable(document);
  documentRetryableConflict(document);
  documentErrorResponses(document);
  documentRequestIdHeader(document);
  documentClosedRequestBodies(document);
  // Swagger UI is not a controller route, so ApiKeyGuard never blocks it; Authorize keeps the key across reloads.
  SwaggerModule.setup('docs', app, document, {
    jsonDocumentUrl: 'docs-json',
    swaggerOptions: { persistAuthorization: true },
  });
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  return app;
}
