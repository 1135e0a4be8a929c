import { loadAppConfig } from '../src/config/app-config.js';
import { persistentTestDatabase } from './support/legacy-schema.js';
import { type ServiceProcess, startService, stopService } from './support/service-process.js';
import { openRawDataSource } from './support/test-database.js';

/**
 * documents.created_at and updated_at are `timestamp without time zone`: wall-clock times of the
 * database session's TimeZone (UTC on PGlite and on the test server). Here the service runs in a
 * process of another zone, as on a developer's laptop in Vietnam; read as that zone's wall-clock
 * time, the database's "now" came out seven hours early.
 */
describe('Document timestamps when the service and the database are in different time zones', () => {
  let db: { env: Record<string, string>; drop: () => Promise<void> };
  let service: ServiceProcess | undefined;

  beforeAll(async () => {
    db = await persistentTestDatabase();
    service = await startService({ ...db.env, TZ: 'Asia/Ho_Chi_Minh' });
  });
  afterAll(async () => {
    if (service) await stopService(service);
    await db?.drop();
  });

  async function call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    const res = await fetch(`${service!.baseUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    expect(res.ok).toBe(true);
    return (await res.json()) as Record<string, unknown>;
  }

  it('answers the instant the database recorded, on every read path', async () => {
    // Through TypeORM's entity read (the answer of a create and of a PATCH).
    const created = await call('POST', '/documents', {
      documentId: 'tz-1',
      documentName: 'x',
      documentType: 'law',
      category: 'c',
      sourceFile: '/f.pdf',
    });
    const patched = await call('PATCH', '/documents/tz-1', { status: 'inactive' });
    // Through the read statements (the lookup by id, the list).
    const byId = await call('GET', '/documents/tz-1');
    const list = await call('GET', '/documents');
    const listed = (list.items as Array<Record<string, unknown>>)[0];
    // What the database holds, as UTC instants to the millisecond (its session zone is UTC), read
    // once the service is stopped (the embedded database has one owner).
    await stopService(service!);
    service = undefined;
    const { dataSource, close } = await openRawDataSource(loadAppConfig({ LOG_LEVEL: 'warn', ...db.env }));
    let stored: { created: string; updated: string };
    try {
      [stored] = await dataSource.query<Array<{ created: string; updated: string }>>(
        `SELECT to_char(created_at, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS created,
                to_char(updated_at, 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS updated
           FROM documents WHERE document_id = 'tz-1'`,
      );
    } finally {
      await close();
    }
    // Seven hours off before.
    expect([created.createdAt, patched.createdAt, byId.createdAt]).toEqual([
      stored.created,
      stored.created,
      stored.created,
    ]);
    expect([patched.updatedAt, listed.updatedAt]).toEqual([stored.updated, stored.updated]);
  });
});
