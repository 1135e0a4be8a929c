import type { MigrationInterface, QueryRunner } from 'typeorm';
import { buildIndexConcurrently } from './support/concurrent-index.js';

/**
 * An exact index for metadata equalities (`{"field": value}` / `$eq` in a search filter):
 * `chunk_metadata_terms(cmetadata)` lists one text term per (top-level key, scalar value), and a
 * GIN index over it (array_ops) answers `chunk_metadata_terms(cmetadata) @> chunk_metadata_terms('{"f": v}')`.
 *
 * The terms follow the lax jsonpath test `$."f" == v` that LangChain Python's `$eq` compiles to, so
 * the two select the same rows (test/filter.e2e-spec.ts compares them on the tricky cases):
 * - a top-level list of objects counts as each of its objects (lax `$.f` unwraps one level);
 * - a list value counts as each of its elements, one level deep (lax `==` unwraps its operand);
 * - strings, booleans and null compare as themselves and never equal another type;
 * - numbers compare as numerics: 5, 5.0 and 5.00 give the same term (trim_scale), 0 and -0 too.
 * The key is written as a JSON string, so where it ends is unambiguous.
 *
 * Why: ix_cmetadata_gin (jsonb_path_ops, LangChain's own index) stores hashes, so every row it
 * returns is read and the jsonpath evaluated again; this index stores the terms themselves and its
 * matches need no recheck. At 100,000 chunks an exact search with a filter takes about a quarter
 * less time, and next to an HNSW index the planner can answer a filter few chunks pass exactly from
 * it; each chunk written costs about 60 µs more (docs/PERFORMANCE.md, docs/FILTERS.md).
 *
 * plpgsql, because a set-based SQL body cost twice as much per row, and every chunk write pays it.
 * Only pg_catalog functions are called, so a restore with an empty search_path rebuilds the index.
 *
 * Built CONCURRENTLY (outside a transaction) so chunk writers are not blocked while it builds; an
 * INVALID leftover of a failed build is dropped and rebuilt. Frozen history: no entity imports.
 */
export class AddMetadataTermsIndex1764000000005 implements MigrationInterface {
  name = 'AddMetadataTermsIndex1764000000005';
  transaction = false as const;

  public async up(q: QueryRunner): Promise<void> {
    await q.query(TERMS_FUNCTION_SQL);
    await buildIndexConcurrently(
      q,
      'ix_cmetadata_terms',
      'langchain_pg_embedding USING gin (chunk_metadata_terms(cmetadata))',
    );
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX CONCURRENTLY IF EXISTS ix_cmetadata_terms`);
    await q.query(`DROP FUNCTION IF EXISTS chunk_metadata_terms(jsonb)`);
  }
}

/** The term of one JSON value (an expression over `value`); NULL for a list or an object. */
function scalarTerm(value: string): string {
  return `CASE pg_catalog.jsonb_typeof(${value})
          WHEN 'string' THEN 's' || (${value} #>> '{}')
          WHEN 'number' THEN 'n' || pg_catalog.trim_scale((${value} #>> '{}')::numeric)::text
          WHEN 'boolean' THEN 'b' || (${value} #>> '{}')
          WHEN 'null' THEN 'z'
        END`;
}

// A NULL term (a list or an object) is appended and removed once at the end: cheaper than a test
// per value. Exported for HashLongMetadataTerms's down(), which restores this definition.
export const TERMS_FUNCTION_SQL = `
CREATE OR REPLACE FUNCTION chunk_metadata_terms(metadata jsonb) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $body$
DECLARE
  terms text[] := '{}';
  objects jsonb;
  field record;
BEGIN
  CASE pg_catalog.jsonb_typeof(metadata)
    WHEN 'object' THEN objects := pg_catalog.jsonb_build_array(metadata);
    WHEN 'array' THEN objects := pg_catalog.jsonb_path_query_array(metadata, 'strict $[*] ? (@.type() == "object")');
    ELSE RETURN terms;
  END CASE;
  FOR o IN 0 .. pg_catalog.jsonb_array_length(objects) - 1 LOOP
    FOR field IN SELECT e.key, e.value FROM pg_catalog.jsonb_each(objects -> o) AS e LOOP
      IF pg_catalog.jsonb_typeof(field.value) = 'array' THEN
        FOR i IN 0 .. pg_catalog.jsonb_array_length(field.value) - 1 LOOP
          terms := terms || (pg_catalog.to_json(field.key)::text || ${scalarTerm('(field.value -> i)')});
        END LOOP;
      ELSE
        terms := terms || (pg_catalog.to_json(field.key)::text || ${scalarTerm('field.value')});
      END IF;
    END LOOP;
  END LOOP;
  RETURN pg_catalog.array_remove(terms, NULL);
END
$body$`;
