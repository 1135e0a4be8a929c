import fc from 'fast-check';
import { compileLangChainFilter, InvalidFilterError } from './langchain-filter.js';
import { findSqlProbe } from './sql-probe.js';

/** Probes from the usual injection cheat sheets, in the shapes they take in a filter value. */
const PROBES = [
  "law' OR '1'='1",
  "law' or 1=1 --",
  "law' OR 1=1#",
  "x' || 1=1 --",
  "x') OR ('a'='a",
  "' or true --",
  "admin'--",
  "admin' #",
  "admin'/*",
  "admin' -- -",
  "admin') -- -",
  "admin' --+",
  "admin' /**/",
  "admin' /* a * b */",
  "x'; --",
  "law'); DELETE FROM langchain_pg_embedding; --",
  "'; DROP TABLE documents; --",
  '1; DROP TABLE documents',
  '1;drop table documents',
  "x'; TRUNCATE TABLE langchain_pg_embedding",
  "x'; INSERT INTO documents VALUES (1)",
  "x'; UPDATE documents SET status = 'x'",
  "x'; SELECT password FROM users",
  "x'; COPY documents TO '/tmp/x'",
  "' UNION SELECT null, version() --",
  '1 UNION ALL SELECT usename FROM pg_user',
  '1 or 1=1',
  'x OR a=a',
  "x' AND pg_sleep(5) IS NULL --",
  '1; SELECT pg_sleep(10)',
  "1'; WAITFOR DELAY '0:0:5'--",
  'law" OR "1"="1',
  'x` or 1=1 #',
  'x\u2019 OR \u20181\u2019=\u20181',
  "x' AND (SELECT 1) = 1 --",
  "x' and id > 0 --",
];

/** Real metadata values: titles, names with apostrophes, Vietnamese legal text, identifiers. */
const DATA = [
  'law',
  'law_draft',
  "O'Brien",
  "Côte d'Or",
  "Côte d'Or 2019",
  "Rock 'n' roll",
  'Rock \u2019n\u2019 roll',
  "it's or nothing",
  "the 'A' and 'B' plans",
  "Tom's and Jerry's",
  'Luật số 45/2019/QH14',
  'Điều 5; khoản 2',
  'Chương I; Mục 2; Điều 3',
  'Select committee report',
  'Update; delete later',
  'Chapter 1; select the best',
  'drop-down menu; create account',
  'and/or',
  'C#',
  'C# -- notes',
  '--verbose',
  '50% off',
  'a=b',
  'x = 1 or more',
  'Union Square',
  'sleep (2019 film)',
  'https://example.com/?a=1&b=2',
  '{"json": "text"}',
  "Hướng dẫn 'số 12' về thuế",
  "Why 'yes' and 'no' is hard",
  "the 'A' and 'B' in context",
  'The "new" -- revised law',
  'The "Best" #1 song',
  "'Quoted' /* aside */ text",
  '',
];

describe('findSqlProbe', () => {
  it.each(PROBES)('recognises the probe %j', (value) => {
    expect(findSqlProbe(value)).toEqual(expect.any(String));
  });

  it.each(DATA)('leaves the value %j alone', (value) => {
    expect(findSqlProbe(value)).toBeUndefined();
  });

  it('never matches text without quotes, semicolons or SQL keywords', () => {
    const word = fc.stringMatching(/^[A-Za-zÀ-ỹ0-9.,:/%_-]{1,12}$/);
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 12 }), (words) => {
        const text = words.join(' ');
        // Words spelling a tautology ("or x=x") or UNION SELECT are what the rules are for.
        fc.pre(!/\b(or|union)\b/i.test(text));
        expect(findSqlProbe(text)).toBeUndefined();
      }),
    );
  });

  it('answers long hostile input, and quickly (no catastrophic backtracking)', () => {
    // Each of these would take seconds with a rule that backtracks quadratically; jest's timeout
    // turns that into a failure without any timing assertion here. The verdicts are checked too:
    // none of them is a probe but the comment opened after a quote.
    const cases: Array<[string, string | undefined]> = [
      [`'${' '.repeat(100_000)}x`, undefined],
      [`'${')'.repeat(100_000)}`, undefined],
      [`;${' select'.repeat(20_000)}`, undefined],
      [`${"' or ".repeat(20_000)}`, undefined],
      // The comment rule's end-of-value forms: each scan from a quote must stop early.
      [`${"' /*".repeat(200_000)}x`, undefined],
      [`${"' --".repeat(200_000)}x`, undefined],
      [`${"' #".repeat(200_000)}x`, undefined],
      [`${"' /* a".repeat(200_000)}`, undefined],
      [`'/*${'*'.repeat(400_000)}x`, 'a quote followed by a SQL comment'],
      [`${"' /* * a".repeat(200_000)}`, undefined],
    ];
    for (const [value, verdict] of cases) {
      expect({ value: value.slice(0, 12), verdict: findSqlProbe(value) }).toEqual({
        value: value.slice(0, 12),
        verdict,
      });
    }
  });
});

describe('the filter compiler with SQL probes', () => {
  const compile = (filter: unknown, rejectSqlProbes?: boolean) =>
    compileLangChainFilter(filter, { column: 'e.cmetadata', firstParameterIndex: 1, rejectSqlProbes });

  it('refuses a probe in every place a string value can go, naming the place', () => {
    const probe = "law' OR '1'='1";
    expect(() => compile({ a: probe })).toThrow('(a quote followed by OR or AND and a condition)');
    const cases: Array<[unknown, string]> = [
      [{ document_type: probe }, 'filter.document_type'],
      [{ a: { $eq: "x'; DROP TABLE documents; --" } }, 'filter.a.$eq'],
      [{ a: { $ne: probe } }, 'filter.a.$ne'],
      [{ a: { $gt: probe } }, 'filter.a.$gt'],
      [{ a: { $between: ['a', probe] } }, 'filter.a.$between[1]'],
      [{ a: { $in: ['ok', probe] } }, 'filter.a.$in[1]'],
      [{ a: { $nin: [probe] } }, 'filter.a.$nin[0]'],
      [{ a: { $like: `%${probe}%` } }, 'filter.a.$like'],
      [{ $or: [{ a: 1 }, { $not: { b: probe } }] }, 'filter.$or[1].$not.b'],
    ];
    for (const [filter, path] of cases) {
      let error: unknown;
      try {
        compile(filter);
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(InvalidFilterError);
      expect((error as InvalidFilterError).path).toBe(path);
      expect((error as InvalidFilterError).message).toMatch(
        new RegExp(
          `^Value refused: it looks like an SQL injection attempt \\(.+\\); filter values are only ever compared as data at ${path.replace(/[$[\].]/g, '\\$&')}$`,
        ),
      );
    }
  });

  it('binds the same values as data when the check is turned off', () => {
    const compiled = compile({ document_type: "law' OR '1'='1" }, false);
    expect(compiled.sql).not.toContain('OR');
    expect(compiled.params).toEqual(['$."document_type" == $value', JSON.stringify({ value: "law' OR '1'='1" })]);
  });

  it('accepts ordinary values with apostrophes and semicolons', () => {
    expect(compile({ author: "O'Brien", section: 'Điều 5; khoản 2' }).params).toHaveLength(4);
  });
});
