import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type DataSource, MigrationExecutor, type MigrationInterface, type Table } from 'typeorm';
import { BASELINE_MIGRATION, MIGRATIONS } from '../../migrations/index.js';
import { CHUNK_ID_PRIMARY_KEY_SQL } from '../../migrations/support/concurrent-index.js';
import { MIGRATIONS_TABLE } from '../database/data-source-options.js';
import {
  assertServerCompatible,
  assertStampedOrEmpty,
  BASELINE_TABLES,
  Executor,
  migrationStates,
  notAtHeadMessage,
  pendingMigrationNames,
  recordedNames,
  runPendingMigrations,
  withMigrationLock,
} from '../database/migration-runner.js';

/** What a command printed and how the process should exit (0 only on success). */
export interface CommandResult {
  exitCode: number;
  lines: string[];
}

const ok = (lines: string[]): CommandResult => ({ exitCode: 0, lines });
const fail = (lines: string[]): CommandResult => ({ exitCode: 1, lines });

/**
 * Why a CLI that writes or reads the knowledge base (ingest, vector indexes) should not run on this
 * database, or null: migrations are pending (a new database has every one pending; an adopted one
 * still needs db:migrate after its stamp). Without it, such a database answered with SQL errors
 * ("relation \"documents\" does not exist"), once per file, or was written in its older shape.
 */
export async function schemaNotAtHead(ds: DataSource): Promise<string | null> {
  const notAtHead = await notAtHeadMessage(ds);
  return notAtHead === null
    ? null
    : `${notAtHead} Run \`npm run db:migrate\` first; a database the Python service created is adopted with ` +
        '`npm run db:stamp` before it (docs/MIGRATIONS.md).';
}

// ---------------------------------------------------------------------------------------------
// status
// ---------------------------------------------------------------------------------------------

export async function status(ds: DataSource): Promise<CommandResult> {
  const states = await migrationStates(ds);
  const recorded = await recordedNames(ds);
  const lines = ['Migrations:'];
  for (const m of states) lines.push(`  [${m.applied ? 'X' : ' '}] ${m.name}`);
  const known = new Set(states.map((m) => m.name));
  for (const name of recorded.filter((n) => !known.has(n))) {
    lines.push(`  [?] ${name} (recorded in the database, unknown to this code)`);
  }
  const applied = states.filter((m) => m.applied);
  const pending = states.filter((m) => !m.applied);
  lines.push(`Head: ${applied.length > 0 ? applied[applied.length - 1].name : '(none recorded)'}`);
  lines.push(`Pending: ${pending.length}`);

  const tables = await ds.query<Array<{ name: string }>>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 1`,
  );
  const names = tables.map((t) => t.name);
  const foreign: string[] = [];
  if (names.includes('alembic_version')) {
    const rows = await ds.query<Array<{ version_num: string }>>(`SELECT version_num FROM alembic_version`);
    foreign.push(
      `alembic_version: ${rows.map((r) => r.version_num).join(', ') || '(empty)'} (Alembic's record; ignored by this service, left untouched)`,
    );
  }
  // Every entity's table is ours: a module added later (docs/EXTENDING.md) is not foreign.
  const ours = new Set<string>([
    ...ds.entityMetadatas.map((m) => m.tableName),
    ...BASELINE_TABLES,
    'chunk_counts',
    MIGRATIONS_TABLE,
    'typeorm_metadata',
    'alembic_version',
  ]);
  for (const name of names.filter((n) => !ours.has(n))) foreign.push(`table ${name} (unknown to this service)`);
  const baselinePresent = BASELINE_TABLES.filter((t) => names.includes(t));
  if (baselinePresent.length > 0 && recorded.length === 0) {
    foreign.push(
      `the tables ${baselinePresent.join(', ')} exist but no migration is recorded: run \`npm run db:stamp\` before \`npm run db:migrate\``,
    );
  }
  if (foreign.length > 0) {
    lines.push('Foreign or unexpected:');
    for (const f of foreign) lines.push(`  - ${f}`);
  }
  return ok(lines);
}

// ---------------------------------------------------------------------------------------------
// migrate
// ---------------------------------------------------------------------------------------------

