import multipart from '@fastify/multipart';
import { ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { LogLevel as NestLogLevel } from '@nestjs/common';
import type { AppConfig, LogLevel } from './config/app-config.js';
import { AppModule } from './app.module.js';

const NEST_LOG_LEVELS: Record<LogLevel, NestLogLevel[]> = {
  fatal: ['fatal'],
  error: ['fatal', 'error'],
  warn: ['fatal', 'error', 'warn'],
  info: ['fatal', 'error', 'warn', 'log'],
  debug: ['fatal', 'error', 'warn', 'log', 'debug'],
  trace: ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'],
};

/**
 * Builds the application exactly as `main` serves it; the e2e tests call this too, so they test
 * the real pipes, filters and OpenAPI document rather than a copy.
 */
export async function createApp(config: AppConfig): Promise<NestFastifyApplication> {
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot(config),
    new FastifyAdapter({ bodyLimit: config.http.bodyLimitBytes }),
    {
      logger: NEST_LOG_LEVELS[config.logLevel],
    },
  );
  // Uploads stream through @fastify/multipart; a file over the limit is a 413 (POST /documents/ingest).
  await app.register(multipart, { limits: { fileSize: config.ingest.maxFileBytes, files: 1, fields: 20 } });
  app.useGlobalPipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }));
  app.enableShutdownHooks();
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('RAG knowledge base')
      .setDescription(
        'Documents, LangChain chunks and embeddings, statistics and semantic search over PostgreSQL + pgvector.',
      )
      .setVersion('0.1.0')
      .build(),
  );
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  return app;
}
