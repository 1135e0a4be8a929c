import type { MigrationInterface, QueryRunner } from 'typeorm';
import { boundLockWaits } from './support/lock-timeout.js';

/**
 * `chunk_counts`: the number of chunks per (collection_id, cmetadata->>'document_id'), kept exact by
 * statement-level triggers on langchain_pg_embedding, so that GET /stats reads a few thousand
 * summary rows instead of scanning and parsing the JSONB of every chunk.
 *
 * Triggers (not this service's code) keep it, so it stays exact whoever writes the chunk table:
 * this service, LangChain (Python or JS), COPY, psql, a cascaded `DELETE FROM langchain_pg_collection`,
 * TRUNCATE. Each trigger aggregates the statement's transition tables into one delta per group and
 * applies the deltas in key order (concurrent writers lock summary rows in the same order: no
 * deadlock between two statements), deleting the rows that reach zero. A group's row is locked
 * until the writer commits, so two transactions writing chunks of the same document serialise on
 * it; different documents never wait for each other.
 *
 * Per group also: `vectors` (chunks with an embedding, a null check that never reads a vector) and
 * `dims`, the dimension of the vectors last written to the group (the vectors of new rows are in
 * memory; old rows' vectors are never read). GET /stats reports a collection's dimension from it.
 *
 * SECURITY DEFINER with a fixed search_path: a writer that may write the chunk table (the Python
 * service's role, say) needs no privilege on chunk_counts.
 *
 * Backfill and trigger creation happen in this migration's transaction, after taking SHARE ROW
 * EXCLUSIVE on langchain_pg_embedding: writers wait for the one grouping scan, readers and searches
 * go on, no row is rewritten. The lock is waited for at most LOCK_TIMEOUT (support/lock-timeout.ts).
 * Frozen history: no entity imports.
 */
export class AddChunkCounts1764000000004 implements MigrationInterface {
  name = 'AddChunkCounts1764000000004';

  public async up(q: QueryRunner): Promise<void> {
    await boundLockWaits(q);
    await q.query(`LOCK TABLE langchain_pg_embedding IN SHARE ROW EXCLUSIVE MODE`);
    await q.query(`
      CREATE TABLE chunk_counts (
        collection_id uuid,
        document_id text,
        n bigint NOT NULL,
        vectors bigint NOT NULL,
        dims integer
      )`);
    await q.query(`CREATE UNIQUE INDEX chunk_counts_key ON chunk_counts (${CHUNK_COUNTS_KEY})`);
    for (const [column, text] of COMMENTS) {
      const target = column ? `COLUMN chunk_counts.${column}` : `TABLE chunk_counts`;
      await q.query(`COMMENT ON ${target} IS '${text.replace(/'/g, "''")}'`);
    }
    await q.query(BACKFILL_SQL);

    await q.query(trackFunctionSql(await chunkCountsSearchPath(q)));
    for (const [name, definition] of CHUNK_COUNT_TRIGGERS) {
      await q.query(`CREATE TRIGGER ${name} ${definition} EXECUTE FUNCTION chunk_counts_track()`);
    }
  }

  public async down(q: QueryRunner): Promise<void> {
    // Its ACCESS EXCLUSIVE locks wait at most LOCK_TIMEOUT, as up()'s do: not every reader queued behind an idle writer.
    await boundLockWaits(q);
    for (const [name] of CHUNK_COUNT_TRIGGERS) {
      await q.query(`DROP TRIGGER IF EXISTS ${name} ON langchain_pg_embedding`);
    }
    await q.query(`DROP FUNCTION IF EXISTS chunk_counts_track()`);
    await q.query(`DROP TABLE IF EXISTS chunk_counts`);
  }
}

/**
 * The unique key of a group. PostgreSQL 13 has no NULLS NOT DISTINCT, and NULL collection ids and
 * document ids are groups too: each nullable column is keyed by (is null, value or a filler), which
 * no two different values share. dims is not part of the key.
 */