export async function migrate(ds: DataSource, options: { dryRun?: boolean } = {}): Promise<CommandResult> {
  if (!options.dryRun) {
    const applied = await runPendingMigrations(ds);
    if (applied.length === 0) return ok(['No pending migrations: the database is up to date.']);
    return ok(applied.map((name) => `Applied ${name}`).concat(`Head: ${applied[applied.length - 1]}`));
  }
  const pending = (await migrationStates(ds)).filter((m) => !m.applied);
  if (pending.length === 0) return ok(['No pending migrations: the database is up to date.']);
  const instances = new Map(
    MIGRATIONS.map((Cls) => {
      const instance = new Cls();
      return [instance.name, instance] as const;
    }),
  );
  const runner = ds.createQueryRunner();
  const statements: string[] = [];
  try {
    await runner.connect();
    await assertServerCompatible(runner);
    return await withMigrationLock(runner, async () => {
      await assertStampedOrEmpty(runner);
      await runner.startTransaction();
      const original = runner.query.bind(runner) as (q: string, p?: unknown[]) => Promise<unknown>;
      let executeChanges = true;
      (runner as { query: (q: string, p?: unknown[]) => Promise<unknown> }).query = (q, p) => {
        if (/^\s*(SELECT|SHOW)\b/i.test(q)) return original(q, p);
        statements.push(q.trim());
        return executeChanges ? original(q, p) : Promise.resolve([]);
      };
      const lines: string[] = ['-- Dry run: these statements would run; nothing was changed.'];
      try {
        for (const m of pending) {
          const instance = instances.get(m.name);
          if (!instance) throw new Error(`migration ${m.name} has no class`);
          statements.length = 0;
          // A migration that runs outside a transaction (CREATE INDEX CONCURRENTLY) cannot run inside
          // this rolled-back one: its statements are listed, not executed. Its steps read the catalog
          // first, so the list is still what it would do.
          executeChanges = (instance as MigrationInterface).transaction !== false;
          await instance.up(runner);
          lines.push(`-- ${m.name}`);
          if (statements.length === 0) lines.push('-- (no change)');
          for (const s of statements) lines.push(`${s.replace(/\n\s+/g, '\n  ')};`);
        }
      } finally {
        (runner as { query: unknown }).query = original;
        await runner.rollbackTransaction();
      }
      return ok(lines);
    });
  } finally {
    await runner.release();
  }
}

// ---------------------------------------------------------------------------------------------
// stamp
// ---------------------------------------------------------------------------------------------

/** Each baseline column and the types (udt_name) it may have on a pre-existing database. */
const BASELINE_COLUMNS: Record<string, Record<string, string[]>> = {
  documents: {
    id: ['uuid'],
    document_id: ['varchar', 'text'],
    document_name: ['text', 'varchar'],
    category: ['varchar', 'text'],
    document_type: ['varchar', 'text'],
    source_file: ['text', 'varchar'],
    file_name: ['text', 'varchar'],
    total_chunks: ['int4', 'int8'],
    status: ['varchar', 'text'],
    created_at: ['timestamp'],
    updated_at: ['timestamp'],
  },
  langchain_pg_collection: { uuid: ['uuid'], name: ['varchar', 'text'], cmetadata: ['json', 'jsonb'] },
  langchain_pg_embedding: {
    id: ['varchar', 'text'],
    collection_id: ['uuid'],
    embedding: ['vector'],
    document: ['text', 'varchar'],
    cmetadata: ['jsonb'],
  },
};

const COMMUNITY_LAYOUT_MESSAGE =
  'langchain_pg_embedding has the older langchain_community layout (a uuid primary key plus custom_id, no id column). ' +
  'This service and its migrations expect the langchain_postgres layout (id varchar primary key). Nothing was changed. ' +
  'Convert it first (langchain_postgres documents the move from langchain_community: copy custom_id, or the uuid when custom_id is NULL, into a new id varchar primary key and drop uuid/custom_id), ' +
  'or re-ingest into a fresh database; then run `npm run db:stamp` again.';

