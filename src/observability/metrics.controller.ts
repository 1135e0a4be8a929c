import { Controller, Get, NotFoundException, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Registry } from 'prom-client';
import { Public } from '../auth/auth.decorators.js';
import { MetricsService } from './metrics.service.js';
import { Unthrottled } from '../limits/throttling.module.js';

/** Prometheus scrape endpoint; not part of the REST API, so not in the OpenAPI document. */
@ApiExcludeController()
@Public()
@Unthrottled()
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  scrape(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    if (!this.metrics.enabled) throw new NotFoundException('Metrics are disabled: set METRICS_ENABLED=true');
    // Set here, not with @Header: that would also label the JSON error body as text/plain.
    void reply.header('Content-Type', Registry.PROMETHEUS_CONTENT_TYPE);
    return this.metrics.scrape();
  }
}
