import * as fc from 'fast-check';
import {
  compileLangChainFilter,
  type CompiledFilter,
  type EqualityForm,
  InvalidFilterError,
} from '../src/ask/filter/langchain-filter.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { TEST_TARGET } from './support/test-database.js';

const COLLECTION = '7b2e0d41-5c3a-4f0e-9d1b-2a6c8e4f0001';
const OTHER_COLLECTION = '7b2e0d41-5c3a-4f0e-9d1b-2a6c8e4f0002';
const LAX_COLLECTION = '7b2e0d41-5c3a-4f0e-9d1b-2a6c8e4f0003';

/**
 * Chunk metadata as the Python service leaves it: numbers, numeric strings, Vietnamese text,
 * booleans and boolean-looking strings, JSON nulls, missing fields, `{}` and SQL NULL.
 */
const ROWS: Array<[id: string, cmetadata: string | null]> = [
  [
    'f01',
    '{"document_type":"law","year":2019,"page":1,"score":0.5,"title":"Luật Thuế thu nhập cá nhân","published":true,"status":"active"}',
  ],
  [
    'f02',
    '{"document_type":"law","year":2020,"page":2,"score":0.75,"title":"Luật Lao động","published":true,"status":"inactive"}',
  ],
  [
    'f03',
    '{"document_type":"law","year":2021,"page":3,"score":0.9,"title":"Bộ luật Dân sự","published":false,"status":"active"}',
  ],
  [
    'f04',
    '{"document_type":"decree","year":2020,"page":10,"score":0.1,"title":"Nghị định 126/2020/NĐ-CP","published":true,"status":"active"}',
  ],
  ['f05', '{"document_type":"decree","year":2022,"page":11,"title":"Nghị định 15/2022","published":false}'],
  ['f06', '{"document_type":"decree","year":"2020","title":"Nghị định năm 2020 (năm là chuỗi)"}'],
  [
    'f07',
    '{"document_type":"guide","year":2018,"page":0,"score":-1,"title":"Hướng dẫn quyết toán thuế","status":"processing"}',
  ],
  ['f08', '{"document_type":"guide","year":2023,"title":"HƯỚNG DẪN ĐĂNG KÝ THUẾ","published":true}'],
  ['f09', '{"document_type":"guide","page":5,"title":"hướng dẫn 100% trực tuyến"}'],
  ['f10', '{"document_type":"circular","year":2020.5,"title":"Thông tư 80/2021/TT-BTC"}'],
  ['f11', '{"document_type":null,"year":null,"title":null}'],
  ['f12', '{}'],
  ['f13', null],
  ['f14', '{"document_type":"law","year":2024,"page":7,"score":1,"status":"active","published":"true"}'],
  ['f15', '{"document_type":"LAW","year":2019}'],
  ['f16', '{"document_type":"law_draft","year":2025,"title":"Dự thảo luật"}'],
  ['f17', '{"document_type":"decree","year":2020,"page":"10"}'],
  ['f18', '{"document_type":"guide","year":2021,"score":0.333,"title":"Giải đáp_thắc mắc"}'],
  ['f19', '{"document_type":"law","year":1999,"title":"O\'Reilly \\"quoted\\""}'],
  ['f20', '{"document_type":"decree","year":2021,"page":12,"published":false,"status":"inactive"}'],
  ['f21', '{"category":"thuế","year":2020}'],
  ['f22', '{"category":"lao động","year":2022,"status":"active"}'],
  ['f23', '{"document_type":"law","year":2020,"status":"active","page":4}'],
  ['f24', '{"document_type":"guide","year":2020,"status":"active","published":true,"score":0.5}'],
  ['f25', '{"document_type":"decree","year":2019,"page":1}'],
  ['f26', '{"document_type":"law","year":2022,"title":"Luật Đất đai"}'],
  ['f27', '{"document_type":"other","year":0,"page":-3}'],
  ['f28', '{"document_type":"law","year":2020,"chunk_index":0,"__proto__":"x"}'],
  ['f29', '{"document_type":"decree","year":2023,"status":"archived","published":true}'],
  ['f30', '{"document_type":"guide","year":2017,"title":"luật thuế (bản cũ)"}'],
];
const ALL_IDS = ROWS.map(([id]) => id);