/** Verifies that the baseline's tables and columns exist with compatible types; returns the problems. */
export async function verifyBaseline(
  ds: DataSource,
): Promise<{ empty: boolean; community: boolean; problems: string[] }> {
  const rows = await ds.query<Array<{ table_name: string; column_name: string; udt_name: string }>>(
    `SELECT table_name, column_name, udt_name FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = ANY($1::text[])`,
    [[...BASELINE_TABLES]],
  );
  if (rows.length === 0) return { empty: true, community: false, problems: [] };
  const columns = new Map(rows.map((r) => [`${r.table_name}.${r.column_name}`, r.udt_name]));
  const community =
    columns.has('langchain_pg_embedding.custom_id') &&
    columns.has('langchain_pg_embedding.uuid') &&
    !columns.has('langchain_pg_embedding.id');
  const problems: string[] = [];
  if (!community && columns.has('langchain_pg_embedding.id') && !(await hasChunkIdPrimaryKey(ds))) {
    problems.push(
      "langchain_pg_embedding has no primary key on id, which LangChain's upsert (ON CONFLICT (id)) and this service need: " +
        'add it (ALTER TABLE langchain_pg_embedding ADD PRIMARY KEY (id), or ADD PRIMARY KEY USING INDEX on a unique index of id)',
    );
  }
  for (const [table, cols] of Object.entries(BASELINE_COLUMNS)) {
    if (!rows.some((r) => r.table_name === table)) {
      problems.push(`table ${table} is missing`);
      continue;
    }
    for (const [column, types] of Object.entries(cols)) {
      const actual = columns.get(`${table}.${column}`);
      if (actual === undefined) problems.push(`column ${table}.${column} is missing`);
      else if (!types.includes(actual)) {
        problems.push(`column ${table}.${column} is ${actual}, expected ${types.join(' or ')}`);
      }
    }
  }
  return { empty: false, community, problems };
}

/** Whether langchain_pg_embedding's primary key is its id column alone. */
async function hasChunkIdPrimaryKey(ds: DataSource): Promise<boolean> {
  const [row] = await ds.query<Array<{ present: boolean }>>(CHUNK_ID_PRIMARY_KEY_SQL);
  return row.present;
}

export async function stamp(ds: DataSource, target: string = BASELINE_MIGRATION): Promise<CommandResult> {
  const executor = new Executor(ds);
  const all = executor.ordered();
  const index = all.findIndex((m) => m.name === target || m.name.replace(/\d+$/, '') === target);
  if (index < 0) return fail([`Unknown migration "${target}". Known: ${all.map((m) => m.name).join(', ')}`]);
  const verification = await verifyBaseline(ds);
  if (verification.empty) {
    return fail([
      'The database is empty: there is nothing to stamp. Run `npm run db:migrate` to create the schema instead.',
    ]);
  }
  if (verification.community) return fail([COMMUNITY_LAYOUT_MESSAGE]);
  if (verification.problems.length > 0) {
    return fail([
      'The database does not have the baseline schema, so it cannot be stamped (nothing was changed):',
      ...verification.problems.map((p) => `  - ${p}`),
    ]);
  }
  const toRecord = all.slice(0, index + 1);
  const runner = ds.createQueryRunner();
  const lines: string[] = ['Baseline verified: documents, langchain_pg_collection, langchain_pg_embedding.'];
  try {
    await runner.connect();
    await withMigrationLock(runner, async () => {
      await runner.startTransaction();
      try {
        await executor.ensureMigrationsTable(runner);
        const recorded = new Set(
          ((await runner.query(`SELECT name FROM ${MIGRATIONS_TABLE}`)) as Array<{ name: string }>).map((r) => r.name),
        );
        for (const m of toRecord) {
          if (recorded.has(m.name)) {
            lines.push(`Already recorded ${m.name}`);
            continue;
          }
          await runner.query(`INSERT INTO ${MIGRATIONS_TABLE} ("timestamp", name) VALUES ($1, $2)`, [
            m.timestamp,
            m.name,
          ]);
          lines.push(`Stamped ${m.name} (recorded as applied, not run)`);
        }
        await runner.commitTransaction();
      } catch (err) {
        await runner.rollbackTransaction();
        throw err;
      }
    });
  } finally {
    await runner.release();
  }
  // What is not recorded now: after a second stamp of a migrated database, nothing.
  const pending = await pendingMigrationNames(ds);
  lines.push(
    pending.length > 0
      ? `Next: \`npm run db:migrate\` applies ${pending.join(', ')}; then \`npm run db:check\`.`
      : 'Nothing pending.',
  );
  return ok(lines);
}

