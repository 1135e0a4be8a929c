// Once per jest run on the embedded database: make (or reuse) an initdb'ed PGlite data directory
// dump, so each suite loads it in well under a second instead of running initdb (about 4 s).
import { ensurePgliteTemplate } from '../scripts/pglite-template.mjs';

export default async function globalSetup() {
  if (process.env.TEST_DB_TARGET === 'postgres') return;
  process.env.EMBEDDED_TEMPLATE = await ensurePgliteTemplate(process.cwd());
}
