import { ConfigValidationError, loadAppConfig } from './app-config.js';

describe('loadAppConfig', () => {
  it('uses the embedded database and documented defaults when nothing is set', () => {
    const config = loadAppConfig({});
    expect(config).toMatchObject({
      port: 3000,
      database: { mode: 'embedded', dataDir: './data', migrateOnStart: true, poolMax: 10 },
      embeddings: { provider: 'local', dimensions: 384, maxBatch: 1000, defaultCollection: 'docs' },
    });
  });

  it('uses the server, without migrating on start, when DATABASE_URL is set', () => {
    const config = loadAppConfig({ DATABASE_URL: 'postgresql://u:p@db:5432/kb', PORT: '8080' });
    expect(config.database).toMatchObject({ mode: 'server', migrateOnStart: false });
    expect(config.port).toBe(8080);
    expect(
      loadAppConfig({ DATABASE_URL: 'postgres://db/kb', DB_MIGRATE_ON_START: 'true' }).database.migrateOnStart,
    ).toBe(true);
  });

  it('treats empty values as unset', () => {
    expect(loadAppConfig({ DATABASE_URL: '', PORT: '' })).toMatchObject({ port: 3000, database: { mode: 'embedded' } });
  });

  it('names every wrong variable in one line', () => {
    let error: unknown;
    try {
      loadAppConfig({ PORT: '70000', DB_POOL_MAX: '0' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigValidationError);
    const message = (error as Error).message;
    expect(message).not.toContain('\n');
    expect(message).toMatch(/PORT must not be greater than 65535/);
    expect(message).toMatch(/DB_POOL_MAX must not be less than 1/);
  });
});
