import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { createApp } from '../src/app.factory.js';
import { LocalEmbeddingProvider } from '../src/embeddings/providers/local-embedding.provider.js';
import { INGEST_EMBED_FIRST_MAX_CHUNKS } from '../src/ingest/ingest.service.js';
import { LogCapture } from './support/log-capture.js';
import { openApiOperations } from './support/openapi.js';
import { eventually } from './support/private-postgres.js';
import { startFakeOpenAIServer, type FakeOpenAIServer } from './support/fake-openai-server.js';
import { rowsSnapshot, startTestApp, type TestApp } from './support/test-app.js';
import { createTestDatabase, TEST_TARGET, testConfig } from './support/test-database.js';

/** The JSON log lines of this suite, so tests can assert on warnings. */
const logs = new LogCapture();
beforeAll(() => logs.start());
afterAll(() => logs.stop());

const openaiEnv = (url: string): Record<string, string> => ({
  EMBEDDINGS_PROVIDER: 'openai',
  EMBEDDINGS_BASE_URL: url,
  EMBEDDINGS_MODEL: 'fake-embed',
  EMBEDDINGS_DIMENSIONS: '64',
});

async function chunkCount(t: TestApp): Promise<number> {
  const [row] = await t.dataSource.query<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM langchain_pg_embedding`);
  return row.n;
}

describe('EMBEDDINGS_PROVIDER=openai against an OpenAI-compatible server', () => {
  let server: FakeOpenAIServer;
  let t: TestApp;

  // INGEST_TEMP_DIR: the directory of this suite's own, where a long text's vectors wait.
  const spillParent = mkdtempSync(join(tmpdir(), 'kb-spill-parent-'));

  beforeAll(async () => {
    server = await startFakeOpenAIServer({ dimensions: 64, maxInputChars: 8192, maxRequestChars: 12_000 });
    t = await startTestApp({
      ...openaiEnv(server.url),
      INGEST_TEMP_DIR: spillParent,
      EMBEDDINGS_API_KEY: 'sk-e2e-secret',
      EMBEDDINGS_REQUEST_BATCH: '2',
      EMBEDDINGS_MAX_RETRIES: '1',
      // Long: the tests that hold the server check the database meanwhile, and a write may follow.
      EMBEDDINGS_TIMEOUT_MS: '30000',
    });
  });
  afterAll(async () => {
    await t?.close();
    await server?.close();
    rmSync(spillParent, { recursive: true, force: true });
  });
  beforeEach(() => {
    server.release();
    server.requests.length = 0;
    server.setDelay(0);
    logs.clear();
  });

  it('stores the vectors the server computed, with the model recorded on the collection', async () => {
    const texts = ['Điều 1. Phạm vi điều chỉnh', 'Điều 2. Đối tượng áp dụng', 'Điều 3. Giải thích từ ngữ'];
    const res = await request(t.server)
      .post('/embeddings')
      .send({ items: texts.map((content) => ({ content })) })
      .expect(201);

    expect(server.requests.map((r) => r.path)).toEqual(['/v1/embeddings', '/v1/embeddings']);
    expect(server.requests.flatMap((r) => r.body?.input)).toEqual(texts);
    expect(server.requests[0].body?.model).toBe('fake-embed');
    expect(server.requests[0].headers.authorization).toBe('Bearer sk-e2e-secret');

    const expected = await new LocalEmbeddingProvider(64).embed(texts);
    for (const [i, id] of (res.body.ids as string[]).entries()) {
      const chunk = await request(t.server).get(`/embeddings/${id}`).expect(200);
      expect(chunk.body.embedding).toHaveLength(64);
      // pgvector stores float4: equal to the server's vector to about 7 significant digits.
      (chunk.body.embedding as number[]).forEach((v, k) => expect(v).toBeCloseTo(expected[i][k], 5));
    }
    const collection = await request(t.server).get('/collections/docs').expect(200);
    expect(collection.body).toMatchObject({
      dimensions: 64,
      metadata: { embedding_model: 'fake-embed', dimensions: 64 },
    });
  });

  /** Whether `documentId` exists yet, and how many of the database's sessions sit in a transaction. */
  async function whileProviderComputes(documentId: string): Promise<{ documents: number; open: number }> {
    const [during] = await t.dataSource.query<Array<{ documents: number; open: number }>>(
      `SELECT (SELECT count(*)::int FROM documents WHERE document_id = $1) AS documents,
              (SELECT count(*)::int FROM pg_stat_activity
                WHERE datname = current_database() AND state LIKE 'idle in transaction%') AS open`,
      [documentId],
    );
    return during;
  }

  it('POST /documents asks the provider before it opens a transaction, so a slow one holds no connection', async () => {
    // Held until the check below is done (a few ms, well inside the suite's 30 s timeout), rather
    // than a fixed delay that raced a shorter timeout on a busy machine.
    server.hold();
    const created = request(t.server)
      .post('/documents')
      .send({
        documentId: 'provider-first',
        documentName: 'x',
        documentType: 'law',
        category: 'c',
        sourceFile: '/f.pdf',
        chunks: [{ content: 'Điều 1' }],
      })
      .then((r) => r);
    expect(await eventually(() => Promise.resolve(server.requests.length > 0), 200, 5)).toBe(true);
    // While the provider computes: the pool has a connection for others (on the embedded database
    // its only one; a transaction holding it would keep this query waiting until its commit, and the
    // document would be there), and no session of the service sits in a transaction.
    expect(await whileProviderComputes('provider-first')).toEqual({ documents: 0, open: 0 });
    server.release();
    const res = await created;
    expect(res.status).toBe(201);
    expect(res.body.totalChunks).toBe(1);
  });

  it('POST /documents/ingest of a text of several batches asks the provider before it opens a transaction', async () => {
    server.hold();
    // 300 chunks: more than one batch of INGEST_BATCH_SIZE (256), which used to be embedded inside it.
    const text = Array.from({ length: 300 }, (_, i) => `Điều ${i + 1}. Phạm vi ${i + 1}`).join('\n\n');
    const ingested = request(t.server)
      .post('/documents/ingest')
      .send({
        documentId: 'ingest-provider-first',
        documentType: 'law',
        category: 'c',
        text,
        collection: 'ingest-first',
      })
      .then((r) => r);
    expect(await eventually(() => Promise.resolve(server.requests.length > 0), 200, 5)).toBe(true);
    // While the provider computes: no session of the service sits in a transaction, so the new
    // collection's row and its first-vectors lock are not held; another writer of it gets in.
    expect(await whileProviderComputes('ingest-provider-first')).toEqual({ documents: 0, open: 0 });
    const vector = Array.from({ length: 64 }, (_, i) => (i === 0 ? 1 : 0));
    await request(t.server)
      .post('/embeddings')
      .send({ collection: 'ingest-first', items: [{ id: 'beside-ingest', content: 'x', embedding: vector }] })
      .expect(201);
    server.release();
    const res = await ingested;
    expect([res.status, res.body.chunks]).toEqual([201, 300]);
  });

  it('POST /documents/ingest of a text too long to hold its vectors in memory also asks the provider before its transaction', async () => {
    server.hold();
    // More chunks than INGEST_EMBED_FIRST_MAX_CHUNKS: their vectors used to be computed batch by
    // batch inside the transaction; now they wait in a temporary file.
    const count = INGEST_EMBED_FIRST_MAX_CHUNKS + 52;
    const contents = Array.from({ length: count }, (_, i) => `Điều ${i + 1}. Phạm vi ${i + 1}`);
    const ingested = request(t.server)
      .post('/documents/ingest')
      .send({
        documentId: 'ingest-long-provider-first',
        documentType: 'law',
        category: 'c',
        text: contents.join('\n\n'),
        collection: 'ingest-long-first',
      })
      .then((r) => r);
    expect(await eventually(() => Promise.resolve(server.requests.length > 0), 200, 5)).toBe(true);
    expect(await whileProviderComputes('ingest-long-provider-first')).toEqual({ documents: 0, open: 0 });
    // The vectors wait in a file unlinked as soon as it was opened: nothing to see, nothing to leave.
    expect(readdirSync(spillParent)).toEqual([]);
    const vector = Array.from({ length: 64 }, (_, i) => (i === 0 ? 1 : 0));
    await request(t.server)
      .post('/embeddings')
      .send({
        collection: 'ingest-long-first',
        items: [{ id: 'beside-long-ingest', content: 'x', embedding: vector }],
      })
      .expect(201);
    server.release();
    const res = await ingested;
    expect([res.status, res.body.chunks]).toEqual([201, count]);
    expect(readdirSync(spillParent)).toEqual([]);
    // Each chunk got its own text's vector, across the batches of the file (the fake server
    // computes the local provider's vectors).
    const local = new LocalEmbeddingProvider(64);
    const indexes = [0, 255, 256, 2047, 2048, count - 1];
    const stored = await t.dataSource.query<Array<{ i: number; document: string; embedding: string }>>(
      `SELECT (cmetadata->>'chunk_index')::int AS i, document, embedding::text AS embedding
         FROM langchain_pg_embedding
        WHERE cmetadata->>'document_id' = 'ingest-long-provider-first' AND (cmetadata->>'chunk_index')::int = ANY($1)
        ORDER BY 1`,
      [indexes],
    );
    expect(stored.map((row) => [row.i, row.document])).toEqual(indexes.map((i) => [i, contents[i]]));
    for (const row of stored) {
      const expected = local.embedOne(row.document);
      (JSON.parse(row.embedding) as number[]).forEach((x, d) => expect(x).toBeCloseTo(expected[d], 6));
    }
  });

  it('answers 503 naming the temporary directory when a long text cannot keep its vectors there, and writes nothing', async () => {
    // A directory that cannot be written: gone here, read-only in a container without a writable /tmp.
    const other = await startTestApp({ ...openaiEnv(server.url), INGEST_TEMP_DIR: join(spillParent, 'gone') });
    try {
      const before = await rowsSnapshot(other);
      const count = INGEST_EMBED_FIRST_MAX_CHUNKS + 1;
      const text = Array.from({ length: count }, (_, i) => `Điều ${i + 1}. Phạm vi ${i + 1}`).join('\n\n');
      const refused = await request(other.server)
        .post('/documents/ingest')
        .send({ documentId: 'ingest-long-no-tmp', documentType: 'law', category: 'c', text });
      expect([refused.status, refused.headers['retry-after'], refused.body.message]).toEqual([
        503,
        '60',
        "The service's temporary directory (INGEST_TEMP_DIR or TMPDIR) cannot be written (ENOENT) for the vectors " +
          `of this text's ${count} chunks; retry later`,
      ]);
      expect(await rowsSnapshot(other)).toEqual(before);
    } finally {
      await other.close();
    }
  });

  it('answers 422 when the model refuses a text as too long for it (not 502), and writes nothing', async () => {
    const before = await rowsSnapshot(t);
    const res = await request(t.server)
      .post('/embeddings')
      .send({ collection: 'too-long', items: [{ content: 'ngắn' }, { content: 'dài '.repeat(3000) }] })
      .expect(422);
    expect(res.body.message).toMatch(
      /^Embedding service at 127\.0\.0\.1:\d+ failed: 400 Bad Request \(This model's maximum context length is 8192 tokens, .*\): a text is longer than the embedding model takes; shorten it$/,
    );
    expect(await rowsSnapshot(t)).toEqual(before);
    // An ingest's chunks are the service's cut of the text: the message says what to change.
    const ingested = await request(t.server)
      .post('/documents/ingest')
      .send({ documentType: 'law', category: 'c', text: 'dài '.repeat(3000), chunkSize: 20_000, chunkOverlap: 0 })
      .expect(422);
    expect(ingested.body.message).toMatch(
      /maximum context length.*; ingest with a smaller chunkSize, whose default is INGEST_CHUNK_SIZE\)$/,
    );
    expect(await rowsSnapshot(t)).toEqual(before);
    // Counted as the client's, not as the provider failing.
    const metrics = (await request(t.server).get('/metrics').expect(200)).text;
    expect(metrics).toMatch(/^embedding_requests_total\{provider="openai",outcome="rejected"\} 2$/m);
  });

  it('sends a batch the provider refuses as too many tokens per request again in halves, and stores every vector', async () => {
    // Each text is within the model's 8,192; two in one request are over the 12,000 per request.
    const texts = ['một '.repeat(1750).trim(), 'hai '.repeat(1750).trim(), 'ba '.repeat(2000).trim()];
    const res = await request(t.server)
      .post('/embeddings')
      .send({ collection: 'halves', items: texts.map((content) => ({ content })) })
      .expect(201);
    // The two batches go out side by side: the refused one of two, the other's one, then the two halves.
    expect(server.requests.map((r) => (r.body?.input as string[]).length).sort()).toEqual([1, 1, 1, 2]);
    const expected = await new LocalEmbeddingProvider(64).embed(texts);
    for (const [i, id] of (res.body.ids as string[]).entries()) {
      const chunk = await request(t.server).get(`/embeddings/${id}`).expect(200);
      expect(chunk.body.content).toBe(texts[i]);
      (chunk.body.embedding as number[]).forEach((v, k) => expect(v).toBeCloseTo(expected[i][k], 5));
    }
    expect(logs.warnings()).toEqual([expect.stringContaining('Lower EMBEDDINGS_REQUEST_BATCH (now 2)')]);
  });

  it('declares the 502, 504 and 422 it answers on every operation that computes vectors', async () => {
    const computing = ['post /embeddings', 'post /documents', 'post /documents/ingest', 'post /ask'];
    const operations = await openApiOperations(t.server);
    for (const name of computing) {
      const responses = operations.find((o) => o.name === name)?.operation.responses ?? {};
      expect({ name, codes: ['502', '504'].filter((code) => responses[code] !== undefined) }).toEqual({
        name,
        codes: ['502', '504'],
      });
    }
    // Each sends the client's texts (chunks, a question): the 422 of a text too long for the model.
    for (const name of computing) {
      const description = String(operations.find((o) => o.name === name)?.operation.responses['422']?.description);
      expect({ name, description }).toEqual({
        name,
        description: expect.stringContaining('longer than its model takes'),
      });
    }
  });

  it('rides out a 429 with Retry-After', async () => {
    server.failNext(429, 1, { 'retry-after': '0' });
    await request(t.server)
      .post('/embeddings')
      .send({ items: [{ id: 'after-429', content: 'retried' }] })
      .expect(201);
    expect(server.requests).toHaveLength(2);
    expect(logs.warnings()).toEqual([expect.stringContaining('429 Too Many Requests')]);
  });

  it('answers 502 when the server keeps failing, and writes nothing', async () => {
    const before = await chunkCount(t);
    const failedCalls = async (): Promise<number> => {
      const metrics = (await request(t.server).get('/metrics').expect(200)).text;
      const match = /^embedding_requests_total\{provider="openai",outcome="error"\} (\d+)$/m.exec(metrics);
      return match ? Number(match[1]) : 0;
    };
    const failedBefore = await failedCalls();
    // A provider's 5xx body may be its traceback: the client is told the status, not the text.
    server.failNext(500, 2, {}, 'Traceback: psycopg.connect("postgresql://embedder:S3cretPw@10.0.3.7/vectors")');
    const res = await request(t.server)
      .post('/embeddings')
      .send({ collection: 'failing', items: [{ content: 'never stored' }] })
      .expect(502);
    expect(res.body).toEqual({
      statusCode: 502,
      error: 'Bad Gateway',
      message: `Embedding service at ${new URL(server.url).host} failed: 500 Internal Server Error (gave up after 2 attempts)`,
    });
    expect(server.requests).toHaveLength(2);
    expect(await chunkCount(t)).toBe(before);
    await request(t.server).get('/collections/failing').expect(404);
    // One failed call (its two attempts inside), counted apart from the calls that succeeded.
    expect(await failedCalls()).toBe(failedBefore + 1);
    const metrics = (await request(t.server).get('/metrics').expect(200)).text;
    expect(metrics).toMatch(/^embedding_requests_total\{provider="openai",outcome="ok"\} [1-9]\d*$/m);
  });

  it("answers 503 with the server's own Retry-After when it rate-limits for longer than the service waits", async () => {
    const before = await chunkCount(t);
    server.failNext(429, 1, { 'retry-after': '120' });
    const res = await request(t.server)
      .post('/embeddings')
      .send({ items: [{ content: 'throttled' }] })
      .expect(503);
    expect(res.headers['retry-after']).toBe('120');
    expect(res.body.message).toContain('429');
    expect(server.requests).toHaveLength(1);
    expect(await chunkCount(t)).toBe(before);
  });
});

