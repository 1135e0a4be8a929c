import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { InjectDataSource } from '@nestjs/typeorm';
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import { SEARCH_MODES } from '../ask/dto/ask.dto.js';
import { APP_CONFIG, type AppConfig, type EmbeddingProviderName } from '../config/app-config.js';
import { driverPool } from '../database/driver-pool.js';
import { HttpRequestMetrics } from './http-request-metrics.js';

/**
 * How an embedding provider call ended: vectors, a text the model refused as too long (the
 * client's 422, not a provider failure to alert on), or a failure (502/503/504).
 */
export type EmbeddingOutcome = 'ok' | 'rejected' | 'error';

/** Unmatched requests share one label value, so scanners cannot blow up the series count. */
export const UNMATCHED_ROUTE = 'unmatched';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/**
 * Prometheus metrics in a registry of this app's own (not prom-client's global one: tests run
 * several apps in one process). HTTP metrics are labelled with the route pattern, never the URL.
 */
@Injectable()
export class MetricsService implements OnModuleInit {
  readonly registry = new Registry();
  private readonly http = new HttpRequestMetrics(
    { name: 'http_requests_total', help: 'HTTP requests answered, by route pattern and status code' },
    {
      name: 'http_request_duration_seconds',
      help: 'Time from receiving a request to finishing its response',
      buckets: LATENCY_BUCKETS,
    },
  ).registerIn(this.registry);
  private readonly searchDuration = new Histogram({
    name: 'search_duration_seconds',
    help: 'Database part of POST /ask: the vector or hybrid search transaction',
    labelNames: ['mode'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  private readonly exactRetries = new Counter({
    name: 'search_exact_retries_total',
    help: 'Filtered searches through an HNSW index that found fewer than k chunks and were run again exactly',
    labelNames: ['mode'] as const,
    registers: [this.registry],
  });

  private readonly embeddingRequests = new Counter({
    name: 'embedding_requests_total',
    help: 'Calls to the embedding provider (one per write or search that needed vectors, its retries inside), by outcome',
    labelNames: ['provider', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly embeddingTexts = new Counter({
    name: 'embedding_texts_total',
    help: 'Texts sent to the embedding provider',
    labelNames: ['provider'] as const,
    registers: [this.registry],
  });
  private readonly embeddingDuration = new Histogram({
    name: 'embedding_request_duration_seconds',
    help: 'Time the embedding provider took per call, failures included',
    labelNames: ['provider'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly adapterHost: HttpAdapterHost,
  ) {
    // Each mode's series from the start, at 0: a rate() over it answers before the first retry.
    for (const mode of SEARCH_MODES) this.exactRetries.inc({ mode }, 0);
    const primaryPool = () => driverPool(this.dataSource);
    new Gauge({
      name: 'db_pool_connections',
      help: 'Connections of the primary database pool: total open, idle, and requests waiting for one',
      labelNames: ['pool', 'state'] as const,
      registers: [this.registry],
      // Read at scrape time: the pool already keeps these counts.
      collect() {
        this.reset();
        const pool = primaryPool();
        if (!pool) return;
        this.set({ pool: 'primary', state: 'total' }, pool.totalCount);
        this.set({ pool: 'primary', state: 'idle' }, pool.idleCount);
        this.set({ pool: 'primary', state: 'waiting' }, pool.waitingCount);
      },
    });
  }

  get enabled(): boolean {
    return this.config.http.metricsEnabled;
  }

  onModuleInit(): void {
    if (!this.enabled) return;
    collectDefaultMetrics({ register: this.registry });
    // No HTTP adapter in an application context (the CLIs): nothing to count.
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    if (!fastify) return;
    fastify.addHook('onResponse', (request, reply, done) => {
      this.http.record(
        request.method,
        request.routeOptions.url ?? UNMATCHED_ROUTE,
        reply.statusCode,
        reply.elapsedTime / 1000,
      );
      done();
    });
  }

  observeSearch(mode: string, seconds: number): void {
    this.searchDuration.observe({ mode }, seconds);
  }

  countExactRetry(mode: string): void {
    this.exactRetries.inc({ mode });
  }

  observeEmbedding(provider: EmbeddingProviderName, texts: number, seconds: number, outcome: EmbeddingOutcome): void {
    this.embeddingRequests.inc({ provider, outcome });
    this.embeddingTexts.inc({ provider }, texts);
    this.embeddingDuration.observe({ provider }, seconds);
  }

  /** The text exposition format, version 0.0.4. */
  scrape(): Promise<string> {
    return this.registry.metrics();
  }
}
