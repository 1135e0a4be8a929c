import request from 'supertest';
import type { QueryRunner } from 'typeorm';
import { DOCUMENT_LOCK_CLASS, documentLockBucket, FIRST_VECTORS_LOCK_SQL } from '../src/embeddings/chunk.store.js';
import { eventually } from './support/private-postgres.js';
import { startTestApp, type TestApp } from './support/test-app.js';
import { TEST_TARGET } from './support/test-database.js';

/** Takes a document's lock in `runner`'s transaction, as ChunkStore.lockDocuments takes it. */
async function holdDocumentLock(runner: QueryRunner, documentId: string): Promise<void> {
  await runner.query('SELECT pg_advisory_xact_lock($1, $2)', [DOCUMENT_LOCK_CLASS, documentLockBucket(documentId)]);
}

const base = { documentType: 'law', category: 'dat-dai', sourceFile: '/data/laws/file.pdf' };

describe('Concurrent document and chunk writes', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
    for (let i = 0; i < 12; i++) {
      await request(t.server)
        .post('/documents')
        .send({
          documentId: `seed-${i}`,
          documentName: `Seed ${i}`,
          ...base,
          chunks: [{ content: `seed ${i} a` }, { content: `seed ${i} b` }],
        })
        .expect(201);
    }
  });
  afterAll(async () => {
    await t.close();
  });

  it('keeps every total_chunks equal to the chunk count after 30 mixed concurrent writes, without a 5xx', async () => {
    const statuses = ['inactive', 'processing', 'expired', 'active'] as const;
    const ops: Array<() => request.Test> = [];
    for (let i = 0; i < 30; i++) {
      const seed = `seed-${i % 12}`;
      switch (i % 5) {
        case 0: // a new document with chunks
          ops.push(() =>
            request(t.server)
              .post('/documents')
              .send({
                documentId: `new-${i}`,
                documentName: `New ${i}`,
                ...base,
                chunks: Array.from({ length: 1 + (i % 4) }, (_, k) => ({ content: `new ${i} ${k}` })),
              }),
          );
          break;
        case 1: // status change, written into every chunk
        case 3:
          ops.push(() =>
            request(t.server)
              .patch(`/documents/${seed}`)
              .send({ status: statuses[i % statuses.length] }),
          );
          break;
        case 2: // chunks added to an existing document through the embeddings API
          ops.push(() =>
            request(t.server)
              .post('/embeddings')
              .send({
                items: [
                  { content: `extra ${i} a`, metadata: { document_id: seed } },
                  { content: `extra ${i} b`, metadata: { document_id: seed } },
                ],
              }),
          );
          break;
        case 4: // delete (the same document may be deleted twice: 404, never 5xx)
          ops.push(() => request(t.server).delete(`/documents/seed-${(i * 7) % 12}`));
          break;
      }
    }
    const responses = await Promise.all(ops.map((op) => op()));
    const codes = responses.map((r) => r.status);
    expect(codes.filter((c) => c >= 500)).toEqual([]);
    expect(codes.every((c) => [200, 201, 204, 404].includes(c))).toBe(true);
    expect(codes.filter((c) => c === 201).length).toBeGreaterThanOrEqual(12);

    const mismatched = await t.dataSource.query<Array<{ document_id: string; total_chunks: number; n: number }>>(
      `SELECT d.document_id, d.total_chunks, count(e.id)::int AS n
         FROM documents d
         LEFT JOIN langchain_pg_embedding e ON e.cmetadata->>'document_id' = d.document_id
        GROUP BY d.document_id, d.total_chunks
       HAVING d.total_chunks IS DISTINCT FROM count(e.id)::int`,
    );
    expect(mismatched).toEqual([]);

    // Every chunk of a surviving document carries the document's current status.
    const stale = await t.dataSource.query<Array<{ id: string }>>(
      `SELECT e.id FROM langchain_pg_embedding e
         JOIN documents d ON d.document_id = e.cmetadata->>'document_id'
        WHERE e.cmetadata ? 'status' AND e.cmetadata->>'status' IS DISTINCT FROM d.status`,
    );
    expect(stale).toEqual([]);
  });
  it('counts chunks that arrive for a document while its create is still in flight', async () => {
    for (let round = 0; round < 15; round++) {
      const documentId = `racing-${round}`;
      const create = request(t.server)
        .post('/documents')
        .send({
          documentId,
          documentName: documentId,
          ...base,
          chunks: Array.from({ length: 40 }, (_, k) => ({ content: `racing ${round} ${k}` })),
        });
      const added = request(t.server)
        .post('/embeddings')
        .send({
          items: [1, 2, 3].map((k) => ({ content: `late ${round} ${k}`, metadata: { document_id: documentId } })),
        });
      const [created, embedded] = await Promise.all([create, added]);
      expect([created.status, embedded.status]).toEqual([201, 201]);
    }
    const rows = await t.dataSource.query<Array<{ document_id: string; total_chunks: number; n: number }>>(
      `SELECT d.document_id, d.total_chunks, count(e.id)::int AS n
         FROM documents d LEFT JOIN langchain_pg_embedding e ON e.cmetadata->>'document_id' = d.document_id
        WHERE d.document_id LIKE 'racing-%' GROUP BY d.document_id, d.total_chunks ORDER BY 1`,
    );
    expect(rows).toHaveLength(15);
    for (const row of rows) expect(row).toEqual({ document_id: row.document_id, total_chunks: 43, n: 43 });
  });

  it('lets exactly one of several concurrent creates of one documentId win; the others get 409', async () => {
    const responses = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        request(t.server)
          .post('/documents')
          .send({ documentId: 'contested', documentName: `Try ${i}`, ...base, chunks: [{ content: `try ${i}` }] }),
      ),
    );
    const codes = responses.map((r) => r.status).sort();
    expect(codes).toEqual([201, 409, 409, 409, 409, 409]);
    for (const res of responses.filter((r) => r.status === 409)) {
      expect(res.body.message).toBe('Document "contested" already exists');
    }
    const [row] = await t.dataSource.query<Array<{ total_chunks: number; n: number }>>(
      `SELECT d.total_chunks,
              (SELECT count(*)::int FROM langchain_pg_embedding e WHERE e.cmetadata->>'document_id' = 'contested') AS n
         FROM documents d WHERE d.document_id = 'contested'`,
    );
    expect(row).toEqual({ total_chunks: 1, n: 1 });
  });
});

