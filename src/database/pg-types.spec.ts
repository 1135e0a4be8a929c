import pg from 'pg';
import { parseTimestamp, PG_TYPES } from './pg-types.js';

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

  it('is the text parser of `timestamp` in the pools, and leaves every other type to pg', () => {
    expect(PG_TYPES.getTypeParser(1114, 'text')).toBe(parseTimestamp);
    expect(PG_TYPES.getTypeParser(1184, 'text')).toBe(pg.types.getTypeParser(1184, 'text'));
    expect(PG_TYPES.getTypeParser(20, 'text')).toBe(pg.types.getTypeParser(20, 'text'));
  });
});
