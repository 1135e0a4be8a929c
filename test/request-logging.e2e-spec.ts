import request from 'supertest';
import { LogCapture } from './support/log-capture.js';
import { startTestApp, type TestApp } from './support/test-app.js';

// Its own file: the pino root logger is built once per process, from the first app's LOG_LEVEL.
describe('request logging at LOG_LEVEL=warn', () => {
  const logs = new LogCapture();
  let t: TestApp;

  beforeAll(async () => {
    logs.start();
    t = await startTestApp({ LOG_LEVEL: 'warn' });
  });
  afterAll(async () => {
    await t?.close();
    logs.stop();
  });

  it('writes no access line for 2xx and 4xx; a 5xx gets its error line, with its reqId and redacted headers', async () => {
    await request(t.server).get('/documents?limit=5').set('x-request-id', 'warn-200').expect(200);
    await request(t.server).get('/documents/not-there').set('x-request-id', 'warn-404').expect(404);
    await t.dataSource.query('ALTER TABLE documents RENAME COLUMN document_name TO document_name_hidden');
    try {
      const res = await request(t.server)
        .get('/documents?limit=5')
        .set('x-request-id', 'warn-500')
        .set('Authorization', 'Bearer warn-secret-bearer')
        .expect(500);
      expect(res.headers['x-request-id']).toBe('warn-500');
      // Access lines are written as each response ends, in order: the earlier requests' would be here by now.
      const lines = await logs.forRequest('warn-500', (l) => l.msg === 'request errored');
      expect(lines.find((l) => l.msg === 'request errored')).toMatchObject({
        level: 50,
        reqId: 'warn-500',
        req: { method: 'GET', url: '/documents?limit=5', headers: { authorization: '[redacted]' } },
        res: { statusCode: 500 },
      });
      // The cause, logged by the exception filter during the request, carries the same reqId.
      expect(lines.find((l) => l.context === 'Exceptions')).toMatchObject({ level: 50, reqId: 'warn-500' });
      expect(logs.lines.filter((l) => l.reqId === 'warn-200' || l.reqId === 'warn-404')).toEqual([]);
      expect(logs.raw.join('\n')).not.toContain('warn-secret-bearer');
    } finally {
      await t.dataSource.query('ALTER TABLE documents RENAME COLUMN document_name_hidden TO document_name');
    }
  });
});
