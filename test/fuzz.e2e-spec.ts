import request from 'supertest';
import {
  HOSTILE_STRINGS,
  HOSTILE_VALUES,
  deepArray,
  deepObject,
  percentEncode,
  responseProblem,
  sampleJson,
  sampleStrings,
} from './support/hostile.js';
import { startTestApp, type TestApp } from './support/test-app.js';

/**
 * Fuzzes every route of the OpenAPI document with malformed path and query parameters, JSON
 * bodies and headers. Nothing may answer 5xx or leak SQL/stack traces. Deterministic (fixed seeds)
 * and bounded (MAX_REQUESTS).
 */

const MAX_REQUESTS = 3000;
const CONCURRENCY = 6;

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
interface Schema {
  $ref?: string;
  type?: string;
  example?: unknown;
  enum?: unknown[];
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  oneOf?: Schema[];
}
interface Operation {
  parameters?: Array<{ name: string; in: 'path' | 'query' | 'header'; schema?: Schema }>;
  requestBody?: { content: Record<string, { schema: Schema }> };
}
interface OpenApi {
  paths: Record<string, Partial<Record<Method, Operation>>>;
  components: { schemas: Record<string, Schema> };
}

/** One request to send; `body` is sent as JSON unless `raw` is set. */
interface Probe {
  method: Method;
  url: string;
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
  label: string;
}

function resolve(api: OpenApi, schema: Schema): Schema {
  return schema.$ref ? api.components.schemas[schema.$ref.split('/').pop() ?? ''] : schema;
}

/** A plausible body from the schema's examples, so that mutations reach the deeper checks. */
function validValue(api: OpenApi, raw: Schema): unknown {
  const schema = resolve(api, raw);
  if (schema.example !== undefined) return schema.example;
  if (schema.enum?.length) return schema.enum[0];
  if (schema.oneOf?.length) return validValue(api, schema.oneOf[schema.oneOf.length - 1]);
  if (schema.properties) {
    return Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, validValue(api, v)]));
  }
  switch (schema.type ?? 'string') {
    case 'array':
      return schema.items ? [validValue(api, schema.items)] : [];
    case 'number':
    case 'integer':
      return 1;
    case 'boolean':
      return true;
    case 'object':
      return {};
    default:
      return 'fuzz';
  }
}

/** Every field path of the body schema, one level into arrays of objects: ['chunks', 0, 'content']. */
function fieldPaths(api: OpenApi, raw: Schema, prefix: Array<string | number> = []): Array<Array<string | number>> {
  const schema = resolve(api, raw);
  const variants = schema.oneOf ? schema.oneOf.map((s) => resolve(api, s)) : [schema];
  const paths: Array<Array<string | number>> = [];
  for (const variant of variants) {
    for (const [key, prop] of Object.entries(variant.properties ?? {})) {
      const path = [...prefix, key];
      paths.push(path);
      const items = prop.items ? resolve(api, prop.items) : undefined;
      if (items?.properties && prefix.length === 0) paths.push(...fieldPaths(api, items, [...path, 0]));
    }
  }
  return paths;
}

function withValue(base: unknown, path: Array<string | number>, value: unknown): unknown {
  const copy = structuredClone(base) as Record<string | number, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = typeof key === 'number' ? [] : {};
    node = node[key] as Record<string | number, unknown>;
  }
  node[path[path.length - 1]] = value;
  return copy;
}

function withPathParams(template: string, value: string): string {
  return template.replace(/\{[^}]+\}/g, value);
}

const encode = percentEncode;

/** Path parameter values: encoded hostile strings, plus raw ones that are not valid URL encoding. */
const PATH_VALUES = [
  ...HOSTILE_STRINGS.map((s) => encode(s.slice(0, 5000))),
  ...sampleStrings(6, 11).map(encode),
  '%E0%A4%A',
  '%',
  '%zz',
  '..',
  '%2e%2e%2f%2e%2e',
  'a'.repeat(20_000),
];

const QUERY_VALUES = [
  ...HOSTILE_STRINGS.map((s) => s.slice(0, 5000)),
  ...sampleStrings(4, 12),
  '-0',
  '1.5',
  'Infinity',
  'true',
];