// ---------------------------------------------------------------------------------------------
// check
// ---------------------------------------------------------------------------------------------

/** Indexes the entities mark `synchronize: false` (TypeORM cannot express them), as pg_indexes prints them. */
const UNSYNCHRONIZED_INDEXES: Record<string, string> = {
  ix_cmetadata_gin:
    'CREATE INDEX ix_cmetadata_gin ON public.langchain_pg_embedding USING gin (cmetadata jsonb_path_ops)',
  idx_embedding_document_type:
    "CREATE INDEX idx_embedding_document_type ON public.langchain_pg_embedding USING btree (((cmetadata ->> 'document_type'::text)))",
  idx_embedding_document_id:
    "CREATE INDEX idx_embedding_document_id ON public.langchain_pg_embedding USING btree (((cmetadata ->> 'document_id'::text)))",
  ix_embedding_document_fts:
    "CREATE INDEX ix_embedding_document_fts ON public.langchain_pg_embedding USING gin (to_tsvector('simple'::regconfig, \"left\"(COALESCE(document, ''::text), 100000)))",
  ix_cmetadata_terms:
    'CREATE INDEX ix_cmetadata_terms ON public.langchain_pg_embedding USING gin (chunk_metadata_terms(cmetadata))',
};

/** The unique key of chunk_counts (NULL is a group of its own), as pg_indexes prints it. */
const CHUNK_COUNTS_KEY_INDEX =
  "CREATE UNIQUE INDEX chunk_counts_key ON public.chunk_counts USING btree (((collection_id IS NULL)), COALESCE(collection_id, '00000000-0000-0000-0000-000000000000'::uuid), ((document_id IS NULL)), COALESCE(document_id, ''::text))";

/** chunk_counts (AddChunkCounts, no entity): its columns as "udt_name null=YES|NO". */
const CHUNK_COUNTS_COLUMNS: Record<string, string> = {
  collection_id: 'uuid null=YES',
  document_id: 'text null=YES',
  n: 'int8 null=NO',
  vectors: 'int8 null=NO',
  dims: 'int4 null=YES',
};

/** The triggers that keep chunk_counts exact, as pg_get_triggerdef prints them. */
const CHUNK_COUNTS_TRIGGERS: Record<string, string> = {
  chunk_counts_after_insert:
    'CREATE TRIGGER chunk_counts_after_insert AFTER INSERT ON public.langchain_pg_embedding REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chunk_counts_track()',
  chunk_counts_after_update:
    'CREATE TRIGGER chunk_counts_after_update AFTER UPDATE ON public.langchain_pg_embedding REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION chunk_counts_track()',
  chunk_counts_after_delete:
    'CREATE TRIGGER chunk_counts_after_delete AFTER DELETE ON public.langchain_pg_embedding REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION chunk_counts_track()',
  chunk_counts_after_truncate:
    'CREATE TRIGGER chunk_counts_after_truncate AFTER TRUNCATE ON public.langchain_pg_embedding FOR EACH STATEMENT EXECUTE FUNCTION chunk_counts_track()',
};

