// The model manager: catalog models under <dataDir>/models/<id>/, each with its files in the
// catalog's layout and a small state file (fstudio-state.json, written atomically) recording each
// file's SHA-256, size, where it came from and what the hash was checked against.
//
// A file is "present" when it is in place (downloads land as <name>.part and are renamed only
// once verified); a file with a record whose size no longer matches shows no verification until
// `verify` has re-hashed it. Hashing runs in a worker thread.
import { createHash } from 'node:crypto';
import { constants as fsConstants, createWriteStream, existsSync } from 'node:fs';
import {
  copyFile,
  lstat,
  mkdir,
  open,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { basename, extname, isAbsolute, join, posix, resolve, sep, win32 } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { StudioError } from '../../../shared/api.js';
import { builtinCatalog, defaultModel, hostOf, type Catalog, type CatalogEntry, type CatalogFile } from './catalog.js';
import {
  type FileVerification,
  type ModelFileInfo,
  type ModelImportReport,
  type ModelInfo,
  type ModelProgress,
  type ModelSource,
  type VerifyReport,
  urlHost,
} from '../../../shared/models.js';
import {
  DownloadError,
  Downloader,
  isOffline,
  type DownloaderOptions,
  type FileResult,
  type JobHandle,
} from './downloads.js';
import { hashFile } from './hash.js';
import { acquireFolderLock } from '../lock.js';

export const STATE_FILE = 'fstudio-state.json';

/** A catalog id, or the name of a folder under models/ (no separators, no leading dot). */
const MODEL_ID_RE = /^[a-z0-9][a-z0-9._-]*$/i;

const locationKey = (location: string) => createHash('sha256').update(resolve(location)).digest('hex').slice(0, 16);

/** A model resolved for a run: where its files are, and where its caches go. */
export interface ResolvedModel {
  /** The catalog id, or the absolute path of a file or folder given directly. */
  ref: string;
  entry: CatalogEntry | null;
  /** The folder (or checkpoint file) the loaders read. */
  location: string;
  /** Safetensors conversion of a torch checkpoint, converted on first load. */
  weightsCacheFile: string;
  /** Built graphs and each model's shared weights file. */
  graphCacheDir: string;
}

const FileRecord = z.object({
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.number().int().nonnegative(),
  verification: z.enum(['sha256', 'hf-linked-etag', 'recorded']),
  source: z.string(),
  recordedAt: z.string(),
});
type FileRecord = z.infer<typeof FileRecord>;
const ModelState = z.object({ version: z.literal(1), files: z.record(z.string(), FileRecord) });
type ModelState = z.infer<typeof ModelState>;

const STRENGTH: Record<FileVerification, number> = { recorded: 0, 'hf-linked-etag': 1, sha256: 2 };

export interface ModelManagerOptions {
  catalog?: Catalog;
  /** A Downloader to share, or options for this manager's own. */
  downloader?: Downloader | DownloaderOptions;
  /**
   * Base URLs tried before the catalog's mirrors, as `${base}/${id}/${file}` (an organisation's
   * own mirror, or FSTUDIO_MODEL_MIRROR).
   */
  extraMirrors?: string[];
  /**
   * Use only `extraMirrors`, never the catalog's URLs (FSTUDIO_MODEL_MIRROR_ONLY=1): an offline
   * organisation's mirror, and tests that must not reach the internet whatever the machine.
   */
  mirrorsOnly?: boolean;
  /**
   * Whether the catalog's third-party mirrors (hosts not run by the model's publisher) may be used,
   * asked at each pull (the user's setting; true when not given).
   */
  thirdPartyMirrors?: () => boolean;
}

type ManagerEvents = {
  progress: ModelProgress;
  changed: { id: string; reason: 'pull' | 'import' | 'verify' | 'remove' };
};

interface Pull {
  jobId: string;
  ctl: AbortController;
  discard: boolean;
  handle?: JobHandle;
  done: Promise<ModelInfo>;
}

export interface PullHandle {
  jobId: string;
  /** Resolves with the model's state once every file is in place; rejects with a StudioError. */
  done: Promise<ModelInfo>;
}

async function sizeOrNull(p: string): Promise<number | null> {
  try {
    const s = await stat(p);
    return s.isFile() ? s.size : null;
  } catch {
    return null;
  }
}

export class ModelManager {
  readonly dataDir: string;
  readonly root: string;
  /**
   * `<dataDir>/imports/`: the only place an import through the API may read from (the API never
   * reaches a path outside the data folder). The CLI imports from any local path (`importLocal`).
   */
  readonly importsDir: string;
  /** `<dataDir>/cache/weights/`: safetensors conversions of torch checkpoints (see weightsCacheFile). */
  private readonly weightsCacheDir: string;
  private readonly catalog: Catalog;
  private readonly downloader: Downloader;
  private readonly extraMirrors: string[];
  private readonly mirrorsOnly: boolean;
  private readonly thirdPartyMirrors: () => boolean;
  private readonly pulls = new Map<string, Pull>();
  private seq = 0;
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly listeners: { [K in keyof ManagerEvents]: Set<(p: ManagerEvents[K]) => void> } = {
    progress: new Set(),
    changed: new Set(),
  };

  constructor(dataDir: string, opts: ModelManagerOptions = {}) {
    this.dataDir = resolve(dataDir);
    this.root = join(resolve(dataDir), 'models');
    this.importsDir = join(resolve(dataDir), 'imports');
    this.weightsCacheDir = join(resolve(dataDir), 'cache', 'weights');
    this.catalog = opts.catalog ?? builtinCatalog();
    this.downloader = opts.downloader instanceof Downloader ? opts.downloader : new Downloader(opts.downloader);
    this.extraMirrors = (opts.extraMirrors ?? []).map((b) => b.replace(/\/+$/, ''));
    this.mirrorsOnly = opts.mirrorsOnly ?? false;
    this.thirdPartyMirrors = opts.thirdPartyMirrors ?? (() => true);
  }

  on<K extends keyof ManagerEvents>(name: K, listener: (p: ManagerEvents[K]) => void): () => void {
    const set = this.listeners[name] as Set<(p: ManagerEvents[K]) => void>;
    set.add(listener);
    return () => set.delete(listener);
  }

  private emit<K extends keyof ManagerEvents>(name: K, payload: ManagerEvents[K]): void {
    for (const l of this.listeners[name] as Set<(p: ManagerEvents[K]) => void>) {
      try {
        l(payload);
      } catch (e) {
        console.error(`[models] ${name} listener failed:`, e);
      }
    }
  }

  entry(id: string): CatalogEntry {
    const e = this.catalog.models.find((m) => m.id === id);
    if (!e)
      throw new StudioError(
        'NotFound',
        `No model "${id}" in the catalog. Known models: ${this.catalog.models.map((m) => m.id).join(', ')}.`,
      );
    return e;
  }

  modelDir(id: string): string {
    return join(this.root, this.entry(id).id);
  }

  /** The path of one of a model's files (catalog names are checked to stay inside its folder). */
  filePath(id: string, name: string): string {
    const dir = this.modelDir(id);
    const p = resolve(dir, name);
    if (!p.startsWith(dir + sep)) throw new StudioError('BadRequest', `File name "${name}" leaves the model folder.`);
    return p;
  }

  // ---------- state file ----------

  private async readState(id: string): Promise<ModelState> {
    try {
      const raw = JSON.parse(await readFile(join(this.modelDir(id), STATE_FILE), 'utf8')) as unknown;
      const r = ModelState.safeParse(raw);
      if (r.success) return r.data;
    } catch {
      /* missing or unreadable: nothing recorded */
    }
    return { version: 1, files: {} };
  }

  /** Read-modify-write of a model's state file, serialised per model, written atomically. */
  private updateState(id: string, fn: (s: ModelState) => void): Promise<void> {
    return this.serial(id, async () => {
      const s = await this.readState(id);
      fn(s);
      const dir = this.modelDir(id);
      await mkdir(dir, { recursive: true });
      const file = join(dir, STATE_FILE);
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, `${JSON.stringify(s, null, 2)}\n`);
      await rename(tmp, file);
    });
  }

  private serial<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(id) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    this.locks.set(
      id,
      next.catch(() => {}),
    );
    return next;
  }

  // ---------- list ----------

  async list(): Promise<ModelInfo[]> {
    return Promise.all(this.catalog.models.map((m) => this.info(m.id)));
  }

  async info(id: string): Promise<ModelInfo> {
    const e = this.entry(id);
    const state = await this.readState(id);
    const files: ModelFileInfo[] = [];
    for (const f of e.files) {
      const path = this.filePath(id, f.name);
      const size = await sizeOrNull(path);
      const part = size === null ? await sizeOrNull(`${path}.part`) : null;
      const rec = state.files[f.name];
      const current = size !== null && rec !== undefined && rec.bytes === size;
      files.push({
        name: f.name,
        state: size !== null ? 'present' : part !== null ? 'partial' : 'missing',
        bytes: size ?? part ?? 0,
        expectedBytes: f.size?.bytes ?? null,
        expectedApproximate: f.size?.approximate ?? false,
        sha256: current ? rec.sha256 : (f.sha256 ?? null),
        verification: current ? rec.verification : null,
        source: current ? rec.source : null,
        optional: f.optional ?? false,
      });
    }
    const required = files.filter((f) => !f.optional);
    const present = files.filter((f) => f.state === 'present');
    const verifications = present.map((f) => f.verification);
    return {
      id: e.id,
      kind: e.kind,
      title: e.title,
      description: e.description,
      licence: e.licence,
      homepage: e.homepage,
      default: e.default,
      notes: e.notes ?? null,
      state: required.every((f) => f.state === 'present')
        ? 'installed'
        : files.some((f) => f.state !== 'missing')
          ? 'partial'
          : 'missing',
      verification:
        present.length === 0 || verifications.some((v) => v === null)
          ? null
          : verifications.reduce((a, b) => (STRENGTH[b!] < STRENGTH[a!] ? b : a)),
      downloading: this.pulls.has(id),
      bytesOnDisk: files.reduce((a, f) => a + f.bytes, 0),
      expectedBytes: e.files.some((f) => f.size) ? e.files.reduce((a, f) => a + (f.size?.bytes ?? 0), 0) : null,
      expectedApproximate: e.files.some((f) => f.size?.approximate),
      expectedUnknownFiles: e.files.filter((f) => !f.size).length,
      dir: this.modelDir(id),
      sources: this.sources(e),
      files,
    };
  }

  /** The servers a model's files come from, in the order tried, each with who runs it and whether it is used. */
  private sources(e: CatalogEntry): ModelSource[] {
    const out: ModelSource[] = [];
    const add = (s: ModelSource) => {
      if (!out.some((x) => x.host === s.host)) out.push(s);
    };
    for (const base of this.extraMirrors)
      add({
        host: urlHost(base),
        name: 'your mirror',
        thirdParty: false,
        about: 'a mirror you chose (FSTUDIO_MODEL_MIRROR or --mirror), tried first',
        enabled: true,
        unusedBecause: null,
      });
    const thirdParty = this.thirdPartyMirrors();
    for (const u of e.files.flatMap((f) => f.urls)) {
      const h = hostOf(this.catalog, u);
      add({
        host: h?.host ?? urlHost(u),
        name: h?.name ?? urlHost(u),
        thirdParty: h?.thirdParty ?? false,
        about: h?.about ?? '',
        enabled: !this.mirrorsOnly && (thirdParty || !h?.thirdParty),
        unusedBecause: this.mirrorsOnly ? 'mirror-only' : !thirdParty && h?.thirdParty ? 'third-party-off' : null,
      });
    }
    return out;
  }

  /**
   * What `--model <catalog id | path>` names: an installed catalog model's folder, or a local file
   * or folder used as is. Says what to run when the model is known but not installed.
   */
  async locate(idOrPath: string): Promise<{ path: string; entry: CatalogEntry | null }> {
    const entry = this.catalog.models.find((m) => m.id === idOrPath) ?? null;
    if (entry) {
      const info = await this.info(entry.id);
      if (info.state !== 'installed')
        throw new StudioError(
          'ModelNotInstalled',
          `${entry.title} (${entry.id}) is ${info.state === 'partial' ? 'only partly downloaded' : 'not installed'}: ` +
            `download it on the Models page (or: fstudio models pull ${entry.id}), or import its files.`,
        );
      return { path: info.dir, entry };
    }
    const p = resolve(idOrPath);
    if ((await stat(p).catch(() => null)) === null)
      throw new StudioError(
        'NotFound',
        `"${idOrPath}" is neither a catalog model (${this.catalog.models.map((m) => m.id).join(', ')}) nor an existing file or folder.`,
      );
    return { path: p, entry: null };
  }

  /** `<dataDir>/cache/graphs/`: built graphs and each model's shared weights file (engine/runtime/graph-cache.ts). */
  get graphCacheDir(): string {
    return join(this.dataDir, 'cache', 'graphs');
  }

  /**
   * Where a model's torch checkpoint is converted to safetensors once and read from after: by catalog id
   * for an installed CLIP (`<id>.safetensors`), else by the SHA-256 of the absolute location (`vqgan-<key>`
   * for a VQGAN, `folder-<key>` for a CLIP folder). cacheFiles() finds the same names to remove them.
   */
  weightsCacheFile(kind: 'clip' | 'vqgan', location: string, catalogId: string | null): string {
    if (kind === 'clip' && catalogId) return join(this.weightsCacheDir, `${catalogId}.safetensors`);
    return join(this.weightsCacheDir, `${kind === 'vqgan' ? 'vqgan' : 'folder'}-${locationKey(location)}.safetensors`);
  }

  /**
   * The model a run names (`--model`, a job's spec): an existing file or folder used as it is, else an
   * installed model of the catalog (or a folder dropped into models/<id>/), else the kind's default; with
   * its weights-cache file and the graph cache. Errors say what to download or pass instead.
   */
  async resolve(
    kind: 'clip' | 'vqgan' | 'text-lm',
    model: string | undefined,
    opts: { allowPaths?: boolean } = {},
  ): Promise<ResolvedModel> {
    const named = model ?? defaultModel(this.catalog, kind).id;
    const resolved = async (ref: string, location: string, entry: CatalogEntry | null): Promise<ResolvedModel> => {
      await mkdir(this.weightsCacheDir, { recursive: true });
      return {
        ref,
        entry,
        location,
        weightsCacheFile: this.weightsCacheFile(kind === 'vqgan' ? 'vqgan' : 'clip', location, entry?.id ?? null),
        graphCacheDir: this.graphCacheDir,
      };
    };
    // A file or folder given directly (the CLI; never through the API, which names installed models only).
    if (opts.allowPaths ?? true) {
      const asPath = await stat(named).catch(() => null);
      if (asPath && (kind === 'vqgan' || asPath.isDirectory())) return resolved(resolve(named), resolve(named), null);
    }
    const entry = this.catalog.models.find((m) => m.id === named && m.kind === kind) ?? null;
    const isId = MODEL_ID_RE.test(named);
    const dir = join(this.root, named);
    const present = isId && existsSync(join(dir, kind === 'vqgan' ? 'last.ckpt' : 'config.json'));
    if (kind !== 'vqgan') {
      if (present) return resolved(named, dir, entry);
      throw new StudioError(
        isId ? 'ModelNotInstalled' : 'NotFound',
        isId
          ? `model "${named}" is not installed (no ${join(dir, 'config.json')}): download it on the Models page ` +
              `(or: fstudio models pull ${named}), or choose a model folder`
          : `no model folder "${named}"`,
      );
    }
    if (!entry) {
      // A VQGAN folder of the user's own under models/ (last.ckpt, with its model.yaml).
      if (present) return resolved(named, dir, null);
      const known = this.catalog.models.filter((m) => m.kind === kind).map((m) => m.id);
      throw new StudioError(
        'NotFound',
        `model "${named}" is not a file, a folder, or a VQGAN in the catalog (${known.join(', ')}).`,
      );
    }
    const info = await this.info(entry.id);
    if (info.state !== 'installed')
      throw new StudioError(
        'ModelNotInstalled',
        `VQGAN "${entry.id}" is not installed (${info.state}): download it on the Models page ` +
          `(or: fstudio models pull ${entry.id}), or choose a folder or last.ckpt of your own.`,
      );
    return resolved(entry.id, this.modelDir(entry.id), entry);
  }

  // ---------- pull / cancel ----------

  private urlsFor(e: CatalogEntry, f: CatalogFile, thirdParty: boolean): string[] {
    const own = this.extraMirrors.map((b) => `${b}/${e.id}/${f.name}`);
    if (this.mirrorsOnly) return own;
    return [...own, ...f.urls.filter((u) => thirdParty || !hostOf(this.catalog, u)?.thirdParty)];
  }

  /** Queues the download of every file not yet in place; a second pull of the same model joins the first. */
  pull(id: string): PullHandle {
    const e = this.entry(id);
    const running = this.pulls.get(id);
    if (running) return { jobId: running.jobId, done: running.done };

    const pull: Pull = { jobId: `pull-${e.id}-${++this.seq}`, ctl: new AbortController(), discard: false } as Pull;
    pull.done = (async () => {
      // Another process (the app, `fstudio serve`, a second `fstudio models pull`) writing the
      // same .part files would interleave them: one pull per model folder, machine-wide.
      const dir = this.modelDir(id);
      await mkdir(dir, { recursive: true });
      const lock = acquireFolderLock(dir);
      if (!lock.held) throw busy(e, lock.holder);
      try {
        return await this.runPull(e, pull);
      } finally {
        lock.release();
      }
    })();
    this.pulls.set(id, pull);
    const settle = () => {
      if (this.pulls.get(id) === pull) this.pulls.delete(id);
    };
    pull.done.then(settle, (err: unknown) => {
      settle();
      // The last progress event carries the outcome in words (what failed, what to do next), also
      // for failures before any download started (another process holds the model folder).
      const last = pull.handle?.progress();
      this.emit('progress', {
        modelId: e.id,
        jobId: pull.jobId,
        files: last?.files ?? [],
        bytes: last?.bytes ?? 0,
        total: last?.total ?? null,
        speed: 0,
        etaSeconds: null,
        stalled: false,
        state: err instanceof StudioError && err.code === 'Cancelled' ? 'cancelled' : 'failed',
        message: (err as Error).message,
      });
    });
    return { jobId: pull.jobId, done: pull.done };
  }

  private async runPull(e: CatalogEntry, pull: Pull): Promise<ModelInfo> {
    const id = e.id;
    const before = await this.info(id);
    const todo = e.files.filter((f) => before.files.find((x) => x.name === f.name)!.state !== 'present');
    const thirdParty = this.thirdPartyMirrors();
    const unreachable = todo.filter((f) => !f.optional && this.urlsFor(e, f, thirdParty).length === 0);
    if (unreachable.length > 0) {
      const hosts = [...new Set(unreachable.flatMap((f) => f.urls).map((u) => hostOf(this.catalog, u)?.name ?? u))];
      throw new StudioError(
        'NoMirror',
        `${e.title} can be downloaded only from ${hosts.join(' and ')}, which ${hosts.length === 1 ? 'is a third-party host' : 'are third-party hosts'} ` +
          `(not its publisher's), and third-party mirrors are turned off. To use ${hosts.length === 1 ? 'it' : 'them'}, turn them on ` +
          `(Settings, Model downloads; or fstudio models pull --third-party-mirrors), or get the files another way and import them.`,
      );
    }
    const handle = this.downloader.enqueue(
      todo
        .filter((f) => this.urlsFor(e, f, thirdParty).length > 0)
        .map((f) => ({
          name: f.name,
          urls: this.urlsFor(e, f, thirdParty),
          dest: this.filePath(id, f.name),
          sha256: f.sha256,
          linkedEtag: f.verify === 'hf-linked-etag',
          // Only the catalog's own (Hugging Face) URLs: an extra mirror's X-Linked-Etag proves nothing.
          linkedEtagUrls: f.urls,
          size: f.size,
          optional: f.optional,
        })),
      {
        jobId: pull.jobId,
        signal: pull.ctl.signal,
        onProgress: (p) => this.emit('progress', { modelId: e.id, ...p }),
        onFile: (r) => this.record(id, r),
      },
    );
    pull.handle = handle;
    if (pull.ctl.signal.aborted) handle.cancel(pull.discard);
    try {
      await handle.done;
    } catch (err) {
      throw pullError(e, err);
    }
    this.emit('changed', { id: e.id, reason: 'pull' });
    return this.info(id);
  }

  private async record(id: string, r: FileResult): Promise<void> {
    await this.updateState(id, (s) => {
      s.files[r.name] = {
        sha256: r.sha256,
        bytes: r.bytes,
        verification: r.verifiedBy === 'none' ? 'recorded' : r.verifiedBy,
        source: r.url,
        recordedAt: new Date().toISOString(),
      };
    });
  }

  /** Stops a pull; its .part files stay for resume unless `discard`. False when none was running. */
  cancel(id: string, discard = false): boolean {
    this.entry(id);
    const p = this.pulls.get(id);
    if (!p) return false;
    p.discard ||= discard;
    if (p.handle) p.handle.cancel(p.discard);
    else p.ctl.abort();
    return true;
  }

  // ---------- import ----------

  /**
   * The API's import: `name` is a file or folder inside the imports folder (`<dataDir>/imports/`),
   * given relative to it. Absolute paths, `..`, and links that lead out of the imports folder are
   * refused without looking at where they lead, so no path outside the data folder is reachable.
   */
  async import(id: string, name: string, as?: string): Promise<ModelImportReport> {
    const e = this.entry(id);
    const dir = this.importsDir;
    const where = `Put ${e.id}'s files in ${dir} and give the folder or file name (e.g. "${e.id}").`;
    const parts = name.split(/[\\/]+/);
    if (
      name.trim() === '' ||
      name.includes('\0') ||
      posix.isAbsolute(name) ||
      win32.isAbsolute(name) ||
      isAbsolute(name) ||
      parts.includes('..')
    )
      throw new StudioError(
        'BadRequest',
        `"${name}" is not a name inside the imports folder: only names relative to it are accepted (no absolute paths, no ".."). ${where}`,
      );
    const src = resolve(dir, name);
    if (!src.startsWith(dir + sep))
      throw new StudioError('BadRequest', `"${name}" is not a name inside the imports folder. ${where}`);
    await mkdir(dir, { recursive: true });
    if ((await lstat(src).catch(() => null)) === null)
      throw new StudioError('NotFound', `Nothing named "${name}" in the imports folder. ${where}`);
    // Links are followed only as far as they stay inside: one leading out (or nowhere) gets the
    // same answer whatever is at the other end.
    const realDir = await realpath(dir).catch(() => dir);
    /** The real path of `p` when it is inside the imports folder, else null. */
    const inside = async (p: string) => {
      const real = await realpath(p).catch(() => null);
      return real !== null && real.startsWith(realDir + sep) ? real : null;
    };
    const outside = () =>
      new StudioError(
        'BadRequest',
        `"${name}" in the imports folder is (or holds) a link that leads outside it; only files inside the imports folder can be imported. ${where}`,
      );
    if ((await inside(src)) === null) throw outside();
    return this.importFrom(e, src, as, async (from) => {
      const real = await inside(from);
      if (real === null) throw outside();
      return real;
    });
  }

  /**
   * The CLI's import (`fstudio models import <id> <path>`, run by the local user): copies any local
   * file or folder into the model's folder.
   */
  async importLocal(id: string, source: string, as?: string): Promise<ModelImportReport> {
    const e = this.entry(id);
    const src = resolve(source);
    if ((await stat(src).catch(() => null)) === null)
      throw new StudioError('NotFound', `Nothing to import at ${src}: no such file or folder.`);
    return this.importFrom(e, src, as);
  }

  /**
   * Copies a file or folder into the model's folder, hashing each file (and checking it against the
   * catalog's SHA-256 where there is one). A folder is matched by the catalog's file names (or their
   * base names); a single file by its name, its extension, or `as`. `check` vets each file first and
   * gives its real path, which is what is then copied (copyChecked), never `from` again.
   */
  private async importFrom(
    e: CatalogEntry,
    src: string,
    as: string | undefined,
    check?: (from: string) => Promise<string>,
  ): Promise<ModelImportReport> {
    const id = e.id;
    if (this.pulls.has(id))
      throw new StudioError('Busy', `${e.id} is being downloaded. Cancel the pull first, then import.`);
    let st;
    try {
      st = await stat(src);
    } catch {
      throw new StudioError('NotFound', `Nothing to import at ${src}: no such file or folder.`);
    }
    const pairs: { file: CatalogFile; from: string }[] = [];
    // With a `check`, a link counts as there whether or not its target exists (the check then
    // refuses it), so what is found never depends on anything outside.
    const there = async (p: string) =>
      check ? (await lstat(p).catch(() => null))?.isDirectory() === false : (await sizeOrNull(p)) !== null;
    if (st.isDirectory()) {
      const names = new Set(await readdir(src));
      for (const f of e.files) {
        if (as && f.name !== as) continue;
        const nested = join(src, ...f.name.split('/'));
        if (await there(nested)) pairs.push({ file: f, from: nested });
        else if (names.has(basename(f.name)) && (await there(join(src, basename(f.name)))))
          pairs.push({ file: f, from: join(src, basename(f.name)) });
      }
      if (pairs.length === 0)
        throw new StudioError(
          'NotFound',
          `${src} has none of ${e.id}'s files (${e.files.map((f) => f.name).join(', ')}).`,
        );
    } else if (st.isFile()) {
      pairs.push({ file: matchFile(e, src, as), from: src });
    } else throw new StudioError('BadRequest', `${src} is neither a file nor a folder.`);

    const reals = new Map<string, string>();
    if (check) for (const { from } of pairs) reals.set(from, await check(from));
    const imported: ModelImportReport['imported'] = [];
    for (const { file, from } of pairs) {
      const dest = this.filePath(id, file.name);
      await mkdir(resolve(dest, '..'), { recursive: true });
      const tmp = `${dest}.import-${process.pid}.tmp`;
      try {
        const real = reals.get(from);
        if (check && real !== undefined) await copyChecked(from, real, tmp, check);
        else await copyFile(from, tmp);
        const { sha256, bytes } = await hashFile(tmp);
        if (file.sha256 && sha256 !== file.sha256)
          throw new StudioError(
            'ChecksumMismatch',
            `${from} is not ${e.id}'s ${file.name}: its SHA-256 is ${sha256} but the catalog says ${file.sha256}. Nothing was imported for it.`,
          );
        await rename(tmp, dest);
        const verification: FileVerification = file.sha256 ? 'sha256' : 'recorded';
        await this.updateState(id, (s) => {
          s.files[file.name] = { sha256, bytes, verification, source: from, recordedAt: new Date().toISOString() };
        });
        imported.push({ name: file.name, from, sha256, verification });
      } finally {
        await rm(tmp, { force: true });
      }
    }
    this.emit('changed', { id, reason: 'import' });
    const model = await this.info(id);
    const missing = model.files.filter((f) => !f.optional && f.state !== 'present').map((f) => f.name);
    return { id, imported, missing, model };
  }

  // ---------- verify ----------

  /** Re-hashes every present file against the catalog's SHA-256, else the recorded one. */
  async verify(id: string, signal?: AbortSignal): Promise<VerifyReport> {
    const e = this.entry(id);
    const state = await this.readState(id);
    const files: VerifyReport['files'] = [];
    for (const f of e.files) {
      const path = this.filePath(id, f.name);
      if ((await sizeOrNull(path)) === null) {
        files.push({
          name: f.name,
          result: 'missing',
          sha256: null,
          expected: f.sha256 ?? state.files[f.name]?.sha256 ?? null,
          verification: null,
          message: f.optional ? 'not downloaded (optional)' : 'missing: download the model again',
        });
        continue;
      }
      const { sha256, bytes } = await hashFile(path, signal);
      const rec = state.files[f.name];
      const expected = f.sha256 ?? rec?.sha256 ?? null;
      const verification: FileVerification | null = f.sha256 ? 'sha256' : (rec?.verification ?? null);
      if (expected === null) {
        await this.updateState(id, (s) => {
          s.files[f.name] = {
            sha256,
            bytes,
            verification: 'recorded',
            source: 'verify',
            recordedAt: new Date().toISOString(),
          };
        });
        files.push({
          name: f.name,
          result: 'recorded',
          sha256,
          expected: null,
          verification: 'recorded',
          message: 'no hash to check against: recorded now (recorded, not verified)',
        });
      } else if (sha256 !== expected) {
        files.push({
          name: f.name,
          result: 'mismatch',
          sha256,
          expected,
          verification,
          message:
            `changed or damaged: SHA-256 ${sha256}, expected ${expected} (${f.sha256 ? 'catalog' : 'recorded when it was installed'}). ` +
            'Delete the model and download it again.',
        });
      } else {
        if (rec && rec.bytes !== bytes) await this.updateState(id, (s) => (s.files[f.name]!.bytes = bytes));
        files.push({
          name: f.name,
          result: 'ok',
          sha256,
          expected,
          verification,
          message:
            verification === 'sha256'
              ? 'matches the published SHA-256'
              : verification === 'hf-linked-etag'
                ? 'matches the SHA-256 Hugging Face sent when it was downloaded'
                : 'matches the hash recorded when it was installed (recorded, not verified)',
        });
      }
    }
    this.emit('changed', { id, reason: 'verify' });
    const ok = files.every(
      (f) =>
        f.result === 'ok' ||
        f.result === 'recorded' ||
        (f.result === 'missing' && e.files.find((x) => x.name === f.name)?.optional),
    );
    return { id, ok, files };
  }

  // ---------- remove ----------

  /** Deletes a model's folder (a running pull is cancelled and its parts discarded first). */
  async remove(id: string): Promise<{ removedBytes: number }> {
    const dir = this.modelDir(id);
    if (this.cancel(id, true)) await this.pulls.get(id)?.done.catch(() => {});
    const lock = existsSync(dir) ? acquireFolderLock(dir) : null;
    if (lock && !lock.held) throw busy(this.entry(id), lock.holder);
    lock?.release();
    const removedBytes = await this.serial(id, async () => {
      let bytes = await folderBytes(dir);
      await rm(dir, { recursive: true, force: true });
      // The model's converted weights (GBs for a torch checkpoint) go with it.
      for (const f of await this.cacheFiles(id)) {
        bytes += (await sizeOrNull(f)) ?? 0;
        await rm(f, { force: true });
      }
      return bytes;
    });
    this.emit('changed', { id, reason: 'remove' });
    return { removedBytes };
  }

  /**
   * A model's files in the weights cache (weightsCacheFile: by catalog id, or `vqgan-<key>` /
   * `folder-<key>` by its folder's path); with their temp files
   * (`.<name>.<pid>.<rand>.tmp`) from a conversion that was cut off.
   */
  private async cacheFiles(id: string): Promise<string[]> {
    const dir = this.modelDir(id);
    const names = new Set(
      [
        this.weightsCacheFile('clip', dir, id),
        this.weightsCacheFile('vqgan', dir, id),
        this.weightsCacheFile('clip', dir, null),
      ].map((f) => basename(f)),
    );
    let present: string[];
    try {
      present = await readdir(this.weightsCacheDir);
    } catch {
      return [];
    }
    return present
      .filter((f) => names.has(f) || [...names].some((n) => f.startsWith(`.${n}.`) && f.endsWith('.tmp')))
      .map((f) => join(this.weightsCacheDir, f));
  }

  /** Cancels running pulls (keeping their .part files) and waits for them to stop. */
  async close(): Promise<void> {
    const running = [...this.pulls.entries()];
    for (const [id] of running) this.cancel(id, false);
    await Promise.all(running.map(([, p]) => p.done.catch(() => {})));
  }
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const d of entries) {
    const p = join(dir, d.name);
    if (d.isDirectory()) total += await folderBytes(p);
    else total += (await sizeOrNull(p)) ?? 0;
  }
  return total;
}

