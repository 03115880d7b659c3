// What a user should know from the data-folder check done at open, in words; shown by
// `fstudio doctor`, `fstudio serve` and the System page.
import type { OpenReport } from './types.js';

/** What a user should know from an open report, one line each; empty when all is well. */
export function openReportProblems(r: OpenReport): string[] {
  const out: string[] = [];
  if (r.sweep !== 'done') out.push(`Data folder check skipped: ${r.sweep.skipped}.`);
  if (r.missingFiles.length > 0) {
    const n = r.missingFiles.length;
    const ids = r.missingFiles.flatMap((m) => m.imageIds);
    const shown = r.missingFiles
      .slice(0, 5)
      .map((m) => m.path)
      .join(', ');
    out.push(
      `${n} image file${n === 1 ? ' is' : 's are'} missing from the data folder (gallery item${ids.length === 1 ? '' : 's'} ` +
        `${ids.slice(0, 20).join(', ')}${ids.length > 20 ? ', ...' : ''}): ${shown}${n > 5 ? ', ...' : ''}. ` +
        'Their gallery entries are kept: put the files back (from a backup, or a drive that is not mounted) and they work again.',
    );
  }
  if (r.orphanFilesMoved + r.orphanThumbsMoved > 0)
    out.push(
      `${r.orphanFilesMoved} image file(s) and ${r.orphanThumbsMoved} thumbnail(s) with no gallery entry were moved to ` +
        `${r.orphansFolder} (left by an interrupted import, or newer than a restored history.db). ` +
        `They are deleted with the trash after 30 days; move them back to keep them.`,
    );
  return out;
}