/** chunk_counts and the triggers that keep it: what the entities cannot express. */
async function chunkCountsDifferences(ds: DataSource): Promise<string[]> {
  const differences: string[] = [];
  const columns = await ds.query<Array<{ column_name: string; line: string }>>(
    `SELECT column_name, udt_name || ' null=' || is_nullable AS line FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = 'chunk_counts'`,
  );
  if (columns.length === 0) return ['table chunk_counts is missing (migration AddChunkCounts)'];
  for (const [name, expected] of Object.entries(CHUNK_COUNTS_COLUMNS)) {
    const found = columns.find((c) => c.column_name === name);
    if (!found) differences.push(`column chunk_counts.${name} is missing (expected: ${expected})`);
    else if (found.line !== expected)
      differences.push(`column chunk_counts.${name} is ${found.line}, expected ${expected}`);
  }
  const [index] = await ds.query<Array<{ indexdef: string }>>(
    `SELECT replace(indexdef, schemaname || '.', 'public.') AS indexdef FROM pg_indexes
      WHERE schemaname = current_schema() AND indexname = 'chunk_counts_key'`,
  );
  if (!index) differences.push(`index chunk_counts_key is missing (expected: ${CHUNK_COUNTS_KEY_INDEX})`);
  else if (index.indexdef !== CHUNK_COUNTS_KEY_INDEX) {
    differences.push(`index chunk_counts_key is "${index.indexdef}", expected "${CHUNK_COUNTS_KEY_INDEX}"`);
  }
  const triggers = await ds.query<Array<{ name: string; definition: string; enabled: string }>>(
    `SELECT g.tgname AS name, replace(pg_get_triggerdef(g.oid), n.nspname || '.', 'public.') AS definition,
            g.tgenabled AS enabled
       FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = current_schema() AND t.relname = 'langchain_pg_embedding' AND NOT g.tgisinternal
        AND g.tgname = ANY($1::text[])`,
    [Object.keys(CHUNK_COUNTS_TRIGGERS)],
  );
  for (const [name, expected] of Object.entries(CHUNK_COUNTS_TRIGGERS)) {
    const found = triggers.find((t) => t.name === name);
    if (!found) differences.push(`trigger ${name} is missing (expected: ${expected})`);
    else if (found.definition !== expected) {
      differences.push(`trigger ${name} is "${found.definition}", expected "${expected}"`);
    } else if (found.enabled === 'D') {
      differences.push(
        `trigger ${name} is disabled: chunk_counts may be stale; enable it and recount (docs/MIGRATIONS.md)`,
      );
    }
  }
  return differences;
}

/** pg_attribute.attstorage, as ALTER COLUMN … SET STORAGE names it. */
const STORAGE_MODES: Record<string, string> = { p: 'PLAIN', e: 'EXTERNAL', m: 'MAIN', x: 'EXTENDED' };

/**
 * A metadata value too long to be a GIN entry, and the one term chunk_metadata_terms must give it
 * since HashLongMetadataTerms: '#' and the SHA-256 of the whole term. The old function kept it as
 * it is, and a chunk holding such a value that does not compress could not be written.
 */
const LONG_TERM_VALUE = 'x'.repeat(3000);
const LONG_TERM_DIGEST = `#${createHash('sha256').update(`"k"s${LONG_TERM_VALUE}`).digest('hex')}`;

/** chunk_metadata_terms (when it exists: the missing index is reported already) digests long terms. */
async function metadataTermsDifferences(ds: DataSource): Promise<string[]> {
  const [exists] = await ds.query<Array<{ found: boolean }>>(
    `SELECT to_regprocedure('chunk_metadata_terms(jsonb)') IS NOT NULL AS found`,
  );
  if (!exists.found) return [];
  const [probe] = await ds.query<Array<{ terms: string[] }>>(
    `SELECT chunk_metadata_terms(jsonb_build_object('k', $1::text)) AS terms`,
    [LONG_TERM_VALUE],
  );
  if (probe.terms.length === 1 && probe.terms[0] === LONG_TERM_DIGEST) return [];
  return [
    'function chunk_metadata_terms does not replace a long term by its digest: a chunk with a long metadata value cannot be indexed (migration HashLongMetadataTerms)',
  ];
}

/**
 * The live tables as TypeORM's comparison should see them: a sized `embedding vector(N)` column, as
 * LangChain's PGVector creates with `embedding_length` (an HNSW index on the column needs the size),
 * counts as the entity's unsized `vector`, and an index on that column (pgvector's HNSW or IVFFlat,
 * which the entities cannot express) is not TypeORM's to drop. Compared as they are, `db:check`
 * never passed on such a database, and `migration:generate` wrote DROP COLUMN "embedding" (every
 * vector lost once applied).
 */
function withAdoptedVectorColumn(tables: Table[]): Table[] {
  for (const table of tables) {
    if (table.name.split('.').pop() !== 'langchain_pg_embedding') continue;
    for (const column of table.columns) {
      if (column.name === 'embedding' && column.type === 'vector') column.length = '';
    }
    table.indices = table.indices.filter((index) => !index.columnNames.includes('embedding'));
  }
  return tables;
}

