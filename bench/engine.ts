// `npm run bench -- engine` (or `node --import tsx bench/engine.ts`): how close the engine gets to
// what ORT can do on this machine, all measured in this one run.
//   1. peak: a raw ORT MatMul (1024³ fp32, in this thread, best of several runs), GFLOP/s.
//   2. through the engine (graphs from the builder + grad.ts, run in the compute worker): a large
//      MatMul and a VQGAN-sized 3x3 conv (128 -> 128 channels, 256x256, batch 1), forward and input
//      gradient; achieved GFLOP/s (FLOPs from flops.ts) and as a fraction of the peak above.
//   3. the main thread's event-loop lag (setInterval drift, max and p99) while the worker computes,
//      against the same graph run in this thread.
// Options: --provider P (default cpu), --quick (smaller conv, fewer repetitions; a smoke test).
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Builder } from '../src/main/engine/graph/builder.js';
import { countFlops } from '../src/main/engine/graph/flops.js';
import { grad } from '../src/main/engine/graph/grad.js';
import { type Tensor } from '../src/main/engine/graph/ir.js';
import { emitModel } from '../src/main/engine/graph/onnx-proto.js';
import { DeviceRunner } from '../src/main/engine/runtime/runner.js';
import { createSession, ortVersion, type HostTensor, type ProviderName } from '../src/main/engine/runtime/ort.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const provider = (
  args[args.indexOf('--provider') + 1] && args.includes('--provider') ? args[args.indexOf('--provider') + 1] : 'cpu'
) as ProviderName;
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function random(dims: readonly number[], seed: number): HostTensor {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 32 - 0.5;
  }
  return { dtype: 'float32', dims: [...dims], data };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

interface Workload {
  name: string;
  model: Uint8Array;
  flops: number;
  feeds: Record<string, HostTensor>;
}

/** y = A·B, and the gradient of sum(y * G) with respect to A (= G·Bᵀ). */
function matmulWorkloads(n: number): Workload[] {
  const fwd = new Builder('matmul');
  const a = fwd.input('a', [n, n]);
  const y = fwd.matmul(a, fwd.param('b', random([n, n], 2)));
  const bwd = new Builder('matmul_grad');
  const a2 = bwd.input('a', [n, n]);
  const g = bwd.input('g', [n, n]);
  const loss = bwd.sum(bwd.mul(bwd.matmul(a2, bwd.param('b', random([n, n], 2))), g));
  const [da] = grad(bwd, loss, [a2]);
  return [
    {
      name: `MatMul ${n}³ forward`,
      model: emitModel(fwd.graph, { outputs: { y } }),
      flops: countFlops(fwd.graph, [y]).total,
      feeds: { a: random([n, n], 1) },
    },
    {
      name: `MatMul ${n}³ input gradient`,
      model: emitModel(bwd.graph, { outputs: { da: da! } }),
      flops: countFlops(bwd.graph, [da!]).total,
      feeds: { a: random([n, n], 1), g: random([n, n], 3) },
    },
  ];
}

