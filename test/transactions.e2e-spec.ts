import type { DataSource } from 'typeorm';
import { TEST_TARGET } from './support/test-database.js';
import { startTestApp, type TestApp } from './support/test-app.js';

describe(`transactions on the ${TEST_TARGET} database`, () => {
  let t: TestApp;
  let ds: DataSource;
  beforeAll(async () => {
    t = await startTestApp();
    ds = t.dataSource;
  });
  afterAll(() => t.close());

  const insertDoc = (m: { query: DataSource['query'] }, id: string) =>
    m.query(
      `INSERT INTO documents (document_id, document_name, category, document_type, source_file, file_name)
       VALUES ($1, 'n', 'c', 't', 's', 'f')`,
      [id],
    );

  it('keeps two concurrent transactions apart: the failing one leaves nothing, the other everything', async () => {
    let releaseFailing!: () => void;
    const failingMayFinish = new Promise<void>((r) => (releaseFailing = r));

    const failing = ds.transaction(async (m) => {
      await insertDoc(m, 'tx-fail-1');
      await failingMayFinish;
      await insertDoc(m, 'tx-fail-2');
      throw new Error('injected failure');
    });
    const succeeding = ds.transaction(async (m) => {
      await insertDoc(m, 'tx-ok-1');
      await insertDoc(m, 'tx-ok-2');
    });
    // Let both start before the failing one goes on; on the embedded database they queue.
    setTimeout(releaseFailing, 50);
    await expect(failing).rejects.toThrow('injected failure');
    await succeeding;

    const rows = await ds.query<
      Array<{
        document_id: string;
      }>
    >(`SELECT document_id FROM documents WHERE document_id LIKE 'tx-%' ORDER BY 1`);
    expect(rows.map((r) => r.document_id)).toEqual(['tx-ok-1', 'tx-ok-2']);
  });

  it('rolls back a transaction that fails on a constraint, keeping the rows written before it', async () => {
    await insertDoc(ds, 'dup');
    await expect(
      ds.transaction(async (m) => {
        await insertDoc(m, 'before-dup');
        await insertDoc(m, 'dup');
      }),
    ).rejects.toThrow(/duplicate key/);
    const rows = await ds.query<unknown[]>(
      `SELECT document_id FROM documents WHERE document_id IN ('dup', 'before-dup')`,
    );
    expect(rows).toHaveLength(1);
  });
});
