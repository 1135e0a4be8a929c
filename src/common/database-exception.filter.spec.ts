import { type ArgumentsHost, ConflictException } from '@nestjs/common';
import { QueryFailedError } from 'typeorm';
import {
  DatabaseExceptionFilter,
  indexRowProblem,
  RetryableConflictException,
  vectorDimensionProblem,
} from './database-exception.filter.js';

describe('vectorDimensionProblem', () => {
  // The messages pgvector 0.8 raises with SQLSTATE 22000 (seen on the test server).
  it('rewords two dimensions meeting in a distance, for each vector type', () => {
    for (const type of ['vector', 'halfvec', 'sparsevec']) {
      expect(vectorDimensionProblem(new Error(`different ${type} dimensions 2 and 3`))).toBe(
        'Vectors of 2 and 3 dimensions met: the collection holds vectors of more than one dimension, which cannot be compared',
      );
    }
  });

  it('rewords a vector cast to a sized type of another dimension', () => {
    expect(vectorDimensionProblem(new Error('expected 3 dimensions, not 2'))).toBe(
      'A vector has 2 dimensions where 3 are expected',
    );
  });

  it('leaves every other message to the generic answer', () => {
    expect(vectorDimensionProblem(new Error('NaN not allowed in vector'))).toBeNull();
    expect(vectorDimensionProblem(new Error('different vector dimensions 2 and 3; DROP TABLE x'))).toBeNull();
    expect(vectorDimensionProblem('different vector dimensions 2 and 3')).toBeNull();
  });
});

describe('indexRowProblem', () => {
  it('names the field behind a btree index that a value is too large for', () => {
    expect(
      indexRowProblem(
        new Error('index row size 3056 exceeds btree version 4 maximum 2704 for index "ix_documents_source_file"'),
      ),
    ).toBe('sourceFile is too large to be indexed: a btree index entry holds about 2,700 bytes (after compression)');
    expect(
      indexRowProblem(
        new Error('index row size 2720 exceeds btree version 4 maximum 2704 for index "idx_embedding_document_type"'),
      ),
    ).toMatch(/^metadata\.document_type is too large/);
  });

  it('leaves other indexes and messages to the generic answer', () => {
    expect(
      indexRowProblem(new Error('index row size 3056 exceeds btree version 4 maximum 2704 for index "other_index"')),
    ).toBeNull();
    expect(indexRowProblem(new Error('index row requires 9000 bytes, maximum size is 8191'))).toBeNull();
  });
});

describe('DatabaseExceptionFilter: Retry-After on a 409', () => {
  /** What the filter sends for `exception`: status, Retry-After and body, through a recording reply. */
  function answer(exception: unknown): { status: number; retryAfter: string | undefined; body: unknown } {
    const headers = new Map<string, string>();
    const sent: { status?: number; body?: unknown } = {};
    const reply = {
      hasHeader: (name: string) => headers.has(name),
      header: (name: string, value: string) => (headers.set(name, value), reply),
      status: (status: number) => ((sent.status = status), reply),
      send: (body: unknown) => ((sent.body = body), reply),
    };
    // A request whose body arrived whole (readableAborted: false).
    const request = { raw: { readableAborted: false } };
    const host = {
      switchToHttp: () => ({ getResponse: () => reply, getRequest: () => request }),
    } as unknown as ArgumentsHost;
    new DatabaseExceptionFilter().catch(exception, host);
    return { status: sent.status ?? 0, retryAfter: headers.get('retry-after'), body: sent.body };
  }
  const failed = (code: string, constraint?: string) =>
    new QueryFailedError('UPDATE …', [], Object.assign(new Error('x'), { code, constraint }));

  it('says when to retry a transaction PostgreSQL cancelled for another (deadlock, serialization failure)', () => {
    for (const code of ['40P01', '40001']) {
      expect(answer(failed(code))).toEqual({
        status: 409,
        retryAfter: '1',
        body: {
          statusCode: 409,
          message: 'The request conflicted with a concurrent change; retry it',
          error: 'Conflict',
        },
      });
    }
  });

  it('says it for a RetryableConflictException, and not for a lasting conflict', () => {
    expect(answer(new RetryableConflictException('moved; retry'))).toMatchObject({ status: 409, retryAfter: '1' });
    expect(answer(new ConflictException('Document "x" already exists'))).toMatchObject({
      status: 409,
      retryAfter: undefined,
    });
    expect(answer(failed('23505'))).toMatchObject({ status: 409, retryAfter: undefined });
  });

  it('answers the server running out of something, or restarting, with a 503 to retry after a second', () => {
    const cases: Array<[string, string]> = [
      ['53000', 'The database is out of resources; retry shortly'],
      ['53100', 'The database server is out of disk space'],
      // The shared lock table full (max_locks_per_transaction): it frees when the other transaction ends.
      ['53200', 'The database is out of lock memory; retry shortly'],
      ['53300', 'The database has no free connection'],
      ['53400', 'The database reached a configured limit; retry shortly'],
      ['57014', 'The query took too long and was cancelled'],
      ['57P01', 'The database is restarting'],
      ['57P03', 'The database is starting up'],
      ['25006', 'The database is read-only at the moment; retry shortly'],
    ];
    for (const [code, message] of cases) {
      expect({ code, ...answer(failed(code)) }).toEqual({
        code,
        status: 503,
        retryAfter: '1',
        body: { statusCode: 503, message, error: 'Service Unavailable' },
      });
    }
  });

  it("says it when a chunk's collection was deleted under the write, naming that; not for another foreign key", () => {
    expect(answer(failed('23503', 'langchain_pg_embedding_collection_id_fkey'))).toEqual({
      status: 409,
      retryAfter: '1',
      body: {
        statusCode: 409,
        message: 'The collection was deleted while this request wrote into it; retry it',
        error: 'Conflict',
      },
    });
    expect(answer(failed('23503', 'other_fkey'))).toEqual({
      status: 409,
      retryAfter: undefined,
      body: {
        statusCode: 409,
        message: 'The record refers to, or is referred to by, another record',
        error: 'Conflict',
      },
    });
  });
});
