import type { LoggerService } from '@nestjs/common';
import pino, { type Logger } from 'pino';
import type { LogLevel } from '../config/app-config.js';
import { redactConnectionStrings } from './redact.js';

/** A log message as text: an Error's message, a string as it is, anything else as JSON (or its String()). */
function textOf(message: unknown): string {
  if (message instanceof Error) return message.message;
  if (typeof message === 'string') return message;
  // JSON.stringify gives undefined for undefined and functions, whatever its declared type says.
  const json: string | undefined = JSON.stringify(message);
  return json ?? String(message);
}

/** Nest's context for the error that aborted the application's initialization. */
const INITIALIZATION_ERROR_CONTEXT = 'ExceptionHandler';

/**
 * Nest's logger while the application starts, before the nestjs-pino logger exists: the same JSON
 * lines (level, time, pid, hostname, context, msg) on stdout, written as they happen. Buffering them
 * until start-up ended (bufferLogs) left a new user's terminal silent for the 10–20 s a first
 * embedded start takes, and a failed start flushed them through Nest's default console logger as
 * coloured text. The error that aborts a start is not written here: main.ts reports it in one line
 * (Nest wrote it with its stack trace first).
 */
export class StartupLogger implements LoggerService {
  private readonly logger: Logger;

  constructor(level: LogLevel) {
    // process.stdout rather than pino's own fd writer, as loggerParams: a test can observe the lines.
    this.logger = pino({ level }, process.stdout);
  }

  log(message: unknown, ...context: unknown[]): void {
    this.write('info', message, context);
  }

  error(message: unknown, ...rest: unknown[]): void {
    const context = rest.at(-1);
    if (context === INITIALIZATION_ERROR_CONTEXT) return;
    // Nest passes (message, stack, context) for an error.
    const stack = rest.length > 1 && typeof rest[0] === 'string' ? rest[0] : undefined;
    this.write('error', message, rest.slice(-1), stack);
  }

  warn(message: unknown, ...context: unknown[]): void {
    this.write('warn', message, context);
  }

  debug(message: unknown, ...context: unknown[]): void {
    this.write('debug', message, context);
  }

  verbose(message: unknown, ...context: unknown[]): void {
    this.write('trace', message, context);
  }

  fatal(message: unknown, ...context: unknown[]): void {
    this.write('fatal', message, context);
  }

  private write(level: pino.Level, message: unknown, rest: unknown[], stack?: string): void {
    if (!this.logger.isLevelEnabled(level)) return;
    const context = rest.at(-1);
    const fields: Record<string, unknown> = typeof context === 'string' ? { context } : {};
    const trace = stack ?? (message instanceof Error ? message.stack : undefined);
    if (trace !== undefined) fields.stack = redactConnectionStrings(trace);
    // Redacted as loggerParams' hook redacts: a driver's message may quote DATABASE_URL.
    this.logger[level](fields, redactConnectionStrings(textOf(message)));
  }
}
