import pg from 'pg';
import { parseTimestamp, parseUtcTimestamp, PgTypes, timestampParserFor } from './pg-types.js';

const postgresDate = pg.types.getTypeParser(1114, 'text') as (text: string) => unknown;

/** Both parsers' answer as comparable text: the epoch milliseconds, or what they gave otherwise. */
function answer(value: unknown): string {
  return value instanceof Date ? `date ${value.getTime()}` : `${typeof value} ${String(value)}`;
}

describe('parseTimestamp', () => {
  it('gives the Date postgres-date gives for every shape PostgreSQL writes, and defers the rest to it', () => {
    const texts = [
      '2026-12-05 22:07:32.355787',
      '2026-12-05 22:07:32',
      '2026-12-05 22:07:32.1',
      '2026-12-05 22:07:32.029',
      '2026-12-05 22:07:32.0290001',
      '1999-12-31 23:59:59.999999',
      '2024-02-29 00:00:00.000001',
      '1000-01-01 00:00:00',
      '9999-12-31 23:59:59.999999',
      '0099-06-15 12:00:00.5',
      '0001-01-01 00:00:00 BC',
      'infinity',
      '-infinity',
      '2026-12-05',
      'not a timestamp',
    ];
    // Every fraction length, and values whose binary fractions round either way.
    for (let i = 0; i < 2000; i++) {
      const fraction = String((i * 7919) % 1_000_000)
        .padStart(6, '0')
        .slice(0, 1 + (i % 6));
      const day = String(1 + (i % 28)).padStart(2, '0');
      texts.push(
        `20${String(i % 100).padStart(2, '0')}-0${1 + (i % 9)}-${day} 1${i % 10}:${10 + (i % 50)}:0${i % 10}.${fraction}`,
      );
    }
    for (const text of texts) expect(answer(parseTimestamp(text))).toBe(answer(postgresDate(text)));
  });

  it('is the text parser of `timestamp` in the pools until a zone is set, and leaves every other type to pg', () => {
    const types = new PgTypes();
    expect(types.getTypeParser(1114, 'text')).toBe(parseTimestamp);
    expect(types.getTypeParser(1184, 'text')).toBe(pg.types.getTypeParser(1184, 'text'));
    expect(types.getTypeParser(20, 'text')).toBe(pg.types.getTypeParser(20, 'text'));
    types.useTimeZone('Etc/UTC', 0);
    expect(types.getTypeParser(1114, 'text')).toBe(parseUtcTimestamp);
  });
});

describe('timestampParserFor', () => {
  const iso = (zone: string, text: string, offsetSeconds = 0): unknown => {
    const value = timestampParserFor(zone, offsetSeconds)(text);
    return value instanceof Date ? value.toISOString() : value;
  };

  it('reads the wall-clock time of UTC under each name PostgreSQL gives it', () => {
    for (const zone of ['UTC', 'Etc/UTC', 'GMT', 'Etc/GMT', 'UCT', 'Universal', 'Zulu']) {
      expect(iso(zone, '2024-01-01 00:00:00.123456')).toBe('2024-01-01T00:00:00.123Z');
    }
  });

  it("reads the wall-clock time of another zone, at each date's own offset", () => {
    expect(iso('Asia/Ho_Chi_Minh', '2024-01-01 07:00:00')).toBe('2024-01-01T00:00:00.000Z');
    expect(iso('America/New_York', '2024-01-15 12:00:00.5')).toBe('2024-01-15T17:00:00.500Z');
    expect(iso('America/New_York', '2024-07-15 12:00:00')).toBe('2024-07-15T16:00:00.000Z');
    // Around the change of 2024-03-10 (02:00 EST became 03:00 EDT).
    expect(iso('America/New_York', '2024-03-10 01:59:59')).toBe('2024-03-10T06:59:59.000Z');
    expect(iso('America/New_York', '2024-03-10 03:00:00')).toBe('2024-03-10T07:00:00.000Z');
    expect(iso('Asia/Kolkata', '2024-01-01 05:30:00')).toBe('2024-01-01T00:00:00.000Z');
  });

  it('takes the offset PostgreSQL gives for a zone Intl does not know', () => {
    expect(iso('<+07>-07', '2024-01-01 07:00:00', 7 * 3600)).toBe('2024-01-01T00:00:00.000Z');
  });

  it('leaves what is not a date as postgres-date gives it', () => {
    expect(iso('Asia/Ho_Chi_Minh', 'infinity')).toBe(Infinity);
    expect(iso('UTC', '-infinity')).toBe(-Infinity);
  });
});
