// How the Generate page says things: durations, speeds, estimates and run states in plain words.
import type { CallResult } from '../../../shared/api.js';
import type { RunState } from '../../../shared/runs.js';
import { formatBytes } from '../lib/format.js';

/** "18 ms", "0.4 s", "42 s", "3 min 20 s", "1 h 5 min". */
export function durationWords(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—';
  if (seconds < 0.1) return `${Math.max(1, Math.round(seconds * 1000))} ms`;
  if (seconds < 10) return `${Math.max(0, seconds).toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return s % 60 === 0 || min >= 10 ? `${min} min` : `${min} min ${s % 60} s`;
  return `${Math.floor(min / 60)} h ${min % 60} min`;
}

/** "4.2 it/s", or "1.8 s/it" when a step takes longer than a second (as progress bars of the tools say). */
export function itRateWords(itPerSecond: number | null | undefined): string | null {
  if (itPerSecond === null || itPerSecond === undefined || !Number.isFinite(itPerSecond) || itPerSecond <= 0)
    return null;
  if (itPerSecond >= 1) return `${itPerSecond >= 10 ? itPerSecond.toFixed(0) : itPerSecond.toFixed(1)} it/s`;
  return `${(1 / itPerSecond).toFixed(1)} s/it`;
}

export type Estimate = CallResult<'generateEstimate'>;

/** "about 2 min for 300 steps · 1.2 GB", or why it cannot run here. */
export function estimateWords(e: Estimate, steps: number): string {
  if (e.refusal) return e.refusal;
  const memory = `${formatBytes(e.memoryBytes)} of memory`;
  if (e.secondsPerStep === null) return `${e.gflopPerStep.toFixed(1)} GFLOP a step · ${memory}`;
  const total =
    Number.isFinite(steps) && steps > 0 ? ` · about ${durationWords(e.secondsPerStep * steps)} for ${steps} steps` : '';
  return `${durationWords(e.secondsPerStep)} a step${total} · ${memory}`;
}

export const stateWords: Record<RunState, string> = {
  queued: 'Queued',
  running: 'Running',
  paused: 'Paused',
  failed: 'Failed',
  cancelled: 'Cancelled',
  done: 'Done',
};