/** TypeORM's schema comparison (SQL it would run, up and down), over withAdoptedVectorColumn's view. */
async function schemaChanges(
  ds: DataSource,
): Promise<Awaited<ReturnType<ReturnType<DataSource['driver']['createSchemaBuilder']>['log']>>> {
  // The builder reads the tables through a query runner it creates itself: the runners created
  // meanwhile read them through withAdoptedVectorColumn.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const create = ds.createQueryRunner;
  ds.createQueryRunner = (...args: Parameters<DataSource['createQueryRunner']>) => {
    const runner = create.apply(ds, args);
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const getTables = runner.getTables;
    runner.getTables = async (paths?: string[]) => withAdoptedVectorColumn(await getTables.call(runner, paths));
    return runner;
  };
  try {
    return await ds.driver.createSchemaBuilder().log();
  } finally {
    ds.createQueryRunner = create;
  }
}

/** Lists every difference between the live schema and the entities (empty when they agree). */
export async function schemaDifferences(ds: DataSource): Promise<string[]> {
  const differences: string[] = [];
  const sql = await schemaChanges(ds);
  for (const q of sql.upQueries) differences.push(`TypeORM would run: ${q.query.replace(/\s+/g, ' ').trim()}`);

  const indexes = await ds.query<Array<{ indexname: string; indexdef: string }>>(
    `SELECT indexname, replace(indexdef, schemaname || '.', 'public.') AS indexdef FROM pg_indexes
      WHERE schemaname = current_schema() AND indexname = ANY($1::text[])`,
    [Object.keys(UNSYNCHRONIZED_INDEXES)],
  );
  for (const [name, expected] of Object.entries(UNSYNCHRONIZED_INDEXES)) {
    const found = indexes.find((i) => i.indexname === name);
    if (!found) differences.push(`index ${name} is missing (expected: ${expected})`);
    else if (found.indexdef !== expected)
      differences.push(`index ${name} is "${found.indexdef}", expected "${expected}"`);
  }

  differences.push(...(await chunkCountsDifferences(ds)));
  differences.push(...(await metadataTermsDifferences(ds)));

  const [vectors] = await ds.query<Array<{ storage: string }>>(
    `SELECT a.attstorage AS storage FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND c.relname = 'langchain_pg_embedding' AND a.attname = 'embedding'
        AND NOT a.attisdropped`,
  );
  if (vectors && vectors.storage !== 'm') {
    differences.push(
      `column langchain_pg_embedding.embedding has storage ${STORAGE_MODES[vectors.storage] ?? vectors.storage}, expected MAIN (migration KeepChunkVectorsInline)`,
    );
  }

  const triggers = await ds.query<Array<{ proname: string }>>(
    `SELECT p.proname FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid
       JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_proc p ON p.oid = g.tgfoid
      WHERE n.nspname = current_schema() AND t.relname = 'documents' AND g.tgname = 'trigger_documents_updated_at'
        AND NOT g.tgisinternal AND (g.tgtype & 2) = 2 AND (g.tgtype & 16) = 16`,
  );
  if (triggers.length === 0) {
    differences.push('trigger trigger_documents_updated_at (BEFORE UPDATE ON documents) is missing');
  } else if (triggers[0].proname !== 'update_documents_updated_at') {
    differences.push(
      `trigger trigger_documents_updated_at calls ${triggers[0].proname}, expected update_documents_updated_at`,
    );
  }

  const comments = await ds.query<Array<{ table_name: string; column_name: string | null; comment: string | null }>>(
    `SELECT c.relname AS table_name, a.attname AS column_name, col_description(c.oid, a.attnum) AS comment
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname = current_schema() AND c.relkind = 'r'
     UNION ALL
     SELECT c.relname, NULL, obj_description(c.oid, 'pg_class')
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND c.relkind = 'r'`,
  );
  // A comment TypeORM already reported above is not listed twice.
  const reported = (target: string): boolean =>
    sql.upQueries.some((q) => q.query.startsWith(`COMMENT ON ${target} IS`));
  const commentOf = (table: string, column: string | null): string | null | undefined =>
    comments.find((c) => c.table_name === table && c.column_name === column)?.comment;
  for (const meta of ds.entityMetadatas) {
    const actual = commentOf(meta.tableName, null);
    if (
      actual !== undefined &&
      (actual ?? undefined) !== (meta.comment ?? undefined) &&
      !reported(`TABLE "${meta.tableName}"`)
    ) {
      differences.push(`comment on table ${meta.tableName} is ${quote(actual)}, expected ${quote(meta.comment)}`);
    }
    for (const column of meta.columns) {
      const got = commentOf(meta.tableName, column.databaseName);
      if (
        got !== undefined &&
        (got ?? undefined) !== (column.comment ?? undefined) &&
        !reported(`COLUMN "${meta.tableName}"."${column.databaseName}"`)
      ) {
        differences.push(
          `comment on column ${meta.tableName}.${column.databaseName} is ${quote(got)}, expected ${quote(column.comment)}`,
        );
      }
    }
  }
  return differences;
}

