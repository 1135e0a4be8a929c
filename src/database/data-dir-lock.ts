import { linkSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Name of the lock file in DATA_DIR (next to `pgdata/`). */
export const DATA_DIR_LOCK_FILE = 'service.pid';

/** DATA_DIR is open in another live process (or twice in this one): opening it again would corrupt it. */
export class DataDirInUseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataDirInUseError';
  }
}

/**
 * Where the embedded database says what it is doing while it opens: the service's logger. The CLIs
 * pass none, so that their output is theirs alone.
 */
export interface EmbeddedNotices {
  log(message: string): void;
  warn(message: string): void;
}

/** Lock files held by this process: a second open in the same process is refused too. */
const heldLocks = new Set<string>();

/**
 * Exclusive use of an embedded DATA_DIR by one process.
 *
 * PGlite writes `postmaster.pid` with a fixed pid (-42) and ignores it on start, so two processes
 * on one directory would both run WAL recovery and write the same files. This lock records our pid;
 * a lock left by a process that is gone (SIGKILL, crash, power loss) is taken over, so a crash never
 * blocks the restart.
 */
export class DataDirLock {
  private constructor(private readonly path: string) {}

  static acquire(dataDir: string, notices?: EmbeddedNotices): DataDirLock {
    const path = join(dataDir, DATA_DIR_LOCK_FILE);
    if (heldLocks.has(path)) {
      throw new DataDirInUseError(`DATA_DIR ${dataDir} is already open in this process`);
    }
    // Two attempts: the second follows the removal of a stale lock (another starter may win that race).
    for (let attempt = 0; attempt < 2; attempt++) {
      if (tryCreate(path)) {
        heldLocks.add(path);
        return new DataDirLock(path);
      }
      const examined = inodeOf(path);
      const owner = readOwner(path);
      if (owner !== undefined && owner !== process.pid && isAlive(owner)) {
        throw new DataDirInUseError(
          `DATA_DIR ${dataDir} is in use by process ${owner}: stop that process first ` +
            `(if it is not this service, delete ${path})`,
        );
      }
      // The owner is gone (or the file is unreadable): the lock is stale.
      if (examined !== undefined) {
        // Said once: the last run ended without shutting down (killed, crashed, power lost), which
        // an operator wants to know; PGlite recovers the data from its WAL as it opens.
        notices?.warn(
          `DATA_DIR ${dataDir} was left locked by ${owner === undefined ? 'an unreadable lock file' : `process ${owner}, which is gone`}: ` +
            'the last run did not shut down cleanly; taking the lock over (the database recovers as it opens)',
        );
        removeIfSame(path, { inode: examined, owner });
      }
    }
    throw new DataDirInUseError(`DATA_DIR ${dataDir} is being opened by another process at the same time`);
  }

  /** Removes the lock file if it is still ours. */
  release(): void {
    if (!heldLocks.delete(this.path)) return;
    if (readOwner(this.path) !== process.pid) return;
    try {
      unlinkSync(this.path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/** Creates the lock file with our pid in one step (link of a complete temp file), so it is never seen empty. */
function tryCreate(path: string): boolean {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${process.pid}\n`, { mode: 0o600 });
  try {
    linkSync(temp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(temp);
  }
}

function inodeOf(path: string): bigint | undefined {
  try {
    return statSync(path, { bigint: true }).ino;
  } catch {
    return undefined;
  }
}

/**
 * Removes the lock file at `path` if it is still the one examined (same inode and owner: a file
 * created since may reuse a freed inode number, never the dead owner's pid). Another starter may
 * have removed that stale lock and created its own since: unlinking by name would delete the live
 * lock, and both would open the directory. So the file is first moved aside (an atomic rename),
 * checked, and put back when it is not the stale one.
 */
export function removeIfSame(path: string, examined: { inode: bigint; owner: number | undefined }): void {
  const aside = `${path}.${process.pid}.stale`;
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (inodeOf(aside) !== examined.inode || readOwner(aside) !== examined.owner) {
    try {
      linkSync(aside, path);
    } catch (err) {
      // A third starter took the name meanwhile: its lock stands, and this one is lost with it.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  unlinkSync(aside);
}

function readOwner(path: string): number | undefined {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