/** A VQGAN decoder block's 3x3 conv, and the gradient of sum(conv(x) * G) with respect to x. */
function convWorkloads(c: number, hw: number): Workload[] {
  const shape = [1, c, hw, hw];
  const conv = (b: Builder, x: Tensor) =>
    b.conv(x, b.param('w', random([c, c, 3, 3], 5)), b.param('bias', random([c], 6)), { pads: [1, 1, 1, 1] });
  const fwd = new Builder('conv');
  const y = conv(fwd, fwd.input('x', shape));
  const bwd = new Builder('conv_grad');
  const x = bwd.input('x', shape);
  const g = bwd.input('g', shape);
  const [dx] = grad(bwd, bwd.sum(bwd.mul(conv(bwd, x), g)), [x]);
  // Reference: the same input gradient written by hand as one Conv with the weights transposed
  // (in <-> out) and flipped in space. grad.ts emits this form for stride-1 convs too, so the two
  // rows should agree; a gap is overhead in what grad.ts emits around it.
  const alt = new Builder('conv_grad_as_conv');
  const wFlip = alt.slice(
    alt.transpose(alt.param('w', random([c, c, 3, 3], 5)), [1, 0, 2, 3]),
    [-1, -1],
    [-4, -4],
    [2, 3],
    [-1, -1],
  );
  const dxAlt = alt.conv(alt.input('g', shape), wFlip, null, { pads: [1, 1, 1, 1] });
  return [
    {
      name: `Conv3x3 ${c}ch ${hw}² forward`,
      model: emitModel(fwd.graph, { outputs: { y } }),
      flops: countFlops(fwd.graph, [y]).total,
      feeds: { x: random(shape, 4) },
    },
    {
      name: `Conv3x3 ${c}ch ${hw}² input gradient`,
      model: emitModel(bwd.graph, { outputs: { dx: dx! } }),
      flops: countFlops(bwd.graph, [dx!]).total,
      feeds: { x: random(shape, 4), g: random(shape, 7) },
    },
    {
      name: `Conv3x3 ${c}ch ${hw}² input gradient, hand-built flipped-W Conv`,
      model: emitModel(alt.graph, { outputs: { dx: dxAlt } }),
      flops: countFlops(alt.graph, [dxAlt]).total,
      feeds: { g: random(shape, 7) },
    },
  ];
}

/** Runs f while a 5 ms interval measures how late its ticks fire. */
async function withLag<T>(f: () => Promise<T>): Promise<{ value: T; maxMs: number; p99Ms: number; ticks: number }> {
  const lags: number[] = [];
  const period = 5;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    lags.push(Math.max(0, now - last - period));
    last = now;
  }, period);
  let value: T;
  try {
    value = await f();
    // A run that blocks the thread delays the next tick: let it fire before stopping.
    await new Promise((r) => setTimeout(r, period * 2));
  } finally {
    clearInterval(timer);
  }
  return {
    value,
    maxMs: lags.length ? Math.max(...lags) : Number.NaN,
    p99Ms: lags.length ? quantile(lags, 0.99) : Number.NaN,
    ticks: lags.length,
  };
}