export const CHUNK_COUNTS_KEY =
  `(collection_id IS NULL), COALESCE(collection_id, '00000000-0000-0000-0000-000000000000'::uuid), ` +
  `(document_id IS NULL), COALESCE(document_id, ''::text)`;

/** One row per group of the existing chunks; a group's dimension from one stored vector (a TID fetch). */
const BACKFILL_SQL = `
  INSERT INTO chunk_counts (collection_id, document_id, n, vectors, dims)
  SELECT g.collection_id, g.document_id, g.n, g.vectors,
         (SELECT vector_dims(e.embedding) FROM langchain_pg_embedding e WHERE e.ctid = g.sample::tid)
    FROM (SELECT collection_id, cmetadata->>'document_id' AS document_id, count(*) AS n,
                 count(*) FILTER (WHERE embedding IS NOT NULL) AS vectors,
                 -- min(tid) needs PostgreSQL 14; any one row will do, so its text form is compared.
                 min(ctid::text) FILTER (WHERE embedding IS NOT NULL) AS sample
            FROM langchain_pg_embedding
           GROUP BY 1, 2) g`;

/**
 * The search_path of the trigger function: schema names from the catalog, quoted by quote_ident,
 * so the function resolves chunk_counts and vector_dims there and nowhere else (pg_temp last, so no
 * session can shadow chunk_counts).
 */
export async function chunkCountsSearchPath(q: QueryRunner): Promise<string> {
  const [{ search_path }] = (await q.query(
    `SELECT quote_ident(current_schema()) || coalesce(', ' || (
              SELECT quote_ident(n.nspname) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
               WHERE e.extname = 'vector' AND n.nspname <> current_schema()), '') || ', pg_temp' AS search_path`,
  )) as Array<{ search_path: string }>;
  return search_path;
}

/**
 * The trigger function, one for the four triggers. A statement's rows are aggregated into one
 * delta per group (+1 per new row, −1 per old row; an UPDATE that keeps a chunk in its group nets
 * zero and writes nothing unless it wrote vectors of another dimension), then applied in key
 * order with one upsert; rows whose count reaches zero are deleted by ctid (this transaction holds
 * their lock). TRUNCATE empties the summary.
 *
 * `skipUnchangedDimensions` (SkipUnchangedChunkCountGroups): a group whose count does not change is
 * left out when its new vectors have the dimension its row already records, instead of whenever
 * they have one. Left in, its row was locked (ON CONFLICT DO UPDATE locks the row even when its
 * WHERE is false), so a LangChain upsert rewriting chunks in place locked their groups.
 */
