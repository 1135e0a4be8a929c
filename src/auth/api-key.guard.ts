import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import {
  type CanActivate,
  type ExecutionContext,
  ForbiddenException,
  Inject,
  Injectable,
  UnauthorizedException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { APP_CONFIG, type AppConfig, type ApiScope } from '../config/app-config.js';
import { PUBLIC_ROUTE, REQUIRED_SCOPE } from './auth.decorators.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Label (`key#N`) of the API key that authenticated the request; never the key itself. */
    apiKeyLabel?: string;
  }
}

/** The raw Node request also carries the label, for loggers that see only `req.raw` (pino-http). */
export type RequestWithApiKeyLabel = IncomingMessage & { apiKeyLabel?: string };

export const MISSING_KEY_MESSAGE = 'Missing API key: send Authorization: Bearer <key> or x-api-key';
export const INVALID_KEY_MESSAGE = 'Invalid API key';

/** GET and HEAD read; every other method writes. */
export function defaultScopeFor(method: string): ApiScope {
  const upper = method.toUpperCase();
  return upper === 'GET' || upper === 'HEAD' ? 'read' : 'write';
}

/**
 * The key a request presents: `Authorization: Bearer <key>` first, else `x-api-key`. Undefined
 * when neither carries a non-empty value (another Authorization scheme counts as no key).
 */
export function presentedApiKey(headers: FastifyRequest['headers']): string | undefined {
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
    if (match) return match[1];
  }
  const header = headers['x-api-key'];
  const apiKey = Array.isArray(header) ? header.join(',') : header;
  return apiKey === undefined || apiKey.trim() === '' ? undefined : apiKey.trim();
}

interface StoredKey {
  readonly label: string;
  /** SHA-256 of the key: every digest is 32 bytes, so timingSafeEqual never sees unequal lengths. */
  readonly digest: Buffer;
  readonly scopes: ReadonlySet<ApiScope>;
}

const sha256 = (value: string): Buffer => createHash('sha256').update(value, 'utf8').digest();

/** What ApiKeys.decide says of a request: let it through (with the key's label), or refuse it. */
export type ApiKeyDecision =
  | { readonly allowed: true; readonly label?: string }
  | {
      readonly allowed: false;
      readonly status: 401 | 403;
      readonly message: string;
      readonly challenge?: string;
      /** The key's label when a valid key lacked the scope (a 403): the logs still say whose it was. */
      readonly label?: string;
    };

/**
 * The rule of API_KEYS, shared by ApiKeyGuard and the check before the body is read
 * (useEarlyApiKeyCheck). A route needs a key holding its scope, except reads when API_READS_PUBLIC
 * is true and the request presents no key. A presented key is always checked, so a wrong key is a
 * 401 even on a public read. Keys are compared in constant time and never logged or echoed.
 */
export class ApiKeys {
  private readonly keys: readonly StoredKey[];
  private readonly readsPublic: boolean;

  constructor(config: AppConfig) {
    this.keys = config.auth.apiKeys.map((k) => ({ label: k.label, digest: sha256(k.key), scopes: k.scopes }));
    this.readsPublic = config.auth.readsPublic;
  }

  /** Whether API_KEYS is set: without keys every route is open. */
  get enabled(): boolean {
    return this.keys.length > 0;
  }

  decide(scope: ApiScope, headers: FastifyRequest['headers']): ApiKeyDecision {
    if (!this.enabled) return { allowed: true };
    const presented = presentedApiKey(headers);
    if (presented === undefined) {
      if (scope === 'read' && this.readsPublic) return { allowed: true };
      return { allowed: false, status: 401, message: MISSING_KEY_MESSAGE, challenge: 'Bearer' };
    }
    const key = this.match(presented);
    if (key === undefined) {
      return { allowed: false, status: 401, message: INVALID_KEY_MESSAGE, challenge: 'Bearer error="invalid_token"' };
    }
    if (!key.scopes.has(scope)) {
      return {
        allowed: false,
        status: 403,
        message: `API key ${key.label} lacks the "${scope}" scope this route needs`,
        label: key.label,
      };
    }
    return { allowed: true, label: key.label };
  }

  /** Compares against every key without stopping at a match, so timing does not tell which key (or whether any) matched. */
  private match(presented: string): StoredKey | undefined {
    const digest = sha256(presented);
    let found: StoredKey | undefined;
    for (const key of this.keys) {
      const equal = timingSafeEqual(digest, key.digest);
      if (equal && found === undefined) found = key;
    }
    return found;
  }
}

/**
 * The global guard (APP_GUARD) for API_KEYS (the rule: ApiKeys). A `@Public()` route needs no key;
 * any other needs one holding its scope (`@RequiredScope`, else read for GET/HEAD and write otherwise).
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly keys: ApiKeys;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly reflector: Reflector,
  ) {
    this.keys = new ApiKeys(config);
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.keys.enabled || context.getType() !== 'http') return true;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean | undefined>(PUBLIC_ROUTE, targets)) return true;

    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const scope =
      this.reflector.getAllAndOverride<ApiScope | undefined>(REQUIRED_SCOPE, targets) ??
      defaultScopeFor(request.method);
    const decision = this.keys.decide(scope, request.headers);
    if (decision.label !== undefined) {
      request.apiKeyLabel = decision.label;
      (request.raw as RequestWithApiKeyLabel).apiKeyLabel = decision.label;
    }
    if (!decision.allowed) {
      if (decision.challenge) void http.getResponse<FastifyReply>().header('WWW-Authenticate', decision.challenge);
      throw decision.status === 401
        ? new UnauthorizedException(decision.message)
        : new ForbiddenException(decision.message);
    }
    return true;
  }
}
