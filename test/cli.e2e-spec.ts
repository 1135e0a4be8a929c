import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { DataSource, QueryRunner } from 'typeorm';
import { AlignLegacySchema1764000000001 } from '../migrations/1764000000001-AlignLegacySchema.js';
import { check, create, generate, migrate, revert, stamp, status } from '../src/cli/db-commands.js';
import { loadAppConfig } from '../src/config/app-config.js';
import { runPendingMigrations } from '../src/database/migration-runner.js';
import {
  buildCommunitySchema,
  buildLegacySchema,
  COLLECTION_SMALL,
  dataFingerprint,
  persistentTestDatabase,
  runCli,
  schemaSnapshot,
} from './support/legacy-schema.js';
import {
  createTestDatabase,
  openRawDataSource,
  TEST_TARGET,
  type TestDatabase,
  testConfig,
} from './support/test-database.js';

describe('db CLI on a database this service creates', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let close: () => Promise<void>;
  let dir: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    ({ dataSource: ds, close } = await openRawDataSource(testConfig(db)));
    dir = mkdtempSync(join(tmpdir(), 'kb-migrations-'));
    copyFileSync(join('migrations', 'index.ts'), join(dir, 'index.ts'));
  });
  afterAll(async () => {
    await close();
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to stamp an empty database', async () => {
    const result = await stamp(ds);
    expect(result.exitCode).toBe(1);
    expect(result.lines.join('\n')).toContain('The database is empty');
    expect(await ds.query(`SELECT to_regclass('migrations') AS t`)).toEqual([{ t: null }]);
  });

  it('dry run on an empty database prints the CREATE statements and creates nothing', async () => {
    const result = await migrate(ds, { dryRun: true });
    expect(result.exitCode).toBe(0);
    expect(result.lines.join('\n')).toMatch(/CREATE TABLE documents/);
    expect(await ds.query(`SELECT to_regclass('documents') AS t`)).toEqual([{ t: null }]);
  });

  it('migrates an empty database to head; check is clean; the alignment changes nothing there', async () => {
    expect((await migrate(ds)).lines).toEqual([
      'Applied InitialSchema1764000000000',
      'Applied AlignLegacySchema1764000000001',
      'Applied BuildChunkIndexesConcurrently1764000000002',
      'Applied AddChunkFullTextIndex1764000000003',
      'Applied AddChunkCounts1764000000004',
      'Applied AddMetadataTermsIndex1764000000005',
      'Applied AddDocumentsCreatedAtIndex1764000000006',
      'Applied KeepChunkVectorsInline1764000000007',
      'Applied HashLongMetadataTerms1764000000008',
      'Applied SkipUnchangedChunkCountGroups1764000000009',
      'Applied BoundChunkFullTextIndex1764000000010',
      'Applied AlignBaselineColumnTypes1764000000011',
      'Head: AlignBaselineColumnTypes1764000000011',
    ]);
    expect(await check(ds)).toEqual({ exitCode: 0, lines: ['Schema matches the entities: no differences.'] });
    const before = await schemaSnapshot(ds);

    // Running the alignment again on this schema issues no change except re-writing identical
    // comments and the (identical) trigger function.
    const runner: QueryRunner = ds.createQueryRunner();
    const writes: string[] = [];
    try {
      await runner.connect();
      const original = runner.query.bind(runner) as (q: string, p?: unknown[]) => Promise<unknown>;
      (runner as { query: unknown }).query = (q: string, p?: unknown[]) => {
        if (!/^\s*SELECT\b/i.test(q)) writes.push(q.trim());
        return original(q, p);
      };
      await new AlignLegacySchema1764000000001().up(runner);
    } finally {
      await runner.release();
    }
    expect(
      writes.filter((w) => !/^(COMMENT ON|CREATE OR REPLACE FUNCTION update_documents_updated_at)/.test(w)),
    ).toEqual([]);
    expect(await schemaSnapshot(ds)).toEqual(before);
    // Stamping an already migrated database is a no-op too, and says nothing is pending.
    expect((await stamp(ds)).lines).toEqual([
      'Baseline verified: documents, langchain_pg_collection, langchain_pg_embedding.',
      'Already recorded InitialSchema1764000000000',
      'Nothing pending.',
    ]);
  });

  it('check names each difference and exits 1; generate writes a migration that fixes it', async () => {
    await ds.query(`ALTER TABLE documents ADD COLUMN language varchar(10)`);
    await ds.query(`DROP INDEX idx_embedding_document_type`);
    await ds.query(`DROP TRIGGER trigger_documents_updated_at ON documents`);
    await ds.query(`COMMENT ON COLUMN langchain_pg_embedding.document IS 'changed'`);
    const result = await check(ds);
    expect(result.exitCode).toBe(1);
    const text = result.lines.join('\n');
    expect(text).toMatch(/TypeORM would run: ALTER TABLE "documents" DROP COLUMN "language"/);
    expect(text).toContain('index idx_embedding_document_type is missing');
    expect(text).toContain('trigger trigger_documents_updated_at (BEFORE UPDATE ON documents) is missing');
    expect(text).toContain(`TypeORM would run: COMMENT ON COLUMN "langchain_pg_embedding"."document" IS 'Chunk text'`);

    const generated = await generate(ds, 'DropLanguage', { dir, timestamp: 1764000000123 });
    expect(generated.exitCode).toBe(0);
    const source = readFileSync(join(dir, '1764000000123-DropLanguage.ts'), 'utf8');
    expect(source).toContain('export class DropLanguage1764000000123 implements MigrationInterface');
    expect(source).toContain('await queryRunner.query(`ALTER TABLE "documents" DROP COLUMN "language"`);');
    expect(source).toMatch(/down[\s\S]*ADD "language" character varying\(10\)/);
    const index = readFileSync(join(dir, 'index.ts'), 'utf8');
    expect(index).toContain(`import { DropLanguage1764000000123 } from './1764000000123-DropLanguage.js';`);
    expect(index).toMatch(/AlignBaselineColumnTypes1764000000011,\n {2}DropLanguage1764000000123,\n\];/);

    await ds.query(`ALTER TABLE documents DROP COLUMN language`);
    await ds.query(
      `CREATE INDEX idx_embedding_document_type ON langchain_pg_embedding ((cmetadata->>'document_type'))`,
    );
    await ds.query(`COMMENT ON COLUMN langchain_pg_embedding.document IS 'Chunk text'`);
    await ds.query(
      `CREATE TRIGGER trigger_documents_updated_at BEFORE UPDATE ON documents FOR EACH ROW EXECUTE FUNCTION update_documents_updated_at()`,
    );
    expect((await check(ds)).exitCode).toBe(0);
    const none = await generate(ds, 'Nothing', { dir });
    expect(none.exitCode).toBe(1);
    expect(none.lines[0]).toContain('No changes');
  });

  it('generate refuses a database with pending migrations, writing no file', async () => {
    const dbPending = await createTestDatabase();
    const { dataSource: pendingDs, close: closePending } = await openRawDataSource(testConfig(dbPending));
    try {
      // The Python service's database stamped at the baseline: every migration after it is pending.
      await buildLegacySchema(pendingDs);
      expect((await stamp(pendingDs)).exitCode).toBe(0);
      const before = readdirSync(dir);
      const refused = await generate(pendingDs, 'ShouldNotExist', { dir, timestamp: 1764000000789 });
      expect(refused.exitCode).toBe(1);
      expect(refused.lines[0]).toMatch(/^The database is not at head: \d+ migration\(s\) pending \(AlignLegacySchema/);
      expect(readdirSync(dir)).toEqual(before);
    } finally {
      await closePending();
      await dbPending.drop();
    }
  });

  it('create writes an empty named migration and registers it; bad names are refused', () => {
    const result = create('AddDocumentLanguage', { dir, timestamp: 1764000000456 });
    expect(result.exitCode).toBe(0);
    expect(readdirSync(dir)).toContain('1764000000456-AddDocumentLanguage.ts');
    expect(readFileSync(join(dir, 'index.ts'), 'utf8')).toMatch(
      /DropLanguage1764000000123,\n {2}AddDocumentLanguage1764000000456,\n\];/,
    );
    expect(create('bad name', { dir }).exitCode).toBe(1);
    expect(create(undefined, { dir }).exitCode).toBe(1);
  });

  it('revert refuses the baseline when it is the row recorded last, as TypeORM would revert that one', async () => {
    const rows = await ds.query<Array<{ timestamp: string; name: string }>>(
      `SELECT "timestamp", name FROM migrations ORDER BY id`,
    );
    // The stamp forgotten (its row deleted, as the refusal below advises) and recorded again.
    await ds.query(`DELETE FROM migrations WHERE name = 'InitialSchema1764000000000'`);
    await ds.query(`INSERT INTO migrations ("timestamp", name) VALUES (1764000000000, 'InitialSchema1764000000000')`);
    try {
      const refused = await revert(ds);
      expect(refused.exitCode).toBe(1);
      expect(refused.lines[0]).toMatch(/^Refusing to revert InitialSchema1764000000000: its down\(\) DROPS the tables/);
      expect(await ds.query(`SELECT to_regclass('langchain_pg_embedding')::text AS t`)).toEqual([
        { t: 'langchain_pg_embedding' },
      ]);
    } finally {
      await ds.query(`DELETE FROM migrations`);
      for (const row of rows) {
        await ds.query(`INSERT INTO migrations ("timestamp", name) VALUES ($1, $2)`, [row.timestamp, row.name]);
      }
    }
  });

  it('revert goes back one migration at a time', async () => {
    expect((await revert(ds)).lines).toEqual([
      'Reverted AlignBaselineColumnTypes1764000000011',
      'Head: BoundChunkFullTextIndex1764000000010',
    ]);
    // Its down() changes nothing the comparison sees, but it is pending: check fails, as alembic check does.
    expect(await check(ds)).toEqual({
      exitCode: 1,
      lines: [
        'Pending migrations (run `npm run db:migrate`): AlignBaselineColumnTypes1764000000011',
        'Schema matches the entities: no differences.',
      ],
    });
    expect((await revert(ds)).lines).toEqual([
      'Reverted BoundChunkFullTextIndex1764000000010',
      'Head: SkipUnchangedChunkCountGroups1764000000009',
    ]);
    expect((await revert(ds)).lines).toEqual([
      'Reverted SkipUnchangedChunkCountGroups1764000000009',
      'Head: HashLongMetadataTerms1764000000008',
    ]);
    expect((await revert(ds)).lines).toEqual([
      'Reverted HashLongMetadataTerms1764000000008',
      'Head: KeepChunkVectorsInline1764000000007',
    ]);
    expect((await revert(ds)).lines).toEqual([
      'Reverted KeepChunkVectorsInline1764000000007',
      'Head: AddDocumentsCreatedAtIndex1764000000006',
    ]);
    expect((await revert(ds)).lines).toEqual([
      'Reverted AddDocumentsCreatedAtIndex1764000000006',
      'Head: AddMetadataTermsIndex1764000000005',
    ]);
    expect((await revert(ds)).lines).toEqual([
      'Reverted AddMetadataTermsIndex1764000000005',
      'Head: AddChunkCounts1764000000004',
    ]);
    expect((await revert(ds)).lines).toEqual([
      'Reverted AddChunkCounts1764000000004',
      'Head: AddChunkFullTextIndex1764000000003',
    ]);
    expect((await revert(ds)).lines).toEqual([
      'Reverted AddChunkFullTextIndex1764000000003',
      'Head: BuildChunkIndexesConcurrently1764000000002',
    ]);
    expect((await revert(ds)).lines).toEqual([
      'Reverted BuildChunkIndexesConcurrently1764000000002',
      'Head: AlignLegacySchema1764000000001',
    ]);
    expect((await revert(ds)).lines).toEqual([
      'Reverted AlignLegacySchema1764000000001',
      'Head: InitialSchema1764000000000',
    ]);
    expect((await status(ds)).lines).toEqual(
      expect.arrayContaining([
        '  [X] InitialSchema1764000000000',
        '  [ ] AlignLegacySchema1764000000001',
        '  [ ] BuildChunkIndexesConcurrently1764000000002',
        '  [ ] AddChunkFullTextIndex1764000000003',
        '  [ ] AddChunkCounts1764000000004',
        '  [ ] AddMetadataTermsIndex1764000000005',
        '  [ ] AddDocumentsCreatedAtIndex1764000000006',
        '  [ ] KeepChunkVectorsInline1764000000007',
        '  [ ] HashLongMetadataTerms1764000000008',
        '  [ ] SkipUnchangedChunkCountGroups1764000000009',
        '  [ ] BoundChunkFullTextIndex1764000000010',
        '  [ ] AlignBaselineColumnTypes1764000000011',
        'Pending: 11',
      ]),
    );
    const refused = await revert(ds);
    expect(refused.exitCode).toBe(1);
    expect(refused.lines[0]).toContain('DROPS the tables');
    expect(await ds.query(`SELECT to_regclass('documents')::text AS t`)).toEqual([{ t: 'documents' }]);
    expect((await revert(ds, { dropTables: true })).lines).toEqual([
      'Reverted InitialSchema1764000000000',
      'Head: (none recorded)',
    ]);
    expect(await ds.query(`SELECT to_regclass('documents') AS t`)).toEqual([{ t: null }]);
    expect((await migrate(ds)).exitCode).toBe(0);
    expect((await check(ds)).exitCode).toBe(0);
  });
});

