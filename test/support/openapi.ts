import type { Server } from 'node:http';
import request from 'supertest';

/** One response of an operation in the served OpenAPI document, as the tests read it. */
export interface OpenApiResponse {
  description?: string;
  headers?: Record<string, unknown>;
  content?: Record<string, { schema?: unknown; example?: unknown }>;
}

export interface OpenApiOperation {
  /** "<method> <path>", e.g. "post /documents/recount". */
  name: string;
  operation: {
    responses: Record<string, OpenApiResponse | undefined>;
    requestBody?: { content: Record<string, unknown>; required?: boolean };
    'x-rate-limited'?: boolean;
  };
}

/** Every operation of the app's OpenAPI document (GET /docs-json). */
export async function openApiOperations(server: Server): Promise<OpenApiOperation[]> {
  const res = await request(server).get('/docs-json').expect(200);
  const paths = (res.body as { paths: Record<string, Record<string, OpenApiOperation['operation']>> }).paths;
  return Object.entries(paths).flatMap(([path, operations]) =>
    Object.entries(operations).map(([method, operation]) => ({ name: `${method} ${path}`, operation })),
  );
}
