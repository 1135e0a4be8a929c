import pg from 'pg';

/** The oid of `timestamp` (without time zone), fixed in every PostgreSQL. */
const TIMESTAMP_OID = 1114;
type TextParser = (text: string) => unknown;

/** pg's own parser for `timestamp` text (pg types it loosely). */
const parseTimestampSlowly = pg.types.getTypeParser(TIMESTAMP_OID, 'text') as TextParser;

/** What PostgreSQL writes for a `timestamp` under DateStyle ISO, years 1000 to 9999. */
const ISO_TIMESTAMP = /^[1-9]\d{3}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d{1,6})?$/;

/**
 * pg's parser for `timestamp` (postgres-date), minus its general regular expressions for the one
 * shape PostgreSQL writes: the same Date, built from the same local-time fields with the same
 * millisecond arithmetic. Anything else (BC, infinity, years before 1000) goes to pg's own parser.
 * `documents.created_at` and `updated_at` are such columns (as the Python service created them): a
 * page of 50 documents is 100 values, and postgres-date took 0.11 ms of the 1.2 ms of CPU a
 * `GET /documents?limit=50` costs (CPU profile, docs/PERFORMANCE.md).
 */
export function parseTimestamp(text: string): unknown {
  if (!ISO_TIMESTAMP.test(text)) return parseTimestampSlowly(text);
  // Two ASCII digits at `at` (the expression has checked they are digits): no substring per field.
  const pair = (at: number): number => (text.charCodeAt(at) - 48) * 10 + text.charCodeAt(at + 1) - 48;
  // postgres-date: `1000 * parseFloat('.123456')`, then the Date constructor truncates.
  const ms = text.length > 19 ? 1000 * parseFloat(text.slice(19)) : 0;
  return new Date(pair(0) * 100 + pair(2), pair(5) - 1, pair(8), pair(11), pair(14), pair(17), ms);
}

/** pg's type parsers with parseTimestamp for `timestamp` text values: the `types` of every pool. */
export const PG_TYPES = {
  getTypeParser: (oid: number, format: 'text' | 'binary' = 'text'): TextParser =>
    oid === TIMESTAMP_OID && format === 'text' ? parseTimestamp : (pg.types.getTypeParser(oid, format) as TextParser),
};
