import { createConnection, createServer, type Server, type Socket } from 'node:net';

/** The connections' SQL, in the order each client sent it (simple queries and Parse messages). */
export type StatementLog = string[][];

export interface OptionsDroppingProxy {
  /** A copy of `url` that goes through the proxy. */
  via(url: string): string;
  /** What the clients sent since the last clear(), one list per connection. */
  readonly statements: StatementLog;
  clear(): void;
  close(): Promise<void>;
}

const PROTOCOL_3 = 196_608;
const SSL_REQUEST = 80_877_103;
const GSSENC_REQUEST = 80_877_104;

/**
 * A TCP proxy in front of a PostgreSQL server that removes the `options` parameter from each
 * startup packet, as a connection pooler does that does not pass it on (PgBouncer without
 * `ignore_startup_parameters = options` refuses it; others drop it): the server then starts the
 * session with its own defaults. It also records the SQL each connection sends, so a test can see
 * what a client did to make up for the missing settings. Loopback only.
 */
export async function startOptionsDroppingProxy(upstreamUrl: string): Promise<OptionsDroppingProxy> {
  const upstream = new URL(upstreamUrl);
  const statements: StatementLog = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const log: string[] = [];
    statements.push(log);
    const server = createConnection({ host: upstream.hostname, port: Number(upstream.port || 5432) });
    for (const socket of [client, server]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        server.destroy();
      });
    }
    server.on('data', (chunk: Buffer) => client.write(chunk));
    server.on('end', () => client.end());
    client.on('end', () => server.end());
    let pending = Buffer.alloc(0);
    let started = false;
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        if (!started) {
          if (pending.length < 8) return;
          const length = pending.readInt32BE(0);
          if (pending.length < length) return;
          const code = pending.readInt32BE(4);
          const packet = pending.subarray(0, length);
          pending = pending.subarray(length);
          if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
            client.write('N'); // no encryption: the client goes on in plain text
            continue;
          }
          started = true;
          server.write(code === PROTOCOL_3 ? withoutOptions(packet) : packet);
          continue;
        }
        if (pending.length < 5) return;
        const length = pending.readInt32BE(1) + 1;
        if (pending.length < length) return;
        const message = pending.subarray(0, length);
        pending = pending.subarray(length);
        const sql = statementOf(message);
        if (sql !== undefined) log.push(sql);
        server.write(message);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    via(url: string) {
      const proxied = new URL(url);
      proxied.hostname = '127.0.0.1';
      proxied.port = String(port);
      return proxied.toString();
    },
    get statements() {
      return statements;
    },
    clear() {
      // Each connection keeps logging into its own list.
      for (const log of statements) log.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A startup packet (length, protocol, name/value C strings, a final NUL) without `options`. */
function withoutOptions(packet: Buffer): Buffer {
  const fields = packet
    .subarray(8, packet.length - 1)
    .toString('utf8')
    .split('\0');
  const kept: string[] = [];
  for (let i = 0; i + 1 < fields.length; i += 2) {
    if (fields[i] !== 'options') kept.push(fields[i], fields[i + 1]);
  }
  const body = Buffer.from(kept.map((field) => `${field}\0`).join('') + '\0', 'utf8');
  const out = Buffer.alloc(8 + body.length);
  out.writeInt32BE(out.length, 0);
  out.writeInt32BE(PROTOCOL_3, 4);
  body.copy(out, 8);
  return out;
}

/** The SQL of a Query ('Q': the text) or Parse ('P': a statement name, then the text) message. */
function statementOf(message: Buffer): string | undefined {
  const type = String.fromCharCode(message[0]);
  if (type === 'Q') return message.subarray(5, message.indexOf(0, 5)).toString('utf8');
  if (type === 'P') {
    const nameEnd = message.indexOf(0, 5);
    return message.subarray(nameEnd + 1, message.indexOf(0, nameEnd + 1)).toString('utf8');
  }
  return undefined;
}
