import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import request from 'supertest';
import { OPEN_SERVICE_WARNING } from '../src/auth/http-security.js';
import { startTestApp, type TestApp } from './support/test-app.js';

const READER = 'reader-key-0123456789';
const WRITER = 'writer-key-0123456789';
const ADMIN = 'admin-key-01234567890';
const KEYS = [READER, WRITER, ADMIN];
const API_KEYS = `${READER}:read,${WRITER}:write,${ADMIN}`;
const ALLOWED_ORIGIN = 'https://kb.example.com';
/** Headers @fastify/helmet sets with its defaults (a subset: the ones every response must carry). */
const HELMET_HEADER_NAMES = [
  'content-security-policy',
  'cross-origin-opener-policy',
  'cross-origin-resource-policy',
  'origin-agent-cluster',
  'referrer-policy',
  'strict-transport-security',
  'x-content-type-options',
  'x-dns-prefetch-control',
  'x-download-options',
  'x-frame-options',
  'x-permitted-cross-domain-policies',
  'x-xss-protection',
];

const MISSING = {
  statusCode: 401,
  message: 'Missing API key: send Authorization: Bearer <key> or x-api-key',
  error: 'Unauthorized',
};
const INVALID = { statusCode: 401, message: 'Invalid API key', error: 'Unauthorized' };

const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });
const headerKey = (key: string) => ({ 'x-api-key': key });

/** No configured key may appear in a response, neither in the body nor in a header. */
function expectNoKeyIn(res: request.Response): void {
  const text = JSON.stringify(res.body) + JSON.stringify(res.headers) + (res.text ?? '');
  for (const key of KEYS) expect(text).not.toContain(key);
}

async function counts(t: TestApp): Promise<{ documents: number; collections: number; chunks: number }> {
  const [row] = await t.dataSource.query<Array<{ documents: number; collections: number; chunks: number }>>(
    `SELECT (SELECT count(*)::int FROM documents) AS documents,
            (SELECT count(*)::int FROM langchain_pg_collection) AS collections,
            (SELECT count(*)::int FROM langchain_pg_embedding) AS chunks`,
  );
  return row;
}

const doc = (documentId: string) => ({
  documentId,
  documentName: `Tài liệu ${documentId}`,
  documentType: 'law',
  category: 'tax',
  sourceFile: `/data/${documentId}.pdf`,
  chunks: [{ content: `Điều 1. Nội dung của ${documentId} về thuế thu nhập cá nhân.` }],
});

/** The security requirements the served OpenAPI document states for `GET /documents`, `POST /ask` and `POST /documents`. */
async function declaredSecurity(t: TestApp): Promise<Record<string, unknown>> {
  const { body } = await request(t.server).get('/docs-json').expect(200);
  const paths = body.paths as Record<string, Record<string, { security?: unknown }>>;
  return {
    'GET /documents': paths['/documents'].get.security ?? body.security,
    'POST /ask': paths['/ask'].post.security ?? body.security,
    'POST /documents': paths['/documents'].post.security ?? body.security,
  };
}

const KEY_OPTIONAL = [{}, { bearer: [] }, { 'x-api-key': [] }];
const KEY_REQUIRED = [{ bearer: [] }, { 'x-api-key': [] }];

