import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Server } from 'node:http';
import { createServer, type Socket } from 'node:net';
import request from 'supertest';
import { createApp } from '../src/app.factory.js';
import { loadAppConfig } from '../src/config/app-config.js';
import { REPLICA_RETRY_AFTER_MS } from '../src/database/read-replicas.service.js';
import { eventually, freePort, PRIVATE_SERVER_TIMEOUT_MS, PrivatePostgres } from './support/private-postgres.js';
import { startTestApp } from './support/test-app.js';
import { TEST_TARGET } from './support/test-database.js';

/**
 * DATABASE_REPLICA_URLS on a real streaming replica: a private primary and a pg_basebackup -R
 * replica of it (scripts/dev-postgres.sh start-instance), so the test can pause the replica's WAL
 * replay and stop it without touching the shared server. A paused replica is the observable:
 * a document written after the pause exists on the primary only, so a 404 for it means the read
 * was served by the replica and a 200 means it was served by the primary.
 */
const onServer = TEST_TARGET === 'postgres';
const describeOnServer = onServer ? describe : describe.skip;

describeOnServer(
  'Read replicas (postgres target only: needs a streaming replica of a private PostgreSQL; skipped on embedded PGlite)',
  () => {
    let primary: PrivatePostgres;
    let replica: PrivatePostgres;
    let app: NestFastifyApplication;
    let server: Server;

    beforeAll(async () => {
      primary = await PrivatePostgres.start(`rp-primary-${process.pid}`);
      replica = await PrivatePostgres.start(`rp-replica-${process.pid}`, primary);
      // The second replica URL points at a port nothing listens on: a replica that is down from
      // the start must neither stop the service from starting nor fail a request.
      const deadReplica = `postgresql://postgres@127.0.0.1:${await freePort()}/postgres`;
      const config = loadAppConfig({
        LOG_LEVEL: 'fatal',
        DATABASE_URL: primary.url,
        DATABASE_REPLICA_URLS: `${replica.url},${deadReplica}`,
        DB_MIGRATE_ON_START: 'true',
        THROTTLE_LIMIT: '0',
      });
      app = await createApp(config);
      server = app.getHttpServer();
    }, PRIVATE_SERVER_TIMEOUT_MS);

    afterAll(async () => {
      await app?.close();
      await replica?.remove();
      await primary?.remove();
    }, PRIVATE_SERVER_TIMEOUT_MS);

    /** Waits until the replica has replayed everything the primary has written so far. */
    async function replicaCaughtUp(): Promise<void> {
      const target = await primary.withClient(async (c) => {
        const result = await c.query<{ lsn: string }>(`SELECT pg_current_wal_lsn()::text AS lsn`);
        return result.rows[0].lsn;
      });
      const caughtUp = await eventually(() =>
        replica.withClient(async (c) => {
          const result = await c.query<{ done: boolean }>(`SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn AS done`, [
            target,
          ]);
          return result.rows[0].done;
        }),
      );
      expect(caughtUp).toBe(true);
    }

    const setReplay = (paused: boolean) =>
      replica.withClient((c) => c.query(paused ? `SELECT pg_wal_replay_pause()` : `SELECT pg_wal_replay_resume()`));

    const createDocument = (documentId: string) =>
      request(server)
        .post('/documents')
        .send({
          documentId,
          documentName: `Replica ${documentId}`,
          documentType: 'law',
          category: 'replicas',
          sourceFile: `/data/${documentId}.pdf`,
          chunks: [{ content: `land use rights ${documentId}` }, { content: `second chunk of ${documentId}` }],
        })
        .expect(201);

    it(
      'sends /documents, /collections, /stats and /ask reads to the replica and writes to the primary',
      async () => {
        await createDocument('before-pause');
        await replicaCaughtUp();
        await setReplay(true);
        try {
          // A write while the replica is frozen: it goes to the primary and is read back from there.
          const written = await createDocument('after-pause');
          expect(written.body).toMatchObject({ documentId: 'after-pause', totalChunks: 2 });
          const onPrimary = await primary.withClient((c) =>
            c.query(`SELECT 1 FROM documents WHERE document_id = 'after-pause'`),
          );
          expect(onPrimary.rowCount).toBe(1);

          // Reads come from the replica, which does not have it yet.
          await request(server).get('/documents/after-pause').expect(404);
          await request(server).get('/documents/after-pause/chunks').expect(404);
          await request(server).get('/documents/before-pause').expect(200);
          const chunks = await request(server).get('/documents/before-pause/chunks').expect(200);
          expect(chunks.body.total).toBe(2);
          const list = await request(server).get('/documents').expect(200);
          expect((list.body as { items: Array<{ documentId: string }> }).items.map((d) => d.documentId)).toEqual([
            'before-pause',
          ]);
          const stats = await request(server).get('/stats').expect(200);
          expect(stats.body.documents.total).toBe(1);
          expect(stats.body.embeddings.total).toBe(2);
          const collections = await request(server).get('/collections').expect(200);
          expect(collections.body).toEqual([expect.objectContaining({ name: 'docs', chunkCount: 2 })]);
          const collection = await request(server).get('/collections/docs').expect(200);
          expect(collection.body.chunkCount).toBe(2);
          const ask = await request(server).post('/ask').send({ question: 'land use rights', k: 10 }).expect(200);
          expect((ask.body as { results: Array<{ documentId: string }> }).results.map((r) => r.documentId)).toEqual([
            'before-pause',
            'before-pause',
          ]);
        } finally {
          await setReplay(false);
        }
        await replicaCaughtUp();
        await request(server).get('/documents/after-pause').expect(200);
        const stats = await request(server).get('/stats').expect(200);
        expect(stats.body.documents.total).toBe(2);
      },
      PRIVATE_SERVER_TIMEOUT_MS,
    );

    it(
      'skips a stopped replica (reads served by the primary) and uses it again once it is back',
      async () => {
        await replicaCaughtUp();
        await setReplay(true);
        await createDocument('while-frozen');
        await request(server).get('/documents/while-frozen').expect(404);

        await replica.stop('fast');
        // Every read still answers, now from the primary (which has the new document).
        await request(server).get('/documents/while-frozen').expect(200);
        const list = await request(server).get('/documents').expect(200);
        expect(list.body.total).toBe(3);
        expect((await request(server).get('/stats').expect(200)).body.documents.total).toBe(3);
        await request(server).get('/collections').expect(200);
        await request(server).get('/collections/docs').expect(200);
        await request(server).get('/documents/while-frozen/chunks').expect(200);
        await request(server).post('/ask').send({ question: 'land use rights' }).expect(200);
        // Readiness stays 200, degraded, and says so in a status its OpenAPI schema declares.
        const ready = await request(server).get('/health/ready').expect(200);
        expect(ready.body).toMatchObject({ status: 'degraded', details: { replicas: { status: 'degraded' } } });
        // Both (this one stopped, the other never up), named by place in DATABASE_REPLICA_URLS: a public
        // route does not name hosts.
        expect(ready.body.details.replicas.down).toEqual(['replica#1', 'replica#2']);
        const docs = await request(server).get('/docs-json').expect(200);
        const schema = docs.body.paths['/health/ready'].get.responses['200'].content['application/json'].schema;
        expect(schema.properties.status.enum).toContain(ready.body.status);

        // Back again (its replay resumes on start); freeze it once more to tell it from the primary.
        await replica.start();
        await replicaCaughtUp();
        await setReplay(true);
        try {
          await createDocument('after-restart');
          // Served by the primary until the replica's retry delay has passed, then by the replica.
          const servedByReplica = await eventually(
            async () => (await request(server).get('/documents/after-restart')).status === 404,
          );
          expect(servedByReplica).toBe(true);
        } finally {
          await setReplay(false);
        }
      },
      PRIVATE_SERVER_TIMEOUT_MS,
    );
  },
);

