import { Global, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { loggerParams } from './logging.js';
import { MetricsController } from './metrics.controller.js';
import { MetricsService } from './metrics.service.js';
import { RequestLoggingHook } from './request-logging.hook.js';

/**
 * JSON logs with a request id on every line (nestjs-pino) and Prometheus metrics at /metrics.
 * Global so that any service can inject MetricsService.
 */
@Global()
@Module({
  imports: [
    LoggerModule.forRootAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => loggerParams(config),
    }),
  ],
  controllers: [MetricsController],
  providers: [MetricsService, RequestLoggingHook],
  exports: [MetricsService],
})
export class ObservabilityModule {}
