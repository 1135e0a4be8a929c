/**
 * The two definitions of `chunk_metadata_terms(jsonb)`, the function behind ix_cmetadata_terms
 * (AddMetadataTermsIndex explains the terms; HashLongMetadataTerms the digest of a long one). Frozen
 * history, like the migrations that use them: a new definition is a new constant and a new migration.
 */

/**
 * The longest term, in bytes, that `chunk_metadata_terms` keeps as it is; a longer one becomes a
 * digest term. A GIN entry must fit in a third of a page (2,712 bytes with 8 KB pages; PostgreSQL
 * first tries to compress a key above 512 bytes, so a long but repetitive value used to pass and a
 * long random one did not). 1,000 bytes is well under that limit, with room for the entry's header
 * and posting list, and a term that long is a text (a summary, a heading), rarely a filter value.
 */
export const MAX_TERM_BYTES = 1000;

/** The term of one JSON value (an expression over `value`); NULL for a list or an object. */
function scalarTerm(value: string): string {
  return `CASE pg_catalog.jsonb_typeof(${value})
          WHEN 'string' THEN 's' || (${value} #>> '{}')
          WHEN 'number' THEN 'n' || pg_catalog.trim_scale((${value} #>> '{}')::numeric)::text
          WHEN 'boolean' THEN 'b' || (${value} #>> '{}')
          WHEN 'null' THEN 'z'
        END`;
}

/**
 * The function, with `append(value)` as the statements that add the term of `field.key` and the
 * JSON `value` to `terms` (declaring `term text` when `usesTerm`). A NULL term (a list or an object)
 * is appended and removed once at the end: cheaper than a test per value.
 */
function termsFunctionSql(append: (value: string) => string, usesTerm: boolean): string {
  return `
CREATE OR REPLACE FUNCTION chunk_metadata_terms(metadata jsonb) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $body$
DECLARE
  terms text[] := '{}';${usesTerm ? '\n  term text;' : ''}
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
          ${append('(field.value -> i)')}
        END LOOP;
      ELSE
        ${append('field.value')}
      END IF;
    END LOOP;
  END LOOP;
  RETURN pg_catalog.array_remove(terms, NULL);
END
$body$`;
}

/** AddMetadataTermsIndex's definition until HashLongMetadataTerms: every term as it is. Its down() restores it. */
export const UNBOUNDED_TERMS_FUNCTION_SQL = termsFunctionSql(
  (value) => `terms := terms || (pg_catalog.to_json(field.key)::text || ${scalarTerm(value)});`,
  false,
);

/**
 * The definition since HashLongMetadataTerms: a term longer than MAX_TERM_BYTES is its digest (a
 * NULL term skips the test, octet_length being NULL).
 */
export const BOUNDED_TERMS_FUNCTION_SQL = termsFunctionSql(
  (value) => `term := pg_catalog.to_json(field.key)::text || ${scalarTerm(value)};
          IF pg_catalog.octet_length(term) > ${MAX_TERM_BYTES} THEN
            term := '#' || pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(term, 'UTF8')), 'hex');
          END IF;
          terms := terms || term;`,
  true,
);
