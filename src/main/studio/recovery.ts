// Checks and repairs of the data folder: what a crash, a kill or a hand-edited folder can leave
// behind (see the order of operations at the top of handlers/gallery.ts for why each case can arise).
//
// Only the runs are put right on the open path (recoverRuns: one indexed query). Everything that
// grows with the library runs after open, in the background (DataFolderCheck): PRAGMA quick_check
// and, one shard of assets/ and thumbs/ at a time (256 of them, by the hashes' first two hex
// digits), files against rows. The reading is done by the history worker off the main thread; each
// shard's findings are verified again and repaired on the main thread in a short slice that holds
// the studio's mutex (no import, delete or generation write of this process runs meanwhile) and the
// data folder's sweep lock (no other process opens meanwhile; one that registered since makes the
// next slice stop, as its writes would look like leftovers). A file newer than the check's start
// is in flight and never touched. The report is delivered when the last shard is done.
//
// Nothing here destroys what a user could want back. A row whose file is not found is kept
// and reported (the file may be on a drive that is not mounted, or put back later: the row
// works again then). A file no row points at (written just before a crash, or newer than a
// history.db restored from a backup) is moved to trash/orphans-<time>/, emptied with the rest
// of the trash after TRASH_DAYS. Only temp files of writes cut short are deleted at once.
//
// "Live" assets are those a live image shows or a run holds (History.isAssetLive): both have
// their files in assets/, both are restored from the trash and get thumbnails here.
//
// Jobs: a run still 'running' when no other process has the folder open was cut short (a
// crash, a kill, a power cut). A generation run that kept snapshots (its tokens every few steps)
// resumes from the last of them: it is paused with `resumeAfterRestart` in its provenance, and the
// process that runs the queue puts it back at the head. Any other is marked failed with
// INTERRUPTED_RUN_ERROR: its working state lived in the memory of the process that died.
// Queued and paused runs are left as they are: nothing of theirs was in flight.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { trashTokenTime, type AssetFiles } from './assets.js';
import type { Mutex } from './context.js';
import type { AssetRow, History } from './history.js';
import type { HistoryReader } from './history-reader.js';
import type { ShardScan } from './history-worker.js';
import { makeThumbnail } from './images.js';
import type { OpenRegistration } from './lock.js';
import type { OpenReport } from './types.js';

export const TRASH_DAYS = 30;
export const INTERRUPTED_RUN_ERROR = 'interrupted: the studio stopped while this run was running';
const DAY = 24 * 3600 * 1000;
/** The 256 shards of assets/ and thumbs/, in order. */
export const SHARDS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

export function emptyReport(quickCheck: string, sweep: OpenReport['sweep']): OpenReport {
  return {
    quickCheck,
    sweep,
    tempFilesRemoved: 0,
    orphanFilesMoved: 0,
    orphanThumbsMoved: 0,
    orphansFolder: null,
    thumbsRebuilt: 0,
    missingFiles: [],
    restoredFromTrash: 0,
    trashPurged: 0,
    runsInterrupted: 0,
    runsResumable: 0,
  };
}

export function skippedRecovery(quickCheck: string, why: string): OpenReport {
  return emptyReport(quickCheck, { skipped: why });
}

/**
 * Runs a stopped process left running (only when no other process has the folder open: one that
 * has may be running them). Cheap (an indexed query), so it stays on the open path.
 */
export function recoverRuns(history: History, report: OpenReport, now = Date.now()): void {
  for (const run of history.listRunsByState('running')) {
    if (run.kind !== 'generate' || history.snapshotSteps(run.id).length === 0) continue;
    history.transitionRun(run.id, { to: 'paused' }, now);
    history.setRunSpec(
      run.id,
      { spec: run.spec, provenance: { ...run.provenance, resumeAfterRestart: true }, title: run.title },
      now,
    );
    report.runsResumable++;
  }
  report.runsInterrupted = history.failInterruptedRuns(INTERRUPTED_RUN_ERROR, now).length;
}

