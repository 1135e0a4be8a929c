import { createHash } from 'node:crypto';
import request from 'supertest';
import { startTestApp, type TestApp } from './support/test-app.js';

/**
 * `length` characters that do not compress (base64 of chained SHA-256 digests), starting with
 * `prefix`: PostgreSQL cannot shrink them under the GIN entry limit (2,712 bytes), as it does
 * 'a' repeated.
 */
function incompressible(prefix: string, seed: string, length: number): string {
  let text = prefix;
  for (let i = 0; text.length < length; i++) text += createHash('sha256').update(`${seed}:${i}`).digest('base64');
  return text.slice(0, length);
}

/** 9,000 characters shared by the long values below: only their last 1,000 differ. */
const PREFIX = incompressible('', 'shared', 9000);
/** Written through POST /embeddings. */
const API_VALUE = incompressible(PREFIX, 'api', 10_000);
/** Written by a plain INSERT, as LangChain Python does. */
const SQL_VALUE = incompressible(PREFIX, 'sql', 10_000);
/** Stored nowhere. */
const ABSENT_VALUE = incompressible(PREFIX, 'absent', 10_000);

/**
 * Metadata values too long for a GIN entry as they are (a summary, a long random heading): before
 * HashLongMetadataTerms, ix_cmetadata_terms refused the whole chunk (400 "A value is too large" here,
 * "index row size … exceeds maximum 2712" to LangChain). Now such a term is indexed by its digest,
 * and an equality filter on the value still finds exactly the chunks that hold it.
 */
describe('chunks with metadata values longer than a GIN entry', () => {
  let t: TestApp;

  const ask = async (filter: unknown, extra: Record<string, unknown> = {}): Promise<string[]> => {
    const res = await request(t.server)
      .post('/ask')
      .send({ question: 'tóm tắt', k: 10, filter, ...extra })
      .expect(200);
    return (res.body as { results: Array<{ id: string }> }).results.map((r) => r.id).sort();
  };

  /** The chunks the terms test selects, read through ix_cmetadata_terms (other scans forbidden). */
  const throughIndex = async (pair: Record<string, unknown>): Promise<{ ids: string[]; plan: string }> => {
    const runner = t.dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.startTransaction();
      await runner.query(
        `SELECT set_config('enable_seqscan', 'off', true), set_config('enable_indexscan', 'off', true)`,
      );
      const sql = `SELECT id FROM langchain_pg_embedding
                    WHERE chunk_metadata_terms(cmetadata) @> chunk_metadata_terms($1::jsonb)`;
      const plan = ((await runner.query(`EXPLAIN ${sql}`, [JSON.stringify(pair)])) as Array<{ 'QUERY PLAN': string }>)
        .map((r) => r['QUERY PLAN'])
        .join('\n');
      const rows = (await runner.query(sql, [JSON.stringify(pair)])) as Array<{ id: string }>;
      await runner.rollbackTransaction();
      return { ids: rows.map((r) => r.id).sort(), plan };
    } finally {
      await runner.release();
    }
  };

  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('accepts a chunk with a 10 KB value that does not compress through POST /embeddings', async () => {
    await request(t.server)
      .post('/embeddings')
      .send({
        items: [
          {
            id: 'api-long',
            content: 'Bản tóm tắt dài',
            metadata: { summary: API_VALUE, kind: 'long', sections: ['short', ABSENT_VALUE.slice(0, 900)] },
          },
          { id: 'api-short', content: 'Bản tóm tắt ngắn', metadata: { summary: 'ngắn', kind: 'short' } },
        ],
      })
      .expect(201);
    const [row] = await t.dataSource.query<Array<{ summary: string }>>(
      `SELECT cmetadata->>'summary' AS summary FROM langchain_pg_embedding WHERE id = 'api-long'`,
    );
    expect(row.summary).toBe(API_VALUE);
  });

  it('accepts one written by a plain INSERT, as LangChain Python writes chunks', async () => {
    await t.dataSource.query(
      `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
       SELECT 'sql-long', collection_id, embedding, 'Bản tóm tắt khác', $1::jsonb
         FROM langchain_pg_embedding WHERE id = 'api-long'`,
      [JSON.stringify({ summary: SQL_VALUE, kind: 'long', tags: ['x', SQL_VALUE] })],
    );
    expect(await t.dataSource.query(`SELECT count(*)::int AS n FROM langchain_pg_embedding`)).toEqual([{ n: 3 }]);
  });

  it('indexes a long term by a fixed-size digest and keeps short terms as they are', async () => {
    const [row] = await t.dataSource.query<Array<{ terms: string[] }>>(
      `SELECT chunk_metadata_terms(cmetadata) AS terms FROM langchain_pg_embedding WHERE id = 'api-long'`,
    );
    const digest = `#${createHash('sha256').update(`"summary"s${API_VALUE}`).digest('hex')}`;
    expect([...row.terms].sort()).toEqual(
      [digest, '"kind"slong', '"sections"sshort', `"sections"s${ABSENT_VALUE.slice(0, 900)}`].sort(),
    );
  });

  it('finds each chunk by an equality filter on its long value, and not by another with the same prefix', async () => {
    for (const extra of [{}, { exact: true }, { mode: 'hybrid' }]) {
      expect(await ask({ summary: API_VALUE }, extra)).toEqual(['api-long']);
      expect(await ask({ summary: { $eq: SQL_VALUE } }, extra)).toEqual(['sql-long']);
      expect(await ask({ tags: SQL_VALUE }, extra)).toEqual(['sql-long']);
      expect(await ask({ summary: ABSENT_VALUE }, extra)).toEqual([]);
      expect(await ask({ summary: PREFIX }, extra)).toEqual([]);
      expect(await ask({ summary: API_VALUE, kind: 'long' }, extra)).toEqual(['api-long']);
      expect(await ask({ $or: [{ summary: API_VALUE }, { summary: 'ngắn' }] }, extra)).toEqual([
        'api-long',
        'api-short',
      ]);
      expect(await ask({ $not: { summary: API_VALUE } }, extra)).toEqual(['api-short', 'sql-long']);
    }
  });

  it('answers those equalities through ix_cmetadata_terms, exactly', async () => {
    const api = await throughIndex({ summary: API_VALUE });
    expect(api.plan).toContain('ix_cmetadata_terms');
    expect(api.ids).toEqual(['api-long']);
    expect((await throughIndex({ summary: SQL_VALUE })).ids).toEqual(['sql-long']);
    expect((await throughIndex({ tags: SQL_VALUE })).ids).toEqual(['sql-long']);
    expect((await throughIndex({ summary: ABSENT_VALUE })).ids).toEqual([]);
    // The same value under another key is another term.
    expect((await throughIndex({ tags: API_VALUE })).ids).toEqual([]);
  });

  it('finds them the same next to an HNSW index (terms and jsonpath tests together)', async () => {
    await request(t.server).put('/collections/docs/vector-index').expect(200);
    expect(await ask({ summary: API_VALUE })).toEqual(['api-long']);
    expect(await ask({ summary: SQL_VALUE })).toEqual(['sql-long']);
    expect(await ask({ summary: ABSENT_VALUE })).toEqual([]);
  });
});