/** Which catalog file a single imported file is: `as`, else the same base name, else the one file with its extension. */
function matchFile(e: CatalogEntry, src: string, as?: string): CatalogFile {
  const names = e.files.map((f) => f.name).join(', ');
  if (as) {
    const f = e.files.find((x) => x.name === as || basename(x.name) === as);
    if (!f) throw new StudioError('BadRequest', `${e.id} has no file "${as}". Its files: ${names}.`);
    return f;
  }
  const byName = e.files.filter((f) => basename(f.name) === basename(src));
  if (byName.length === 1) return byName[0]!;
  const ext = extname(src).toLowerCase();
  const byExt = ext ? e.files.filter((f) => extname(f.name).toLowerCase() === ext) : [];
  if (byExt.length === 1) return byExt[0]!;
  throw new StudioError(
    'BadRequest',
    `Cannot tell which of ${e.id}'s files ${basename(src)} is (${names}). Name it with --as <file>.`,
  );
}

function busy(e: CatalogEntry, holder: number | null): StudioError {
  return new StudioError(
    'Busy',
    `Another Foundation Studio process${holder ? ` (pid ${holder})` : ''} is downloading ${e.id}. ` +
      `Wait for it to finish or stop it, then try again.`,
  );
}

function pullError(e: CatalogEntry, err: unknown): StudioError {
  if (err instanceof DownloadError) {
    if (err.code === 'cancelled')
      return new StudioError(
        'Cancelled',
        `The download of ${e.title} was stopped; what has arrived is kept, and downloading again resumes it.`,
      );
    if (err.code === 'disk-full') return new StudioError('DiskFull', err.message);
    if (err.code === 'io') return new StudioError('WriteFailed', err.message);
    // One piece of advice, after the facts: the downloader's message says only what happened.
    const advice = isOffline(err)
      ? 'Check the internet connection, then download again: what has arrived is kept, so it resumes.'
      : 'Try again later: what has arrived is kept, so it resumes.';
    return new StudioError('DownloadFailed', `Could not download ${e.title} (${e.id}): ${err.message}\n${advice}`);
  }
  if (err instanceof StudioError) return err;
  return new StudioError('DownloadFailed', `Could not download ${e.id}: ${(err as Error).message}`);
}

