import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import JSZip from 'jszip';
import { corruptPdf, makeCorpus } from './support/corpus.js';
import { startFakeOpenAIServer } from './support/fake-openai-server.js';
import { persistentTestDatabase } from './support/legacy-schema.js';
import { eventually } from './support/private-postgres.js';
import { createTestDatabase, openRawDataSource, TEST_TARGET, testConfig } from './support/test-database.js';

const SUMMARY = /^files: (\d+) ingested, (\d+) skipped, (\d+) failed; chunks: (\d+); seconds: \d+\.\d$/m;

function runIngest(env: Record<string, string>, ...args: string[]): { code: number; stdout: string; stderr: string } {
  const childEnv: Record<string, string | undefined> = { ...process.env, LOG_LEVEL: 'warn', ...env };
  if (!env.DATABASE_URL) delete childEnv.DATABASE_URL;
  const result = spawnSync(process.execPath, ['dist/src/cli/ingest.js', ...args], { env: childEnv, encoding: 'utf8' });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** The CLI as a child process that runs while this process goes on (answering as its provider, say). */
function startIngest(
  env: Record<string, string>,
  ...args: string[]
): {
  child: ChildProcess;
  stderr: () => string;
  result: Promise<{ code: number | null; stdout: string; stderr: string }>;
} {
  const childEnv: Record<string, string | undefined> = { ...process.env, LOG_LEVEL: 'warn', ...env };
  if (!env.DATABASE_URL) delete childEnv.DATABASE_URL;
  const child = spawn(process.execPath, ['dist/src/cli/ingest.js', ...args], { env: childEnv });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (data: Buffer) => (stdout += data.toString()));
  child.stderr.on('data', (data: Buffer) => (stderr += data.toString()));
  const result = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  );
  return { child, stderr: () => stderr, result };
}

