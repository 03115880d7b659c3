// Process-wide locks on folders. acquireFolderLock: one holder at a time (a model folder being
// downloaded holds <dir>/studio.lock, its pid); a lock whose process is gone (killed, crashed)
// is stale and taken over. registerOpen (below): which processes have a data folder open, so
// the open-time sweep runs only when no other one has.
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
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

/** `name`: the lock file in `dataDir` (default studio.lock; the generation queue's is queue.lock). */
export function acquireFolderLock(dataDir: string, name = LOCK_FILE): FolderLock {
  const file = join(dataDir, name);
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
//
// Telling a live holder from a leftover whose pid was reused (a crash, then a reboot or just
// a busy machine hands the pid to another program):
//  - Both files hold `<pid> <identity>`. The identity is the process's start time where it can
//    be read cheaply: on Linux `<boot id>/<start time in clock ticks>` from
//    /proc/sys/kernel/random/boot_id and field 22 of /proc/<pid>/stat. A file whose pid is
//    alive but whose identity differs from that process's (or is missing) was left by another
//    process that had the pid: it is stale. Where no identity can be read (macOS, Windows) the
//    pid alone decides, as before.
//  - The sweeper also touches locks/sweep.lock every SWEEP_HEARTBEAT_MS while it sweeps (an
//    unref'd timer), and a sweep lock not touched for SWEEP_STALE_MS is stale whatever its pid
//    says, on every platform. An opener waits for a live sweep at most SWEEP_WAIT_MS, then
//    fails with FolderBusyError naming the file (to delete if no other studio is running), so a
//    leftover lock can never hold an open up for long.

export const LOCKS_DIR = 'locks';
export const SWEEP_LOCK = 'sweep.lock';
/** How often a sweeper touches its sweep lock. */
export const SWEEP_HEARTBEAT_MS = 5_000;
/** A sweep lock not touched for this long is stale, whatever its pid says. */
export const SWEEP_STALE_MS = 30_000;
/** How long an open waits for another process's sweep before it fails with FolderBusyError. */
export const SWEEP_WAIT_MS = 40_000;
const REG_RE = /^(\d+)\.pid$/;

/** How many opens this process has per data folder (by its real path; a second open in one process must not sweep either). */
const openHere = new Map<string, number>();
/** Sweep lock files this process holds right now (one naming our pid that is not here is from an earlier process). */
const sweepingHere = new Set<string>();

let bootId: string | null | undefined;
/**
 * The start identity of process `pid` (see above): `<boot id>/<start ticks>` on Linux; null
 * where it cannot be read (another platform, or the process is gone).
 */
export function processIdentity(pid: number): string | null {
  if (process.platform !== 'linux' || !Number.isInteger(pid) || pid <= 0) return null;
  try {
    bootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    bootId = null;
  }
  if (!bootId) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so count from the last ')'.
    const start = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    return start && /^\d+$/.test(start) ? `${bootId}/${start}` : null;
  } catch {
    return null;
  }
}

/** What this process writes into its registration and sweep lock. */
function ownRecord(): string {
  const id = processIdentity(process.pid);
  return id ? `${process.pid} ${id}\n` : `${process.pid}\n`;
}

/** Whether the process a lock file's text names is alive and is the process that wrote it. */
function recordAlive(text: string): { pid: number; alive: boolean } {
  const [pidText = '', recorded = null] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!/^\d+$/.test(pidText) || !pidAlive(pid)) return { pid, alive: false };
  const current = processIdentity(pid);
  // Where identities can be read, the pid must still belong to the process that wrote the file.
  if (current !== null && recorded !== current) return { pid, alive: false };
  return { pid, alive: true };
}

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

export interface RegisterOptions {
  /** How long to wait for another process's sweep (SWEEP_WAIT_MS unless given). */
  waitMs?: number;
  /** How often our sweep touches its lock (SWEEP_HEARTBEAT_MS unless given; tests shorten it). */
  heartbeatMs?: number;
}

/** Another process is sweeping the data folder and did not finish within the wait. */
export class FolderBusyError extends Error {
  override name = 'FolderBusyError';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The pid of the live process sweeping (holding `file`), or null when none; a lock left by a
 * process that is gone, by another process that had its pid (or an earlier one that had ours),
 * or not touched for SWEEP_STALE_MS, is removed. A file just created and not yet written counts
 * as held, unless it stays empty for seconds.
 */
function sweepHolder(file: string, emptyReads = { n: 0 }): number | null {
  let text: string;
  let mtime: number;
  try {
    text = readFileSync(file, 'utf8').trim();
    mtime = statSync(file).mtimeMs;
  } catch {
    return null;
  }
  const stale = Date.now() - mtime > SWEEP_STALE_MS;
  if (text === '' && !stale && ++emptyReads.n < 20) return -1;
  const { pid, alive } = recordAlive(text);
  if (stale || (pid === process.pid ? !sweepingHere.has(file) : !alive)) {
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
    let text: string;
    try {
      text = readFileSync(join(dir, name), 'utf8');
    } catch {
      continue; // removed meanwhile
    }
    // A file just created and not yet written: its name is all there is to go by.
    if (text.trim() === '' ? pidAlive(pid) : recordAlive(text).alive) out.push(pid);
    else rmSync(join(dir, name), { force: true }); // its process is gone (killed, crashed), or the pid was reused
  }
  return out;
}

/**
 * Registers this process as having `dataDir` open, waiting first for a sweep another process is
 * running to finish (up to `waitMs`; then it fails, naming the lock file and the process).
 */
export async function registerOpen(dataDir: string, opts: RegisterOptions = {}): Promise<OpenRegistration> {
  const waitMs = opts.waitMs ?? SWEEP_WAIT_MS;
  const heartbeatMs = opts.heartbeatMs ?? SWEEP_HEARTBEAT_MS;
  const dir = join(dataDir, LOCKS_DIR);
  mkdirSync(dir, { recursive: true });
  // One counter per folder, however its path is spelt (a symlink, a relative path).
  const key = realpathSync(resolve(dataDir));
  const own = join(dir, `${process.pid}.pid`);
  writeFileSync(own, ownRecord());
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
          `Another Foundation Studio process${pid > 0 ? ` (pid ${pid})` : ''} is still checking the data folder ${dataDir} ` +
            `(it holds ${LOCKS_DIR}/${SWEEP_LOCK}). Wait for it to finish, then try again. If no other Foundation Studio ` +
            `is running, the lock is left over: delete ${join(dir, SWEEP_LOCK)} and try again.`,
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
          writeFileSync(sweepFile, ownRecord(), { flag: 'wx' });
          break;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
          // A stale lock is removed by sweepHolder: try once more; a live one means someone sweeps now.
          if (attempt > 0 || sweepHolder(sweepFile) !== null)
            return skip('another Foundation Studio process is checking the data folder right now');
        }
      }
      sweepingHere.add(sweepFile);
      // The heartbeat: a sweep lock not touched for SWEEP_STALE_MS is taken for a leftover.
      const heartbeat = setInterval(() => {
        const now = new Date();
        try {
          utimesSync(sweepFile, now, now);
        } catch {
          /* removed by hand: nothing to keep fresh */
        }
      }, heartbeatMs);
      heartbeat.unref();
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
        clearInterval(heartbeat);
        sweepingHere.delete(sweepFile);
        rmSync(sweepFile, { force: true });
      }
    },
    release,
  };
}
