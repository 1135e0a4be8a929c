import fc from 'fast-check';
import Fastify, { type FastifyRequest } from 'fastify';
import { isDeepStrictEqual } from 'node:util';
import { decodeUtf8, depthLimitedJsonParser } from './json-body.js';

/** Large enough for decodeUtf8's transcoding path (it takes the plain one below 64 KB). */
const PADDING = Buffer.from(`{"pad": "${'Điều 1. Phạm vi điều chỉnh, thuế thu nhập 📄 '.repeat(1600)}", "x": `);

/** What a body parser hands to `done`: the error's identity and text, or the value. */
interface Outcome {
  error?: { name: string; code?: string; statusCode?: number; message: string };
  value?: unknown;
}

function outcome(parse: (done: (err: Error | null, body?: unknown) => void) => void): Outcome {
  let result: Outcome | undefined;
  parse((err: (Error & { code?: string; statusCode?: number }) | null, value) => {
    result = err
      ? { error: { name: err.name, code: err.code, statusCode: err.statusCode, message: err.message } }
      : { value };
  });
  if (!result) throw new Error('the parser did not call done synchronously');
  return result;
}

describe('decodeUtf8', () => {
  const expectSameAsToString = (body: Buffer): void => {
    expect(decodeUtf8(body)).toBe(body.toString('utf8'));
  };

  it('decodes large and small bodies exactly as Buffer#toString does: non-ASCII, ASCII, a byte order mark', () => {
    expectSameAsToString(Buffer.concat([PADDING, Buffer.from('"tiếng Việt 𝄞 😀"}')]));
    expectSameAsToString(Buffer.concat([Buffer.from('\ufeff'), PADDING, Buffer.from('1}')]));
    expectSameAsToString(Buffer.from(`{"ascii": "${'x'.repeat(100_000)}"}`));
    expectSameAsToString(Buffer.from('{"small": "Điều"}'));
    expectSameAsToString(Buffer.alloc(0));
  });

  it('decodes invalid UTF-8 as Buffer#toString does (replacement characters), large or small', () => {
    const invalid = [
      [0x80], // a lone continuation byte
      [0xc3], // a sequence cut short
      [0xe1, 0xba], // a sequence cut short by the end of the body
      [0xc0, 0xaf], // an overlong encoding
      [0xed, 0xa0, 0x80], // an encoded surrogate
      [0xf4, 0x90, 0x80, 0x80], // past U+10FFFF
      [0xff, 0xfe],
    ];
    for (const bytes of invalid) {
      expectSameAsToString(Buffer.concat([PADDING, Buffer.from(bytes), Buffer.from('1}')]));
      expectSameAsToString(Buffer.concat([PADDING, Buffer.from(bytes)]));
      expectSameAsToString(Buffer.from(bytes));
    }
  });

  it('decodes any bytes after a large prefix as Buffer#toString does', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.string({ unit: 'grapheme' }), (bytes, text) => {
        expectSameAsToString(Buffer.concat([PADDING, Buffer.from(bytes), Buffer.from(text)]));
        expectSameAsToString(Buffer.concat([PADDING, Buffer.from(text), Buffer.from(bytes)]));
      }),
      { numRuns: 200 },
    );
  });
});

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

