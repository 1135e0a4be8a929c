import type { DocumentBuilder, OpenAPIObject } from '@nestjs/swagger';
import type { OperationObject, ResponseObject } from '@nestjs/swagger';
import type { ApiScope, AppConfig } from '../config/app-config.js';
import { documentOperations, errorResponseContent } from '../common/openapi-errors.js';
import { defaultScopeFor, MISSING_KEY_MESSAGE } from './api-key.guard.js';
import { OPENAPI_SCOPE_EXTENSION } from './auth.decorators.js';

export const BEARER_SCHEME = 'bearer';
export const API_KEY_HEADER_SCHEME = 'x-api-key';

/** Both ways to send a key, and a document-wide requirement of either one (Swagger UI's Authorize button). */
export function withApiKeySecurity(builder: DocumentBuilder): DocumentBuilder {
  return builder
    .addBearerAuth(
      // An opaque key, not a JWT (the builder's default format).
      {
        type: 'http',
        bearerFormat: 'API key',
        description: 'An API key from API_KEYS, as Authorization: Bearer <key>',
      },
      BEARER_SCHEME,
    )
    .addApiKey(
      { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'An API key from API_KEYS' },
      API_KEY_HEADER_SCHEME,
    )
    .addSecurityRequirements(BEARER_SCHEME)
    .addSecurityRequirements(API_KEY_HEADER_SCHEME);
}

function errorResponse(description: string, statusCode: number, error: string, message: string): ResponseObject {
  return { description, content: errorResponseContent({ statusCode, message, error }) };
}

/**
 * What API_KEYS asks of an operation: nothing (`@Public()`, whose security is `[{}]`), or the scope
 * of its `@RequiredScope`, else of its method (read for GET/HEAD, write otherwise).
 */
export function operationAccess(
  document: OpenAPIObject,
  operation: OperationObject,
  method: string,
): ApiScope | 'public' {
  const security = operation.security ?? document.security ?? [];
  const anonymous = security.length === 0 || security.some((requirement) => Object.keys(requirement).length === 0);
  if (anonymous) return 'public';
  const extensions = operation as unknown as Record<string, unknown>;
  return (extensions[OPENAPI_SCOPE_EXTENSION] as ApiScope | undefined) ?? defaultScopeFor(method);
}

/**
 * Adds 401 and 403 responses, naming the scope, to every operation that needs a key (403 only where
 * the scope is write or admin); `@Public()` operations (security `[{}]`) are left alone. Existing
 * responses with those codes are kept.
 */
export function documentApiKeySecurity(document: OpenAPIObject): OpenAPIObject {
  for (const [operation, method] of documentOperations(document)) {
    const scope = operationAccess(document, operation, method);
    if (scope === 'public') continue;
    const extensions = operation as unknown as Record<string, unknown>;
    const when = scope === 'read' ? ' (reads need a key only with API_READS_PUBLIC=false)' : '';
    extensions[OPENAPI_SCOPE_EXTENSION] = scope;
    operation.responses['401'] ??= {
      ...errorResponse(
        `API_KEYS is set and the request has no API key, or an unknown one${when}`,
        401,
        'Unauthorized',
        MISSING_KEY_MESSAGE,
      ),
      headers: {
        'WWW-Authenticate': {
          description: '`Bearer` without a key; `Bearer error="invalid_token"` with an unknown one (RFC 6750)',
          schema: { type: 'string', example: 'Bearer error="invalid_token"' },
        },
      },
    };
    // Every key holds "read" (write and admin include it): a read operation never answers 403.
    if (scope === 'read') continue;
    operation.responses['403'] ??= errorResponse(
      `The API key lacks the "${scope}" scope`,
      403,
      'Forbidden',
      `API key key#1 lacks the "${scope}" scope this route needs`,
    );
  }
  return document;
}

/**
 * Makes each operation's security requirement say what this configuration asks, as its 429s do:
 * without API_KEYS no operation needs a key (`[{}]`), and with API_READS_PUBLIC (the default) a read
 * takes one but needs none (`[{}, bearer, x-api-key]`). The document declared a key on every
 * operation whatever the configuration, so a client generator sent one where none is needed, and a
 * reader of the document was told reads were closed. The scope (`x-required-scope`) and the 401/403
 * stay, for the configuration that asks them. Call after useEarlyApiKeyCheck, which reads the
 * requirements as the code declares them (operationAccess).
 */
export function documentConfiguredAccess(document: OpenAPIObject, auth: AppConfig['auth']): OpenAPIObject {
  const keysOn = auth.apiKeys.length > 0;
  for (const [operation] of documentOperations(document)) {
    const scope = (operation as unknown as Record<string, unknown>)[OPENAPI_SCOPE_EXTENSION] as ApiScope | undefined;
    if (scope === undefined) continue; // @Public(): `[{}]` already
    if (!keysOn) operation.security = [{}];
    else if (scope === 'read' && auth.readsPublic) {
      operation.security = [{}, { [BEARER_SCHEME]: [] }, { [API_KEY_HEADER_SCHEME]: [] }];
    }
  }
  return document;
}
