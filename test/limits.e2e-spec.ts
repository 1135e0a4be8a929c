import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { type AddressInfo, connect } from 'node:net';
import request from 'supertest';
import type { QueryRunner } from 'typeorm';
import { VECTOR_INDEX_PREFIX } from '../src/ask/vector-index.js';
import { TRUST_ANY_PROXY_WARNING } from '../src/auth/http-security.js';
import { MAX_JSON_DEPTH } from '../src/limits/json-body.js';
import { dataFingerprint } from './support/legacy-schema.js';
import { openApiOperations } from './support/openapi.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { TEST_TARGET } from './support/test-database.js';

/** No stack trace, SQL or driver detail in an error body. */
function expectCleanError(res: request.Response, status: number): void {
  expect(res.status).toBe(status);
  const body = res.body as { statusCode: number; message: unknown; error: string };
  expect(body.statusCode).toBe(status);
  expect(typeof body.error).toBe('string');
  expect(JSON.stringify(body)).not.toMatch(/\bat .+\.(js|ts):\d+|SELECT |INSERT |UPDATE .* SET|QueryFailedError|pg_/);
}

const doc = (documentId: string, chunks?: Array<Record<string, unknown>>): Record<string, unknown> => ({
  documentId,
  documentName: `Document ${documentId}`,
  documentType: 'law',
  category: 'limits',
  sourceFile: `/data/${documentId}.pdf`,
  ...(chunks ? { chunks } : {}),
});

