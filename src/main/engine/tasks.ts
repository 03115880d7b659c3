// The compute worker's task table: every named job that runs entirely in the worker (it builds a model's
// graphs, runs them on the device and streams progress). Imported only by the worker's entry
// (compute-worker.ts); the main thread names tasks through task-client.ts, which imports only its types.
import { gradcheckTasks } from './graph/gradcheck.js';
import { speedTasks } from './graph/speed.js';
import { clipTasks } from './nets/clip-run.js';
import { vqganTasks } from './nets/vqgan-run.js';
import type { TaskTable } from './runtime/worker-core.js';
import { textTasks } from './text/index.js';
import { vqclipTasks } from './vqclip/index.js';

export const tasks = {
  ...clipTasks,
  ...vqganTasks,
  ...gradcheckTasks,
  ...speedTasks,
  ...vqclipTasks,
  ...textTasks,
} satisfies TaskTable;
export type Tasks = typeof tasks;
