/**
 * Compiles a LangChain metadata filter (the JSON dialect of langchain_postgres `PGVector` with
 * `use_jsonb=True`) to a parameterised SQL boolean expression over a JSONB column.
 *
 * The SQL mirrors what `PGVector._create_filter_clause` / `_handle_field_filter` generate, so a
 * filter selects the same rows here as in the Python service. The output holds no user text at
 * all: field names, jsonpath texts, values and patterns are bound parameters, and only the trusted
 * `column` expression and fixed keywords are spliced. See docs/FILTERS.md.
 */

import { storableTextProblem } from '../../common/validation.js';
import { findSqlProbe } from './sql-probe.js';

export class InvalidFilterError extends Error {
  constructor(
    message: string,
    /** Where in the request the problem is, e.g. `filter.$and[1].year.$gt`. */
    readonly path: string,
  ) {
    super(message);
    this.name = 'InvalidFilterError';
  }
}

export interface CompiledFilter {
  sql: string;
  params: unknown[];
}

export type EqualityForm = 'jsonpath' | 'terms' | 'terms-and-jsonpath';

export interface CompileFilterOptions {
  /** A trusted SQL expression of type jsonb, e.g. `e.cmetadata`; never user input. */
  column: string;
  /** The number of the first placeholder (`$n`) this filter may use. */
  firstParameterIndex: number;
  /**
   * Refuse string values that look like SQL-injection probes (see sql-probe.ts). Default true.
   * Values are bound parameters either way; this only decides whether a probe is a 400.
   */
  rejectSqlProbes?: boolean;
  /**
   * How each equality that must hold for a row to match (`$eq`, or a bare value, not under `$not`)
   * is written. The terms test `chunk_metadata_terms(column) @> chunk_metadata_terms('{"field": v}')`
   * selects the same rows as the jsonpath test there (a NULL and a false both drop the row), and the
   * GIN index ix_cmetadata_terms answers it exactly (see the AddMetadataTermsIndex migration).
   * - `jsonpath` (default): as LangChain writes it, `jsonb_path_match(…)`, which no index serves.
   * - `terms`: the terms test alone. For an exact search: the index finds the matching chunks and
   *   nothing is evaluated on each of them.
   * - `terms-and-jsonpath`: both, ANDed. For a search next to an HNSW index: the planner can read
   *   ix_cmetadata_terms when it estimates that few chunks match (an HNSW scan would walk most of
   *   the graph for them, and miss some), and otherwise filters the HNSW scan's rows, the cheap
   *   jsonpath test first (a plpgsql call per row would cost more). See docs/FILTERS.md.
   */
  equalityForm?: EqualityForm;
}

/** Guards against filters built to exhaust the planner or the stack; documented in docs/FILTERS.md. */
export const FILTER_LIMITS = {
  /** Nested filter objects, the top-level one counting as 1. */
  maxDepth: 32,
  /** Field conditions in the whole filter (`$between` and multi-key objects count each field once). */
  maxConditions: 256,
  /** Values in one `$in` / `$nin` list. */
  maxListValues: 1000,
  maxFieldNameLength: 63,
  /**
   * Characters in one `$like` / `$ilike` pattern. PostgreSQL matches the pattern against every
   * chunk the rest of the filter passes (ILIKE lower-cases it for each): a pattern of megabytes,
   * in a body of 4 MiB, kept a search busy for minutes (and the embedded database has no statement
   * timeout). A pattern longer than any value it is matched with matches nothing anyway.
   */
  maxPatternLength: 1000,
} as const;

const COMPARISONS = new Map<string, string>([
  ['$eq', '=='],
  ['$ne', '!='],
  ['$lt', '<'],
  ['$lte', '<='],
  ['$gt', '>'],
  ['$gte', '>='],
]);
const FIELD_OPERATORS = [...COMPARISONS.keys(), '$between', '$in', '$nin', '$like', '$ilike', '$exists'] as const;
const LOGICAL_OPERATORS = ['$and', '$or', '$not'] as const;

/** Every operator the filter language knows, field operators first. */
export const FILTER_OPERATORS: readonly string[] = Object.freeze([...FIELD_OPERATORS, ...LOGICAL_OPERATORS]);

/** ASCII identifiers only: Python's `str.isidentifier()` also admits non-ASCII letters (see docs). */
const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

