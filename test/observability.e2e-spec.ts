import { jest } from '@jest/globals';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { createServer, connect, type Server as NetServer, type Socket } from 'node:net';
import request from 'supertest';
import { LogCapture } from './support/log-capture.js';
import { createApp } from '../src/app.factory.js';
import { DatabaseRuntime } from '../src/database/database-runtime.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { createTestDatabase, TEST_TARGET, testConfig } from './support/test-database.js';

const API_KEY = 'observability-key-0123456789';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A loopback TCP relay to a PostgreSQL server, which the test can cut to make the database unreachable. */
async function startTcpRelay(host: string, port: number): Promise<{ port: number; cut: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: NetServer = createServer((client) => {
    const upstream = connect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('relay has no port');
  return {
    port: address.port,
    cut: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

/** The value of one sample in a Prometheus text exposition, or undefined. */
function sample(metrics: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of metrics.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const present = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => present[k] === v)) return Number(match[3]);
  }
  return undefined;
}

describe('observability', () => {
  const logs = new LogCapture();
  let t: TestApp;

  beforeAll(async () => {
    logs.start();
    t = await startTestApp({ LOG_LEVEL: 'info' });
  });
  afterAll(async () => {
    await t?.close();
    logs.stop();
  });

  describe('request ids', () => {
    it('every response carries a generated x-request-id, 404s and errors included', async () => {
      const ids = new Set<string>();
      for (const path of ['/health/live', '/documents/missing', '/no/such/route']) {
        const res = await request(t.server).get(path);
        expect(res.headers['x-request-id']).toMatch(UUID);
        ids.add(res.headers['x-request-id']);
      }
      expect(ids.size).toBe(3);
      const invalid = await request(t.server).post('/documents').send({ documentId: 42 }).expect(400);
      expect(invalid.headers['x-request-id']).toMatch(UUID);
    });

    it('echoes a well-formed incoming x-request-id and replaces a malformed one', async () => {
      const echoed = await request(t.server).get('/health/live').set('x-request-id', 'client-42_a.b').expect(200);
      expect(echoed.headers['x-request-id']).toBe('client-42_a.b');
      for (const hostile of ['has space', 'a'.repeat(129), '<script>', 'x;y=1', '']) {
        const res = await request(t.server).get('/health/live').set('x-request-id', hostile).expect(200);
        expect(res.headers['x-request-id']).toMatch(UUID);
      }
    });
  });

  describe('logs', () => {
    it('logs a client that drops its upload as the client, not as a database outage', async () => {
      const server = t.app.getHttpServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = server.address() as { port: number };
        const socket: Socket = connect(port, '127.0.0.1');
        await new Promise((resolve) => socket.once('connect', resolve));
        // Expect: 100-continue, so the server has taken the request (it answers 100) before the body starts.
        const continued = new Promise((resolve) =>
          socket.on('data', (chunk: Buffer) => chunk.toString().includes('100 Continue') && resolve(undefined)),
        );
        socket.write(
          'POST /ask HTTP/1.1\r\nHost: x\r\nX-Request-Id: dropped-upload-1\r\nContent-Type: application/json\r\n' +
            'Content-Length: 1000\r\nExpect: 100-continue\r\n\r\n',
        );
        await continued;
        await new Promise((resolve) => socket.write('{"question": "th', resolve));
        socket.destroy();
        const lines = await logs.forRequest('dropped-upload-1', (l) =>
          /client closed the connection/.test(String(l.msg)),
        );
        // Before: "Database unavailable: aborted", a warning that pages whoever watches the database.
        expect(lines.filter((l) => /Database unavailable/.test(String(l.msg)))).toEqual([]);
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });

    it('writes one JSON line per request with its reqId, and never the Authorization or x-api-key value', async () => {
      await request(t.server)
        .get('/documents/not-there/chunks?limit=1')
        .set('x-request-id', 'trace-line-1')
        .set('Authorization', 'Bearer secret-bearer-value-123')
        .set('x-api-key', 'secret-api-key-value-456')
        .set('Cookie', 'session=secret-cookie-789')
        .expect(404);
      const lines = await logs.forRequest('trace-line-1', (l) => l.msg === 'request completed');
      const completed = lines.find((l) => l.msg === 'request completed')!;
      expect(completed).toMatchObject({
        level: 30,
        reqId: 'trace-line-1',
        req: { method: 'GET', url: '/documents/not-there/chunks?limit=1' },
        res: { statusCode: 404 },
      });
      expect(typeof completed.responseTime).toBe('number');
      const all = logs.raw.join('\n');
      expect(all).not.toContain('secret-bearer-value-123');
      expect(all).not.toContain('secret-api-key-value-456');
      expect(all).not.toContain('secret-cookie-789');
    });

    it('writes on the access line of an error response the reason its client was given', async () => {
      await request(t.server).post('/collections').send({}).set('x-request-id', 'reason-400').expect(400);
      await request(t.server)
        .post('/collections')
        .set('Content-Type', 'text/plain')
        .send('x')
        .set('x-request-id', 'reason-415')
        .expect(415);
      await request(t.server).get('/documents/x').set('x-request-id', 'reason-404').expect(404);
      await request(t.server).get('/documents?limit=1').set('x-request-id', 'reason-200').expect(200);
      const reasonOf = async (reqId: string): Promise<unknown> => {
        const lines = await logs.forRequest(reqId, (l) => l.msg === 'request completed');
        return lines.find((l) => l.msg === 'request completed')?.reason;
      };
      expect(await reasonOf('reason-400')).toBe('name is required');
      expect(await reasonOf('reason-415')).toBe('Content-Type text/plain is not accepted here: send application/json');
      expect(await reasonOf('reason-404')).toMatch(/^Document "x" (was )?not found/);
      expect(await reasonOf('reason-200')).toBeUndefined();
    });

    it('never logs a key sent in the query string by mistake, in url or query', async () => {
      await request(t.server)
        .get('/stats?api_key=secret-query-key-1&token=secret-query-token-2&verbose=1')
        .set('x-request-id', 'query-key-1')
        .expect(400);
      const [line] = (await logs.forRequest('query-key-1', (l) => l.msg === 'request completed')).filter(
        (l) => l.msg === 'request completed',
      );
      expect(line.req).toMatchObject({
        url: '/stats?api_key=[redacted]&token=[redacted]&verbose=1',
        query: { api_key: '[redacted]', token: '[redacted]', verbose: '1' },
      });
      expect(logs.raw.join('\n')).not.toMatch(/secret-query-(key-1|token-2)/);
    });

    it('does not log probe and scrape requests', async () => {
      await request(t.server).get('/health/ready').set('x-request-id', 'quiet-probe').expect(200);
      await request(t.server).get('/metrics').set('x-request-id', 'quiet-scrape').expect(200);
      await request(t.server).get('/health/live').set('x-request-id', 'loud-after').expect(200);
      await request(t.server).get('/documents/x').set('x-request-id', 'loud-after').expect(404);
      await logs.forRequest('loud-after', (l) => l.msg === 'request completed');
      expect(logs.lines.filter((l) => l.reqId === 'quiet-probe' || l.reqId === 'quiet-scrape')).toEqual([]);
    });

    it('a 500 body says nothing of the cause, and the service log line of that request carries its reqId', async () => {
      // An unexpected database error: a column the route reads is gone. (A missing table is a 503
      // that says to migrate.)
      await t.dataSource.query('ALTER TABLE documents RENAME COLUMN document_name TO document_name_hidden');
      try {
        for (const [reqId, call] of [
          ['trace-500-get', () => request(t.server).get('/documents')],
          // A request with a body: the logging context survives Fastify's body parsing.
          [
            'trace-500-post',
            () =>
              request(t.server)
                .post('/documents')
                .send({ documentId: 'd1', documentName: 'n', documentType: 't', category: 'c', sourceFile: 's' }),
          ],
        ] as const) {
          const res = await call().set('x-request-id', reqId).expect(500);
          expect(res.headers['x-request-id']).toBe(reqId);
          expect(res.body).toEqual({
            statusCode: 500,
            message: 'Internal server error',
            error: 'Internal Server Error',
          });
          expect(res.text).not.toMatch(/select|insert|column|document_name|\bat \S+:\d+|postgres(ql)?:\/\//i);

          const lines = await logs.forRequest(reqId, (l) => l.msg === 'request errored');
          const cause = lines.find((l) => l.context === 'Exceptions');
          expect(cause).toMatchObject({ level: 50, reqId, err: { message: expect.stringMatching(/document_name/) } });
          expect((cause!.err as { stack: string }).stack).toMatch(/\n\s+at /);
          const errored = lines.find((l) => l.msg === 'request errored');
          expect(errored).toMatchObject({ level: 50, res: { statusCode: 500 } });
          expect(errored).not.toHaveProperty('err');
        }
      } finally {
        await t.dataSource.query('ALTER TABLE documents RENAME COLUMN document_name_hidden TO document_name');
      }
    });
  });

  describe('health', () => {
    it('GET /health/live is 200 without the database; /health/ready and /health ping it', async () => {
      const live = await request(t.server).get('/health/live').expect(200);
      expect(live.body).toMatchObject({ status: 'ok', info: {} });
      for (const path of ['/health/ready', '/health']) {
        const res = await request(t.server).get(path).expect(200);
        expect(res.body).toMatchObject({
          status: 'ok',
          info: { database: { status: 'up' }, schema: { status: 'up' } },
        });
      }
    });

    it('probes are in the OpenAPI document, /metrics is not', async () => {
      const res = await request(t.server).get('/docs-json').expect(200);
      expect(Object.keys(res.body.paths)).toEqual(expect.arrayContaining(['/health', '/health/live', '/health/ready']));
      expect(Object.keys(res.body.paths)).not.toContain('/metrics');
    });
  });

  describe('metrics', () => {
    it('counts requests per route pattern, never per raw URL, and times them', async () => {
      for (const id of ['alpha', 'beta', 'gamma']) await request(t.server).get(`/documents/${id}`).expect(404);
      await request(t.server).get('/no-such-thing/alpha').expect(404);
      await request(t.server).get('/no-such-thing/beta').expect(404);
      const res = await request(t.server).get('/metrics').expect(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      const labels = { method: 'GET', route: '/documents/:documentId', status_code: '404' };
      expect(sample(res.text, 'http_requests_total', labels)).toBeGreaterThanOrEqual(3);
      expect(sample(res.text, 'http_request_duration_seconds_count', labels)).toBeGreaterThanOrEqual(3);
      expect(
        sample(res.text, 'http_request_duration_seconds_bucket', { ...labels, le: '+Inf' }),
      ).toBeGreaterThanOrEqual(3);
      expect(
        sample(res.text, 'http_requests_total', { method: 'GET', route: 'unmatched', status_code: '404' }),
      ).toBeGreaterThanOrEqual(2);
      expect(res.text).not.toMatch(/alpha|beta|gamma|no-such-thing/);
      // Process metrics of prom-client's default set.
      expect(res.text).toMatch(/^process_cpu_user_seconds_total /m);
    });

    it('reports the pool at scrape time', async () => {
      const res = await request(t.server).get('/metrics').expect(200);
      const total = sample(res.text, 'db_pool_connections', { pool: 'primary', state: 'total' });
      const idle = sample(res.text, 'db_pool_connections', { pool: 'primary', state: 'idle' });
      const waiting = sample(res.text, 'db_pool_connections', { pool: 'primary', state: 'waiting' });
      expect(total).toBeGreaterThanOrEqual(1);
      expect(total).toBeLessThanOrEqual(t.config.database.mode === 'embedded' ? 1 : t.config.database.poolMax);
      expect(idle).toBeGreaterThanOrEqual(0);
      expect(idle).toBeLessThanOrEqual(total!);
      expect(waiting).toBe(0);
    });

    it('times the search of POST /ask per mode', async () => {
      await request(t.server)
        .post('/embeddings')
        .send({ collection: 'obs', items: [{ content: 'observability of a search' }] })
        .expect(201);
      await request(t.server).post('/ask').send({ question: 'search', collection: 'obs' }).expect(200);
      await request(t.server).post('/ask').send({ question: 'search', collection: 'obs', mode: 'hybrid' }).expect(200);
      await request(t.server).post('/ask').send({ question: 'search', collection: 'obs', mode: 'hybrid' }).expect(200);
      const res = await request(t.server).get('/metrics').expect(200);
      expect(sample(res.text, 'search_duration_seconds_count', { mode: 'vector' })).toBe(1);
      expect(sample(res.text, 'search_duration_seconds_count', { mode: 'hybrid' })).toBe(2);
      expect(sample(res.text, 'search_duration_seconds_bucket', { mode: 'hybrid', le: '+Inf' })).toBe(2);
      expect(sample(res.text, 'http_requests_total', { method: 'POST', route: '/ask', status_code: '200' })).toBe(3);
    });
  });

  describe('embedding provider metrics', () => {
    it('counts and times each call to the embedding provider, with the texts it was sent', async () => {
      const scrape = async () => (await request(t.server).get('/metrics').expect(200)).text;
      const read = (text: string) => ({
        calls: sample(text, 'embedding_requests_total', { provider: 'local', outcome: 'ok' }) ?? 0,
        texts: sample(text, 'embedding_texts_total', { provider: 'local' }) ?? 0,
        timed: sample(text, 'embedding_request_duration_seconds_count', { provider: 'local' }) ?? 0,
      });
      const before = read(await scrape());
      // Three texts without vectors: one call. The item with its own vector sends nothing.
      await request(t.server)
        .post('/embeddings')
        .send({
          collection: 'obs-embed',
          items: [
            { content: 'một' },
            { content: 'hai' },
            { content: 'ba' },
            { content: 'bốn', embedding: Array.from({ length: t.config.embeddings.dimensions }, () => 0.5) },
          ],
        })
        .expect(201);
      // A question: one call. A query vector: none.
      await request(t.server).post('/ask').send({ question: 'một', collection: 'obs-embed' }).expect(200);
      await request(t.server)
        .post('/ask')
        .send({
          question: 'một',
          collection: 'obs-embed',
          queryEmbedding: Array.from({ length: t.config.embeddings.dimensions }, () => 0.5),
        })
        .expect(200);
      const after = read(await scrape());
      expect({
        calls: after.calls - before.calls,
        texts: after.texts - before.texts,
        timed: after.timed - before.timed,
      }).toEqual({ calls: 2, texts: 4, timed: 2 });
    });
  });

  describe('with the database gone', () => {
    let app: NestFastifyApplication;
    let cutDatabase: () => Promise<void>;
    let dropDatabase: () => Promise<void>;
    let restoreConsole: () => void;

    beforeAll(async () => {
      // TypeORM reports the pool's dropped connection on the console itself.
      const poolWarning = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
      restoreConsole = () => poolWarning.mockRestore();
      const db = await createTestDatabase();
      dropDatabase = () => db.drop();
      const overrides = { LOG_LEVEL: 'info', METRICS_ENABLED: 'false', API_KEYS: `${API_KEY}:read` };
      if (TEST_TARGET === 'postgres') {
        // The shared server must not be stopped: the app reaches it through a relay the test cuts.
        const url = new URL(testConfig(db).database.url!);
        const relay = await startTcpRelay(url.hostname, Number(url.port || 5432));
        url.hostname = '127.0.0.1';
        url.port = String(relay.port);
        app = await createApp(testConfig(db, { ...overrides, DATABASE_URL: url.toString() }));
        cutDatabase = relay.cut;
      } else {
        app = await createApp(testConfig(db, overrides));
        cutDatabase = () => app.get(DatabaseRuntime).close();
      }
    });
    afterAll(async () => {
      await app?.close();
      await dropDatabase?.();
      restoreConsole?.();
    });

    it('names the API key of a request by its label, never by its value', async () => {
      await request(app.getHttpServer())
        .get('/documents/x')
        .set('x-api-key', API_KEY)
        .set('x-request-id', 'keyed')
        .expect(404);
      const lines = await logs.forRequest('keyed', (l) => l.msg === 'request completed');
      expect(lines.find((l) => l.msg === 'request completed')).toMatchObject({ apiKey: 'key#1' });
      expect(logs.raw.join('\n')).not.toContain(API_KEY);
    });

    it('METRICS_ENABLED=false: /metrics is a 404', async () => {
      const res = await request(app.getHttpServer()).get('/metrics').expect(404);
      expect(res.body.message).toMatch(/METRICS_ENABLED/);
    });

    it('readiness turns 503 in terminus shape, liveness stays 200, and no body leaks the cause', async () => {
      await request(app.getHttpServer()).get('/health/ready').expect(200);
      await cutDatabase();
      for (const path of ['/health/ready', '/health']) {
        const res = await request(app.getHttpServer()).get(path).expect(503);
        expect(res.body).toMatchObject({ status: 'error' });
        // The service's words, not the driver's (connect ECONNREFUSED <host>:<port>, the user refused).
        expect(res.body.error.database).toEqual({ status: 'down', message: 'The database does not answer' });
        expect(JSON.stringify(res.body)).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|timeout|terminat|connection/i);
        expect(res.headers['x-request-id']).toMatch(UUID);
      }
      await request(app.getHttpServer()).get('/health/live').expect(200);
      const res = await request(app.getHttpServer()).get('/documents').set('x-request-id', 'trace-down').expect(503);
      expect(res.body).toEqual({
        statusCode: 503,
        message: 'The database is unavailable; retry shortly',
        error: 'Service Unavailable',
      });
      const lines = await logs.forRequest('trace-down', (l) => l.context === 'Exceptions');
      expect(lines.find((l) => l.context === 'Exceptions')).toMatchObject({ level: 40 });
    });
  });
});