/** SQL literal, for the hand-written references only. */
const lit = (text: string): string => `'${text.replaceAll("'", "''")}'`;
/** What langchain_postgres renders for a comparison: the field unquoted in the jsonpath, the value in vars. */
const jpm = (jsonPath: string, value: unknown): string =>
  `jsonb_path_match(cmetadata, CAST(${lit(jsonPath)} AS JSONPATH), CAST(${lit(JSON.stringify({ value }))} AS JSONB))`;
const text = (field: string): string => `(cmetadata ->> ${lit(field)})`;
const inList = (field: string, values: string[]): string =>
  values.length === 0
    ? // SQLAlchemy's rendering of an empty IN on PostgreSQL.
      `${text(field)} IN (SELECT CAST(NULL AS VARCHAR) WHERE 1!=1)`
    : `${text(field)} IN (${values.map(lit).join(', ')})`;

/**
 * Metadata where jsonpath's lax mode and JSON types decide what an equality matches: lists (one
 * level deep matches, two do not), a top-level list of objects (lax mode looks into it), numbers
 * written differently (5, 5.0, 5.00, -0), numbers as strings, booleans and their text, nulls,
 * missing keys, nested objects, SQL NULL. The indexable form of an equality must select exactly
 * the rows the plain jsonb_path_match selects, here too.
 */
const LAX_ROWS: Array<[id: string, cmetadata: string | null]> = [
  ['l01', '{"f":"law","n":5}'],
  ['l02', '{"f":["law"],"n":[5]}'],
  ['l03', '{"f":[["law"]],"n":[[5]]}'],
  ['l04', '{"f":["x","law"],"n":[1,"5",5.0]}'],
  ['l05', '[{"f":"law","n":5}]'],
  ['l06', '[{"f":["law"]},{"n":[5]}]'],
  ['l07', '[[{"f":"law","n":5}]]'],
  ['l08', '[{"f":"x"},{"f":"law"}]'],
  ['l09', '{"f":{"g":"law"},"n":{"n":5}}'],
  ['l10', '{"g":{"f":"law"}}'],
  ['l11', '{"f":"Law","n":"5"}'],
  ['l12', '{"f":"law ","n":5.0}'],
  ['l13', '{"f":null,"n":null}'],
  ['l14', '{"f":[null],"n":[]}'],
  ['l15', '{}'],
  ['l16', null],
  ['l17', '"law"'],
  ['l18', '[]'],
  ['l19', '{"f":true,"n":5.00}'],
  ['l20', '{"f":[true,false],"n":-0}'],
  ['l21', '{"f":"true","n":0}'],
  ['l22', '{"f":false,"n":5.5}'],
  ['l23', '{"f":"a\\"b\\\\c\\n","n":1e21}'],
  ['l24', '{"f":"Điều 5","n":"5.0"}'],
  ['l25', '{"F":"law","N":5}'],
  ['l26', '{"f":"law","g":"law","n":50}'],
  ['l27', '{"f":5,"n":"law"}'],
  ['l28', '{"f":[{"g":1},"law"],"n":[{"n":5},5]}'],
];

/** The forms that write equalities with chunk_metadata_terms; each must select what the jsonpath form does. */
const TERMS_FORMS: EqualityForm[] = ['terms', 'terms-and-jsonpath'];

interface FilterCase {
  name: string;
  filter: unknown;
  /** The WHERE condition langchain_postgres generates for the filter, written out literally. */
  reference: string;
  /** The expected rows, where spelling them out shows the semantics best. */
  ids?: string[];
}

