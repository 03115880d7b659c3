// Opening the studio services for one CLI command, and calling them through the same
// validation as the transports (so `fstudio` refuses bad input with the same words).
import { type CallArgs, type CallName, type CallResult, StudioError } from '../../shared/api.js';
import { dispatchCall } from '../server/dispatch.js';
import type { OpenReport, Studio } from '../studio/types.js';

export async function openCliStudio(dataDir: string): Promise<Studio> {
  // Loaded on demand so `fstudio --help` does not pay for sharp, SQLite and onnxruntime.
  const { openStudio } = await import('../studio/index.js');
  return openStudio({ dataDir });
}

export async function withStudio<T>(dataDir: string, fn: (studio: Studio) => Promise<T>): Promise<T> {
  const studio = await openCliStudio(dataDir);
  try {
    return await fn(studio);
  } finally {
    await studio.close();
  }
}

export async function callStudio<K extends CallName>(
  studio: Studio,
  name: K,
  args: CallArgs<K>,
): Promise<CallResult<K>> {
  const outcome = await dispatchCall(studio.handlers, name, args, {
    log: (m) => process.stderr.write(`${m}\n`),
  });
  if (!outcome.ok) throw new StudioError(outcome.error.name, outcome.error.message);
  return outcome.result as CallResult<K>;
}

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
