import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InconsistentVectorLengthError, SpilledVectors } from './spilled-vectors.js';

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

  it('leaves nothing in the temporary directory, even while open: the system frees the file however the process ends', async () => {
    const spill = await SpilledVectors.create(parent);
    try {
      await spill.append([vector(1), vector(2)]);
      expect(readdirSync(parent)).toEqual([]);
      expect((await spill.read(1, 1)).map((v) => Array.from(v))).toEqual([vector(2)]);
    } finally {
      await spill.close();
    }
    expect(readdirSync(parent)).toEqual([]);
  });
});