describe('ingest CLI', () => {
  let db: { env: Record<string, string>; drop: () => Promise<void> };
  let dir: string;

  beforeAll(async () => {
    db = await persistentTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'kb-ingest-'));
    const folder = join(dir, 'kho');
    mkdirSync(join(folder, 'nested'), { recursive: true });
    const corpus = await makeCorpus();
    corpus.forEach((file, i) => writeFileSync(join(folder, i % 2 ? 'nested' : '', file.fileName), file.buffer));
    writeFileSync(join(folder, 'nested', 'broken.pdf'), corruptPdf());
    // Relationships that are not XML: xmldom's message holds a newline, which split the failure's line.
    const docx = await JSZip.loadAsync(corpus.find((f) => f.fileName.endsWith('.docx'))!.buffer);
    docx.file('_rels/.rels', '<Relationships><broken');
    writeFileSync(join(folder, 'broken.docx'), await docx.generateAsync({ type: 'nodebuffer' }));
    writeFileSync(join(folder, 'ignored.exe'), 'not a document');
  });
  afterAll(async () => {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ingests a folder, reports the bad file and exits 1; a second run skips what is unchanged', async () => {
    const first = runIngest(db.env, join(dir, 'kho'), '--type', 'guide', '--category', 'corpus', '--chunk-size', '400');
    expect(first.stderr).toMatch(/failed: .*broken\.pdf: The file is not a readable PDF document/);
    expect(first.stderr).toMatch(/^failed: .*broken\.docx: The file is not a readable \.docx document \(.+\)$/m);
    expect(first.stderr.split('\n').filter((line) => line.includes('xmldom'))).toHaveLength(1);
    expect(first.code).toBe(1);
    const [, ingested, skipped, failed, chunks] = SUMMARY.exec(first.stdout)!.map(Number);
    expect([ingested, skipped, failed]).toEqual([5, 0, 2]);
    expect(chunks).toBeGreaterThanOrEqual(5);

    const second = runIngest(db.env, join(dir, 'kho'), '--type=guide', '--category=corpus', '--chunk-size=400');
    expect(second.code).toBe(1);
    expect(SUMMARY.exec(second.stdout)!.slice(1, 5).map(Number)).toEqual([0, 5, 2, 0]);

    const { dataSource, close } = await openRawDataSource(testConfig(db));
    try {
      const docs = await dataSource.query<Array<{ document_id: string; source_file: string; total_chunks: number }>>(
        `SELECT document_id, source_file, total_chunks FROM documents`,
      );
      expect(docs.map((d) => d.source_file).sort()).toEqual([
        'kho/glacier-monitoring.pdf',
        'kho/luat-nuoi-ong.txt',
        'kho/nested/bao-duong-hai-dang.md',
        'kho/nested/lua-dat-phen.docx',
        'kho/pha-ca-phe.html',
      ]);
      expect(docs.find((d) => d.source_file === 'kho/nested/lua-dat-phen.docx')!.document_id).toMatch(
        /^kho-nested-lua-dat-phen-docx-[0-9a-f]{10}$/,
      );
      const [{ n }] = await dataSource.query<Array<{ n: number }>>(
        `SELECT count(*)::int AS n FROM langchain_pg_embedding WHERE cmetadata->>'document_type' = 'guide'`,
      );
      expect(n).toBe(chunks);
      expect(docs.reduce((sum, d) => sum + d.total_chunks, 0)).toBe(chunks);
    } finally {
      await close();
    }
  });

  it('refuses a second file that would get the documentId of another of the run, and ingests a file named twice once', async () => {
    for (const name of ['a', 'b']) {
      mkdirSync(join(dir, 'twins', name), { recursive: true });
      writeFileSync(join(dir, 'twins', name, 'readme.md'), `# ${name}\n\nVăn bản ${name}.\n`);
    }
    const a = join(dir, 'twins', 'a', 'readme.md');
    const b = join(dir, 'twins', 'b', 'readme.md');
    const run = runIngest(db.env, a, b, a, '--type', 'guide', '--category', 'twins');
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`failed: ${b}: would get documentId readme-md-`);
    expect(run.stderr).toContain(`as ${a} does in this run, and replace its chunks`);
    expect(SUMMARY.exec(run.stdout)!.slice(1, 4).map(Number)).toEqual([1, 0, 1]);
    const { dataSource, close } = await openRawDataSource(testConfig(db));
    try {
      const chunks = await dataSource.query<Array<{ document: string }>>(
        `SELECT document FROM langchain_pg_embedding WHERE cmetadata->>'category' = 'twins'`,
      );
      expect(chunks.map((c) => c.document)).toEqual(['# a\n\nVăn bản a.']);
    } finally {
      await close();
    }
  });

  it('follows symbolic links to files and folders, walks a folder reached twice once, and reports a dangling link', () => {
    const outside = join(dir, 'outside');
    mkdirSync(join(outside, 'sub'), { recursive: true });
    writeFileSync(join(outside, 'real.md'), '# Thật\n\nVăn bản thật.\n');
    writeFileSync(join(outside, 'sub', 'inner.md'), '# Trong\n\nVăn bản trong.\n');
    const links = join(dir, 'links');
    mkdirSync(links);
    symlinkSync(join(outside, 'real.md'), join(links, 'linked.md'));
    symlinkSync(join(outside, 'sub'), join(links, 'sub'));
    symlinkSync(links, join(links, 'loop')); // back to itself
    symlinkSync(join(outside, 'gone.md'), join(links, 'dangling.md'));
    const run = runIngest(db.env, links, '--type', 'guide', '--category', 'links');
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`${join(links, 'dangling.md')}: no such file or folder`);
    expect(SUMMARY.exec(run.stdout)!.slice(1, 4).map(Number)).toEqual([2, 0, 1]);
  });

  it('ingests a file given by name and inside a folder argument once', async () => {
    const folder = join(dir, 'both');
    mkdirSync(folder);
    writeFileSync(join(folder, 'x.md'), '# X\n\nVăn bản x.\n');
    const run = runIngest(db.env, folder, join(folder, 'x.md'), '--type', 'guide', '--category', 'both');
    expect([run.code, SUMMARY.exec(run.stdout)!.slice(1, 4).map(Number)]).toEqual([0, [1, 0, 0]]);
    const { dataSource, close } = await openRawDataSource(testConfig(db));
    try {
      const docs = await dataSource.query<Array<{ source_file: string }>>(
        `SELECT source_file FROM documents WHERE category = 'both'`,
      );
      // Before, two documents: both/x.md and x.md, the same chunks twice.
      expect(docs).toEqual([{ source_file: 'both/x.md' }]);
    } finally {
      await close();
    }
  });

  it('refuses what is not a regular file (a FIFO would block the run forever) and goes on with the rest', () => {
    const folder = join(dir, 'special');
    mkdirSync(folder);
    const fifo = join(folder, 'pipe.txt');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    writeFileSync(join(folder, 'real.md'), '# Thật\n\nVăn bản.\n');
    const run = runIngest(db.env, fifo, join(folder, 'real.md'), '--category', 'special');
    expect(run.code).toBe(1);
    expect(run.stderr).toContain(`failed: ${fifo}: not a regular file or folder`);
    expect(SUMMARY.exec(run.stdout)!.slice(1, 4).map(Number)).toEqual([1, 0, 1]);
  });

  it('stops after the file being ingested on Ctrl-C, with its summary and exit code 130; a second run goes on', async () => {
    const folder = join(dir, 'interrupted');
    mkdirSync(folder);
    for (const name of ['a', 'b', 'c']) writeFileSync(join(folder, `${name}.md`), `# ${name}\n\nVăn bản ${name}.\n`);
    // A provider that holds its answers: the run is inside its first file when the signal comes.
    const provider = await startFakeOpenAIServer({ dimensions: 64 });
    const env: Record<string, string> = {
      ...db.env,
      EMBEDDINGS_PROVIDER: 'openai',
      EMBEDDINGS_BASE_URL: provider.url,
      EMBEDDINGS_MODEL: 'fake-embed',
      EMBEDDINGS_DIMENSIONS: '64',
    };
    const args = [folder, '--collection', 'interrupted', '--category', 'interrupted'];
    try {
      provider.hold();
      const first = startIngest(env, ...args);
      expect(await eventually(() => Promise.resolve(provider.requests.length > 0), 600, 50)).toBe(true);
      first.child.kill('SIGINT');
      expect(await eventually(() => Promise.resolve(first.stderr().includes('SIGINT: stopping after')), 200, 25)).toBe(
        true,
      );
      provider.release();
      const interrupted = await first.result;
      expect(interrupted.code).toBe(130);
      expect(interrupted.stdout).toMatch(
        /^files: 1 ingested, 0 skipped, 0 failed; chunks: 1; seconds: \d+\.\d; interrupted, 2 not started$/m,
      );
      // Not spawnSync: the provider answers from this process.
      const second = await startIngest(env, ...args).result;
      expect([second.code, SUMMARY.exec(second.stdout)?.slice(1, 5).map(Number), second.stderr]).toEqual([
        0,
        [2, 1, 0, 2],
        '',
      ]);
    } finally {
      provider.release();
      await provider.close();
    }
  });

  it('refuses options the API would refuse, naming the flag, before the database starts', () => {
    const cases: Array<[string[], RegExp]> = [
      [['--type', '--category', 'c'], /^--type needs a value/],
      [['--type', 'x'.repeat(51)], /^--type must be shorter than or equal to 50 characters/],
      [['--category', 'c'.repeat(101)], /^--category must be shorter than or equal to 100 characters/],
      [
        ['--chunk-overlap', '150', '--chunk-size', '200'],
        /^--chunk-overlap \(150\) must be at most half of the chunk size \(200\)/,
      ],
    ];
    for (const [args, message] of cases) {
      const run = runIngest(db.env, dir, ...args);
      expect([run.code, run.stdout]).toEqual([1, '']);
      expect(run.stderr).toMatch(message);
    }
    // Nothing to ingest: said so, without opening the database.
    mkdirSync(join(dir, 'nothing'));
    writeFileSync(join(dir, 'nothing', 'notes.rtf'), 'rtf');
    const none = runIngest({ DATABASE_URL: 'postgresql://postgres@127.0.0.1:9/none' }, join(dir, 'nothing'));
    expect(none.code).toBe(0);
    expect(none.stderr).toMatch(/^No \.txt .* files under /);
    expect(SUMMARY.exec(none.stdout)!.slice(1, 4).map(Number)).toEqual([0, 0, 0]);
  });

  (TEST_TARGET === 'postgres' ? it : it.skip)(
    'refuses a database with pending migrations, saying to run db:migrate, and writes nothing',
    async () => {
      const empty = await createTestDatabase();
      try {
        writeFileSync(join(dir, 'lone.md'), '# Một\n\nVăn bản.\n');
        const run = runIngest({ ...empty.env, DB_MIGRATE_ON_START: 'false' }, join(dir, 'lone.md'));
        expect(run.code).toBe(1);
        expect(run.stderr).toMatch(/^The database is not at head: \d+ migration\(s\) pending \(InitialSchema/m);
        expect(run.stderr).toContain('Run `npm run db:migrate` first');
      } finally {
        await empty.drop();
      }
    },
  );

  it('prints usage and exits 1 without paths or with an unknown option', () => {
    const none = runIngest(db.env);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/No files or folders given[\s\S]*Usage: npm run ingest/);
    expect(runIngest(db.env, dir, '--bogus').stderr).toMatch(/Unknown option --bogus/);
    // Out of the API's bounds: refused with the usage, before the database starts.
    const small = runIngest(db.env, dir, '--chunk-size', '50');
    expect([small.code, small.stdout]).toEqual([1, '']);
    expect(small.stderr).toMatch(/^--chunk-size must be a whole number from 100 to 100000 \(got "50"\)/);
  });

  it('fails in one line naming the problem, no stack trace, when the database cannot be reached', () => {
    const folder = join(dir, 'one');
    mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, 'a.txt'), 'Điều 1. Phạm vi điều chỉnh');
    // Nothing listens on port 9 of the loopback.
    const result = runIngest({ DATABASE_URL: 'postgresql://postgres@127.0.0.1:9/none', LOG_LEVEL: 'fatal' }, folder);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^Error: .*ECONNREFUSED/m);
    expect(result.stderr).not.toMatch(/^\s+at /m);
  });
});
