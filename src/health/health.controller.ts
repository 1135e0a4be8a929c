import { applyDecorators, Controller, Get, Logger } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import {
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
  type SchemaObject,
} from '@nestjs/swagger';
import { Public } from '../auth/auth.decorators.js';
import { SCHEMA_MISSING } from '../database/connection-errors.js';
import { BASELINE_TABLES } from '../database/migration-runner.js';
import { ReadReplicas } from '../database/read-replicas.service.js';
import { Unthrottled } from '../limits/throttling.module.js';
import { redactConnectionStrings } from '../observability/redact.js';
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

/** Whether the tables every route reads (BASELINE_TABLES, in $1) are present in the connection's schema. */
const SCHEMA_PRESENT_SQL = `SELECT bool_and(to_regclass(t) IS NOT NULL) AS present FROM unnest($1::text[]) AS t`;

/**
 * The body terminus answers, 200 or 503, declared here rather than by @HealthCheck: terminus adds
 * its own only when it can require() @nestjs/swagger, so the served document differed between
 * `node` and jest, and it gave /health/live a 503 it never answers.
 */
function healthResultSchema(example: Record<string, unknown>): SchemaObject {
  const indicators: SchemaObject = {
    type: 'object',
    additionalProperties: { type: 'object', properties: { status: { type: 'string' } } },
  };
  return {
    type: 'object',
    required: ['status', 'info', 'error', 'details'],
    properties: {
      status: {
        type: 'string',
        enum: ['ok', 'degraded', 'error', 'shutting_down'],
        description: 'degraded (still 200): a read replica does not answer, and reads go to the primary',
      },
      info: { ...indicators, description: 'The checks that passed' },
      error: { ...indicators, description: 'The checks that failed' },
      details: { ...indicators, description: 'Every check' },
    },
    example,
  };
}

/** What readiness says of a database that does not answer (the driver's reason goes to the log). */
const DATABASE_DOWN = 'The database does not answer';
const UP = { status: 'up' };
const HEALTHY = healthResultSchema({
  status: 'ok',
  info: { database: UP, schema: UP },
  error: {},
  details: { database: UP, schema: UP },
});
const DOWN = { status: 'down', message: DATABASE_DOWN };
const UNHEALTHY = healthResultSchema({
  status: 'error',
  info: {},
  error: { database: DOWN },
  details: { database: DOWN },
});

/** The two answers of a readiness check (GET /health, GET /health/ready). */
const ApiReadinessResponses = (): MethodDecorator =>
  applyDecorators(
    ApiOkResponse({ description: 'The database answers', schema: HEALTHY }),
    ApiServiceUnavailableResponse({
      description: 'The database does not answer, or has no schema yet (run npm run db:migrate)',
      schema: UNHEALTHY,
    }),
  );

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
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {}

  private readonly logger = new Logger(HealthController.name);

  /** Whether schemaState has seen the tables (see there). */
  private schemaSeen = false;

  @Get()
  @HealthCheck({ swaggerDocumentation: false })
  @ApiOperation({
    summary: 'Readiness (same as /health/ready): 200 when the database answers and holds the schema, 503 when not',
  })
  @ApiReadinessResponses()
  check(): Promise<HealthCheckResult> {
    return this.readiness();
  }

  @Get('live')
  @HealthCheck({ swaggerDocumentation: false })
  @ApiOperation({ summary: 'Liveness: 200 while the process serves requests; touches no database' })
  @ApiOkResponse({
    description: 'The process is up',
    schema: healthResultSchema({ status: 'ok', info: {}, error: {}, details: {} }),
  })
  live(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck({ swaggerDocumentation: false })
  @ApiOperation({
    summary: `Readiness: 200 when the primary database answers SELECT 1 within ${READY_TIMEOUT_MS} ms and holds the service's tables, 503 when not`,
    description: 'With read replicas, a replica that does not answer makes the status "degraded" (still 200).',
  })
  @ApiReadinessResponses()
  ready(): Promise<HealthCheckResult> {
    return this.readiness();
  }

  /** The readiness check running now, which every probe arriving meanwhile shares. */
  private readinessInFlight: Promise<HealthCheckResult> | null = null;

  /**
   * Probes that arrive while a check runs get its answer instead of starting their own: the route
   * is public and not rate-limited, and a flood of probes each queueing a ping for the request
   * pool took the connections real requests wait for (and made readiness fail by itself).
   */
  private readiness(): Promise<HealthCheckResult> {
    this.readinessInFlight ??= this.health
      .check([
        () => this.databaseState(),
        () => this.schemaState(),
        ...(this.replicas.enabled ? [() => this.replicaStates()] : []),
      ])
      .finally(() => {
        this.readinessInFlight = null;
      });
    return this.readinessInFlight;
  }

  /**
   * The primary's ping, down with a message of the service's own: terminus answers with the
   * driver's (`connect ECONNREFUSED 10.0.3.7:5432`, `password authentication failed for user "kb"`),
   * which names hosts and users in the body of a public route. The driver's goes to the log.
   */
  private async databaseState(): Promise<HealthIndicatorResult<'database'>> {
    const result = await this.database.pingCheck('database', { timeout: READY_TIMEOUT_MS });
    const state = result.database;
    if (state.status === 'up') return result;
    this.logger.warn(`Readiness: the database does not answer (${redactConnectionStrings(String(state.message))})`);
    return this.indicators.check('database').down({ message: DATABASE_DOWN });
  }

  /**
   * Whether the tables the service reads exist: a server database that was never migrated (or
   * adopted) answers the ping, but every request would fail. Checked until seen once: tables do not
   * go away under a running service.
   */
  private async schemaState(): Promise<HealthIndicatorResult<'schema'>> {
    const session = this.indicators.check('schema');
    if (!this.schemaSeen) {
      try {
        const [row] = await this.dataSource.query<Array<{ present: boolean }>>(SCHEMA_PRESENT_SQL, [
          [...BASELINE_TABLES],
        ]);
        this.schemaSeen = row.present;
      } catch {
        // The ping reports an unreachable database; this check says nothing more about it.
        return session.down({ message: DATABASE_DOWN });
      }
    }
    return this.schemaSeen ? session.up() : session.down({ message: SCHEMA_MISSING });
  }

  /** A replica that does not answer degrades readiness without failing it: reads fall back to the primary. */
  private async replicaStates(): Promise<HealthIndicatorResult<'replicas'>> {
    const states = await this.replicas.ping(READY_TIMEOUT_MS);
    const down = states.filter((s) => !s.up).map((s) => s.replica);
    const session = this.indicators.check('replicas');
    return down.length === 0 ? session.up({ count: states.length }) : session.degraded({ count: states.length, down });
  }
}