describe('db CLI refusals', () => {
  it('detects the langchain_community layout and refuses to stamp or migrate it', async () => {
    const db = await createTestDatabase();
    const { dataSource: ds, close } = await openRawDataSource(testConfig(db));
    try {
      await buildCommunitySchema(ds);
      const before = await schemaSnapshot(ds);
      const result = await stamp(ds);
      expect(result.exitCode).toBe(1);
      expect(result.lines.join('\n')).toContain('older langchain_community layout');
      expect(result.lines.join('\n')).toContain('Nothing was changed');
      await expect(migrate(ds)).rejects.toThrow(/db:stamp/);
      expect(await schemaSnapshot(ds)).toEqual(before);
      expect(await ds.query(`SELECT to_regclass('migrations') AS t`)).toEqual([{ t: null }]);
    } finally {
      await close();
      await db.drop();
    }
  });

  it('the conversion of the langchain_community layout in docs/MIGRATIONS.md leads to a clean adoption, every chunk kept', async () => {
    const db = await createTestDatabase();
    const { dataSource: ds, close } = await openRawDataSource(testConfig(db));
    try {
      // The Python service's database, its chunk tables then turned into the older layout: the
      // id kept as custom_id beside a uuid primary key, json metadata, a nullable collection name.
      await buildLegacySchema(ds, { extraIdIndex: false });
      const before = await dataFingerprint(ds);
      for (const sql of [
        `DROP INDEX ix_cmetadata_gin`,
        `ALTER TABLE langchain_pg_embedding DROP CONSTRAINT langchain_pg_embedding_pkey`,
        `ALTER TABLE langchain_pg_embedding RENAME COLUMN id TO custom_id`,
        `ALTER TABLE langchain_pg_embedding ALTER COLUMN custom_id DROP NOT NULL`,
        `ALTER TABLE langchain_pg_embedding ADD COLUMN uuid uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY`,
        `ALTER TABLE langchain_pg_embedding ALTER COLUMN uuid DROP DEFAULT`,
        `ALTER TABLE langchain_pg_embedding ALTER COLUMN cmetadata TYPE json USING cmetadata::json`,
        `ALTER TABLE langchain_pg_collection ALTER COLUMN name DROP NOT NULL`,
      ]) {
        await ds.query(sql);
      }
      expect((await stamp(ds)).lines.join('\n')).toContain('older langchain_community layout');

      const docs = readFileSync('docs/MIGRATIONS.md', 'utf8');
      const section = docs.slice(docs.indexOf('### A database of the older `langchain_community` layout'));
      const recipe = /```sql\n([\s\S]*?)```/.exec(section)![1];
      // The block as a whole, BEGIN … COMMIT: one simple query (no parameters).
      await ds.query(recipe);
      expect((await stamp(ds)).exitCode).toBe(0);
      expect((await migrate(ds)).exitCode).toBe(0);
      expect(await check(ds)).toEqual({ exitCode: 0, lines: ['Schema matches the entities: no differences.'] });
      expect(await dataFingerprint(ds)).toEqual(before);
    } finally {
      await close();
      await db.drop();
    }
  });

  it("refuses to stamp a chunk table without a primary key on id, which LangChain's upsert needs", async () => {
    const db = await createTestDatabase();
    const { dataSource: ds, close } = await openRawDataSource(testConfig(db));
    try {
      // A hand-converted table: its only unique index on id is the one BuildChunkIndexesConcurrently
      // would have dropped as redundant.
      await buildLegacySchema(ds, { alembicVersion: false, extraIdIndex: true });
      await ds.query(`ALTER TABLE langchain_pg_embedding DROP CONSTRAINT langchain_pg_embedding_pkey`);
      const result = await stamp(ds);
      expect(result.exitCode).toBe(1);
      expect(result.lines).toEqual([
        'The database does not have the baseline schema, so it cannot be stamped (nothing was changed):',
        "  - langchain_pg_embedding has no primary key on id, which LangChain's upsert (ON CONFLICT (id)) and this service need: add it (ALTER TABLE langchain_pg_embedding ADD PRIMARY KEY (id), or ADD PRIMARY KEY USING INDEX on a unique index of id)",
      ]);
      // As the message says; then the table is adopted as any other, its redundant index dropped.
      await ds.query(`ALTER TABLE langchain_pg_embedding ADD PRIMARY KEY (id)`);
      expect((await stamp(ds)).exitCode).toBe(0);
      expect((await migrate(ds)).exitCode).toBe(0);
      expect(await ds.query(`SELECT to_regclass('ix_langchain_pg_embedding_id') AS t`)).toEqual([{ t: null }]);
      expect((await check(ds)).exitCode).toBe(0);
    } finally {
      await close();
      await db.drop();
    }
  });

  it('refuses to stamp when a baseline column is missing or has another type', async () => {
    const db = await createTestDatabase();
    const { dataSource: ds, close } = await openRawDataSource(testConfig(db));
    try {
      await buildLegacySchema(ds, { alembicVersion: false });
      await ds.query(`ALTER TABLE documents DROP COLUMN file_name`);
      await ds.query(`ALTER TABLE documents ALTER COLUMN total_chunks TYPE text`);
      const result = await stamp(ds);
      expect(result.exitCode).toBe(1);
      expect(result.lines).toEqual([
        'The database does not have the baseline schema, so it cannot be stamped (nothing was changed):',
        '  - column documents.file_name is missing',
        '  - column documents.total_chunks is text, expected int4 or int8',
      ]);
    } finally {
      await close();
      await db.drop();
    }
  });

  it('as a process: exit 1 with the reason on stderr, then stamp → migrate → check exit 0', async () => {
    const db = await persistentTestDatabase();
    try {
      const { dataSource: ds, close } = await openRawDataSource(loadAppConfig({ LOG_LEVEL: 'warn', ...db.env }));
      await buildLegacySchema(ds);
      const original = await dataFingerprint(ds);
      await close();

      const refused = runCli(db.env, 'migrate');
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('Run `npm run db:stamp`');
      const stamped = runCli(db.env, 'stamp');
      expect(stamped.code).toBe(0);
      expect(stamped.stdout).toContain('Stamped InitialSchema1764000000000');
      const dry = runCli(db.env, 'migrate', '--dry-run');
      expect(dry.code).toBe(0);
      expect(dry.stdout).toContain('ALTER TABLE langchain_pg_embedding ALTER COLUMN document TYPE text;');
      const migrated = runCli(db.env, 'migrate');
      expect(migrated.code).toBe(0);
      expect(migrated.stdout).toContain('Applied AlignLegacySchema1764000000001');
      const unknown = runCli(db.env, 'frobnicate');
      expect(unknown.code).toBe(1);
      expect(unknown.stderr).toContain('Unknown command "frobnicate"');
      // Asking for help runs nothing; a mistyped option or a surplus argument is refused.
      const help = runCli(db.env, 'revert', '--help');
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('Usage: node dist/src/cli/db.js');
      const refusals: Array<[string[], string]> = [
        [['migrate', '--dryrun'], 'Unknown option "--dryrun" for migrate: it takes --dry-run. Nothing was done.'],
        [['revert', '-n'], 'Unknown option "-n" for revert: it takes --drop-tables. Nothing was done.'],
        [['check', '--fix'], 'Unknown option "--fix" for check: it takes no options. Nothing was done.'],
        [['status', 'all'], 'Unexpected argument "all" for status: it takes none. Nothing was done.'],
        [
          ['stamp', 'InitialSchema', 'more'],
          'Unexpected argument "more" for stamp: it takes at most 1. Nothing was done.',
        ],
      ];
      for (const [args, message] of refusals) {
        const refusal = runCli(db.env, ...args);
        expect({ args, code: refusal.code, first: refusal.stderr.split('\n')[0] }).toEqual({
          args,
          code: 1,
          first: message,
        });
      }
      const after = runCli(db.env, 'migrate');
      expect([after.code, after.stdout.trim()]).toEqual([0, 'No pending migrations: the database is up to date.']);

      const reopened = await openRawDataSource(loadAppConfig({ LOG_LEVEL: 'warn', ...db.env }));
      try {
        expect(await dataFingerprint(reopened.dataSource)).toEqual(original);
        expect((await check(reopened.dataSource)).exitCode).toBe(0);
      } finally {
        await reopened.close();
      }
    } finally {
      await db.drop();
    }
  });
});

