import { BadRequestException } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { RawServerDefault } from 'fastify';

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

/**
 * Replaces the JSON body parser with Fastify's own (same errors, same prototype-poisoning checks),
 * preceded by the depth check: a body nested deeper than MAX_JSON_DEPTH is a 400. Call before init.
 */
export function useDepthLimitedJsonParser(app: NestFastifyApplication): void {
  const fastify = app.getHttpAdapter().getInstance();
  const parseJson = fastify.getDefaultJsonParser('error', 'error');
  app.useBodyParser<RawServerDefault>('application/json', {}, (request, body, done) => {
    const text = body.toString('utf8');
    if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) {
      done(new BadRequestException(`The JSON body nests deeper than ${MAX_JSON_DEPTH} levels`), undefined);
      return;
    }
    void parseJson(request, text, done);
  });
}
