// Open-time checks and repairs of the data folder: what a crash, a kill or a hand-edited
// folder can leave behind, put right before the studio serves anything (see the order of
// operations at the top of index.ts for why each case can arise).
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
import { readFile } from 'node:fs/promises';
import { trashTokenTime, type AssetFiles } from './assets.js';
import type { AssetRow, History } from './history.js';
import { makeThumbnail } from './images.js';
import type { OpenReport } from './types.js';

export const TRASH_DAYS = 30;
export const INTERRUPTED_RUN_ERROR = 'interrupted: the studio stopped while this run was running';
const DAY = 24 * 3600 * 1000;

function emptyReport(quickCheck: string, sweep: OpenReport['sweep']): OpenReport {
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

/** Open-time repairs: temp files, old trash, orphan files, missing files and thumbnails. */
export async function recover(history: History, files: AssetFiles, quickCheck: string): Promise<OpenReport> {
  const report = emptyReport(quickCheck, 'done');
  const now = Date.now();
  // First, and whatever the files look like: it needs only the database.
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
  report.tempFilesRemoved = await files.sweepTemps();
  const cutoff = now - TRASH_DAYS * DAY;
  const removeAssetFiles = async (a: AssetRow, token: string | null) => {
    for (const rel of [a.path, a.thumbPath]) {
      if (!rel) continue;
      await files.remove(rel);
      if (token) await files.remove(files.trashRel(token, rel));
    }
  };

  // An unreadable assets/ or thumbs/ must not pass for an empty one: then nothing is moved.
  let assetFiles: { sha256: string; rel: string }[];
  let thumbFiles: { sha256: string; rel: string }[];
  try {
    assetFiles = await files.list('assets');
    thumbFiles = await files.list('thumbs');
  } catch (e) {
    report.sweep = {
      skipped:
        `${(e as Error).message}. No file was moved and no gallery entry changed; ` +
        'make the folder readable (check its permissions and the drive), then open the studio again',
    };
    return report;
  }

  const rows = new Map(history.allAssets().map((a) => [a.sha256, a]));
  const orphansName = `orphans-${now}`;
  const toOrphans = async (rel: string) => {
    await files.move(rel, `trash/${orphansName}/${rel}`);
    report.orphansFolder = `trash/${orphansName}`;
  };
  const onDisk = new Set<string>();
  for (const f of assetFiles) {
    const a = rows.get(f.sha256);
    if (a && a.path === f.rel) onDisk.add(f.rel);
    else {
      await toOrphans(f.rel);
      report.orphanFilesMoved++;
    }
  }
  const thumbsOnDisk = new Set<string>();
  for (const f of thumbFiles) {
    const a = rows.get(f.sha256);
    if (a && a.thumbPath === f.rel) thumbsOnDisk.add(f.rel);
    else {
      await toOrphans(f.rel);
      report.orphanThumbsMoved++;
    }
  }

  // Where a live image's file may be instead: a delete/undo cut short leaves it in trash/<token>/,
  // an earlier sweep against an older history.db in trash/orphans-<time>/, and a history.db
  // restored from a backup can make live again what was deleted (its token then unknown). Every
  // such folder is searched, however old, BEFORE anything old is emptied below: a live row's
  // only file must never go with the trash it sat in.
  const elsewhere = [...(await files.trashTokensOnDisk()), ...(await files.orphanFoldersOnDisk()).map((o) => o.name)];
  for (const a of rows.values()) {
    if (!history.isAssetLive(a.sha256)) continue; // only trashed images show it: its files are in trash/<token>/
    if (!onDisk.has(a.path)) {
      let found = false;
      for (const folder of elsewhere) {
        if (await files.move(`trash/${folder}/${a.path}`, a.path)) {
          found = true;
          report.restoredFromTrash++;
          if (a.thumbPath && !thumbsOnDisk.has(a.thumbPath))
            if (await files.move(`trash/${folder}/${a.thumbPath}`, a.thumbPath)) thumbsOnDisk.add(a.thumbPath);
          break;
        }
      }
      if (!found) {
        // Kept, not dropped: the file may come back (a backup, a drive not mounted).
        report.missingFiles.push({
          sha256: a.sha256,
          path: a.path,
          imageIds: history.imageIdsOfAsset(a.sha256),
          runIds: history.runIdsOfAsset(a.sha256),
        });
        continue;
      }
    }
    const thumbRel = a.thumbPath ?? files.thumbRel(a.sha256);
    if (!thumbsOnDisk.has(thumbRel) && !(await files.has(thumbRel))) {
      try {
        const abs = files.abs(a.path)!;
        await files.write(thumbRel, await makeThumbnail(await readFile(abs), a.path));
        history.setThumbPath(a.sha256, thumbRel);
        report.thumbsRebuilt++;
      } catch {
        history.setThumbPath(a.sha256, null);
      }
    }
  }
  // Only now, with every live file back in place, is old trash emptied for good: the rows
  // trashed more than TRASH_DAYS ago with their files, then the trash folders no row points at
  // (a purge cut short, or a history.db restored from before the delete) and the orphan
  // folders, once they are as old as the trash keeps anything.
  for (const token of history.trashTokensBefore(cutoff)) {
    for (const a of history.purge(token)) await removeAssetFiles(a, token);
    await files.removeTrash(token);
    report.trashPurged++;
  }
  for (const token of await files.trashTokensOnDisk())
    if (!history.tokenExists(token) && !(trashTokenTime(token) >= cutoff)) await files.removeTrash(token);
  for (const o of await files.orphanFoldersOnDisk()) if (o.time < cutoff) await files.removeOrphanFolder(o.name);
  return report;
}
