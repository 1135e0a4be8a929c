import { Agent, type ClientRequest, request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { persistentTestDatabase } from './support/legacy-schema.js';
import { type ServiceProcess, startService, stopService } from './support/service-process.js';
import { TEST_TARGET } from './support/test-database.js';

/**
 * The graceful shutdown of the real process (`node dist/src/main.js`): SIGTERM lets an in-flight
 * request finish while new connections are refused, then the pool and the database close and the
 * process exits 0. The in-flight request is held open by the test itself (its body is sent in two
 * halves around the signal), so it is in flight by construction, not by timing.
 */

const CHUNKS = 40;

function documentBody(documentId: string): string {
  return JSON.stringify({
    documentId,
    documentName: `Shutdown ${documentId}`,
    documentType: 'law',
    category: 'shutdown',
    sourceFile: 'shutdown.txt',
    chunks: Array.from({ length: CHUNKS }, (_, i) => ({
      id: `${documentId}-${i}`,
      content: `chunk ${i} of ${documentId}`,
    })),
  });
}

interface HeldRequest {
  /** Sends the rest of the body. */
  finish(): void;
  readonly response: Promise<{ status: number; body: string }>;
  readonly req: ClientRequest;
}

/**
 * POST /documents with `Expect: 100-continue`: resolves once the server has taken the request
 * (answered 100 Continue) and received half of the body; the rest waits for `finish()`.
 */
async function startHeldRequest(
  service: ServiceProcess,
  body: string,
  agent: Agent | false = false,
): Promise<HeldRequest> {
  const bytes = Buffer.from(body);
  const half = Math.floor(bytes.length / 2);
  const req = httpRequest({
    host: '127.0.0.1',
    port: service.port,
    method: 'POST',
    path: '/documents',
    agent,
    headers: { 'content-type': 'application/json', 'content-length': bytes.length, expect: '100-continue' },
  });
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    req.once('response', (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (s: string) => (text += s));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.once('error', reject);
    });
    req.once('error', reject);
  });
  await new Promise<void>((resolve, reject) => {
    req.once('continue', () => req.write(bytes.subarray(0, half), (err) => (err ? reject(err) : resolve())));
    req.once('error', reject);
  });
  return { req, response, finish: () => req.end(bytes.subarray(half)) };
}

/** Tries new connections until one is refused (the listener is closed); bounded in attempts. */
async function waitUntilRefused(port: number): Promise<boolean> {
  for (let attempt = 0; attempt < 300; attempt++) {
    try {
      await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(5000) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      if (cause?.code === 'ECONNREFUSED') return true;
    }
    await sleep(50);
  }
  return false;
}

describe('graceful shutdown of the service process', () => {
  let db: { env: Record<string, string>; drop: () => Promise<void> };
  const started: ServiceProcess[] = [];

  beforeAll(async () => {
    db = await persistentTestDatabase();
  });

  afterEach(() => {
    for (const s of started.splice(0))
      if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
  });

  afterAll(async () => {
    await db.drop();
  });

  async function start(env: Record<string, string> = {}): Promise<ServiceProcess> {
    const service = await startService({ ...db.env, ...env });
    started.push(service);
    return service;
  }

  it('on SIGTERM finishes the in-flight request, refuses new connections, closes the database and exits 0', async () => {
    const service = await start({ SHUTDOWN_TIMEOUT_MS: '60000' });
    // An idle keep-alive connection must not hold the shutdown.
    const keepAlive = new Agent({ keepAlive: true });
    const idle = await new Promise<number>((resolve, reject) =>
      httpRequest({ host: '127.0.0.1', port: service.port, path: '/health', agent: keepAlive }, (res) => {
        res.resume().once('end', () => resolve(res.statusCode ?? 0));
      })
        .once('error', reject)
        .end(),
    );
    expect(idle).toBe(200);

    // On a keep-alive connection, as a load balancer's upstream sends it: once answered, the
    // connection is idle, and the shutdown closes it instead of waiting for the client.
    const held = await startHeldRequest(service, documentBody('drained'), keepAlive);
    service.child.kill('SIGTERM');
    await service.waitForOutput(/SIGTERM received/);
    expect(await waitUntilRefused(service.port)).toBe(true);
    // The request is still in flight (half its body is missing) while the listener is closed.
    held.finish();
    const response = await held.response;
    expect(response.status).toBe(201);
    expect(JSON.parse(response.body)).toMatchObject({ documentId: 'drained', totalChunks: CHUNKS });

    expect(await service.exited).toEqual({ code: 0, signal: null });
    keepAlive.destroy();
    const log = service.output();
    const phases = [/SIGTERM received/, /HTTP server closed/, /Database closed/, /Shutdown complete/].map((p) =>
      log.search(p),
    );
    expect(phases.every((index) => index >= 0)).toBe(true);
    expect([...phases].sort((a, b) => a - b)).toEqual(phases);

    // The database opens again (embedded: the same DATA_DIR) with the drained request's data.
    const again = await start();
    const doc = (await (await fetch(`${again.baseUrl}/documents/drained`)).json()) as { totalChunks: number };
    expect(doc.totalChunks).toBe(CHUNKS);
    const chunks = (await (await fetch(`${again.baseUrl}/documents/drained/chunks?limit=1000`)).json()) as {
      total: number;
    };
    expect(chunks.total).toBe(CHUNKS);
    expect(await stopService(again)).toEqual({ code: 0, signal: null });
  }, 300_000);

  it('exits 1 when in-flight requests outlast SHUTDOWN_TIMEOUT_MS, and the database opens again', async () => {
    const service = await start({ SHUTDOWN_TIMEOUT_MS: '500' });
    const held = await startHeldRequest(service, documentBody('never-finished'));
    held.response.catch(() => undefined);
    service.child.kill('SIGTERM');
    expect(await service.exited).toEqual({ code: 1, signal: null });
    expect(service.output()).toMatch(/did not finish within 500 ms/);
    held.req.destroy();

    const again = await start();
    expect((await fetch(`${again.baseUrl}/documents/never-finished`)).status).toBe(404);
    expect(await stopService(again)).toEqual({ code: 0, signal: null });
  }, 300_000);

  (TEST_TARGET === 'embedded' ? it : it.skip)(
    'refuses a second service on the same DATA_DIR while the first runs',
    async () => {
      const first = await start();
      await expect(start()).rejects.toThrow(/DATA_DIR .* is in use by process \d+: stop that process first/);
      // The refused start did not disturb the running one.
      expect((await fetch(`${first.baseUrl}/health`)).status).toBe(200);
      expect(await stopService(first)).toEqual({ code: 0, signal: null });
    },
    300_000,
  );

  it('exits 1 at once on a second signal', async () => {
    const service = await start({ SHUTDOWN_TIMEOUT_MS: '0' });
    const held = await startHeldRequest(service, documentBody('interrupted'));
    held.response.catch(() => undefined);
    service.child.kill('SIGTERM');
    await service.waitForOutput(/SIGTERM received: .* without a time limit/);
    service.child.kill('SIGINT');
    expect(await service.exited).toEqual({ code: 1, signal: null });
    expect(service.output()).toMatch(/SIGINT received again/);
    held.req.destroy();
  }, 300_000);
});
