// Child process for history-jobs.test.ts: has a data folder open as the app does while it runs a
// job, and waits there until the parent kills it with SIGKILL.
//   node --import tsx job-child.ts <dataDir>
// It starts one run (running, with progress), pauses one and queues one, then prints
// `jobs {"running":<id>,"paused":<id>,"queued":<id>}`.
import { join } from 'node:path';
import { History } from '../../../src/main/studio/history.js';
import { openStudio } from '../../../src/main/studio/index.js';

const [dataDir] = process.argv.slice(2);
if (!dataDir) throw new Error('usage: job-child.ts <dataDir>');
const studio = await openStudio({ dataDir });
// The job runner is not part of the studio yet: a second connection to its database plays it.
const h = History.open(join(dataDir, 'history.db'));
const job = (title: string) =>
  h.enqueueRun({ kind: 'generate', title, spec: { prompt: title }, provenance: {}, createdAt: Date.now() });
const running = job('a lighthouse in a storm');
h.transitionRun(running, { to: 'running' }, Date.now());
h.setRunProgress(running, 40, 300, Date.now());
const paused = job('a paused job');
h.transitionRun(paused, { to: 'running' }, Date.now());
h.transitionRun(paused, { to: 'paused' }, Date.now());
const queued = job('a queued job');
process.stdout.write(`jobs ${JSON.stringify({ running, paused, queued })}\n`);
setInterval(() => void studio, 1000); // the parent kills us in here