describe('Access control: open mode (API_KEYS unset)', () => {
  let t: TestApp;
  let warnings: string[];

  beforeAll(async () => {
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    try {
      t = await startTestApp();
      warnings = warn.mock.calls.map((call) => String(call[0]));
    } finally {
      warn.mockRestore();
    }
  });
  afterAll(async () => {
    await t.close();
  });

  it('declares in OpenAPI that no operation needs a key', async () => {
    // Before, every operation declared a key whatever the configuration.
    expect(await declaredSecurity(t)).toEqual({ 'GET /documents': [{}], 'POST /ask': [{}], 'POST /documents': [{}] });
  });

  it('says at startup, once, that the service is open', () => {
    expect(warnings.filter((w) => w === OPEN_SERVICE_WARNING)).toHaveLength(1);
  });

  it('serves reads, writes and admin operations without a key', async () => {
    await request(t.server).post('/documents').send(doc('open-doc')).expect(201);
    await request(t.server).get('/documents/open-doc').expect(200);
    await request(t.server).post('/ask').send({ question: 'thuế thu nhập' }).expect(200);
    await request(t.server).put('/collections/docs/vector-index').expect(200);
    await request(t.server).delete('/collections/docs/vector-index').expect(204);
    await request(t.server).delete('/collections/docs').expect(204);
  });

  it('ignores a key header (there is nothing to check it against)', async () => {
    await request(t.server).get('/documents').set(bearer('whatever-key-0123456789')).expect(200);
  });

  it('sends the same helmet headers on errors (404, unmatched route, 400) and on Swagger UI as on a 200', async () => {
    const helmetOf = (res: request.Response) =>
      Object.fromEntries(HELMET_HEADER_NAMES.map((name) => [name, res.headers[name] as unknown]));
    const ok = await request(t.server).get('/documents').expect(200);
    expect(Object.values(helmetOf(ok)).every((value) => typeof value === 'string' && value !== '')).toBe(true);
    const errors = [
      await request(t.server).get('/documents/no-such-document').expect(404),
      await request(t.server).get('/no-such-route').expect(404),
      await request(t.server).get('/documents?limit=0').expect(400),
      await request(t.server).get('/docs').expect(200),
    ];
    for (const res of errors) expect(helmetOf(res)).toEqual(helmetOf(ok));
  });

  it('sends helmet headers and no CORS headers (CORS_ORIGINS unset)', async () => {
    const res = await request(t.server).get('/documents').set('Origin', ALLOWED_ORIGIN).expect(200);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    const preflight = await request(t.server)
      .options('/documents')
      .set('Origin', ALLOWED_ORIGIN)
      .set('Access-Control-Request-Method', 'POST');
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
  });
});

