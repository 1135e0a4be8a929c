import { loadAppConfig } from '../src/config/app-config.js';
import { runPendingMigrations } from '../src/database/migration-runner.js';
import { persistentTestDatabase, runCompiledScript } from './support/legacy-schema.js';
import { createTestDatabase, openRawDataSource, TEST_TARGET } from './support/test-database.js';

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
    const again = cli('create', '--collection=laws');
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('Already built: ix_embedding_hnsw_2b0f3c559d1e4f7a8c3b6a5d4e3f2a10');
    // The parameters it was built with (the service's defaults), asked for again: still idempotent.
    const same = cli('create', '--collection', 'laws', '--m', '16', '--ef-construction=128');
    expect(same.code).toBe(0);
    expect(same.stdout).toContain('Already built: ix_embedding_hnsw_2b0f3c559d1e4f7a8c3b6a5d4e3f2a10');
    const list = cli('list');
    expect(list.stdout).toMatch(/^laws\tix_embedding_hnsw_2b0f3c559d1e4f7a8c3b6a5d4e3f2a10\tvector\(4\)\tvalid\t/);
  });

  it('refuses other build parameters for a built index, naming both, instead of ignoring them', () => {
    const refused = cli('create', '--collection', 'laws', '--m', '48', '--ef-construction', '200');
    expect(refused.code).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr.trim()).toBe(
      'Collection "laws" already has its HNSW index ix_embedding_hnsw_2b0f3c559d1e4f7a8c3b6a5d4e3f2a10, built with ' +
        'm=16, ef_construction=128; requested m=48, ef_construction=200. To rebuild it with the requested ' +
        'parameters, drop it first: DELETE /collections/laws/vector-index, or npm run index:drop -- --collection laws',
    );
    // One parameter that differs is enough; the one requested alone is named alone.
    expect(cli('create', '--collection', 'laws', '--ef-construction', '64').stderr).toContain(
      'built with m=16, ef_construction=128; requested ef_construction=64.',
    );
    // The index is left as it was.
    expect(cli('list').stdout).toMatch(
      /^laws\tix_embedding_hnsw_2b0f3c559d1e4f7a8c3b6a5d4e3f2a10\tvector\(4\)\tvalid\t/,
    );
  });

  it('prints the usage for --help or -h anywhere on the line, and runs nothing', () => {
    for (const args of [
      ['--help'],
      ['-h'],
      ['help'],
      ['create', '--help'],
      ['list', '-h'],
      ['drop', '--collection', 'laws', '--help'],
      ['prune', 'extra', '-h'],
    ]) {
      const help = cli(...args);
      expect({ args, code: help.code, stderr: help.stderr }).toEqual({ args, code: 0, stderr: '' });
      expect(help.stdout).toMatch(/^Usage: npm run index:create/);
    }
    // The drop asked for with --help did not run.
    expect(cli('list').stdout).toMatch(/^laws\tix_embedding_hnsw_2b0f3c559d1e4f7a8c3b6a5d4e3f2a10\t/);
  });

  it('refuses unknown options, stray words and options the command does not take, before anything runs', () => {
    const refused = (...args: string[]) => {
      const result = cli(...args);
      expect({ args, code: result.code, stdout: result.stdout }).toEqual({ args, code: 1, stdout: '' });
      expect(result.stderr).toContain('Usage: npm run index:create');
      return result.stderr.split('\n')[0];
    };
    expect(refused('list', '--bogus')).toBe('Unknown option --bogus');
    expect(refused('create', '--collection', 'laws', '--bogus=1')).toBe('Unknown option --bogus');
    expect(refused('prune', 'extra')).toBe('Unexpected argument "extra"');
    expect(refused('create', 'laws')).toBe('Unexpected argument "laws" (a collection is named with --collection laws)');
    expect(refused('drop', '--collection', 'laws', 'kept')).toBe(
      'Unexpected argument "kept" (a collection is named with --collection kept)',
    );
    expect(refused('prune', '--collection', 'laws')).toBe('prune takes no options (got --collection)');
    expect(refused('list', '--m=8')).toBe('list takes no options (got --m)');
    expect(refused('drop', '--collection', 'laws', '--m', '8')).toBe('drop takes only --collection (got --m)');
    expect(refused('create', '--collection', 'laws', '--collection', 'kept')).toBe('--collection is given twice');
    expect(refused('create', '--collection')).toBe('--collection needs a value');
    expect(refused('create', '--collection', '--m', '8')).toBe('--collection needs a value');
    expect(refused('bogus', '--collection', 'laws')).toBe('Unknown command "bogus"');
    // The existing messages of the commands' own options stay.
    expect(refused('create', '--collection', 'laws', '--m', 'x')).toBe('--m must be a whole number (got "x")');
    expect(refused('create', '--m', '8')).toBe('--collection NAME is required');
    // Nothing was dropped or rebuilt on the way.
    expect(cli('list').stdout).toMatch(
      /^laws\tix_embedding_hnsw_2b0f3c559d1e4f7a8c3b6a5d4e3f2a10\tvector\(4\)\tvalid\t/,
    );
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

  (TEST_TARGET === 'postgres' ? it : it.skip)(
    'refuses a database with pending migrations, saying to run db:migrate (an embedded one is always migrated)',
    async () => {
      const empty = await createTestDatabase();
      try {
        const run = runCompiledScript(
          'dist/src/cli/vector-index.js',
          { ...empty.env, DB_MIGRATE_ON_START: 'false' },
          'list',
        );
        expect(run.code).toBe(1);
        // Before: Error: relation "langchain_pg_collection" does not exist.
        expect(run.stderr).toMatch(/^The database is not at head: \d+ migration\(s\) pending \(InitialSchema/);
      } finally {
        await empty.drop();
      }
    },
  );

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
