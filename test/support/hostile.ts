import * as fc from 'fast-check';
import type request from 'supertest';

/** Fixed seed: every run sends the same requests, so a failure reproduces. */
export const FUZZ_SEED = 20_260_507;

/** An object nested `depth` levels deep, built without recursion. */
export function deepObject(depth: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: true };
  for (let i = 0; i < depth; i += 1) value = { a: value };
  return value;
}

/** An array nested `depth` levels deep. */
export function deepArray(depth: number): unknown[] {
  let value: unknown[] = [1];
  for (let i = 0; i < depth; i += 1) value = [value];
  return value;
}

/** Percent-encodes the UTF-8 bytes (a lone surrogate becomes U+FFFD, as any client would send it). */
export function percentEncode(value: string): string {
  return [...Buffer.from(value, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
}

/** Strings that have broken parsers, SQL builders and text columns elsewhere. */
export const HOSTILE_STRINGS: readonly string[] = [
  '',
  ' ',
  '\t\n\r',
  '\u0000',
  'a\u0000b',
  'x'.repeat(100_001),
  '%',
  '%00',
  '%25%32%35',
  '../../etc/passwd',
  "'; DROP TABLE documents; --",
  '" OR 1=1 --',
  "' OR '1'='1",
  '$1',
  '\\',
  '\\x00',
  '\u202e\u0645\u0631\u062d\u0628\u0627',
  '😀'.repeat(500),
  '\ud800',
  'ǅǈǋ Ⅻ ﬀ',
  'null',
  'NaN',
  '-1',
  '1e309',
  '9'.repeat(400),
  '-9223372036854775809',
  '0x10',
  '[object Object]',
  '<script>alert(1)</script>',
  '{"$where": 1}',
  '*',
  '_',
  '\u00a0\u2028\u2029',
];

/** JSON values of every type, edge numbers and shapes (deep, wide, prototype keys). */
export const HOSTILE_VALUES: readonly unknown[] = [
  null,
  true,
  false,
  0,
  -1,
  1.5,
  -1e308,
  1e308,
  Number.MAX_SAFE_INTEGER + 2,
  -2_147_483_649,
  2_147_483_648,
  ...HOSTILE_STRINGS.filter((_, i) => i % 3 === 0),
  [],
  [null],
  ['a', 1, null],
  Array.from({ length: 20_000 }, () => 1),
  {},
  { $ne: null },
  { $or: [{ $gt: '' }] },
  JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}') as unknown,
  deepObject(2000),
  deepArray(2000),
];

/** Arbitrary JSON values from fast-check, deterministic for the seed. */
export function sampleJson(count: number, seed = FUZZ_SEED): unknown[] {
  return fc.sample(fc.jsonValue({ maxDepth: 4 }), { seed, numRuns: count });
}

/** Arbitrary strings (full unicode, including lone surrogates and control characters). */
export function sampleStrings(count: number, seed = FUZZ_SEED): string[] {
  return fc.sample(
    fc.oneof(fc.string({ unit: 'binary', maxLength: 300 }), fc.string({ unit: 'grapheme', maxLength: 50 })),
    { seed, numRuns: count },
  );
}

/** What must never be in an error response: SQL, driver internals, stack frames, file paths. */
export const LEAK =
  /QueryFailedError|SQLSTATE|syntax error at or near|relation "|column "|violates .* constraint|\bat (async )?[\w.<>]+ \(|node_modules|\/work\/|\.ts:\d+|\.js:\d+|DETAIL:|pg_catalog|TypeORM/i;

/** The first problem with a response to hostile input, or undefined when it is a clean non-5xx. */
export function responseProblem(res: request.Response): string | undefined {
  if (res.status >= 500) return `${res.status} ${res.text.slice(0, 300)}`;
  if (res.status >= 400 && LEAK.test(res.text)) return `${res.status} leaks internals: ${res.text.slice(0, 300)}`;
  if (res.status >= 400 && !isErrorResponse(res.body, res.status)) {
    return `${res.status} is not the ErrorResponse of the OpenAPI document: ${res.text.slice(0, 300)}`;
  }
  return undefined;
}

/** The body the OpenAPI document promises for every error: {statusCode, message, error}. */
function isErrorResponse(body: unknown, status: number): boolean {
  if (typeof body !== 'object' || body === null) return false;
  const { statusCode, message, error } = body as Record<string, unknown>;
  const sentence = (m: unknown): boolean => typeof m === 'string' && m.length > 0;
  return (
    statusCode === status &&
    typeof error === 'string' &&
    (sentence(message) || (Array.isArray(message) && message.length > 0 && message.every(sentence)))
  );
}
