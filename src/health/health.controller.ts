import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { Public } from '../auth/auth.decorators.js';
import { ReadReplicas } from '../database/read-replicas.service.js';
import { Unthrottled } from '../limits/throttling.module.js';
import {
  HealthCheck,
  HealthCheckService,
  type HealthCheckResult,
  type HealthIndicatorResult,
  HealthIndicatorService,
  TypeOrmHealthIndicator,
} from '@nestjs/terminus';

/** A probe must answer quickly: an orchestrator treats a slow probe as a failed one anyway. */
const READY_TIMEOUT_MS = 1000;

@ApiTags('health')
@Public()
@Unthrottled()
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: TypeOrmHealthIndicator,
    private readonly indicators: HealthIndicatorService,
    private readonly replicas: ReadReplicas,
  ) {}

  @Get()
  @HealthCheck()
  @ApiOperation({ summary: 'Readiness (same as /health/ready): 200 when the database answers, 503 when it does not' })
  @ApiServiceUnavailableResponse({ description: 'The database does not answer' })
  check(): Promise<HealthCheckResult> {
    return this.readiness();
  }

  @Get('live')
  @HealthCheck()
  @ApiOperation({ summary: 'Liveness: 200 while the process serves requests; touches no database' })
  @ApiOkResponse({ description: 'The process is up' })
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck()
  @ApiOperation({
    summary: `Readiness: 200 when the primary database answers SELECT 1 within ${READY_TIMEOUT_MS} ms, 503 when not`,
    description: 'With read replicas, a replica that does not answer makes the status "degraded" (still 200).',
  })
  @ApiServiceUnavailableResponse({ description: 'The database does not answer' })
  ready(): Promise<HealthCheckResult> {
    return this.readiness();
  }

  private readiness(): Promise<HealthCheckResult> {
    return this.health.check([
      () => this.database.pingCheck('database').withTimeout(READY_TIMEOUT_MS),
      ...(this.replicas.enabled ? [() => this.replicaStates()] : []),
    ]);
  }

  /** A replica that does not answer degrades readiness without failing it: reads fall back to the primary. */
  private async replicaStates(): Promise<HealthIndicatorResult<'replicas'>> {
    const states = await this.replicas.ping(READY_TIMEOUT_MS);
    const down = states.filter((s) => !s.up).map((s) => s.replica);
    const session = this.indicators.check('replicas');
    return down.length === 0 ? session.up({ count: states.length }) : session.degraded({ count: states.length, down });
  }
}