/** One value of each kind per field (the whole-body probes use all of HOSTILE_VALUES). */
const FIELD_VALUES: readonly unknown[] = [
  null,
  true,
  0,
  -1,
  1.5,
  1e308,
  2_147_483_648,
  '',
  '\u0000',
  'x'.repeat(100_001),
  "'; DROP TABLE documents; --",
  [],
  ['a', 1, null],
  Array.from({ length: 20_000 }, () => 1),
  {},
  { $ne: null },
  deepObject(2000),
];

const ODD_HEADERS: Array<Record<string, string>> = [
  { 'content-type': 'application/json; charset=utf-16' },
  { 'content-type': 'application/x-www-form-urlencoded' },
  { 'content-type': 'multipart/form-data' },
  { 'content-type': 'multipart/form-data; boundary=fuzz' },
  { 'content-type': 'text/plain' },
  { 'content-type': 'application/octet-stream' },
  { 'content-type': '*/*' },
  { 'content-type': ';;;' },
  { 'x-fuzz': 'h'.repeat(8000) },
  { 'x-fuzz': 'h'.repeat(70_000) },
  { accept: 'application/xml' },
  { 'accept-encoding': 'br;q=abc, *;q=-1' },
  { 'content-encoding': 'gzip' },
  { 'x-forwarded-for': '::ffff:999.1.1.1, <script>' },
  { authorization: 'Bearer ' + 'k'.repeat(3000) },
  { 'x-api-key': '\u00ff\u00fe' },
  { 'if-none-match': '*' },
  { range: 'bytes=-1-2' },
];

function buildProbes(api: OpenApi): Probe[] {
  const probes: Probe[] = [];
  const bodySamples = sampleJson(12, 13);
  for (const [template, ops] of Object.entries(api.paths)) {
    for (const [method, op] of Object.entries(ops) as Array<[Method, Operation]>) {
      const hasPathParams = template.includes('{');
      // Body mutations need a target that exists, so they reach validation and the service.
      const url = withPathParams(template, 'fuzz-doc');
      const label = `${method.toUpperCase()} ${template}`;

      if (hasPathParams) {
        for (const value of PATH_VALUES) {
          probes.push({ method, url: withPathParams(template, value), label: `${label} path=${value.slice(0, 40)}` });
        }
      }
      for (const param of (op.parameters ?? []).filter((p) => p.in === 'query')) {
        for (const value of QUERY_VALUES) {
          probes.push({
            method,
            url: `${url}?${param.name}=${encode(value)}`,
            label: `${label} ${param.name}=${value.slice(0, 40)}`,
          });
        }
        probes.push({ method, url: `${url}?${param.name}=1&${param.name}=2`, label: `${label} ${param.name} twice` });
        probes.push({ method, url: `${url}?${param.name}[a]=1`, label: `${label} ${param.name}[a]` });
      }
      probes.push({ method, url: `${url}?unknown=1&__proto__[x]=1`, label: `${label} unknown query` });

      for (const headers of ODD_HEADERS) {
        probes.push({
          method,
          url,
          headers,
          raw: '{"x": 1}',
          label: `${label} headers ${JSON.stringify(headers).slice(0, 60)}`,
        });
      }

      const json = op.requestBody?.content['application/json'];
      if (!json) continue;
      const base = validValue(api, json.schema);
      for (const path of fieldPaths(api, json.schema)) {
        for (const value of FIELD_VALUES) {
          probes.push({ method, url, body: withValue(base, path, value), label: `${label} ${path.join('.')}` });
        }
      }
      for (const value of [...HOSTILE_VALUES, ...bodySamples]) {
        probes.push({ method, url, body: value, label: `${label} whole body` });
      }
      const deep = 100_000;
      for (const raw of [
        `{"metadata": ${'['.repeat(deep)}${']'.repeat(deep)}}`,
        `{"filter": ${'{"a":'.repeat(deep)}1${'}'.repeat(deep)}}`,
        '{"a": 1, "a": 2}',
        '{"documentName": "\\ud800"}',
        '\ufeff{}',
        '{"x": 1}garbage',
        '{"x": 1e999999}',
        '{"x": -}',
      ]) {
        probes.push({ method, url, raw, label: `${label} raw ${raw.slice(0, 30)}` });
      }
      probes.push({
        method,
        url,
        headers: { 'content-type': 'multipart/form-data; boundary=fuzz' },
        raw: '--fuzz\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nunterminated',
        label: `${label} broken multipart`,
      });
    }
  }
  return probes;
}

