import { loadAppConfig } from '../src/config/app-config.js';
import { runPendingMigrations } from '../src/database/migration-runner.js';
import { persistentTestDatabase, runCompiledScript } from './support/legacy-schema.js';
import { openRawDataSource } from './support/test-database.js';

const COLLECTION = '2b0f3c55-9d1e-4f7a-8c3b-6a5d4e3f2a10';
const KEPT = '7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f';

describe('npm run index:create / index:drop', () => {
  let db: { env: Record<string, string>; drop: () => Promise<void> };
  const cli = (...args: string[]) => runCompiledScript('dist/src/cli/vector-index.js', db.env, ...args);

  beforeAll(async () => {
    db = await persistentTestDatabase();
    const { dataSource: ds, close } = await openRawDataSource(loadAppConfig({ LOG_LEVEL: 'warn', ...db.env }));
    try {
      await runPendingMigrations(ds);
      await ds.query(`INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES ($1, 'laws', '{}')`, [
        COLLECTION,
      ]);
      await ds.query(
        `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
         SELECT 'c' || i, $1, ('[' || i || ',1,0,' || (i % 3) || ']')::vector, 'chunk ' || i, '{}'
           FROM generate_series(1, 50) AS i`,
        [COLLECTION],
      );
    } finally {
      await close();
    }
  });
  afterAll(() => db.drop());

  it('builds the index, says so, and is idempotent', () => {
    const built = cli('create', '--collection', 'laws');
    expect(built.stderr).toBe('');
    expect(built.code).toBe(0);
    expect(built.stdout).toMatch(
      /^Built ix_embedding_hnsw_2b0f3c559d1e4f7a8c3b6a5d4e3f2a10 on collection "laws": hnsw on vector\(4\), \d+ kB, [\d.]+ s\n$/,
    );
    const again = cli('create', '--collection=laws', '--m', '8', '--ef-construction', '32');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Already built: ix_embedding_hnsw_2b0f3c559d1e4f7a8c3b6a5d4e3f2a10');
    const list = cli('list');
    expect(list.stdout).toMatch(/^laws\tix_embedding_hnsw_2b0f3c559d1e4f7a8c3b6a5d4e3f2a10\tvector\(4\)\tvalid\t/);
  });

  it('fails with exit 1 and a clear message for bad input', () => {
    const missing = cli('create', '--collection', 'nope');
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe('Collection "nope" not found');
    const noFlag = cli('create');
    expect(noFlag.code).toBe(1);
    expect(noFlag.stderr).toContain('--collection NAME is required');
    const badM = cli('create', '--collection', 'laws', '--m', 'x');
    expect(badM.code).toBe(1);
    expect(badM.stderr).toContain('--m must be a whole number');
  });

  it('drops the index, then says there is none', () => {
    const dropped = cli('drop', '--collection', 'laws');
    expect(dropped.code).toBe(0);
    expect(dropped.stdout.trim()).toBe('Dropped ix_embedding_hnsw_2b0f3c559d1e4f7a8c3b6a5d4e3f2a10');
    expect(cli('drop', '--collection', 'laws').stdout.trim()).toBe('Collection "laws" has no vector index');
    expect(cli('list').stdout.trim()).toBe('No vector indexes.');
  });

  it('prunes the index of a collection deleted behind its back (LangChain, SQL), and only that one', async () => {
    // The embedded database admits one process at a time: the SQL runs between CLI calls.
    const sql = async (...statements: Array<[string, unknown[]]>) => {
      const { dataSource: ds, close } = await openRawDataSource(loadAppConfig({ LOG_LEVEL: 'warn', ...db.env }));
      try {
        for (const [text, params] of statements) await ds.query(text, params);
      } finally {
        await close();
      }
    };
    expect(cli('create', '--collection', 'laws').code).toBe(0);
    // Another collection with an index, which stays.
    await sql(
      [`INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES ($1, 'kept', '{}')`, [KEPT]],
      [
        `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
         SELECT 'k' || i, $1, ('[' || i || ',0,1]')::vector, 'kept ' || i, '{}' FROM generate_series(1, 20) AS i`,
        [KEPT],
      ],
    );
    expect(cli('create', '--collection', 'kept').code).toBe(0);
    await sql([`DELETE FROM langchain_pg_collection WHERE name = 'laws'`, []]);
    expect(cli('list').stdout).toMatch(
      /^\(deleted collection\)\tix_embedding_hnsw_2b0f3c559d1e4f7a8c3b6a5d4e3f2a10\t/m,
    );
    const pruned = cli('prune');
    expect(pruned.code).toBe(0);
    expect(pruned.stdout.trim()).toBe('Dropped ix_embedding_hnsw_2b0f3c559d1e4f7a8c3b6a5d4e3f2a10');
    expect(cli('list').stdout).toMatch(
      /^kept\tix_embedding_hnsw_7c1d2e3f4a5b4c6d8e9f0a1b2c3d4e5f\tvector\(3\)\tvalid\t/,
    );
    expect(cli('prune').stdout.trim()).toBe('No orphaned vector indexes.');
  });
});
