import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { DataDirLock, type EmbeddedNotices } from './data-dir-lock.js';

/**
 * PostgreSQL 18 in-process (PGlite + pgvector), served on a loopback port through the wire
 * protocol so that the app reaches it through the same `pg` driver as a real server.
 *
 * PGlite is a single session: two pool connections on it would interleave their transactions
 * (a rolled-back insert persisted when we tried typeorm-pglite). The socket server accepts a single
 * connection and the pool that talks to it has exactly one, so transactions queue in the pool
 * instead of interleaving.
 *
 * Durability: PGlite's Node filesystem (emscripten NODEFS) hands every write() of PostgreSQL
 * straight to the OS with fs.writeSync, and COMMIT writes its WAL record before it answers
 * (synchronous_commit=on), so an acknowledged write is in the OS page cache and survives a kill of
 * this process (SIGKILL, OOM). PGlite runs with fsync=off and NODEFS has no fsync, so it does not
 * survive a power loss or kernel crash: use a PostgreSQL server for that (docs/OPERATIONS.md).
 */
export class EmbeddedPostgres {
  private constructor(
    private readonly db: PGlite,
    private readonly server: PGLiteSocketServer,
    readonly host: string,
    readonly port: number,
    readonly dataDir: string,
    private readonly lock?: DataDirLock,
  ) {}

  /**
   * `sessionSettings` are set on PGlite's session once, as a server connection gets them from its
   * startup packet (which the socket server ignores): every pool connection shares that session.
   */
  static async start(
    dataDir: string,
    templateFile?: string,
    sessionSettings: Record<string, string> = {},
    notices?: EmbeddedNotices,
  ): Promise<EmbeddedPostgres> {
    const inMemory = dataDir.startsWith('memory://');
    const location = inMemory ? dataDir : resolve(dataDir, 'pgdata');
    if (!inMemory) mkdirSync(location, { recursive: true });
    // One process per directory: a second PGlite on the same files would corrupt them.
    const lock = inMemory ? undefined : DataDirLock.acquire(resolve(dataDir), notices);
    try {
      return await EmbeddedPostgres.open(location, inMemory, templateFile, sessionSettings, lock, notices);
    } catch (err) {
      lock?.release();
      throw err;
    }
  }

  private static async open(
    location: string,
    inMemory: boolean,
    templateFile: string | undefined,
    sessionSettings: Record<string, string>,
    lock: DataDirLock | undefined,
    notices: EmbeddedNotices | undefined,
  ): Promise<EmbeddedPostgres> {
    // A template only seeds a database that does not exist yet; existing data is never replaced.
    const isNew = inMemory || readdirSync(location).length === 0;
    // Said before the wait: a new database takes seconds to create, and the start looked hung.
    if (!inMemory) {
      notices?.log(
        isNew
          ? `Creating the embedded database in ${location} (first start only)`
          : `Opening the embedded database in ${location}`,
      );
    }
    const loadDataDir = templateFile && isNew ? new Blob([readFileSync(templateFile)]) : undefined;
    // relaxedDurability stays off (it only matters for filesystems that copy to storage after a query,
    // IndexedDB/OPFS; the Node filesystem writes through during the query anyway).
    const db = await PGlite.create({
      dataDir: location,
      extensions: { vector },
      relaxedDurability: false,
      loadDataDir,
    });
    const host = '127.0.0.1';
    const server = new PGLiteSocketServer({ db, host, port: 0, maxConnections: 1 });
    try {
      for (const [name, value] of Object.entries(sessionSettings)) {
        await db.query(`SELECT set_config($1, $2, false)`, [name, value]);
      }
      await server.start();
    } catch (err) {
      await db.close();
      throw err;
    }
    const port = Number(server.getServerConn().split(':').pop());
    return new EmbeddedPostgres(db, server, host, port, location, lock);
  }

  async stop(): Promise<void> {
    await this.server.stop();
    if (!this.db.closed) await this.db.close();
    this.lock?.release();
  }
}