const CASES: FilterCase[] = [
  {
    name: 'scalar equality',
    filter: { document_type: 'law' },
    reference: jpm('$.document_type == $value', 'law'),
    ids: ['f01', 'f02', 'f03', 'f14', 'f19', 'f23', 'f26', 'f28'],
  },
  {
    name: '$eq is case-sensitive',
    filter: { document_type: { $eq: 'LAW' } },
    reference: jpm('$.document_type == $value', 'LAW'),
    ids: ['f15'],
  },
  {
    name: '$ne (missing field and JSON null rows excluded)',
    filter: { document_type: { $ne: 'law' } },
    reference: jpm('$.document_type != $value', 'law'),
  },
  {
    name: 'number equality does not match a numeric string',
    filter: { year: 2020 },
    reference: jpm('$.year == $value', 2020),
    ids: ['f02', 'f04', 'f17', 'f21', 'f23', 'f24', 'f28'],
  },
  {
    name: 'string equality does not match a number',
    filter: { year: '2020' },
    reference: jpm('$.year == $value', '2020'),
    ids: ['f06'],
  },
  {
    name: '$ne across types is unknown, not true',
    filter: { year: { $ne: 2020 } },
    reference: jpm('$.year != $value', 2020),
  },
  { name: '$gt', filter: { year: { $gt: 2020 } }, reference: jpm('$.year > $value', 2020) },
  { name: '$gte', filter: { year: { $gte: 2020 } }, reference: jpm('$.year >= $value', 2020) },
  { name: '$lt', filter: { year: { $lt: 2020 } }, reference: jpm('$.year < $value', 2020) },
  { name: '$lte with a decimal', filter: { year: { $lte: 2019.5 } }, reference: jpm('$.year <= $value', 2019.5) },
  { name: '$gt on floats', filter: { score: { $gt: 0.4 } }, reference: jpm('$.score > $value', 0.4) },
  { name: '$lt on strings', filter: { title: { $lt: 'M' } }, reference: jpm('$.title < $value', 'M') },
  {
    name: '$between numbers',
    filter: { year: { $between: [2019, 2021] } },
    reference: `${jpm('$.year >= $value', 2019)} AND ${jpm('$.year <= $value', 2021)}`,
  },
  {
    name: '$between strings',
    filter: { title: { $between: ['H', 'M'] } },
    reference: `${jpm('$.title >= $value', 'H')} AND ${jpm('$.title <= $value', 'M')}`,
  },
  {
    name: 'boolean true (not the string "true")',
    filter: { published: true },
    reference: jpm('$.published == $value', true),
    ids: ['f01', 'f02', 'f04', 'f08', 'f24', 'f29'],
  },
  {
    name: 'boolean false',
    filter: { published: { $eq: false } },
    reference: jpm('$.published == $value', false),
    ids: ['f03', 'f05', 'f20'],
  },
  { name: '$ne true', filter: { published: { $ne: true } }, reference: jpm('$.published != $value', true) },
  {
    name: 'JSON null',
    filter: { document_type: null },
    reference: jpm('$.document_type == $value', null),
    ids: ['f11'],
  },
  { name: '$ne null', filter: { title: { $ne: null } }, reference: jpm('$.title != $value', null) },
  {
    name: 'Vietnamese equality',
    filter: { category: 'thuế' },
    reference: jpm('$.category == $value', 'thuế'),
    ids: ['f21'],
  },
  {
    name: 'quotes in a value',
    filter: { title: 'O\'Reilly "quoted"' },
    reference: jpm('$.title == $value', 'O\'Reilly "quoted"'),
    ids: ['f19'],
  },
  {
    name: 'a field named __proto__',
    filter: JSON.parse('{"__proto__": "x"}') as unknown,
    reference: jpm('$.__proto__ == $value', 'x'),
    ids: ['f28'],
  },
  {
    name: '$in strings',
    filter: { document_type: { $in: ['law', 'decree'] } },
    reference: inList('document_type', ['law', 'decree']),
  },
  {
    name: '$in numbers compare as text, matching numeric strings too',
    filter: { page: { $in: [1, 10] } },
    reference: inList('page', ['1', '10']),
    ids: ['f01', 'f04', 'f17', 'f25'],
  },
  {
    name: '$in a decimal',
    filter: { year: { $in: [2020.5, 'x'] } },
    reference: inList('year', ['2020.5', 'x']),
    ids: ['f10'],
  },
  {
    name: '$in empty matches nothing',
    filter: { document_type: { $in: [] } },
    reference: inList('document_type', []),
    ids: [],
  },
  {
    name: '$nin (missing field excluded)',
    filter: { document_type: { $nin: ['law', 'decree'] } },
    reference: `NOT (${inList('document_type', ['law', 'decree'])})`,
  },
  {
    name: '$nin empty matches every row',
    filter: { document_type: { $nin: [] } },
    reference: `NOT (${inList('document_type', [])})`,
    ids: ALL_IDS,
  },
  {
    name: '$like prefix',
    filter: { title: { $like: 'Luật%' } },
    reference: `${text('title')} LIKE ${lit('Luật%')}`,
    ids: ['f01', 'f02', 'f26'],
  },
  {
    name: '$ilike Vietnamese',
    filter: { title: { $ilike: '%thuế%' } },
    reference: `${text('title')} ILIKE ${lit('%thuế%')}`,
  },
  {
    name: '$like escaped %',
    filter: { title: { $like: '%100\\%%' } },
    reference: `${text('title')} LIKE ${lit('%100\\%%')}`,
    ids: ['f09'],
  },
  {
    name: '$like escaped _',
    filter: { title: { $like: '%\\_%' } },
    reference: `${text('title')} LIKE ${lit('%\\_%')}`,
    ids: ['f18'],
  },
  {
    name: '$like on a number field',
    filter: { year: { $like: '202%' } },
    reference: `${text('year')} LIKE ${lit('202%')}`,
  },
  { name: '$exists true', filter: { page: { $exists: true } }, reference: `jsonb_exists(cmetadata, 'page')` },
  {
    name: '$exists false (SQL NULL metadata excluded)',
    filter: { page: { $exists: false } },
    reference: `NOT jsonb_exists(cmetadata, 'page')`,
  },
  {
    name: '$exists on a JSON null',
    filter: { title: { $exists: true } },
    reference: `jsonb_exists(cmetadata, 'title')`,
  },
  {
    name: 'several fields are ANDed',
    filter: { document_type: 'law', status: 'active' },
    reference: `${jpm('$.document_type == $value', 'law')} AND ${jpm('$.status == $value', 'active')}`,
    ids: ['f01', 'f03', 'f14', 'f23'],
  },
  {
    name: '$and',
    filter: { $and: [{ year: { $gte: 2020 } }, { page: { $exists: true } }] },
    reference: `${jpm('$.year >= $value', 2020)} AND jsonb_exists(cmetadata, 'page')`,
  },
  {
    name: '$or',
    filter: { $or: [{ document_type: 'circular' }, { category: { $in: ['thuế', 'lao động'] } }] },
    reference: `${jpm('$.document_type == $value', 'circular')} OR ${inList('category', ['thuế', 'lao động'])}`,
    ids: ['f10', 'f21', 'f22'],
  },
  {
    name: '$not object keeps rows where the comparison is false, not unknown',
    filter: { $not: { year: { $gt: 2020 } } },
    reference: `NOT (${jpm('$.year > $value', 2020)})`,
  },
  {
    name: '$not list',
    filter: { $not: [{ document_type: 'law' }, { published: true }] },
    reference: `(NOT ${jpm('$.document_type == $value', 'law')}) AND (NOT ${jpm('$.published == $value', true)})`,
  },
  {
    name: 'nested, with upper-case logical operators',
    filter: {
      $AND: [
        { $or: [{ document_type: { $in: ['law', 'decree'] } }, { title: { $ilike: '%hướng dẫn%' } }] },
        { $not: { status: 'inactive' } },
        { year: { $between: [2018, 2022] } },
      ],
    },
    reference:
      `(${inList('document_type', ['law', 'decree'])} OR ${text('title')} ILIKE ${lit('%hướng dẫn%')}) ` +
      `AND (NOT ${jpm('$.status == $value', 'inactive')}) ` +
      `AND (${jpm('$.year >= $value', 2018)} AND ${jpm('$.year <= $value', 2022)})`,
  },
];

