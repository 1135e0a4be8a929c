import { BadRequestException } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { OpenAPIObject } from '@nestjs/swagger';
import { errorCodes, type FastifyBodyParser, type FastifyRequest, type RawServerDefault } from 'fastify';
import { isAscii, isUtf8, transcode } from 'node:buffer';
import { declareSharedResponse, documentOperations, errorResponseContent } from '../common/openapi-errors.js';

/**
 * Deepest nesting of objects and arrays a JSON body may have. Real bodies (chunk metadata, LangChain
 * filters) stay far below; a body nested tens of thousands deep would otherwise overflow the stack of
 * the recursive steps after parsing (validation, transformation) and become a 500.
 */
export const MAX_JSON_DEPTH = 100;

/** The characters that open or close a level, and the quote that opens a string. */
const STRUCTURAL = /[[\]{}"]/g;

/**
 * Whether the JSON text nests objects/arrays deeper than `limit`, strings skipped. A regular
 * expression finds the next structural character and indexOf the end of each string, so the long
 * runs between them (the digits of vectors, chunk text) are crossed by native scans instead of a
 * JavaScript loop over every byte: on a batch of 500 × 384-dimensional vectors that is half the time.
 */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  STRUCTURAL.lastIndex = 0;
  while (STRUCTURAL.test(text)) {
    const at = STRUCTURAL.lastIndex - 1;
    const char = text.charCodeAt(at);
    if (char === 0x22) {
      const end = closingQuote(text, at);
      if (end < 0) return false; // unterminated string: the parser reports it
      STRUCTURAL.lastIndex = end + 1;
    } else if (char === 0x7b || char === 0x5b) {
      depth += 1;
      if (depth > limit) return true;
    } else {
      depth -= 1;
    }
  }
  return false;
}

/** The index of the quote that closes the string opened at `open` (one not escaped), or -1. */
function closingQuote(text: string, open: number): number {
  let at = open;
  for (;;) {
    at = text.indexOf('"', at + 1);
    if (at < 0) return -1;
    // Escaped when an odd number of backslashes precede it; the scan stops at the opening quote.
    let backslashes = 0;
    while (text.charCodeAt(at - 1 - backslashes) === 0x5c) backslashes += 1;
    if (backslashes % 2 === 0) return at;
  }
}

/** Below this size decodeUtf8 takes the plain path: the difference is noise there. */
const TRANSCODE_MIN_BYTES = 64 * 1024;

/**
 * `body.toString('utf8')`, the same string, faster for large non-ASCII bodies: from the first
 * non-ASCII byte on, V8 decodes UTF-8 byte by byte (12 ms for a 2.75 MB batch of Vietnamese
 * chunks), while Node converts valid UTF-8 to UTF-16 with SIMD (`transcode`, about 1 ms) and reads
 * that back as a string with a copy. Invalid UTF-8 (replacement characters) and pure ASCII (already
 * fast, and a one-byte string) take the plain path; isUtf8 and isAscii are SIMD scans too.
 * `largeNonAscii` is isLargeNonAsciiUtf8(body), passed by a caller that has it already.
 */
export function decodeUtf8(body: Buffer, largeNonAscii = isLargeNonAsciiUtf8(body)): string {
  return largeNonAscii ? transcode(body, 'utf8', 'utf16le').toString('utf16le') : body.toString('utf8');
}

/**
 * Whether the body is valid UTF-8 of TRANSCODE_MIN_BYTES or more with a non-ASCII byte: the bodies
 * decodeUtf8 transcodes and the parser may read as latin1 (parsesAsLatin1). Two scans of the whole
 * body, so the parser makes them once and hands the answer to both.
 */
function isLargeNonAsciiUtf8(body: Buffer): boolean {
  return body.length >= TRANSCODE_MIN_BYTES && !isAscii(body) && isUtf8(body);
}

