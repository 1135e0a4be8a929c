import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Server } from 'node:http';
import request from 'supertest';
import { createApp } from '../src/app.factory.js';
import { loadAppConfig } from '../src/config/app-config.js';
import { eventually, PRIVATE_SERVER_TIMEOUT_MS, PrivatePostgres } from './support/private-postgres.js';
import { TEST_TARGET } from './support/test-database.js';

/**
 * The database server goes away under a stream of writes and comes back. It needs a server this
 * test may stop and crash, so it runs only on the postgres target, on a private instance
 * (scripts/dev-postgres.sh start-instance); the shared test server is never touched.
 */
const onServer = TEST_TARGET === 'postgres';
const describeOnServer = onServer ? describe : describe.skip;

/** Bounds every request: a request that hangs fails the test instead of stalling it. */
const REQUEST_TIMEOUT_MS = 15_000;
const CHUNKS_PER_DOCUMENT = 3;

type Phase = 'up' | 'stopping' | 'down' | 'starting' | 'recovered';

interface Outcome {
  documentId: string;
  /** HTTP status; 0 when the request got no response within REQUEST_TIMEOUT_MS. */
  status: number;
  startedIn: Phase;
  endedIn: Phase;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeOnServer(
  'Database outage on a real server (postgres target only: it stops a private PostgreSQL; skipped on embedded PGlite)',
  () => {
    let db: PrivatePostgres;
    let app: NestFastifyApplication;
    let server: Server;
    let readinessPath = '/health/ready';

    beforeAll(async () => {
      db = await PrivatePostgres.start(`fault-${process.pid}`);
      const config = loadAppConfig({
        LOG_LEVEL: 'fatal',
        DATABASE_URL: db.url,
        DB_MIGRATE_ON_START: 'true',
        DB_POOL_MAX: '4',
        DB_POOL_ACQUIRE_TIMEOUT_MS: '2000',
        THROTTLE_LIMIT: '0',
      });
      app = await createApp(config);
      server = app.getHttpServer();
      // /health/ready where it exists, the older /health otherwise.
      if ((await request(server).get(readinessPath)).status === 404) readinessPath = '/health';
    }, PRIVATE_SERVER_TIMEOUT_MS);

    afterAll(async () => {
      await app?.close();
      await db?.remove();
    }, PRIVATE_SERVER_TIMEOUT_MS);

    const documentBody = (documentId: string) => ({
      documentId,
      documentName: `Fault ${documentId}`,
      documentType: 'law',
      category: 'outage',
      sourceFile: `/data/${documentId}.pdf`,
      chunks: Array.from({ length: CHUNKS_PER_DOCUMENT }, (_, i) => ({ content: `chunk ${i} of ${documentId}` })),
    });

    /** Each document's totalChunks and its real chunk count, straight from the server. */
    async function storedDocuments(): Promise<Map<string, { totalChunks: number; chunks: number }>> {
      const rows = await db.withClient(async (c) => {
        const result = await c.query<{ document_id: string; total_chunks: number; chunks: number }>(
          `SELECT d.document_id, d.total_chunks,
                  (SELECT count(*) FROM langchain_pg_embedding e WHERE e.cmetadata->>'document_id' = d.document_id)::int AS chunks
             FROM documents d`,
        );
        return result.rows;
      });
      return new Map(rows.map((r) => [r.document_id, { totalChunks: r.total_chunks, chunks: r.chunks }]));
    }

    async function orphanChunks(): Promise<number> {
      return db.withClient(async (c) => {
        const result = await c.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM langchain_pg_embedding e
            WHERE NOT EXISTS (SELECT 1 FROM documents d WHERE d.document_id = e.cmetadata->>'document_id')`,
        );
        return result.rows[0].n;
      });
    }

    it.each(['fast', 'immediate'] as const)(
      'stop -m %s under a stream of writes: 503 while down, every 2xx write kept whole, service back without restart',
      async (mode) => {
        let phase: Phase = 'up';
        let writing = true;
        const outcomes: Outcome[] = [];
        const created = (p: Phase) => outcomes.filter((o) => o.status === 201 && o.startedIn === p).length;

        // Two writers, each one request at a time, until told to stop.
        const writer = async (w: number) => {
          for (let n = 0; writing; n++) {
            const documentId = `${mode}-${w}-${n}`;
            const startedIn = phase;
            const status = await request(server)
              .post('/documents')
              .send(documentBody(documentId))
              .timeout(REQUEST_TIMEOUT_MS)
              .then(
                (res) => res.status,
                () => 0,
              );
            outcomes.push({ documentId, status, startedIn, endedIn: phase });
            // Failed requests come back at once while the server is down: do not spin.
            if (status !== 201) await sleep(50);
          }
        };
        const writers = [writer(0), writer(1)];
        try {
          expect(await eventually(() => Promise.resolve(created('up') >= 6))).toBe(true);

          phase = 'stopping';
          await db.stop(mode);
          phase = 'down';
          // The outage lasts a couple of seconds and spans several requests.
          await sleep(2000);
          expect(
            await eventually(() =>
              Promise.resolve(outcomes.filter((o) => o.startedIn === 'down' && o.endedIn === 'down').length >= 6),
            ),
          ).toBe(true);
          const readyWhileDown = await request(server).get(readinessPath).timeout(REQUEST_TIMEOUT_MS);
          expect(readyWhileDown.status).toBe(503);
          const listWhileDown = await request(server).get('/documents').timeout(REQUEST_TIMEOUT_MS);
          expect(listWhileDown.status).toBe(503);
          expect(listWhileDown.body).toEqual({
            statusCode: 503,
            message: expect.stringMatching(/unavailable|restarting|starting up/i) as unknown,
            error: 'Service Unavailable',
          });

          phase = 'starting';
          await db.start();
          phase = 'recovered';
          expect(await eventually(() => Promise.resolve(created('recovered') >= 6))).toBe(true);
        } finally {
          writing = false;
          await Promise.all(writers);
        }

        // Requests got an answer, and it was 201 or 503: never a 500, never a hang.
        expect(outcomes.filter((o) => o.status !== 201 && o.status !== 503)).toEqual([]);
        // Fully inside the outage: a fast 503, nothing written.
        const duringOutage = outcomes.filter((o) => o.startedIn === 'down' && o.endedIn === 'down');
        expect(duringOutage.length).toBeGreaterThanOrEqual(6);
        expect(duringOutage.every((o) => o.status === 503)).toBe(true);
        expect((await request(server).get(readinessPath).timeout(REQUEST_TIMEOUT_MS)).status).toBe(200);

        // Every acknowledged write is there, whole; a failed one is absent or whole (the commit may
        // have reached the server just before the connection dropped), never half-written.
        const stored = await storedDocuments();
        const whole = { totalChunks: CHUNKS_PER_DOCUMENT, chunks: CHUNKS_PER_DOCUMENT };
        const failed = outcomes.filter((o) => o.status !== 201);
        expect(failed.length).toBeGreaterThan(0);
        for (const o of outcomes) {
          const found = stored.get(o.documentId);
          if (o.status === 201 || found) expect([o.documentId, found]).toEqual([o.documentId, whole]);
        }
        expect(await orphanChunks()).toBe(0);

        // A failed write can be retried cleanly: created now (201), or found already complete (409).
        for (const o of failed) {
          const retry = await request(server).post('/documents').send(documentBody(o.documentId));
          expect([o.documentId, retry.status]).toEqual([o.documentId, stored.has(o.documentId) ? 409 : 201]);
        }
        const afterRetry = await storedDocuments();
        for (const o of outcomes) expect([o.documentId, afterRetry.get(o.documentId)]).toEqual([o.documentId, whole]);

        // The same app (no restart) serves reads and writes again.
        const doc = await request(server).get(`/documents/${outcomes[0].documentId}`).expect(200);
        expect(doc.body).toMatchObject({ documentId: outcomes[0].documentId, totalChunks: CHUNKS_PER_DOCUMENT });
        await request(server).get('/stats').expect(200);
      },
      PRIVATE_SERVER_TIMEOUT_MS,
    );
  },
);