/**
 * Copies the file at `real` (the real path `check` gave for `from`) to `to` without following links a
 * second time: the last component is opened with O_NOFOLLOW, and the opened file must still be what
 * `check` finds at `real` (same device and inode), so swapping a link or a parent folder between the
 * check and the copy cannot make it read a file outside.
 */
async function copyChecked(
  from: string,
  real: string,
  to: string,
  check: (p: string) => Promise<string>,
): Promise<void> {
  const changed = () =>
    new StudioError(
      'BadRequest',
      `${from} changed while it was being imported; nothing was imported for it. Try again.`,
    );
  // O_NONBLOCK: a FIFO put in the imports folder is refused below rather than waited on.
  const flags = fsConstants.O_RDONLY | (fsConstants.O_NOFOLLOW ?? 0) | (fsConstants.O_NONBLOCK ?? 0);
  const fh = await open(real, flags).catch(async () => {
    await check(real); // a link that now leads outside gets the same answer as before
    throw changed();
  });
  try {
    const opened = await fh.stat();
    const again = await check(real);
    const there = await stat(again);
    if (!opened.isFile())
      throw new StudioError('BadRequest', `${from} is not a regular file; nothing was imported for it.`);
    if (again !== real || there.dev !== opened.dev || there.ino !== opened.ino) throw changed();
    await pipeline(fh.createReadStream({ start: 0, autoClose: false }), createWriteStream(to));
  } finally {
    await fh.close();
  }
}