describe('EMBEDDINGS_TIMEOUT_MS against a server that does not answer', () => {
  let server: FakeOpenAIServer;
  let t: TestApp;

  beforeAll(async () => {
    server = await startFakeOpenAIServer({ dimensions: 64 });
    t = await startTestApp({ ...openaiEnv(server.url), EMBEDDINGS_MAX_RETRIES: '1', EMBEDDINGS_TIMEOUT_MS: '1000' });
  });
  afterAll(async () => {
    await t?.close();
    await server?.close();
  });

  it('answers 504 when the server does not answer in time, and writes nothing', async () => {
    const before = await chunkCount(t);
    server.setDelay(3000);
    const res = await request(t.server)
      .post('/embeddings')
      .send({ collection: 'slow', items: [{ content: 'too slow' }] })
      .expect(504);
    expect(res.body.message).toBe(
      `Embedding service at ${new URL(server.url).host} timed out: no answer within 1000 ms`,
    );
    expect(await chunkCount(t)).toBe(before);
    await request(t.server).get('/collections/slow').expect(404);
  });
});

type App = Awaited<ReturnType<typeof createApp>>;
type InApp = (overrides: Record<string, string>, use: (app: App) => Promise<void>) => Promise<void>;

/**
 * Runs `steps` on one test database that outlives each app they start (on disk when embedded),
 * beside a fake OpenAI server: `inApp` starts the app with these settings and closes it after `use`.
 */