describe('depthLimitedJsonParser', () => {
  const fastifyParser = Fastify().getDefaultJsonParser('error', 'error');
  const parser = depthLimitedJsonParser(fastifyParser);
  const request = {} as FastifyRequest;

  /**
   * The outcome of the parser for `text`, which must be the outcome of Fastify's own parser, but for
   * a prototype-poisoning key (Fastify refuses valid JSON): a 400 that names the key instead of
   * Fastify's "not valid JSON".
   */
  const expectSameAsFastify = (text: string | Buffer): Outcome => {
    const body = Buffer.isBuffer(text) ? text : Buffer.from(text);
    const ours = outcome((done) => parser(request, body, done));
    const fastify = outcome((done) => void fastifyParser(request, body.toString('utf8'), done));
    if (fastify.error && isJson(body.toString('utf8').replace(/^\ufeff/, ''))) {
      expect(ours.error).toMatchObject({ name: 'BadRequestException', statusCode: undefined });
      expect(ours.error?.message).toMatch(
        /^A JSON body must not hold a "(__proto__" key|constructor" object with a "prototype" key) \(found at .+\)$/,
      );
      expect(ours.value).toBeUndefined();
      return ours;
    }
    expect(ours.error).toEqual(fastify.error);
    // isDeepStrictEqual, not toStrictEqual: jest compares a `constructor` key as the object's class.
    expect(JSON.stringify(ours.value)).toBe(JSON.stringify(fastify.value));
    expect(isDeepStrictEqual(ours.value, fastify.value)).toBe(true);
    return ours;
  };

  it('gives the value or error Fastify gives for valid, malformed, empty and byte-order-marked bodies', () => {
    expect(expectSameAsFastify('{"a": [1, 2.5, "x", null, true], "b": {"proto": "constructor"}}').value).toEqual({
      a: [1, 2.5, 'x', null, true],
      b: { proto: 'constructor' },
    });
    expect(expectSameAsFastify('{"documentId": ').error).toMatchObject({
      code: 'FST_ERR_CTP_INVALID_JSON_BODY',
      statusCode: 400,
    });
    expect(expectSameAsFastify('').error).toMatchObject({ code: 'FST_ERR_CTP_EMPTY_JSON_BODY' });
    expect(expectSameAsFastify('\ufeff{"a": 1}').value).toEqual({ a: 1 });
    for (const text of [
      ' ',
      'nul',
      '{"a": 1}x',
      '[1, 2',
      '"text"',
      '1',
      'null',
      '\ufeff',
      '\ufeff\ufeff{}',
      '{a: 1}',
    ]) {
      expectSameAsFastify(text);
    }
    expectSameAsFastify(Buffer.concat([PADDING, Buffer.from('"Việt", "y": [1, 2]}')]));
    expectSameAsFastify(Buffer.concat([PADDING, Buffer.from([0xc3]), Buffer.from('"}')]));
    expectSameAsFastify(Buffer.concat([PADDING, Buffer.from('"unterminated')]));
  });

  it('refuses prototype-poisoning keys as Fastify does, escaped or not, and parses lookalikes', () => {
    const poisoned = [
      '{"__proto__": {"admin": true}}',
      '{"a": [{"__proto__" : 1}]}',
      '{"\\u005f_proto__": {}}',
      '{"__pr\\u006fto__": {}}',
      '{"constructor": {"prototype": {"admin": true}}}',
      '{"\\u0063onstructor": {"prototype": {}}}',
    ];
    const where = [
      '__proto__',
      'a.0.__proto__',
      '__proto__',
      '__proto__',
      'constructor.prototype',
      'constructor.prototype',
    ];
    poisoned.forEach((text, i) => {
      const key = where[i].endsWith('__proto__') ? '"__proto__" key' : '"constructor" object with a "prototype" key';
      expect(expectSameAsFastify(text).error?.message).toBe(
        `A JSON body must not hold a ${key} (found at ${where[i]})`,
      );
    });
    const harmless = [
      '{"constructor": 1}',
      '{"constructor": {"a": 1}}',
      '{"proto": "__proto__ in a value", "a": "\\u0041\\u00e9"}',
      '{"note": "a \\\\u005f that is not an escape"}',
    ];
    for (const text of harmless) expect(expectSameAsFastify(text).error).toBeUndefined();
  });

  it('gives the outcome Fastify gives for any JSON value, with or without poisoning-like keys', () => {
    const key = fc.oneof(fc.string(), fc.constantFrom('__proto__', 'constructor', 'prototype', 'proto', 'a'));
    const value = fc.letrec<{ value: unknown }>((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.oneof(fc.string({ unit: 'grapheme' }), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean()),
        fc.constant(null),
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(key, tie('value'), { maxKeys: 4 }),
      ),
    })).value;
    fc.assert(
      fc.property(value, fc.boolean(), (v, escapeNonAscii) => {
        let text = JSON.stringify(v);
        // The same value written with \u escapes for every non-ASCII character.
        if (escapeNonAscii)
          text = text.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
        expectSameAsFastify(text);
      }),
      { numRuns: 500 },
    );
  });

  it('gives the value Fastify gives for large non-ASCII bodies it parses as latin1: strings and keys decoded, key order kept', () => {
    const keyed = Buffer.concat([
      PADDING,
      Buffer.from('{"3": "ba", "tiêu đề": "Điều 1", "a": ["𝄞 😀", {"é": {"ß": "ü"}}, 1.5, null], "b": "x"}}'),
    ]);
    const value = expectSameAsFastify(keyed).value as { x: Record<string, unknown> };
    expect(Object.keys(value.x)).toEqual(['3', 'tiêu đề', 'a', 'b']);
    expect(value.x['tiêu đề']).toBe('Điều 1');
    // Strings decoded by each path (V8's decoder, transcode, past the scratch buffer), and non-ASCII
    // bytes outside any string.
    for (const words of [300, 1_000, 30_000]) {
      expectSameAsFastify(Buffer.concat([PADDING, Buffer.from(`["${'Việt 😀 '.repeat(words)}", "é"]}`)]));
    }
    expect(expectSameAsFastify(Buffer.concat([PADDING, Buffer.from('1 é}')])).error).toMatchObject({
      code: 'FST_ERR_CTP_INVALID_JSON_BODY',
    });
    expect(expectSameAsFastify(Buffer.concat([PADDING, Buffer.from('"a"\u00a0}')])).error).toMatchObject({
      code: 'FST_ERR_CTP_INVALID_JSON_BODY',
    });
  });

  it('gives the outcome Fastify gives for any large body: any value after a non-ASCII prefix, escaped or raw', () => {
    const value = fc.letrec<{ value: unknown }>((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        fc.oneof(fc.string({ unit: 'grapheme' }), fc.double({ noNaN: true, noDefaultInfinity: true })),
        fc.constant(null),
        fc.array(tie('value'), { maxLength: 4 }),
        fc.dictionary(fc.string({ unit: 'grapheme' }), tie('value'), { maxKeys: 4 }),
      ),
    })).value;
    fc.assert(
      fc.property(value, fc.boolean(), fc.uint8Array({ maxLength: 4 }), (v, escapeNonAscii, bytes) => {
        let text = JSON.stringify(v);
        if (escapeNonAscii)
          text = text.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
        expectSameAsFastify(Buffer.concat([PADDING, Buffer.from(`${text}}`)]));
        // Arbitrary bytes inside the text, where they may break UTF-8 or the JSON.
        const at = Math.floor(text.length / 2);
        expectSameAsFastify(
          Buffer.concat([
            PADDING,
            Buffer.from(text.slice(0, at)),
            Buffer.from(bytes),
            Buffer.from(`${text.slice(at)}}`),
          ]),
        );
      }),
      { numRuns: 300 },
    );
  });

  it('answers a body nested deeper than MAX_JSON_DEPTH with a 400 before parsing it', () => {
    const result = outcome((done) => parser(request, Buffer.from(`${'['.repeat(101)}${']'.repeat(101)}`), done));
    expect(result.error).toMatchObject({
      name: 'BadRequestException',
      message: 'The JSON body nests deeper than 100 levels',
    });
  });
});
