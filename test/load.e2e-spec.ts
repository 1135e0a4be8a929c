import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { startTestApp, type TestApp } from './support/test-app.js';

/**
 * A bounded load test: 50 concurrent clients on a real loopback port, mixing reads and writes
 * for DURATION_MS or MAX_REQUESTS, whichever comes first. No request may fail (network error,
 * timeout, 5xx or any other non-2xx), and the data must be consistent afterwards.
 */

const CLIENTS = 50;
const DURATION_MS = 5000;
const MAX_REQUESTS = 4000;
const REQUEST_TIMEOUT_MS = 30_000;
const SEEDED = Array.from({ length: 10 }, (_, i) => `load-seed-${i}`);

interface Reply {
  status: number;
  body: unknown;
}

/** Deterministic choices per client (mulberry32). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let x = state;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

describe('Load: 50 concurrent clients, mixed reads and writes', () => {
  let t: TestApp;
  let port: number;
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });

  beforeAll(async () => {
    // A long pool wait: 50 clients queue for the embedded database's one connection, and on a slow
    // machine the default 5 s wait would turn the queue into 503s (limits.e2e tests that wait).
    t = await startTestApp({ THROTTLE_LIMIT: '0', DB_POOL_ACQUIRE_TIMEOUT_MS: '60000' });
    for (const documentId of SEEDED) {
      await request(t.server)
        .post('/documents')
        .send({
          documentId,
          documentName: `Luật số ${documentId}`,
          documentType: 'law',
          category: 'load',
          sourceFile: `/data/${documentId}.pdf`,
          chunks: [
            { content: `Điều 1 của ${documentId}: phạm vi điều chỉnh` },
            { content: 'Điều 2. Đối tượng áp dụng' },
          ],
        })
        .expect(201);
    }
    await t.app.listen(0, '127.0.0.1');
    port = (t.server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    agent.destroy();
    await t.close();
  });

  function call(method: string, path: string, body?: unknown): Promise<Reply> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          method,
          path,
          agent,
          timeout: REQUEST_TIMEOUT_MS,
          headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as unknown) : undefined });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`timed out after ${REQUEST_TIMEOUT_MS} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  it('serves every request with a 2xx and keeps total_chunks, created documents and chunks consistent', async () => {
    const deadline = Date.now() + DURATION_MS;
    let sent = 0;
    const failures: string[] = [];
    const created = new Set<string>();
    const addedChunks = new Map<string, string>(); // chunk id -> document it was last attached to
    const counts: Record<string, number> = {};

    const client = async (n: number): Promise<void> => {
      const next = random(1000 + n);
      const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)];
      let own = 0;
      while (Date.now() < deadline && sent < MAX_REQUESTS) {
        sent += 1;
        own += 1;
        const roll = next();
        const docs = [...SEEDED, ...created];
        let op: string;
        let reply: Promise<Reply>;
        let onOk: (() => void) | undefined;
        if (roll < 0.2) {
          op = 'GET /documents';
          reply = call('GET', `/documents?limit=20&category=load&offset=${Math.floor(next() * 10)}`);
        } else if (roll < 0.4) {
          op = 'GET /documents/:id';
          reply = call('GET', `/documents/${pick(docs)}`);
        } else if (roll < 0.47) {
          op = 'GET /stats';
          reply = call('GET', '/stats');
        } else if (roll < 0.62) {
          op = 'POST /ask';
          reply = call('POST', '/ask', {
            question: pick(['phạm vi điều chỉnh', 'đối tượng áp dụng', 'Luật số']),
            k: 5,
          });
        } else if (roll < 0.75) {
          op = 'POST /documents';
          const documentId = `load-c${n}-${own}`;
          reply = call('POST', '/documents', {
            documentId,
            documentName: `Nghị định ${documentId}`,
            documentType: 'decree',
            category: 'load',
            sourceFile: `/data/${documentId}.pdf`,
            chunks: [{ content: `Điều 1 của ${documentId}` }, { content: `Điều 2 của ${documentId}` }],
          });
          onOk = () => created.add(documentId);
        } else if (roll < 0.88) {
          op = 'POST /embeddings';
          // Half new chunks, half an upsert that moves an earlier chunk to another document.
          const mine = [...addedChunks.keys()].filter((id) => id.startsWith(`load-chunk-c${n}-`));
          const id = mine.length > 0 && next() < 0.5 ? pick(mine) : `load-chunk-c${n}-${own}`;
          const documentId = pick(docs);
          reply = call('POST', '/embeddings', {
            items: [{ id, content: `Khoản ${own} thuộc ${documentId}`, metadata: { document_id: documentId } }],
          });
          onOk = () => addedChunks.set(id, documentId);
        } else {
          op = 'PATCH /documents/:id';
          reply = call('PATCH', `/documents/${pick(SEEDED)}`, {
            status: pick(['active', 'inactive', 'processing']),
            category: 'load',
          });
        }
        counts[op] = (counts[op] ?? 0) + 1;
        try {
          const res = await reply;
          if (res.status >= 200 && res.status < 300) onOk?.();
          else failures.push(`${op}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
        } catch (error) {
          failures.push(`${op}: ${(error as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n)));

    expect(failures).toEqual([]);

    // Every created document exists, with its own two chunks.
    const rows = await t.dataSource.query<Array<{ document_id: string }>>(
      `SELECT document_id FROM documents WHERE document_id = ANY($1)`,
      [[...created]],
    );
    expect(rows.map((r) => r.document_id).sort()).toEqual([...created].sort());
    // Every upserted chunk belongs to the document it was last written for.
    const chunkRows = await t.dataSource.query<Array<{ id: string; document_id: string }>>(
      `SELECT id, cmetadata->>'document_id' AS document_id FROM langchain_pg_embedding WHERE id = ANY($1)`,
      [[...addedChunks.keys()]],
    );
    expect(new Map(chunkRows.map((r) => [r.id, r.document_id]))).toEqual(addedChunks);
    // total_chunks of every document equals the chunks that name it.
    const wrong = await t.dataSource.query<unknown[]>(
      `SELECT d.document_id, d.total_chunks,
              (SELECT count(*)::int FROM langchain_pg_embedding e WHERE e.cmetadata->>'document_id' = d.document_id) AS actual
         FROM documents d
        WHERE d.total_chunks IS DISTINCT FROM
              (SELECT count(*)::int FROM langchain_pg_embedding e WHERE e.cmetadata->>'document_id' = d.document_id)`,
    );
    expect(wrong).toEqual([]);
    // Every kind of request was exercised.
    expect(Object.keys(counts)).toHaveLength(7);
  });
});
