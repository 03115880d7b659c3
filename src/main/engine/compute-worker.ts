// The compute worker's entry (bundled as compute-worker.js; from source, DeviceRunner starts it through
// a tsx bootstrap): serves one device's calls with the engine's task table. See runtime/worker-core.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { tasks } from './tasks.js';
import { serveDevice } from './runtime/worker-core.js';

if (!parentPort) throw new Error('compute-worker.ts is a worker_threads entry; use runnerFor() (runtime/runner.ts)');
serveDevice(parentPort, tasks, (workerData as { epoch: number }).epoch);
