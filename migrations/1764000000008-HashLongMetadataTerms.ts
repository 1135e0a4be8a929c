import type { MigrationInterface, QueryRunner } from 'typeorm';
import { TERMS_FUNCTION_SQL as UNBOUNDED_TERMS_FUNCTION_SQL } from './1764000000005-AddMetadataTermsIndex.js';
import { buildIndexConcurrently, indexState } from './support/concurrent-index.js';

/**
 * The longest term, in bytes, that `chunk_metadata_terms` keeps as it is; a longer one becomes a
 * digest term. A GIN entry must fit in a third of a page (2,712 bytes with 8 KB pages; PostgreSQL
 * first tries to compress a key above 512 bytes, so a long but repetitive value used to pass and a
 * long random one did not). 1,000 bytes is well under that limit, with room for the entry's header
 * and posting list, and a term that long is a text (a summary, a heading), rarely a filter value.
 */
export const MAX_TERM_BYTES = 1000;

/**
 * Before: `chunk_metadata_terms` (AddMetadataTermsIndex) put every (key, value) term into
 * ix_cmetadata_terms as it is, so a chunk whose metadata held a string of more than about 2.7 KB
 * that does not compress well (a long random heading, a summary) could not be written at all, by
 * anyone (this service, LangChain, COPY): "index row size … exceeds maximum 2712 for index
 * ix_cmetadata_terms" (above 8 KB "index row requires … bytes, maximum size is 8191"), which the
 * service answered as 400 "A value is too large", naming no field.
 *
 * Now a term longer than MAX_TERM_BYTES is replaced by `'#'` and the hex SHA-256 of the whole term
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
   * chunks this migration made writable; shorten or delete them first.
   */
  public async down(q: QueryRunner): Promise<void> {
    await q.query(UNBOUNDED_TERMS_FUNCTION_SQL);
    await rebuildTermsIndex(q);
  }
}

/** Rebuilds ix_cmetadata_terms from the current function, without blocking chunk writers. */
async function rebuildTermsIndex(q: QueryRunner): Promise<void> {
  // What a failed REINDEX CONCURRENTLY leaves behind: an INVALID copy under a suffixed name.
  const leftovers = (await q.query(
    `SELECT c.relname AS name FROM pg_index i
       JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND NOT i.indisvalid AND c.relname ~ '^ix_cmetadata_terms_cc(new|old)[0-9]*$'
      ORDER BY 1`,
  )) as Array<{ name: string }>;
  for (const { name } of leftovers) await q.query(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`);
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

/** The term of one JSON value (an expression over `value`); NULL for a list or an object. */
function scalarTerm(value: string): string {
  return `CASE pg_catalog.jsonb_typeof(${value})
          WHEN 'string' THEN 's' || (${value} #>> '{}')
          WHEN 'number' THEN 'n' || pg_catalog.trim_scale((${value} #>> '{}')::numeric)::text
          WHEN 'boolean' THEN 'b' || (${value} #>> '{}')
          WHEN 'null' THEN 'z'
        END`;
}

/** Appends the term of `field.key` and `value`, or its digest when it is longer than MAX_TERM_BYTES. */
function appendTerm(value: string): string {
  return `term := pg_catalog.to_json(field.key)::text || ${scalarTerm(value)};
          IF pg_catalog.octet_length(term) > ${MAX_TERM_BYTES} THEN
            term := '#' || pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(term, 'UTF8')), 'hex');
          END IF;
          terms := terms || term;`;
}

// AddMetadataTermsIndex's function (the same terms, the same lax jsonpath rules: see there), with
// the digest of a long term. A NULL term (a list or an object) skips the digest (octet_length NULL)
// and is removed once at the end.
const BOUNDED_TERMS_FUNCTION_SQL = `
CREATE OR REPLACE FUNCTION chunk_metadata_terms(metadata jsonb) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $body$
DECLARE
  terms text[] := '{}';
  term text;
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
          ${appendTerm('(field.value -> i)')}
        END LOOP;
      ELSE
        ${appendTerm('field.value')}
      END IF;
    END LOOP;
  END LOOP;
  RETURN pg_catalog.array_remove(terms, NULL);
END
$body$`;
