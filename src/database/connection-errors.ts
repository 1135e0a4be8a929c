import { QueryFailedError } from 'typeorm';

/** Error codes of the socket or SQLSTATEs that mean "this server cannot serve now", not "this query is wrong". */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  '57P01', // admin_shutdown: the server is stopping
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up or shutting down
  '53300', // too_many_connections
]);

const CONNECTION_MESSAGES =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable|Driver not Connected|query runner (was )?already released/i;

/**
 * The SQLSTATE PostgreSQL sent with an error (of a statement, or of a connection it refused):
 * read from TypeORM's QueryFailedError (its driverError) or from pg's own error. Undefined for any
 * other error, including the socket's (ECONNREFUSED is not a SQLSTATE). The one place that knows
 * where the code sits: callers compare it with the SQLSTATE they handle.
 */
export function sqlState(error: unknown): string | undefined {
  // Duck-typed, as below: the error may come from another realm (jest's module sandbox).
  const cause = (error as { driverError?: unknown } | null)?.driverError ?? error;
  const code = (cause as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * True for failures of the connection (refused, timed out, dropped, server shutting down), which
 * another server may not have; false for errors of the query itself (22P02, 23505…), which would
 * fail the same way anywhere and must not be retried. The one test of "the database is
 * unreachable right now": read replicas use it to fail over, the exception filter to answer 503.
 */
export function isConnectionFailure(error: unknown): boolean {
  const cause = error instanceof QueryFailedError ? (error.driverError as unknown) : error;
  // Duck-typed, not `instanceof Error`: errors from Node's net layer may come from another realm
  // (jest's module sandbox), and then `instanceof` is false for a perfectly ordinary Error.
  if (typeof cause !== 'object' || cause === null) return false;
  const { code, message, errors } = cause as { code?: unknown; message?: unknown; errors?: unknown };
  if (typeof code === 'string' && (CONNECTION_CODES.has(code) || code.startsWith('08'))) return true;
  // Node reports a refused connect to a name with several addresses as an AggregateError.
  if (Array.isArray(errors) && errors.some(isConnectionFailure)) return true;
  return typeof message === 'string' && CONNECTION_MESSAGES.test(message);
}

/**
 * True for a read a hot standby cancelled because it conflicted with the WAL it replays ("canceling
 * statement due to conflict with recovery": SQLSTATE 40001, or 40P01 for a buffer-pin deadlock).
 * The read itself is fine: another server, or the primary, answers it. Only read replicas use it
 * (a read-only transaction on a replica meets no other serialization failure).
 */
export function isRecoveryConflict(error: unknown): boolean {
  const code = sqlState(error);
  return code === '40001' || code === '40P01';
}

/**
 * What readiness and every request say while the tables are missing (SQLSTATE 42P01 on a server
 * database never migrated): an operator's step, not the client's error nor a bug.
 */
export const SCHEMA_MISSING = 'The database has no schema yet: run npm run db:migrate';