export interface CheckDeps {
  history: History;
  files: AssetFiles;
  reader: HistoryReader;
  mutex: Mutex;
  lock: OpenRegistration;
}

const SKIP = Symbol('skip');

/** The background check of a data folder; `done` resolves with its report (also `report`, filled as it goes). */
export class DataFolderCheck {
  readonly done: Promise<OpenReport>;
  #stop = false;
  /** Shards checked so far. */
  shardsDone = 0;

  constructor(
    private readonly deps: CheckDeps,
    readonly report: OpenReport,
  ) {
    this.done = this.#run().catch((e: unknown) => {
      if (this.report.sweep === 'running')
        this.report.sweep = { skipped: `the check stopped: ${(e as Error).message ?? String(e)}` };
      return this.report;
    });
  }

  /**
   * Asks the check to stop after the slice under way (at close; the report says what was not
   * checked). A quick_check under way is not waited for: closing the history worker ends it.
   */
  stop(): void {
    this.#stop = true;
  }

  /** Runs fn holding the mutex and the sweep lock; SKIP (with the report saying why) when it may not. */
  async #slice<T>(fn: () => Promise<T>): Promise<T | typeof SKIP> {
    const { mutex, lock } = this.deps;
    return mutex.run(async () => {
      if (this.#stop) {
        this.report.sweep = {
          skipped: `the studio closed before the check was done (${this.shardsDone} of 256 shards)`,
        };
        return SKIP;
      }
      return lock.sweep<T | typeof SKIP>(fn, (why) => {
        this.report.sweep = { skipped: why };
        return SKIP;
      });
    });
  }

  async #run(): Promise<OpenReport> {
    const { history, files, reader } = this.deps;
    const report = this.report;
    const start = Date.now();
    const cutoff = start - TRASH_DAYS * DAY;

    report.quickCheck = await reader.quickCheck();
    if (report.quickCheck !== 'ok') {
      report.sweep = { skipped: 'the history database failed its integrity check: no file was moved' };
      return report;
    }
    // An unreadable assets/ or thumbs/ must not pass for an empty one: then nothing is moved.
    for (const kind of ['assets', 'thumbs']) {
      try {
        // The shard folders too (a cheap look at at most 256 names): one that cannot be read stops
        // the check before anything moves, as an unreadable assets/ does.
        for (const e of await readdir(join(files.root, kind), { withFileTypes: true }))
          if (/^[0-9a-f]{2}$/.test(e.name) && !e.isDirectory())
            throw new Error(`${join(files.root, kind, e.name)} is not a folder`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        report.sweep = {
          skipped:
            `cannot read ${join(files.root, kind)}: ${(e as Error).message}. No file was moved and no gallery entry changed; ` +
            'make the folder readable (check its permissions and the drive), then open the studio again',
        };
        return report;
      }
    }
    if ((await this.#slice(async () => (report.tempFilesRemoved += await files.sweepTemps({ root: true })))) === SKIP)
      return report;

    // Where a live image's file may be instead: a delete/undo cut short leaves it in trash/<token>/,
    // an earlier sweep against an older history.db in trash/orphans-<time>/, and a history.db
    // restored from a backup can make live again what was deleted (its token then unknown). Every
    // such folder is searched, however old, BEFORE anything old is emptied at the end: a live
    // row's only file must never go with the trash it sat in.
    const elsewhere = [...(await files.trashTokensOnDisk()), ...(await files.orphanFoldersOnDisk()).map((o) => o.name)];
    const orphansName = `orphans-${start}`;
    /** Moves a file aside; false when it was gone by then (deleted or moved since the scan). */
    const toOrphans = async (rel: string): Promise<boolean> => {
      if (!(await files.move(rel, `trash/${orphansName}/${rel}`))) return false;
      report.orphansFolder = `trash/${orphansName}`;
      return true;
    };
    const rebuildThumb = async (a: AssetRow) => {
      const thumbRel = a.thumbPath ?? files.thumbRel(a.sha256);
      if (await files.has(thumbRel)) return;
      try {
        await files.write(thumbRel, await makeThumbnail(await readFile(files.abs(a.path)!), a.path));
        history.setThumbPath(a.sha256, thumbRel);
        report.thumbsRebuilt++;
      } catch {
        history.setThumbPath(a.sha256, null);
      }
    };
    const apply = async (scan: ShardScan) => {
      const shaOf = (rel: string) => rel.slice(rel.lastIndexOf('/') + 1, rel.lastIndexOf('/') + 65);
      for (const f of scan.temps)
        if (f.mtimeMs < start) {
          await files.remove(f.rel);
          report.tempFilesRemoved++;
        }
      for (const f of scan.orphanFiles) {
        if (f.mtimeMs >= start || history.getAsset(shaOf(f.rel))?.path === f.rel) continue;
        if (await toOrphans(f.rel)) report.orphanFilesMoved++;
      }
      for (const f of scan.orphanThumbs) {
        if (f.mtimeMs >= start || history.getAsset(shaOf(f.rel))?.thumbPath === f.rel) continue;
        if (await toOrphans(f.rel)) report.orphanThumbsMoved++;
      }
      for (const found of scan.missing) {
        const a = history.getAsset(found.sha256);
        if (!a || !history.isAssetLive(a.sha256)) continue;
        let there = await files.has(a.path);
        for (const folder of elsewhere) {
          if (there) break;
          if (await files.move(`trash/${folder}/${a.path}`, a.path)) {
            there = true;
            report.restoredFromTrash++;
            if (a.thumbPath && !(await files.has(a.thumbPath)))
              await files.move(`trash/${folder}/${a.thumbPath}`, a.thumbPath);
          }
        }
        if (!there) {
          // Kept, not dropped: the file may come back (a backup, a drive not mounted).
          report.missingFiles.push({
            sha256: a.sha256,
            path: a.path,
            imageIds: history.imageIdsOfAsset(a.sha256),
            runIds: history.runIdsOfAsset(a.sha256),
          });
          continue;
        }
        await rebuildThumb(a);
      }
      for (const found of scan.thumbless) {
        const a = history.getAsset(found.sha256);
        if (a && history.isAssetLive(a.sha256)) await rebuildThumb(a);
      }
    };
    for (const shard of SHARDS) {
      // The scan (a directory listing and a stat per file, in the worker) runs without the studio's lock:
      // apply() checks each finding again under it, so imports and deletes do not wait on the disk.
      // (Closing ends a scan under way; the slice then records that the check stopped, and where.)
      const scan = await reader.scanShard(shard).catch((e: unknown) => {
        if (this.#stop) return null;
        throw e;
      });
      const r = await this.#slice(async () => (scan ? apply(scan) : undefined));
      if (r === SKIP) return report;
      this.shardsDone++;
    }

    // Only now, with every live file back in place, is old trash emptied for good: the rows
    // trashed more than TRASH_DAYS ago with their files, then the trash folders no row points at
    // (a purge cut short, or a history.db restored from before the delete) and the orphan
    // folders, once they are as old as the trash keeps anything.
    const purged = await this.#slice(async () => {
      const removeAssetFiles = async (a: AssetRow, token: string | null) => {
        for (const rel of [a.path, a.thumbPath]) {
          if (!rel) continue;
          await files.remove(rel);
          if (token) await files.remove(files.trashRel(token, rel));
        }
      };
      for (const token of history.trashTokensBefore(cutoff)) {
        for (const a of history.purge(token)) await removeAssetFiles(a, token);
        await files.removeTrash(token);
        report.trashPurged++;
      }
      for (const token of await files.trashTokensOnDisk())
        if (!history.tokenExists(token) && !(trashTokenTime(token) >= cutoff)) await files.removeTrash(token);
      for (const o of await files.orphanFoldersOnDisk()) if (o.time < cutoff) await files.removeOrphanFolder(o.name);
    });
    if (purged === SKIP) return report;
    report.sweep = 'done';
    return report;
  }
}