/**
 * Whether secure-json-parse's prototype-poisoning scans (two regular expressions over the whole
 * text, after JSON.parse) could match: they look for a `"__proto__"` or `"constructor"` key, any
 * letter of which may be written as a `\u` escape. A text holding none of `proto`, `constructor`
 * and `\u` cannot match, so JSON.parse alone gives the same value; three native searches cost
 * less than half of the two scans. The body's bytes answer as its text does: the needles are ASCII,
 * and decoding UTF-8 (replacement characters included) keeps every ASCII byte as it is.
 */
export function mayHoldPoisonedKeys(text: string | Buffer): boolean {
  return text.includes('proto') || text.includes('constructor') || text.includes('\\u');
}

/** Whether the body starts with a UTF-8 byte order mark (which secure-json-parse strips). */
function startsWithByteOrderMark(body: Buffer): boolean {
  return body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf;
}

/**
 * Whether the body, large non-ASCII UTF-8 (`largeNonAscii`, isLargeNonAsciiUtf8), is parsed as
 * latin1 text, one character per byte, and its strings decoded from UTF-8 afterwards
 * (restoreUtf8Strings), instead of decoding the whole body first. For a batch of
 * vectors most of the body is ASCII digits: decoding all of it to UTF-16 writes 5.5 MB of fresh
 * memory for a 2.75 MB batch (most of its 20 ms is page faults), where the latin1 text is half that
 * and only the chunk texts are decoded (docs/PERFORMANCE.md). The value is the same because:
 * - the body is valid UTF-8, so each multi-byte sequence lies inside one JSON string (its bytes
 *   are all ≥ 0x80, never a quote or a backslash) and decodes there as in the whole body;
 * - it holds no `\u` escape, so every non-ASCII character of a parsed string came from those bytes;
 * - JSON's syntax outside strings is ASCII, so a non-ASCII byte there fails both ways, with the
 *   same error;
 * - no byte order mark and no poisoning-like key: those bodies go to Fastify's own parser.
 */
function parsesAsLatin1(body: Buffer, largeNonAscii: boolean): boolean {
  return largeNonAscii && !startsWithByteOrderMark(body) && !mayHoldPoisonedKeys(body);
}

function isNumber(value: unknown): boolean {
  return typeof value === 'number';
}

/** Whether restoreUtf8Strings may change the value: a string, or an array or object holding some. */
function mayHoldStrings(value: unknown): boolean {
  return typeof value === 'string' || (typeof value === 'object' && value !== null);
}

/** A character a UTF-8 byte ≥ 0x80 became in latin1 text. */
const NON_ASCII = /[\x80-\xff]/;

/** Holds the bytes of each string restoreUtf8Strings decodes, up to its size. */
const LATIN1_SCRATCH = Buffer.allocUnsafe(64 * 1024);
/**
 * From this many bytes on, `transcode`'s SIMD conversion (about 0.6 ns a byte, plus two copies)
 * decodes a string faster than V8's decoder (2–7 ns a byte once past the first non-ASCII
 * byte); below it, the copies cost more (a 750-byte chunk text: 2 µs by V8, 4 by transcode).
 */
const TRANSCODE_STRING_MIN_BYTES = 2048;

/** The string whose UTF-8 bytes are the characters of `text`, read as latin1. */
function utf8FromLatin1(text: string): string {
  const bytes =
    text.length <= LATIN1_SCRATCH.length
      ? LATIN1_SCRATCH.subarray(0, LATIN1_SCRATCH.write(text, 0, 'latin1'))
      : Buffer.from(text, 'latin1');
  return bytes.length < TRANSCODE_STRING_MIN_BYTES
    ? bytes.toString('utf8')
    : transcode(bytes, 'utf8', 'utf16le').toString('utf16le');
}

/**
 * The value JSON.parse gives for the UTF-8 text of a body it parsed as latin1 (see parsesAsLatin1):
 * every string and key holding a non-ASCII character decoded from UTF-8, in place; an object with
 * such a key is rebuilt with its keys in the same order. Depth is bounded by MAX_JSON_DEPTH.
 */