/** A new database the Python service filled, stamped at the baseline: every later migration pending. */
async function stampedLegacyDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  const { dataSource: ds, close } = await openRawDataSource(testConfig(db));
  try {
    await buildLegacySchema(ds);
  } finally {
    await close();
  }
  expect(runCli(db.env, 'stamp').code).toBe(0);
  return db;
}

// PGlite ignores statement_timeout and serves one session: a server-only behaviour.
(TEST_TARGET === 'postgres' ? describe : describe.skip)('db:migrate next to a Python writer (server only)', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await stampedLegacyDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  /** A session of the Python service that has read the chunk table and sits idle in its transaction. */
  async function idleReader(idleTimeout?: string): Promise<pg.Client> {
    const client = new pg.Client({ connectionString: db.env.DATABASE_URL });
    client.on('error', () => undefined); // the server ends it (idle_in_transaction_session_timeout)
    await client.connect();
    if (idleTimeout) await client.query(`SET idle_in_transaction_session_timeout = '${idleTimeout}'`);
    await client.query(`BEGIN`);
    await client.query(`SELECT count(*) FROM langchain_pg_embedding`);
    return client;
  }

  it('gives up after lock_timeout, changing nothing, while the writer holds the table; then applies', async () => {
    const reader = await idleReader();
    let blocked: ReturnType<typeof runCli>;
    try {
      blocked = runCli(db.env, 'migrate');
    } finally {
      await reader.end();
    }
    expect(blocked.code).toBe(1);
    expect(blocked.stderr).toMatch(/lock timeout/);
    const still = runCli(db.env, 'status');
    expect(still.stdout).toContain('Head: InitialSchema1764000000000');

    // A writer that lets go within seconds, under a statement timeout of one second: the migrations
    // wait for it (their lock waits are bounded by lock_timeout, not by DB_STATEMENT_TIMEOUT_MS).
    await idleReader('3s');
    const applied = runCli({ ...db.env, DB_STATEMENT_TIMEOUT_MS: '1000' }, 'migrate');
    expect({ code: applied.code, stderr: applied.stderr }).toEqual({ code: 0, stderr: '' });
    expect(applied.stdout).toContain('Applied AlignLegacySchema1764000000001');
  });
});

