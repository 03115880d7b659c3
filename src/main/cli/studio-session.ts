// Opening the studio services for one CLI command, and calling them through the same
// validation as the transports (so `fstudio` refuses bad input with the same words).
import { type CallArgs, type CallName, type CallResult, StudioError } from '../../shared/api.js';
import { dispatchCall } from '../api/dispatch.js';
import type { StudioService } from '../studio/index.js';
import type { Studio } from '../studio/types.js';

/**
 * The studio for one command. A one-shot command does not run the generation queue (it runs only the run
 * it was asked for); `fstudio serve`, a studio like the app's, does (`runQueue: true`).
 */
export async function openCliStudio(dataDir: string, opts: { runQueue?: boolean } = {}): Promise<StudioService> {
  // Loaded on demand so `fstudio --help` does not pay for sharp, SQLite and onnxruntime.
  const { openStudio } = await import('../studio/index.js');
  return openStudio({ dataDir, runQueue: opts.runQueue ?? false });
}

export async function withStudio<T>(dataDir: string, fn: (studio: StudioService) => Promise<T>): Promise<T> {
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

export { openReportProblems } from '../studio/open-report.js';