describe('Access control: API_KEYS set, reads public', () => {
  let t: TestApp;
  let startupLog: string[];

  beforeAll(async () => {
    const log = jest.spyOn(Logger.prototype, 'log');
    const warn = jest.spyOn(Logger.prototype, 'warn');
    try {
      t = await startTestApp({ API_KEYS, CORS_ORIGINS: `${ALLOWED_ORIGIN},https://other.example.com` });
      startupLog = [...log.mock.calls, ...warn.mock.calls].map((call) => String(call[0]));
    } finally {
      log.mockRestore();
      warn.mockRestore();
    }
    // Content for the read routes, written directly so the tests below start from a known state.
    await request(t.server).post('/documents').set(bearer(ADMIN)).send(doc('seed')).expect(201);
  });
  afterAll(async () => {
    await t.close();
  });

  it('logs how many keys there are and that reads are public, never a key', () => {
    const text = startupLog.join('\n');
    expect(text).toContain('3 keys configured; reads are public');
    expect(text).not.toContain(OPEN_SERVICE_WARNING);
    for (const key of KEYS) expect(text).not.toContain(key);
  });

  describe('writes (scope write)', () => {
    it('refuse a request without a key with 401, a Bearer challenge and nothing written', async () => {
      const before = await counts(t);
      const res = await request(t.server).post('/documents').send(doc('no-key')).expect(401);
      expect(res.body).toEqual(MISSING);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(await counts(t)).toEqual(before);
    });

    it('refuse a wrong key with 401 "Invalid API key", whichever header carries it', async () => {
      const before = await counts(t);
      for (const headers of [bearer('wrong-key-0123456789abc'), headerKey('wrong-key-0123456789abc')]) {
        const res = await request(t.server).post('/documents').set(headers).send(doc('wrong-key')).expect(401);
        expect(res.body).toEqual(INVALID);
        expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
        expectNoKeyIn(res);
      }
      // A prefix of a real key is not that key.
      await request(t.server)
        .post('/documents')
        .set(bearer(WRITER.slice(0, -1)))
        .send(doc('prefix'))
        .expect(401);
      expect(await counts(t)).toEqual(before);
    });

    it('refuse a read-only key with 403 naming the scope, and write nothing', async () => {
      const before = await counts(t);
      const res = await request(t.server).post('/documents').set(bearer(READER)).send(doc('by-reader')).expect(403);
      expect(res.body).toEqual({
        statusCode: 403,
        message: 'API key key#1 lacks the "write" scope this route needs',
        error: 'Forbidden',
      });
      expectNoKeyIn(res);
      await request(t.server).patch('/documents/seed').set(headerKey(READER)).send({ status: 'archived' }).expect(403);
      await request(t.server).delete('/documents/seed').set(headerKey(READER)).expect(403);
      await request(t.server)
        .post('/embeddings')
        .set(headerKey(READER))
        .send({ items: [{ content: 'x' }] })
        .expect(403);
      await request(t.server).post('/collections').set(bearer(READER)).send({ name: 'by-reader' }).expect(403);
      await request(t.server).post('/documents/ingest').set(bearer(READER)).send({}).expect(403);
      await request(t.server).post('/documents/ingest').send({}).expect(401);
      expect(await counts(t)).toEqual(before);
      expect((await request(t.server).get('/documents/seed').expect(200)).body.status).not.toBe('archived');
    });

    it("refuse a body without a valid key before reading it: 401/403 instead of the parser's 400, the 413, the 415", async () => {
      const malformed = '{"documentId": ';
      const send = (path: string, headers: Record<string, string>, body = malformed, type = 'application/json') =>
        request(t.server).post(path).set(headers).set('Content-Type', type).send(body);
      expect((await send('/documents', {}).expect(401)).body).toEqual(MISSING);
      expect((await send('/documents', bearer('wrong-key-0123456789abc')).expect(401)).body).toEqual(INVALID);
      expect((await send('/embeddings', headerKey(READER)).expect(403)).body.message).toBe(
        'API key key#1 lacks the "write" scope this route needs',
      );
      // Over the route's 4 MiB body limit, or in a media type it does not take: the key is checked first.
      await request(t.server)
        .patch('/documents/seed')
        .set(bearer('wrong-key-0123456789abc'))
        .set('Content-Type', 'application/json')
        .send(`{"documentName": "${'x'.repeat(5 * 1024 * 1024)}"}`)
        .expect(401);
      await send('/documents/recount', {}, 'dryRun=true', 'application/x-www-form-urlencoded').expect(401);
      // With a valid key, the body is read: the parser's 400, as before.
      expect((await send('/documents', bearer(WRITER)).expect(400)).body.message).toMatch(/JSON/i);
      // A search is a read, public without a key: its malformed body is the parser's 400.
      await send('/ask', {}).expect(400);
    });

    it('accept a write or admin key, as Bearer or x-api-key', async () => {
      await request(t.server).post('/documents').set(bearer(WRITER)).send(doc('by-writer')).expect(201);
      await request(t.server).post('/documents').set(headerKey(WRITER)).send(doc('by-writer-2')).expect(201);
      await request(t.server).post('/documents').set(headerKey(ADMIN)).send(doc('by-admin')).expect(201);
      await request(t.server).patch('/documents/by-writer').set(bearer(WRITER)).send({ category: 'land' }).expect(200);
      await request(t.server).delete('/documents/by-writer-2').set(bearer(WRITER)).expect(204);
      await request(t.server).post('/collections').set(bearer(WRITER)).send({ name: 'by-writer' }).expect(201);
    });

    it('accept a lower-case bearer scheme', async () => {
      await request(t.server)
        .post('/collections')
        .set('Authorization', `bearer ${WRITER}`)
        .send({ name: 'lc' })
        .expect(201);
    });
  });

  describe('reads (scope read)', () => {
    it('need no key while API_READS_PUBLIC is true', async () => {
      await request(t.server).get('/documents').expect(200);
      await request(t.server).get('/documents/seed/chunks').expect(200);
      await request(t.server).get('/collections').expect(200);
      await request(t.server).get('/stats').expect(200);
      await request(t.server).get('/vector-indexes').expect(200);
      await request(t.server).post('/ask').send({ question: 'thuế thu nhập' }).expect(200);
    });

    it('accept any valid key', async () => {
      for (const key of KEYS) await request(t.server).get('/documents').set(bearer(key)).expect(200);
      await request(t.server).post('/ask').set(headerKey(READER)).send({ question: 'thuế' }).expect(200);
    });

    it('still refuse a wrong key: a presented key is always checked', async () => {
      const res = await request(t.server).get('/documents').set(headerKey('stale-key-0123456789abc')).expect(401);
      expect(res.body).toEqual(INVALID);
    });
  });

  describe('index operations and deleting a collection (scope admin)', () => {
    it('refuse a write key with 403 naming admin, and leave the index and the collection', async () => {
      const before = await counts(t);
      const res = await request(t.server).put('/collections/docs/vector-index').set(bearer(WRITER)).expect(403);
      expect(res.body.message).toBe('API key key#2 lacks the "admin" scope this route needs');
      await request(t.server).delete('/collections/docs/vector-index').set(bearer(WRITER)).expect(403);
      await request(t.server).delete('/collections/docs').set(headerKey(WRITER)).expect(403);
      await request(t.server).put('/collections/docs/vector-index').expect(401);
      expect((await request(t.server).get('/vector-indexes').expect(200)).body).toEqual([]);
      expect(await counts(t)).toEqual(before);
    });

    it('allow an admin key', async () => {
      await request(t.server).put('/collections/docs/vector-index').set(bearer(ADMIN)).expect(200);
      expect((await request(t.server).get('/vector-indexes').expect(200)).body).toHaveLength(1);
      await request(t.server).delete('/collections/docs/vector-index').set(headerKey(ADMIN)).expect(204);
      await request(t.server).delete('/collections/by-writer').set(bearer(ADMIN)).expect(204);
    });
  });

  it('keeps /health, /docs and /docs-json public', async () => {
    await request(t.server).get('/health').expect(200);
    const docs = await request(t.server).get('/docs').expect(200);
    expect(docs.headers['content-type']).toMatch(/text\/html/);
    await request(t.server).get('/docs-json').expect(200);
  });

  it('declares in OpenAPI a key optional for reads and required for writes', async () => {
    expect(await declaredSecurity(t)).toEqual({
      'GET /documents': KEY_OPTIONAL,
      'POST /ask': KEY_OPTIONAL,
      'POST /documents': KEY_REQUIRED,
    });
  });

  it('declares the security schemes, the scope and 401/403 of each operation in OpenAPI', async () => {
    const { body } = await request(t.server).get('/docs-json').expect(200);
    expect(body.components.securitySchemes).toEqual({
      bearer: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
      'x-api-key': expect.objectContaining({ type: 'apiKey', in: 'header', name: 'x-api-key' }),
    });
    expect(body.security).toEqual([{ bearer: [] }, { 'x-api-key': [] }]);
    expect(body.paths['/health'].get.security).toEqual([{}]);
    expect(body.paths['/health'].get.responses['401']).toBeUndefined();
    const scopes = {
      'GET /documents': 'read',
      'POST /documents': 'write',
      'POST /ask': 'read',
      'DELETE /collections/{name}': 'admin',
      'PUT /collections/{name}/vector-index': 'admin',
      'DELETE /collections/{name}/vector-index': 'admin',
    };
    for (const [route, scope] of Object.entries(scopes)) {
      const [method, path] = route.split(' ');
      const operation = body.paths[path][method.toLowerCase()];
      expect({ route, scope: operation['x-required-scope'] }).toEqual({ route, scope });
      expect(operation.responses['401'].headers['WWW-Authenticate']).toMatchObject({ schema: { type: 'string' } });
      // Every key can read: a read operation declares no 403.
      if (scope === 'read')
        expect({ route, forbidden: operation.responses['403'] }).toEqual({ route, forbidden: undefined });
      else expect(operation.responses['403'].description).toContain(`"${scope}"`);
    }
  });

  it('sends helmet headers on API responses and on Swagger UI, whose scripts are all same-origin files', async () => {
    const api = await request(t.server).get('/documents').expect(200);
    expect(api.headers['x-content-type-options']).toBe('nosniff');
    expect(api.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(api.headers['strict-transport-security']).toBeDefined();
    const docs = await request(t.server).get('/docs').expect(200);
    const csp = String(docs.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self' https: 'unsafe-inline'");
    expect(csp).not.toContain('upgrade-insecure-requests');
    // script-src 'self' allows Swagger UI only because it has no inline script.
    expect(docs.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    const init = await request(t.server).get('/docs/swagger-ui-init.js').expect(200);
    expect(init.text).toContain('"persistAuthorization": true');
  });

  it('answers CORS preflights for allowed origins only, and exposes x-request-id, Retry-After, Location and the rate limit', async () => {
    const allowed = await request(t.server)
      .options('/documents')
      .set('Origin', ALLOWED_ORIGIN)
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'authorization,content-type');
    expect(allowed.status).toBe(204);
    expect(allowed.headers['access-control-allow-origin']).toBe(ALLOWED_ORIGIN);
    expect(allowed.headers['access-control-allow-methods']).toContain('POST');
    expect(allowed.headers['access-control-allow-headers']).toContain('authorization');

    const disallowed = await request(t.server)
      .options('/documents')
      .set('Origin', 'https://evil.example.net')
      .set('Access-Control-Request-Method', 'POST');
    expect(disallowed.headers['access-control-allow-origin']).toBeUndefined();

    const actual = await request(t.server).get('/documents').set('Origin', ALLOWED_ORIGIN).expect(200);
    expect(actual.headers['access-control-allow-origin']).toBe(ALLOWED_ORIGIN);
    expect(String(actual.headers['access-control-expose-headers']).split(/,\s*/)).toEqual([
      'x-request-id',
      'Retry-After',
      'Location',
      'X-RateLimit-Limit',
      'X-RateLimit-Remaining',
      'X-RateLimit-Reset',
    ]);
    // A browser client reads what it was told it may read.
    expect(actual.headers['x-ratelimit-remaining']).toMatch(/^\d+$/);
  });
});

describe('Access control: API_KEYS set, API_READS_PUBLIC=false', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ API_KEYS, API_READS_PUBLIC: 'false', CORS_ORIGINS: '*' });
  });
  afterAll(async () => {
    await t.close();
  });

  it('declares in OpenAPI that reads need a key too', async () => {
    expect(await declaredSecurity(t)).toEqual({
      'GET /documents': KEY_REQUIRED,
      'POST /ask': KEY_REQUIRED,
      'POST /documents': KEY_REQUIRED,
    });
  });

  it('refuses reads without a key or with a wrong one', async () => {
    const res = await request(t.server).get('/documents').expect(401);
    expect(res.body).toEqual(MISSING);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    await request(t.server).get('/stats').expect(401);
    await request(t.server).post('/ask').send({ question: 'x' }).expect(401);
    await request(t.server).get('/collections').set(bearer('wrong-key-0123456789abc')).expect(401);
  });

  it('serves reads to every key, since write and admin include read', async () => {
    for (const key of KEYS) {
      await request(t.server).get('/documents').set(bearer(key)).expect(200);
      await request(t.server).get('/stats').set(headerKey(key)).expect(200);
    }
  });

  it('keeps /health and the OpenAPI document public', async () => {
    await request(t.server).get('/health').expect(200);
    await request(t.server).get('/docs').expect(200);
    await request(t.server).get('/docs-json').expect(200);
  });

  it('lets any origin through CORS when CORS_ORIGINS is *', async () => {
    const res = await request(t.server)
      .options('/documents')
      .set('Origin', 'https://anywhere.example.org')
      .set('Access-Control-Request-Method', 'GET');
    expect(res.status).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('https://anywhere.example.org');
  });
});

