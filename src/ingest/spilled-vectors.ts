import { mkdtemp, open, rm, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Prefix of the temporary directories that hold spilled vectors (one per ingest of a long text). */
export const SPILL_DIRECTORY_PREFIX = 'kb-ingest-vectors-';

/** The provider answered vectors of two different lengths for one text. */
export class InconsistentVectorLengthError extends Error {
  constructor(
    readonly expected: number,
    readonly received: number,
  ) {
    super(`The embedding provider returned vectors of ${expected} and of ${received} dimensions for one text`);
  }
}

/**
 * The vectors of a text too long to hold in memory, computed before its transaction opens and kept
 * in a temporary file until the transaction writes them, one batch at a time. They are stored as
 * float32, which is what pgvector's `vector` stores, so nothing is lost on the way. Disk instead of
 * memory: 33,000 chunks (a 25 MB text) at 1,536 dimensions are 200 MB of float32.
 *
 * The file is unlinked (and its directory removed) as soon as it is open: the open handle is all
 * that keeps it, so the system frees it when close() closes it or the process ends in any way, a
 * SIGKILL or the OOM killer included. Where a system refuses to unlink an open file, close() removes
 * what is left; call it whatever happens.
 */
export class SpilledVectors {
  private count = 0;
  private dimensions: number | undefined;

  private constructor(
    private readonly file: FileHandle,
    /** The directory still to remove at close(), when it could not be removed at once. */
    private readonly leftover: string | undefined,
  ) {}

  /** An empty spill under `parent`, by default the OS temporary directory (TMPDIR). */
  static async create(parent: string = tmpdir()): Promise<SpilledVectors> {
    const directory = await mkdtemp(join(parent, SPILL_DIRECTORY_PREFIX));
    const path = join(directory, 'vectors.f32');
    let file: FileHandle;
    try {
      file = await open(path, 'w+', 0o600);
    } catch (error) {
      await rm(directory, { recursive: true, force: true });
      throw error;
    }
    try {
      await unlink(path);
      await rmdir(directory);
      return new SpilledVectors(file, undefined);
    } catch {
      return new SpilledVectors(file, directory);
    }
  }

  /** How many vectors are stored. */
  get length(): number {
    return this.count;
  }

  /** Stores vectors after those already stored; every one must have the first one's length. */
  async append(vectors: ArrayLike<number>[]): Promise<void> {
    if (vectors.length === 0) return;
    const dimensions = (this.dimensions ??= vectors[0].length);
    const floats = new Float32Array(vectors.length * dimensions);
    vectors.forEach((vector, i) => {
      if (vector.length !== dimensions) throw new InconsistentVectorLengthError(dimensions, vector.length);
      floats.set(vector, i * dimensions);
    });
    const bytes = new Uint8Array(floats.buffer);
    const position = this.count * dimensions * Float32Array.BYTES_PER_ELEMENT;
    for (let written = 0; written < bytes.length;) {
      const { bytesWritten } = await this.file.write(bytes, written, bytes.length - written, position + written);
      written += bytesWritten;
    }
    this.count += vectors.length;
  }

  /** The vectors from `start`, at most `count` of them (fewer at the end). */
  async read(start: number, count: number): Promise<Float32Array[]> {
    const dimensions = this.dimensions ?? 0;
    const n = Math.max(0, Math.min(count, this.count - start));
    if (n === 0 || dimensions === 0) return [];
    const floats = new Float32Array(n * dimensions);
    const bytes = new Uint8Array(floats.buffer);
    const position = start * dimensions * Float32Array.BYTES_PER_ELEMENT;
    for (let read = 0; read < bytes.length;) {
      const { bytesRead } = await this.file.read(bytes, read, bytes.length - read, position + read);
      if (bytesRead === 0) throw new Error(`Spilled vectors file ended at byte ${position + read}`);
      read += bytesRead;
    }
    return Array.from({ length: n }, (_, i) => floats.subarray(i * dimensions, (i + 1) * dimensions));
  }

  /** Closes the file, which frees it; removes its directory if it could not be removed at once. */
  async close(): Promise<void> {
    await this.file.close().catch(() => undefined);
    if (this.leftover !== undefined) await rm(this.leftover, { recursive: true, force: true });
  }
}
