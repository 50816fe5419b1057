/**
 * An exclusive lock on the embedded store's directory. PGlite opens its files without locking,
 * so two processes on one directory would corrupt it; the second must fail with a clear message.
 * The lock file holds the owner's pid: a lock left by a process that no longer runs is taken over.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export interface DirectoryLock {
  release(): void;
}

export class DirectoryLockedError extends Error {}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function acquireDirectoryLock(dir: string): DirectoryLock {
  const path = join(dir, 'carebridge.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        try {
          unlinkSync(path);
        } catch {
          /* already gone */
        }
      };
      process.once('exit', release);
      return { release };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number.parseInt(readFileSync(path, 'utf8'), 10);
      if (Number.isFinite(owner) && owner !== process.pid && processAlive(owner)) {
        throw new DirectoryLockedError(
          `The data directory ${dir} is in use by another CareBridge process (pid ${owner}). ` +
            'Stop it, or set DATA_DIR to another directory, or set DATABASE_URL to use a PostgreSQL server.',
        );
      }
      if (owner === process.pid) {
        throw new DirectoryLockedError(`The data directory ${dir} is already open in this process.`);
      }
      unlinkSync(path); // stale lock from a process that has exited
    }
  }
  throw new DirectoryLockedError(`Could not lock the data directory ${dir}.`);
}
