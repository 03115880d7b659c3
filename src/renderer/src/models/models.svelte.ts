// The Models page's state: the catalog with what is on disk (modelsList), and the live progress
// of every pull (modelProgress events), kept for the app's lifetime so leaving the page and
// coming back shows the same bars. Rows are refreshed when the studio says a model changed.
import { SvelteMap } from 'svelte/reactivity';
import type { ModelInfo, ModelProgress, VerifyReport } from '../../../shared/models.js';
import { describeError, toastError } from '../lib/errors.js';
import { getStudio } from '../lib/studio-client.js';

export const models = $state<{ list: ModelInfo[] | null; loading: boolean; error: string | null }>({
  list: null,
  loading: false,
  error: null,
});

/** The latest progress event per model id; the last one of a pull carries its outcome in words. */
export const pulls = new SvelteMap<string, ModelProgress>();

/** The result of the last Verify per model, shown until the model changes again. */
export const verifications = new SvelteMap<string, VerifyReport>();

let started = false;
let refreshing: Promise<void> | null = null;
let again = false;

/** Reloads the list; calls made while one is in flight coalesce into one more. */
export function refreshModels(): Promise<void> {
  if (refreshing) {
    again = true;
    return refreshing;
  }
  models.loading = true;
  refreshing = (async () => {
    try {
      do {
        again = false;
        models.list = await getStudio().modelsList({});
        models.error = null;
      } while (again);
    } catch (e) {
      models.error = describeError(e, 'Loading the model list');
    } finally {
      models.loading = false;
      refreshing = null;
    }
  })();
  return refreshing;
}

/** Subscribes once (the NavBar's badge and the page share it); safe to call again. */
export function startModels(): void {
  if (started) return;
  started = true;
  const studio = getStudio();
  studio.onModelProgress((p) => {
    pulls.set(p.modelId, p);
    // A stopped or failed pull sends no modelsChanged, but may have left files (finished ones, .part).
    if (p.state === 'failed' || p.state === 'cancelled') void refreshModels();
  });
  studio.onModelsChanged(({ id, reason }) => {
    if (reason !== 'verify') verifications.delete(id);
    void refreshModels();
  });
  // Third-party mirrors turned on or off: the cards say which servers are used.
  studio.onSettingsChanged(() => void refreshModels());
  // Events sent while the connection was down are lost: reload what is on disk when it returns.
  let wasClosed = false;
  studio.onConnection((s) => {
    if (s === 'closed' || s === 'unauthorized') wasClosed = true;
    else if (s === 'open' && wasClosed) {
      wasClosed = false;
      void refreshModels();
    }
  });
}

/** A pull that has not reached its outcome yet. */
export function isActive(p: ModelProgress | undefined): p is ModelProgress {
  return p !== undefined && (p.state === 'queued' || p.state === 'running');
}

export const activePulls = (): number => [...pulls.values()].filter(isActive).length;

/** Several models' downloads as one: the bytes that arrived over the bytes there are, from events or the list. */
export function downloadTotals(list: readonly ModelInfo[]): { bytes: number; size: number } {
  let bytes = 0;
  let size = 0;
  for (const m of list) {
    const p = pulls.get(m.id);
    bytes += p?.bytes ?? m.bytesOnDisk;
    size += p?.total ?? m.expectedBytes ?? 0;
  }
  return { bytes, size };
}

/** Whether any of these models is downloading (in this window's events or by the list's word). */
export const anyDownloading = (list: readonly ModelInfo[]): boolean =>
  list.some((m) => isActive(pulls.get(m.id)) || m.downloading);

/** Those of these models whose last download failed. */
export const failedPulls = (list: readonly ModelInfo[]): ModelInfo[] =>
  list.filter((m) => pulls.get(m.id)?.state === 'failed');

/**
 * Starts the download of each of these models (one job each; a model already downloading is joined,
 * not started twice). A failure to start is shown as a toast; the downloads' own progress and failures
 * arrive as modelProgress.
 */
export async function pullAll(list: readonly ModelInfo[]): Promise<void> {
  try {
    for (const m of list) await getStudio().modelPull({ id: m.id });
  } catch (e) {
    toastError(e, 'Starting the download');
  }
}