export function trackFunctionSql(
  searchPath: string,
  { replace = false, skipUnchangedDimensions = false }: { replace?: boolean; skipUnchangedDimensions?: boolean } = {},
): string {
  const groupNew = `SELECT collection_id, cmetadata->>'document_id' AS document_id, 1 AS n,
                           (embedding IS NOT NULL)::int AS vectors, vector_dims(embedding) AS dims FROM new_rows`;
  const groupOld = `SELECT collection_id, cmetadata->>'document_id' AS document_id, -1 AS n,
                           -(embedding IS NOT NULL)::int AS vectors, NULL::int AS dims FROM old_rows`;
  const collect = (rows: string): string => `
    SELECT array_agg(collection_id ORDER BY o), array_agg(document_id ORDER BY o),
           array_agg(n ORDER BY o), array_agg(vectors ORDER BY o), array_agg(dims ORDER BY o)
      INTO k_collection, k_document, k_n, k_vectors, k_dims
      FROM (SELECT collection_id, document_id, sum(n) AS n, sum(vectors) AS vectors, max(dims) AS dims,
                   row_number() OVER (ORDER BY collection_id, document_id) AS o
              FROM (${rows}) r
             GROUP BY collection_id, document_id
            HAVING sum(n) <> 0 OR sum(vectors) <> 0 OR ${
              skipUnchangedDimensions
                ? `max(dims) IS DISTINCT FROM (
                     SELECT c.dims FROM chunk_counts c
                      WHERE (c.collection_id IS NULL) = (r.collection_id IS NULL)
                        AND COALESCE(c.collection_id, '00000000-0000-0000-0000-000000000000'::uuid)
                          = COALESCE(r.collection_id, '00000000-0000-0000-0000-000000000000'::uuid)
                        AND (c.document_id IS NULL) = (r.document_id IS NULL)
                        AND COALESCE(c.document_id, ''::text) = COALESCE(r.document_id, ''::text))
                   AND max(dims) IS NOT NULL`
                : 'max(dims) IS NOT NULL'
            }) g`;
  return `
    CREATE ${replace ? 'OR REPLACE ' : ''}FUNCTION chunk_counts_track() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${searchPath} AS $fn$
    DECLARE
      k_collection uuid[]; k_document text[]; k_n bigint[]; k_vectors bigint[]; k_dims integer[];
      emptied tid[];
    BEGIN
      IF TG_OP = 'TRUNCATE' THEN
        DELETE FROM chunk_counts;
        RETURN NULL;
      ELSIF TG_OP = 'INSERT' THEN
        ${collect(groupNew)};
      ELSIF TG_OP = 'DELETE' THEN
        ${collect(groupOld)};
      ELSE
        ${collect(`${groupNew} UNION ALL ${groupOld}`)};
      END IF;
      IF k_n IS NULL THEN
        RETURN NULL;
      END IF;
      WITH applied AS (
        INSERT INTO chunk_counts AS c (collection_id, document_id, n, vectors, dims)
        SELECT d.collection_id, d.document_id, d.n, d.vectors, d.dims
          FROM unnest(k_collection, k_document, k_n, k_vectors, k_dims) WITH ORDINALITY
               AS d(collection_id, document_id, n, vectors, dims, o)
         ORDER BY d.o
        ON CONFLICT (${CHUNK_COUNTS_KEY}) DO UPDATE
          SET n = c.n + excluded.n,
              vectors = c.vectors + excluded.vectors,
              dims = CASE WHEN c.vectors + excluded.vectors > 0 THEN coalesce(excluded.dims, c.dims) END
          WHERE excluded.n <> 0 OR excluded.vectors <> 0 OR excluded.dims <> c.dims
        RETURNING c.ctid, c.n
      )
      SELECT array_agg(ctid) FILTER (WHERE n = 0) INTO emptied FROM applied;
      IF emptied IS NOT NULL THEN
        DELETE FROM chunk_counts WHERE ctid = ANY (emptied);
      END IF;
      RETURN NULL;
    END
    $fn$`;
}

/** [trigger name, "AFTER … ON langchain_pg_embedding …"]: fixed literals. */
export const CHUNK_COUNT_TRIGGERS: ReadonlyArray<readonly [string, string]> = [
  [
    'chunk_counts_after_insert',
    'AFTER INSERT ON langchain_pg_embedding REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT',
  ],
  [
    'chunk_counts_after_update',
    'AFTER UPDATE ON langchain_pg_embedding REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT',
  ],
  [
    'chunk_counts_after_delete',
    'AFTER DELETE ON langchain_pg_embedding REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT',
  ],
  ['chunk_counts_after_truncate', 'AFTER TRUNCATE ON langchain_pg_embedding FOR EACH STATEMENT'],
];

const COMMENTS: ReadonlyArray<readonly [string | null, string]> = [
  [
    null,
    'Chunks per (collection, cmetadata document_id), kept exact by triggers on langchain_pg_embedding; read by GET /stats',
  ],
  ['collection_id', 'langchain_pg_embedding.collection_id of the group (NULL is a group)'],
  ['document_id', "cmetadata->>'document_id' of the group (NULL is a group)"],
  ['n', 'Number of chunks in the group (rows at zero are deleted)'],
  ['vectors', 'Chunks of the group whose embedding is not NULL'],
  ['dims', 'Dimension of the vectors last written to the group; NULL when it has none'],
];
