import { type ExecutionContext, HttpException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { loadAppConfig } from '../config/app-config.js';
import { ApiKeyGuard, defaultScopeFor, presentedApiKey, type RequestWithApiKeyLabel } from './api-key.guard.js';
import { RequiredScope } from './auth.decorators.js';
import { accessControlSummary, OPEN_SERVICE_WARNING } from './http-security.js';

const READER = 'reader-key-0123456789';
const ADMIN = 'admin-key-01234567890';

class Routes {
  list(): void {}
  @RequiredScope('admin')
  rebuild(): void {}
}

/** Runs the guard on a fake request: the outcome (true or the HTTP status it threw), the request and the reply headers. */
function attempt(
  guard: ApiKeyGuard,
  handler: keyof Routes,
  method: string,
  headers: Record<string, string> = {},
): { outcome: true | number; request: FastifyRequest; replyHeaders: Record<string, string> } {
  const replyHeaders: Record<string, string> = {};
  const request = { method, headers, raw: {} } as unknown as FastifyRequest;
  const reply = {
    header(name: string, value: string) {
      replyHeaders[name] = value;
      return reply;
    },
  } as unknown as FastifyReply;
  const context = {
    getType: () => 'http',
    getHandler: () => Routes.prototype[handler],
    getClass: () => Routes,
    switchToHttp: () => ({ getRequest: () => request, getResponse: () => reply }),
  } as unknown as ExecutionContext;
  try {
    expect(guard.canActivate(context)).toBe(true);
    return { outcome: true, request, replyHeaders };
  } catch (e) {
    if (!(e instanceof HttpException)) throw e;
    return { outcome: e.getStatus(), request, replyHeaders };
  }
}

const guardFor = (env: Record<string, string>) => new ApiKeyGuard(loadAppConfig(env), new Reflector());

describe('presentedApiKey', () => {
  it.each([
    [{ authorization: `Bearer ${READER}` }, READER],
    [{ authorization: `bearer   ${READER} ` }, READER],
    [{ 'x-api-key': ` ${READER} ` }, READER],
    [{ authorization: `Bearer ${READER}`, 'x-api-key': ADMIN }, READER],
    [{ authorization: 'Basic dXNlcjpwYXNz', 'x-api-key': ADMIN }, ADMIN],
    [{ authorization: 'Basic dXNlcjpwYXNz' }, undefined],
    [{ authorization: 'Bearer ' }, undefined],
    [{ 'x-api-key': '  ' }, undefined],
    [{}, undefined],
  ])('%j → %s', (headers, expected) => {
    expect(presentedApiKey(headers)).toBe(expected);
  });
});

describe('defaultScopeFor', () => {
  it('reads for GET and HEAD, writes for the rest', () => {
    expect(['GET', 'head', 'POST', 'PUT', 'PATCH', 'DELETE'].map(defaultScopeFor)).toEqual([
      'read',
      'read',
      'write',
      'write',
      'write',
      'write',
    ]);
  });
});

describe('ApiKeyGuard', () => {
  it('lets everything through without API_KEYS', () => {
    expect(attempt(guardFor({}), 'rebuild', 'PUT').outcome).toBe(true);
  });

  it('matches a key that is not the first one and labels the request (Fastify and raw) with its label', () => {
    const { outcome, request } = attempt(guardFor({ API_KEYS: `${READER}:read,${ADMIN}` }), 'rebuild', 'PUT', {
      'x-api-key': ADMIN,
    });
    expect(outcome).toBe(true);
    expect(request.apiKeyLabel).toBe('key#2');
    expect((request.raw as RequestWithApiKeyLabel).apiKeyLabel).toBe('key#2');
  });

  it('uses the first entry when the same key is listed twice', () => {
    const guard = guardFor({ API_KEYS: `${READER}:read,${READER}:admin` });
    expect(attempt(guard, 'rebuild', 'PUT', { authorization: `Bearer ${READER}` }).outcome).toBe(403);
  });

  it('sets a Bearer challenge on 401s and none on 403s', () => {
    const guard = guardFor({ API_KEYS: `${READER}:read` });
    expect(attempt(guard, 'rebuild', 'PUT')).toMatchObject({
      outcome: 401,
      replyHeaders: { 'WWW-Authenticate': 'Bearer' },
    });
    expect(attempt(guard, 'rebuild', 'PUT', { 'x-api-key': 'not-a-configured-key' })).toMatchObject({
      outcome: 401,
      replyHeaders: { 'WWW-Authenticate': 'Bearer error="invalid_token"' },
    });
    expect(attempt(guard, 'rebuild', 'PUT', { 'x-api-key': READER })).toEqual(
      expect.objectContaining({ outcome: 403, replyHeaders: {} }),
    );
  });

  it('allows a GET without a key only while reads are public', () => {
    expect(attempt(guardFor({ API_KEYS: READER }), 'list', 'GET').outcome).toBe(true);
    expect(attempt(guardFor({ API_KEYS: READER, API_READS_PUBLIC: 'false' }), 'list', 'GET').outcome).toBe(401);
  });
});

describe('accessControlSummary', () => {
  it('warns that the service is open without keys', () => {
    expect(accessControlSummary(loadAppConfig({}).auth)).toEqual({ level: 'warn', message: OPEN_SERVICE_WARNING });
  });

  it('counts the keys and says whether reads are public, without naming a key', () => {
    const one = accessControlSummary(loadAppConfig({ API_KEYS: READER, API_READS_PUBLIC: 'false' }).auth);
    expect(one).toEqual({
      level: 'log',
      message: 'API keys required: 1 key configured; reads need a key (API_READS_PUBLIC=false)',
    });
    const two = accessControlSummary(loadAppConfig({ API_KEYS: `${READER},${ADMIN}` }).auth);
    expect(two.message).toBe('API keys required: 2 keys configured; reads are public (API_READS_PUBLIC=true)');
    expect(two.message).not.toContain(READER);
  });
});
