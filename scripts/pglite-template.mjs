// An initdb'ed PGlite data-directory dump, made once per PGlite version and cached in the temp
// directory: EMBEDDED_TEMPLATE seeds a new embedded database from it in well under a second
// instead of running initdb (about 4 s). Used by the tests (test/global-setup.mjs) and the
// benchmark (bench/run.mjs); they share the cached file.
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Path of the template for the PGlite installed under `root`, made first if it is missing. */
export async function ensurePgliteTemplate(root) {
  const pkg = join(root, 'node_modules/@electric-sql/pglite/package.json');
  const version = JSON.parse(readFileSync(pkg, 'utf8')).version;
  const file = join(tmpdir(), `rag-kb-pglite-${version}-template.tar`);
  if (!existsSync(file)) {
    const { PGlite } = await import('@electric-sql/pglite');
    const db = await PGlite.create({ dataDir: 'memory://' });
    const dump = await db.dumpDataDir('none');
    await db.close();
    // Written aside, then renamed: concurrent runs never read a half-written file.
    const partial = `${file}.${process.pid}`;
    writeFileSync(partial, Buffer.from(await dump.arrayBuffer()));
    renameSync(partial, file);
  }
  return file;
}