async function main() {
  const reps = quick ? 2 : 5;
  // Other processes on the cores skew every figure; the load average says how much.
  const loadBefore = os.loadavg();
  const cpu = os.cpus();
  console.log(
    `machine: ${cpu[0]?.model ?? '?'} (${cpu.length} logical CPUs), ${os.platform()} ${os.arch()}, node ${process.version}`,
  );
  console.log(`onnxruntime-node ${ortVersion()}, provider ${provider}${quick ? ', --quick' : ''}`);
  console.log(
    `load average before: ${loadBefore.map((l) => l.toFixed(2)).join(' ')} (above the core count, other work shares the cores)\n`,
  );

  // 1. Peak: raw ORT MatMul in this thread. The best run is the closest to what the cores can do
  // (the machine may be shared); the median run is reported beside it.
  const peakWork = matmulWorkloads(1024)[0]!;
  const peakSession = await createSession(peakWork.model, { provider });
  for (let i = 0; i < 3; i++) await peakSession.run(peakWork.feeds);
  const peakTimes: number[] = [];
  for (let i = 0; i < (quick ? 5 : 20); i++) {
    const t0 = performance.now();
    await peakSession.run(peakWork.feeds);
    peakTimes.push(performance.now() - t0);
  }
  await peakSession.release();
  const peakGflops = peakWork.flops / (Math.min(...peakTimes) / 1000) / 1e9;
  const peakMedian = peakWork.flops / (median(peakTimes) / 1000) / 1e9;
  console.log(
    `raw ORT MatMul 1024³ fp32 peak: ${peakGflops.toFixed(1)} GFLOP/s (best of ${peakTimes.length}; median run ${peakMedian.toFixed(1)})\n`,
  );

  // 2. Through the engine, in the compute worker.
  const workloads = [...matmulWorkloads(quick ? 1024 : 2048), ...convWorkloads(quick ? 64 : 128, quick ? 128 : 256)];
  const worker = new DeviceRunner('bench');
  const rows: Record<string, unknown>[] = [];
  let lagWorker: Awaited<ReturnType<typeof withLag>> | null = null;
  let lagInThread: Awaited<ReturnType<typeof withLag>> | null = null;
  try {
    for (const w of workloads) {
      const s = await worker.load(w.model, { provider });
      await worker.run(s, w.feeds); // warm-up (and kernel selection)
      const times: number[] = [];
      const lag = await withLag(async () => {
        for (let i = 0; i < reps; i++) {
          const t0 = performance.now();
          await worker.run(s, w.feeds);
          times.push(performance.now() - t0);
        }
      });
      await worker.release(s);
      const ms = median(times);
      const gflops = w.flops / (ms / 1000) / 1e9;
      rows.push({ workload: w.name, gflop: w.flops / 1e9, medianMs: ms, gflops, fractionOfPeak: gflops / peakGflops });
      if (w.name.startsWith('Conv') && w.name.endsWith('forward')) {
        lagWorker = lag;
        // The same graph in this thread, for contrast: the event loop stalls for the whole run.
        const inThread = await createSession(w.model, { provider });
        await inThread.run(w.feeds);
        lagInThread = await withLag(async () => {
          for (let i = 0; i < Math.min(reps, 3); i++) await inThread.run(w.feeds);
        });
        await inThread.release();
      }
    }
  } finally {
    await worker.close();
  }

  const table = [
    ['workload', 'GFLOP', 'median ms', 'GFLOP/s', 'of peak'],
    ...rows.map((r) => [
      String(r.workload),
      (r.gflop as number).toFixed(2),
      (r.medianMs as number).toFixed(1),
      (r.gflops as number).toFixed(1),
      `${((r.fractionOfPeak as number) * 100).toFixed(0)}%`,
    ]),
  ];
  const widths = table[0]!.map((_, k) => Math.max(...table.map((row) => row[k]!.length)));
  for (const row of table)
    console.log(row.map((cell, k) => (k ? cell.padStart(widths[k]!) : cell.padEnd(widths[k]!))).join('  '));
  console.log(
    `(engine: builder + grad.ts graphs in the compute worker, median of ${reps}, inputs and outputs copied across threads; peak ${peakGflops.toFixed(1)} GFLOP/s)`,
  );
  if (lagWorker && lagInThread) {
    console.log(
      `\nmain-thread event-loop lag during the conv forward runs (5 ms interval):\n` +
        `  session in the compute worker: max ${lagWorker.maxMs.toFixed(1)} ms, p99 ${lagWorker.p99Ms.toFixed(1)} ms (${lagWorker.ticks} ticks)\n` +
        `  same session in the main thread: max ${lagInThread.maxMs.toFixed(1)} ms, p99 ${lagInThread.p99Ms.toFixed(1)} ms (${lagInThread.ticks} ticks)`,
    );
  }
  const result = {
    when: new Date().toISOString(),
    machine: {
      cpu: cpu[0]?.model ?? null,
      logicalCpus: cpu.length,
      platform: os.platform(),
      arch: os.arch(),
      node: process.version,
      loadAverageBefore: loadBefore,
      loadAverageAfter: os.loadavg(),
    },
    onnxruntime: ortVersion(),
    provider,
    quick,
    peak: {
      workload: 'raw ORT MatMul 1024³ fp32, best run',
      gflops: peakGflops,
      medianRunGflops: peakMedian,
      runs: peakTimes.length,
    },
    engine: rows,
    eventLoopLagMs: {
      worker: lagWorker && { max: lagWorker.maxMs, p99: lagWorker.p99Ms, ticks: lagWorker.ticks },
      inThread: lagInThread && { max: lagInThread.maxMs, p99: lagInThread.p99Ms, ticks: lagInThread.ticks },
    },
  };
  mkdirSync(path.join(root, 'bench-results'), { recursive: true });
  const out = path.join(root, 'bench-results', 'engine.json');
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(root, out)}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
