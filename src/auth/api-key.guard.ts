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

/**
 * The global guard (APP_GUARD) for API_KEYS. Without keys every route is open. With keys: a
 * `@Public()` route needs none; any other needs a key holding its scope (`@RequiredScope`, else
 * read for GET/HEAD and write otherwise), except reads when API_READS_PUBLIC is true and the
 * request presents no key. A presented key is always checked, so a wrong key is a 401 even on a
 * public read. Keys are compared in constant time and never logged or echoed.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  private readonly keys: readonly StoredKey[];
  private readonly readsPublic: boolean;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly reflector: Reflector,
  ) {
    this.keys = config.auth.apiKeys.map((k) => ({ label: k.label, digest: sha256(k.key), scopes: k.scopes }));
    this.readsPublic = config.auth.readsPublic;
  }

  canActivate(context: ExecutionContext): boolean {
    if (this.keys.length === 0 || context.getType() !== 'http') return true;
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean | undefined>(PUBLIC_ROUTE, targets)) return true;

    const http = context.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const scope =
      this.reflector.getAllAndOverride<ApiScope | undefined>(REQUIRED_SCOPE, targets) ??
      defaultScopeFor(request.method);
    const presented = presentedApiKey(request.headers);
    if (presented === undefined) {
      if (scope === 'read' && this.readsPublic) return true;
      this.challenge(http.getResponse<FastifyReply>(), 'Bearer');
      throw new UnauthorizedException(MISSING_KEY_MESSAGE);
    }
    const key = this.match(presented);
    if (key === undefined) {
      this.challenge(http.getResponse<FastifyReply>(), 'Bearer error="invalid_token"');
      throw new UnauthorizedException(INVALID_KEY_MESSAGE);
    }
    request.apiKeyLabel = key.label;
    (request.raw as RequestWithApiKeyLabel).apiKeyLabel = key.label;
    if (!key.scopes.has(scope)) {
      throw new ForbiddenException(`API key ${key.label} lacks the "${scope}" scope this route needs`);
    }
    return true;
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

  private challenge(reply: FastifyReply, value: string): void {
    void reply.header('WWW-Authenticate', value);
  }
}
