import { jest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { createApp } from '../src/app.factory.js';
import { loadAppConfig } from '../src/config/app-config.js';
import { SCHEMA_MISSING } from '../src/database/connection-errors.js';
import { openApiOperations } from './support/openapi.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { TEST_TARGET } from './support/test-database.js';

describe('the application', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('GET /health answers 200 when the database answers', async () => {
    const res = await request(t.server).get('/health').expect(200);
    expect(res.body).toMatchObject({ status: 'ok', info: { database: { status: 'up' } } });
  });

  it('serves the OpenAPI document at /docs-json and Swagger UI at /docs', async () => {
    const res = await request(t.server).get('/docs-json').expect(200);
    expect(res.body.openapi).toMatch(/^3\./);
    expect(Object.keys(res.body.paths)).toContain('/health');
    // A request vector is either a JSON array of numbers or base64 float32.
    const vectorForms = [
      expect.objectContaining({ type: 'array', items: { type: 'number' } }),
      expect.objectContaining({ type: 'string', format: 'byte' }),
    ];
    const schemas = res.body.components.schemas;
    for (const schema of [
      schemas.EmbeddingItemDto.properties.embedding,
      schemas.ChunkInputDto.properties.embedding,
      schemas.AskRequestDto.properties.queryEmbedding,
    ]) {
      expect(schema).toMatchObject({ oneOf: vectorForms, description: expect.stringContaining('little-endian') });
      expect(schema).not.toHaveProperty('type');
    }
    await request(t.server).get('/docs').redirects(1).expect(200);
  });

  it('types every count as an integer, names its server, and declares the request id header on every response', async () => {
    const { body: document } = await request(t.server).get('/docs-json').expect(200);
    // Every property typed "number" in the document: only measures and scores are fractional.
    const numbers: string[] = [];
    const walk = (where: string, schema: Record<string, unknown> | undefined): void => {
      if (!schema) return;
      if (schema.type === 'number') numbers.push(where);
      const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
      for (const [name, property] of Object.entries(properties)) walk(`${where}.${name}`, property);
      walk(`${where}[]`, schema.items as Record<string, unknown> | undefined);
      for (const form of (schema.oneOf ?? []) as Array<Record<string, unknown>>) walk(where, form);
    };
    for (const [name, schema] of Object.entries(
      document.components.schemas as Record<string, Record<string, unknown>>,
    )) {
      walk(name, schema);
    }
    expect(numbers.sort()).toEqual(
      [
        'AskRequestDto.minScore',
        'AskRequestDto.queryEmbedding[]',
        'AskResponseDto.tookMs',
        'AskResultDto.fusedScore',
        'AskResultDto.score',
        'ChunkInputDto.embedding[]',
        'DocumentChunkDto.embedding[]',
        'EmbeddingItemDto.embedding[]',
        'EmbeddingResponseDto.embedding[]',
      ].sort(),
    );
    expect(document.components.schemas.DocumentListDto.properties.total).toEqual({ type: 'integer', example: 1 });
    expect(document.servers).toEqual([{ url: '/' }]);
    expect(document.components.securitySchemes.bearer).toMatchObject({ scheme: 'bearer', bearerFormat: 'API key' });
    const operations = await openApiOperations(t.server);
    for (const { name, operation } of operations) {
      for (const [code, response] of Object.entries(operation.responses)) {
        expect({ name, code, header: response?.headers?.['x-request-id'] }).toEqual({
          name,
          code,
          header: { $ref: '#/components/headers/X-Request-Id' },
        });
      }
    }
    expect(document.components.headers['X-Request-Id'].schema).toMatchObject({ type: 'string' });
    const sent = await request(t.server).get('/health/live').set('x-request-id', 'trace-42').expect(200);
    expect(sent.headers['x-request-id']).toBe('trace-42');
  });

  it('accepts every request-body example of the OpenAPI document, the bodies Swagger UI sends', async () => {
    const operations = await openApiOperations(t.server);
    const examples = operations.flatMap(({ name, operation }) =>
      Object.entries(
        (operation.requestBody?.content['application/json'] as { examples?: Record<string, { value: unknown }> })
          ?.examples ?? {},
      ).map(([example, { value }]) => ({ name, example, value })),
    );
    // Writes first: the search examples need the default collection they create.
    const order = ['post /documents', 'post /documents/ingest', 'post /embeddings', 'post /ask'];
    expect([...new Set(examples.map((e) => e.name))].sort()).toEqual([...order].sort());
    examples.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
    for (const { name, example, value } of examples) {
      const path = name.slice('post '.length);
      const res = await request(t.server)
        .post(path)
        .send(value as object);
      expect({ name, example, status: res.status, body: res.status < 300 ? 'ok' : res.body }).toEqual({
        name,
        example,
        status: res.status < 300 ? res.status : 'a 2xx',
        body: 'ok',
      });
    }
    // They leave a consistent knowledge base: every chunk names a stored document, each example
    // document keeps its own chunks.
    const stats = await request(t.server).get('/stats').expect(200);
    expect(stats.body.orphans).toEqual({ chunksWithoutDocument: 0, documentsWithoutChunks: 1, totalChunksMismatch: 0 });
    const documents = await request(t.server).get('/documents?sort=documentId&order=asc').expect(200);
    expect(
      (documents.body.items as Array<{ documentId: string; totalChunks: number }>)
        .filter((d) => !/^[0-9a-f-]{36}$/.test(d.documentId))
        .map((d) => [d.documentId, d.totalChunks]),
    ).toEqual([
      ['huong-dan-nop-thue', 2],
      ['luat-dat-dai-2013', 1],
      ['luat-dat-dai-2024', 4],
    ]);
  });

  it('declares request bodies closed to undeclared fields, as it refuses them; free-form metadata and filters stay open', async () => {
    const { body: document } = await request(t.server).get('/docs-json').expect(200);
    const schemas = document.components.schemas as Record<
      string,
      { additionalProperties?: unknown; properties?: object }
    >;
    for (const name of [
      'CreateDocumentDto',
      'ChunkInputDto',
      'CreateEmbeddingsDto',
      'EmbeddingItemDto',
      'AskRequestDto',
    ]) {
      expect({ name, additionalProperties: schemas[name].additionalProperties }).toEqual({
        name,
        additionalProperties: false,
      });
    }
    expect(schemas.IngestFileDto.additionalProperties).toBe(false);
    expect(schemas.BuildVectorIndexDto.additionalProperties).toBe(false);
    expect(schemas.ChunkInputDto.properties).toMatchObject({ metadata: { additionalProperties: true } });
    expect(schemas.AskRequestDto.properties).toMatchObject({ filter: { additionalProperties: true } });
    // Response schemas say nothing of it.
    expect(schemas.DocumentDto.additionalProperties).toBeUndefined();
    // And the service refuses what the document closes: each example with one field more.
    const operations = await openApiOperations(t.server);
    for (const { name, operation } of operations) {
      const examples = (
        operation.requestBody?.content['application/json'] as { examples?: Record<string, { value: object }> }
      )?.examples;
      for (const { value } of Object.values(examples ?? {})) {
        const res = await request(t.server)
          .post(name.slice('post '.length))
          .send({ ...value, undeclaredField: 1 });
        expect({ name, status: res.status, message: res.body.message }).toEqual({
          name,
          status: 400,
          message: ['property undeclaredField should not exist'],
        });
      }
    }
  });

  it('gives every error response of the OpenAPI document a body: ErrorResponse, or its own', async () => {
    const res = await request(t.server).get('/docs-json').expect(200);
    expect(res.body.components.schemas.ErrorResponse).toMatchObject({
      required: ['statusCode', 'message', 'error'],
      properties: { statusCode: { type: 'integer' }, error: { type: 'string' } },
    });
    const operations = await openApiOperations(t.server);
    const errors = operations.flatMap(({ name, operation }) =>
      Object.entries(operation.responses)
        .filter(([code]) => Number(code) >= 400)
        .map(([code, response]) => ({
          operation: `${name} ${code}`,
          schema: response?.content?.['application/json']?.schema,
        })),
    );
    expect(errors.length).toBeGreaterThan(30);
    const ownBody = (e: { operation: string }): boolean => /^get \/health(\/ready)? 503$/.test(e.operation);
    // The health checks' 503 carries the check results (terminus' body), not ErrorResponse.
    for (const e of errors.filter(ownBody)) {
      expect(e.schema).toMatchObject({ required: ['status', 'info', 'error', 'details'] });
    }
    expect(errors.filter(ownBody).map((e) => e.operation)).toEqual(['get /health 503', 'get /health/ready 503']);
    for (const e of errors.filter((x) => !ownBody(x))) {
      expect(e).toEqual({ operation: e.operation, schema: { $ref: '#/components/schemas/ErrorResponse' } });
    }
    // Every operation but the health checks can meet an unavailable database: a 503 with Retry-After.
    for (const { name, operation } of operations.filter((o) => !o.name.startsWith('get /health'))) {
      expect({ name, retryAfter: operation.responses['503']?.headers?.['Retry-After'] }).toEqual({
        name,
        retryAfter: {
          description:
            "Seconds before retrying: 1 for the database; an embedding provider's or LLM's own wait when it rate-limits",
          schema: { type: 'integer', minimum: 0 },
        },
      });
    }
    expect(operations.find((o) => o.name === 'get /health/live')?.operation.responses['503']).toBeUndefined();
    // Every write can meet a concurrent transaction: a 409 with Retry-After (a search only reads).
    const writes = operations.filter((o) => !o.name.startsWith('get ') && o.name !== 'post /ask');
    expect(writes.length).toBeGreaterThan(10);
    for (const { name, operation } of writes) {
      expect({ name, retryAfter: operation.responses['409']?.headers?.['Retry-After'] }).toEqual({
        name,
        retryAfter: expect.objectContaining({ schema: { type: 'integer', minimum: 0 } }),
      });
    }
    expect(operations.find((o) => o.name === 'post /ask')?.operation.responses['409']).toBeUndefined();
    // What the document promises is what a 404 carries.
    const missing = await request(t.server).get('/documents/no-such-document').expect(404);
    expect(missing.body).toEqual({
      statusCode: 404,
      message: 'Document "no-such-document" not found',
      error: 'Not Found',
    });
  });

  (TEST_TARGET === 'postgres' ? it : it.skip)(
    'on a server database never migrated: readiness is 503 naming the step, and every route 503, not 500',
    async () => {
      const bare = await startTestApp({ DB_MIGRATE_ON_START: 'false' });
      try {
        const ready = await request(bare.server).get('/health/ready').expect(503);
        expect(ready.body).toMatchObject({
          status: 'error',
          info: { database: { status: 'up' } },
          error: { schema: { status: 'down', message: SCHEMA_MISSING } },
        });
        for (const path of ['/documents', '/documents/d1', '/collections']) {
          const res = await request(bare.server).get(path).expect(503);
          expect(res.body).toEqual({ statusCode: 503, message: SCHEMA_MISSING, error: 'Service Unavailable' });
        }
        // Once migrated (here by another process, as `npm run db:migrate` would), ready without a restart.
        await bare.dataSource.runMigrations();
        await request(bare.server).get('/health/ready').expect(200);
        await request(bare.server).get('/documents').expect(200);
      } finally {
        await bare.close();
      }
    },
  );

  it('GET /health answers 503 once the database is gone', async () => {
    const other = await startTestApp();
    try {
      await other.dataSource.destroy();
      const res = await request(other.server).get('/health').expect(503);
      expect(res.body.status).toBe('error');
      expect(JSON.stringify(res.body)).not.toMatch(/postgres(ql)?:\/\//);
    } finally {
      await other.close();
    }
  });
});

describe('the application on one database connection (DB_POOL_MAX=1)', () => {
  let t: TestApp;
  // One connection, so the test's session setting is the one the requests run on.
  beforeAll(async () => {
    t = await startTestApp({ DB_POOL_MAX: '1' });
  });
  afterAll(() => t.close());

  it('answers concurrent readiness probes with one database check, not one each', async () => {
    // The one connection held: the first probe's ping waits for it, and the others arrive meanwhile.
    const holder = t.dataSource.createQueryRunner();
    await holder.connect();
    await holder.startTransaction();
    const query = jest.spyOn(t.dataSource, 'query');
    try {
      const probes = await Promise.all(Array.from({ length: 20 }, () => request(t.server).get('/health/ready')));
      // Each answered by the one check (503: its ping waited past the probe's 1 s).
      expect(probes.map((r) => r.status)).toEqual(Array.from({ length: 20 }, () => 503));
      expect(query.mock.calls.filter(([sql]) => sql === 'SELECT 1')).toHaveLength(1);
    } finally {
      query.mockRestore();
      await holder.rollbackTransaction();
      await holder.release();
    }
    // Probes one after another each check again: a change is seen at once.
    await request(t.server).get('/health/ready').expect(200);
  });

  it('answers a write to a read-only database (a standby after a failover, maintenance) with 503 and Retry-After, writing nothing, and serves it once writable again', async () => {
    const body = { documentName: 'Luật', documentType: 'law', category: 'dat-dai', sourceFile: '/x.pdf' };
    await t.dataSource.query(`SET default_transaction_read_only = on`);
    try {
      const res = await request(t.server).post('/documents').send(body).expect(503);
      expect(res.body).toEqual({
        statusCode: 503,
        message: 'The database is read-only at the moment; retry shortly',
        error: 'Service Unavailable',
      });
      expect(res.headers['retry-after']).toBe('1');
      await request(t.server).get('/documents').expect(200);
    } finally {
      await t.dataSource.query(`RESET default_transaction_read_only`);
    }
    expect((await request(t.server).get('/documents').expect(200)).body.total).toBe(0);
    await request(t.server).post('/documents').send(body).expect(201);
  });
});

describe('configuration errors', () => {
  it.each([
    [{ PORT: 'eighty' }, /PORT must/],
    [{ DATABASE_URL: 'mysql://x' }, /DATABASE_URL must be a postgres/],
    [{ DB_MIGRATE_ON_START: 'maybe' }, /DB_MIGRATE_ON_START must be true or false/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL must be one of/],
  ])('%j stops the service with a one-line message naming the variable', (env, message) => {
    const result = spawnSync(process.execPath, ['dist/src/main.js'], {
      // ENV_FILE empty: no developer's .env fills in what the test leaves out.
      env: { PATH: process.env.PATH, ENV_FILE: '', ...env },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(result.status).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^Invalid configuration: /);
    expect(lines[0]).toMatch(message);
  });
});

describe('start-up failures', () => {
  it('a database that cannot be reached: JSON lines as they happen, then one line naming the failure, no stack or colour', () => {
    // Nothing listens on port 9 (discard) of the loopback: the connection is refused at once.
    const result = spawnSync(process.execPath, ['dist/src/main.js'], {
      env: {
        PATH: process.env.PATH,
        ENV_FILE: '',
        DATABASE_URL: 'postgresql://kb:secret-password@127.0.0.1:9/kb',
      },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(result.status).toBe(1);
    const out = `${result.stdout}${result.stderr}`;
    // Nest's default console logger wrote coloured text and the error's stack trace before.
    expect(out).not.toContain('\u001b[');
    expect(out).not.toMatch(/^\s+at /m);
    expect(out).not.toContain('secret-password');
    for (const line of result.stdout.trim().split('\n').filter(Boolean)) {
      expect(() => JSON.parse(line) as unknown).not.toThrow();
    }
    expect(result.stdout).toContain('"msg":"Starting Nest application..."');
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^Start-up failed: /)]);
  });
});

(TEST_TARGET === 'embedded' ? describe : describe.skip)('the embedded database on disk', () => {
  it('keeps the data of one start for the next', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kb-persist-'));
    try {
      const config = loadAppConfig({
        DATA_DIR: dir,
        LOG_LEVEL: 'warn',
        EMBEDDED_TEMPLATE: process.env.EMBEDDED_TEMPLATE,
      });
      const first = await createApp(config);
      await first.get(DataSource).query(
        `INSERT INTO documents (document_id, document_name, category, document_type, source_file, file_name)
         VALUES ('kept', 'n', 'c', 't', 's', 'f')`,
      );
      await first.close();
      const second = await createApp(config);
      const rows = await second.get(DataSource).query<unknown[]>(`SELECT document_id FROM documents`);
      await second.close();
      expect(rows).toEqual([{ document_id: 'kept' }]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
