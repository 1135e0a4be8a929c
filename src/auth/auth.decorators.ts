import { applyDecorators, SetMetadata } from '@nestjs/common';
import { ApiExtension, ApiSecurity } from '@nestjs/swagger';
import type { ApiScope } from '../config/app-config.js';

export const PUBLIC_ROUTE = 'auth:public';
export const REQUIRED_SCOPE = 'auth:scope';
/** OpenAPI extension on an operation naming the scope it needs (read by documentApiKeySecurity). */
export const OPENAPI_SCOPE_EXTENSION = 'x-required-scope';

/**
 * Never needs a key: health probes, metrics scraping, the OpenAPI document. In OpenAPI the
 * operation gets `security: [{}]` (anonymous allowed), overriding the document-wide requirement.
 */
export const Public = (): MethodDecorator & ClassDecorator =>
  applyDecorators(SetMetadata(PUBLIC_ROUTE, true), ApiSecurity({}));

/**
 * The scope a route needs when API_KEYS is set. Without it the HTTP method decides: GET and HEAD
 * need `read`, everything else `write`. POST /ask is a read; index operations are `admin`.
 */
export const RequiredScope = (scope: ApiScope): MethodDecorator & ClassDecorator =>
  applyDecorators(SetMetadata(REQUIRED_SCOPE, scope), ApiExtension(OPENAPI_SCOPE_EXTENSION, scope));
