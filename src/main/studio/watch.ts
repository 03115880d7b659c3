// Watched folders: an AUTOMATIC1111 or ComfyUI outputs folder, say, whose image files are imported
// as they are finished. A file is imported once it has stayed the same size and time for `quietMs`
// after its last change event (chokidar: inotify/FSEvents/ReadDirectoryChangesW, one watch per
// folder, no polling of the tree); one that still does not decode (a partial write that paused) is
// recorded as failed with its size and time and tried again when it changes. Every file seen is
// recorded (watched_files), so the rescan when the studio starts imports only what arrived or
// changed while it was closed. A file renamed within the folder is the same content: it is
// recorded under its new name, nothing is imported twice. A file deleted from the folder is
// forgotten; with mirrorDeletes its gallery item goes to the trash (undoable), unless another
// watched file still has the same content.
//
// Only the long-lived processes follow the folders (StudioOptions.watchFolders); any process can
// add, list and remove them.
import { realpathSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import {
  IMAGE_EXTENSIONS,
  MAX_IMPORT_FILE_BYTES,
  StudioError,
  type Handlers,
  type watchCalls,
  type WatchedFolder,
} from '../../shared/api.js';
import type { StudioContext } from './context.js';
import { importBatch } from './gallery-import.js';
import type { WatchedFileRow, WatchedFolderRow } from './history.js';

/** Files read and imported together. */
const BATCH = 32;

const isImageName = (p: string) =>
  !path.basename(p).startsWith('.') && IMAGE_EXTENSIONS.has(path.extname(p).toLowerCase());

interface Folder {
  row: WatchedFolderRow;
  watcher: FSWatcher | null;
  state: WatchedFolder['state'];
  error: string | null;
  /** Files waiting for their writes to settle: rel -> timer and the size and time last seen. */
  settling: Map<string, { timer: NodeJS.Timeout; size: number; mtimeMs: number }>;
  /** Files ready to import (or found gone: then they move to `gone`). */
  queue: Set<string>;
  /**
   * Files gone from the folder, forgotten once nothing else in it is settling or queued: a rename
   * within the folder is an unlink and an add, and the add must be recorded first (same content).
   */
  gone: Set<string>;
  counts: { files: number; failed: number };
}

export interface WatchOptions {
  /** Whether this process follows the folders (false: only add, list and remove). */
  follow: boolean;
  quietMs?: number;
}

export class WatchService {
  readonly #folders = new Map<number, Folder>();
  readonly #quietMs: number;
  #closed = false;
  #draining: Promise<void> = Promise.resolve();
  /** Sends gallery items to the trash as a delete does (set by openStudio: the gallery handlers' deleteItems). */
  trashItems: ((ids: number[]) => Promise<unknown>) | null = null;

  constructor(
    private readonly ctx: StudioContext,
    private readonly opts: WatchOptions,
  ) {
    this.#quietMs = opts.quietMs ?? ctx.options.watchQuietMs ?? 1000;
  }

  start(): void {
    if (!this.opts.follow) return;
    for (const row of this.ctx.history.watchedFolders()) this.#follow(row);
  }

  /** Resolves when nothing is settling or queued in any folder (tests; the bench). */
  async idle(): Promise<void> {
    for (;;) {
      await this.#draining;
      const busy = [...this.#folders.values()].some(
        (f) => f.settling.size > 0 || f.queue.size > 0 || f.gone.size > 0 || f.state === 'scanning',
      );
      if (!busy) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  #view(f: Folder): WatchedFolder {
    return {
      id: f.row.id,
      path: f.row.path,
      mirrorDeletes: f.row.mirrorDeletes === 1,
      addedAt: f.row.addedAt,
      state: f.state,
      error: f.error,
      files: f.counts.files,
      pending: f.settling.size + f.queue.size + f.gone.size,
      failed: f.counts.failed,
      lastScanAt: f.row.lastScanAt,
    };
  }

  #changed(f: Folder): void {
    if (!this.#closed) this.ctx.emit('watchChanged', this.#view(f));
  }

  #newFolder(row: WatchedFolderRow): Folder {
    const f: Folder = {
      row,
      watcher: null,
      state: 'scanning',
      error: null,
      settling: new Map(),
      queue: new Set(),
      gone: new Set(),
      counts: this.ctx.history.watchedFileCounts(row.id),
    };
    this.#folders.set(row.id, f);
    return f;
  }

  #follow(row: WatchedFolderRow): Folder {
    const f = this.#newFolder(row);
    const rel = (p: string) => path.relative(row.path, p).split(path.sep).join('/');
    const watcher = watch(row.path, {
      ignoreInitial: true,
      followSymlinks: false,
      alwaysStat: true,
      // Folders are followed; of files, only images (a dot-file is a tool's temp file).
      ignored: (p, st) => p !== row.path && st !== undefined && st.isFile() && !isImageName(p),
    });
    f.watcher = watcher;
    watcher.on('add', (p, st) => isImageName(p) && this.#settle(f, rel(p), st?.size ?? -1, st?.mtimeMs ?? -1));
    watcher.on('change', (p, st) => isImageName(p) && this.#settle(f, rel(p), st?.size ?? -1, st?.mtimeMs ?? -1));
    watcher.on('unlink', (p) => isImageName(p) && this.#settle(f, rel(p), -1, -1));
    watcher.on('error', (e) => {
      f.state = 'error';
      f.error = `${row.path}: ${(e as Error).message}`;
      this.#changed(f);
    });
    watcher.on('ready', () => void this.#rescan(f));
    this.#changed(f);
    return f;
  }

  /** A change event: (re)starts the file's quiet period. */
  #settle(f: Folder, rel: string, size: number, mtimeMs: number): void {
    if (this.#closed) return;
    const prev = f.settling.get(rel);
    if (prev) clearTimeout(prev.timer);
    const timer = setTimeout(() => void this.#quiet(f, rel), this.#quietMs);
    timer.unref();
    f.settling.set(rel, { timer, size, mtimeMs });
  }

  /** The quiet period is over: unchanged since the last event means finished. */
  async #quiet(f: Folder, rel: string): Promise<void> {
    const seen = f.settling.get(rel);
    if (!seen || this.#closed) return;
    const st = await stat(path.join(f.row.path, rel)).catch(() => null);
    const size = st?.size ?? -1;
    const mtimeMs = st?.mtimeMs ?? -1;
    if (size !== seen.size || mtimeMs !== seen.mtimeMs) return this.#settle(f, rel, size, mtimeMs); // written meanwhile
    f.settling.delete(rel);
    f.queue.add(rel);
    this.#drain(f);
  }

  /** The rescan at start: every image file against what was recorded; new or changed ones are imported. */
  async #rescan(f: Folder): Promise<void> {
    try {
      const known = this.ctx.history.watchedFiles(f.row.id);
      const walk = async (dir: string, prefix: string): Promise<void> => {
        for (const e of await readdir(dir, { withFileTypes: true })) {
          if (this.#closed) return;
          const rel = prefix ? `${prefix}/${e.name}` : e.name;
          if (e.isDirectory()) await walk(path.join(dir, e.name), rel);
          else if (e.isFile() && isImageName(e.name)) {
            const was = known.get(rel);
            known.delete(rel);
            if (f.settling.has(rel)) continue;
            if (was) {
              const st = await stat(path.join(dir, e.name)).catch(() => null);
              if (st && st.size === was.size && Math.round(st.mtimeMs) === was.mtimeMs) continue;
            }
            f.queue.add(rel);
          }
        }
      };
      await walk(f.row.path, '');
      for (const rel of known.keys()) if (!f.settling.has(rel)) f.queue.add(rel); // gone while closed
      const now = Date.now();
      this.ctx.history.setWatchedFolderScanned(f.row.id, now);
      f.row.lastScanAt = now;
      f.state = 'watching';
      f.error = null;
    } catch (e) {
      f.state = 'error';
      f.error = `${f.row.path}: ${(e as Error).message}`;
    }
    this.#changed(f);
    this.#drain(f);
  }

  /** Imports what is queued, a batch at a time (one drain at a time for the whole service). */
  #drain(f: Folder): void {
    this.#draining = this.#draining.then(async () => {
      while (f.queue.size > 0 && !this.#closed && this.#folders.get(f.row.id) === f) {
        const rels = [...f.queue].slice(0, BATCH);
        for (const r of rels) f.queue.delete(r);
        try {
          await this.#importSome(f, rels);
        } catch (e) {
          if (this.#closed) return;
          f.error = `${f.row.path}: ${(e as Error).message}`;
        }
        this.#changed(f);
      }
      if (f.gone.size === 0 || this.#closed) return;
      if (f.settling.size > 0 || f.queue.size > 0) {
        const t = setTimeout(() => this.#drain(f), this.#quietMs); // after what is still arriving
        t.unref();
        return;
      }
      for (const rel of [...f.gone]) {
        f.gone.delete(rel);
        if (this.#folders.get(f.row.id) === f) await this.#gone(f, rel);
      }
      this.#changed(f);
    });
  }

  async #importSome(f: Folder, rels: string[]): Promise<void> {
    const { history } = this.ctx;
    const inputs: { rel: string; name: string; data: Uint8Array; modifiedAt: number; size: number; mtimeMs: number }[] =
      [];
    const record = (rel: string, r: WatchedFileRow) => {
      const had = history.watchedFile(f.row.id, rel);
      history.recordWatchedFile(f.row.id, rel, r);
      if (!had) f.counts.files++;
      const wasFailed = had !== null && had.sha256 === null;
      if (!wasFailed && r.sha256 === null) f.counts.failed++;
      if (wasFailed && r.sha256 !== null) f.counts.failed--;
    };
    for (const rel of rels) {
      const abs = path.join(f.row.path, rel);
      const st = await stat(abs).catch(() => null);
      if (!st) {
        f.gone.add(rel);
        continue;
      }
      if (!st.isFile()) continue;
      if (st.size > MAX_IMPORT_FILE_BYTES) {
        record(rel, { size: st.size, mtimeMs: st.mtimeMs, sha256: null, error: 'larger than 256 MiB' });
        continue;
      }
      const data = await readFile(abs).catch(() => null);
      if (!data) continue; // removed meanwhile: its unlink event follows
      inputs.push({
        rel,
        name: path.basename(rel),
        data,
        modifiedAt: Math.round(st.mtimeMs),
        size: st.size,
        mtimeMs: st.mtimeMs,
      });
    }
    if (inputs.length === 0) return;
    const imported: number[] = [];
    await importBatch(this.ctx, inputs, (r, input) => {
      const i = input as (typeof inputs)[number];
      record(i.rel, { size: i.size, mtimeMs: i.mtimeMs, sha256: r.ok ? r.sha256 : null, error: r.ok ? null : r.error });
      if (r.ok && !r.duplicate) imported.push(r.item.id);
    });
    if (imported.length > 0) this.ctx.emit('galleryChanged', { reason: 'import', ids: imported });
  }

  /** A file no longer there: forgotten; with mirrorDeletes its item goes to the trash if nothing else watched has it. */
  async #gone(f: Folder, rel: string): Promise<void> {
    const { history } = this.ctx;
    const was = history.watchedFile(f.row.id, rel);
    if (!was) return;
    history.forgetWatchedFile(f.row.id, rel);
    f.counts.files--;
    if (was.sha256 === null) f.counts.failed--;
    if (f.row.mirrorDeletes !== 1 || was.sha256 === null || history.watchedShaExists(was.sha256)) return;
    const id = history.liveImageIdBySha(was.sha256);
    if (id !== null && this.trashItems) await this.trashItems([id]).catch(() => {});
  }

  #checkPath(input: string): string {
    const resolved = path.resolve(input);
    let real: string;
    try {
      real = realpathSync(resolved);
    } catch {
      throw new StudioError(
        'InvalidArgument',
        `${resolved} does not exist on this machine: give the path of a folder here.`,
      );
    }
    const data = realpathSync(this.ctx.dataDir);
    const inside = (child: string, parent: string) => {
      const r = path.relative(parent, child);
      return r === '' || (!r.startsWith('..') && !path.isAbsolute(r));
    };
    if (inside(real, data))
      throw new StudioError(
        'InvalidArgument',
        `${resolved} is inside the studio's data folder: choose a folder of your own images.`,
      );
    if (inside(data, real))
      throw new StudioError(
        'InvalidArgument',
        `${resolved} holds the studio's data folder (${data}): its own files would be imported again. Choose the outputs folder itself.`,
      );
    return real;
  }

  handlers(): Handlers<typeof watchCalls> {
    const list = () =>
      this.ctx.history.watchedFolders().map((row) => {
        const f = this.#folders.get(row.id);
        return f ? this.#view(f) : this.#view({ ...this.#idle(row) });
      });
    return {
      watchList: async () => {
        this.ctx.live();
        return list();
      },
      watchAdd: async ({ path: input, mirrorDeletes }) => {
        this.ctx.live();
        const real = this.#checkPath(input);
        const st = await stat(real);
        if (!st.isDirectory()) throw new StudioError('InvalidArgument', `${real} is a file, not a folder.`);
        if (this.ctx.history.watchedFolders().some((r) => r.path === real))
          throw new StudioError('AlreadyWatched', `${real} is already watched.`);
        const id = this.ctx.history.addWatchedFolder(real, mirrorDeletes, Date.now());
        const row = this.ctx.history.watchedFolders().find((r) => r.id === id)!;
        const f = this.opts.follow ? this.#follow(row) : this.#idle(row);
        return this.#view(f);
      },
      watchRemove: async ({ id }) => {
        this.ctx.live();
        const f = this.#folders.get(id);
        this.#folders.delete(id);
        if (f) await this.#stop(f);
        if (!this.ctx.history.removeWatchedFolder(id))
          throw new StudioError('NotFound', `No watched folder with id ${id} (it may have been removed).`);
        this.ctx.emit('watchRemoved', { id });
        return {};
      },
    };
  }

  /** A folder this process does not follow, as the list shows it. */
  #idle(row: WatchedFolderRow): Folder {
    return {
      row,
      watcher: null,
      state: 'watching',
      error: null,
      settling: new Map(),
      queue: new Set(),
      gone: new Set(),
      counts: this.ctx.history.watchedFileCounts(row.id),
    };
  }

  async #stop(f: Folder): Promise<void> {
    for (const s of f.settling.values()) clearTimeout(s.timer);
    f.settling.clear();
    f.queue.clear();
    f.gone.clear();
    await f.watcher?.close();
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#folders.values()].map((f) => this.#stop(f)));
    this.#folders.clear();
    await this.#draining.catch(() => {});
  }
}
