import {
  type ArgumentsHost,
  Catch,
  ConflictException,
  type ExceptionFilter,
  HttpException,
  HttpStatus,
  Logger,
  ServiceUnavailableException,
} from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import pg from 'pg';
import { QueryFailedError } from 'typeorm';
import { isConnectionFailure, SCHEMA_MISSING, sqlState } from '../database/connection-errors.js';
import { redactConnectionStrings } from '../observability/redact.js';

/** PostgreSQL error codes a client can cause, with the status and a message that carries no SQL. */
const CLIENT_ERRORS: Record<string, [number, string]> = {
  '23505': [HttpStatus.CONFLICT, 'A record with the same unique key already exists'],
  '23503': [HttpStatus.CONFLICT, 'The record refers to, or is referred to by, another record'],
  '23502': [HttpStatus.BAD_REQUEST, 'A required value is missing'],
  '23514': [HttpStatus.BAD_REQUEST, 'A value breaks a check constraint'],
  '22001': [HttpStatus.BAD_REQUEST, 'A value is too long for its field'],
  '22003': [HttpStatus.BAD_REQUEST, 'A number is out of range'],
  '22P02': [HttpStatus.BAD_REQUEST, 'A value has the wrong format'],
  // e.g. a NUL character in a path or query parameter: text cannot hold U+0000.
  '22021': [HttpStatus.BAD_REQUEST, 'A value contains a character the database cannot store'],
  // A server database not encoded in UTF8 cannot hold every character of a request's text.
  '22P05': [HttpStatus.BAD_REQUEST, "A value contains a character the database's encoding cannot store"],
  '22023': [HttpStatus.BAD_REQUEST, 'A value is invalid'],
  '22000': [HttpStatus.BAD_REQUEST, 'A value is invalid'], // pgvector's dimension errors: vectorDimensionProblem
  '54000': [HttpStatus.BAD_REQUEST, 'A value is too large'],
  '40P01': [HttpStatus.CONFLICT, 'The request conflicted with a concurrent change; retry it'],
  '40001': [HttpStatus.CONFLICT, 'The request conflicted with a concurrent change; retry it'],
  '57014': [HttpStatus.SERVICE_UNAVAILABLE, 'The query took too long and was cancelled'],
  '53300': [HttpStatus.SERVICE_UNAVAILABLE, 'The database has no free connection'],
  '53000': [HttpStatus.SERVICE_UNAVAILABLE, 'The database is out of resources; retry shortly'],
  '53100': [HttpStatus.SERVICE_UNAVAILABLE, 'The database server is out of disk space'],
  '53400': [HttpStatus.SERVICE_UNAVAILABLE, 'The database reached a configured limit; retry shortly'],
  // A write on a standby (DATABASE_URL reaching a demoted primary after a failover), or while the
  // server is read-only for maintenance (default_transaction_read_only): it passes, so retry.
  '25006': [HttpStatus.SERVICE_UNAVAILABLE, 'The database is read-only at the moment; retry shortly'],
  '42P01': [HttpStatus.SERVICE_UNAVAILABLE, SCHEMA_MISSING], // undefined_table
  // The shared lock table is full (max_locks_per_transaction): another session's large transaction
  // holds it, and it frees when that one ends.
  '53200': [HttpStatus.SERVICE_UNAVAILABLE, 'The database is out of lock memory; retry shortly'],
  '57P01': [HttpStatus.SERVICE_UNAVAILABLE, 'The database is restarting'],
  '57P02': [HttpStatus.SERVICE_UNAVAILABLE, 'The database is restarting'], // another backend crashed
  '57P03': [HttpStatus.SERVICE_UNAVAILABLE, 'The database is starting up'],
};

/**
 * A 409 that the same request, sent again, is expected to pass: a concurrent writer got in its way
 * (a chunk that changed owner, a collection deleted and created again). Answered with Retry-After, as
 * PostgreSQL's deadlock and serialization failures are, so a client can tell it from the 409 of a
 * lasting conflict (a documentId that exists), which carries none.
 */
export class RetryableConflictException extends ConflictException {}

/**
 * A chunk write whose collection was deleted (DELETE /collections/:name, LangChain's
 * delete_collection, SQL) after the write had looked it up: the chunk's foreign key finds no
 * collection. Sent again, the request creates the collection anew, as it would have after the
 * delete; the writes that can run again do so at once (retryWriteConflicts).
 */
