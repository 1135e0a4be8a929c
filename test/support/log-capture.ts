import { jest } from '@jest/globals';

export type LogLine = Record<string, unknown> & { reqId?: string; msg?: string; level?: number };

/**
 * Collects the JSON lines the app logs on stdout (pino writes to process.stdout); anything that
 * is not JSON is passed through.
 */
export class LogCapture {
  readonly raw: string[] = [];
  readonly lines: LogLine[] = [];
  private restore?: () => void;

  start(): void {
    const original = process.stdout.write.bind(process.stdout);
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: unknown, ...rest: unknown[]) => {
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
      if (!text.startsWith('{')) return (original as (...args: unknown[]) => boolean)(chunk, ...rest);
      for (const line of text.split('\n').filter(Boolean)) {
        this.raw.push(line);
        this.lines.push(JSON.parse(line) as LogLine);
      }
      return true;
    });
    this.restore = () => spy.mockRestore();
  }

  stop(): void {
    this.restore?.();
  }

  /** The lines of one request, once `predicate` matches one of them (bounded: the line is written as the response ends). */
  async forRequest(reqId: string, predicate: (line: LogLine) => boolean): Promise<LogLine[]> {
    // Up to 10 s: a busy 2-vCPU machine can hold the line back well past a second.
    for (let attempt = 0; attempt < 1000; attempt++) {
      const lines = this.lines.filter((l) => l.reqId === reqId);
      if (lines.some(predicate)) return lines;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`no matching log line for request ${reqId}: ${JSON.stringify(this.lines.slice(-5))}`);
  }

  /** The messages logged at warn level (pino level 40) since the last clear(). */
  warnings(): string[] {
    return this.lines.filter((l) => l.level === 40).map((l) => String(l.msg));
  }

  clear(): void {
    this.lines.length = 0;
    this.raw.length = 0;
  }
}
