import pg from 'pg';
import { QueryFailedError } from 'typeorm';
import { isConnectionFailure, isRecoveryConflict } from './connection-errors.js';

/** Errors shaped as the pg driver raises them (messages observed against a stopped PostgreSQL 17). */
function databaseError(message: string, code: string): pg.DatabaseError {
  const error = new pg.DatabaseError(message, message.length, 'error');
  error.code = code;
  return error;
}

function refused(): Error {
  return Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:54330'), { code: 'ECONNREFUSED' });
}

describe('isConnectionFailure (which replica errors move a read to the next server)', () => {
  it.each([
    ['a refused connect', refused()],
    ['a refused connect to a name with several addresses', new AggregateError([refused(), refused()], '')],
    ['an idle or busy connection dropped by a crash', new Error('Connection terminated unexpectedly')],
    ['a connect timeout', new Error('timeout exceeded when trying to connect')],
    ['a fast shutdown (57P01)', databaseError('terminating connection due to administrator command', '57P01')],
    ['a server starting up (57P03)', databaseError('the database system is starting up', '57P03')],
    ['too many clients (53300)', databaseError('sorry, too many clients already', '53300')],
    ['a connection exception class 08', databaseError('connection failure', '08006')],
    [
      '57P01 wrapped by TypeORM',
      new QueryFailedError(
        'SELECT 1',
        [],
        databaseError('terminating connection due to administrator command', '57P01'),
      ),
    ],
  ])('retries elsewhere after %s', (_label, error) => {
    expect(isConnectionFailure(error)).toBe(true);
  });

  it.each([
    [
      'a malformed value (22P02)',
      new QueryFailedError('SELECT $1::uuid', ['x'], databaseError('invalid input', '22P02')),
    ],
    [
      'a cancelled statement (57014)',
      new QueryFailedError('SELECT', [], databaseError('canceling statement', '57014')),
    ],
    ['an error of our own code', new Error('Document "x" not found')],
    ['a thrown non-error', 'boom'],
  ])('does not retry after %s', (_label, error) => {
    expect(isConnectionFailure(error)).toBe(false);
  });
});

describe('isRecoveryConflict (which replica errors run the read on the next server without marking it down)', () => {
  const conflict = 'canceling statement due to conflict with recovery';
  it.each([
    ['a statement cancelled by recovery (40001)', new QueryFailedError('SELECT', [], databaseError(conflict, '40001'))],
    ['a buffer-pin deadlock with recovery (40P01)', databaseError(conflict, '40P01')],
  ])('runs elsewhere after %s', (_label, error) => {
    expect(isRecoveryConflict(error)).toBe(true);
    expect(isConnectionFailure(error)).toBe(false);
  });

  it.each([
    ['a malformed value (22P02)', new QueryFailedError('SELECT', [], databaseError('invalid input', '22P02'))],
    ['a refused connect', refused()],
    ['an error of our own code', new Error('Document "x" not found')],
  ])('not after %s', (_label, error) => {
    expect(isRecoveryConflict(error)).toBe(false);
  });
});
