import { persistentTestDatabase } from './support/legacy-schema.js';
import { type ServiceProcess, startService, stopService } from './support/service-process.js';

/**
 * SIGKILL of the service in the middle of a stream of writes, then a restart on the same database
 * (embedded: the same DATA_DIR, recovered from PGlite's WAL). Every write answered 2xx before the
 * kill must be there with its exact content; a write that was in flight is all there or not at all;
 * every document's total_chunks equals its chunk count.
 */

const WORKERS = 4;
const ROUNDS = 3;

interface DocState {
  name: string;
  status: string;
  chunks: Map<string, string>;
}

type Op =
  | { kind: 'create'; chunks: Array<[string, string]> }
  | { kind: 'add'; chunks: Array<[string, string]> }
  | { kind: 'patch'; name: string; status: string };

interface DocHistory {
  readonly documentId: string;
  readonly ops: Op[];
  /** Ops answered 2xx: always a prefix, since one worker writes a document's ops in order. */
  acked: number;
}

function applyOps(documentId: string, ops: Op[]): DocState | null {
  let state: DocState | null = null;
  for (const op of ops) {
    if (op.kind === 'create') {
      state = { name: `Crash ${documentId}`, status: 'processing', chunks: new Map(op.chunks) };
    } else if (state && op.kind === 'add') {
      for (const [id, content] of op.chunks) state.chunks.set(id, content);
    } else if (state && op.kind === 'patch') {
      state.name = op.name;
      state.status = op.status;
    }
  }
  return state;
}

function randomInt(min: number, max: number): number {
  return min + Math.floor(Math.random() * (max - min + 1));
}

function chunkList(prefix: string, count: number): Array<[string, string]> {
  // Varied, non-trivial text so that a torn or mixed-up row would show.
  return Array.from({ length: count }, (_, i) => [
    `${prefix}-${i}`,
    `${prefix} chunk ${i}: ${Math.random().toString(36).slice(2)} ${'lorem ipsum '.repeat(randomInt(1, 40))}`,
  ]);
}

async function send(baseUrl: string, method: string, path: string, body: unknown): Promise<number> {
  const res = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await res.arrayBuffer();
  return res.status;
}

function requestFor(documentId: string, op: Op): [string, string, unknown] {
  switch (op.kind) {
    case 'create':
      return [
        'POST',
        '/documents',
        {
          documentId,
          documentName: `Crash ${documentId}`,
          documentType: 'crash',
          category: 'crash',
          sourceFile: `${documentId}.txt`,
          status: 'processing',
          chunks: op.chunks.map(([id, content]) => ({ id, content })),
        },
      ];
    case 'add':
      return [
        'POST',
        '/embeddings',
        { items: op.chunks.map(([id, content]) => ({ id, content, metadata: { document_id: documentId } })) },
      ];
    case 'patch':
      return ['PATCH', `/documents/${encodeURIComponent(documentId)}`, { documentName: op.name, status: op.status }];
  }
}

/**
 * Runs WORKERS writers until `killAfter` writes have been answered 2xx, then SIGKILLs the service
 * from inside that response's handler, while the other writers' requests are in flight.
 */
async function writeUntilKilled(service: ServiceProcess, round: number, killAfter: number): Promise<DocHistory[]> {
  const histories: DocHistory[] = [];
  let acknowledged = 0;
  let killed = false;
  const unexpected: string[] = [];

  const worker = async (w: number): Promise<void> => {
    for (let d = 0; !killed; d++) {
      const history: DocHistory = { documentId: `r${round}-w${w}-d${d}`, ops: [], acked: 0 };
      histories.push(history);
      const plan: Op[] = [
        { kind: 'create', chunks: chunkList(`${history.documentId}-c`, randomInt(1, 25)) },
        { kind: 'add', chunks: chunkList(`${history.documentId}-e`, randomInt(1, 10)) },
        { kind: 'patch', name: `Renamed ${history.documentId}`, status: 'active' },
        { kind: 'add', chunks: chunkList(`${history.documentId}-f`, randomInt(1, 5)) },
      ];
      for (const op of plan) {
        if (killed) return;
        history.ops.push(op);
        let status: number;
        try {
          status = await send(service.baseUrl, ...requestFor(history.documentId, op));
        } catch (err) {
          // The connection died with the process: this write's outcome is unknown.
          if (!killed) unexpected.push(`${history.documentId} ${op.kind}: ${String(err)}`);
          return;
        }
        if (killed) return; // answered, but after the kill was decided: counted as unknown
        if (status < 200 || status >= 300) {
          unexpected.push(`${history.documentId} ${op.kind}: HTTP ${status}`);
          return;
        }
        history.acked++;
        if (++acknowledged === killAfter) {
          killed = true;
          service.child.kill('SIGKILL');
          return;
        }
      }
    }
  };

  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
  expect(unexpected).toEqual([]);
  expect(await service.exited).toEqual({ code: null, signal: 'SIGKILL' });
  return histories;
}

