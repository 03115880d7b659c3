// What a user should know from the data-folder check done at open, in words; shown by
// `fstudio doctor`, `fstudio serve` and the System page.
import type { OpenReport } from './types.js';

/** OpenReport.quickCheck until the background check has run it. */
export const NOT_CHECKED = 'not checked yet';

/** `item 4` / `items 4, 7, ...` (at most `max` ids shown). */
function idList(noun: string, ids: readonly number[], max: number): string {
  return `${noun}${ids.length === 1 ? '' : 's'} ${ids.slice(0, max).join(', ')}${ids.length > max ? ', ...' : ''}`;
}

/** What a user should know from an open report, one line each; empty when all is well. */
export function openReportProblems(r: OpenReport): string[] {
  const out: string[] = [];
  if (r.quickCheck !== 'ok' && r.quickCheck !== NOT_CHECKED)
    out.push(
      `The history database failed its integrity check (${r.quickCheck}). Copy the data folder somewhere safe, ` +
        'then move history.db aside to start a fresh history.',
    );
  if (typeof r.sweep === 'object') out.push(`Data folder check skipped: ${r.sweep.skipped}.`);
  if (r.missingFiles.length > 0) {
    const n = r.missingFiles.length;
    const ids = r.missingFiles.flatMap((m) => m.imageIds);
    const runs = [...new Set(r.missingFiles.flatMap((m) => m.runIds))].sort((a, b) => a - b);
    const usedBy = [
      ids.length > 0 ? idList('gallery item', ids, 20) : '',
      runs.length > 0 ? idList('run', runs, 20) : '',
    ]
      .filter(Boolean)
      .join('; ');
    const shown = r.missingFiles
      .slice(0, 5)
      .map((m) => m.path)
      .join(', ');
    out.push(
      `${n} image file${n === 1 ? ' is' : 's are'} missing from the data folder (${usedBy}): ${shown}${n > 5 ? ', ...' : ''}. ` +
        `Their ${runs.length > 0 ? 'gallery entries and runs' : 'gallery entries'} are kept: put the files back ` +
        '(from a backup, or a drive that is not mounted) and they work again.',
    );
  }
  if (r.orphanFilesMoved + r.orphanThumbsMoved > 0)
    out.push(
      `${r.orphanFilesMoved} image file(s) and ${r.orphanThumbsMoved} thumbnail(s) with no gallery entry or run were moved to ` +
        `${r.orphansFolder} (left by an interrupted import, or newer than a restored history.db). ` +
        `They are deleted with the trash after 30 days; move them back to keep them.`,
    );
  if (r.runsInterrupted > 0)
    out.push(
      `${r.runsInterrupted} run${r.runsInterrupted === 1 ? ' was' : 's were'} still running when the studio last stopped ` +
        '(it crashed or was killed) and cannot be resumed: marked failed ("interrupted"). ' +
        'What they had saved (their preview frames) is kept.',
    );
  if (r.runsResumable > 0)
    out.push(
      `${r.runsResumable} generation run${r.runsResumable === 1 ? ' was' : 's were'} still running when the studio ` +
        'last stopped: it goes on from its last snapshot, first in the queue.',
    );
  return out;
}