describeOnServer('A replica whose host stops answering (postgres target only)', () => {
  it('after its retry delay, one read tries it again while the others go to the primary at once', async () => {
    const port = await freePort();
    // Long enough that a read waiting for the silent replica is told apart from one that is not.
    const t = await startTestApp({
      DATABASE_REPLICA_URLS: `postgresql://postgres@127.0.0.1:${port}/postgres`,
      DB_POOL_ACQUIRE_TIMEOUT_MS: '60000',
      THROTTLE_LIMIT: '0',
    });
    const sockets = new Set<Socket>();
    // Accepts connections and never answers: a host gone silent, not one that refuses.
    const silent = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => undefined);
    });
    try {
      // Nothing listens yet: refused at once, so the replica is marked down.
      await request(t.server).get('/documents').expect(200);
      await new Promise<void>((resolve, reject) => silent.once('error', reject).listen(port, '127.0.0.1', resolve));
      // Its retry delay (REPLICA_RETRY_AFTER_MS, 5 s) passes.
      await new Promise((resolve) => setTimeout(resolve, REPLICA_RETRY_AFTER_MS + 200));
      let answered = 0;
      const reads = Array.from({ length: 8 }, () =>
        request(t.server)
          .get('/documents')
          .then((res) => {
            answered += 1;
            return res.status;
          }),
      );
      // Every read but the one trying the replica is answered by the primary, while that one waits.
      expect(await eventually(async () => Promise.resolve(answered >= 7), 80, 100)).toBe(true);
      expect(answered).toBe(7);
      expect(sockets.size).toBe(1);
      // The host refuses again: the waiting read goes to the primary too.
      for (const socket of sockets) socket.destroy();
      expect(await Promise.all(reads)).toEqual(Array(8).fill(200));
    } finally {
      silent.close();
      for (const socket of sockets) socket.destroy();
      await t.close();
    }
  });
});
