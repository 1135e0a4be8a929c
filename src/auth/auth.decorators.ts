import { SetMetadata } from '@nestjs/common';
import type { ApiScope } from '../config/app-config.js';

export const PUBLIC_ROUTE = 'auth:public';
export const REQUIRED_SCOPE = 'auth:scope';

/** Never needs a key: health probes, metrics scraping, the OpenAPI document. */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(PUBLIC_ROUTE, true);

/**
 * The scope a route needs when API_KEYS is set. Without it the HTTP method decides: GET and HEAD
 * need `read`, everything else `write`. POST /ask is a read; index operations are `admin`.
 */
export const RequiredScope = (scope: ApiScope): MethodDecorator & ClassDecorator => SetMetadata(REQUIRED_SCOPE, scope);
