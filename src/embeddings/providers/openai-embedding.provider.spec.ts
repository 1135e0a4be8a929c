import { HttpException, Logger } from '@nestjs/common';
import { createServer, STATUS_CODES } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startFakeOpenAIServer, type FakeOpenAIServer } from '../../../test/support/fake-openai-server.js';
import { FLOAT4_MAX } from '../dto/embedding.dto.js';
import { LocalEmbeddingProvider } from './local-embedding.provider.js';
import { OpenAIEmbeddingProvider, type OpenAIEmbeddingOptions } from './openai-embedding.provider.js';

/** Awaits a call that must fail and returns its HttpException. */
async function failure(promise: Promise<unknown>): Promise<HttpException> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof HttpException) return err;
    throw err;
  }
  throw new Error('expected the call to fail');
}

describe('OpenAIEmbeddingProvider', () => {
  let server: FakeOpenAIServer;
  const warnings: string[] = [];
  /** Waits the client asked for; nothing really waits, so retries cost no time. */
  const waits: number[] = [];
  const retry = {
    baseDelayMs: 10,
    sleep: (ms: number) => {
      waits.push(ms);
      return Promise.resolve();
    },
  };

  const provider = (overrides: Partial<OpenAIEmbeddingOptions> = {}, dimensions = 64) =>
    new OpenAIEmbeddingProvider(
      { baseUrl: server.url, model: 'fake-embed', timeoutMs: 5000, maxRetries: 2, requestBatch: 3, ...overrides },
      dimensions,
      retry,
    );

  beforeAll(async () => {
    Logger.overrideLogger({
      log: () => undefined,
      error: () => undefined,
      warn: (message: unknown) => void warnings.push(String(message)),
    });
    server = await startFakeOpenAIServer({ dimensions: 64 });
  });
  afterAll(async () => {
    await server.close();
  });
  beforeEach(() => {
    server.requests.length = 0;
    server.setDelay(0);
    waits.length = 0;
    warnings.length = 0;
  });

  it('returns [] for no texts without a request', async () => {
    expect(await provider().embed([])).toEqual([]);
    expect(server.requests).toHaveLength(0);
  });

  it('sends requestBatch texts per request and returns the vectors in input order', async () => {
    const texts = ['một', 'hai', 'ba', 'bốn', 'năm', 'sáu', 'bảy'];
    const p = provider();
    const vectors = await p.embed(texts);

    expect(server.requests.map((r) => [r.method, r.path])).toEqual(Array(3).fill(['POST', '/v1/embeddings']));
    const inputs = server.requests.map((r) => r.body?.input as string[]);
    expect(inputs.map((i) => i.length).sort()).toEqual([1, 3, 3]);
    expect(inputs.flat().sort()).toEqual([...texts].sort());
    expect(server.requests[0].body).toEqual({
      model: 'fake-embed',
      input: expect.any(Array),
      encoding_format: 'float',
    });
    // The fake answers in reverse index order, so equality proves the provider sorts by index.
    expect(vectors).toEqual(await new LocalEmbeddingProvider(64).embed(texts));
    expect(p.model).toBe('fake-embed');
    expect(p.dimensions).toBe(64);
  });

  it('asks text-embedding-3 models for the configured dimension', async () => {
    const vectors = await provider({ model: 'text-embedding-3-small' }, 32).embed(['a text']);
    expect(server.requests[0].body).toMatchObject({ model: 'text-embedding-3-small', dimensions: 32 });
    expect(vectors[0]).toHaveLength(32);
  });

  it('sends the API key as a bearer token, and no authorization header without one', async () => {
    await provider({ apiKey: 'sk-test-key' }).embed(['x']);
    await provider().embed(['y']);
    expect(server.requests[0].headers.authorization).toBe('Bearer sk-test-key');
    expect(server.requests[0].headers['api-key']).toBeUndefined();
    expect(server.requests[1].headers.authorization).toBeUndefined();
  });

  it('ignores a trailing slash in the base URL', async () => {
    await provider({ baseUrl: `${server.url}/` }).embed(['x']);
    expect(server.requests[0].path).toBe('/v1/embeddings');
  });

  it('retries a 429 after the time Retry-After asks for, then succeeds', async () => {
    server.failNext(429, 1, { 'retry-after': '2' });
    server.failNext(429, 1, { 'retry-after-ms': '150' });
    const vectors = await provider().embed(['retried text']);
    expect(vectors).toEqual(await new LocalEmbeddingProvider(64).embed(['retried text']));
    expect(server.requests).toHaveLength(3);
    expect(waits).toEqual([2000, 150]);
    expect(warnings).toEqual([
      expect.stringContaining('429 Too Many Requests (Scripted failure 429); retry 1/2'),
      expect.stringContaining('retry 2/2'),
    ]);
  });

  it('backs off exponentially with jitter on 5xx without Retry-After', async () => {
    server.failNext(500, 2);
    await provider().embed(['x']);
    expect(waits).toHaveLength(2);
    expect(waits[0]).toBeGreaterThanOrEqual(5);
    expect(waits[0]).toBeLessThanOrEqual(10);
    expect(waits[1]).toBeGreaterThanOrEqual(10);
    expect(waits[1]).toBeLessThanOrEqual(20);
  });

  it('gives up after maxRetries: a persistent 5xx is a 502, a persistent 429 a 503', async () => {
    server.failNext(500, 3);
    const bad = await failure(provider().embed(['x']));
    expect(server.requests).toHaveLength(3);
    expect(bad.getStatus()).toBe(502);
    // The provider's words for its own failure go to the log, not to the client.
    expect(bad.message).toBe(
      `Embedding service at ${new URL(server.url).host} failed: 500 Internal Server Error (gave up after 3 attempts)`,
    );
    expect(warnings.at(-1)).toBe(
      `Embedding service at ${new URL(server.url).host} failed: 500 Internal Server Error (Scripted failure 500) (gave up after 3 attempts)`,
    );

    server.requests.length = 0;
    server.failNext(429, 3);
    const busy = await failure(provider().embed(['x']));
    expect(server.requests).toHaveLength(3);
    expect(busy.getStatus()).toBe(503);
    expect(busy.message).toContain('429 Too Many Requests');
  });

  it('does not retry a client error such as 400', async () => {
    server.failNext(400, 1);
    const err = await failure(provider().embed(['x']));
    expect(server.requests).toHaveLength(1);
    expect(err.getStatus()).toBe(502);
    // A 4xx's structured error message says what was wrong with the request: the client hears it.
    expect(err.message).toContain('failed: 400 Bad Request (Scripted failure 400)');
  });

  it("tells a client only a request fault's structured message; the log has every answer, its passwords out", async () => {
    const traceback =
      'Traceback (most recent call last):\n  File "/srv/embedder/app.py", line 12\n' +
      '    psycopg.connect("postgresql://embedder:S3cretPw@10.0.3.7:5432/vectors")\nOperationalError';
    const host = new URL(server.url).host;
    const logged = (text: string) => [expect.stringContaining(text) as string];
    // [status, body, the client's status, what the client is told after the status line, the log]
    const cases: Array<[number, string, number, string, string[]]> = [
      [500, traceback, 502, '', logged('postgresql://embedder:***@10.0.3.7:5432/vectors')],
      // Plain text from a 4xx is a proxy's page, not the API's answer.
      [404, `<html>nginx: no route for ${traceback}</html>`, 502, '', logged('(<html>nginx: no route')],
      // A request fault's JSON error, as the API meant it for its callers (passwords out, any scheme):
      // the client was told all, so the log is not.
      [
        400,
        JSON.stringify({ detail: 'input must be text; see https://docs:S3cretPw@wiki.internal/embed' }),
        502,
        ' (input must be text; see https://docs:***@wiki.internal/embed)',
        [],
      ],
      // A 429's message names the account: the log only.
      [
        429,
        JSON.stringify({ error: { message: 'Rate limit reached for org-AcmeCorp on tokens per min' } }),
        503,
        '',
        logged('Rate limit reached for org-AcmeCorp'),
      ],
    ];
    for (const [status, body, answered, told, log] of cases) {
      warnings.length = 0;
      server.failNext(status, 1, {}, body);
      const err = await failure(provider({ maxRetries: 0 }).embed(['x']));
      expect([err.getStatus(), err.message]).toEqual([
        answered,
        `Embedding service at ${host} failed: ${status} ${STATUS_CODES[status]}${told}`,
      ]);
      expect(warnings).toEqual(log);
      expect(warnings.join()).not.toContain('S3cretPw');
    }
  });

  it('tells a client that an answer was not JSON, and the log what it was', async () => {
    const upstream = createServer((_req, res) => res.end('upstream says: postgres://u:pw@db/x'));
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    try {
      const err = await failure(provider({ baseUrl: `http://${host}/v1`, maxRetries: 0 }).embed(['x']));
      expect(err.message).toBe(`Embedding service at ${host} failed: invalid JSON in the response`);
      expect(warnings).toEqual([expect.stringContaining('(upstream says: postgres://u:***@db/x)')]);
    } finally {
      await new Promise((resolve) => upstream.close(resolve));
    }
  });

  it('sends a batch refused as too many tokens per request again in halves, down to what passes', async () => {
    const capped = await startFakeOpenAIServer({ dimensions: 64, maxRequestChars: 10 });
    try {
      const texts = ['aaa', 'bbb', 'ccc', 'ddd', 'eee', 'fff', 'ggg', 'hhh'];
      const vectors = await provider({ baseUrl: capped.url, requestBatch: 8 }).embed(texts);
      expect(vectors).toEqual(await new LocalEmbeddingProvider(64).embed(texts));
      // 24 characters refused, then two halves of 12 refused, then four quarters of 6 sent.
      expect(capped.requests.map((r) => (r.body?.input as string[]).join(''))).toEqual([
        'aaabbbcccdddeeefffggghhh',
        'aaabbbcccddd',
        'aaabbb',
        'cccddd',
        'eeefffggghhh',
        'eeefff',
        'ggghhh',
      ]);
      expect(warnings).toEqual([
        expect.stringMatching(
          /failed: 400 Bad Request \(Requested 24 tokens, max 10 tokens per request\): sending its 8 texts in smaller requests\. Lower EMBEDDINGS_REQUEST_BATCH \(now 8\)/,
        ),
      ]);

      // One text the provider refuses so cannot be split: the provider's 502.
      const err = await failure(provider({ baseUrl: capped.url }).embed(['x'.repeat(11)]));
      expect(err.getStatus()).toBe(502);
      expect(err.message).toContain('(Requested 11 tokens, max 10 tokens per request)');
    } finally {
      await capped.close();
    }
  });

  it('sends a batch a proxy refuses with a 413 again in halves; another 400 is not split', async () => {
    server.failNext(413, 1);
    expect(await provider().embed(['a', 'b', 'c'])).toEqual(
      await new LocalEmbeddingProvider(64).embed(['a', 'b', 'c']),
    );
    expect(server.requests.map((r) => r.body?.input)).toEqual([['a', 'b', 'c'], ['a', 'b'], ['c']]);
    server.requests.length = 0;
    server.failNext(400, 1);
    expect((await failure(provider().embed(['a', 'b', 'c']))).getStatus()).toBe(502);
    expect(server.requests).toHaveLength(1);
  });

  it('stops at the first failed batch', async () => {
    server.failNext(400, 1);
    await failure(provider({ requestBatch: 1 }).embed(['a', 'b', 'c', 'd', 'e', 'f']));
    // The second worker may have one request in flight when the first fails; nothing after that.
    expect(server.requests.length).toBeLessThanOrEqual(2);
  });

  it('turns a timeout into a 504', async () => {
    server.setDelay(2000);
    const err = await failure(provider({ timeoutMs: 100 }).embed(['slow']));
    expect(err.getStatus()).toBe(504);
    expect(err.message).toBe(`Embedding service at ${new URL(server.url).host} timed out: no answer within 100 ms`);
  });

  it('turns an unreachable server into a 503 after retrying', async () => {
    const gone = await startFakeOpenAIServer();
    const url = gone.url;
    await gone.close();
    const err = await failure(provider({ baseUrl: url }).embed(['x']));
    expect(err.getStatus()).toBe(503);
    expect(err.message).toMatch(/^Embedding service at 127\.0\.0\.1:\d+ is unreachable: ECONNREFUSED/);
    expect(waits).toHaveLength(2);
  });

  it('rejects vectors of another dimension than EMBEDDINGS_DIMENSIONS', async () => {
    const err = await failure(provider({}, 128).embed(['x']));
    expect(err.getStatus()).toBe(502);
    expect(err.message).toBe(
      `Embedding model "fake-embed" at ${new URL(server.url).host} returned 64-dimensional vectors but EMBEDDINGS_DIMENSIONS is 128`,
    );
  });

  it('answers 502 for vectors no request could carry: all zeros, or squares beyond float32', async () => {
    let embedding: number[] = [];
    const upstream = createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ data: [{ index: 0, embedding }] }));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const host = `127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    try {
      const client = provider({ baseUrl: `http://${host}/v1`, maxRetries: 0 }, 4);
      const cases: Array<[number[], string]> = [
        [
          [0, 0, 0, 0],
          'an embedding must not be all zeros, or so close to it that its float32 norm underflows: its cosine distance to any vector is undefined',
        ],
        [
          [2e19, 0, 0, 0],
          'an embedding is too large: the sum of its float32 squares overflows, so its cosine distance to any vector is undefined',
        ],
        [[1e39, 0, 0, 0], `each value in an embedding must not be greater than ${FLOAT4_MAX}`],
      ];
      for (const [sent, problem] of cases) {
        embedding = sent;
        const err = await failure(client.embed(['x']));
        expect([err.getStatus(), err.message]).toEqual([
          502,
          `Embedding service at ${host} returned an unusable response: ${problem}`,
        ]);
      }
      embedding = [1e19, 0, 0, 1];
      expect(await client.embed(['x'])).toEqual([[1e19, 0, 0, 1]]);
    } finally {
      await new Promise((resolve) => upstream.close(resolve));
    }
  });

  it('never puts the API key into an error message or a log line', async () => {
    const guarded = await startFakeOpenAIServer({ apiKey: 'right-key' });
    try {
      const secret = 'sk-secret-0123456789';
      guarded.failNext(503, 1, { 'retry-after': '0' });
      const err = await failure(provider({ baseUrl: guarded.url, apiKey: secret }).embed(['x']));
      // The fake echoes the rejected key, as OpenAI does; 401 is not retried.
      expect(guarded.requests).toHaveLength(2);
      expect(err.getStatus()).toBe(502);
      expect(err.message).toBe(
        `Embedding service at ${new URL(guarded.url).host} failed: 401 Unauthorized (the provider refused the configured API key) (gave up after 2 attempts)`,
      );
      expect(JSON.stringify(err.getResponse())).not.toContain(secret);
      expect(warnings.join('\n')).not.toContain(secret);
      // The log has the provider's reason (an Azure 403 may be a firewall), the key taken out.
      expect(warnings.at(-1)).toContain('401 Unauthorized (Incorrect API key provided: ***)');

      // Nor any part of a longer key (the fake echoes it whole; OpenAI partly masked, which the
      // redaction of the whole key would not find).
      const longSecret = `sk-${'0123456789'.repeat(30)}`;
      const cut = await failure(provider({ baseUrl: guarded.url, apiKey: longSecret, maxRetries: 0 }).embed(['x']));
      expect(cut.message).toBe(
        `Embedding service at ${new URL(guarded.url).host} failed: 401 Unauthorized (the provider refused the configured API key)`,
      );
    } finally {
      await guarded.close();
    }
  });
});