describe(`LangChain filters on the database (${TEST_TARGET})`, () => {
  let t: TestApp;

  async function rowCount(): Promise<number> {
    const [{ count }] = await t.dataSource.query<Array<{ count: number }>>(
      'SELECT count(*)::int AS count FROM langchain_pg_embedding',
    );
    return count;
  }

  /**
   * Ids in the test collection matching the compiled filter, embedded the way the ask service does.
   * The SQL-probe check is off here: these tests are about what the SQL does with every value (the
   * check is a separate, earlier refusal, tested in sql-probe.spec.ts and ask.e2e-spec.ts).
   */
  async function compiledIds(
    filter: unknown,
    options: { collection?: string; equalityForm?: EqualityForm; indexScan?: boolean } = {},
  ): Promise<string[]> {
    const compiled: CompiledFilter = compileLangChainFilter(filter, {
      column: 'e.cmetadata',
      firstParameterIndex: 2,
      rejectSqlProbes: false,
      equalityForm: options.equalityForm,
    });
    const sql = `SELECT e.id FROM langchain_pg_embedding e WHERE e.collection_id = $1 AND (${compiled.sql}) ORDER BY e.id`;
    const params = [options.collection ?? COLLECTION, ...compiled.params];
    const rows = await t.dataSource.transaction(async (manager) => {
      // A sequential scan evaluates every condition on every row; without it, the planner reads
      // ix_cmetadata_terms wherever an equality allows, and the index alone decides there.
      if (options.indexScan) await manager.query(`SET LOCAL enable_seqscan = off`);
      return manager.query<Array<{ id: string }>>(sql, params);
    });
    return rows.map((r) => r.id);
  }

  /** The rows a filter selects, checked to be the same in both terms forms, by scan and by index. */
  async function laxIds(filter: unknown): Promise<string[]> {
    const plain = await compiledIds(filter, { collection: LAX_COLLECTION });
    for (const equalityForm of TERMS_FORMS) {
      for (const indexScan of [false, true]) {
        expect(await compiledIds(filter, { collection: LAX_COLLECTION, equalityForm, indexScan })).toEqual(plain);
      }
    }
    return plain;
  }

  async function referenceIds(condition: string): Promise<string[]> {
    const rows = await t.dataSource.query<Array<{ id: string }>>(
      `SELECT id FROM langchain_pg_embedding WHERE collection_id = $1 AND (${condition}) ORDER BY id`,
      [COLLECTION],
    );
    return rows.map((r) => r.id);
  }

  beforeAll(async () => {
    t = await startTestApp();
    await t.dataSource.query(
      `INSERT INTO langchain_pg_collection (uuid, name, cmetadata)
       VALUES ($1, 'filters', '{}'), ($2, 'filters-other', '{}'), ($3, 'filters-lax', '{}')`,
      [COLLECTION, OTHER_COLLECTION, LAX_COLLECTION],
    );
    await t.dataSource.query(
      `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
       SELECT r.id, $1, '[1,0,0]', 'chunk ' || r.id, r.cmetadata::jsonb
       FROM unnest($2::text[], $3::text[]) AS r(id, cmetadata)`,
      [LAX_COLLECTION, LAX_ROWS.map(([id]) => id), LAX_ROWS.map(([, metadata]) => metadata)],
    );
    await t.dataSource.query(
      `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
       SELECT r.id, $1, '[1,0,0]', 'chunk ' || r.id, r.cmetadata::jsonb
       FROM unnest($2::text[], $3::text[]) AS r(id, cmetadata)`,
      [COLLECTION, ROWS.map(([id]) => id), ROWS.map(([, metadata]) => metadata)],
    );
    // Same metadata as matching rows, in another collection: the filter must not reach it.
    await t.dataSource.query(
      `INSERT INTO langchain_pg_embedding (id, collection_id, cmetadata) VALUES ('x01', $1, '{"document_type":"law","year":2020}')`,
      [OTHER_COLLECTION],
    );
  });
  afterAll(async () => {
    await t.close();
  });

  it('stored the data set', async () => {
    expect(await rowCount()).toBe(ROWS.length + LAX_ROWS.length + 1);
    expect(await compiledIds(undefined)).toEqual(ALL_IDS);
  });

  it.each(CASES)('$name: the compiled filter selects the rows LangChain would', async ({ filter, reference, ids }) => {
    const expected = await referenceIds(reference);
    expect(await compiledIds(filter)).toEqual(expected);
    if (ids) expect(expected).toEqual(ids);
    else expect(expected.length).toBeGreaterThan(0);
  });

  it.each(CASES)(
    '$name: with equalities in both terms forms, by scan and through ix_cmetadata_terms, the same rows',
    async ({ filter }) => {
      const plain = await compiledIds(filter);
      for (const equalityForm of TERMS_FORMS) {
        for (const indexScan of [false, true]) {
          expect(await compiledIds(filter, { equalityForm, indexScan })).toEqual(plain);
        }
      }
    },
  );

  it.each<[string, unknown, string[]]>([
    [
      'a string: lax mode matches a list holding it, and a top-level list of objects',
      { f: 'law' },
      ['l01', 'l02', 'l04', 'l05', 'l06', 'l08', 'l26', 'l28'],
    ],
    [
      'a number: 5, 5.0 and 5.00 are equal, "5" is not',
      { n: 5 },
      ['l01', 'l02', 'l04', 'l05', 'l06', 'l12', 'l19', 'l28'],
    ],
    ['zero matches -0', { n: { $eq: 0 } }, ['l20', 'l21']],
    ['a decimal', { n: 5.5 }, ['l22']],
    ['a large number', { n: 1e21 }, ['l23']],
    ['true, in a list too, but not "true"', { f: true }, ['l19', 'l20']],
    ['false', { f: false }, ['l20', 'l22']],
    ['the string "true"', { f: 'true' }, ['l21']],
    ['null, in a list too', { f: null }, ['l13', 'l14']],
    ['a number against strings', { f: 5 }, ['l27']],
    ['quotes, backslashes and a newline', { f: 'a"b\\c\n' }, ['l23']],
    ['Vietnamese text', { f: 'Điều 5' }, ['l24']],
    ['no row', { f: 'nothing' }, []],
    // In a top-level list, each condition may hold in another element.
    ['two fields', { f: 'law', n: 5 }, ['l01', 'l02', 'l04', 'l05', 'l06', 'l28']],
    ['$and', { $and: [{ f: 'law' }, { g: 'law' }] }, ['l26']],
    ['$or', { $or: [{ f: 'law' }, { n: 'law' }] }, ['l01', 'l02', 'l04', 'l05', 'l06', 'l08', 'l26', 'l27', 'l28']],
    ['$or with a range', { $or: [{ f: true }, { n: { $gt: 10 } }] }, ['l19', 'l20', 'l23', 'l26']],
  ])('equality on %s: the same rows with equalities in both terms forms', async (_label, filter, ids) => {
    expect(await laxIds(filter)).toEqual(ids);
  });

  it.each<[string, unknown]>([
    ['$not', { $not: { f: 'law' } }],
    ['$not list', { $not: [{ f: 'law' }, { n: 5 }] }],
    ['$not around $or', { $not: { $or: [{ f: true }, { n: 5 }] } }],
    ['$and with a $not', { $and: [{ f: 'law' }, { $not: { n: 5 } }] }],
    ['$or with a $not', { $or: [{ f: null }, { $not: { n: 5 } }] }],
    ['$ne', { f: { $ne: 'law' } }],
    ['$in and $nin', { $and: [{ f: { $in: ['law', 'true'] } }, { n: { $nin: [5] } }] }],
  ])('%s: the same rows with equalities in both terms forms', async (_label, filter) => {
    expect((await laxIds(filter)).length).toBeGreaterThan(0);
  });

  it('reads ix_cmetadata_terms for an indexable equality when a scan is not an option', async () => {
    const compiled = compileLangChainFilter(
      { f: 'law' },
      { column: 'e.cmetadata', firstParameterIndex: 2, equalityForm: 'terms' },
    );
    const plan = await t.dataSource.transaction(async (manager) => {
      await manager.query(`SET LOCAL enable_seqscan = off`);
      const rows = await manager.query<Array<Record<string, string>>>(
        `EXPLAIN SELECT e.id FROM langchain_pg_embedding e WHERE e.collection_id = $1 AND (${compiled.sql})`,
        [LAX_COLLECTION, ...compiled.params],
      );
      return rows.map((r) => Object.values(r)[0]).join('\n');
    });
    expect(plan).toContain('ix_cmetadata_terms');
  });

  it('differs between $not of a comparison and the opposite comparison exactly where LangChain does', async () => {
    // Missing field or JSON null: the comparison is false, so NOT is true. A numeric string against
    // a number is unknown, and so is its NOT; SQL NULL metadata is NULL throughout.
    const notGreater = await compiledIds({ $not: { year: { $gt: 2020 } } });
    const lessOrEqual = await compiledIds({ year: { $lte: 2020 } });
    expect(notGreater.filter((id) => !lessOrEqual.includes(id))).toEqual(['f09', 'f11', 'f12']);
    expect(notGreater).not.toContain('f06');
    expect(notGreater).not.toContain('f13');
  });

  it('rejects an injection through a field name before any SQL runs, and leaves the table unchanged', async () => {
    const before = await rowCount();
    const attacks: unknown[] = [
      { "document_type') OR 1=1; DROP TABLE langchain_pg_embedding; --": 'x' },
      { 'a"; DELETE FROM langchain_pg_embedding; --': { $exists: true } },
      { title: { '$eq); DELETE FROM langchain_pg_embedding; --': 'x' } },
      { '$or; DELETE FROM langchain_pg_embedding': [{ a: 1 }] },
    ];
    for (const filter of attacks)
      expect(() => compileLangChainFilter(filter, { column: 'e.cmetadata', firstParameterIndex: 2 })).toThrow(
        InvalidFilterError,
      );
    expect(await rowCount()).toBe(before);
  });

  it('treats injections in values and patterns as data when the probe check is off', async () => {
    const before = await rowCount();
    const attack = "law'); DELETE FROM langchain_pg_embedding; --";
    expect(await compiledIds({ document_type: attack })).toEqual([]);
    expect(await compiledIds({ document_type: { $in: [attack, 'law_draft'] } })).toEqual(['f16']);
    expect(await compiledIds({ title: { $like: `%${attack}` } })).toEqual([]);
    expect(await compiledIds({ year: { $between: [attack, attack] } })).toEqual([]);
    expect(await compiledIds({ $not: { document_type: { $nin: [attack] } } })).toEqual([]);
    expect(await rowCount()).toBe(before);
  });

  it('runs every compiled filter without a database error, and a filter and its $not never share a row', async () => {
    const field = fc.constantFrom(
      'document_type',
      'year',
      'page',
      'score',
      'title',
      'published',
      'status',
      'category',
      'missing',
    );
    const value = fc.oneof(
      fc.constantFrom('law', 'decree', 'thuế', 'Luật%', '2020', '', 'LAW', "O'Reilly"),
      fc.string(),
      fc.integer({ min: -5, max: 2030 }),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.boolean(),
    );
    const condition = fc.oneof(
      value,
      fc.constant(null),
      fc.constantFrom('$eq', '$ne').chain((op) => fc.oneof(value, fc.constant(null)).map((v) => ({ [op]: v }))),
      fc.constantFrom('$lt', '$lte', '$gt', '$gte').chain((op) => value.map((v) => ({ [op]: v }))),
      fc.tuple(value, value).map((pair) => ({ $between: pair })),
      fc.constantFrom('$in', '$nin').chain((op) =>
        fc
          .array(fc.oneof(fc.string(), fc.integer({ min: 0, max: 2030 }), fc.constantFrom('law', '10')), {
            maxLength: 4,
          })
          .map((v) => ({ [op]: v })),
      ),
      fc
        .constantFrom('$like', '$ilike')
        .chain((op) => fc.oneof(fc.string(), fc.constantFrom('%thuế%', 'Lu_t%', '%\\%%')).map((v) => ({ [op]: v }))),
      fc.boolean().map((v) => ({ $exists: v })),
    );
    const { filter } = fc.letrec<{ filter: unknown }>((tie) => ({
      filter: fc.oneof(
        { depthSize: 'small' },
        fc.dictionary(field, condition, { minKeys: 1, maxKeys: 2 }),
        fc.array(tie('filter'), { minLength: 1, maxLength: 3 }).map((items) => ({ $and: items })),
        fc.array(tie('filter'), { minLength: 1, maxLength: 3 }).map((items) => ({ $or: items })),
        tie('filter').map((item) => ({ $not: item })),
      ),
    }));
    await fc.assert(
      fc.asyncProperty(filter, async (candidate) => {
        let matching: string[];
        try {
          matching = await compiledIds(candidate);
        } catch (err) {
          // Only strings PostgreSQL cannot store, or LIKE patterns it would reject, are refused.
          if (err instanceof InvalidFilterError) return;
          throw err;
        }
        const negated = await compiledIds({ $not: candidate });
        expect(matching.filter((id) => negated.includes(id))).toEqual([]);
      }),
      { numRuns: 100 },
    );
  });

  it('selects the same rows with equalities in both terms forms for any filter, by scan and through ix_cmetadata_terms', async () => {
    const value = fc.oneof(
      fc.constantFrom('law', 'Law', 'x', '5', 'true', 'a"b\\c\n', 'Điều 5', '', 5, 5.0, 0, -0, 5.5, 1e21, true, false),
      fc.string({ maxLength: 4 }),
      fc.integer({ min: -2, max: 60 }),
    );
    const condition = fc.oneof(
      value,
      fc.constant(null),
      fc.constantFrom('$eq', '$ne').chain((op) => fc.oneof(value, fc.constant(null)).map((v) => ({ [op]: v }))),
      fc.constantFrom('$lt', '$gte').chain((op) => value.map((v) => ({ [op]: v }))),
      fc
        .array(fc.oneof(fc.constantFrom('law', '5', 'true'), fc.integer({ min: 0, max: 6 })), { maxLength: 3 })
        .map((v) => ({ $in: v })),
      fc.boolean().map((v) => ({ $exists: v })),
    );
    const { filter } = fc.letrec<{ filter: unknown }>((tie) => ({
      filter: fc.oneof(
        { depthSize: 'small' },
        fc.dictionary(fc.constantFrom('f', 'n', 'g', 'F'), condition, { minKeys: 1, maxKeys: 2 }),
        fc.array(tie('filter'), { minLength: 1, maxLength: 3 }).map((items) => ({ $and: items })),
        fc.array(tie('filter'), { minLength: 1, maxLength: 3 }).map((items) => ({ $or: items })),
        tie('filter').map((item) => ({ $not: item })),
      ),
    }));
    await fc.assert(
      fc.asyncProperty(filter, async (candidate) => {
        await laxIds(candidate);
      }),
      { numRuns: 100 },
    );
  });
});
