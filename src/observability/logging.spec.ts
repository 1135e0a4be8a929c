import type { IncomingMessage } from 'node:http';
import { Writable } from 'node:stream';
import { pinoHttp, type Options } from 'pino-http';
import { loadAppConfig } from '../config/app-config.js';
import { loggerParams, requestIdFor } from './logging.js';
import { redactConnectionStrings } from './redact.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const requestWith = (headers: IncomingMessage['headers']): IncomingMessage => ({ headers }) as IncomingMessage;

describe('requestIdFor', () => {
  it('keeps a well-formed x-request-id', () => {
    expect(requestIdFor(requestWith({ 'x-request-id': 'A-z_0.9' }))).toBe('A-z_0.9');
    expect(requestIdFor(requestWith({ 'x-request-id': 'a'.repeat(128) }))).toBe('a'.repeat(128));
  });

  it.each([[undefined], [''], ['a'.repeat(129)], ['two words'], ['x\u00e9'], ['{"$gt":""}'], [['a', 'b']]])(
    'replaces %j with a new UUID',
    (header) => {
      expect(requestIdFor(requestWith({ 'x-request-id': header }))).toMatch(UUID);
    },
  );
});

describe('redactConnectionStrings', () => {
  it.each([
    [
      'connect failed: postgresql://kb:s3cret@db.example:5432/kb',
      'connect failed: postgresql://kb:***@db.example:5432/kb',
    ],
    ['postgres://u:p%40ss:w@h/d and postgres://v:q@h2/d', 'postgres://u:***@h/d and postgres://v:***@h2/d'],
    ['POSTGRESQL://Admin:x@h', 'POSTGRESQL://Admin:***@h'],
    // Any scheme: a provider's error may quote its own cache, queue or upstream.
    ['redis://:s3cret@cache:6379/0, amqp://q:pw@mq', 'redis://:***@cache:6379/0, amqp://q:***@mq'],
    ['fetch https://user:tok3n@internal.example/v1 failed', 'fetch https://user:***@internal.example/v1 failed'],
    // A raw @ in the password: all of it goes, up to the host.
    ['postgres://u:p@ss@host:5432/db failed', 'postgres://u:***@host:5432/db failed'],
    [
      'postgresql://host/db?user=u&password=s3cret&sslmode=require',
      'postgresql://host/db?user=u&password=***&sslmode=require',
    ],
  ])('%s', (input, expected) => {
    expect(redactConnectionStrings(input)).toBe(expected);
  });

  it('leaves text without a password alone', () => {
    for (const text of ['connect ECONNREFUSED 127.0.0.1:5432', 'postgresql://postgres@127.0.0.1:5432/kb', 'a:b@c']) {
      expect(redactConnectionStrings(text)).toBe(text);
    }
  });
});

describe('loggerParams', () => {
  function captureLogger(): { logger: ReturnType<typeof pinoHttp>['logger']; output: string[] } {
    const output: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        output.push(chunk.toString());
        done();
      },
    });
    const [options] = loggerParams(loadAppConfig({ LOG_LEVEL: 'info' })).pinoHttp as [Options, unknown];
    return { logger: pinoHttp(options, stream).logger, output };
  }

  it('writes JSON at the configured level and strips passwords from messages and errors', () => {
    const { logger, output } = captureLogger();
    logger.debug('not at info');
    logger.warn('pool error for postgresql://kb:hunter2@db/kb');
    logger.error({ err: new Error('cannot reach postgres://kb:hunter2@db/kb') }, 'failed');
    expect(output).toHaveLength(2);
    const [warning, failure] = output.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(warning).toMatchObject({ level: 40, msg: 'pool error for postgresql://kb:***@db/kb' });
    expect(failure).toMatchObject({ level: 50, err: { message: 'cannot reach postgres://kb:***@db/kb' } });
    expect(output.join('')).not.toContain('hunter2');
  });

  it('redacts credentials in request headers', () => {
    const { logger, output } = captureLogger();
    logger.info({
      req: {
        method: 'GET',
        url: '/',
        headers: { authorization: 'Bearer t0ken', 'x-api-key': 'k3y', cookie: 'c00kie' },
      },
    });
    expect(output.join('')).not.toMatch(/t0ken|k3y|c00kie/);
    expect(JSON.parse(output[0])).toMatchObject({ req: { headers: { authorization: '[redacted]' } } });
  });
});