describe('Request limits: body size, malformed bodies, batch size', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ BODY_LIMIT_BYTES: String(64 * 1024), EMBEDDINGS_MAX_BATCH: '5', THROTTLE_LIMIT: '0' });
    await request(t.server)
      .post('/documents')
      .send(doc('kept', [{ content: 'Điều 1' }]))
      .expect(201);
  });
  afterAll(() => t.close());

  it('declares no 429 in the OpenAPI document while THROTTLE_LIMIT is 0', async () => {
    const operations = await openApiOperations(t.server);
    expect(operations.length).toBeGreaterThan(15);
    expect(operations.filter((o) => o.operation.responses['429'] !== undefined)).toEqual([]);
  });

  it('declares the 413 on every operation that takes a JSON body', async () => {
    const operations = await openApiOperations(t.server);
    const withJson = operations.filter((o) => o.operation.requestBody?.content['application/json']);
    expect(withJson.map((o) => o.name)).toEqual(
      expect.arrayContaining(['post /documents', 'post /embeddings', 'post /ask', 'post /documents/recount']),
    );
    const bulk = ['post /documents', 'post /embeddings'];
    for (const o of withJson.filter((x) => x.name !== 'post /documents/ingest')) {
      expect({
        name: o.name,
        description: o.operation.responses['413']?.description,
      }).toEqual({
        name: o.name,
        description: bulk.includes(o.name)
          ? 'The JSON body is larger than BODY_LIMIT_BYTES (65536 bytes)'
          : 'The JSON body is larger than 65536 bytes (the smaller of 4 MiB and BODY_LIMIT_BYTES)',
      });
    }
    // The upload route declares its own 413, the file limit, and keeps the body limit's reason beside it.
    const ingest = withJson.find((o) => o.name === 'post /documents/ingest')!.operation.responses;
    expect(ingest['413']?.description).toMatch(
      /^File or text larger than INGEST_MAX_FILE_BYTES.*; or: The JSON body is larger than BODY_LIMIT_BYTES \(65536 bytes\)$/,
    );
    // Its own 415 (file formats), and the media type check's.
    expect(ingest['415']?.description).toMatch(
      /^File format not supported.*; or: The body is not multipart\/form-data or application\/json$/,
    );
    for (const o of operations.filter((x) => !x.operation.requestBody)) {
      expect({ name: o.name, declared: o.operation.responses['413'] }).toEqual({ name: o.name, declared: undefined });
      expect({ name: o.name, declared: o.operation.responses['415'] }).toEqual({ name: o.name, declared: undefined });
    }
    // The 415 of a body in another media type than the operation takes, on every operation with a body.
    for (const o of withJson.filter((x) => x.name !== 'post /documents/ingest')) {
      expect({ name: o.name, description: o.operation.responses['415']?.description }).toEqual({
        name: o.name,
        description: 'The body is not application/json',
      });
    }
  });

  it('answers a JSON body over BODY_LIMIT_BYTES with 413 and writes nothing', async () => {
    const before = await dataFingerprint(t.dataSource);
    const res = await request(t.server)
      .post('/documents')
      .send(doc('too-big', [{ content: 'x'.repeat(70 * 1024) }]));
    expectCleanError(res, 413);
    expect(res.body).toEqual({ statusCode: 413, message: 'Request body is too large', error: 'Payload Too Large' });
    expect(await dataFingerprint(t.dataSource)).toEqual(before);
  });

  it('accepts a body just under the limit', async () => {
    await request(t.server)
      .post('/documents')
      .send(doc('just-under', [{ content: 'y'.repeat(60 * 1024) }]))
      .expect(201);
  });

  it('answers malformed JSON with 400', async () => {
    const res = await request(t.server)
      .post('/documents')
      .set('content-type', 'application/json')
      .send('{"documentId": ');
    expectCleanError(res, 400);
    expect(res.body).toMatchObject({
      error: 'Bad Request',
      message: expect.stringMatching(/not valid JSON/) as unknown,
    });
  });

  it('answers an empty JSON body with 400, writing nothing', async () => {
    const before = await dataFingerprint(t.dataSource);
    const res = await request(t.server).post('/embeddings').set('content-type', 'application/json').send('');
    expectCleanError(res, 400);
    expect(await dataFingerprint(t.dataSource)).toEqual(before);
  });

  it('answers a body of an unsupported content type with 415', async () => {
    const xml = await request(t.server).post('/ask').set('content-type', 'application/xml').send('<ask/>');
    expectCleanError(xml, 415);
    expect(xml.body).toMatchObject({ error: 'Unsupported Media Type' });
    // Fastify parses text/plain, and @fastify/multipart takes a form on every route: each is refused
    // where the route takes JSON only, naming what it takes, before its handler runs.
    const text = await request(t.server)
      .post('/documents')
      .set('content-type', 'text/plain')
      .send('{"documentId":"x"}');
    expectCleanError(text, 415);
    expect((text.body as { message: string }).message).toBe(
      'Content-Type text/plain is not accepted here: send application/json',
    );
    const form = await request(t.server).post('/documents/recount').field('dryRun', 'true');
    expectCleanError(form, 415);
    expect((form.body as { message: string }).message).toBe(
      'Content-Type multipart/form-data is not accepted here: send application/json',
    );
    const patch = await request(t.server).patch('/documents/none').field('status', 'inactive');
    expectCleanError(patch, 415);
    // The ingest route takes both, as its OpenAPI operation says; a GET with a content type but no body is fine.
    const ingest = await request(t.server).post('/documents/ingest').set('content-type', 'text/plain').send('x');
    expectCleanError(ingest, 415);
    expect((ingest.body as { message: string }).message).toBe(
      'Content-Type text/plain is not accepted here: send multipart/form-data or application/json',
    );
    await request(t.server).get('/documents').set('content-type', 'text/plain').expect(200);
    // A body without a Content-Type is refused, naming what to send.
    // (superagent sends a Buffer as it is, with no Content-Type.)
    const bare = await request(t.server).post('/ask').send(Buffer.from('{"question":"x"}'));
    expect(bare.request.getHeader('content-type')).toBeUndefined();
    expectCleanError(bare, 415);
    expect((bare.body as { message: string }).message).toBe('The body has no Content-Type: send application/json');
    // A route that reads no body ignores a stray one, as before (OpenAPI declares no 415 there).
    await request(t.server).get('/collections').set('content-type', 'text/plain').send('x').expect(200);
    await request(t.server).delete('/collections/none').set('content-type', 'text/plain').send('x').expect(404);
  });

  it('answers a NUL character in a path or query parameter with 400, not a database error', async () => {
    expectCleanError(await request(t.server).get('/documents/a%00b'), 400);
    const embedding = await request(t.server).get('/embeddings/%00');
    expectCleanError(embedding, 400);
    expect((embedding.body as { message: string }).message).toBe('id must not contain NUL characters');
    expectCleanError(await request(t.server).get('/documents?category=%00'), 400);
  });

  it('gives every connection back after failed reads: more failures than the pool holds, then reads still answer', async () => {
    // GET /documents and /documents/:id take their connection from the pool themselves (ReadReplicas.query).
    // Each read fails inside the database, with the connection taken: the table is gone (renamed
    // away; even a prepared statement fails then, since PostgreSQL re-plans it by name).
    const poolMax = t.config.database.poolMax;
    await t.dataSource.query(`ALTER TABLE documents RENAME TO documents_hidden`);
    try {
      for (let i = 0; i < poolMax + 2; i += 1) {
        const failed = await request(t.server).get(i % 2 ? '/documents/no-such-document' : '/documents?limit=1');
        expectCleanError(failed, 503);
      }
    } finally {
      await t.dataSource.query(`ALTER TABLE documents_hidden RENAME TO documents`);
    }
    // A leaked connection per failure would have emptied the pool: these would wait, then be a 503.
    expect((await request(t.server).get('/documents?limit=1')).status).toBe(200);
    expect((await request(t.server).get('/documents/no-such-document')).status).toBe(404);
  });

  it('answers a JSON body nested deeper than MAX_JSON_DEPTH with 400, and accepts one at the limit', async () => {
    const nested = (depth: number): string =>
      `{"name": "deep-${depth}", "metadata": ${'{"a":'.repeat(depth - 1)}1${'}'.repeat(depth - 1)}}`;
    const tooDeep = await request(t.server)
      .post('/collections')
      .set('content-type', 'application/json')
      .send(nested(MAX_JSON_DEPTH + 1));
    expectCleanError(tooDeep, 400);
    expect(tooDeep.body).toMatchObject({ message: `The JSON body nests deeper than ${MAX_JSON_DEPTH} levels` });
    const huge = await request(t.server)
      .post('/ask')
      .set('content-type', 'application/json')
      .send(`{"filter": ${'['.repeat(20_000)}${']'.repeat(20_000)}}`);
    expectCleanError(huge, 400);
    // Brackets inside strings do not count.
    await request(t.server)
      .post('/collections')
      .set('content-type', 'application/json')
      .send(nested(MAX_JSON_DEPTH))
      .expect(201);
    await request(t.server)
      .post('/collections')
      .send({ name: 'brackets', metadata: { note: '{'.repeat(500) } })
      .expect(201);
  });

  it('answers a malformed multipart body with 400', async () => {
    const noBoundary = await request(t.server)
      .post('/documents/ingest')
      .set('content-type', 'multipart/form-data')
      .send('x');
    expectCleanError(noBoundary, 400);
    const truncated = await request(t.server)
      .post('/documents/ingest')
      .set('content-type', 'multipart/form-data; boundary=b')
      .send('--b\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nno end');
    expectCleanError(truncated, 400);
  });

  it('answers a JSON body that is not an object with 400', async () => {
    for (const body of ['[]', '"text"', '42', 'null', 'true']) {
      const res = await request(t.server).post('/documents').set('content-type', 'application/json').send(body);
      expectCleanError(res, 400);
    }
  });

  it('answers a batch over EMBEDDINGS_MAX_BATCH with 400 naming the limit, and writes nothing', async () => {
    const before = await dataFingerprint(t.dataSource);
    const items = Array.from({ length: 6 }, (_, i) => ({ content: `chunk ${i}` }));
    const embeddings = await request(t.server).post('/embeddings').send({ items });
    expectCleanError(embeddings, 400);
    expect(JSON.stringify(embeddings.body)).toMatch(/at most 5/);
    const document = await request(t.server).post('/documents').send(doc('too-many-chunks', items));
    expectCleanError(document, 400);
    expect(JSON.stringify(document.body)).toMatch(/at most 5/);
    expect(await dataFingerprint(t.dataSource)).toEqual(before);
    await request(t.server)
      .post('/embeddings')
      .send({ items: items.slice(0, 5) })
      .expect(201);
  });

  it('refuses a batch over EMBEDDINGS_MAX_BATCH by its count alone, before validating its items', async () => {
    // Invalid items too: validated, each would be a message of its own (and 20 µs of validation).
    const items = Array.from({ length: 6 }, () => ({ content: 5 }));
    const embeddings = await request(t.server).post('/embeddings').send({ items });
    expectCleanError(embeddings, 400);
    expect(embeddings.body.message).toBe('items must contain at most 5 items (EMBEDDINGS_MAX_BATCH); got 6');
    const document = await request(t.server).post('/documents').send(doc('too-many-bad-chunks', items));
    expectCleanError(document, 400);
    expect(document.body.message).toBe('chunks must contain at most 5 items (got 6)');
    // Within the limit, the items' own messages.
    const five = await request(t.server)
      .post('/embeddings')
      .send({ items: items.slice(0, 5) });
    expectCleanError(five, 400);
    expect(five.body.message).toContain('items.0.content must be a string');
  });
});

