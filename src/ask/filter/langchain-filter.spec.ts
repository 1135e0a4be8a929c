import * as fc from 'fast-check';
import {
  compileLangChainFilter,
  type CompiledFilter,
  FILTER_LIMITS,
  FILTER_OPERATORS,
  InvalidFilterError,
} from './langchain-filter.js';

const COLUMN = 'e.cmetadata';

function compile(filter: unknown, firstParameterIndex = 1, rejectSqlProbes = true): CompiledFilter {
  return compileLangChainFilter(filter, { column: COLUMN, firstParameterIndex, rejectSqlProbes });
}

/** With the SQL-probe check off: what the binding layer alone does with hostile values. */
function compileBindingOnly(filter: unknown): CompiledFilter {
  return compile(filter, 1, false);
}

function compileError(filter: unknown): InvalidFilterError {
  try {
    compile(filter);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidFilterError);
    return err as InvalidFilterError;
  }
  throw new Error(`expected ${JSON.stringify(filter)} to be rejected`);
}

/** The SQL a comparison compiles to, with the jsonpath and vars as parameters $a and $b. */
const match = (a: number, b: number): string => `jsonb_path_match(e.cmetadata, $${a}::jsonpath, $${b}::jsonb)`;

/**
 * Everything the compiler may put in SQL: placeholders, the trusted column, fixed function names
 * and keywords. A compiled filter that tokenises into these alone carries no user text.
 */
const SQL_TOKEN =
  /\s+|\$\d+(?:::(?:jsonpath|jsonb|text\[\]|text))?|e\.cmetadata|jsonb_path_match|jsonb_exists|chunk_metadata_terms|->>|@>|\b(?:AND|OR|NOT|LIKE|ILIKE|ANY|TRUE)\b|[(),=]/y;

function onlyTrustedTokens(sql: string): boolean {
  SQL_TOKEN.lastIndex = 0;
  while (SQL_TOKEN.lastIndex < sql.length) {
    const at = SQL_TOKEN.lastIndex;
    if (!SQL_TOKEN.test(sql) || SQL_TOKEN.lastIndex === at) return false;
  }
  return true;
}

function placeholders(sql: string): number[] {
  return [...sql.matchAll(/\$(\d+)/g)].map((m) => Number(m[1]));
}

function expectWellFormed(compiled: CompiledFilter, first: number): void {
  expect(onlyTrustedTokens(compiled.sql)).toBe(true);
  expect(placeholders(compiled.sql)).toEqual(compiled.params.map((_, i) => first + i));
}