function restoreUtf8Strings(value: unknown): unknown {
  if (typeof value === 'string') return NON_ASCII.test(value) ? utf8FromLatin1(value) : value;
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    const array: unknown[] = value;
    // A vector: Array#every's native loop crosses its 384 numbers several times faster than a
    // JavaScript loop reading each element.
    if (array.every(isNumber)) return array;
    for (let i = 0; i < array.length; i++) {
      const item = array[i];
      if (mayHoldStrings(item)) array[i] = restoreUtf8Strings(item);
    }
    return array;
  }
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object);
  if (keys.some((key) => NON_ASCII.test(key))) {
    const rebuilt: Record<string, unknown> = {};
    for (const key of keys) {
      rebuilt[NON_ASCII.test(key) ? utf8FromLatin1(key) : key] = restoreUtf8Strings(object[key]);
    }
    return rebuilt;
  }
  for (const key of keys) {
    const item = object[key];
    if (mayHoldStrings(item)) {
      const restored = restoreUtf8Strings(item);
      if (restored !== item) object[key] = restored;
    }
  }
  return object;
}

/**
 * Fastify's JSON body parser (`parseJson`, same errors, same prototype-poisoning checks), preceded
 * by the depth check: a body nested deeper than MAX_JSON_DEPTH is a 400. A body that cannot hold a
 * poisoned key (mayHoldPoisonedKeys) is parsed by JSON.parse directly, with the error Fastify's
 * parser gives for invalid JSON, as latin1 text when parsesAsLatin1 allows; an empty body, or one
 * starting with a byte order mark (which secure-json-parse strips), always goes to `parseJson`.
 * A body `parseJson` refuses for a prototype-poisoning key is a 400 naming the key and where it is
 * (poisonedKeyProblem), not Fastify's "Body is not valid JSON".
 */
export function depthLimitedJsonParser(
  parseJson: FastifyBodyParser<string>,
): (request: FastifyRequest, body: Buffer, done: (err: Error | null, body?: unknown) => void) => void {
  return (request, body, done) => {
    const largeNonAscii = isLargeNonAsciiUtf8(body);
    const asLatin1 = parsesAsLatin1(body, largeNonAscii);
    const text = asLatin1 ? body.toString('latin1') : decodeUtf8(body, largeNonAscii);
    if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) {
      done(new BadRequestException(`The JSON body nests deeper than ${MAX_JSON_DEPTH} levels`), undefined);
      return;
    }
    if (!asLatin1 && (text.length === 0 || text.charCodeAt(0) === 0xfeff || mayHoldPoisonedKeys(text))) {
      void parseJson(request, text, (error, value) => {
        // Fastify words a refused prototype-poisoning key as invalid JSON: say what was refused.
        const poisoned = error ? poisonedKeyProblem(text) : null;
        done(poisoned === null ? error : new BadRequestException(poisoned), poisoned === null ? value : undefined);
      });
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      done(new errorCodes.FST_ERR_CTP_INVALID_JSON_BODY(), undefined);
      return;
    }
    done(null, asLatin1 ? restoreUtf8Strings(value) : value);
  };
}

/**
 * Why secure-json-parse refused a JSON text that JSON.parse accepts: the first object holding a
 * `__proto__` key, or a `constructor` object with a `prototype` key (the keys it refuses, as it
 * tests them), named by its path from the body's root, e.g. `items.0.metadata.__proto__`. Null for
 * a text that is not JSON (the parser's own message is right) or holds neither. Such keys are
 * refused rather than stored: they would be stripped (ValidationPipe) or change an object's
 * prototype on the way to the database.
 */
