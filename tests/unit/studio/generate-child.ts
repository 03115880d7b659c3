// Child process for generation.test.ts: opens the studio on a data folder (the stand-in generation
// task), queues a slow run and prints "snapshot <runId> <step>" as snapshots are kept, until the parent
// kills it with SIGKILL.
//   node --import tsx generate-child.ts <dataDir>
import { workerEntry } from '../../../src/main/base/worker-entry.js';
import { openStudio } from '../../../src/main/studio/index.js';

const [dataDir] = process.argv.slice(2);
if (!dataDir) throw new Error('usage: generate-child.ts <dataDir>');
const studio = await openStudio({
  dataDir,
  computeWorker: workerEntry(import.meta.url, './fake-generate-worker.ts', 'fake-generate-worker'),
});
const { runId } = await studio.generation.enqueue(
  {
    prompts: 'slow fox',
    imagePrompts: [],
    noisePrompts: [],
    init: { kind: 'random' },
    initWeight: 0,
    width: 32,
    height: 32,
    steps: 500,
    seed: 9,
    cuts: 2,
    cutPow: 1,
    cutMethod: 'original',
    lr: 0.1,
    optimizer: 'adam',
    stepDecay: null,
    clip: 'clip-tiny',
    vqgan: 'vqgan-tiny',
    provider: 'cpu',
    snapshotEvery: 2,
  },
  {},
);
studio.on('jobProgress', (s) => {
  if (s.jobId !== `run-${runId}`) return;
  const steps = studio.generation.detail(runId).snapshots.map((x) => x.step);
  if (steps.length) process.stdout.write(`snapshot ${runId} ${steps.at(-1)}\n`);
});