const quote = (s: string | null | undefined): string => (s == null ? 'empty' : `"${s}"`);

export async function check(ds: DataSource): Promise<CommandResult> {
  const pending = await pendingMigrationNames(ds);
  const differences = await schemaDifferences(ds);
  const lines: string[] = [];
  if (pending.length > 0) lines.push(`Pending migrations (run \`npm run db:migrate\`): ${pending.join(', ')}`);
  if (differences.length === 0) {
    lines.push('Schema matches the entities: no differences.');
    // Like `alembic check`: a database behind the code fails the check, even when a pending
    // migration changes nothing the comparison sees (a trigger function, say).
    return pending.length > 0 ? fail(lines) : ok(lines);
  }
  lines.push(`${differences.length} difference(s) between the database and the entities:`);
  for (const d of differences) lines.push(`  - ${d}`);
  return fail(lines);
}

// ---------------------------------------------------------------------------------------------
// revert
// ---------------------------------------------------------------------------------------------

export async function revert(ds: DataSource, options: { dropTables?: boolean } = {}): Promise<CommandResult> {
  const before = await recordedNames(ds);
  if (before.length === 0) return fail(['No migration is recorded: nothing to revert.']);
  // The migration TypeORM's undo reverts: the row recorded last (highest id), which is not the last
  // in code order after an out-of-order merge, or after a stamp deleted and recorded again.
  const last = { name: before[before.length - 1] };
  if (last.name === BASELINE_MIGRATION && !options.dropTables) {
    return fail([
      `Refusing to revert ${BASELINE_MIGRATION}: its down() DROPS the tables documents, langchain_pg_collection and langchain_pg_embedding with all their data.`,
      'To forget a stamp instead, delete its row from the migrations table. To really drop everything, run `npm run db:revert -- --drop-tables`.',
    ]);
  }
  const runner = ds.createQueryRunner();
  try {
    await runner.connect();
    await withMigrationLock(runner, async () => {
      const executor = new MigrationExecutor(ds, runner);
      // TypeORM's undo ignores a migration's `transaction = false`: a down() that drops an index
      // CONCURRENTLY must be run without the wrapping transaction, so we choose per migration.
      const instance = MIGRATIONS.map((Cls) => new Cls() as MigrationInterface).find((m) => m.name === last.name);
      executor.transaction = instance?.transaction === false ? 'none' : 'each';
      await executor.undoLastMigration();
    });
  } finally {
    await runner.release();
  }
  const after = new Set(await recordedNames(ds));
  const reverted = before.filter((n) => !after.has(n));
  const states = await migrationStates(ds);
  const head = states.filter((m) => m.applied).pop();
  return ok([...reverted.map((n) => `Reverted ${n}`), `Head: ${head ? head.name : '(none recorded)'}`]);
}

// ---------------------------------------------------------------------------------------------
// create / generate
// ---------------------------------------------------------------------------------------------

export interface NewMigrationOptions {
  /** Folder holding the migrations and index.ts (default: ./migrations). */
  dir?: string;
  /** Fixed timestamp (tests); default: now, and always after the last known migration. */
  timestamp?: number;
}

const NAME_PATTERN = /^[A-Z][A-Za-z0-9]*$/;

