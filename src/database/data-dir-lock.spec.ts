import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { DATA_DIR_LOCK_FILE, DataDirInUseError, DataDirLock, removeIfSame } from './data-dir-lock.js';

describe('DataDirLock', () => {
  let dir: string;
  let lockFile: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kb-lock-'));
    lockFile = join(dir, DATA_DIR_LOCK_FILE);
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('records this process and removes the file on release', () => {
    const lock = DataDirLock.acquire(dir);
    expect(readFileSync(lockFile, 'utf8').trim()).toBe(String(process.pid));
    lock.release();
    expect(existsSync(lockFile)).toBe(false);
    DataDirLock.acquire(dir).release();
  });

  it('refuses a second open in the same process', () => {
    const lock = DataDirLock.acquire(dir);
    expect(() => DataDirLock.acquire(dir)).toThrow(/already open in this process/);
    lock.release();
  });

  it('refuses a directory locked by another live process, naming it', () => {
    writeFileSync(lockFile, `${process.ppid}\n`);
    expect(() => DataDirLock.acquire(dir)).toThrow(DataDirInUseError);
    expect(() => DataDirLock.acquire(dir)).toThrow(`in use by process ${process.ppid}`);
    expect(readFileSync(lockFile, 'utf8').trim()).toBe(String(process.ppid));
  });

  it('takes over the lock of a process that is gone (a crash must not block the restart), and says so', () => {
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    writeFileSync(lockFile, `${gone}\n`);
    const notices = { log: jest.fn<(message: string) => void>(), warn: jest.fn<(message: string) => void>() };
    const lock = DataDirLock.acquire(dir, notices);
    expect(notices.warn.mock.calls).toEqual([
      [
        expect.stringContaining(
          `was left locked by process ${gone}, which is gone: the last run did not shut down cleanly`,
        ),
      ],
    ]);
    expect(readFileSync(lockFile, 'utf8').trim()).toBe(String(process.pid));
    lock.release();
  });

  it('takes over an unreadable lock file', () => {
    writeFileSync(lockFile, 'not a pid');
    DataDirLock.acquire(dir).release();
    expect(existsSync(lockFile)).toBe(false);
  });

  it('leaves a lock that another process took over in the meantime', () => {
    const lock = DataDirLock.acquire(dir);
    writeFileSync(lockFile, `${process.ppid}\n`);
    lock.release();
    expect(readFileSync(lockFile, 'utf8').trim()).toBe(String(process.ppid));
  });

  it('removes a stale lock only if it is still the one examined, not the lock another starter created since', () => {
    const gone = spawnSync(process.execPath, ['-e', '0']).pid;
    writeFileSync(lockFile, `${gone}\n`);
    const examined = { inode: statSync(lockFile, { bigint: true }).ino, owner: gone };
    // Between this starter's look and its removal, another removed the stale lock and made its own
    // (which may well get the freed inode number).
    unlinkSync(lockFile);
    writeFileSync(lockFile, `${process.ppid}\n`);
    removeIfSame(lockFile, examined);
    expect(readFileSync(lockFile, 'utf8').trim()).toBe(String(process.ppid));
    // The stale one itself goes, and nothing is left aside.
    writeFileSync(lockFile, `${gone}\n`);
    removeIfSame(lockFile, { inode: statSync(lockFile, { bigint: true }).ino, owner: gone });
    expect(existsSync(lockFile)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });
});
