import pg from 'pg';
import type { DataSource } from 'typeorm';

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
  return parseIsoTimestamp(text, false);
}

/** parseTimestamp for a `timestamp` that is a wall-clock time in UTC: Date.UTC instead of local fields. */
export function parseUtcTimestamp(text: string): unknown {
  return parseIsoTimestamp(text, true);
}

/** The one parse behind parseTimestamp and parseUtcTimestamp: the fields read as local time or as UTC. */
function parseIsoTimestamp(text: string, utc: boolean): unknown {
  if (!ISO_TIMESTAMP.test(text)) return utc ? localToUtc(parseTimestampSlowly(text)) : parseTimestampSlowly(text);
  // Two ASCII digits at `at` (the expression has checked they are digits): no substring per field.
  const pair = (at: number): number => (text.charCodeAt(at) - 48) * 10 + text.charCodeAt(at + 1) - 48;
  // postgres-date: `1000 * parseFloat('.123456')`, then the Date constructor truncates.
  const ms = text.length > 19 ? 1000 * parseFloat(text.slice(19)) : 0;
  const year = pair(0) * 100 + pair(2);
  const month = pair(5) - 1;
  return utc
    ? new Date(Date.UTC(year, month, pair(8), pair(11), pair(14), pair(17), ms))
    : new Date(year, month, pair(8), pair(11), pair(14), pair(17), ms);
}

/** The instant whose UTC fields are the local fields of `value` (a Date from postgres-date), else `value`. */
function localToUtc(value: unknown): unknown {
  return value instanceof Date ? new Date(value.getTime() - value.getTimezoneOffset() * 60_000) : value;
}

/** Time zone names PostgreSQL may report for UTC. */
const UTC_ZONES = /^(?:Etc\/)?(?:UTC|UCT|GMT|GMT[+-]?0|Universal|Zulu|Greenwich)$/i;

/**
 * The parser of `timestamp` text written as wall-clock time in `zone`, a PostgreSQL TimeZone
 * setting: parseUtcTimestamp for UTC, parseTimestamp when it is this process's own zone, else the
 * UTC reading moved by the zone's offset at that time (looked up through Intl once per hour of
 * wall-clock time; a wall-clock time inside the hour a daylight-saving change skips or repeats takes
 * that hour's offset). A zone Intl does not know (a POSIX zone such as `<+07>-07`) takes
 * `offsetSeconds`, its offset now.
 */
export function timestampParserFor(zone: string, offsetSeconds: number): TextParser {
  if (UTC_ZONES.test(zone)) return parseUtcTimestamp;
  if (zone === Intl.DateTimeFormat().resolvedOptions().timeZone) return parseTimestamp;
  let offsetAt: (utcMs: number) => number;
  try {
    const format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    offsetAt = (utcMs) => {
      const fields: Record<string, number> = {};
      for (const part of format.formatToParts(utcMs)) fields[part.type] = Number(part.value);
      const wall = Date.UTC(fields.year, fields.month - 1, fields.day, fields.hour, fields.minute, fields.second);
      return wall - Math.floor(utcMs / 1000) * 1000;
    };
  } catch {
    offsetAt = () => offsetSeconds * 1000;
  }
  const offsetByHour = new Map<number, number>();
  return (text) => {
    const utc = parseUtcTimestamp(text);
    if (!(utc instanceof Date) || Number.isNaN(utc.getTime())) return utc;
    const wall = utc.getTime();
    const hour = Math.floor(wall / 3_600_000);
    let offset = offsetByHour.get(hour);
    if (offset === undefined) {
      // The offset at the instant the wall-clock time names: a first guess, then the offset there.
      offset = offsetAt(wall - offsetAt(wall));
      if (offsetByHour.size >= 10_000) offsetByHour.clear();
      offsetByHour.set(hour, offset);
    }
    return new Date(wall - offset);
  };
}

/**
 * pg's type parsers with a `timestamp` parser of the database session's TimeZone: the `types` of
 * one DataSource's pools. `documents.created_at` and `updated_at` are `timestamp without time zone`
 * (as the Python service created them), filled by the database's `now()` as wall-clock time in the
 * session's TimeZone; pg reads such a value as wall-clock time of the Node process's zone, which is
 * another instant when the two zones differ (PGlite's is always UTC, a laptop's seldom is).
 * Until useTimeZone is called, the process's zone.
 */
export class PgTypes {
  private timestampParser: TextParser = parseTimestamp;

  getTypeParser(oid: number, format: 'text' | 'binary' = 'text'): TextParser {
    return oid === TIMESTAMP_OID && format === 'text'
      ? this.timestampParser
      : (pg.types.getTypeParser(oid, format) as TextParser);
  }

  /** Reads `timestamp` values from now on as wall-clock times of `zone` (see timestampParserFor). */
  useTimeZone(zone: string, offsetSeconds: number): void {
    this.timestampParser = timestampParserFor(zone, offsetSeconds);
  }
}

/**
 * Makes the DataSource's PgTypes read `timestamp` values in its sessions' TimeZone (every connection
 * of a pool starts with the same one). Call once the DataSource is initialized.
 */
export async function readTimestampsInSessionTimeZone(dataSource: DataSource): Promise<void> {
  const types = (dataSource.options.extra as { types?: unknown } | undefined)?.types;
  if (!(types instanceof PgTypes)) return;
  const [row] = await dataSource.query<Array<{ zone: string; offset: number }>>(
    `SELECT current_setting('TimeZone') AS zone, extract(timezone FROM now())::int AS offset`,
  );
  types.useTimeZone(row.zone, Number(row.offset));
}
