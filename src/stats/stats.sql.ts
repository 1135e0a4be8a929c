/**
 * The statements behind GET /stats, exported so that bench/stats-million.mjs times exactly what the
 * service runs. All are read-only, grouped aggregates: none loops over rows in JavaScript, none runs
 * a subquery per chunk. The service runs them in one REPEATABLE READ READ ONLY transaction, so the
 * figures come from one snapshot and agree with each other.
 */

/** Documents counted per type, per category and per status in one pass (GROUPING SETS). */
export const DOCUMENTS_SQL = `
SELECT GROUPING(document_type) = 0 AS by_type,
       GROUPING(category) = 0 AS by_category,
       GROUPING(status) = 0 AS by_status,
       document_type, category, status,
       count(*)::bigint AS n
  FROM documents
 GROUP BY GROUPING SETS ((document_type), (category), (status), ())`;

/**
 * Everything about chunks, from the summary table chunk_counts (migration AddChunkCounts): one row
 * per (collection, cmetadata->>'document_id') with its number of chunks and its vector dimension,
 * kept exact by triggers on langchain_pg_embedding whoever writes it. A few thousand rows instead
 * of a scan of every chunk's JSONB; the figures are those CHUNKS_SCAN_SQL computes:
 * - chunks per collection, and the total;
 * - the dimension of each collection (of the groups that have vectors);
 * - the orphan figures, from a hash full join between the per-document sums and `documents`.
 * Chunks whose collection_id is null count in the total only.
 */
export const CHUNKS_SQL = chunksSql('SELECT collection_id, document_id, n, dims FROM chunk_counts');

/**
 * The same figures by scanning langchain_pg_embedding once, for a database where chunk_counts does
 * not exist yet (AddChunkCounts pending). The dimension is read from ONE stored vector per
 * collection: the scan keeps the smallest ctid of a row whose embedding is not null (a null check,
 * the vectors are never read), and a TID scan reads that single row.
 */
export const CHUNKS_SCAN_SQL = chunksSql(`
  SELECT g.collection_id, g.document_id, g.n,
         (SELECT vector_dims(e.embedding) FROM langchain_pg_embedding e WHERE e.ctid = g.sample) AS dims
    FROM (SELECT collection_id, cmetadata->>'document_id' AS document_id, count(*)::bigint AS n,
                 min(ctid) FILTER (WHERE embedding IS NOT NULL) AS sample
            FROM langchain_pg_embedding
           GROUP BY 1, 2) g`);

/** `groups`: rows of (collection_id, document_id, n, dims), one per group; dims null without vectors. */
function chunksSql(groups: string): string {
  return `
WITH groups AS MATERIALIZED (${groups}),
per_collection AS (
  SELECT collection_id, sum(n)::bigint AS n, min(dims) AS dims
    FROM groups
   GROUP BY collection_id
),
per_document AS (
  SELECT document_id, sum(n)::bigint AS n
    FROM groups
   GROUP BY document_id
),
orphans AS (
  SELECT coalesce(sum(p.n) FILTER (WHERE d.document_id IS NULL), 0)::bigint AS chunks_without_document,
         count(*) FILTER (WHERE d.document_id IS NOT NULL AND p.document_id IS NULL)::bigint AS documents_without_chunks,
         count(*) FILTER (
           WHERE d.document_id IS NOT NULL AND coalesce(d.total_chunks, 0) <> coalesce(p.n, 0)
         )::bigint AS total_chunks_mismatch
    FROM per_document p
    FULL JOIN documents d ON d.document_id = p.document_id
),
collections AS (
  SELECT c.name, coalesce(pc.n, 0)::bigint AS n, pc.dims
    FROM langchain_pg_collection c
    LEFT JOIN per_collection pc ON pc.collection_id = c.uuid
)
SELECT (SELECT coalesce(sum(n), 0)::bigint FROM groups) AS total,
       (SELECT coalesce(json_agg(json_build_object('name', name, 'n', n, 'dims', dims) ORDER BY name), '[]'::json)
          FROM collections) AS collections,
       o.chunks_without_document, o.documents_without_chunks, o.total_chunks_mismatch
  FROM orphans o`;
}

/**
 * Whether the migrations table ($1, a fixed constant) and chunk_counts exist, in one round trip:
 * without chunk_counts (AddChunkCounts not applied yet) the service falls back to CHUNKS_SCAN_SQL.
 */
export const TABLES_PRESENT_SQL = `SELECT to_regclass($1) IS NOT NULL AS migrations, to_regclass('chunk_counts') IS NOT NULL AS chunk_counts`;

/** Applied migrations, newest first. `table` is MIGRATIONS_TABLE, a fixed constant, never input. */
export function appliedMigrationsSql(table: string): string {
  return `SELECT name FROM "${table.replace(/"/g, '""')}" ORDER BY "timestamp" DESC, id DESC`;
}

/** Server version and the installed pgvector version (null when the extension is absent). */
export const DATABASE_SQL = `
SELECT current_setting('server_version') AS server_version,
       (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgvector_version`;