type Scalar = string | number | boolean | null;

/**
 * `undefined` or `null` means no filter (`TRUE`); anything else must be a valid filter object or
 * an InvalidFilterError is thrown.
 */
export function compileLangChainFilter(filter: unknown, options: CompileFilterOptions): CompiledFilter {
  if (typeof options.column !== 'string' || options.column.trim() === '') {
    throw new TypeError('compileLangChainFilter: column must be a non-empty SQL expression');
  }
  if (!Number.isSafeInteger(options.firstParameterIndex) || options.firstParameterIndex < 1) {
    throw new TypeError('compileLangChainFilter: firstParameterIndex must be an integer >= 1');
  }
  if (filter === undefined || filter === null) return { sql: 'TRUE', params: [] };
  const compiler = new FilterCompiler(
    options.column,
    options.firstParameterIndex,
    options.rejectSqlProbes ?? true,
    options.equalityForm ?? 'jsonpath',
  );
  const sql = compiler.filter(filter, 'filter', 1, true);
  return { sql, params: compiler.params };
}

class FilterCompiler {
  readonly params: unknown[] = [];
  private conditions = 0;

  constructor(
    private readonly column: string,
    private readonly firstParameterIndex: number,
    private readonly rejectSqlProbes: boolean,
    private readonly equalityForm: EqualityForm,
  ) {}

  /**
   * A filter object: one logical operator, or one or more field conditions ANDed. `positive`: no
   * `$not` encloses it (only there can an index narrow the rows).
   */
  filter(node: unknown, path: string, depth: number, positive: boolean): string {
    if (depth > FILTER_LIMITS.maxDepth) {
      fail(path, `Filter is nested deeper than ${FILTER_LIMITS.maxDepth} levels`);
    }
    const entries = objectEntries(node, path, 'a filter object');
    if (entries.length === 0) fail(path, 'Empty filter object');
    if (entries.length === 1) {
      const [key, value] = entries[0];
      if (!key.startsWith('$')) return this.field(key, value, path, positive);
      // LangChain lower-cases logical operators (but not field operators).
      const operator = key.toLowerCase();
      const operatorPath = `${path}.${key}`;
      if (operator === '$and' || operator === '$or') {
        const items = this.subFilterList(value, operatorPath, key);
        const clauses = items.map((item, i) => this.filter(item, `${operatorPath}[${i}]`, depth + 1, positive));
        return clauses.length === 1 ? clauses[0] : `(${clauses.join(operator === '$and' ? ' AND ' : ' OR ')})`;
      }
      if (operator === '$not') {
        if (Array.isArray(value)) {
          const items = this.subFilterList(value, operatorPath, key);
          const clauses = items.map(
            (item, i) => `(NOT ${this.filter(item, `${operatorPath}[${i}]`, depth + 1, false)})`,
          );
          return clauses.length === 1 ? clauses[0] : `(${clauses.join(' AND ')})`;
        }
        if (isPlainObject(value)) return `(NOT ${this.filter(value, operatorPath, depth + 1, false)})`;
        fail(operatorPath, `${key} expects a filter object or a list of filter objects, got ${describe(value)}`);
      }
      fail(path, `Unknown logical operator ${quote(key)}: expected $and, $or or $not`);
    }
    for (const [key] of entries) {
      if (key.startsWith('$')) {
        fail(path, `Operator ${quote(key)} must be the only key of its object; expected a field name`);
      }
    }
    return `(${entries.map(([key, value]) => this.field(key, value, path, positive)).join(' AND ')})`;
  }

  private subFilterList(value: unknown, path: string, operator: string): readonly unknown[] {
    if (!Array.isArray(value)) fail(path, `${operator} expects a list of filter objects, got ${describe(value)}`);
    if (value.length === 0) fail(path, `${operator} expects a non-empty list of filter objects`);
    // Each filter object holds at least one condition: a longer list cannot fit the budget.
    if (value.length > FILTER_LIMITS.maxConditions) this.tooManyConditions(path);
    return value;
  }

