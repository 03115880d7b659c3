// Open-time checks and repairs of the data folder: what a crash, a kill or a hand-edited
// folder can leave behind, put right before the studio serves anything (see the order of
// operations at the top of index.ts for why each case can arise).
import { readFile } from 'node:fs/promises';
import type { AssetFiles } from './assets.js';
import type { AssetRow, History } from './history.js';
import { makeThumbnail } from './images.js';
import type { OpenReport } from './types.js';

export const TRASH_DAYS = 30;
const DAY = 24 * 3600 * 1000;

export function skippedRecovery(quickCheck: string, why: string): OpenReport {
  return {
    quickCheck,
    sweep: { skipped: why },
    tempFilesRemoved: 0,
    orphanFilesRemoved: 0,
    orphanThumbsRemoved: 0,
    thumbsRebuilt: 0,
    missingFiles: [],
    restoredFromTrash: 0,
    trashPurged: 0,
  };
}

/** Open-time repairs: temp files, old trash, orphan files, missing files and thumbnails. */
export async function recover(history: History, files: AssetFiles, quickCheck: string): Promise<OpenReport> {
  const report: OpenReport = {
    quickCheck,
    sweep: 'done',
    tempFilesRemoved: await files.sweepTemps(),
    orphanFilesRemoved: 0,
    orphanThumbsRemoved: 0,
    thumbsRebuilt: 0,
    missingFiles: [],
    restoredFromTrash: 0,
    trashPurged: 0,
  };
  const removeAssetFiles = async (a: AssetRow, token: string | null) => {
    for (const rel of [a.path, a.thumbPath]) {
      if (!rel) continue;
      await files.remove(rel);
      if (token) await files.remove(files.trashRel(token, rel));
    }
  };

  // Trash older than TRASH_DAYS is emptied for good.
  for (const token of history.trashTokensBefore(Date.now() - TRASH_DAYS * DAY)) {
    for (const a of history.purge(token)) await removeAssetFiles(a, token);
    await files.removeTrash(token);
    report.trashPurged++;
  }
  // Trash folders no row points at (a purge cut short) go too.
  const tokensOnDisk = await files.trashTokensOnDisk();
  for (const token of tokensOnDisk) if (!history.tokenExists(token)) await files.removeTrash(token);
  const liveTokens = tokensOnDisk.filter((t) => history.tokenExists(t));

  const rows = new Map(history.allAssets().map((a) => [a.sha256, a]));
  const assetFiles = await files.list('assets');
  const onDisk = new Set<string>();
  for (const f of assetFiles) {
    const a = rows.get(f.sha256);
    if (a && a.path === f.rel) onDisk.add(f.rel);
    else {
      await files.remove(f.rel);
      report.orphanFilesRemoved++;
    }
  }
  const thumbsOnDisk = new Set<string>();
  for (const f of await files.list('thumbs')) {
    const a = rows.get(f.sha256);
    if (a && a.thumbPath === f.rel) thumbsOnDisk.add(f.rel);
    else {
      await files.remove(f.rel);
      report.orphanThumbsRemoved++;
    }
  }
  for (const a of rows.values()) {
    if (!history.isAssetLive(a.sha256)) continue; // trashed: its files are in trash/<token>/
    if (!onDisk.has(a.path)) {
      // A delete/undo cut short may have left the file in a trash folder: bring it back.
      let found = false;
      for (const token of liveTokens) {
        if (await files.move(files.trashRel(token, a.path), a.path)) {
          found = true;
          report.restoredFromTrash++;
          if (a.thumbPath) await files.move(files.trashRel(token, a.thumbPath), a.thumbPath);
          break;
        }
      }
      if (!found) {
        report.missingFiles.push({ sha256: a.sha256, imageIds: history.dropAsset(a.sha256) });
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
  return report;
}
