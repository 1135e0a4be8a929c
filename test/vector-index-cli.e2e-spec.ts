import { loadAppConfig } from '../src/config/app-config.js';
import { runPendingMigrations } from '../src/database/migration-runner.js';
import { persistentTestDatabase, runCompiledScript } from './support/legacy-schema.js';
import { openRawDataSource } from './support/test-database.js';

const COLLECTION = '2b0f3c55-9d1e-4f7a-8c3b-6a5d4e3f2a10';

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
});