  /** One field condition: `{"field": value}` (equality) or `{"field": {"$op": value}}`. */
  private field(name: string, spec: unknown, parentPath: string, positive: boolean): string {
    if (!FIELD_NAME.test(name) || name.length > FILTER_LIMITS.maxFieldNameLength) {
      fail(
        parentPath,
        `Invalid field name ${quote(name)}: use ASCII letters, digits and _, not starting with a digit, at most ${FILTER_LIMITS.maxFieldNameLength} characters`,
      );
    }
    const path = `${parentPath}.${name}`;
    this.conditions += 1;
    if (this.conditions > FILTER_LIMITS.maxConditions) this.tooManyConditions(path);

    if (!isPlainObject(spec)) return this.equality(name, this.scalar(spec, path, '$eq', true), positive);
    const entries = objectEntries(spec, path, 'an operator object');
    if (entries.length !== 1) {
      fail(path, `Expected an object with exactly one operator, got ${entries.length} keys`);
    }
    const [operator, operand] = entries[0];
    const operandPath = `${path}.${operator}`;
    switch (operator) {
      case '$eq':
        return this.equality(name, this.scalar(operand, operandPath, operator, true), positive);
      case '$ne':
        return this.comparison(name, operator, this.scalar(operand, operandPath, operator, true));
      case '$lt':
      case '$lte':
      case '$gt':
      case '$gte':
        return this.comparison(name, operator, this.scalar(operand, operandPath, operator, false));
      case '$between': {
        if (!Array.isArray(operand) || operand.length !== 2) {
          fail(operandPath, `$between expects a list of exactly two values [low, high], got ${describe(operand)}`);
        }
        const low = this.scalar(operand[0], `${operandPath}[0]`, '$between', false);
        const high = this.scalar(operand[1], `${operandPath}[1]`, '$between', false);
        return `(${this.matchPath(name, '>=', low)} AND ${this.matchPath(name, '<=', high)})`;
      }
      case '$in':
      case '$nin': {
        const texts = this.textList(operand, operandPath, operator);
        const membership = `(${this.fieldText(name)} = ANY(${this.param(texts)}::text[]))`;
        // Like SQLAlchemy's `~col.in_(...)`: NULL (row excluded) when the field is missing.
        return operator === '$in' ? membership : `(NOT ${membership})`;
      }
      case '$like':
      case '$ilike': {
        const pattern = this.likePattern(operand, operandPath, operator);
        return `(${this.fieldText(name)} ${operator === '$like' ? 'LIKE' : 'ILIKE'} ${this.param(pattern)}::text)`;
      }
      case '$exists': {
        if (typeof operand !== 'boolean') fail(operandPath, `$exists expects true or false, got ${describe(operand)}`);
        const exists = `jsonb_exists(${this.column}, ${this.param(name)}::text)`;
        return operand ? `(${exists})` : `(NOT ${exists})`;
      }
      default:
        if (LOGICAL_OPERATORS.some((logical) => logical === operator.toLowerCase())) {
          fail(path, `Logical operator ${quote(operator)} cannot be applied to a field; put it around field filters`);
        }
        fail(path, `Unknown operator ${quote(operator)}: expected one of ${FIELD_OPERATORS.join(', ')}`);
    }
  }

  private comparison(name: string, operator: string, value: Scalar): string {
    return `(${this.matchPath(name, COMPARISONS.get(operator) ?? '==', value)})`;
  }

  /**
   * `$eq`. The terms form compares the row's metadata terms with the terms of `{"field": v}`,
   * computed by the same function, so both sides agree on what a value is (5 and 5.0, a string
   * against a number). Only where the equality must hold: the jsonpath test is unknown (NULL) for
   * some rows where the terms say false, which `NOT` would tell apart.
   */
  private equality(name: string, value: Scalar, positive: boolean): string {
    const jsonPath = () => this.matchPath(name, '==', value);
    if (!positive || this.equalityForm === 'jsonpath') return `(${jsonPath()})`;
    const pair = this.param(`{${JSON.stringify(name)}:${JSON.stringify(value)}}`);
    const terms = `chunk_metadata_terms(${this.column}) @> chunk_metadata_terms(${pair}::jsonb)`;
    return this.equalityForm === 'terms' ? `(${terms})` : `(${terms} AND ${jsonPath()})`;
  }