async function acrossRestarts(
  prefix: string,
  steps: (inApp: InApp, server: FakeOpenAIServer) => Promise<void>,
): Promise<void> {
  const db = await createTestDatabase();
  const dir = TEST_TARGET === 'embedded' ? mkdtempSync(join(tmpdir(), prefix)) : null;
  const env: Record<string, string> = dir ? { DATA_DIR: dir } : {};
  const server = await startFakeOpenAIServer({ dimensions: 64 });
  const inApp: InApp = async (overrides, use) => {
    const app = await createApp(testConfig(db, { ...env, ...overrides }));
    try {
      await use(app);
    } finally {
      await app.close();
    }
  };
  try {
    await steps(inApp, server);
  } finally {
    await server.close();
    await db.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

describe('a collection embedded with another model', () => {
  it('does not stop the service from starting, and is reported as a warning, as is a DEFAULT_COLLECTION naming none of them', async () => {
    await acrossRestarts('kb-model-check-', async (inApp, server) => {
      await inApp({}, async (first) => {
        await request(first.getHttpServer())
          .post('/embeddings')
          .send({ collection: 'legacy', items: [{ content: 'embedded locally' }] })
          .expect(201);
      });
      logs.clear();
      await inApp(openaiEnv(server.url), async (second) => {
        const res = await request(second.getHttpServer()).get('/collections/legacy').expect(200);
        expect(res.body.metadata).toMatchObject({ embedding_model: 'local-hash-ngram-384', dimensions: 384 });
        expect(logs.warnings()).toContainEqual(
          expect.stringMatching(/^Collection "legacy" was embedded with model "local-hash-ngram-384", 384 dimensions/),
        );
        // And requests naming no collection would not find it.
        expect(logs.warnings()).toContainEqual(
          expect.stringMatching(
            /^DEFAULT_COLLECTION is "docs", but the database has no collection of that name; it has "legacy"\./,
          ),
        );
      });
    });
  });
});

describe('re-ingest after the embedding model changed', () => {
  it("re-embeds an unchanged text instead of keeping the old model's vectors, then skips it again", async () => {
    const body = {
      documentId: 'model-change',
      text: 'Điều 1. Phạm vi điều chỉnh\nLuật này quy định về đất đai.',
      documentType: 'law',
      category: 'dat-dai',
    };
    const storedModels = async (app: App): Promise<string[]> => {
      const rows = await app
        .get(DataSource)
        .query<Array<{ model: string | null }>>(
          `SELECT DISTINCT cmetadata->>'embedding_model' AS model FROM langchain_pg_embedding WHERE cmetadata->>'document_id' = $1`,
          [body.documentId],
        );
      return rows.map((r) => r.model ?? 'none');
    };
    await acrossRestarts('kb-model-reingest-', async (inApp, server) => {
      await inApp(openaiEnv(server.url), async (first) => {
        const created = await request(first.getHttpServer()).post('/documents/ingest').send(body).expect(201);
        expect(created.body).toMatchObject({ skipped: false });
        await request(first.getHttpServer())
          .post('/documents/ingest')
          .send(body)
          .expect(200, { ...created.body, skipped: true });
      });
      // Same dimension, another model: the stored vectors are not comparable with its query vectors.
      await inApp({ ...openaiEnv(server.url), EMBEDDINGS_MODEL: 'fake-embed-v2' }, async (second) => {
        server.requests.length = 0;
        const again = await request(second.getHttpServer()).post('/documents/ingest').send(body).expect(201);
        expect(again.body).toMatchObject({ documentId: body.documentId, skipped: false });
        expect(server.requests.map((r) => r.body?.model)).toContain('fake-embed-v2');
        expect(await storedModels(second)).toEqual(['fake-embed-v2']);
        await request(second.getHttpServer()).post('/documents/ingest').send(body).expect(200);
      });
    });
  });
});