describe('Access control: keys refused before the body is read still count against THROTTLE_LIMIT', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ API_KEYS, THROTTLE_LIMIT: '3', THROTTLE_TTL_MS: '60000' });
  });
  afterAll(async () => {
    await t.close();
  });

  it('answers guessed keys 401 until the budget is spent, then 429 with Retry-After, for valid keys too', async () => {
    const guess = (key: string) =>
      request(t.server)
        .post('/documents')
        .set(bearer(key))
        .send(doc(`guess-${key.slice(0, 6)}`));
    for (const [i, key] of ['guess1-0123456789abcd', 'guess2-0123456789abcd', 'guess3-0123456789abcd'].entries()) {
      const refused = await guess(key).expect(401);
      expect(refused.body).toEqual(INVALID);
      // The budget is reported as the rate-limit guard reports it.
      expect([refused.headers['x-ratelimit-limit'], refused.headers['x-ratelimit-remaining']]).toEqual([
        '3',
        String(2 - i),
      ]);
    }
    const blocked = await guess('guess4-0123456789abcd').expect(429);
    expect(blocked.headers['retry-after']).toMatch(/^\d+$/);
    expect(blocked.body.error).toBe('Too Many Requests');
    // One budget per client, whoever counted the requests: the guard refuses the right key too.
    await request(t.server).post('/documents').set(bearer(WRITER)).send(doc('after-guesses')).expect(429);
  });
});
