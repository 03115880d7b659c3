// openStudio(): the application services behind every transport. Each StudioApi call is a
// handler here; the transports validate arguments with the zod schemas of api.ts first.
//
// Crash-safety order of operations (so that a kill -9 at any point leaves a consistent
// folder once the open-time sweep has run):
//   import: write asset + thumbnail (temp + rename), then insert rows   -> orphans go to trash/orphans-*
//   delete: mark rows trashed, then move files to trash/<token>/        -> files found either place
//   undo:   move files back, then unmark rows                           -> idem
//   purge:  delete rows, then delete files                              -> orphans go to trash/orphans-*
// The sweep runs only when no other process has the folder open (lock.ts: registerOpen).
import { createHash } from 'node:crypto';
import { readFile, statfs, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import {
  StudioError,
  type EventName,
  type EventPayload,
  type GalleryItem,
  type ImageMetadata,
  type ImportReport,
  type ItemDetail,
  type StudioHandlers,
} from '../../shared/api.js';
import { ortVersion, probeProviders } from '../engine/graph/runtime.js';
import { exifUserComment } from './exifmeta.js';
import { AssetFiles, newTrashToken, SHA256_RE, TRASH_TOKEN_RE } from './assets.js';
import { History, type AssetRow, type CardRow, type ImageRow } from './history.js';
import { convertToPng, inspectImage, makeThumbnail, THUMB_MIME } from './images.js';
import {
  formatA1111,
  insertTextChunks,
  isPng,
  NO_METADATA,
  OUR_KEYWORD,
  ourChunkText,
  parseMetadata,
  readChunks,
  readImageMetadata,
  textKeywords,
} from './pngmeta.js';
import { FolderBusyError, registerOpen, type OpenRegistration } from './lock.js';
import { ModelManager } from './models/manager.js';
import { recover, skippedRecovery } from './recovery.js';
import { openReportProblems } from './open-report.js';
import { SettingsStore } from './settings.js';
import type { AssetVariant, OpenReport, Studio, StudioOptions } from './types.js';

export type { OpenReport, Studio, StudioOptions } from './types.js';

export const DB_FILE = 'history.db';

/** A Studio as openStudio makes it: with the report of its open-time checks always present. */
export interface StudioService extends Studio {
  readonly openReport: OpenReport;
}

let appVersionCache: string | null = null;
/** This app's version from the nearest package.json named foundation-studio (works from src/ and out/). */
export function appVersion(): string {
  if (appVersionCache) return appVersionCache;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'foundation-studio' && pkg.version) return (appVersionCache = pkg.version);
    } catch {
      /* keep walking up */
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return (appVersionCache = '0.0.0');
}

const toBytes = (b: Buffer | Uint8Array): Uint8Array<ArrayBuffer> =>
  new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.byteLength);
const sha256Of = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
/** The last path segment of whatever name a transport passed (a browser gives a bare name, the CLI a path). */
const baseName = (name: string) => name.split(/[\\/]/).filter(Boolean).at(-1) ?? name;

function card(r: CardRow): GalleryItem {
  return {
    id: r.id,
    runId: r.runId,
    kind: r.kind,
    sha256: r.sha256,
    title: r.title,
    width: r.width,
    height: r.height,
    favourite: r.favourite === 1,
    createdAt: r.createdAt,
  };
}

function notFound(id: number): StudioError {
  return new StudioError('NotFound', `No gallery item with id ${id} (it may have been deleted). Refresh the gallery.`);
}

/** Serialises the operations that move files and rows together (import, delete, undo). */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => {});
    return next;
  }
  idle(): Promise<unknown> {
    return this.tail;
  }
}

function chunksReadable(png: Uint8Array): boolean {
  try {
    readChunks(png);
    return true;
  } catch {
    return false;
  }
}

/** JPEG/WebP: AUTOMATIC1111 keeps its infotext in the EXIF UserComment. */
function exifMetadata(exif: Uint8Array | null): ImageMetadata {
  const comment = exif ? exifUserComment(exif) : null;
  if (!comment) return NO_METADATA;
  const m = parseMetadata({ parameters: comment });
  return { ...m, raw: { 'EXIF UserComment': comment } };
}

/** The metadata to show for an image: parsed from its file, else what its run's spec says. */
function metadataOf(row: ImageRow): ImageMetadata {
  if (row.metadata && row.metadata.source !== 'none') return row.metadata;
  const spec = (row.spec ?? {}) as Record<string, unknown>;
  if (typeof spec.prompt === 'string') {
    const parameters: Record<string, string> = {};
    for (const [k, v] of Object.entries(spec))
      if (k !== 'prompt' && k !== 'negativePrompt' && (typeof v === 'string' || typeof v === 'number'))
        parameters[k] = String(v);
    return {
      source: 'foundation-studio',
      prompt: spec.prompt,
      negativePrompt: typeof spec.negativePrompt === 'string' ? spec.negativePrompt : null,
      parameters,
      raw: row.metadata?.raw ?? {},
    };
  }
  return row.metadata ?? NO_METADATA;
}

