import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);
const SCRIPT = resolve(process.cwd(), 'scripts/dev-postgres.sh');

/**
 * A PostgreSQL server of this test's own (scripts/dev-postgres.sh start-instance), which the test
 * may stop or crash: the shared test server is never touched. Every call is asynchronous so that
 * the app under test keeps serving requests while the server stops and starts.
 */
export class PrivatePostgres {
  private constructor(
    readonly name: string,
    readonly port: number,
    private readonly primaryPort?: number,
  ) {}

  /** A new instance (initdb), or with `replicaOf` a streaming replica of that instance. */
  static async start(name: string, replicaOf?: PrivatePostgres): Promise<PrivatePostgres> {
    const instance = new PrivatePostgres(name, await freePort(), replicaOf?.port);
    await instance.start();
    return instance;
  }

  /** postgresql://…/postgres on this instance. */
  get url(): string {
    return `postgresql://postgres@127.0.0.1:${this.port}/postgres`;
  }

  /** Starts it again on the same data directory (a replica resumes streaming). */
  async start(): Promise<void> {
    const args = ['start-instance', this.name, String(this.port)];
    if (this.primaryPort !== undefined) args.push(String(this.primaryPort));
    await script(args);
  }

  /** `fast`: clean shutdown (sessions get 57P01); `immediate`: a crash, recovered at the next start. */
  async stop(mode: 'fast' | 'immediate'): Promise<void> {
    await script(['stop-instance', this.name, mode]);
  }

  /** Stops it and deletes its data directory. */
  async remove(): Promise<void> {
    await script(['remove-instance', this.name]);
  }

  /** Runs `fn` with a client of its own (outside the app's pools). */
  async withClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client({ connectionString: this.url });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  }
}

/**
 * The jest timeout of a hook or test that starts, stops or removes a private server: each call of
 * scripts/dev-postgres.sh may take 180 s, and all of them queue on one lock shared by every worker.
 */
export const PRIVATE_SERVER_TIMEOUT_MS = 600_000;

async function script(args: string[]): Promise<void> {
  try {
    await run(SCRIPT, args, { timeout: 180_000 });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`scripts/dev-postgres.sh ${args.join(' ')} failed: ${stderr.slice(-2000)}`, { cause: error });
  }
}

/**
 * A loopback port nothing listens on right now, below Linux's ephemeral range (32768–60999): the
 * caller binds it later (a server started seconds after, or again after a restart), and a port the
 * kernel hands out for `listen(0)` or an outgoing connection meanwhile would make that bind fail.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = 20_000 + randomInt(12_000);
    const server = createServer();
    const bound = await new Promise<boolean>((done) => {
      server.once('error', () => done(false));
      server.listen(port, '127.0.0.1', () => done(true));
    });
    if (bound) {
      await new Promise<void>((ok) => server.close(() => ok()));
      return port;
    }
  }
  throw new Error('no free port in 20000–31999 after 100 attempts');
}

/**
 * Waits (bounded in attempts) until `condition` holds; returns whether it did. Tests assert on the
 * result, never on how long it took.
 */
export async function eventually(condition: () => Promise<boolean>, attempts = 120, pauseMs = 250): Promise<boolean> {
  for (let i = 0; i < attempts; i++) {
    if (await condition()) return true;
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  return false;
}