export function isCollectionGone(error: unknown): boolean {
  if (!(error instanceof QueryFailedError) || sqlState(error) !== '23503') return false;
  return (error.driverError as { constraint?: string }).constraint === 'langchain_pg_embedding_collection_id_fkey';
}

const COLLECTION_GONE_MESSAGE = 'The collection was deleted while this request wrote into it; retry it';

/** SQLSTATEs whose 409 is worth retrying at once: PostgreSQL cancelled the transaction for another. */
const RETRYABLE_CONFLICTS = new Set(['40P01', '40001']);

/**
 * A statement's failure that the same transaction, started again, is expected to pass: a deadlock
 * or serialization failure (PostgreSQL cancelled it for a concurrent transaction), or the chunk's
 * collection deleted under it (isCollectionGone). retryWriteConflicts runs such a write again; a
 * client that gets its 409 is told to retry (Retry-After).
 */
export function isTransientConflict(error: unknown): boolean {
  return RETRYABLE_CONFLICTS.has(sqlState(error) ?? '') || isCollectionGone(error);
}

/** Retry-After of a retryable 409: the concurrent transaction it met is usually done by then. */
export const CONFLICT_RETRY_AFTER_SECONDS = 1;

/** Retry-After of a 503 caused by the database: pool waits and restarts last about a second. */
export const DATABASE_RETRY_AFTER_SECONDS = 1;

/**
 * A 503 whose cause said when to come back: an embedding provider or LLM that rate-limits with a
 * Retry-After longer than the service waits itself. The filter sends that wait instead of the
 * database's second, so clients do not come back at once and add to the throttling.
 */
export class ServiceUnavailableWithRetryAfter extends ServiceUnavailableException {
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** The answer to a request whose client closed the connection before its body arrived (it reaches nobody). */
const CLIENT_GONE_MESSAGE = 'The request body did not arrive: the client closed the connection';

/**
 * The one global exception filter: HttpExceptions pass through in Nest's standard shape; database
 * errors become a 4xx or 503 naming the problem, never SQL; anything else is a 500 whose details
 * go to the log only.
 */
@Catch()
export class DatabaseExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Exceptions');

  catch(exception: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const request = host.switchToHttp().getRequest<FastifyRequest>();
    // The client closed its connection while its body was being read (it gave up, or the 408 cut a
    // trickle off): the read fails with ECONNRESET ("aborted"), which is no database's failure. It
    // was logged as "Database unavailable", a false alarm. The answer reaches nobody; it is sent so
    // that the request ends as every other does.
    if (request.raw.readableAborted && !(exception instanceof HttpException) && isConnectionFailure(exception)) {
      const message = exception instanceof Error ? exception.message : String(exception);
      this.logger.log(`The client closed the connection before its request was read (${message})`);
      void reply.status(HttpStatus.BAD_REQUEST).send(standardBody(HttpStatus.BAD_REQUEST, CLIENT_GONE_MESSAGE));
      return;
    }
    const [status, body] = this.toResponse(exception);
    // Every 503 here is a database that is busy, restarting or unreachable: say when to retry, so
    // clients and proxies back off instead of retrying at once (an upstream 503 keeps its own value).
    if (status === Number(HttpStatus.SERVICE_UNAVAILABLE) && !reply.hasHeader('retry-after')) {
      const seconds =
        exception instanceof ServiceUnavailableWithRetryAfter
          ? exception.retryAfterSeconds
          : DATABASE_RETRY_AFTER_SECONDS;
      void reply.header('retry-after', String(seconds));
    }
    if (
      status === Number(HttpStatus.CONFLICT) &&
      (exception instanceof RetryableConflictException || isTransientConflict(exception))
    ) {
      void reply.header('retry-after', String(CONFLICT_RETRY_AFTER_SECONDS));
    }
    void reply.status(status).send(body);
  }

