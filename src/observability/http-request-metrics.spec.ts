import { Counter, Histogram, Registry } from 'prom-client';
import { HttpRequestMetrics } from './http-request-metrics.js';

const COUNTER = { name: 'http_requests_total', help: 'HTTP requests answered' };
const HISTOGRAM = { name: 'http_request_duration_seconds', help: 'Time to answer', buckets: [0.005, 0.01, 0.1, 1] };

/** The same observations through prom-client's own Counter and Histogram. */
function promClientRegistry(observations: Array<[string, string, number, number]>): Registry {
  const registry = new Registry();
  const labelNames = ['method', 'route', 'status_code'] as const;
  const counter = new Counter({ ...COUNTER, labelNames, registers: [registry] });
  const histogram = new Histogram({ ...HISTOGRAM, labelNames, registers: [registry] });
  for (const [method, route, status, seconds] of observations) {
    const labels = { method, route, status_code: String(status) };
    counter.inc(labels);
    histogram.observe(labels, seconds);
  }
  return registry;
}

function ownRegistry(observations: Array<[string, string, number, number]>): Registry {
  const registry = new Registry();
  const metrics = new HttpRequestMetrics(COUNTER, HISTOGRAM).registerIn(registry);
  for (const [method, route, status, seconds] of observations) metrics.record(method, route, status, seconds);
  return registry;
}

const OBSERVATIONS: Array<[string, string, number, number]> = [
  ['GET', '/documents/:documentId', 200, 0.0004],
  ['GET', '/documents/:documentId', 404, 0.002],
  ['GET', '/documents/:documentId', 200, 0.005], // on a bound: counted in that bucket
  ['POST', '/ask', 200, 0.3],
  ['GET', 'unmatched', 404, 7], // above every bound: only +Inf
  ['GET', '/documents/:documentId', 200, 0.07],
  ['GET', '/odd "route"\\ with\nquotes', 500, 0.01],
];

describe('HttpRequestMetrics', () => {
  it('exposes exactly what prom-client Counter and Histogram expose for the same observations', async () => {
    const expected = await promClientRegistry(OBSERVATIONS).metrics();
    expect(await ownRegistry(OBSERVATIONS).metrics()).toBe(expected);
    expect(expected).toContain(
      'http_request_duration_seconds_bucket{le="0.005",method="GET",route="/documents/:documentId",status_code="200"} 2',
    );
  });

  it('gives the same JSON as prom-client', async () => {
    const expected = await promClientRegistry(OBSERVATIONS).getMetricsAsJSON();
    expect(await ownRegistry(OBSERVATIONS).getMetricsAsJSON()).toEqual(expected);
  });

  it('exposes both metrics with no series before any request, as prom-client does', async () => {
    expect(await ownRegistry([]).metrics()).toBe(await promClientRegistry([]).metrics());
  });
});
