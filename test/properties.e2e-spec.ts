import * as fc from 'fast-check';
import request from 'supertest';
import { FUZZ_SEED, HOSTILE_STRINGS, percentEncode, responseProblem } from './support/hostile.js';
import { dataFingerprint } from './support/legacy-schema.js';
import { startTestApp, type TestApp } from './support/test-app.js';

/**
 * Property-based tests of the write DTOs: every field gets either a plausible value or an arbitrary
 * JSON value. Whatever the mix, the answer is never a 5xx nor leaks internals, a 4xx changes no
 * data, and the documents' total_chunks stay right. Fixed seeds, bounded runs, no shrinking (each
 * run is an HTTP request; a failure prints its seed and path to replay).
 */

const RUNS = 150;
const options = (offset: number): fc.Parameters<unknown> => ({
  seed: FUZZ_SEED + offset,
  numRuns: RUNS,
  endOnFailure: true,
});

/** Any JSON value, or one of the strings that broke things elsewhere. */
const hostile: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(...HOSTILE_STRINGS),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.double(),
  fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
);

/** A plausible value `valid` most of the time, else a hostile one; absent now and then. */
function field<T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.option(fc.oneof({ arbitrary: valid, weight: 3 }, { arbitrary: hostile, weight: 2 }), {
    nil: undefined,
    freq: 5,
  });
}

const word = fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/);
const text = fc.string({ minLength: 1, maxLength: 60 });
const dims = 384;
const unitVector = fc.constant(Array.from({ length: dims }, (_, i) => (i === 0 ? 1 : 0)));
const vector = fc.oneof(
  unitVector,
  fc.array(fc.double({ min: -1, max: 1, noNaN: true }), { minLength: 1, maxLength: 4 }),
);
const metadata = fc.oneof(
  fc.dictionary(word, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
  fc.record({ document_id: fc.constantFrom('prop-doc', 'prop-other', 'missing') }),
);
const chunk = fc.record(
  { id: field(word), content: field(text), metadata: field(metadata), embedding: field(vector) },
  { requiredKeys: [] },
);
const status = fc.constantFrom('active', 'inactive', 'processing', 'archived', 'deleted');

/** Drops undefined fields, as a client's JSON would. */
function body(value: unknown): string {
  return JSON.stringify(value) ?? 'null';
}

describe('Property: hostile values in every field of the write DTOs', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ THROTTLE_LIMIT: '0', EMBEDDINGS_MAX_BATCH: '20' });
    for (const documentId of ['prop-doc', 'prop-other']) {
      await request(t.server)
        .post('/documents')
        .send({
          documentId,
          documentName: `Document ${documentId}`,
          documentType: 'law',
          category: 'property',
          sourceFile: `/data/${documentId}.pdf`,
          chunks: [{ content: 'Điều 1' }, { content: 'Điều 2' }],
        })
        .expect(201);
    }
  });
  afterAll(() => t.close());

  async function chunkCountsWrong(): Promise<unknown[]> {
    return t.dataSource.query<unknown[]>(
      `SELECT d.document_id FROM documents d
        WHERE d.total_chunks IS DISTINCT FROM
              (SELECT count(*)::int FROM langchain_pg_embedding e WHERE e.cmetadata->>'document_id' = d.document_id)`,
    );
  }

  /** Statuses seen by the current property: it must have reached both success and rejection. */
  let seen: Set<number>;
  beforeEach(() => {
    seen = new Set();
  });
  afterEach(() => {
    expect([...seen].some((s) => s < 300)).toBe(true);
    expect([...seen].some((s) => s >= 400)).toBe(true);
  });

  /** Sends the request; asserts no 5xx or leak, no data change on a 4xx (or ever, for reads). */
  async function holds(method: 'post' | 'patch', url: string, payload: unknown, readOnly = false): Promise<void> {
    const before = await dataFingerprint(t.dataSource);
    const res = await request(t.server)[method](url).set('content-type', 'application/json').send(body(payload));
    seen.add(res.status);
    expect(responseProblem(res)).toBeUndefined();
    if (res.status >= 400 || readOnly) expect(await dataFingerprint(t.dataSource)).toEqual(before);
    expect(await chunkCountsWrong()).toEqual([]);
  }

  it('POST /documents', async () => {
    const dto = fc.record(
      {
        documentId: field(word),
        documentName: field(text),
        documentType: field(word),
        category: field(word),
        sourceFile: field(text),
        fileName: field(text),
        status: field(status),
        collection: field(fc.constantFrom('docs', 'other')),
        chunks: field(fc.array(chunk, { maxLength: 3 })),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(dto, (value) => holds('post', '/documents', value)),
      options(1),
    );
  });

  it('PATCH /documents/:documentId', async () => {
    const dto = fc.record(
      {
        documentName: field(text),
        documentType: field(word),
        category: field(word),
        sourceFile: field(text),
        fileName: field(text),
        status: field(status),
      },
      { requiredKeys: [] },
    );
    const id = fc.oneof(fc.constantFrom('prop-doc', 'prop-other', 'missing'), fc.string({ maxLength: 30 }));
    await fc.assert(
      fc.asyncProperty(id, dto, (documentId, value) =>
        holds('patch', `/documents/${percentEncode(documentId)}`, value),
      ),
      options(2),
    );
  });

  it('POST /embeddings', async () => {
    const dto = fc.record(
      { collection: field(fc.constantFrom('docs', 'other', 'fresh')), items: field(fc.array(chunk, { maxLength: 4 })) },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(dto, (value) => holds('post', '/embeddings', value)),
      options(3),
    );
  });

  it('POST /collections', async () => {
    const dto = fc.record({ name: field(word), metadata: field(metadata) }, { requiredKeys: [] });
    await fc.assert(
      fc.asyncProperty(dto, (value) => holds('post', '/collections', value)),
      options(4),
    );
  });

  it('POST /ask (never writes)', async () => {
    const filter = fc.oneof(
      fc.dictionary(word, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
      fc.record({
        document_type: fc.oneof(
          fc.constant('law'),
          fc.record({ $in: fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }) }),
          fc.record({ $between: fc.array(fc.jsonValue({ maxDepth: 1 }), { maxLength: 3 }) }),
        ),
      }),
      fc.record({
        $or: fc.array(fc.dictionary(word, fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }), { maxLength: 3 }),
      }),
      fc.record({ $not: fc.jsonValue({ maxDepth: 2 }) }),
    );
    const dto = fc.record(
      {
        question: field(text),
        k: field(fc.integer({ min: 1, max: 100 })),
        collection: field(fc.constantFrom('docs', 'other')),
        filter: field(filter),
        mode: field(fc.constantFrom('vector', 'hybrid')),
        minScore: field(fc.double({ min: -1, max: 1, noNaN: true })),
        exact: field(fc.boolean()),
        answer: field(fc.boolean()),
        queryEmbedding: field(vector),
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(dto, (value) => holds('post', '/ask', value, true)),
      options(5),
    );
  });
});