// Two writers at once on one server: a server-only behaviour.
(TEST_TARGET === 'postgres' ? describe : describe.skip)(
  'db:migrate while LangChain writers keep writing (server only)',
  () => {
    it('applies every migration with no writer and no migration cancelled by a deadlock, and loses no write', async () => {
      const db = await stampedLegacyDatabase();
      try {
        // The two orders LangChain locks the tables in: a LangChain JS INSERT holds the chunk table
        // and then locks the collection (its foreign key); langchain_postgres reads the collection,
        // then writes the chunks. AlignLegacySchema, locking the collection then the chunk table one
        // after the other, deadlocked with the first: the writer's upsert was cancelled (40P01).
        const upsert = `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
                      VALUES ($1, $2, $3::vector, $4, '{"source": "writer"}')
                      ON CONFLICT (id) DO UPDATE SET document = EXCLUDED.document`;
        const eightDims = `[${Array(8).fill(0.5).join(',')}]`;
        let stop = false;
        const written = new Map<string, string>();
        const errors: string[] = [];
        const writer = async (name: string, transaction: boolean): Promise<void> => {
          const client = new pg.Client({ connectionString: db.env.DATABASE_URL });
          await client.connect();
          try {
            for (let i = 0; !stop; i++) {
              // New ids, as LangChain adds chunks: an upsert that only updates checks no foreign key.
              const id = `${name}-${i}`;
              const text = `${name} lần ${i}`;
              try {
                if (transaction) {
                  await client.query('BEGIN');
                  const [collection] = (
                    await client.query<{ uuid: string }>(`SELECT uuid FROM langchain_pg_collection WHERE name = 'docs'`)
                  ).rows;
                  await client.query(upsert, [id, collection.uuid, eightDims, text]);
                  await client.query('COMMIT');
                } else {
                  await client.query(upsert, [id, COLLECTION_SMALL, eightDims, text]);
                }
                written.set(id, text);
              } catch (error) {
                errors.push(`${name}: ${(error as Error).message}`);
                if (transaction) await client.query('ROLLBACK');
              }
            }
          } finally {
            await client.end();
          }
        };
        const writers = [writer('langchain-js', false), writer('langchain-python', true)];
        const migrating = openRawDataSource(testConfig(db)).then(async ({ dataSource, close: closeMigrating }) => {
          try {
            await runPendingMigrations(dataSource);
          } finally {
            await closeMigrating();
          }
        });
        try {
          await migrating;
        } finally {
          stop = true;
          await Promise.all(writers);
        }
        expect(errors).toEqual([]);
        expect(runCli(db.env, 'status').stdout).toContain('Pending: 0');
        const { dataSource: after, close: closeAfter } = await openRawDataSource(testConfig(db));
        try {
          const rows = await after.query<Array<{ id: string; document: string }>>(
            `SELECT id, document FROM langchain_pg_embedding WHERE cmetadata->>'source' = 'writer'`,
          );
          expect(new Map(rows.map((r) => [r.id, r.document]))).toEqual(written);
        } finally {
          await closeAfter();
        }
      } finally {
        await db.drop();
      }
    });
  },
);
