import { jest } from '@jest/globals';
import { StartupLogger } from './startup-logger.js';

describe('StartupLogger', () => {
  /** The JSON lines the logger writes while `log` runs. */
  function linesOf(
    log: (logger: StartupLogger) => void,
    level: 'info' | 'warn' = 'info',
  ): Array<Record<string, unknown>> {
    const written: string[] = [];
    const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      log(new StartupLogger(level));
    } finally {
      write.mockRestore();
    }
    return written
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  it("writes Nest's lines as JSON with their context, at the configured level", () => {
    const lines = linesOf((l) => {
      l.log('Starting Nest application...', 'NestFactory');
      l.debug('not at info', 'X');
      l.warn('API_KEYS is not set', 'Auth');
    });
    expect(lines).toEqual([
      expect.objectContaining({ level: 30, context: 'NestFactory', msg: 'Starting Nest application...' }),
      expect.objectContaining({ level: 40, context: 'Auth', msg: 'API_KEYS is not set' }),
    ]);
    expect(linesOf((l) => l.log('quiet', 'X'), 'warn')).toEqual([]);
  });

  it('keeps an Error message and stack, survives undefined, and redacts connection strings', () => {
    const error = new Error('connect ECONNREFUSED postgresql://kb:secret@db:5432/kb');
    const lines = linesOf((l) => {
      l.error(error, 'Database');
      l.log(undefined, 'X');
      l.error('failed', 'stack line\n    at postgres://u:pw@h/db', 'Database');
    });
    expect(lines[0]).toMatchObject({ level: 50, context: 'Database', msg: expect.stringContaining('ECONNREFUSED') });
    expect(lines[0].stack).toEqual(expect.stringContaining('Error: connect ECONNREFUSED'));
    expect(lines[1]).toMatchObject({ level: 30, msg: 'undefined' });
    expect(lines[2]).toMatchObject({ level: 50, msg: 'failed', stack: expect.stringContaining('stack line') });
    expect(JSON.stringify(lines)).not.toMatch(/secret|:pw@/);
  });

  it('leaves out the error that aborted the start: main.ts reports it in one line', () => {
    expect(linesOf((l) => l.error('DATA_DIR is in use', 'Error: …\n    at …', 'ExceptionHandler'))).toEqual([]);
  });
});
