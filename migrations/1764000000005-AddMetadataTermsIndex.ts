import type { MigrationInterface, QueryRunner } from 'typeorm';
import { buildIndexConcurrently } from './support/concurrent-index.js';
import { BOUNDED_TERMS_FUNCTION_SQL } from './support/metadata-terms.js';

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
    // The definition HashLongMetadataTerms brought, not this migration's first one: with that one a
    // database holding a metadata value of more than about 2.7 KB that does not compress (which the
    // Python service may have written) could not be adopted, the index build failing on it. The
    // terms are otherwise the same, and HashLongMetadataTerms then keeps this definition.
    await q.query(BOUNDED_TERMS_FUNCTION_SQL);
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
