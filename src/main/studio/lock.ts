// Which process may sweep the data folder. The app, `fstudio serve` and one-shot CLI commands
// can open the same folder at once (SQLite in WAL mode is fine with that), but the open-time
// sweep must not run while another process is importing: its fresh temp files and
// not-yet-committed asset files would look like crash leftovers. The first process to open
// holds <dataDir>/studio.lock (its pid); others skip the sweep. A lock whose process is gone
// (killed, crashed) is stale and taken over.
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const LOCK_FILE = 'studio.lock';

/** Lock files this process holds: a lock naming our pid that is not here is from an earlier process. */
const ours = new Set<string>();

function alive(pid: number, file: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return ours.has(file);
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

export interface FolderLock {
  /** True when this process holds the lock (and so may sweep). */
  readonly held: boolean;
  /** The pid of the other process holding it, when not held. */
  readonly holder: number | null;
  release(): void;
}

export function acquireFolderLock(dataDir: string): FolderLock {
  const file = join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      ours.add(file);
      let released = false;
      return {
        held: true,
        holder: null,
        release() {
          if (released) return;
          released = true;
          ours.delete(file);
          try {
            if (Number(readFileSync(file, 'utf8').trim()) === process.pid) unlinkSync(file);
          } catch {
            /* already gone */
          }
        },
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let pid = NaN;
    try {
      pid = Number(readFileSync(file, 'utf8').trim());
    } catch {
      continue; // removed between our write and read: try again
    }
    if (alive(pid, file)) return { held: false, holder: pid, release() {} };
    try {
      unlinkSync(file); // stale: its process is gone
    } catch {
      /* someone else removed it first */
    }
  }
  return { held: false, holder: null, release() {} };
}
