import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { StatsResponseDto } from './dto/stats-response.dto.js';
import { StatsService } from './stats.service.js';

@ApiTags('stats')
@Controller('stats')
export class StatsController {
  constructor(private readonly stats: StatsService) {}

  @Get()
  @ApiOperation({
    summary: 'Knowledge-base statistics',
    description:
      'Documents per type, category and status; chunks per collection and their vector dimensions; orphans ' +
      '(chunks naming no document, documents without chunks, wrong total_chunks: POST /documents/recount corrects ' +
      'them); applied and pending migrations; ' +
      'database mode and versions. Exact figures from grouped, read-only queries in one REPEATABLE READ snapshot.',
  })
  @ApiOkResponse({ type: StatsResponseDto })
  @ApiServiceUnavailableResponse({ description: 'The database does not answer or the query timed out' })
  getStats(): Promise<StatsResponseDto> {
    return this.stats.getStats();
  }
}
