// The folder both memory measurements feed to `node dist/src/cli/ingest.js`, and the probe that
// makes the CLI report its own peak RSS. Shared by bench/run.mjs (memory scenario) and
// bench/ingest-memory.mjs so the two measure the same input.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const FILLER =
  'Tổ chức, cá nhân có trách nhiệm thực hiện đúng quy định về quản lý, sử dụng và bảo vệ tài nguyên trong phạm vi được giao. ';

/**
 * Writes `chunks` articles of ~900 characters ("Điều N. …", one chunk each at the default
 * INGEST_CHUNK_SIZE) into `dir`, `perFile` articles per .txt file. Returns the number of files.
 */
export function writeLegalCorpus(dir, chunks, perFile) {
  mkdirSync(dir, { recursive: true });
  let article = 0;
  let files = 0;
  while (article < chunks) {
    files += 1;
    const parts = [`LUẬT MẪU SỐ ${files}`];
    for (let i = 0; i < perFile && article < chunks; i++) {
      article += 1;
      parts.push(`Điều ${article}. Quy định số ${article}\n${FILLER.repeat(7).trim()} Mã điều ${article}.`);
    }
    writeFileSync(join(dir, `luat-${String(files).padStart(4, '0')}.txt`), parts.join('\n\n'));
  }
  return files;
}

/** A `--require` preload that prints `maxrss_kb=N` (getrusage) to stderr when the process exits. */
export function writeMaxRssProbe(dir) {
  const probe = join(dir, 'maxrss.cjs');
  writeFileSync(
    probe,
    `process.on('exit', () => process.stderr.write('maxrss_kb=' + process.resourceUsage().maxRSS + '\\n'));\n`,
  );
  return probe;
}
