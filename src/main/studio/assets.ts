// The data folder's file layout: content-addressed assets, thumbnails, the trash, and
// atomic writes (temp file in the same folder, fsync, rename), so a crash never leaves a
// half-written file under a real name. Paths are built from validated hashes and tokens
// only; no user text is ever joined into a path.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, rmdir, stat, unlink, utimes } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';

export const SHA256_RE = /^[0-9a-f]{64}$/;
export const TRASH_TOKEN_RE = /^[0-9a-z]{1,12}-[0-9a-f]{16}$/;
export const TEMP_SUFFIX = '.tmp';
/** Names the layout itself writes: `<sha256>.<ext>`. Anything else under assets/ or thumbs/ is not ours. */
export const ASSET_NAME_RE = /^([0-9a-f]{64})\.(png|jpg|webp|gif)$/;

export function newTrashToken(now = Date.now()): string {
  return `${now.toString(36)}-${randomBytes(8).toString('hex')}`;
}

/** Writes `data` to `file` so that readers see either the old file or the whole new one. */
export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const dir = dirname(file);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
  const fh = await open(tmp, 'wx');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await syncDir(dir);
}

/** fsync a directory so a rename survives a power cut (POSIX only; Windows cannot open folders). */
async function syncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    /* best effort */
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

export class AssetFiles {
  readonly root: string;

  constructor(dataDir: string) {
    this.root = resolve(dataDir);
  }

  assetRel(sha256: string, ext: string): string {
    if (!SHA256_RE.test(sha256) || !/^[a-z0-9]{1,5}$/.test(ext)) throw new Error(`bad asset name ${sha256}.${ext}`);
    return `assets/${sha256.slice(0, 2)}/${sha256}.${ext}`;
  }

  thumbRel(sha256: string): string {
    if (!SHA256_RE.test(sha256)) throw new Error(`bad asset hash ${sha256}`);
    return `thumbs/${sha256.slice(0, 2)}/${sha256}.webp`;
  }

  /** Absolute path of a stored relative path, or null if it would leave the data folder. */
  abs(rel: string): string | null {
    const p = resolve(this.root, rel);
    const r = relative(this.root, p);
    if (r === '' || r.startsWith('..') || resolve(this.root, r) !== p || r.split(sep).includes('..')) return null;
    return p;
  }

  private must(rel: string): string {
    const p = this.abs(rel);
    if (!p) throw new Error(`path outside the data folder: ${rel}`);
    return p;
  }

  trashRel(token: string, rel: string): string {
    if (!TRASH_TOKEN_RE.test(token)) throw new Error(`bad trash token ${token}`);
    return `trash/${token}/${rel}`;
  }

  async write(rel: string, data: Uint8Array): Promise<void> {
    await writeFileAtomic(this.must(rel), data);
  }