describe('compileLangChainFilter', () => {
  describe('no filter', () => {
    it.each([undefined, null])('compiles %p to TRUE without parameters', (filter) => {
      expect(compile(filter)).toEqual({ sql: 'TRUE', params: [] });
    });
  });

  describe('comparison operators', () => {
    it('treats a scalar value as $eq, with the field quoted in a bound jsonpath and the value in bound vars', () => {
      expect(compile({ year: 2020 })).toEqual({
        sql: `(${match(1, 2)})`,
        params: ['$."year" == $value', '{"value":2020}'],
      });
    });

    it.each([
      ['$eq', '=='],
      ['$ne', '!='],
      ['$lt', '<'],
      ['$lte', '<='],
      ['$gt', '>'],
      ['$gte', '>='],
    ])('compiles %s to the jsonpath operator %s', (operator, native) => {
      expect(compile({ year: { [operator]: 2020 } })).toEqual({
        sql: `(${match(1, 2)})`,
        params: [`$."year" ${native} $value`, '{"value":2020}'],
      });
    });

    it.each([
      ['a string', 'Luật Thuế', '{"value":"Luật Thuế"}'],
      ['a negative decimal', -1.5, '{"value":-1.5}'],
      ['zero', 0, '{"value":0}'],
      ['a large number', 1e21, '{"value":1e+21}'],
      ['true', true, '{"value":true}'],
      ['false', false, '{"value":false}'],
      ['the empty string', '', '{"value":""}'],
      ['quotes and backslashes', 'a"b\\c\'d', '{"value":"a\\"b\\\\c\'d"}'],
    ])('binds %s as JSON', (_label, value, vars) => {
      expect(compile({ f: { $gte: value } }).params).toEqual(['$."f" >= $value', vars]);
      expect(compile({ f: value }).params).toEqual(['$."f" == $value', vars]);
    });

    it('accepts null for $eq and $ne only', () => {
      expect(compile({ f: null }).params).toEqual(['$."f" == $value', '{"value":null}']);
      expect(compile({ f: { $eq: null } }).params).toEqual(['$."f" == $value', '{"value":null}']);
      expect(compile({ f: { $ne: null } }).params).toEqual(['$."f" != $value', '{"value":null}']);
      for (const operator of ['$lt', '$lte', '$gt', '$gte']) {
        expect(compileError({ f: { [operator]: null } }).message).toBe(
          `${operator} does not accept null; use $eq/$ne null or $exists at filter.f.${operator}`,
        );
      }
    });

    it.each([
      [{ f: [1, 2] }, '$eq expects a string, number, boolean or null, got a list at filter.f', 'filter.f'],
      [
        { f: { $eq: [1] } },
        '$eq expects a string, number, boolean or null, got a list at filter.f.$eq',
        'filter.f.$eq',
      ],
      [{ f: { $ne: { a: 1 } } }, '$ne expects a string, number, boolean or null, got an object at filter.f.$ne', null],
      [{ f: { $gt: [] } }, '$gt expects a string, number or boolean, got a list at filter.f.$gt', null],
      [{ f: { $lt: { $gt: 1 } } }, '$lt expects a string, number or boolean, got an object at filter.f.$lt', null],
      [{ f: { $eq: undefined } }, '$eq expects a string, number, boolean or null, got a value of type undefined', null],
      [{ f: NaN }, '$eq expects a finite number, got NaN at filter.f', 'filter.f'],
      [{ f: { $gt: Infinity } }, '$gt expects a finite number, got Infinity at filter.f.$gt', 'filter.f.$gt'],
      [{ f: { $lte: -Infinity } }, '$lte expects a finite number, got -Infinity at filter.f.$lte', null],
      [{ f: 10n }, '$eq expects a string, number, boolean or null, got a value of type bigint at filter.f', null],
      [{ f: new Date(0) }, 'got a non-JSON object ([object Date]) at filter.f', null],
      [{ f: () => 1 }, 'got a value of type function at filter.f', null],
      [{ f: Symbol('s') }, 'got a value of type symbol at filter.f', null],
    ])('rejects the value in %p', (filter, message, path) => {
      const error = compileError(filter);
      expect(error.message).toContain(message);
      if (path) expect(error.path).toBe(path);
    });
  });

  describe('$between', () => {
    it('compiles to >= low AND <= high, both as jsonpath matches', () => {
      expect(compile({ year: { $between: [2019, 2021] } })).toEqual({
        sql: `(${match(1, 2)} AND ${match(3, 4)})`,
        params: ['$."year" >= $value', '{"value":2019}', '$."year" <= $value', '{"value":2021}'],
      });
    });

    it('accepts strings and booleans as bounds', () => {
      expect(compile({ d: { $between: ['2020-01-01', '2020-12-31'] } }).params).toEqual([
        '$."d" >= $value',
        '{"value":"2020-01-01"}',
        '$."d" <= $value',
        '{"value":"2020-12-31"}',
      ]);
      expect(compile({ b: { $between: [false, true] } }).params).toHaveLength(4);
    });

    it.each([
      [
        { y: { $between: [1] } },
        '$between expects a list of exactly two values [low, high], got a list',
        'filter.y.$between',
      ],
      [{ y: { $between: [1, 2, 3] } }, 'got a list', 'filter.y.$between'],
      [{ y: { $between: [] } }, 'got a list', 'filter.y.$between'],
      [{ y: { $between: '1,2' } }, 'got the string "1,2"', 'filter.y.$between'],
      [{ y: { $between: { low: 1, high: 2 } } }, 'got an object', 'filter.y.$between'],
      [{ y: { $between: [null, 2] } }, '$between does not accept null', 'filter.y.$between[0]'],
      [
        { y: { $between: [1, [2]] } },
        '$between expects a string, number or boolean, got a list',
        'filter.y.$between[1]',
      ],
      [{ y: { $between: [1, NaN] } }, '$between expects a finite number, got NaN', 'filter.y.$between[1]'],
    ])('rejects %p', (filter, message, path) => {
      const error = compileError(filter);
      expect(error.message).toContain(message);
      expect(error.path).toBe(path);
    });
  });

  describe('$in and $nin', () => {
    it('compares the field as text with = ANY over a bound text[] of String(value)', () => {
      expect(compile({ type: { $in: ['law', 'decree', 7, 1.5, -0] } })).toEqual({
        sql: '((e.cmetadata ->> $1::text) = ANY($2::text[]))',
        params: ['type', ['law', 'decree', '7', '1.5', '0']],
      });
    });

    it('negates $nin like SQLAlchemy ~in_(), so a missing field is NULL and excluded', () => {
      expect(compile({ type: { $nin: ['law'] } })).toEqual({
        sql: '(NOT ((e.cmetadata ->> $1::text) = ANY($2::text[])))',
        params: ['type', ['law']],
      });
    });

    it('keeps empty lists: = ANY of an empty array is false for $in and true for $nin', () => {
      expect(compile({ type: { $in: [] } }).params).toEqual(['type', []]);
      expect(compile({ type: { $nin: [] } }).params).toEqual(['type', []]);
    });

    it('passes hostile strings through as array elements, not SQL', () => {
      const hostile = ["x') OR 1=1 --", '{"a","b"}', 'NULL', '\\', '"'];
      expect(compileBindingOnly({ t: { $in: hostile } }).params).toEqual(['t', hostile]);
    });

    it(`accepts a $like or $ilike pattern of ${FILTER_LIMITS.maxPatternLength} characters and rejects one more`, () => {
      const pattern = `%${'a'.repeat(FILTER_LIMITS.maxPatternLength - 2)}%`;
      expect(compile({ title: { $ilike: pattern } }).params).toContain(pattern);
      for (const operator of ['$like', '$ilike']) {
        expect(() => compile({ title: { [operator]: `${pattern}b` } })).toThrow(
          `${operator} pattern must be at most ${FILTER_LIMITS.maxPatternLength} characters, got ${FILTER_LIMITS.maxPatternLength + 1} at filter.title.${operator}`,
        );
      }
    });

    it(`accepts ${FILTER_LIMITS.maxListValues} values and rejects one more`, () => {
      const values = Array.from({ length: FILTER_LIMITS.maxListValues }, (_, i) => i);
      expect(compile({ n: { $in: values } }).params[1]).toHaveLength(FILTER_LIMITS.maxListValues);
      expect(compileError({ n: { $nin: [...values, 0] } }).message).toBe(
        `$nin accepts at most ${FILTER_LIMITS.maxListValues} values, got ${FILTER_LIMITS.maxListValues + 1} at filter.n.$nin`,
      );
    });

    it('rejects a huge list before looking at its elements', () => {
      const huge = new Array<unknown>(10_000_000);
      expect(compileError({ n: { $in: huge } }).message).toContain('accepts at most');
    });

    it.each([
      [{ t: { $in: [true] } }, '$in accepts only strings and finite numbers, got true', 'filter.t.$in[0]'],
      [{ t: { $nin: ['a', false] } }, '$nin accepts only strings and finite numbers, got false', 'filter.t.$nin[1]'],
      [{ t: { $in: ['a', null] } }, 'got null', 'filter.t.$in[1]'],
      [{ t: { $in: [[1]] } }, 'got a list', 'filter.t.$in[0]'],
      [{ t: { $in: [{}] } }, 'got an object', 'filter.t.$in[0]'],
      [{ t: { $in: [NaN] } }, 'got NaN', 'filter.t.$in[0]'],
      [{ t: { $in: [1, Infinity] } }, 'got Infinity', 'filter.t.$in[1]'],
      // eslint-disable-next-line no-sparse-arrays
      [{ t: { $in: [1, , 2] } }, 'got a value of type undefined', 'filter.t.$in[1]'],
      [{ t: { $in: 'abc' } }, '$in expects a list of strings or numbers, got the string "abc"', 'filter.t.$in'],
      [{ t: { $nin: { a: 1 } } }, '$nin expects a list of strings or numbers, got an object', 'filter.t.$nin'],
      [{ t: { $in: null } }, 'got null', 'filter.t.$in'],
    ])('rejects %p', (filter, message, path) => {
      const error = compileError(filter);
      expect(error.message).toContain(message);
      expect(error.path).toBe(path);
    });
  });

  describe('$like and $ilike', () => {
    it('matches the field as text against a bound pattern', () => {
      expect(compile({ title: { $like: 'Luật%' } })).toEqual({
        sql: '((e.cmetadata ->> $1::text) LIKE $2::text)',
        params: ['title', 'Luật%'],
      });
      expect(compile({ title: { $ilike: '%THUẾ%' } })).toEqual({
        sql: '((e.cmetadata ->> $1::text) ILIKE $2::text)',
        params: ['title', '%THUẾ%'],
      });
    });

    it('accepts escaped wildcards and an escaped trailing backslash', () => {
      expect(compile({ t: { $like: '100\\%' } }).params[1]).toBe('100\\%');
      expect(compile({ t: { $like: 'a\\\\' } }).params[1]).toBe('a\\\\');
    });

    it.each([
      [{ t: { $like: 'abc\\' } }, '$like pattern must not end with the escape character \\', 'filter.t.$like'],
      [{ t: { $ilike: '\\\\\\' } }, '$ilike pattern must not end with the escape character \\', 'filter.t.$ilike'],
      [{ t: { $like: 5 } }, '$like expects a string pattern, got 5', 'filter.t.$like'],
      [{ t: { $ilike: ['a%'] } }, '$ilike expects a string pattern, got a list', 'filter.t.$ilike'],
      [{ t: { $like: null } }, 'got null', 'filter.t.$like'],
    ])('rejects %p', (filter, message, path) => {
      const error = compileError(filter);
      expect(error.message).toContain(message);
      expect(error.path).toBe(path);
    });
  });

  describe('$exists', () => {
    it('uses jsonb_exists with the field as a bound parameter', () => {
      expect(compile({ page: { $exists: true } })).toEqual({
        sql: '(jsonb_exists(e.cmetadata, $1::text))',
        params: ['page'],
      });
      expect(compile({ page: { $exists: false } })).toEqual({
        sql: '(NOT jsonb_exists(e.cmetadata, $1::text))',
        params: ['page'],
      });
    });

    it.each([1, 'true', null, [true], {}])('rejects the non-boolean %p', (value) => {
      const error = compileError({ page: { $exists: value } });
      expect(error.message).toMatch(/^\$exists expects true or false, got .+ at filter\.page\.\$exists$/);
      expect(error.path).toBe('filter.page.$exists');
    });
  });

  describe('composition', () => {
    it('ANDs the fields of a multi-key object, each condition parenthesised', () => {
      expect(compile({ a: 1, b: { $exists: true } })).toEqual({
        sql: `((${match(1, 2)}) AND (jsonb_exists(e.cmetadata, $3::text)))`,
        params: ['$."a" == $value', '{"value":1}', 'b'],
      });
    });

    it('joins $and and $or lists', () => {
      expect(compile({ $and: [{ a: 1 }, { b: 2 }] }).sql).toBe(`((${match(1, 2)}) AND (${match(3, 4)}))`);
      expect(compile({ $or: [{ a: 1 }, { b: 2 }, { c: 3 }] }).sql).toBe(
        `((${match(1, 2)}) OR (${match(3, 4)}) OR (${match(5, 6)}))`,
      );
    });

    it('reduces a one-element $and or $or to its clause', () => {
      expect(compile({ $and: [{ a: 1 }] })).toEqual(compile({ a: 1 }));
      expect(compile({ $or: [{ a: 1 }] })).toEqual(compile({ a: 1 }));
    });

    it('negates a $not object and ANDs the negations of a $not list', () => {
      expect(compile({ $not: { a: 1 } }).sql).toBe(`(NOT (${match(1, 2)}))`);
      expect(compile({ $not: [{ a: 1 }] }).sql).toBe(`(NOT (${match(1, 2)}))`);
      expect(compile({ $not: [{ a: 1 }, { b: 2 }] }).sql).toBe(`((NOT (${match(1, 2)})) AND (NOT (${match(3, 4)})))`);
    });

    it('accepts logical operators in any letter case, as LangChain lower-cases them', () => {
      expect(compile({ $AND: [{ a: 1 }, { b: 2 }] })).toEqual(compile({ $and: [{ a: 1 }, { b: 2 }] }));
      expect(compile({ $Or: [{ a: 1 }, { b: 2 }] })).toEqual(compile({ $or: [{ a: 1 }, { b: 2 }] }));
      expect(compile({ $NOT: { a: 1 } })).toEqual(compile({ $not: { a: 1 } }));
    });

    it('nests and numbers parameters in document order from firstParameterIndex', () => {
      const compiled = compile(
        {
          $or: [
            { $and: [{ type: { $in: ['law'] } }, { year: { $between: [2019, 2021] } }] },
            { $not: { title: { $ilike: '%draft%' } } },
            { status: 'active', page: { $exists: false } },
          ],
        },
        7,
      );
      expect(compiled.sql).toBe(
        '((((e.cmetadata ->> $7::text) = ANY($8::text[])) AND ' +
          `(${match(9, 10)} AND ${match(11, 12)})) OR ` +
          '(NOT ((e.cmetadata ->> $13::text) ILIKE $14::text)) OR ' +
          `((${match(15, 16)}) AND (NOT jsonb_exists(e.cmetadata, $17::text))))`,
      );
      expect(compiled.params).toEqual([
        'type',
        ['law'],
        '$."year" >= $value',
        '{"value":2019}',
        '$."year" <= $value',
        '{"value":2021}',
        'title',
        '%draft%',
        '$."status" == $value',
        '{"value":"active"}',
        'page',
      ]);
      expectWellFormed(compiled, 7);
    });

    it('uses the column expression it is given', () => {
      const compiled = compileLangChainFilter({ a: { $exists: true } }, { column: 'x.meta', firstParameterIndex: 3 });
      expect(compiled).toEqual({ sql: '(jsonb_exists(x.meta, $3::text))', params: ['a'] });
    });

    it('is safe to embed after AND: every compiled filter is one parenthesised expression', () => {
      for (const filter of [{ a: 1 }, { a: 1, b: 2 }, { $or: [{ a: 1 }, { b: 2 }] }, { $not: [{ a: 1 }, { b: 1 }] }]) {
        const { sql } = compile(filter);
        expect(sql.startsWith('(') && sql.endsWith(')')).toBe(true);
        let depth = 0;
        for (let i = 0; i < sql.length; i++) {
          depth += sql[i] === '(' ? 1 : sql[i] === ')' ? -1 : 0;
          if (depth === 0) expect(i).toBe(sql.length - 1);
        }
      }
    });
  });

  describe('structural errors', () => {
    it.each([
      [{}, 'Empty filter object at filter', 'filter'],
      [[], 'Expected a filter object, got a list at filter', 'filter'],
      ['year = 2020', 'Expected a filter object, got the string "year = 2020" at filter', 'filter'],
      [42, 'Expected a filter object, got 42 at filter', 'filter'],
      [true, 'Expected a filter object, got true at filter', 'filter'],
      [new Map([['a', 1]]), 'Expected a filter object, got a non-JSON object ([object Map]) at filter', 'filter'],
      [{ $and: [] }, '$and expects a non-empty list of filter objects at filter.$and', 'filter.$and'],
      [{ $or: [] }, '$or expects a non-empty list of filter objects at filter.$or', 'filter.$or'],
      [{ $not: [] }, '$not expects a non-empty list of filter objects at filter.$not', 'filter.$not'],
      [{ $and: { a: 1 } }, '$and expects a list of filter objects, got an object at filter.$and', 'filter.$and'],
      [{ $OR: 'a' }, '$OR expects a list of filter objects, got the string "a" at filter.$OR', 'filter.$OR'],
      [{ $not: 1 }, '$not expects a filter object or a list of filter objects, got 1 at filter.$not', 'filter.$not'],
      [{ $not: null }, 'got null at filter.$not', 'filter.$not'],
      [{ $and: [{}] }, 'Empty filter object at filter.$and[0]', 'filter.$and[0]'],
      [{ $and: [{ a: 1 }, [{ b: 1 }]] }, 'Expected a filter object, got a list at filter.$and[1]', 'filter.$and[1]'],
      [{ $or: [{ a: 1 }, null] }, 'Expected a filter object, got null at filter.$or[1]', 'filter.$or[1]'],
      [{ $not: {} }, 'Empty filter object at filter.$not', 'filter.$not'],
      [{ $nor: [{ a: 1 }] }, 'Unknown logical operator "$nor": expected $and, $or or $not at filter', 'filter'],
      [{ $eq: 1 }, 'Unknown logical operator "$eq": expected $and, $or or $not at filter', 'filter'],
      [{ $: 1 }, 'Unknown logical operator "$"', 'filter'],
      [
        { a: 1, $or: [{ b: 1 }] },
        'Operator "$or" must be the only key of its object; expected a field name at filter',
        'filter',
      ],
      [{ a: {} }, 'Expected an object with exactly one operator, got 0 keys at filter.a', 'filter.a'],
      [{ a: { $gt: 1, $lt: 5 } }, 'Expected an object with exactly one operator, got 2 keys at filter.a', 'filter.a'],
      [{ title: { $regex: '^a' } }, 'Unknown operator "$regex": expected one of $eq, $ne, $lt, $lte', 'filter.title'],
      [{ a: { $EQ: 1 } }, 'Unknown operator "$EQ"', 'filter.a'],
      [{ a: { gt: 1 } }, 'Unknown operator "gt"', 'filter.a'],
      [{ a: { b: 1 } }, 'Unknown operator "b"', 'filter.a'],
      [{ a: { $and: [{ b: 1 }] } }, 'Logical operator "$and" cannot be applied to a field', 'filter.a'],
      [{ a: { $Not: { b: 1 } } }, 'Logical operator "$Not" cannot be applied to a field', 'filter.a'],
      [{ $and: [{ a: 1 }, { year: { $gt: [] } }] }, 'at filter.$and[1].year.$gt', 'filter.$and[1].year.$gt'],
      [{ $not: [{ a: 1 }, { $or: [{ b: { $in: [true] } }] }] }, 'at filter.$not[1].$or[0].b.$in[0]', null],
    ])('rejects %p', (filter, message, path) => {
      const error = compileError(filter);
      expect(error.message).toContain(message);
      if (path) expect(error.path).toBe(path);
      expect(error.message.endsWith(` at ${error.path}`)).toBe(true);
      expect(error.name).toBe('InvalidFilterError');
    });
  });

  describe('field names', () => {
    it.each(['a', '_', 'A_b9', 'document_id', '__proto__', 'constructor', 'prototype', 'toString', 'x'.repeat(63)])(
      'accepts the identifier %p and binds it',
      (name) => {
        const compiled = compile({ [name]: { $exists: true } });
        expect(compiled.params).toEqual([name]);
        expect(compile({ [name]: 1 }).params[0]).toBe(`$."${name}" == $value`);
      },
    );

    it.each([
      'a;drop',
      'a b',
      '1abc',
      '',
      'a-b',
      'a.b',
      'a"b',
      "a'b",
      'a\\b',
      'a)b',
      'tên',
      'a\u0000',
      'a\n',
      '"; DROP TABLE langchain_pg_embedding; --',
      'x'.repeat(64),
    ])('rejects the field name %p at its object', (name) => {
      const error = compileError({ [name]: 1 });
      expect(error.message).toMatch(
        /^Invalid field name ".*": use ASCII letters, digits and _, not starting with a digit, at most 63/,
      );
      expect(error.path).toBe('filter');
      expect(compileError({ $or: [{ ok: 1 }, { ok: 2, [name]: { $exists: true } }] }).path).toBe('filter.$or[1]');
    });

    it('shortens long names in messages', () => {
      const error = compileError({ ['x'.repeat(10_000) + ';']: 1 });
      expect(error.message.length).toBeLessThan(200);
      expect(error.message).toContain('...');
    });

    it('rejects $-prefixed names in a multi-key object', () => {
      expect(compileError({ a: 1, $b: 2 }).message).toBe(
        'Operator "$b" must be the only key of its object; expected a field name at filter',
      );
    });
  });

  describe('hostile input', () => {
    it('never evaluates or pollutes prototypes through __proto__ or constructor keys', () => {
      const parsed: unknown = JSON.parse(
        '{"__proto__": {"$eq": "x"}, "constructor": {"$in": ["prototype"]}, "toString": {"$exists": true}}',
      );
      const compiled = compile(parsed);
      expect(compiled.params).toEqual([
        '$."__proto__" == $value',
        '{"value":"x"}',
        'constructor',
        ['prototype'],
        'toString',
      ]);
      expectWellFormed(compiled, 1);
      expect(({} as Record<string, unknown>).x).toBeUndefined();
      expect(Object.prototype).not.toHaveProperty('$eq');
    });

    it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'])(
      'treats %p as an unknown operator, not an inherited property',
      (operator) => {
        const filter: unknown = JSON.parse(`{"a": {"${operator}": 1}}`);
        expect(compileError(filter).message).toContain(`Unknown operator "${operator}"`);
      },
    );

    it('does not see inherited keys of a null-prototype object', () => {
      const filter = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
      expect(compile(filter)).toEqual(compile({ a: 1 }));
    });

    it('rejects class instances and boxed values as filter objects', () => {
      class Filter {
        a = 1;
      }
      expect(compileError(new Filter()).message).toContain('non-JSON object');
      expect(compileError({ a: new Filter() }).message).toContain('non-JSON object');
      expect(compileError({ a: { $eq: new String('x') } }).message).toContain('non-JSON object');
    });

    it('keeps SQL injection attempts in values and patterns as parameters when the probe check is off', () => {
      const attack = "'); DROP TABLE langchain_pg_embedding; --";
      for (const filter of [
        { a: attack },
        { a: { $ne: attack } },
        { a: { $like: attack } },
        { a: { $in: [attack] } },
        { a: { $between: [attack, attack] } },
      ]) {
        expect(compileError(filter).message).toMatch(/^Value refused: it looks like an SQL injection attempt/);
        const compiled = compileBindingOnly(filter);
        expect(compiled.sql).not.toContain('DROP');
        expectWellFormed(compiled, 1);
      }
    });

    it('rejects operator names crafted as SQL', () => {
      expect(compileError({ a: { '$eq) OR (1=1': 1 } }).message).toContain('Unknown operator "$eq) OR (1=1"');
      expect(compileError({ '$or) OR TRUE --': [{ a: 1 }] }).message).toContain('Unknown logical operator');
    });

    it('rejects strings PostgreSQL cannot store instead of failing in the database', () => {
      for (const filter of [
        { a: 'x\u0000y' },
        { a: { $like: '\u0000' } },
        { a: { $in: ['ok', 'bad\u0000'] } },
        { a: '\uD800' },
        { a: { $gt: 'x\uDC00' } },
      ]) {
        expect(compileError(filter).message).toMatch(/^Strings must not contain NUL characters or unpaired surrogates/);
      }
      expect(compile({ a: '😀 \uD83D\uDE00' }).params[1]).toBe('{"value":"😀 😀"}');
    });

    it(`accepts ${FILTER_LIMITS.maxDepth} levels of nesting and rejects one more`, () => {
      const nest = (levels: number): unknown => {
        let filter: unknown = { a: 1 };
        for (let i = 1; i < levels; i++) filter = i % 2 ? { $not: filter } : { $and: [filter] };
        return filter;
      };
      expect(compile(nest(FILTER_LIMITS.maxDepth)).params).toHaveLength(2);
      const error = compileError(nest(FILTER_LIMITS.maxDepth + 1));
      expect(error.message).toMatch(/^Filter is nested deeper than 32 levels at filter(\.\$not|\.\$and\[0\]){32}$/);
    });

    it('rejects very deep nesting without exhausting the stack', () => {
      let filter: unknown = { a: 1 };
      for (let i = 0; i < 100_000; i++) filter = { $or: [filter] };
      expect(compileError(filter).message).toContain('nested deeper than');
    });

    it(`accepts ${FILTER_LIMITS.maxConditions} conditions and rejects one more`, () => {
      const conditions = (n: number): unknown[] => Array.from({ length: n }, (_, i) => ({ [`f${i}`]: i }));
      expect(compile({ $or: conditions(FILTER_LIMITS.maxConditions) }).params).toHaveLength(512);
      const fields = Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`f${i}`, { $exists: true }]));
      expect(compileError(fields).message).toBe('Filter has more than 256 conditions at filter.f256');
      expect(compileError({ $and: conditions(257) }).message).toBe(
        'Filter has more than 256 conditions at filter.$and',
      );
      const spread = { $and: [{ $or: conditions(200) }, { $not: conditions(57) }] };
      expect(compileError(spread).path).toBe('filter.$and[1].$not[56].f56');
    });

    it('rejects a huge $and list before compiling its elements', () => {
      const huge = new Array<unknown>(5_000_000).fill({ a: 1 });
      expect(compileError({ $and: huge }).message).toBe('Filter has more than 256 conditions at filter.$and');
    });
  });

  describe('options', () => {
    it('rejects a missing column or a bad first index as a programming error', () => {
      expect(() => compileLangChainFilter({ a: 1 }, { column: ' ', firstParameterIndex: 1 })).toThrow(TypeError);
      for (const index of [0, -1, 1.5, NaN]) {
        expect(() => compileLangChainFilter({ a: 1 }, { column: COLUMN, firstParameterIndex: index })).toThrow(
          TypeError,
        );
      }
    });
  });

  describe('equalities in terms form', () => {
    const indexable = (filter: unknown, firstParameterIndex = 1): CompiledFilter =>
      compileLangChainFilter(filter, { column: COLUMN, firstParameterIndex, equalityForm: 'terms' });
    /** The row's metadata terms holding those of the bound `{"field": value}` (ix_cmetadata_terms). */
    const indexed = (p: number): string => `(chunk_metadata_terms(e.cmetadata) @> chunk_metadata_terms($${p}::jsonb))`;

    it('writes an equality as a terms containment with the bound {field: value} instead of jsonb_path_match', () => {
      expect(indexable({ document_type: 'law' }, 4)).toEqual({
        sql: indexed(4),
        params: ['{"document_type":"law"}'],
      });
      expect(indexable({ year: { $eq: 2020 } }).params[0]).toBe('{"year":2020}');
    });

    it.each([
      ['a string with quotes, backslashes and control characters', 'a"b\\c\n\u0001', '"a\\"b\\\\c\\n\\u0001"'],
      ['Vietnamese text', 'Luật Thuế', '"Luật Thuế"'],
      ['text that looks like jsonpath', '$value || true', '"$value || true"'],
      ['a negative decimal', -1.5, '-1.5'],
      ['a large number', 1e21, '1e+21'],
      ['a tiny number', 5e-324, '5e-324'],
      ['true', true, 'true'],
      ['false', false, 'false'],
      ['null', null, 'null'],
    ])('writes %s as a JSON literal', (_label, value, literal) => {
      expect(indexable({ f: value }).params[0]).toBe(`{"f":${literal}}`);
      expect(JSON.parse(String(indexable({ f: value }).params[0]))).toEqual({ f: value });
    });

    it('writes a field named like an Object.prototype member as an own key', () => {
      expect(indexable(JSON.parse('{"__proto__": {"$eq": "x"}}')).params[0]).toBe('{"__proto__":"x"}');
    });

    it('adds it in every position where the equality must hold, through $and, $or and several fields', () => {
      const compiled = indexable({
        $and: [{ a: 1, b: { $eq: 'x' } }, { $or: [{ c: true }, { d: { $gt: 1 } }] }],
      });
      expect(compiled.sql).toBe(`((${indexed(1)} AND ${indexed(2)}) AND (${indexed(3)} OR (${match(4, 5)})))`);
      expectWellFormed(compiled, 1);
    });

    it.each([
      ['$not of an object', { $not: { a: 1 } }, `(NOT (${match(1, 2)}))`],
      ['$not of a list', { $not: [{ a: 1 }, { b: 2 }] }, `((NOT (${match(1, 2)})) AND (NOT (${match(3, 4)})))`],
      ['$not around $and', { $not: { $and: [{ a: 1 }, { b: 2 }] } }, `(NOT ((${match(1, 2)}) AND (${match(3, 4)})))`],
      ['$and inside $not inside $or', { $or: [{ $not: { $and: [{ a: 1 }] } }] }, `(NOT (${match(1, 2)}))`],
    ])('leaves it out under %s', (_label, filter, sql) => {
      expect(indexable(filter)).toEqual(compile(filter));
      expect(indexable(filter).sql).toBe(sql);
    });

    it.each([
      { a: { $ne: 1 } },
      { a: { $gt: 1 } },
      { a: { $between: [1, 2] } },
      { a: { $in: ['x'] } },
      { a: { $nin: ['x'] } },
      { a: { $like: 'x%' } },
      { a: { $exists: true } },
    ])('leaves every other operator as it is: %j', (filter) => {
      expect(indexable(filter)).toEqual(compile(filter));
    });

    it('is off by default', () => {
      expect(compile({ a: 1 }).sql).toBe(`(${match(1, 2)})`);
    });

    it('with the jsonpath test too (terms-and-jsonpath), ANDs both wherever the terms form applies', () => {
      const both = (filter: unknown): CompiledFilter =>
        compileLangChainFilter(filter, { column: COLUMN, firstParameterIndex: 1, equalityForm: 'terms-and-jsonpath' });
      expect(both({ document_type: 'law' })).toEqual({
        sql: `(chunk_metadata_terms(e.cmetadata) @> chunk_metadata_terms($1::jsonb) AND ${match(2, 3)})`,
        params: ['{"document_type":"law"}', '$."document_type" == $value', '{"value":"law"}'],
      });
      const compiled = both({ $or: [{ a: 1 }, { $not: { b: 2 } }] });
      expect(compiled.sql).toBe(
        `((chunk_metadata_terms(e.cmetadata) @> chunk_metadata_terms($1::jsonb) AND ${match(2, 3)}) OR (NOT (${match(4, 5)})))`,
      );
      expectWellFormed(compiled, 1);
      expect(both({ a: { $gt: 1 } })).toEqual(compile({ a: { $gt: 1 } }));
    });
  });

  it('lists every operator once', () => {
    expect([...FILTER_OPERATORS].sort()).toEqual(
      [
        '$and',
        '$between',
        '$eq',
        '$exists',
        '$gt',
        '$gte',
        '$ilike',
        '$in',
        '$like',
        '$lt',
        '$lte',
        '$ne',
        '$nin',
        '$not',
        '$or',
      ].sort(),
    );
    expect(Object.isFrozen(FILTER_OPERATORS)).toBe(true);
  });
});