  /** `jsonb_path_match(col, '$."field" <op> $value', '{"value": v}')`, as LangChain builds it. */
  private matchPath(name: string, native: string, value: Scalar): string {
    const jsonPath = this.param(`$."${name}" ${native} $value`);
    const vars = this.param(JSON.stringify({ value }));
    return `jsonb_path_match(${this.column}, ${jsonPath}::jsonpath, ${vars}::jsonb)`;
  }

  private fieldText(name: string): string {
    return `(${this.column} ->> ${this.param(name)}::text)`;
  }

  private param(value: unknown): string {
    this.params.push(value);
    return `$${this.firstParameterIndex + this.params.length - 1}`;
  }

  private tooManyConditions(path: string): never {
    fail(path, `Filter has more than ${FILTER_LIMITS.maxConditions} conditions`);
  }

  private scalar(value: unknown, path: string, operator: string, nullAllowed: boolean): Scalar {
    if (value === null) {
      if (nullAllowed) return null;
      fail(path, `${operator} does not accept null; use $eq/$ne null or $exists`);
    }
    if (typeof value === 'boolean') return value;
    if (typeof value === 'number') {
      if (!Number.isFinite(value)) fail(path, `${operator} expects a finite number, got ${String(value)}`);
      return value;
    }
    if (typeof value === 'string') return this.storableText(value, path);
    fail(
      path,
      `${operator} expects a string, number${nullAllowed ? ', boolean or null' : ' or boolean'}, got ${describe(value)}`,
    );
  }

  /** `$in`/`$nin`: strings and numbers, compared as text like LangChain's `str(v)` (booleans refused there too). */
  private textList(value: unknown, path: string, operator: string): string[] {
    if (!Array.isArray(value)) fail(path, `${operator} expects a list of strings or numbers, got ${describe(value)}`);
    if (value.length > FILTER_LIMITS.maxListValues) {
      fail(path, `${operator} accepts at most ${FILTER_LIMITS.maxListValues} values, got ${value.length}`);
    }
    const texts: string[] = [];
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const itemPath = `${path}[${i}]`;
      if (typeof item === 'string') texts.push(this.storableText(item, itemPath));
      else if (typeof item === 'number' && Number.isFinite(item)) texts.push(String(item));
      else fail(itemPath, `${operator} accepts only strings and finite numbers, got ${describe(item)}`);
    }
    return texts;
  }

  private likePattern(value: unknown, path: string, operator: string): string {
    if (typeof value !== 'string') fail(path, `${operator} expects a string pattern, got ${describe(value)}`);
    if (value.length > FILTER_LIMITS.maxPatternLength) {
      fail(
        path,
        `${operator} pattern must be at most ${FILTER_LIMITS.maxPatternLength} characters, got ${value.length}`,
      );
    }
    this.storableText(value, path);
    // PostgreSQL raises an error for a pattern ending in its escape character (backslash).
    for (let i = 0; i < value.length; i++) {
      if (value[i] === '\\' && ++i === value.length) {
        fail(path, `${operator} pattern must not end with the escape character \\`);
      }
    }
    return value;
  }

  private storableText(value: string, path: string): string {
    // PostgreSQL rejects unpaired surrogates in jsonb (and NUL in text and jsonb): refuse them up front.
    if (storableTextProblem(value) !== null) {
      fail(path, 'Strings must not contain NUL characters or unpaired surrogates');
    }
    const probe = this.rejectSqlProbes ? findSqlProbe(value) : undefined;
    if (probe !== undefined) {
      fail(
        path,
        `Value refused: it looks like an SQL injection attempt (${probe}); filter values are only ever compared as data`,
      );
    }
    return value;
  }
}

/** Own enumerable string keys of a plain (JSON-like) object; anything else is an error. */
function objectEntries(value: unknown, path: string, expected: string): Array<[string, unknown]> {
  if (!isPlainObject(value)) fail(path, `Expected ${expected}, got ${describe(value)}`);
  return Object.entries(value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (isPlainObject(value)) return 'an object';
  if (typeof value === 'string') return `the string ${quote(value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'object') return `a non-JSON object (${Object.prototype.toString.call(value)})`;
  return `a value of type ${typeof value}`;
}

/** A user-supplied name or value in a message: quoted, and shortened so errors stay small. */
function quote(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 61)}...` : text);
}

function fail(path: string, problem: string): never {
  throw new InvalidFilterError(`${problem} at ${path}`, path);
}