  /**
   * Writes several files as write() does each, but together: every file to a temp name and fsynced
   * (four at a time: the thread pool also hashes and reads), then renamed, then each folder fsynced once. When it returns, all are durable
   * under their names; a crash before leaves temp files (swept) or whole files, never a torn one.
   */
  async writeMany(entries: readonly { rel: string; data: Uint8Array }[]): Promise<void> {
    const staged: { tmp: string; file: string }[] = [];
    const dirs = new Set<string>();
    const queue = [...entries];
    const writer = async () => {
      for (let e = queue.shift(); e; e = queue.shift()) {
        const file = this.must(e.rel);
        const dir = dirname(file);
        await mkdir(dir, { recursive: true });
        const tmp = join(dir, `.${randomBytes(6).toString('hex')}${TEMP_SUFFIX}`);
        const fh = await open(tmp, 'wx');
        staged.push({ tmp, file });
        try {
          await fh.writeFile(e.data);
          await fh.sync();
        } finally {
          await fh.close();
        }
        dirs.add(dir);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(4, entries.length) }, writer));
      for (const s of staged) await rename(s.tmp, s.file);
    } catch (e) {
      await Promise.all(staged.map((s) => unlink(s.tmp).catch(() => {})));
      throw e;
    }
    await Promise.all([...dirs].map(syncDir));
  }

  /** Sets a file's times to now (a file a check is looking at becomes one it leaves alone). */
  async touch(rel: string): Promise<void> {
    const now = new Date();
    await utimes(this.must(rel), now, now).catch(() => {});
  }

  async has(rel: string): Promise<boolean> {
    return exists(this.must(rel));
  }

  /** Moves a file (creating folders); a missing source is not an error (returns false). */
  async move(fromRel: string, toRel: string): Promise<boolean> {
    const from = this.must(fromRel);
    const to = this.must(toRel);
    if (!(await exists(from))) return false;
    await mkdir(dirname(to), { recursive: true });
    await rename(from, to);
    return true;
  }

  async remove(rel: string): Promise<void> {
    await rm(this.must(rel), { force: true });
  }

  async removeTrash(token: string): Promise<void> {
    if (!TRASH_TOKEN_RE.test(token)) return;
    await rm(join(this.root, 'trash', token), { recursive: true, force: true });
  }

  async trashTokensOnDisk(): Promise<string[]> {
    try {
      return (await readdir(join(this.root, 'trash'))).filter((t) => TRASH_TOKEN_RE.test(t));
    } catch {
      return [];
    }
  }

  /**
   * Deletes leftover temp files (from a write cut short by a crash) under assets/, thumbs/
   * and the top of the data folder (with `root`, only the top: the background check takes
   * assets/ and thumbs/ one shard at a time). Returns how many were removed.
   */
  async sweepTemps(opts: { root?: boolean } = {}): Promise<number> {
    let n = 0;
    const sweep = async (dir: string, depth: number): Promise<void> => {
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const p = join(dir, e.name);
        if (e.isDirectory() && depth > 0) await sweep(p, depth - 1);
        else if (e.isFile() && e.name.endsWith(TEMP_SUFFIX)) {
          await unlink(p).catch(() => {});
          n++;
        }
      }
    };
    await sweep(this.root, 0);
    if (opts.root) return n;
    await sweep(join(this.root, 'assets'), 1);
    await sweep(join(this.root, 'thumbs'), 1);
    return n;
  }

  /**
   * Every content-addressed file under assets/ or thumbs/, as {sha256, rel}. A missing folder
   * is empty; any other failure to read it or a shard folder (permissions, I/O, not a folder)
   * throws: an unreadable folder must never pass for an empty one.
   */
  async list(kind: 'assets' | 'thumbs'): Promise<{ sha256: string; rel: string }[]> {
    const out: { sha256: string; rel: string }[] = [];
    let shards: string[];
    try {
      shards = await readdir(join(this.root, kind));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
      throw new Error(`cannot read ${join(this.root, kind)}: ${(e as Error).message}`);
    }
    for (const shard of shards) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue;
      let names: string[];
      try {
        names = await readdir(join(this.root, kind, shard));
      } catch (e) {
        throw new Error(`cannot read ${join(this.root, kind, shard)}: ${(e as Error).message}`);
      }
      for (const name of names) {
        const m = ASSET_NAME_RE.exec(name);
        if (m && m[1]!.startsWith(shard)) out.push({ sha256: m[1]!, rel: `${kind}/${shard}/${name}` });
      }
      if (names.length === 0) await rmdir(join(this.root, kind, shard)).catch(() => {});
    }
    return out;
  }

  /** Folders under trash/ that orphan sweeps made (`orphans-<ms since 1970>`), with their time. */
  async orphanFoldersOnDisk(): Promise<{ name: string; time: number }[]> {
    try {
      return (await readdir(join(this.root, 'trash')))
        .map((name) => ({ name, m: ORPHANS_RE.exec(name) }))
        .filter((x) => x.m !== null)
        .map((x) => ({ name: x.name, time: Number(x.m![1]) }));
    } catch {
      return [];
    }
  }

  async removeOrphanFolder(name: string): Promise<void> {
    if (!ORPHANS_RE.test(name)) return;
    await rm(join(this.root, 'trash', name), { recursive: true, force: true });
  }
}

/** `trash/orphans-<ms>/`: where the sweep moves files no row points at (never deleted outright). */
export const ORPHANS_RE = /^orphans-(\d{1,15})$/;

/** The time a trash token was made (its first part is Date.now() in base 36). */
export function trashTokenTime(token: string): number {
  return parseInt(token.split('-')[0]!, 36);
}
