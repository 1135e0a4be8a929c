import { Module } from '@nestjs/common';
import { StatsController } from './stats.controller.js';
import { StatsService } from './stats.service.js';

/** GET /stats: read-only figures over documents, chunks, migrations and the database. */
@Module({
  controllers: [StatsController],
  providers: [StatsService],
})
export class StatsModule {}