export function poisonedKeyProblem(text: string): string | null {
  let value: unknown;
  try {
    value = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    return null;
  }
  const stack: Array<[unknown, string]> = [[value, '']];
  while (stack.length > 0) {
    const [node, path] = stack.pop()!;
    if (typeof node !== 'object' || node === null) continue;
    const at = (key: string | number): string => (path === '' ? String(key) : `${path}.${key}`);
    if (Array.isArray(node)) {
      for (let i = node.length - 1; i >= 0; i--) stack.push([node[i], at(i)]);
      continue;
    }
    const record = node as Record<string, unknown>;
    if (Object.hasOwn(record, '__proto__')) {
      return `A JSON body must not hold a "__proto__" key (found at ${at('__proto__')})`;
    }
    const ctor = record.constructor;
    if (
      Object.hasOwn(record, 'constructor') &&
      typeof ctor === 'object' &&
      ctor !== null &&
      Object.hasOwn(ctor, 'prototype')
    ) {
      return `A JSON body must not hold a "constructor" object with a "prototype" key (found at ${at('constructor')}.prototype)`;
    }
    const keys = Object.keys(record);
    for (let i = keys.length - 1; i >= 0; i--) stack.push([record[keys[i]], at(keys[i])]);
  }
  return null;
}

/** Installs depthLimitedJsonParser over Fastify's own JSON parser. Call before init. */
export function useDepthLimitedJsonParser(app: NestFastifyApplication): void {
  const fastify = app.getHttpAdapter().getInstance();
  app.useBodyParser<RawServerDefault>(
    'application/json',
    {},
    depthLimitedJsonParser(fastify.getDefaultJsonParser('error', 'error')),
  );
}

/** The routes whose bodies carry documents, chunks or vectors in bulk: they take BODY_LIMIT_BYTES. */
const BULK_BODY_ROUTES: ReadonlySet<string> = new Set([
  'POST /documents',
  'POST /embeddings',
  'POST /documents/ingest',
]);

/**
 * The body limit of every other route (at most BODY_LIMIT_BYTES): a search, a PATCH, a recount of
 * 1,000 ids or a collection's metadata is far smaller. Fastify reads and parses a body before the
 * rate-limit guard runs (and on a public read such as POST /ask, with no key needed), so each
 * route's limit is what a throttled or anonymous client can make the service read and parse. A
 * write without a valid key is refused before its body is read (useEarlyApiKeyCheck).
 */
export const SMALL_BODY_LIMIT_BYTES = 4 * 1024 * 1024;

/** The body limit of a route, `METHOD /path` as Fastify or the OpenAPI document names it. */
export function routeBodyLimit(route: string, bodyLimitBytes: number): number {
  return BULK_BODY_ROUTES.has(route) ? bodyLimitBytes : Math.min(SMALL_BODY_LIMIT_BYTES, bodyLimitBytes);
}

/** Gives every route its body limit (routeBodyLimit) as Nest registers it. Call before init. */
export function useRouteBodyLimits(app: NestFastifyApplication, bodyLimitBytes: number): void {
  app
    .getHttpAdapter()
    .getInstance()
    .addHook('onRoute', (route) => {
      const methods = Array.isArray(route.method) ? route.method : [route.method];
      route.bodyLimit = Math.min(...methods.map((method) => routeBodyLimit(`${method} ${route.url}`, bodyLimitBytes)));
    });
}

/**
 * Declares the 413 of a JSON body over its route's limit on every operation that takes one (Fastify
 * refuses it before any handler runs); an operation's own 413 gains this reason.
 */
export function documentBodyLimit(document: OpenAPIObject, bodyLimitBytes: number): OpenAPIObject {
  for (const [operation, method, path] of documentOperations(document)) {
    const body = operation.requestBody;
    if (!body || '$ref' in body || !body.content['application/json']) continue;
    const route = `${method.toUpperCase()} ${path}`;
    declareSharedResponse(operation, '413', {
      description: BULK_BODY_ROUTES.has(route)
        ? `The JSON body is larger than BODY_LIMIT_BYTES (${bodyLimitBytes} bytes)`
        : `The JSON body is larger than ${routeBodyLimit(route, bodyLimitBytes)} bytes (the smaller of 4 MiB and BODY_LIMIT_BYTES)`,
      content: errorResponseContent({
        statusCode: 413,
        message: 'Request body is too large',
        error: 'Payload Too Large',
      }),
    });
  }
  return document;
}
