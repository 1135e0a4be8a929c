// Once per jest run on the embedded database: make (or reuse) an initdb'ed PGlite data directory
// dump, so each suite loads it in well under a second instead of running initdb (about 4 s).
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default async function globalSetup() {
  if (process.env.TEST_DB_TARGET === 'postgres') return;
  const pkg = join(process.cwd(), 'node_modules/@electric-sql/pglite/package.json');
  const version = JSON.parse(readFileSync(pkg, 'utf8')).version;
  const file = join(tmpdir(), `rag-kb-pglite-${version}-template.tar`);
  if (!existsSync(file)) {
    const { PGlite } = await import('@electric-sql/pglite');
    const db = await PGlite.create({ dataDir: 'memory://' });
    const dump = await db.dumpDataDir('none');
    await db.close();
    const partial = `${file}.${process.pid}`;
    writeFileSync(partial, Buffer.from(await dump.arrayBuffer()));
    renameSync(partial, file);
  }
  process.env.EMBEDDED_TEMPLATE = file;
}
