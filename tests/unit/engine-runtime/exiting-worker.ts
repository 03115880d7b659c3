// A compute worker with one more task, for the runner's tests: 'test.exit' ends the worker thread
// with the given code, as a worker that dies (out of memory, a fatal error) would, between two runs.
import { parentPort, workerData } from 'node:worker_threads';
import { serveDevice } from '../../../src/main/engine/runtime/worker-core.js';
import { tasks } from '../../../src/main/engine/tasks.js';

serveDevice(
  parentPort!,
  {
    ...tasks,
    'test.exit': async (a: { code: number }) => process.exit(a.code),
  },
  (workerData as { epoch: number }).epoch,
);