export async function openStudio(opts: StudioOptions): Promise<StudioService> {
  const dataDir = resolve(opts.dataDir);
  try {
    await mkdir(dataDir, { recursive: true });
  } catch (e) {
    throw new StudioError(
      'DataDirUnavailable',
      `Cannot create the data folder ${dataDir} (${(e as Error).message}). Choose another folder (--data-dir or FSTUDIO_DATA_DIR).`,
    );
  }
  // The database first: a database from a newer app must be refused before anything is touched.
  const history = History.open(join(dataDir, DB_FILE));
  const files = new AssetFiles(dataDir);
  let report: OpenReport;
  let settings: SettingsStore;
  let lock: OpenRegistration | null = null;
  try {
    try {
      lock = await registerOpen(dataDir);
    } catch (e) {
      if (e instanceof FolderBusyError) throw new StudioError('Busy', e.message);
      throw new StudioError(
        'DataDirUnavailable',
        `Cannot register this process in ${join(dataDir, 'locks')} (${(e as Error).message}). ` +
          'Check that the data folder is writable, or choose another (--data-dir or FSTUDIO_DATA_DIR).',
      );
    }
    const quickCheck = history.quickCheck();
    if (quickCheck !== 'ok')
      throw new StudioError(
        'DatabaseCorrupt',
        `The history database ${join(dataDir, DB_FILE)} failed its integrity check (${quickCheck}). ` +
          `Copy the data folder somewhere safe, then move history.db aside to start a fresh history.`,
      );
    report = await lock.sweep(
      () => recover(history, files, quickCheck),
      (why) => skippedRecovery(quickCheck, why),
    );
    settings = await SettingsStore.load(dataDir);
  } catch (e) {
    lock?.release();
    history.close();
    throw e;
  }

  // ---------- events ----------
  const listeners = new Map<EventName, Set<(p: never) => void>>();
  function emit<K extends EventName>(name: K, payload: EventPayload<K>): void {
    for (const l of listeners.get(name) ?? []) {
      try {
        (l as (p: EventPayload<K>) => void)(payload);
      } catch (e) {
        console.error(`[studio] ${name} listener failed:`, e);
      }
    }
  }

  const models = new ModelManager(dataDir, {
    extraMirrors: (process.env.FSTUDIO_MODEL_MIRROR ?? '').split(/[,\s]+/).filter(Boolean),
    mirrorsOnly: process.env.FSTUDIO_MODEL_MIRROR_ONLY === '1',
  });
  models.on('progress', (p) => emit('modelProgress', p));
  models.on('changed', (c) => emit('modelsChanged', c));

  const mutex = new Mutex();
  let closed = false;
  const live = () => {
    if (closed) throw new StudioError('Closed', 'The studio has been closed.');
  };
  const cardOf = (id: number): GalleryItem => {
    const r = history.getCard(id);
    if (!r) throw notFound(id);
    return card(r);
  };
  const liveImage = (id: number): ImageRow => {
    const r = history.getImage(id);
    if (!r || r.trashToken !== null) throw notFound(id);
    return r;
  };
  const provenance = () => ({ appVersion: appVersion(), node: process.versions.node });

  async function importOne(name: string, data: Uint8Array): Promise<{ item: GalleryItem; duplicate: boolean }> {
    live(); // the studio may have been closed while earlier files of the batch were imported
    const fileName = baseName(name);
    const sha256 = sha256Of(data);
    const dup = history.liveImageIdBySha(sha256);
    if (dup !== null) {
      // Its file went missing (see openReport.missingFiles): these are the same bytes, put them back.
      const a = history.getAsset(sha256);
      if (a && files.abs(a.path) && !(await files.has(a.path))) await files.write(a.path, data);
      return { item: cardOf(dup), duplicate: true };
    }
    const img = await inspectImage(data, fileName);
    const thumb = await makeThumbnail(data, fileName); // decodes every pixel: truncation shows up here
    const metadata = img.format === 'png' ? readImageMetadata(data) : exifMetadata(img.exif);
    const assetRel = files.assetRel(sha256, img.ext);
    const thumbRel = files.thumbRel(sha256);
    if (!(await files.has(assetRel))) await files.write(assetRel, data);
    await files.write(thumbRel, thumb);
    const now = Date.now();
    return history.transaction(() => {
      const again = history.liveImageIdBySha(sha256);
      if (again !== null) return { item: cardOf(again), duplicate: true };
      history.upsertAsset({
        sha256,
        path: assetRel,
        mime: img.mime,
        bytes: data.byteLength,
        width: img.width,
        height: img.height,
        thumbPath: thumbRel,
      });
      const firstLine = (metadata.prompt ?? '').split('\n')[0]!.trim();
      const { raw: _raw, ...parsed } = metadata;
      const runId = history.insertRun({
        kind: 'import',
        title: (firstLine || fileName).slice(0, 200),
        spec: { fileName, metadata: parsed },
        provenance: { ...provenance(), importedFrom: fileName, source: metadata.source },
        createdAt: now,
        startedAt: now,
        finishedAt: now,
      });
      const id = history.insertImage(runId, { sha256, fileName, metadata, createdAt: now });
      return { item: cardOf(id), duplicate: false };
    });
  }

  async function moveAssetFiles(a: AssetRow, token: string, direction: 'toTrash' | 'fromTrash'): Promise<void> {
    for (const rel of [a.path, a.thumbPath]) {
      if (!rel) continue;
      const trashRel = files.trashRel(token, rel);
      if (direction === 'toTrash') await files.move(rel, trashRel);
      else if (await files.has(rel)) await files.remove(trashRel);
      else await files.move(trashRel, rel);
    }
  }

  const handlers: StudioHandlers = {
    async getSystemInfo({ probeProviders: probe }) {
      live();
      let freeDiskBytes: number | null = null;
      try {
        const s = await statfs(dataDir);
        freeDiskBytes = Number(s.bavail) * Number(s.bsize);
      } catch {
        freeDiskBytes = null;
      }
      return {
        appVersion: appVersion(),
        node: process.versions.node,
        electron: opts.host?.electron ?? process.versions.electron ?? null,
        chrome: opts.host?.chrome ?? process.versions.chrome ?? null,
        onnxruntime: ortVersion(),
        platform: process.platform,
        arch: process.arch,
        dataDir,
        freeDiskBytes,
        dataFolderProblems: openReportProblems(report),
        providers: probe ? await probeProviders() : [],
      };
    },

    async getSettings() {
      live();
      return settings.get();
    },

    async updateSettings(patch) {
      live();
      const s = await settings.update(patch);
      emit('settingsChanged', s);
      return s;
    },

    async galleryQuery(q) {
      live();
      const { total, rows } = history.query(q);
      return { total, offset: q.offset, items: rows.map(card) };
    },

    async getItem({ id }) {
      live();
      const row = liveImage(id);
      const detail: ItemDetail = {
        item: cardOf(id),
        mime: row.mime,
        bytes: row.bytes,
        fileName: row.fileName,
        note: row.note,
        tags: history.tagsOf(id),
        spec: row.spec,
        status: row.status,
        provenance: row.provenance,
        metadata: metadataOf(row),
      };
      return detail;
    },

    async setFavourite({ id, favourite }) {
      live();
      if (!history.setFavourite(id, favourite)) throw notFound(id);
      emit('galleryChanged', { reason: 'update', ids: [id] });
      return cardOf(id);
    },

    async setNote({ id, note }) {
      live();
      if (!history.setNote(id, note)) throw notFound(id);
      emit('galleryChanged', { reason: 'update', ids: [id] });
      return {};
    },

    async setTags({ id, tags }) {
      live();
      const clean = [...new Set(tags.map((t) => t.trim()).filter(Boolean))];
      if (!history.setTags(id, clean)) throw notFound(id);
      emit('galleryChanged', { reason: 'update', ids: [id] });
      return {};
    },

    deleteItems({ ids }) {
      live();
      return mutex.run(async () => {
        const token = newTrashToken();
        const { ids: done, orphaned } = history.trash(ids, token, Date.now());
        if (done.length === 0)
          throw new StudioError('NotFound', `None of the ${ids.length} item(s) is in the gallery (already deleted?).`);
        for (const a of orphaned) await moveAssetFiles(a, token, 'toTrash');
        emit('galleryChanged', { reason: 'delete', ids: done });
        return { deleted: done.length, undoToken: token };
      });
    },

    undoDelete({ undoToken }) {
      live();
      return mutex.run(async () => {
        const gone = () =>
          new StudioError(
            'NotFound',
            'Nothing to undo for this token: it was already undone, or the trash was emptied.',
          );
        if (!TRASH_TOKEN_RE.test(undoToken)) throw gone();
        const assets = history.assetsOfToken(undoToken);
        if (assets.length === 0) throw gone();
        for (const a of assets) await moveAssetFiles(a, undoToken, 'fromTrash');
        const { ids } = history.untrash(undoToken);
        await files.removeTrash(undoToken);
        emit('galleryChanged', { reason: 'undo', ids });
        return { restored: ids.length };
      });
    },

    async importImages({ files: batch }) {
      live();
      const out: ImportReport = { imported: [], duplicates: [], failed: [] };
      let done = 0;
      for (const f of batch) {
        const name = baseName(f.name);
        try {
          const r = await mutex.run(() => importOne(f.name, f.data));
          if (r.duplicate) out.duplicates.push({ name, item: r.item });
          else out.imported.push(r.item);
        } catch (e) {
          const msg = e instanceof StudioError ? e.message : `${name}: ${(e as Error).message ?? String(e)}`;
          out.failed.push({ name, error: msg });
        }
        emit('importProgress', { done: ++done, total: batch.length, name });
      }
      if (out.imported.length > 0) emit('galleryChanged', { reason: 'import', ids: out.imported.map((i) => i.id) });
      return out;
    },

    async exportItem({ id }) {
      live();
      const row = liveImage(id);
      const abs = files.abs(row.path);
      if (!abs) throw notFound(id);
      const original = await readFile(abs).catch(() => {
        throw new StudioError(
          'FileMissing',
          `The file of item ${id} (${row.path}) is missing from the data folder ${dataDir}. ` +
            'Put it back from a backup, or import the same image again; `fstudio doctor` lists missing files.',
        );
      });
      const label = row.fileName ?? `item ${id}`;
      // A PNG is kept as it is, chunks and all, unless its chunk structure is damaged
      // (libpng tolerates a bad ancillary CRC; our writer does not): then it is re-encoded.
      const png =
        isPng(original) && chunksReadable(original) ? toBytes(original) : toBytes(await convertToPng(original, label));
      const meta = metadataOf(row);
      const ours = ourChunkText({
        prompt: meta.prompt,
        negativePrompt: meta.negativePrompt,
        parameters: meta.parameters,
        source: meta.source,
        app: { name: 'foundation-studio', version: appVersion() },
        run: { id: row.runId, kind: row.kind, createdAt: row.createdAt, spec: row.spec, provenance: row.provenance },
        image: { sha256: row.sha256, fileName: row.fileName, width: row.width, height: row.height },
        note: row.note,
        tags: history.tagsOf(id),
      });
      const texts = [{ keyword: OUR_KEYWORD, text: ours, kind: 'iTXt' as const, compressed: true }];
      // Keep an A1111 chunk the original already has; otherwise write one so other tools can read ours.
      const hasParameters = textKeywords(png).includes('parameters');
      if (!hasParameters && (meta.prompt || Object.keys(meta.parameters).length > 0))
        texts.push({
          keyword: 'parameters',
          text: formatA1111({
            prompt: meta.prompt ?? '',
            negativePrompt: meta.negativePrompt,
            parameters: meta.parameters,
          }),
          kind: 'iTXt',
          compressed: false,
        });
      const out = insertTextChunks(png, texts, [OUR_KEYWORD]);
      const stem = (row.fileName ?? '')
        .replace(/\.[^.]*$/, '')
        .replace(/[^\p{L}\p{N}._ -]+/gu, '_')
        .slice(0, 100);
      return { name: `${stem || `foundation-studio-${id}`}.png`, mime: 'image/png', data: out };
    },

    // ---------- models ----------
    modelsList: () => models.list(),
    async modelPull({ id }) {
      const { jobId, done } = models.pull(id);
      done.catch(() => {}); // the outcome, in words, is the last modelProgress event
      return { jobId };
    },
    modelCancel: async ({ id, discard }) => ({ cancelled: models.cancel(id, discard) }),
    modelImport: ({ id, path, as }) => models.import(id, path, as),
    modelVerify: ({ id }) => models.verify(id),
    modelRemove: ({ id }) => models.remove(id),
  };

  return {
    dataDir,
    handlers,
    openReport: report,
    on(name, listener) {
      let set = listeners.get(name);
      if (!set) listeners.set(name, (set = new Set()));
      set.add(listener as (p: never) => void);
      return () => set.delete(listener as (p: never) => void);
    },
    async assetFile(sha256: string, variant: AssetVariant) {
      if (closed || typeof sha256 !== 'string' || !SHA256_RE.test(sha256)) return null;
      if (variant !== 'file' && variant !== 'thumb') return null;
      const a = history.getAsset(sha256);
      if (!a || !history.isAssetLive(sha256)) return null;
      const rel = variant === 'file' ? a.path : a.thumbPath;
      const abs = rel ? files.abs(rel) : null;
      if (!abs || !(await files.has(rel!))) return null;
      return { path: abs, mime: variant === 'file' ? a.mime : THUMB_MIME };
    },
    async close() {
      if (closed) return;
      closed = true;
      await mutex.idle();
      await models.close();
      history.close();
      lock?.release();
    },
  };
}
