import type pg from 'pg';
import type { DataSource } from 'typeorm';

/**
 * The pg Pool behind a postgres DataSource: TypeORM's PostgresDriver keeps it as `master`, set once
 * the DataSource is initialised and unset again when it is destroyed.
 */
export function driverPool(dataSource: DataSource): pg.Pool | undefined {
  return (dataSource.driver as unknown as { master?: pg.Pool }).master;
}