interface DocumentResponse {
  documentName: string;
  status: string;
  totalChunks: number;
}
interface ChunksResponse {
  total: number;
  items: Array<{ id: string; content: string; metadata: Record<string, unknown> }>;
}

async function readDocument(
  baseUrl: string,
  documentId: string,
): Promise<{ doc: DocumentResponse; chunks: ChunksResponse } | null> {
  const res = await fetch(`${baseUrl}/documents/${encodeURIComponent(documentId)}`);
  if (res.status === 404) return null;
  expect(res.status).toBe(200);
  const doc = (await res.json()) as DocumentResponse;
  const chunks = (await (
    await fetch(`${baseUrl}/documents/${encodeURIComponent(documentId)}/chunks?limit=1000`)
  ).json()) as ChunksResponse;
  return { doc, chunks };
}

function stateOf(found: { doc: DocumentResponse; chunks: ChunksResponse } | null): DocState | null {
  if (!found) return null;
  return {
    name: found.doc.documentName,
    status: found.doc.status,
    chunks: new Map(found.chunks.items.map((c) => [c.id, c.content])),
  };
}

function sameState(a: DocState | null, b: DocState | null): boolean {
  if (a === null || b === null) return a === b;
  if (a.name !== b.name || a.status !== b.status || a.chunks.size !== b.chunks.size) return false;
  return [...a.chunks].every(([id, content]) => b.chunks.get(id) === content);
}

/** Every document is in its acknowledged state, or that plus its one in-flight write; never in between. */
async function verify(baseUrl: string, histories: DocHistory[]): Promise<void> {
  const problems: string[] = [];
  for (const h of histories) {
    const found = await readDocument(baseUrl, h.documentId);
    const actual = stateOf(found);
    const acked = applyOps(h.documentId, h.ops.slice(0, h.acked));
    const withInFlight = h.ops.length > h.acked ? applyOps(h.documentId, h.ops.slice(0, h.acked + 1)) : acked;
    if (!sameState(actual, acked) && !sameState(actual, withInFlight)) {
      problems.push(`${h.documentId}: ${h.acked}/${h.ops.length} ops acknowledged, state does not match`);
    }
    if (found) {
      if (found.doc.totalChunks !== found.chunks.total) {
        problems.push(`${h.documentId}: totalChunks ${found.doc.totalChunks} != ${found.chunks.total} chunks`);
      }
      if (found.chunks.items.some((c) => c.metadata.document_id !== h.documentId)) {
        problems.push(`${h.documentId}: a chunk names another document`);
      }
    }
  }
  expect(problems).toEqual([]);

  // The same invariants over the whole database, as GET /stats reports them.
  const stats = (await (await fetch(`${baseUrl}/stats`)).json()) as {
    orphans: { chunksWithoutDocument: number; documentsWithoutChunks: number; totalChunksMismatch: number };
  };
  expect(stats.orphans).toEqual({ chunksWithoutDocument: 0, documentsWithoutChunks: 0, totalChunksMismatch: 0 });
}

describe('SIGKILL of the service during writes', () => {
  let db: { env: Record<string, string>; drop: () => Promise<void> };
  let service: ServiceProcess | undefined;

  beforeAll(async () => {
    db = await persistentTestDatabase();
  });

  afterAll(async () => {
    if (service && service.child.exitCode === null && service.child.signalCode === null) service.child.kill('SIGKILL');
    await db.drop();
  });

  it(`loses no acknowledged write and leaves no half-written document (${ROUNDS} crashes)`, async () => {
    const histories: DocHistory[] = [];
    service = await startService(db.env);
    for (let round = 0; round < ROUNDS; round++) {
      const killAfter = randomInt(8, 40);
      histories.push(...(await writeUntilKilled(service, round, killAfter)));
      expect(histories.reduce((n, h) => n + h.acked, 0)).toBeGreaterThanOrEqual(killAfter);
      // Restart on the same database: it opens (WAL recovery) and holds everything acknowledged so far.
      service = await startService(db.env);
      await verify(service.baseUrl, histories);
    }
    expect(await stopService(service)).toEqual({ code: 0, signal: null });
  }, 900_000);
});
