import type { MigrationInterface, QueryRunner } from 'typeorm';
import { buildIndexConcurrently, indexState } from './support/concurrent-index.js';
import { BOUNDED_TERMS_FUNCTION_SQL, UNBOUNDED_TERMS_FUNCTION_SQL } from './support/metadata-terms.js';

/**
 * Before: `chunk_metadata_terms` (AddMetadataTermsIndex) put every (key, value) term into
 * ix_cmetadata_terms as it is, so a chunk whose metadata held a string of more than about 2.7 KB
 * that does not compress well (a long random heading, a summary) could not be written at all, by
 * anyone (this service, LangChain, COPY): "index row size … exceeds maximum 2712 for index
 * ix_cmetadata_terms" (above 8 KB "index row requires … bytes, maximum size is 8191"), which the
 * service answered as 400 "A value is too large", naming no field.
 *
 * Now a term longer than MAX_TERM_BYTES (support/metadata-terms.ts) is replaced by `'#'` and the hex SHA-256 of the whole term
 * (65 bytes). No term written as it is begins with `#` (each begins with its key as a JSON string,
 * `"`), so a digest never equals a short term; shorter terms are exactly what they were. SHA-256
 * rather than md5: the index answers without a recheck, so two values whose digests collide would
 * match each other's filters, and md5 collisions can be made on purpose (md5 may also be disabled on
 * a FIPS server). Equality filters keep working for long values: the search computes the terms of
 * `{"field": value}` with the same function (`chunk_metadata_terms(m) @> chunk_metadata_terms($n)`).
 * Only pg_catalog functions are called, so a restore with an empty search_path rebuilds the index
 * (convert_to, marked STABLE, gives the same bytes for the same text in a given database).
 *
 * The index is rebuilt after the function is replaced: its entries for long values that did fit
 * (compressible ones) were computed by the old function, and a search for such a value computes the
 * digest now. REINDEX INDEX CONCURRENTLY (outside a transaction, as the index was built) keeps chunk
 * writers and searches going meanwhile (the embedded database, a single session, runs the same
 * statement, as it does buildIndexConcurrently's CREATE INDEX CONCURRENTLY); until it finishes, a chunk written before with a term longer
 * than MAX_TERM_BYTES is not found through the index by that equality. A failed rebuild leaves an
 * INVALID copy (`ix_cmetadata_terms_ccnew`, or `_ccold` after the swap): the next run drops it and
 * rebuilds again. Frozen history: no entity imports.
 */
export class HashLongMetadataTerms1764000000008 implements MigrationInterface {
  name = 'HashLongMetadataTerms1764000000008';
  transaction = false as const;

  public async up(q: QueryRunner): Promise<void> {
    await q.query(BOUNDED_TERMS_FUNCTION_SQL);
    await rebuildTermsIndex(q);
  }

  /**
   * Back to AddMetadataTermsIndex's function, and the index rebuilt with it. Fails (and can be run
   * again afterwards) while a chunk holds a long value that the old function cannot index: the very
   * chunks this migration made writable; shorten or delete them first. Without a transaction around
   * it, the old function would stay after such a failure while the migration stays recorded (new
   * long values unwritable again, long ones stored before missed through the index): so the bounded
   * function is put back and the index left as up() made it before the error is rethrown.
   */
  public async down(q: QueryRunner): Promise<void> {
    await q.query(UNBOUNDED_TERMS_FUNCTION_SQL);
    try {
      await rebuildTermsIndex(q);
    } catch (error) {
      await q.query(BOUNDED_TERMS_FUNCTION_SQL);
      await dropFailedRebuilds(q);
      if ((await indexState(q, 'ix_cmetadata_terms')) !== 'valid') await rebuildTermsIndex(q);
      throw error;
    }
  }
}

/** Rebuilds ix_cmetadata_terms from the current function, without blocking chunk writers. */
async function rebuildTermsIndex(q: QueryRunner): Promise<void> {
  await dropFailedRebuilds(q);
  if ((await indexState(q, 'ix_cmetadata_terms')) === 'valid') {
    await q.query(`REINDEX INDEX CONCURRENTLY ix_cmetadata_terms`);
  } else {
    // Missing, or INVALID after a failed build: dropped and built anew (from the current function).
    await buildIndexConcurrently(
      q,
      'ix_cmetadata_terms',
      'langchain_pg_embedding USING gin (chunk_metadata_terms(cmetadata))',
    );
  }
}

/** Drops what a failed REINDEX CONCURRENTLY leaves behind: an INVALID copy under a suffixed name. */
async function dropFailedRebuilds(q: QueryRunner): Promise<void> {
  const leftovers = (await q.query(
    `SELECT c.relname AS name FROM pg_index i
       JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND NOT i.indisvalid AND c.relname ~ '^ix_cmetadata_terms_cc(new|old)[0-9]*$'
      ORDER BY 1`,
  )) as Array<{ name: string }>;
  for (const { name } of leftovers) await q.query(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`);
}