async function send(server: TestApp['server'], probe: Probe): Promise<request.Response> {
  let req = request(server)[probe.method](probe.url);
  for (const [name, value] of Object.entries(probe.headers ?? {})) req = req.set(name, value);
  if (probe.raw !== undefined) {
    if (!probe.headers?.['content-type']) req = req.set('content-type', 'application/json');
    return req.send(probe.raw);
  }
  if (probe.body !== undefined) {
    return req.set('content-type', 'application/json').send(JSON.stringify(probe.body));
  }
  return req;
}

describe('Fuzzing every route of the OpenAPI document', () => {
  let t: TestApp;

  beforeAll(async () => {
    // A generous pool wait: this suite is about malformed input, limits.e2e-spec.ts tests the pool.
    t = await startTestApp({ THROTTLE_LIMIT: '0', DB_POOL_ACQUIRE_TIMEOUT_MS: '120000' });
    await request(t.server)
      .post('/documents')
      .send({
        documentId: 'fuzz-doc',
        documentName: 'Fuzz target',
        documentType: 'law',
        category: 'fuzz',
        sourceFile: '/data/fuzz.pdf',
        chunks: [{ content: 'Điều 1. Phạm vi' }, { content: 'Điều 2. Đối tượng' }],
      })
      .expect(201);
    await request(t.server).post('/collections').send({ name: 'fuzz-doc' }).expect(201);
  });
  afterAll(() => t.close());

  it('answers malformed params, bodies and headers on every route without a 5xx or a leak', async () => {
    const docs = await request(t.server).get('/docs-json').expect(200);
    const api = docs.body as OpenApi;
    const probes = buildProbes(api);
    const routes = new Set(probes.map((p) => p.label.split(' ').slice(0, 2).join(' ')));
    expect(routes.size).toBeGreaterThanOrEqual(Object.values(api.paths).flatMap((ops) => Object.keys(ops)).length);
    expect(probes.length).toBeGreaterThan(MAX_REQUESTS / 2);
    expect(probes.length).toBeLessThanOrEqual(MAX_REQUESTS);

    const problems: string[] = [];
    const check = async (probe: Probe): Promise<void> => {
      const problem = responseProblem(await send(t.server, probe));
      if (problem) problems.push(`${probe.label}: ${problem}`);
    };
    // Readiness probes answer 503 by design while the database is busy (on embedded its one
    // connection is, under this load): they run afterwards, on an idle service.
    const isHealth = (p: Probe): boolean => p.url.startsWith('/health');
    const queue = probes.filter((p) => !isHealth(p));
    const worker = async (): Promise<void> => {
      for (let probe = queue.shift(); probe; probe = queue.shift()) await check(probe);
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    for (const probe of probes.filter(isHealth)) await check(probe);
    expect(problems).toEqual([]);

    // The service is still healthy and consistent afterwards.
    await request(t.server).get('/health').expect(200);
    const wrong = await t.dataSource.query<unknown[]>(
      `SELECT d.document_id FROM documents d
        WHERE d.total_chunks IS DISTINCT FROM
              (SELECT count(*)::int FROM langchain_pg_embedding e WHERE e.cmetadata->>'document_id' = d.document_id)`,
    );
    expect(wrong).toEqual([]);
  }, 600_000);

  it('builds its deep bodies as declared', () => {
    expect(JSON.stringify(deepObject(3))).toBe('{"a":{"a":{"a":{"leaf":true}}}}');
    expect(JSON.stringify(deepArray(2))).toBe('[[[1]]]');
  });
});
