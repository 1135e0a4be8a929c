import type { MigrationInterface, QueryRunner } from 'typeorm';
import { boundLockWaits, lockTablesWithoutWaiting } from './support/lock-timeout.js';

/**
 * `db:stamp` accepts a baseline column in either of two types (src/cli/db-commands.ts,
 * BASELINE_COLUMNS): `text` where InitialSchema has `varchar(n)`, `bigint` for `total_chunks`, and
 * so on, since SQLAlchemy models spelled them either way. AlignLegacySchema converted only
 * `langchain_pg_embedding.document` and the collection's `cmetadata`, so on such a database every
 * migration applied and `db:check` still failed, proposing to drop and re-add the column. Worse, a
 * `bigint` total_chunks reaches the service as a string, and the re-ingest of an unchanged file
 * never recognised its stored chunks.
 *
 * Each column that differs from InitialSchema gets InitialSchema's type, after checking that every
 * value fits (longest text, integer range): if one does not, the migration fails naming the column
 * and the rows to look at, and nothing is changed. `documents` is rewritten when a column narrows to
 * `varchar(n)` or `integer` (one row per document, short); the chunk id and the collection name only
 * change `text` → `varchar`, which PostgreSQL does without a rewrite or an index rebuild.
 *
 * `down()` changes nothing: the types before are not recorded, and InitialSchema's hold every value
 * they held. Runs in one transaction, each lock waited for at most LOCK_TIMEOUT. Frozen history: no
 * entity imports.
 */
export class AlignBaselineColumnTypes1764000000011 implements MigrationInterface {
  name = 'AlignBaselineColumnTypes1764000000011';

  public async up(q: QueryRunner): Promise<void> {
    // The ALTERs take ACCESS EXCLUSIVE on tables the Python service may still be using.
    await boundLockWaits(q);
    const columns = (await q.query(
      `SELECT table_name, column_name, udt_name, character_maximum_length AS length
         FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = ANY($1::text[])`,
      [[...new Set(TARGET_TYPES.map((t) => t.table))]],
    )) as Array<{ table_name: string; column_name: string; udt_name: string; length: number | null }>;
    const changes = TARGET_TYPES.filter((target) => {
      const actual = columns.find((c) => c.table_name === target.table && c.column_name === target.column);
      // A missing column is for db:stamp and InitialSchema to report, not for this migration.
      return actual !== undefined && (actual.udt_name !== target.udt || actual.length !== target.length);
    });
    if (changes.length === 0) return;
    // The tables to change, locked before their values are checked (no write can slip in between),
    // all at once and never waiting for one while holding another: locked one after the other in
    // any order, they deadlocked with some writer (POST /embeddings holding the chunk table and
    // waiting for documents; a LangChain INSERT holding the chunk table and locking the collection).
    const tables = TABLES.filter((table) => changes.some((c) => c.table === table));
    await lockTablesWithoutWaiting(q, tables);
    // Every problem at once, before anything changes: one run of db:migrate tells all there is to correct.
    const problems: string[] = [];
    for (const target of changes) {
      const problem = await valuesNotFitting(q, target);
      if (problem) problems.push(problem);
    }
    if (problems.length > 0) {
      throw new Error(
        `Some values do not fit this service's column types, so nothing was changed: ${problems.join('; ')}. ` +
          'Correct them, then run db:migrate again.',
      );
    }
    // One ALTER TABLE per table: documents is rewritten once, whatever the number of its columns.
    for (const table of tables) {
      const clauses = changes.filter((c) => c.table === table).map((c) => `ALTER COLUMN ${c.column} TYPE ${c.sqlType}`);
      await q.query(`ALTER TABLE ${table} ${clauses.join(', ')}`);
    }
  }

  public async down(): Promise<void> {
    // Nothing to undo: see the class comment.
  }
}

interface TargetType {
  table: string;
  column: string;
  /** InitialSchema's type as information_schema.columns reports it (udt_name, character_maximum_length). */
  udt: 'varchar' | 'text' | 'int4';
  length: number | null;
  sqlType: string;
}

/** InitialSchema's type of each column that db:stamp accepts in another type. A fixed list: no identifier comes from elsewhere. */
const TARGET_TYPES: TargetType[] = [
  { table: 'documents', column: 'document_id', udt: 'varchar', length: 255, sqlType: 'varchar(255)' },
  { table: 'documents', column: 'document_name', udt: 'text', length: null, sqlType: 'text' },
  { table: 'documents', column: 'category', udt: 'varchar', length: 100, sqlType: 'varchar(100)' },
  { table: 'documents', column: 'document_type', udt: 'varchar', length: 50, sqlType: 'varchar(50)' },
  { table: 'documents', column: 'source_file', udt: 'text', length: null, sqlType: 'text' },
  { table: 'documents', column: 'file_name', udt: 'text', length: null, sqlType: 'text' },
  { table: 'documents', column: 'total_chunks', udt: 'int4', length: null, sqlType: 'integer' },
  { table: 'documents', column: 'status', udt: 'varchar', length: 50, sqlType: 'varchar(50)' },
  { table: 'langchain_pg_collection', column: 'name', udt: 'varchar', length: null, sqlType: 'varchar' },
  { table: 'langchain_pg_embedding', column: 'id', udt: 'varchar', length: null, sqlType: 'varchar' },
];

/** The tables TARGET_TYPES may change. */
const TABLES = ['langchain_pg_collection', 'langchain_pg_embedding', 'documents'];

/** What would not fit the target type (the column, how many values, the query that finds them), or undefined. */
async function valuesNotFitting(q: QueryRunner, target: TargetType): Promise<string | undefined> {
  const { table, column } = target;
  let condition: string;
  let problem: string;
  if (target.udt === 'varchar' && target.length !== null) {
    condition = `length(${column}) > ${target.length}`;
    problem = `longer than ${target.length} characters`;
  } else if (target.udt === 'int4') {
    condition = `${column} NOT BETWEEN -2147483648 AND 2147483647`;
    problem = 'outside the integer range';
  } else {
    return undefined; // text and unbounded varchar hold every value
  }
  const [row] = (await q.query(`SELECT count(*)::int AS n FROM ${table} WHERE ${condition}`)) as Array<{ n: number }>;
  if (row.n === 0) return undefined;
  return `${table}.${column} holds ${row.n} value(s) ${problem} for ${target.sqlType} (SELECT * FROM ${table} WHERE ${condition})`;
}
