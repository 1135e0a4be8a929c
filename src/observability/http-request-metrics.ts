import type { Metric, MetricObjectWithValues, MetricValue, Registry } from 'prom-client';

/** The labels of the HTTP metrics: the route pattern, never the URL. */
export interface HttpLabels {
  readonly method: string;
  readonly route: string;
  readonly status_code: string;
}

/** One (method, route, status code) series: its count, sum and observations per bucket (not cumulative). */
interface Series {
  readonly labels: HttpLabels;
  count: number;
  sum: number;
  readonly perBucket: number[];
}

/** A value as prom-client's registry formats histogram lines: own labels (le) first, then the series'. */
interface SplitValue extends MetricValue<string> {
  readonly sharedLabels: HttpLabels;
  readonly metricName: string;
  /** prom-client's buckets carry `exemplar: null` (exemplars off); sum and count none. */
  readonly exemplar?: null;
}

/**
 * `http_requests_total` (counter) and `http_request_duration_seconds` (histogram), exposed exactly as
 * prom-client's Counter and Histogram expose them, but recorded with three Map lookups per response.
 * prom-client validates and hashes the label object on every inc() and observe() (a children API
 * would still hash per observation): on a short read that was a measurable part of the request.
 */
export class HttpRequestMetrics {
  /** In first-seen order, as prom-client lists its series. */
  private readonly series: Series[] = [];
  /**
   * method → route → status code → series. Nested rather than one joined key: the route pattern and
   * the method are the same string objects request after request, so their hashes are cached, while
   * a joined key would be a new string to hash on every response.
   */
  private readonly index = new Map<string, Map<string, Map<number, Series>>>();

  constructor(
    private readonly counter: { readonly name: string; readonly help: string },
    private readonly histogram: { readonly name: string; readonly help: string; readonly buckets: readonly number[] },
  ) {}

  record(method: string, route: string, statusCode: number, seconds: number): void {
    let byRoute = this.index.get(method);
    if (byRoute === undefined) this.index.set(method, (byRoute = new Map<string, Map<number, Series>>()));
    let byStatus = byRoute.get(route);
    if (byStatus === undefined) byRoute.set(route, (byStatus = new Map<number, Series>()));
    let series = byStatus.get(statusCode);
    if (series === undefined) {
      const labels = { method, route, status_code: String(statusCode) };
      series = { labels, count: 0, sum: 0, perBucket: this.histogram.buckets.map(() => 0) };
      byStatus.set(statusCode, series);
      this.series.push(series);
    }
    series.count += 1;
    series.sum += seconds;
    const { buckets } = this.histogram;
    for (let i = 0; i < buckets.length; i++) {
      if (seconds <= buckets[i]) {
        series.perBucket[i] += 1;
        break;
      }
    }
  }

  /** Adds both metrics to `registry`, which reads them at each scrape. */
  registerIn(registry: Registry): this {
    const { counter, histogram } = this;
    const clear = (): void => {
      this.series.length = 0;
      this.index.clear();
    };
    const counterData = { help: counter.help, name: counter.name, type: 'counter', aggregator: 'sum' };
    const counterMetric = {
      ...counterData,
      get: (): Promise<MetricObjectWithValues<MetricValue<string>>> =>
        Promise.resolve({
          ...counterData,
          values: this.series.map((s) => ({ labels: { ...s.labels }, value: s.count })),
        } as unknown as MetricObjectWithValues<MetricValue<string>>),
      reset: clear,
    };
    const histogramValues = (): SplitValue[] => {
      const values: SplitValue[] = [];
      const bucketName = `${histogram.name}_bucket`;
      for (const s of this.series) {
        let cumulative = 0;
        histogram.buckets.forEach((le, i) => {
          cumulative += s.perBucket[i];
          values.push({
            labels: { le },
            sharedLabels: s.labels,
            value: cumulative,
            metricName: bucketName,
            exemplar: null,
          });
        });
        values.push(
          { labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: bucketName, exemplar: null },
          { labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${histogram.name}_sum` },
          { labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${histogram.name}_count` },
        );
      }
      return values;
    };
    const histogramData = { name: histogram.name, help: histogram.help, type: 'histogram', aggregator: 'sum' };
    const histogramMetric = {
      ...histogramData,
      // The registry's text format reads this (own labels, then the shared ones, as prom-client's Histogram)…
      getForPromString: () => Promise.resolve({ ...histogramData, values: histogramValues() }),
      // …and JSON reads this, with the labels merged.
      get: () =>
        Promise.resolve({
          ...histogramData,
          values: histogramValues().map(({ labels, sharedLabels, ...rest }) => ({
            ...rest,
            labels: { ...labels, ...sharedLabels },
          })),
        }),
      reset: clear,
    };
    registry.registerMetric(counterMetric as unknown as Metric);
    registry.registerMetric(histogramMetric as unknown as Metric);
    return this;
  }
}