describe('compileLangChainFilter properties', () => {
  const firstIndex = fc.integer({ min: 1, max: 10_000 });

  /** Strings that look like SQL, JSON, jsonpath or LIKE syntax, plus arbitrary Unicode. */
  const hostileString = fc.oneof(
    fc.string(),
    fc.string({ unit: 'grapheme' }),
    fc.constantFrom(
      "'; DROP TABLE langchain_pg_embedding; --",
      '$1',
      '$."a" == 1',
      '") OR TRUE --',
      '%_\\',
      '__proto__',
      'NULL',
      '{"a":1}',
    ),
  );
  const fieldName = fc.oneof(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,20}$/), fc.constantFrom('__proto__', 'AND'));
  const scalarValue = fc.oneof(hostileString, fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean());

  /** Filters the grammar allows (values may still be rejected, e.g. strings with NUL). */
  const { filter: validFilter } = fc.letrec<{ filter: unknown; condition: unknown; fields: unknown }>((tie) => ({
    condition: fc.oneof(
      scalarValue,
      fc.constant(null),
      fc.record({ $eq: fc.oneof(scalarValue, fc.constant(null)) }),
      fc.record({ $ne: fc.oneof(scalarValue, fc.constant(null)) }),
      fc.constantFrom('$lt', '$lte', '$gt', '$gte').chain((op) => scalarValue.map((v) => ({ [op]: v }))),
      fc.record({ $between: fc.tuple(scalarValue, scalarValue) }),
      fc
        .constantFrom('$in', '$nin')
        .chain((op) => fc.array(fc.oneof(hostileString, fc.integer()), { maxLength: 5 }).map((v) => ({ [op]: v }))),
      fc.constantFrom('$like', '$ilike').chain((op) => hostileString.map((v) => ({ [op]: v }))),
      fc.record({ $exists: fc.boolean() }),
    ),
    fields: fc.dictionary(fieldName, tie('condition'), { minKeys: 1, maxKeys: 3 }),
    filter: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      tie('fields'),
      fc.record({ $and: fc.array(tie('filter'), { minLength: 1, maxLength: 3 }) }),
      fc.record({ $or: fc.array(tie('filter'), { minLength: 1, maxLength: 3 }) }),
      fc.record({ $not: fc.oneof(tie('filter'), fc.array(tie('filter'), { minLength: 1, maxLength: 3 })) }),
    ),
  }));

  function compileOrInvalid(
    filter: unknown,
    first: number,
    rejectSqlProbes = true,
  ): CompiledFilter | InvalidFilterError {
    try {
      return compileLangChainFilter(filter, { column: COLUMN, firstParameterIndex: first, rejectSqlProbes });
    } catch (err) {
      if (err instanceof InvalidFilterError) return err;
      throw err;
    }
  }

  it('either rejects arbitrary JSON with InvalidFilterError or emits only trusted SQL with consecutive placeholders', () => {
    fc.assert(
      fc.property(fc.jsonValue(), firstIndex, (filter, first) => {
        const result = compileOrInvalid(filter, first);
        if (result instanceof InvalidFilterError) {
          expect(result.message.endsWith(` at ${result.path}`)).toBe(true);
          expect(result.path.startsWith('filter')).toBe(true);
          return;
        }
        expectWellFormed(result, first);
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    ['with the SQL-probe check', true],
    ['with the binding layer alone', false],
  ])(
    'compiles grammatical filters with hostile values to trusted SQL, every value bound as a parameter (%s)',
    (_, probes) => {
      fc.assert(
        fc.property(validFilter, firstIndex, (filter, first) => {
          const result = compileOrInvalid(filter, first, probes);
          if (result instanceof InvalidFilterError) {
            // Only unstorable strings, bad LIKE patterns, the size limits and (when on) the probe check
            // can reject a grammatical filter.
            expect(result.message).toMatch(
              probes
                ? /^(Strings must not contain|\$i?like pattern must not end|Filter has more|Value refused: it looks like an SQL injection attempt)/
                : /^(Strings must not contain|\$i?like pattern must not end|Filter has more)/,
            );
            return;
          }
          expectWellFormed(result, first);
          const bound = boundStrings(result.params);
          for (const value of collectStrings(filter)) expect(bound.has(value)).toBe(true);
        }),
        { numRuns: 1000 },
      );
    },
  );

  it('with equalities in terms form: trusted SQL, consecutive placeholders, each equality outside $not in terms form and nothing else changed', () => {
    fc.assert(
      fc.property(validFilter, firstIndex, (filter, first) => {
        const plain = compileOrInvalid(filter, first, false);
        let indexable: CompiledFilter | InvalidFilterError;
        try {
          indexable = compileLangChainFilter(filter, {
            column: COLUMN,
            firstParameterIndex: first,
            rejectSqlProbes: false,
            equalityForm: 'terms',
          });
        } catch (err) {
          if (!(err instanceof InvalidFilterError)) throw err;
          indexable = err;
        }
        if (plain instanceof InvalidFilterError || indexable instanceof InvalidFilterError) {
          expect(indexable).toEqual(plain);
          return;
        }
        expectWellFormed(indexable, first);
        // Writing each terms containment back as the jsonb_path_match it stands for gives exactly
        // the plain compilation.
        const params: unknown[] = [];
        const sql = indexable.sql.replace(
          /chunk_metadata_terms\(e\.cmetadata\) @> chunk_metadata_terms\(\$(\d+)::jsonb\)|\$(\d+)/g,
          (_whole, pair?: string, other?: string) => {
            if (pair === undefined) {
              params.push(indexable.params[Number(other) - first]);
              return '$';
            }
            const entries = Object.entries(JSON.parse(String(indexable.params[Number(pair) - first])) as object);
            expect(entries).toHaveLength(1);
            const [[field, value]] = entries;
            params.push(`$."${field}" == $value`, JSON.stringify({ value: value as unknown }));
            return 'jsonb_path_match(e.cmetadata, $::jsonpath, $::jsonb)';
          },
        );
        expect(params).toEqual(plain.params);
        expect(sql).toBe(plain.sql.replace(/\$\d+/g, '$'));
      }),
      { numRuns: 1000 },
    );
  });

  it('rejects every field name outside the identifier pattern, and binds every accepted one', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), (name) => {
        const result = compileOrInvalid({ [name]: { $exists: true } }, 1);
        const valid = /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && name.length <= 63;
        if (valid) expect(result).toEqual({ sql: '(jsonb_exists(e.cmetadata, $1::text))', params: [name] });
        else expect(result).toBeInstanceOf(InvalidFilterError);
      }),
      { numRuns: 2000 },
    );
  });

  it('is deterministic and shifts placeholders with firstParameterIndex only', () => {
    fc.assert(
      fc.property(validFilter, firstIndex, (filter, first) => {
        const a = compileOrInvalid(filter, 1);
        const b = compileOrInvalid(filter, first);
        if (a instanceof InvalidFilterError || b instanceof InvalidFilterError) {
          expect(b).toEqual(a);
          return;
        }
        expect(b.params).toEqual(a.params);
        expect(b.sql).toBe(a.sql.replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) + first - 1}`));
      }),
      { numRuns: 300 },
    );
  });
});

/** Every string in a filter that should end up in a parameter: field names and values, not operators. */
function collectStrings(node: unknown): string[] {
  if (typeof node === 'string') return [node];
  if (Array.isArray(node)) return node.flatMap(collectStrings);
  if (node !== null && typeof node === 'object') {
    return Object.entries(node).flatMap(([key, value]) => [
      ...(key.startsWith('$') ? [] : [key]),
      ...collectStrings(value),
    ]);
  }
  return [];
}

/** The strings a compiled filter's parameters carry: raw, inside jsonpath field quotes, in vars, in text[] lists. */
function boundStrings(params: unknown[]): Set<string> {
  const strings = new Set<string>();
  for (const param of params) {
    if (Array.isArray(param)) param.forEach((item) => strings.add(String(item)));
    if (typeof param !== 'string') continue;
    strings.add(param);
    const field = /^\$\."([A-Za-z0-9_]+)" /.exec(param);
    if (field) strings.add(field[1]);
    try {
      // A vars parameter; a LIKE pattern that is not JSON stays raw.
      const { value } = JSON.parse(param) as { value?: unknown };
      if (typeof value === 'string') strings.add(value);
    } catch {
      /* not JSON */
    }
  }
  return strings;
}
