import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Server } from 'node:http';
import { DataSource } from 'typeorm';
import { createApp } from '../../src/app.factory.js';
import type { AppConfig } from '../../src/config/app-config.js';
import { createTestDatabase, type TestDatabase, testConfig } from './test-database.js';

export interface TestApp {
  readonly app: NestFastifyApplication;
  readonly server: Server;
  readonly dataSource: DataSource;
  readonly config: AppConfig;
  close(): Promise<void>;
}

/**
 * The real application (same factory as `main`) on a fresh database of the current test target.
 * `overrides` may be computed from the database's own environment (to reach it another way).
 */
export async function startTestApp(
  overrides: Record<string, string> | ((env: Readonly<Record<string, string>>) => Record<string, string>) = {},
  database: Parameters<typeof createTestDatabase>[0] = {},
): Promise<TestApp> {
  const db: TestDatabase = await createTestDatabase(database);
  const config = testConfig(db, typeof overrides === 'function' ? overrides(db.env) : overrides);
  const app = await createApp(config);
  return {
    app,
    server: app.getHttpServer(),
    dataSource: app.get(DataSource),
    config,
    close: async () => {
      await app.close();
      await db.drop();
    },
  };
}

/** Row counts of the three tables and an md5 over every column of every row: equal before and after = nothing written. */
export interface RowsSnapshot {
  documents: number;
  chunks: number;
  collections: number;
  checksum: string;
}

export async function rowsSnapshot(t: TestApp): Promise<RowsSnapshot> {
  const [row] = await t.dataSource.query<RowsSnapshot[]>(
    `SELECT (SELECT count(*)::int FROM documents) AS documents,
            (SELECT count(*)::int FROM langchain_pg_embedding) AS chunks,
            (SELECT count(*)::int FROM langchain_pg_collection) AS collections,
            md5(coalesce((SELECT string_agg(d::text, '|' ORDER BY d.id) FROM documents d), '')
                || '#' || coalesce((SELECT string_agg(e::text, '|' ORDER BY e.id) FROM langchain_pg_embedding e), '')
                || '#' || coalesce((SELECT string_agg(c::text, '|' ORDER BY c.uuid) FROM langchain_pg_collection c), ''))
              AS checksum`,
  );
  return row;
}
