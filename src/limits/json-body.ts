import { BadRequestException } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { RawServerDefault } from 'fastify';

/**
 * Deepest nesting of objects and arrays a JSON body may have. Real bodies (chunk metadata, LangChain
 * filters) stay far below; a body nested tens of thousands deep would otherwise overflow the stack of
 * the recursive steps after parsing (validation, transformation) and become a 500.
 */
export const MAX_JSON_DEPTH = 100;

/** Whether the JSON text nests objects/arrays deeper than `limit`: one pass over the bytes, strings skipped. */
export function jsonDepthExceeds(text: Buffer, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const byte = text[i];
    if (inString) {
      if (byte === 0x5c)
        i += 1; // backslash: skip the escaped byte
      else if (byte === 0x22) inString = false;
    } else if (byte === 0x22) {
      inString = true;
    } else if (byte === 0x7b || byte === 0x5b) {
      depth += 1;
      if (depth > limit) return true;
    } else if (byte === 0x7d || byte === 0x5d) {
      depth -= 1;
    }
  }
  return false;
}

/**
 * Replaces the JSON body parser with Fastify's own (same errors, same prototype-poisoning checks),
 * preceded by the depth check: a body nested deeper than MAX_JSON_DEPTH is a 400. Call before init.
 */
export function useDepthLimitedJsonParser(app: NestFastifyApplication): void {
  const fastify = app.getHttpAdapter().getInstance();
  const parseJson = fastify.getDefaultJsonParser('error', 'error');
  app.useBodyParser<RawServerDefault>('application/json', {}, (request, body, done) => {
    if (jsonDepthExceeds(body, MAX_JSON_DEPTH)) {
      done(new BadRequestException(`The JSON body nests deeper than ${MAX_JSON_DEPTH} levels`), undefined);
      return;
    }
    void parseJson(request, body.toString('utf8'), done);
  });
}