describe('Slow clients: HTTP_REQUEST_TIMEOUT_MS', () => {
  let t: TestApp;
  let port: number;

  beforeAll(async () => {
    t = await startTestApp({ HTTP_REQUEST_TIMEOUT_MS: '1000', THROTTLE_LIMIT: '0' });
    await t.app.listen(0, '127.0.0.1');
    port = (t.server.address() as AddressInfo).port;
  });
  afterAll(() => t.close());

  /** Sends `head` and then nothing more; resolves with what the server answered once it closed the socket. */
  function stall(head: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write(head));
      let answer = '';
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => (answer += chunk));
      socket.on('close', () => resolve(answer));
      socket.on('error', reject);
      // Bounded: a server that never closes fails the test instead of hanging it.
      socket.setTimeout(15_000, () => socket.destroy(new Error(`still open; answered so far: ${answer}`)));
    });
  }

  it('answers 408 and closes the connection of a body that stops arriving, and writes nothing', async () => {
    const body = JSON.stringify(doc('slow-body'));
    const answer = await stall(
      `POST /documents HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n` +
        body.slice(0, 20),
    );
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(await t.dataSource.query(`SELECT 1 FROM documents WHERE document_id = 'slow-body'`)).toHaveLength(0);
  });

  it('answers 408 to headers that stop arriving', async () => {
    expect(await stall('GET /documents HTTP/1.1\r\nHost: x\r\n')).toMatch(/^HTTP\/1\.1 408 /);
  });

  // On the embedded database every connection is one session, which holds the lock already.
  (TEST_TARGET === 'postgres' ? it : it.skip)(
    "gives up a vector index build or drop with a 409 when another session keeps the collection's lock past it",
    async () => {
      const collection = 'locked-index';
      await request(t.server)
        .post('/embeddings')
        .send({ collection, items: [{ id: 'locked-1', content: 'x', embedding: [1, 0] }] })
        .expect(201);
      const { uuid } = (await request(t.server).get(`/collections/${collection}`).expect(200)).body as { uuid: string };
      // A session that took the lock as a build does, and never gave it back (a pooler sent the
      // unlock to another backend, say).
      const holder = t.dataSource.createQueryRunner();
      await holder.connect();
      await holder.query(`SELECT pg_advisory_lock(hashtextextended($1, 0))`, [`${VECTOR_INDEX_PREFIX}${uuid}`]);
      try {
        const message =
          "Another build or drop of this collection's vector index still held its lock after 1 s; retry later";
        const put = await request(t.server).put(`/collections/${collection}/vector-index`).expect(409);
        expect(put.body.message).toBe(message);
        const drop = await request(t.server).delete(`/collections/${collection}/vector-index`).expect(409);
        expect(drop.body.message).toBe(message);
      } finally {
        await holder.query(`SELECT pg_advisory_unlock_all()`);
        await holder.release();
      }
      await request(t.server).put(`/collections/${collection}/vector-index`).expect(200);
    },
  );

  it('serves a request that arrives in time', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/documents?limit=1`);
    expect(res.status).toBe(200);
  });
});

describe('Rate limiting', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ THROTTLE_LIMIT: '5', THROTTLE_TTL_MS: '60000' });
  });
  afterAll(() => t.close());

  it('answers the request over THROTTLE_LIMIT with 429, Retry-After and a clear message; health is exempt', async () => {
    for (let i = 0; i < 5; i += 1) {
      const ok = await request(t.server).get('/documents').expect(200);
      expect(ok.headers['x-ratelimit-limit']).toBe('5');
      expect(ok.headers['x-ratelimit-remaining']).toBe(String(4 - i));
    }
    // One budget per client across routes: another route is limited too.
    const limited = await request(t.server).get('/stats');
    expectCleanError(limited, 429);
    expect(limited.body).toMatchObject({ error: 'Too Many Requests' });
    expect((limited.body as { message: string }).message).toMatch(/at most 5 per 60 s.*retry after \d+ s/);
    const retryAfter = Number(limited.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);

    // Without TRUST_PROXY, X-Forwarded-For names no client: it cannot buy a fresh budget.
    await request(t.server).get('/documents').set('x-forwarded-for', '203.0.113.9').expect(429);

    const writes = await request(t.server).post('/documents').send(doc('throttled'));
    expect(writes.status).toBe(429);
    expect(await t.dataSource.query(`SELECT 1 FROM documents WHERE document_id = 'throttled'`)).toHaveLength(0);

    // Probes and scraping are exempt: an orchestrator must never be told to back off.
    for (let i = 0; i < 10; i += 1) {
      await request(t.server).get('/health/ready').expect(200);
      await request(t.server).get('/metrics').expect(200);
    }
  });

  it('declares the 429 with Retry-After on every rate-limited operation of the OpenAPI document', async () => {
    const operations = await openApiOperations(t.server);
    const exempt = operations.filter((o) => o.name.startsWith('get /health'));
    expect(exempt.map((o) => o.name).sort()).toEqual(['get /health', 'get /health/live', 'get /health/ready']);
    for (const o of exempt) {
      expect(o.operation['x-rate-limited']).toBe(false);
      expect(o.operation.responses['429']).toBeUndefined();
    }
    const limited = operations.filter((o) => !exempt.includes(o));
    expect(limited.length).toBeGreaterThan(15);
    const rateLimitHeaders = {
      'X-RateLimit-Limit': { $ref: '#/components/headers/X-RateLimit-Limit' },
      'X-RateLimit-Remaining': { $ref: '#/components/headers/X-RateLimit-Remaining' },
      'X-RateLimit-Reset': { $ref: '#/components/headers/X-RateLimit-Reset' },
    };
    for (const o of limited) {
      const success = Object.entries(o.operation.responses).filter(([code]) => code.startsWith('2'));
      expect(success.length).toBeGreaterThan(0);
      for (const [code, response] of success) {
        expect({ name: o.name, code, headers: response?.headers }).toEqual({
          name: o.name,
          code,
          headers: expect.objectContaining(rateLimitHeaders),
        });
      }
    }
    for (const o of exempt) {
      expect(JSON.stringify(o.operation.responses)).not.toContain('X-RateLimit');
    }
    for (const o of limited) {
      expect({ name: o.name, response: o.operation.responses['429'] }).toEqual({
        name: o.name,
        response: {
          description: 'Over THROTTLE_LIMIT: 5 requests per 60 s from one client, across all routes',
          headers: {
            'Retry-After': expect.objectContaining({ schema: { type: 'integer', minimum: 0 } }),
            'x-request-id': { $ref: '#/components/headers/X-Request-Id' },
          },
          content: {
            'application/json': {
              schema: { $ref: '#/components/schemas/ErrorResponse' },
              example: expect.objectContaining({ statusCode: 429, error: 'Too Many Requests' }),
            },
          },
        },
      });
    }
  });
});

describe('Database pool: a bounded wait for a connection', () => {
  let t: TestApp;
  const held: QueryRunner[] = [];

  beforeAll(async () => {
    // 2 s, not less: the timeout also bounds opening a connection (pg-pool's connectionTimeoutMillis),
    // which the app's start and the held runners below do on a machine that may stall.
    t = await startTestApp({ DB_POOL_MAX: '2', DB_POOL_ACQUIRE_TIMEOUT_MS: '2000', THROTTLE_LIMIT: '0' });
    await request(t.server).post('/documents').send(doc('pooled')).expect(201);
  });
  afterAll(async () => {
    await Promise.all(held.map((r) => r.release()));
    await t.close();
  });

  it('answers 503 when every connection stays busy past DB_POOL_ACQUIRE_TIMEOUT_MS, and recovers', async () => {
    // Embedded has one connection, a server DB_POOL_MAX: take them all, as long-running requests would.
    const size = TEST_TARGET === 'embedded' ? 1 : 2;
    for (let i = 0; i < size; i += 1) {
      const runner = t.dataSource.createQueryRunner();
      await runner.connect();
      await runner.startTransaction();
      await runner.query('SELECT 1');
      held.push(runner);
    }
    const read = await request(t.server).get('/documents/pooled');
    expectCleanError(read, 503);
    expect(read.body).toMatchObject({ message: 'The database is unavailable; retry shortly' });
    expect(read.headers['retry-after']).toBe('1');
    const write = await request(t.server).patch('/documents/pooled').send({ category: 'never' });
    expectCleanError(write, 503);
    expect(write.headers['retry-after']).toBe('1');

    for (const runner of held.splice(0)) {
      await runner.rollbackTransaction();
      await runner.release();
    }
    const after = await request(t.server).get('/documents/pooled').expect(200);
    expect(after.body).toMatchObject({ category: 'limits' });
  });
});

(TEST_TARGET === 'postgres' ? describe : describe.skip)('statement_timeout (server mode)', () => {
  let t: TestApp;

  beforeAll(async () => {
    // 2 s: every statement of this app runs under it, and a loaded server can stall one for a moment.
    t = await startTestApp({ DB_STATEMENT_TIMEOUT_MS: '2000', THROTTLE_LIMIT: '0' });
    await request(t.server)
      .post('/documents')
      .send(doc('locked', [{ content: 'Điều 1' }]))
      .expect(201);
  });
  afterAll(() => t.close());

  it('cancels a statement stuck behind a lock with 503, rolls back, and the pool stays usable', async () => {
    const before = await dataFingerprint(t.dataSource);
    const locker = t.dataSource.createQueryRunner();
    await locker.connect();
    try {
      await locker.startTransaction();
      await locker.query(`SELECT id FROM documents WHERE document_id = 'locked' FOR UPDATE`);
      const res = await request(t.server).patch('/documents/locked').send({ status: 'inactive' });
      expectCleanError(res, 503);
      expect(res.body).toMatchObject({ message: 'The query took too long and was cancelled' });
      expect(res.headers['retry-after']).toBe('1');
      await locker.rollbackTransaction();
    } finally {
      await locker.release();
    }
    expect(await dataFingerprint(t.dataSource)).toEqual(before);

    // Every connection of the pool still works: more parallel requests than the pool has connections.
    const reads = await Promise.all(Array.from({ length: 12 }, () => request(t.server).get('/documents/locked')));
    expect(reads.map((r) => r.status)).toEqual(Array(12).fill(200));
    const patched = await request(t.server).patch('/documents/locked').send({ status: 'inactive' }).expect(200);
    expect(patched.body).toMatchObject({ status: 'inactive' });
  });

  it('applies the timeout to every pooled connection', async () => {
    // At once, each holding its connection a moment: three connections, not the same idle one.
    const rows = await Promise.all(
      Array.from({ length: 3 }, () =>
        t.dataSource.query<Array<{ pid: number; timeout: string }>>(
          `SELECT pg_backend_pid() AS pid, current_setting('statement_timeout') AS timeout FROM pg_sleep(0.05)`,
        ),
      ),
    );
    expect(new Set(rows.map(([row]) => row.pid)).size).toBe(3);
    expect(rows.map(([row]) => row.timeout)).toEqual(['2s', '2s', '2s']);
  });
});

describe('Rate limiting behind a trusted proxy (TRUST_PROXY)', () => {
  let t: TestApp;

  beforeAll(async () => {
    // The tests' requests come from 127.0.0.1: here that is the load balancer.
    t = await startTestApp({ THROTTLE_LIMIT: '2', THROTTLE_TTL_MS: '60000', TRUST_PROXY: '127.0.0.1' });
  });
  afterAll(() => t.close());

  it("counts each client named by the proxy's X-Forwarded-For on its own budget", async () => {
    const from = (client: string) => request(t.server).get('/documents').set('x-forwarded-for', client);
    await from('203.0.113.1').expect(200);
    await from('203.0.113.1').expect(200);
    await from('203.0.113.1').expect(429);
    // Another client behind the same proxy: its own budget, not the proxy's.
    await from('203.0.113.2').expect(200);
    // A client that forges a hop before the proxy's: the proxy appends the address it saw, which counts.
    await from('198.51.100.7, 203.0.113.1').expect(429);
  });
});

describe('TRUST_PROXY=true', () => {
  it('is warned about at startup (any client can forge its rate-limit address), an address list is not', async () => {
    const startupWarnings = async (trustProxy: string): Promise<string[]> => {
      const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      try {
        const t = await startTestApp({ TRUST_PROXY: trustProxy });
        await t.close();
        return warn.mock.calls.map((call) => String(call[0]));
      } finally {
        warn.mockRestore();
      }
    };
    expect(await startupWarnings('true')).toContain(TRUST_ANY_PROXY_WARNING);
    expect(await startupWarnings('127.0.0.1')).not.toContain(TRUST_ANY_PROXY_WARNING);
  });
});

describe('Body limits per route (BODY_LIMIT_BYTES default)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('reads at most 4 MiB for a search, whatever BODY_LIMIT_BYTES allows the bulk writes', async () => {
    const padding = 'x'.repeat(5 * 1024 * 1024);
    const ask = await request(t.server).post('/ask').send({ question: 'thuế', padding });
    expect([ask.status, ask.body.message]).toEqual([413, 'Request body is too large']);
    const patch = await request(t.server).patch('/documents/any').send({ documentName: padding });
    expect(patch.status).toBe(413);
    // The bulk write reads it, and refuses it for what it holds (no items), not for its size.
    const bulk = await request(t.server).post('/embeddings').send({ items: [], padding });
    expect(bulk.status).toBe(400);
    // A path no route matches reads no more than a search: Fastify parses a body before its 404,
    // with no key and no rate limit, and up to BODY_LIMIT_BYTES before.
    for (const [method, path] of [
      ['put', '/documents'],
      ['post', '/nowhere'],
    ] as const) {
      const unrouted = await request(t.server)[method](path).send({ padding });
      expect([path, unrouted.status]).toEqual([path, 413]);
    }
    expect((await request(t.server).put('/documents').send({ a: 1 })).status).toBe(404);
    const docs = (await request(t.server).get('/docs-json').expect(200)).body as {
      paths: Record<string, Record<string, { responses: Record<string, { description: string }> }>>;
    };
    expect(docs.paths['/ask'].post.responses['413'].description).toBe(
      'The JSON body is larger than 4194304 bytes (the smaller of 4 MiB and BODY_LIMIT_BYTES)',
    );
    expect(docs.paths['/embeddings'].post.responses['413'].description).toBe(
      'The JSON body is larger than BODY_LIMIT_BYTES (33554432 bytes)',
    );
  });
});
