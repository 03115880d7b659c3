// openStudio(): the application services behind every transport. It opens the data folder (the
// database first, then this process's registration, a cheap probe of the database and the recovery
// of runs; the integrity check and the sweeps of files run after, in the background) and
// composes the handler groups of handlers/*.ts, one per domain of the StudioApi, over one
// StudioContext. The transports validate arguments with the zod schemas of api.ts first.
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { StudioError, type EventName, type EventPayload, type StudioHandlers } from '../../shared/api.js';
import { AssetFiles, SHA256_RE } from './assets.js';
import { StudioCompute } from './compute.js';
import { closedError, Mutex, type StudioContext } from './context.js';
import { classifyHandlers } from './handlers/classify.js';
import { galleryHandlers } from './handlers/gallery.js';
import { generateHandlers } from './handlers/generate.js';
import { historyHandlers } from './handlers/history.js';
import { jobHandlers } from './handlers/jobs.js';
import { modelHandlers } from './handlers/models.js';
import { promptHandlers } from './handlers/prompt.js';
import { PromptService } from './prompt/service.js';
import { ClassifyService } from './classify/service.js';
import { systemHandlers } from './handlers/system.js';
import { History } from './history.js';
import { ForeignWrites } from './history-watch.js';
import { HistoryReader } from './history-reader.js';
import { ImportDecoder } from './import-decoder.js';
import { THUMB_MIME } from './images.js';
import { GenerationService } from './jobs/generation.js';
import { JobManager } from './jobs/manager.js';
import { LabStore } from './lab-store.js';
import { FolderBusyError, registerOpen, type OpenRegistration } from './lock.js';
import { RunnerSet } from '../engine/runtime/runner.js';
import { ModelManager } from './models/manager.js';
import { NOT_CHECKED, openReportProblems } from './open-report.js';
import { DataFolderCheck, emptyReport, recoverRuns } from './recovery.js';
import { WatchService } from './watch.js';
import { SettingsStore } from './settings.js';
import type { AssetVariant, OpenReport, Studio, StudioOptions } from './types.js';

export type { OpenReport, Studio, StudioOptions } from './types.js';

export const DB_FILE = 'history.db';

/** A Studio as openStudio makes it: with the report of its open-time checks always present. */
export interface StudioService extends Studio {
  /** The report of the data folder's check, filled in as the background check goes. */
  readonly openReport: OpenReport;
  /** Resolves with the report once the background check has finished (or stopped, and why). */
  readonly checked: Promise<OpenReport>;
  /** The watched folders. */
  readonly watch: WatchService;
  /** The generation queue and runs (the CLI runs its own run through it). */
  readonly generation: GenerationService;
  /** Prompt Lab (the CLI and the SDK run prompts through it, with model folders allowed). */
  readonly prompt: PromptService;
  /** Classify (the CLI and the SDK classify folders and files through it, with model folders allowed). */
  readonly classify: ClassifyService;
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
  const report: OpenReport = emptyReport(NOT_CHECKED, 'running');
  const mutex = new Mutex();
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
    // Reads a few pages, not every one: PRAGMA quick_check runs in the background (DataFolderCheck).
    history.probe();
    // Runs left running by a process that is gone: only when no other process has the folder open.
    await lock.sweep(
      async () => recoverRuns(history, report),
      (why) => (report.sweep = { skipped: why }),
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

  // Another process's writes (the CLI's import, a CLI run) reach open windows as the same event.
  const foreign = new ForeignWrites(history, () => emit('galleryChanged', { reason: 'update', ids: [] }));

  const models = new ModelManager(dataDir, {
    extraMirrors: (process.env.FSTUDIO_MODEL_MIRROR ?? '').split(/[,\s]+/).filter(Boolean),
    mirrorsOnly: process.env.FSTUDIO_MODEL_MIRROR_ONLY === '1',
    thirdPartyMirrors: () => settings.get().thirdPartyMirrors,
  });
  const runners = new RunnerSet(opts.computeWorker ? { entry: opts.computeWorker } : {});
  const reader = new HistoryReader(join(dataDir, DB_FILE), dataDir);
  // The integrity check and the sweeps, in the background; a process that may not sweep (another
  // has the folder open) skips them, as it did at open.
  const check =
    report.sweep === 'running' ? new DataFolderCheck({ history, files, reader, mutex, lock: lock! }, report) : null;
  const checked = check ? check.done : Promise.resolve(report);
  let closed = false;
  const ctx: StudioContext = {
    dataDir,
    options: opts,
    history,
    lab: new LabStore(history),
    files,
    settings,
    models,
    compute: new StudioCompute(models, runners),
    jobs: new JobManager(emit),
    decoder: new ImportDecoder(),
    reader,
    report,
    checking: () => report.sweep === 'running',
    mutex,
    emit,
    live: () => {
      if (closed) throw closedError();
    },
  };
  const generation = new GenerationService(ctx, { runQueue: opts.runQueue ?? true });
  // Watched folders are followed by the long-lived processes (the app, `fstudio serve`), not by one-shot commands.
  const watch = new WatchService(ctx, { follow: opts.watchFolders ?? opts.runQueue ?? true });
  const prompt = new PromptService(ctx);
  const classify = new ClassifyService(ctx);
  // One group of handlers per domain, composed as api.ts composes the call groups.
  const handlers: StudioHandlers = {
    ...systemHandlers(ctx),
    ...galleryHandlers(ctx),
    ...generateHandlers(ctx, generation),
    ...historyHandlers(ctx),
    ...modelHandlers(ctx),
    ...jobHandlers(ctx),
    ...watch.handlers(),
    ...classifyHandlers(ctx, classify),
    ...promptHandlers(ctx, prompt),
  };
  watch.trashItems = (ids) => handlers.deleteItems({ ids });
  generation.start();
  void checked.then((r) => {
    if (!closed && check) emit('dataFolderChecked', { problems: openReportProblems(r) });
  });
  watch.start();

  return {
    dataDir,
    handlers,
    generation,
    watch,
    prompt,
    classify,
    openReport: report,
    checked,
    on(name, listener) {
      let set = listeners.get(name);
      if (!set) listeners.set(name, (set = new Set()));
      set.add(listener as (p: never) => void);
      const unwatch = name === 'galleryChanged' ? foreign.listen() : null;
      return () => {
        unwatch?.();
        return set.delete(listener as (p: never) => void);
      };
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
      foreign.stop();
      await generation.close(); // a running run pauses, to resume at the next start
      await prompt.close(); // prompt runs end cancelled, their rows kept
      ctx.jobs.close();
      await watch.close();
      check?.stop();
      await ctx.mutex.idle();
      await ctx.decoder.close();
      await reader.close(); // ends a quick_check under way (the check then says it stopped)
      await check?.done;
      await runners.close();
      await models.close();
      history.close();
      lock?.release();
    },
  };
}