function newMigrationFile(
  name: string,
  up: string[],
  down: string[],
  options: NewMigrationOptions,
): { file: string; className: string; lines: string[] } {
  const dir = options.dir ?? join(process.cwd(), 'migrations');
  const last = Math.max(0, ...MIGRATIONS.map((Cls) => Number(/(\d+)$/.exec(new Cls().name)?.[1] ?? 0)));
  const timestamp = options.timestamp ?? Math.max(Date.now(), last + 1);
  const className = `${name}${timestamp}`;
  const base = `${timestamp}-${name}`;
  const file = join(dir, `${base}.ts`);
  if (existsSync(file)) throw new Error(`${file} already exists`);
  const body = (queries: string[]): string =>
    queries.length === 0
      ? '    // TODO'
      : queries.map((q) => `    await queryRunner.query(\`${escapeTemplate(q)}\`);`).join('\n');
  writeFileSync(
    file,
    `import type { MigrationInterface, QueryRunner } from 'typeorm';

/** ${name}. Frozen history: never import entity code here. */
export class ${className} implements MigrationInterface {
  name = '${className}';

  public async up(queryRunner: QueryRunner): Promise<void> {
${body(up)}
  }

  public async down(queryRunner: QueryRunner): Promise<void> {
${body(down)}
  }
}
`,
  );
  const lines = [`Created ${file}`];
  const indexFile = join(dir, 'index.ts');
  if (registerInIndex(indexFile, className, base)) lines.push(`Registered ${className} in ${indexFile}`);
  else lines.push(`Add ${className} to the MIGRATIONS list in ${indexFile}`);
  return { file, className, lines };
}

function escapeTemplate(sql: string): string {
  return sql.replace(/\\/g, '\\\\').replace(/`/g, '\\`').replace(/\$\{/g, '\\${');
}

/** Adds the import and the array entry to migrations/index.ts; false when its shape is not recognised. */
function registerInIndex(indexFile: string, className: string, base: string): boolean {
  if (!existsSync(indexFile)) return false;
  const source = readFileSync(indexFile, 'utf8');
  const list = /export const MIGRATIONS = \[([^\]]*)\];/.exec(source);
  if (!list) return false;
  const imports = [...source.matchAll(/^import .*;$/gm)];
  const importLine = `import { ${className} } from './${base}.js';`;
  const afterImports =
    imports.length > 0 ? imports[imports.length - 1].index + imports[imports.length - 1][0].length : 0;
  const entries = list[1]
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .concat(className);
  let updated = `${source.slice(0, afterImports)}\n${importLine}${source.slice(afterImports)}`;
  updated = updated.replace(list[0], `export const MIGRATIONS = [\n  ${entries.join(',\n  ')},\n];`);
  writeFileSync(indexFile, updated);
  return true;
}

export function create(name: string | undefined, options: NewMigrationOptions = {}): CommandResult {
  if (!name || !NAME_PATTERN.test(name)) {
    return fail(['Usage: migration:create -- <Name> (PascalCase letters and digits, e.g. AddDocumentLanguage)']);
  }
  return ok(newMigrationFile(name, [], [], options).lines);
}

export async function generate(
  ds: DataSource,
  name: string | undefined,
  options: NewMigrationOptions = {},
): Promise<CommandResult> {
  if (!name || !NAME_PATTERN.test(name)) {
    return fail(['Usage: migration:generate -- <Name> (PascalCase letters and digits, e.g. AddDocumentLanguage)']);
  }
  // Against a database behind the code, the differences include what the pending migrations do,
  // in TypeORM's words: on an adopted database that was a DROP COLUMN "document" then ADD, which
  // would have emptied every chunk's text.
  const notAtHead = await notAtHeadMessage(ds);
  if (notAtHead !== null) {
    return fail([
      notAtHead,
      'Generate against a database at head: `npm run db:migrate` on a copy of it, or a new empty database',
      '(DB_MIGRATE_ON_START=true npm start, or db:migrate on it), then run migration:generate there.',
    ]);
  }
  const sql = await schemaChanges(ds);
  if (sql.upQueries.length === 0) {
    return fail(['No changes: the entities and the database schema agree, so there is nothing to generate.']);
  }
  const up = sql.upQueries.map((q) => q.query);
  const down = sql.downQueries.map((q) => q.query).reverse();
  const lines = newMigrationFile(name, up, down, options).lines;
  lines.push(
    'Review it: indexes TypeORM cannot express (ix_cmetadata_gin, idx_embedding_*) are not generated; add them by hand.',
  );
  return ok(lines);
}
