import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InconsistentVectorLengthError, SPILL_DIRECTORY_PREFIX, SpilledVectors } from './spilled-vectors.js';

describe('SpilledVectors', () => {
  let parent: string;
  beforeEach(() => {
    parent = mkdtempSync(join(tmpdir(), 'spill-spec-'));
  });
  afterEach(() => rmSync(parent, { recursive: true, force: true }));

  const vector = (seed: number, dimensions = 5): number[] =>
    Array.from({ length: dimensions }, (_, i) => Math.fround(Math.sin(seed * 31 + i) * 10));

  it('gives back every vector appended, in order, across appends and reads of any size', async () => {
    const spill = await SpilledVectors.create(parent);
    try {
      const all = Array.from({ length: 23 }, (_, i) => vector(i));
      await spill.append(all.slice(0, 10));
      await spill.append(all.slice(10, 11));
      await spill.append([]);
      await spill.append(all.slice(11));
      expect(spill.length).toBe(23);
      const read = [...(await spill.read(0, 7)), ...(await spill.read(7, 7)), ...(await spill.read(14, 100))];
      expect(read.map((v) => Array.from(v))).toEqual(all);
      expect(await spill.read(23, 5)).toEqual([]);
    } finally {
      await spill.close();
    }
  });

  it('stores float32, the precision pgvector keeps', async () => {
    const spill = await SpilledVectors.create(parent);
    try {
      await spill.append([[0.1, 1 / 3, -2.5e-8]]);
      const [read] = await spill.read(0, 1);
      expect(Array.from(read)).toEqual([Math.fround(0.1), Math.fround(1 / 3), Math.fround(-2.5e-8)]);
    } finally {
      await spill.close();
    }
  });

  it('refuses a vector of another length than the first, storing none of its batch', async () => {
    const spill = await SpilledVectors.create(parent);
    try {
      await spill.append([vector(1, 4)]);
      await expect(spill.append([vector(2, 4), vector(3, 5)])).rejects.toThrow(InconsistentVectorLengthError);
      expect(spill.length).toBe(1);
    } finally {
      await spill.close();
    }
  });

  it('removes the directory of a spill not closed when the process exits at once (process.exit runs no finally)', () => {
    // The compiled module (npm test builds first), in a process of its own.
    const compiled = join(process.cwd(), 'dist/src/ingest/spilled-vectors.js');
    const script = `
      import { SpilledVectors } from ${JSON.stringify(compiled)};
      const spill = await SpilledVectors.create(${JSON.stringify(parent)});
      await spill.append([[1, 2, 3]]);
      process.exit(130);
    `;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    expect(result.status).toBe(130);
    expect(readdirSync(parent)).toEqual([]);
  });

  it('removes its file and directory on close', async () => {
    const spill = await SpilledVectors.create(parent);
    await spill.append([vector(1)]);
    const [directory] = readdirSync(parent);
    expect(directory.startsWith(SPILL_DIRECTORY_PREFIX)).toBe(true);
    expect(readdirSync(join(parent, directory))).toHaveLength(1);
    await spill.close();
    expect(existsSync(join(parent, directory))).toBe(false);
  });
});
