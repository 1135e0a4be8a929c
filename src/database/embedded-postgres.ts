import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';

/**
 * PostgreSQL 18 in-process (PGlite + pgvector), served on a loopback port through the wire
 * protocol so that the app reaches it through the same `pg` driver as a real server.
 *
 * PGlite is a single session: two pool connections on it would interleave their transactions
 * (a rolled-back insert persisted when we tried typeorm-pglite). The socket server accepts a single
 * connection and the pool that talks to it has exactly one, so transactions queue in the pool
 * instead of interleaving.
 */
export class EmbeddedPostgres {
  private constructor(
    private readonly db: PGlite,
    private readonly server: PGLiteSocketServer,
    readonly host: string,
    readonly port: number,
    readonly dataDir: string,
  ) {}

  static async start(dataDir: string, templateFile?: string): Promise<EmbeddedPostgres> {
    const inMemory = dataDir.startsWith('memory://');
    const location = inMemory ? dataDir : resolve(dataDir, 'pgdata');
    if (!inMemory) mkdirSync(location, { recursive: true });
    // A template only seeds a database that does not exist yet; existing data is never replaced.
    const isNew = inMemory || readdirSync(location).length === 0;
    const loadDataDir = templateFile && isNew ? new Blob([readFileSync(templateFile)]) : undefined;
    // relaxedDurability stays off: every query is flushed to disk before its result returns,
    // so a write acknowledged over HTTP survives a crash of the process.
    const db = await PGlite.create({
      dataDir: location,
      extensions: { vector },
      relaxedDurability: false,
      loadDataDir,
    });
    const host = '127.0.0.1';
    const server = new PGLiteSocketServer({ db, host, port: 0, maxConnections: 1 });
    await server.start();
    const port = Number(server.getServerConn().split(':').pop());
    return new EmbeddedPostgres(db, server, host, port, location);
  }

  async stop(): Promise<void> {
    await this.server.stop();
    if (!this.db.closed) await this.db.close();
  }
}