  private toResponse(exception: unknown): [number, Record<string, unknown>] {
    if (exception instanceof HttpException) {
      const response = exception.getResponse();
      const body =
        typeof response === 'string'
          ? // Fastify's own errors (413, 415, malformed JSON) arrive as plain HttpExceptions: name the status instead.
            {
              statusCode: exception.getStatus(),
              message: response,
              error: STATUS_CODES[exception.getStatus()] ?? exception.name,
            }
          : (response as Record<string, unknown>);
      return [exception.getStatus(), body];
    }
    // A failed statement's SQLSTATE (QueryFailedError) gives its status. A server refusing a new
    // connection (starting up, shutting down, too many clients) fails the pool's connect with a pg
    // DatabaseError instead: its SQLSTATEs give the same 503s, but never a 4xx, which only a
    // statement can cause.
    const ofStatement = exception instanceof QueryFailedError;
    const code = ofStatement || exception instanceof pg.DatabaseError ? sqlState(exception) : undefined;
    const known = code === undefined ? undefined : CLIENT_ERRORS[code];
    if (known && (ofStatement || known[0] >= 500)) {
      const [status, generic] = known;
      const message =
        (code === '22000' && vectorDimensionProblem(exception)) ||
        (code === '54000' && indexRowProblem(exception)) ||
        (isCollectionGone(exception) && COLLECTION_GONE_MESSAGE) ||
        generic;
      if (status >= 500) this.logger.warn(`${message} (SQLSTATE ${code})`);
      return [status, standardBody(status, message)];
    }
    // Logged, never sent: a driver message may quote a connection string, so its password goes.
    const message = redactConnectionStrings(exception instanceof Error ? exception.message : String(exception));
    if (isConnectionFailure(exception)) {
      this.logger.warn(`Database unavailable: ${message}`);
      return [
        HttpStatus.SERVICE_UNAVAILABLE,
        standardBody(HttpStatus.SERVICE_UNAVAILABLE, 'The database is unavailable; retry shortly'),
      ];
    }
    // Message and stack, not the error object: a QueryFailedError also carries its bound parameters (whole vectors).
    const stack = exception instanceof Error && exception.stack ? redactConnectionStrings(exception.stack) : undefined;
    this.logger.error(message, stack);
    return [HttpStatus.INTERNAL_SERVER_ERROR, standardBody(HttpStatus.INTERNAL_SERVER_ERROR, 'Internal server error')];
  }
}

/**
 * The request field behind each btree index of the schema that holds unbounded text: a value a
 * btree cannot hold (about 2,700 bytes after compression) fails the write with SQLSTATE 54000,
 * naming the index. Validation cannot see it coming: the limit applies to the compressed value.
 */
const INDEXED_FIELDS: Readonly<Record<string, string>> = {
  ix_documents_source_file: 'sourceFile',
  idx_documents_source: 'sourceFile', // the Python schema's name for the same index
  idx_embedding_document_id: 'metadata.document_id',
  // chunk_counts (/stats) keys its rows by collection and document_id: a few bytes less fit.
  chunk_counts_key: 'metadata.document_id',
  idx_embedding_document_type: 'metadata.document_type',
};

/** The request field (INDEXED_FIELDS) whose value a btree refused as too large (SQLSTATE 54000). */
export function fieldTooLargeToIndex(error: unknown): string | undefined {
  const message = error instanceof Error ? error.message : '';
  const index = /^index row size \d+ exceeds btree version \d+ maximum \d+ for index "([^"]+)"$/.exec(message)?.[1];
  return index === undefined ? undefined : INDEXED_FIELDS[index];
}

/** The 400's message for a field a btree could not index. */
export function tooLargeToIndexMessage(field: string): string {
  return `${field} is too large to be indexed: a btree index entry holds about 2,700 bytes (after compression)`;
}

/**
 * A btree's refusal of a value too large for one index entry (SQLSTATE 54000), reworded with the
 * field it came from; null for another index or message.
 */
export function indexRowProblem(error: unknown): string | null {
  const field = fieldTooLargeToIndex(error);
  return field === undefined ? null : tooLargeToIndexMessage(field);
}

/**
 * pgvector's refusals of vectors of two dimensions (SQLSTATE 22000), reworded with their numbers
 * and nothing else of the statement: a collection holding more than one dimension (written by
 * another tool) met in a distance, or a vector cast to a sized type such as a vector index's
 * expression. Null for any other message.
 */
export function vectorDimensionProblem(error: unknown): string | null {
  const message = error instanceof Error ? error.message : '';
  const mixed = /^different (?:vector|halfvec|sparsevec) dimensions (\d+) and (\d+)$/.exec(message);
  if (mixed) {
    return `Vectors of ${mixed[1]} and ${mixed[2]} dimensions met: the collection holds vectors of more than one dimension, which cannot be compared`;
  }
  const sized = /^expected (\d+) dimensions, not (\d+)$/.exec(message);
  if (sized) return `A vector has ${sized[2]} dimensions where ${sized[1]} are expected`;
  return null;
}

const STATUS_NAMES: Partial<Record<number, string>> = {
  400: 'Bad Request',
  409: 'Conflict',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

function standardBody(statusCode: number, message: string): Record<string, unknown> {
  return { statusCode, message, error: STATUS_NAMES[statusCode] ?? 'Error' };
}
