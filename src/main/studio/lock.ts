// Process-wide locks on folders. acquireFolderLock: one holder at a time (a model folder being
// downloaded holds <dir>/studio.lock, its pid); a lock whose process is gone (killed, crashed)
// is stale and taken over. registerOpen (below): which processes have a data folder open, so
// the open-time sweep runs only when no other one has.
import { mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

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

// ---------- open registrations: who has a data folder open ----------
// The sweep must never run while any other process has the folder open (the app, `fstudio
// serve` and one-shot commands all may): an import writes its file before its row, so a sweep
// would take that file for a crash leftover. Each open registers itself with a file named after
// its pid under <dataDir>/locks/ and keeps it until close; the sweep runs only when every other
// registration belongs to a process that is gone (those files are stale and removed). The sweep
// itself is done under locks/sweep.lock, and an opener that finds a live sweeper waits for it to
// finish before it returns, so nothing is written while a sweep runs.

export const LOCKS_DIR = 'locks';
const SWEEP_LOCK = 'sweep.lock';
const REG_RE = /^(\d+)\.pid$/;

/** How many opens this process has per data folder (a second open in one process must not sweep either). */
const openHere = new Map<string, number>();
/** Sweep lock files this process holds right now (one naming our pid that is not here is from an earlier process). */
const sweepingHere = new Set<string>();

function pidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}

export interface OpenRegistration {
  /** Other live processes with the folder open when this one registered (empty: this one may sweep). */
  readonly others: number[];
  /** True while this process also has another open of the same folder. */
  readonly sharedInProcess: boolean;
  /**
   * Runs `fn` (the sweep) under the sweep lock when no other process has the folder open;
   * otherwise returns `skip(why)` without running it.
   */
  sweep<T>(fn: () => Promise<T>, skip: (why: string) => T): Promise<T>;
  release(): void;
}

/** Another process is sweeping the data folder and did not finish within the wait. */
export class FolderBusyError extends Error {
  override name = 'FolderBusyError';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The pid of the live process sweeping (holding `file`), or null when none; a lock left by a
 * process that is gone (or by an earlier process that had our pid) is removed. A file just
 * created and not yet written counts as held, unless it stays empty for seconds.
 */
function sweepHolder(file: string, emptyReads = { n: 0 }): number | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch {
    return null;
  }
  const pid = Number(text);
  if (text === '' && ++emptyReads.n < 20) return -1;
  if (pid === process.pid ? !sweepingHere.has(file) : !pidAlive(pid)) {
    rmSync(file, { force: true });
    return null;
  }
  return pid;
}

/** The live pids of the other processes registered under `dir`; stale registrations are removed. */
function otherLiveRegistrations(dir: string): number[] {
  const out: number[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    const m = REG_RE.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid) continue;
    if (pidAlive(pid)) out.push(pid);
    else rmSync(join(dir, name), { force: true }); // its process is gone (killed, crashed)
  }
  return out;
}

/**
 * Registers this process as having `dataDir` open, waiting first for a sweep another process is
 * running to finish (up to `waitMs`; then it fails, saying which process is sweeping).
 */
export async function registerOpen(dataDir: string, waitMs = 10 * 60_000): Promise<OpenRegistration> {
  const dir = join(dataDir, LOCKS_DIR);
  mkdirSync(dir, { recursive: true });
  const key = resolve(dataDir);
  const own = join(dir, `${process.pid}.pid`);
  writeFileSync(own, `${process.pid}\n`);
  openHere.set(key, (openHere.get(key) ?? 0) + 1);
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    const n = (openHere.get(key) ?? 1) - 1;
    if (n > 0) openHere.set(key, n);
    else {
      openHere.delete(key);
      rmSync(own, { force: true });
    }
  };
  try {
    // Someone else's sweep may be under way: it began before we registered, so wait it out.
    const emptyReads = { n: 0 };
    for (let waited = 0; ; waited += 100) {
      const pid = sweepHolder(join(dir, SWEEP_LOCK), emptyReads);
      if (pid === null || pid === process.pid) break; // none, or ours: it never overlaps an import here
      if (waited >= waitMs)
        throw new FolderBusyError(
          `Another Foundation Studio process${pid > 0 ? ` (pid ${pid})` : ''} is still checking the data folder ${dataDir}. ` +
            'Wait for it to finish, then try again.',
        );
      await sleep(100);
    }
  } catch (e) {
    release();
    throw e;
  }
  const sharedInProcess = (openHere.get(key) ?? 0) > 1;
  const others = otherLiveRegistrations(dir);
  return {
    others,
    sharedInProcess,
    async sweep(fn, skip) {
      if (sharedInProcess) return skip('this process already has the data folder open');
      const sweepFile = join(dir, SWEEP_LOCK);
      for (let attempt = 0; ; attempt++) {
        try {
          writeFileSync(sweepFile, `${process.pid}\n`, { flag: 'wx' });
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
          // A stale lock is removed by sweepHolder: try once more; a live one means someone sweeps now.
          if (attempt > 0 || sweepHolder(sweepFile) !== null)
            return skip('another Foundation Studio process is checking the data folder right now');
        }
      }
      sweepingHere.add(sweepFile);
      try {
        // Checked after taking the sweep lock: a process registering from now on waits for us.
        const live = otherLiveRegistrations(dir);
        if (live.length > 0)
          return skip(
            `another Foundation Studio process (pid ${live.join(', ')}) has this data folder open; ` +
              'the check runs when it is the only one (if no other Foundation Studio is running, ' +
              `delete ${live.map((p) => join(dir, `${p}.pid`)).join(' and ')})`,
          );
        return await fn();
      } finally {
        sweepingHere.delete(sweepFile);
        rmSync(sweepFile, { force: true });
      }
    },
    release,
  };
}