// Two sessions at once: the embedded database has one, so these run on a server only.
(TEST_TARGET === 'postgres' ? describe : describe.skip)(
  'A chunk id that another transaction writes while a request waits for it (server only)',
  () => {
    let t: TestApp;
    const collection = 'raced-owners';

    async function createDocuments(...documentIds: string[]): Promise<void> {
      for (const documentId of documentIds) {
        await request(t.server)
          .post('/documents')
          .send({ documentId, documentName: documentId, ...base })
          .expect(201);
      }
    }

    async function addChunk(id: string, documentId: string, embedding: number[]): Promise<void> {
      await request(t.server)
        .post('/embeddings')
        .send({ collection, items: [{ id, content: id, embedding, metadata: { document_id: documentId } }] })
        .expect(201);
    }

    beforeAll(async () => {
      // The deadlock test below needs the request's session to look for the deadlock after the test
      // has closed the cycle: it looks once, deadlock_timeout after it starts waiting (1 s by default,
      // which a stalled CI machine can miss).
      t = await startTestApp({}, { serverSettings: { deadlock_timeout: '5s' } });
      await createDocuments('owner-a', 'owner-b');
      // The collection exists before the race, so the request waits on the chunk row, not on it.
      await addChunk('b-1', 'owner-b', [1, 0]);
    });
    afterAll(async () => {
      await t.close();
    });

    /**
     * Another writer (a second instance of the service, say) inserts chunk `id` for `documentId`
     * and counts it, and holds its transaction open.
     */
    async function holdNewChunk(id: string, documentId: string): Promise<QueryRunner> {
      const other = t.dataSource.createQueryRunner();
      await other.connect();
      await other.startTransaction();
      await other.query(
        `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
         SELECT $1, uuid, '[0,1]', 'held', jsonb_build_object('document_id', $2::text)
           FROM langchain_pg_collection WHERE name = $3`,
        [id, documentId, collection],
      );
      await other.query(`UPDATE documents SET total_chunks = total_chunks + 1 WHERE document_id = $1`, [documentId]);
      return other;
    }

    /** Whether a request's chunk upsert waits for a lock. */
    async function upsertWaits(): Promise<boolean> {
      const [{ n }] = await t.dataSource.query<Array<{ n: number }>>(
        `SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock'
            AND query LIKE '%INSERT INTO langchain_pg_embedding%'`,
      );
      return n > 0;
    }

    /** Commits `other` once a request's chunk upsert waits for its row. */
    async function commitWhenUpsertWaits(other: QueryRunner): Promise<boolean> {
      const blocked = await eventually(upsertWaits);
      await other.commitTransaction();
      await other.release();
      return blocked;
    }

    /** Another writer's open transaction, which outwaits the request's session in a deadlock (that one is cancelled). */
    async function deadlockPartner(): Promise<QueryRunner> {
      const other = t.dataSource.createQueryRunner();
      await other.connect();
      await other.startTransaction();
      // The request's session detects the deadlock (after its 5 s deadlock_timeout) and is the one cancelled.
      await other.query(`SELECT set_config('deadlock_timeout', '60s', true)`);
      return other;
    }

    /**
     * Once the request's chunk upsert waits for `other`'s uncommitted chunk of `documentId`, closes
     * the cycle: `other` updates the document's row, which the request holds, and waits until
     * PostgreSQL cancels the request's transaction (its deadlock_timeout is the shorter); then commits.
     */
    async function closeDeadlockCycle(other: QueryRunner, documentId: string): Promise<void> {
      // Polled every 20 ms for at most 4 s: the request looks for a deadlock once, 5 s
      // (deadlock_timeout) after it starts waiting, so the UPDATE below must come before that.
      expect(await eventually(upsertWaits, 200, 20)).toBe(true);
      await other.query(`UPDATE documents SET total_chunks = total_chunks + 1 WHERE document_id = $1`, [documentId]);
      await other.commitTransaction();
      await other.release();
    }

    async function countsByDocument(): Promise<Array<{ document_id: string; total_chunks: number; n: number }>> {
      return t.dataSource.query(
        `SELECT d.document_id, d.total_chunks, count(e.id)::int AS n
           FROM documents d LEFT JOIN langchain_pg_embedding e ON e.cmetadata->>'document_id' = d.document_id
          GROUP BY d.document_id, d.total_chunks ORDER BY 1`,
      );
    }

    it('POST /embeddings that moves it to another document recounts the document it came from', async () => {
      const other = await holdNewChunk('moved-1', 'owner-a');
      const post = request(t.server)
        .post('/embeddings')
        .send({
          collection,
          items: [{ id: 'moved-1', content: 'moved', embedding: [1, 1], metadata: { document_id: 'owner-b' } }],
        })
        .then((r) => r);
      expect(await commitWhenUpsertWaits(other)).toBe(true);
      const res = await post;
      expect(res.status).toBe(201);
      // owner-a counted the chunk when it was written; the move took it away again.
      expect(await countsByDocument()).toEqual([
        { document_id: 'owner-a', total_chunks: 0, n: 0 },
        { document_id: 'owner-b', total_chunks: 2, n: 2 },
      ]);
      const [chunk] = await t.dataSource.query<Array<{ document: string; owner: string }>>(
        `SELECT document, cmetadata->>'document_id' AS owner FROM langchain_pg_embedding WHERE id = 'moved-1'`,
      );
      expect(chunk).toEqual({ document: 'moved', owner: 'owner-b' });
    });

    it('POST /documents whose chunk id another document has just taken is a 409, and writes nothing', async () => {
      const other = await holdNewChunk('taken-1', 'owner-a');
      const post = request(t.server)
        .post('/documents')
        .send({
          documentId: 'late',
          documentName: 'late',
          ...base,
          collection,
          chunks: [{ id: 'taken-1', content: 'late', embedding: [1, 2] }],
        })
        .then((r) => r);
      expect(await commitWhenUpsertWaits(other)).toBe(true);
      const res = await post;
      expect(res.status).toBe(409);
      expect(res.body.message).toBe('Chunk id "taken-1" already belongs to another document');
      expect(await countsByDocument()).toEqual([
        { document_id: 'owner-a', total_chunks: 1, n: 1 },
        { document_id: 'owner-b', total_chunks: 2, n: 2 },
      ]);
      const [chunk] = await t.dataSource.query<Array<{ document: string }>>(
        `SELECT document FROM langchain_pg_embedding WHERE id = 'taken-1'`,
      );
      expect(chunk).toEqual({ document: 'held' });
    });

    /** Waits until some session of this database waits for a lock that the session `pid` holds. */
    async function blockedBy(pid: number): Promise<boolean> {
      return eventually(
        async () => {
          const [{ n }] = await t.dataSource.query<Array<{ n: number }>>(
            `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND $1::int = ANY(pg_blocking_pids(pid))`,
            [pid],
          );
          return n > 0;
        },
        200,
        50,
      );
    }

    /** What another instance does to write a collection's first vectors: the lock, then the row. */
    async function writeFirstVectors(runner: QueryRunner, uuid: string, id: string, vector: string): Promise<void> {
      await runner.query(FIRST_VECTORS_LOCK_SQL, [uuid]);
      await runner.query(
        `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
         VALUES ($1, $2, $3, 'text', '{}')`,
        [id, uuid, vector],
      );
    }

    async function openTransaction(): Promise<{ runner: QueryRunner; pid: number }> {
      const runner = t.dataSource.createQueryRunner();
      await runner.connect();
      await runner.startTransaction();
      const [{ pid }] = (await runner.query(`SELECT pg_backend_pid() AS pid`)) as Array<{ pid: number }>;
      return { runner, pid };
    }

    it('an ingest that meets a concurrent first insert of its documentId becomes a re-ingest of it, never a 409 or 500', async () => {
      // Another writer (the Python service, say) inserts the document and has not committed yet.
      const other = await openTransaction();
      await other.runner.query(
        `INSERT INTO documents (document_id, document_name, category, document_type, source_file, file_name, total_chunks, status)
         VALUES ('race-ingest', 'Từ nơi khác', 'dat-dai', 'law', '/x.pdf', 'x.pdf', 0, 'active')`,
      );
      const ingest = request(t.server)
        .post('/documents/ingest')
        .send({ documentId: 'race-ingest', documentType: 'law', category: 'dat-dai', text: 'Điều 1. Phạm vi' })
        .then((r) => r);
      // The ingest's own insert waits on the uncommitted row's unique key.
      const waited = await blockedBy(other.pid);
      await other.runner.commitTransaction();
      await other.runner.release();
      expect(waited).toBe(true);
      const res = await ingest;
      expect([res.status, res.body.skipped]).toEqual([201, false]);
      const [row] = await t.dataSource.query<Array<{ documents: number; chunks: number; total: number }>>(
        `SELECT (SELECT count(*)::int FROM documents WHERE document_id = 'race-ingest') AS documents,
                (SELECT count(*)::int FROM langchain_pg_embedding WHERE cmetadata->>'document_id' = 'race-ingest') AS chunks,
                (SELECT total_chunks FROM documents WHERE document_id = 'race-ingest') AS total`,
      );
      expect(row).toEqual({ documents: 1, chunks: res.body.chunks, total: res.body.chunks });
      expect(row.chunks).toBeGreaterThan(0);
    });

    it('DELETE /embeddings/:id of a chunk moved to another document meanwhile locks that document before the row', async () => {
      await createDocuments('owner-c', 'owner-d');
      await addChunk('del-1', 'owner-c', [1, 3]);
      // A count left stale by writers that do not keep it (LangChain): the delete's recount must change it.
      await t.dataSource.query(`UPDATE documents SET total_chunks = 5 WHERE document_id = 'owner-d'`);
      // A writer that takes no document locks (LangChain, say) moves the chunk to owner-d.
      const mover = await openTransaction();
      await mover.runner.query(
        `UPDATE langchain_pg_embedding SET cmetadata = jsonb_build_object('document_id', 'owner-d') WHERE id = 'del-1'`,
      );
      const del = request(t.server)
        .delete('/embeddings/del-1')
        .then((r) => r);
      // The delete read owner-c, locked it, and waits for the chunk's row.
      expect(await blockedBy(mover.pid)).toBe(true);
      // Another writer of this service takes owner-d's locks (lockDocuments) before the mover commits.
      const writer = await openTransaction();
      await holdDocumentLock(writer.runner, 'owner-d');
      await writer.runner.query(`SELECT 1 FROM documents WHERE document_id = 'owner-d' FOR UPDATE`);
      await mover.runner.commitTransaction();
      await mover.runner.release();
      // The delete now waits for owner-d, which the writer holds: without its row lock on the chunk,
      // the writer can update the chunk. A delete holding that row lock while it waits (it deleted
      // first, then locked the document) would deadlock here.
      expect(await blockedBy(writer.pid)).toBe(true);
      await writer.runner.query(`UPDATE langchain_pg_embedding SET document = 'rewritten' WHERE id = 'del-1'`);
      await writer.runner.commitTransaction();
      await writer.runner.release();
      const res = await del;
      expect(res.status).toBe(204);
      const rows = await t.dataSource.query(`SELECT 1 FROM langchain_pg_embedding WHERE id = 'del-1'`);
      expect(rows).toEqual([]);
      // The delete recounted owner-d (the mover, which recounts nothing, left owner-c's count as it was).
      const counts = await countsByDocument();
      expect(counts.find((c) => c.document_id === 'owner-d')).toEqual({
        document_id: 'owner-d',
        total_chunks: 0,
        n: 0,
      });
    });

    it('DELETE /embeddings/:id of a chunk that keeps moving through three attempts is a 409, and deletes nothing', async () => {
      const owners = ['hop-1', 'hop-2', 'hop-3', 'hop-4'];
      await addChunk('hop', owners[0], [1, 4]);
      /** A writer of this service holding a document's locks (its advisory lock is all it needs here). */
      const holdDocument = async (documentId: string) => {
        const gate = await openTransaction();
        await holdDocumentLock(gate.runner, documentId);
        return gate;
      };
      let gate = await holdDocument(owners[0]);
      const del = request(t.server)
        .delete('/embeddings/hop')
        .then((r) => r);
      for (let attempt = 0; attempt < 3; attempt++) {
        // The attempt read the chunk's owner and waits for that document's lock.
        expect(await blockedBy(gate.pid)).toBe(true);
        // A lock-free writer moves the chunk on, and the next owner's lock is taken before the attempt goes on.
        const mover = await openTransaction();
        await mover.runner.query(
          `UPDATE langchain_pg_embedding SET cmetadata = jsonb_build_object('document_id', $1::text) WHERE id = 'hop'`,
          [owners[attempt + 1]],
        );
        const next = await holdDocument(owners[attempt + 1]);
        await gate.runner.commitTransaction();
        await gate.runner.release();
        // The attempt has its document locked and waits for the chunk's row; the move then commits.
        expect(await blockedBy(mover.pid)).toBe(true);
        await mover.runner.commitTransaction();
        await mover.runner.release();
        gate = next;
      }
      const res = await del;
      await gate.runner.commitTransaction();
      await gate.runner.release();
      expect(res.status).toBe(409);
      expect(res.body.message).toBe('A chunk of this request was written by a concurrent request; retry');
      const rows = await t.dataSource.query(
        `SELECT cmetadata->>'document_id' AS owner FROM langchain_pg_embedding WHERE id = 'hop'`,
      );
      expect(rows).toEqual([{ owner: owners[3] }]);
    });

    it('DELETE /collections/:name waits for a writer holding one of its documents instead of deadlocking with it', async () => {
      const doomed = 'doomed';
      await createDocuments('owner-e');
      await request(t.server)
        .post('/embeddings')
        .send({
          collection: doomed,
          items: [{ id: 'doomed-1', content: 'x', embedding: [1, 5], metadata: { document_id: 'owner-e' } }],
        })
        .expect(201);
      // A writer of this service holds owner-e's locks, as lockDocuments takes them.
      const writer = await openTransaction();
      await holdDocumentLock(writer.runner, 'owner-e');
      await writer.runner.query(`SELECT 1 FROM documents WHERE document_id = 'owner-e' FOR UPDATE`);
      const del = request(t.server)
        .delete(`/collections/${doomed}`)
        .then((r) => r);
      expect(await blockedBy(writer.pid)).toBe(true);
      // The writer adds a chunk to the collection: its foreign-key check needs a lock on the collection
      // row. A delete that had locked that row before waiting for owner-e would deadlock here.
      await writer.runner.query(
        `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
         SELECT 'doomed-2', uuid, '[1,6]', 'y', jsonb_build_object('document_id', 'owner-e')
           FROM langchain_pg_collection WHERE name = $1`,
        [doomed],
      );
      await writer.runner.query(`UPDATE documents SET total_chunks = total_chunks + 1 WHERE document_id = 'owner-e'`);
      await writer.runner.commitTransaction();
      await writer.runner.release();
      const res = await del;
      expect(res.status).toBe(204);
      const left = await t.dataSource.query(`SELECT id FROM langchain_pg_embedding WHERE id LIKE 'doomed-%'`);
      expect(left).toEqual([]);
      const counts = await countsByDocument();
      expect(counts.find((c) => c.document_id === 'owner-e')).toEqual({
        document_id: 'owner-e',
        total_chunks: 0,
        n: 0,
      });
    });

    it('creating a document in a collection another writer is creating waits for it, without a deadlock', async () => {
      // POST /embeddings of another instance, for a new collection and a chunk of fresh-doc: it has
      // inserted the collection (uncommitted) and is about to lock the document.
      const other = await openTransaction();
      await other.runner.query(
        `INSERT INTO langchain_pg_collection (uuid, name, cmetadata) VALUES (gen_random_uuid(), 'fresh', '{}')`,
      );
      const create = ['documents', 'ingest'].map((via) =>
        (via === 'documents'
          ? request(t.server)
              .post('/documents')
              .send({
                documentId: 'fresh-doc',
                documentName: 'F',
                ...base,
                collection: 'fresh',
                chunks: [{ content: 'a' }],
              })
          : request(t.server).post('/documents/ingest').send({
              documentId: 'fresh-ingest',
              documentType: 'law',
              category: 'c',
              collection: 'fresh',
              text: 'Điều 1.',
            })
        ).then((r) => r),
      );
      expect(await blockedBy(other.pid)).toBe(true);
      // A create that had locked its document first would now hold it while waiting for the
      // collection: this lock would close the cycle, and the server would cancel one of the two.
      await holdDocumentLock(other.runner, 'fresh-doc');
      await holdDocumentLock(other.runner, 'fresh-ingest');
      await other.runner.commitTransaction();
      await other.runner.release();
      const [viaDocuments, viaIngest] = await Promise.all(create);
      expect([viaDocuments.status, viaIngest.status]).toEqual([201, 201]);
    });

    it("writes of an empty collection's first vectors wait for another writer's and are checked against them", async () => {
      const name = 'first-vectors';
      const created = await request(t.server).post('/collections').send({ name }).expect(201);
      const uuid = (created.body as { uuid: string }).uuid;
      // Another instance of the service writes the collection's first vectors, 3-dimensional, and
      // holds its transaction open.
      const other = await openTransaction();
      await writeFirstVectors(other.runner, uuid, 'first-3', '[1,2,3]');
      const viaEmbeddings = request(t.server)
        .post('/embeddings')
        .send({ collection: name, items: [{ id: 'first-4', content: 'four', embedding: [1, 2, 3, 4] }] })
        .then((r) => r);
      const viaDocuments = request(t.server)
        .post('/documents')
        .send({
          documentId: 'first-4-doc',
          documentName: 'four',
          ...base,
          collection: name,
          chunks: [{ id: 'first-4-chunk', content: 'four', embedding: [1, 2, 3, 4] }],
        })
        .then((r) => r);
      const waited = await blockedBy(other.pid);
      await other.runner.commitTransaction();
      await other.runner.release();
      expect(waited).toBe(true);
      const [embeddings, documents] = await Promise.all([viaEmbeddings, viaDocuments]);
      expect([embeddings.status, embeddings.body.message]).toEqual([
        400,
        `Embedding dimension mismatch in collection "${name}": it holds 3-dimensional vectors, item 0 has 4`,
      ]);
      expect([documents.status, documents.body.message]).toEqual([
        400,
        `Embedding dimension mismatch in collection "${name}": it holds 3-dimensional vectors, item 0 has 4`,
      ]);
      const stored = await t.dataSource.query(
        `SELECT e.id FROM langchain_pg_embedding e JOIN langchain_pg_collection c ON c.uuid = e.collection_id
          WHERE c.name = $1`,
        [name],
      );
      expect(stored).toEqual([{ id: 'first-3' }]);
      await request(t.server).get('/documents/first-4-doc').expect(404);
    });

    it('writes into a collection that holds vectors wait for a transaction that replaced them all with another dimension', async () => {
      const name = 'replaced-vectors';
      await request(t.server)
        .post('/embeddings')
        .send({ collection: name, items: [{ id: 'old-3', content: 'three', embedding: [1, 2, 3] }] })
        .expect(201);
      const [{ uuid }] = await t.dataSource.query<Array<{ uuid: string }>>(
        `SELECT uuid FROM langchain_pg_collection WHERE name = $1`,
        [name],
      );
      // Another instance re-embeds the collection with another model: it deletes every vector, then
      // writes the first ones of the new dimension (taking the lock exclusively), uncommitted yet.
      const other = await openTransaction();
      await other.runner.query(`DELETE FROM langchain_pg_embedding WHERE collection_id = $1`, [uuid]);
      await writeFirstVectors(other.runner, uuid, 'new-4', '[1,2,3,4]');
      // This one still sees the committed 3-dimensional vector.
      const viaEmbeddings = request(t.server)
        .post('/embeddings')
        .send({ collection: name, items: [{ id: 'late-3', content: 'three again', embedding: [3, 2, 1] }] })
        .then((r) => r);
      const waited = await blockedBy(other.pid);
      await other.runner.commitTransaction();
      await other.runner.release();
      expect(waited).toBe(true);
      const res = await viaEmbeddings;
      expect([res.status, res.body.message]).toEqual([
        400,
        `Embedding dimension mismatch in collection "${name}": it holds 4-dimensional vectors, item 0 has 3`,
      ]);
      const stored = await t.dataSource.query(`SELECT id FROM langchain_pg_embedding WHERE collection_id = $1`, [uuid]);
      expect(stored).toEqual([{ id: 'new-4' }]);
      // And searches of it work: one dimension.
      await request(t.server)
        .post('/ask')
        .send({ question: 'x', collection: name, queryEmbedding: [1, 2, 3, 4] })
        .expect(200);
    });

    it('a write whose collection is deleted while it waits creates the collection again, not a 409', async () => {
      const name = 'deleted-under-write';
      await createDocuments('owner-gone');
      const item = (id: string, embedding: number[]) => ({
        id,
        content: id,
        embedding,
        metadata: { document_id: 'owner-gone' },
      });
      await request(t.server)
        .post('/embeddings')
        .send({ collection: name, items: [item('gone-0', [1, 0])] })
        .expect(201);
      // The request looks the collection up, then waits for the document's lock, which this holds.
      const holder = t.dataSource.createQueryRunner();
      await holder.connect();
      await holder.startTransaction();
      await holdDocumentLock(holder, 'owner-gone');
      const post = request(t.server)
        .post('/embeddings')
        .send({ collection: name, items: [item('gone-1', [0, 1])] })
        .then((r) => r);
      const waiting = await eventually(async () => {
        const [{ n }] = await t.dataSource.query<Array<{ n: number }>>(
          `SELECT count(*)::int AS n FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`,
        );
        return n > 0;
      });
      expect(waiting).toBe(true);
      // Meanwhile the collection goes, as LangChain's delete_collection() deletes it.
      await t.dataSource.query(`DELETE FROM langchain_pg_collection WHERE name = $1`, [name]);
      await holder.commitTransaction();
      await holder.release();
      const res = await post;
      expect([res.status, res.body.message]).toEqual([201, undefined]);
      const stored = await t.dataSource.query(
        `SELECT e.id FROM langchain_pg_embedding e JOIN langchain_pg_collection c ON c.uuid = e.collection_id WHERE c.name = $1`,
        [name],
      );
      expect(stored).toEqual([{ id: 'gone-1' }]);
      expect((await countsByDocument()).find((r) => r.document_id === 'owner-gone')).toEqual({
        document_id: 'owner-gone',
        total_chunks: 1,
        n: 1,
      });
    });

    it('a write that PostgreSQL cancels in a deadlock with a writer counting chunks its own way is run again, not a 409', async () => {
      await createDocuments('owner-dl');
      // The Python service's order: the chunk first (its trigger takes the document's chunk_counts
      // row), then documents. The service takes the document's row first, then the counts'.
      const other = await deadlockPartner();
      await other.query(
        `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
         SELECT 'dl-held', uuid, '[0,1]', 'held', '{"document_id": "owner-dl"}' FROM langchain_pg_collection WHERE name = $1`,
        [collection],
      );
      const post = request(t.server)
        .post('/embeddings')
        .send({
          collection,
          items: [{ id: 'dl-1', content: 'd', embedding: [1, 2], metadata: { document_id: 'owner-dl' } }],
        })
        .then((r) => r);
      await closeDeadlockCycle(other, 'owner-dl');
      const res = await post;
      expect([res.status, res.body.message]).toEqual([201, undefined]);
      expect((await countsByDocument()).find((r) => r.document_id === 'owner-dl')).toEqual({
        document_id: 'owner-dl',
        total_chunks: 2,
        n: 2,
      });
    });

    it('an ingest that PostgreSQL cancels in such a deadlock is run again with the vectors it computed, not a 409', async () => {
      const ingestCollection = 'ingest-deadlock';
      const ingestFields = { documentType: base.documentType, category: base.category };
      await createDocuments('owner-dl-ingest');
      // The collection exists before the race, holding vectors of the provider's dimension.
      await request(t.server)
        .post('/documents/ingest')
        .send({
          documentId: 'ingest-dl-neighbour',
          ...ingestFields,
          text: 'Điều 1. Láng giềng',
          collection: ingestCollection,
        })
        .expect(201);
      const other = await deadlockPartner();
      await other.query(
        `INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
         SELECT 'dl-ingest-held', e.collection_id, e.embedding, 'held', '{"document_id": "owner-dl-ingest"}'
           FROM langchain_pg_embedding e WHERE e.cmetadata->>'document_id' = 'ingest-dl-neighbour'`,
      );
      const ingest = request(t.server)
        .post('/documents/ingest')
        .send({
          documentId: 'owner-dl-ingest',
          ...ingestFields,
          text: 'Điều 1. Một\n\nĐiều 2. Hai',
          collection: ingestCollection,
        })
        .then((r) => r);
      await closeDeadlockCycle(other, 'owner-dl-ingest');
      const res = await ingest;
      expect([res.status, res.body.message, res.body.chunks]).toEqual([201, undefined, 1]);
      // The retry replaced the document's chunks, the one the other writer committed included.
      expect((await countsByDocument()).find((r) => r.document_id === 'owner-dl-ingest')).toEqual({
        document_id: 'owner-dl-ingest',
        total_chunks: 1,
        n: 1,
      });
    });
  },
);
