// Runs as jobs: the states a run moves through, which moves are allowed, and the roles an asset
// plays in a run. The history database enforces the same lists (its CHECK constraints and
// History.transitionRun in the main process); the renderer uses them to show a run's state and
// which actions (pause, resume, cancel) it offers. No Node built-ins here: the renderer imports it.
import { z } from 'zod';

/**
 * - queued: waiting for its turn (the queue is the queued runs, oldest first)
 * - running: being computed now
 * - paused: stopped by the user part-way; can be resumed (or put back in the queue) or cancelled
 * - failed: stopped by an error (the run's error says which); terminal
 * - cancelled: stopped by the user; terminal
 * - done: finished (every import, classify and prompt run recorded before jobs existed is done); terminal
 */
export const RunState = z.enum(['queued', 'running', 'paused', 'failed', 'cancelled', 'done']);
export type RunState = z.infer<typeof RunState>;

/**
 * The allowed moves. failed, cancelled and done are terminal: going on from one of them is a
 * new run (a fork, with the old one as its parent), so a finished run's record never changes.
 * queued -> failed is for a job that cannot start (its model was removed while it waited);
 * paused -> queued is a resume while another job holds the device; paused -> failed is a
 * paused job that cannot go on (what it needs to resume is gone).
 */
export const RUN_TRANSITIONS: Readonly<Record<RunState, readonly RunState[]>> = {
  queued: ['running', 'cancelled', 'failed'],
  running: ['paused', 'failed', 'cancelled', 'done'],
  paused: ['running', 'queued', 'cancelled', 'failed'],
  failed: [],
  cancelled: [],
  done: [],
};

export function canTransition(from: RunState, to: RunState): boolean {
  return RUN_TRANSITIONS[from].includes(to);
}

/** failed, cancelled or done: the run will not change state again. */
export function isTerminalRunState(state: RunState): boolean {
  return RUN_TRANSITIONS[state].length === 0;
}

/**
 * What an asset is to a run that holds it (besides the gallery images the run made):
 * - init: the image the run starts from
 * - image-prompt: an image the run steers towards (one row per image; the weights live in the spec)
 * - frame: an intermediate preview taken at `step` (a job can be forked from one)
 * - output: a result the run wrote out (an export, a final image not in the gallery)
 * An asset is kept while any gallery image (live or in the trash) or any run holds it.
 */
export const RunAssetRole = z.enum(['init', 'image-prompt', 'frame', 'output']);
export type RunAssetRole = z.infer<typeof RunAssetRole>;
