// The device runner: sessions in a compute worker, kept tensors, streaming loops and tasks, cancel,
// and a worker that dies mid-call.
import { afterAll, describe, expect, it } from 'vitest';
import { workerEntry } from '../../../src/main/base/worker-entry.js';
import type { HostTensor } from '../../../src/main/engine/graph/ir.js';
import { DeviceRunner, runnerFor, type LoopStep } from '../../../src/main/engine/runtime/runner.js';
import { addModel, tinyModel, type TinyValue } from '../../../src/main/engine/runtime/tiny-model.js';
import { runTask } from '../../../src/main/engine/task-client.js';

const f32 = (dims: number[], fill: (i: number) => number) => {
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = fill(i);
  return { dtype: 'float32' as const, dims, data };
};
const values = (t: HostTensor) => Array.from(t.data as Float32Array);

/** y = x·W·W·…·W (k MatMuls of n×n): heavy enough to take a while on two cores. */
function matmulChain(n: number, k: number): Uint8Array {
  const v = (name: string): TinyValue => ({ name, dtype: 'float32', dims: [n, n] });
  const nodes = Array.from({ length: k }, (_, i) => ({
    op: 'MatMul',
    inputs: [i ? `h${i}` : 'x', 'w'],
    outputs: [i === k - 1 ? 'y' : `h${i + 1}`],
  }));
  return tinyModel({ nodes, inputs: [v('x'), v('w')], outputs: [v('y')] });
}

/** x' = x * a + b, elementwise over [n]: one optimiser-like update per run. */
function affineModel(n: number): Uint8Array {
  const v = (name: string): TinyValue => ({ name, dtype: 'float32', dims: [n] });
  return tinyModel({
    nodes: [
      { op: 'Mul', inputs: ['x', 'a'], outputs: ['xa'] },
      { op: 'Add', inputs: ['xa', 'b'], outputs: ['next'] },
    ],
    inputs: [v('x'), v('a'), v('b')],
    outputs: [v('next')],
  });
}

describe('DeviceRunner', () => {
  const runner = new DeviceRunner('runner-test');
  afterAll(() => runner.close());

  it('loads, runs and releases a session in the worker', async () => {
    const s = await runner.load(addModel(4));
    expect(s.provider).toBe('cpu');
    expect(s.inputNames).toEqual(['x', 'y']);
    const x = f32([4], (i) => i + 1);
    const { outputs, refs } = await runner.run(s, { x, y: x });
    expect(values(outputs.z!)).toEqual([2, 4, 6, 8]);
    expect(refs).toEqual({});
    expect(Array.from(x.data)).toEqual([1, 2, 3, 4]); // copied, not transferred, by default
    await runner.release(s);
    await expect(runner.run(s, { x, y: x })).rejects.toThrow(/no session with handle/);
  });

  it('probes the providers inside the worker', async () => {
    const reports = await runner.probeProviders();
    expect(reports.find((r) => r.name === 'cpu')).toMatchObject({ available: true });
    expect(reports).toHaveLength(5);
  });

  it('transfers feeds when asked', async () => {
    const s = await runner.load(addModel(4));
    const x = f32([4], () => 1);
    const y = f32([4], () => 2);
    const { outputs } = await runner.run(s, { x, y }, { transferFeeds: true });
    expect(values(outputs.z!)).toEqual([3, 3, 3, 3]);
    expect(x.data.length).toBe(0); // detached: ownership moved to the worker
    await runner.release(s);
  });

  it('errors cross as data and the worker stays usable', async () => {
    await expect(runner.load(new Uint8Array([1, 2, 3]))).rejects.toThrow(/could not create the session/);
    const s = await runner.load(addModel(4));
    await expect(runner.run(s, { x: f32([4], () => 0) })).rejects.toThrow(/missing feeds: y/);
    const { outputs } = await runner.run(s, { x: f32([4], () => 1), y: f32([4], () => 1) });
    expect(outputs.z!.data[0]).toBe(2);
    await expect(runner.task('no.such.task', {})).rejects.toThrow(
      /no task named 'no\.such\.task' \(known: clip\.embed/,
    );
    await runner.release(s);
  });

  it('keeps outputs in the worker as refs that feed the next run', async () => {
    const s = await runner.load(addModel(4));
    const one = f32([4], () => 1);
    let acc = (await runner.run(s, { x: one, y: one }, { outputLocations: { z: 'gpu-buffer' } })).refs.z!;
    expect(acc).toMatchObject({ dtype: 'float32', dims: [4], location: 'cpu' });
    for (let i = 0; i < 3; i++) {
      const next = (await runner.run(s, { x: acc, y: one }, { outputLocations: { z: 'gpu-buffer' } })).refs.z!;
      await runner.dispose(acc);
      acc = next;
    }
    expect(values(await runner.read(acc))).toEqual([5, 5, 5, 5]);
    await runner.dispose(acc);
    await expect(runner.read(acc)).rejects.toThrow(/disposed/);
    await runner.release(s);
  });

  it('a resident tensor updated 100 times in the worker reads back equal to the same updates on the host', async () => {
    const n = 257;
    const x0 = f32([n], (i) => Math.sin(i * 1.7) * 3);
    const a = f32([n], (i) => 0.9 + 0.2 * Math.cos(i));
    const b = f32([n], (i) => ((i % 7) - 3) / 10);
    // The host: the same float32 arithmetic, rounded after each operation as ORT's kernels do.
    const host = Float32Array.from(x0.data);
    for (let step = 0; step < 100; step++)
      for (let i = 0; i < n; i++) host[i] = Math.fround(Math.fround(host[i]! * a.data[i]!) + b.data[i]!);

    const s = await runner.load(affineModel(n), { optimization: 'disabled' });
    const z = await runner.upload(x0);
    // In one call: a loop of 100 steps carrying next -> x, streaming every 25th step.
    const seen: number[] = [];
    const r = await runner.loop(s, {
      feeds: { x: z, a, b },
      carry: { next: 'x' },
      steps: 100,
      stream: ['next'],
      every: 25,
      onStep: (m) => seen.push(m.step),
    });
    expect(r).toMatchObject({ steps: 100, stopped: false });
    expect(seen).toEqual([25, 50, 75, 100]);
    expect(values(await runner.read(r.refs.next!))).toEqual(Array.from(host));
    expect(values(await runner.read(z))).toEqual(Array.from(x0.data)); // the caller's ref is never consumed
    // And driven from here, one run per step, the state never leaving the worker.
    let ref = z;
    for (let step = 0; step < 100; step++) {
      const next = (await runner.run(s, { x: ref, a, b }, { outputLocations: { next: 'gpu-buffer' } })).refs.next!;
      if (ref !== z) await runner.dispose(ref);
      ref = next;
    }
    expect(values(await runner.read(ref))).toEqual(Array.from(host));
    await runner.dispose(ref, z, r.refs.next!);
    await runner.release(s);
  });

  it('a loop streams one message per step, in order', async () => {
    const s = await runner.load(addModel(4));
    const steps: LoopStep[] = [];
    const r = await runner.loop(s, {
      feeds: { x: f32([4], () => 0), y: f32([4], (i) => i) },
      carry: { z: 'x' },
      steps: 12,
      stream: ['z'],
      onStep: (m) => steps.push(m),
    });
    expect(steps.map((m) => m.step)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(steps.map((m) => values(m.outputs.z!)[3])).toEqual([3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36]);
    await runner.dispose(r.refs.z!);
    await expect(runner.loop(s, { feeds: {}, carry: { nope: 'x' }, steps: 1 })).rejects.toThrow(
      /carry from 'nope', which is not an output/,
    );
    await runner.release(s);
  });

  it('cancel stops a loop within one step, keeping its state; a queued call is cancelled before it starts', async () => {
    // Steps of ~0.1 s on two cores, long beside the time a message takes between threads.
    const n = 768;
    const s = await runner.load(matmulChain(n, 8), { optimization: 'disabled' });
    const w = f32([n, n], (i) => (i % (n + 1) === 0 ? 1 : 0)); // the identity: x stays x
    const ac = new AbortController();
    let atAbort = 0;
    const seen: number[] = [];
    const loop = runner.loop(s, {
      feeds: { x: f32([n, n], (i) => i % 5), w },
      carry: { y: 'x' },
      steps: 10_000,
      stream: ['y'],
      signal: ac.signal,
      onStep: (m) => {
        seen.push(m.step);
        if (m.step === 3) {
          atAbort = m.step;
          ac.abort();
        }
      },
    });
    // A run queued while the loop holds the device, cancelled before its turn.
    const queued = new AbortController();
    const run = runner.run(s, { x: w, w }, { signal: queued.signal });
    queued.abort();
    await expect(run).rejects.toThrow(/cancelled/);
    const r = await loop;
    expect(r.stopped).toBe(true);
    expect(r.steps).toBeGreaterThanOrEqual(atAbort);
    expect(r.steps).toBeLessThanOrEqual(atAbort + 1); // within one step of the cancel
    expect(seen.at(-1)).toBe(r.steps);
    expect(values(await runner.read(r.refs.y!)).slice(0, 6)).toEqual([0, 1, 2, 3, 4, 0]);
    await runner.dispose(r.refs.y!);
    // An already-aborted signal never reaches the worker.
    await expect(runner.run(s, { x: w, w }, { signal: AbortSignal.abort() })).rejects.toThrow(/cancelled/);
    await runner.release(s);
  });

  it('a task streams progress and stops at its next step when cancelled', async () => {
    const ac = new AbortController();
    const progress: { done: number; total: number }[] = [];
    const task = runTask(
      runner,
      'gradcheck',
      { provider: 'cpu' },
      {
        signal: ac.signal,
        onStream: (p: { done: number; total: number }) => {
          progress.push(p);
          if (p.done === 3) ac.abort();
        },
      },
    );
    await expect(task).rejects.toMatchObject({ name: 'Cancelled' });
    // Cases take milliseconds, so a few more may finish while the cancel crosses to the worker; what
    // matters is that it stops long before the end (one step per case: the loop test times that).
    const total = progress[0]!.total;
    expect(total).toBeGreaterThan(30);
    expect(progress.map((p) => p.done).slice(0, 3)).toEqual([1, 2, 3]);
    expect(progress.at(-1)!.done).toBeLessThan(total / 2);
  });

  it("the main thread's event loop keeps ticking while the worker computes", async () => {
    const n = 768;
    const s = await runner.load(matmulChain(n, 12), { optimization: 'disabled' });
    const x = f32([n, n], (i) => ((i * 7919) % 13) / 13 - 0.5);
    const w = f32([n, n], (i) => ((i * 104729) % 17) / 170);
    await runner.run(s, { x, w }); // warm-up
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const { outputs } = await runner.run(s, { x, w });
    clearInterval(timer);
    expect(outputs.y!.dims).toEqual([n, n]);
    expect(ticks).toBeGreaterThan(0);
    await runner.release(s);
  });
});

describe('a worker that dies mid-call', () => {
  it('fails the call with what happened, refuses its handles by name, and the next call starts a new worker', async () => {
    const runner = new DeviceRunner('dying-test', {
      entry: workerEntry(import.meta.url, './exiting-worker.ts', 'exiting-worker'),
    });
    try {
      const n = 384;
      const s = await runner.load(matmulChain(n, 6), { optimization: 'disabled' });
      const ref = await runner.upload(f32([4], () => 1));
      expect(runner.epoch).toBe(1);
      const loop = runner.loop(s, {
        feeds: { x: f32([n, n], () => 1), w: f32([n, n], () => 0.001) },
        carry: { y: 'x' },
        steps: 10_000,
        stream: ['y'],
        onStep: (m) => {
          // The worker dies between two steps of the loop, as one that runs out of memory would.
          if (m.step === 2) void runner.task('test.exit', { code: 7 }).catch(() => undefined);
        },
      });
      await expect(loop).rejects.toMatchObject({
        name: 'WorkerDied',
        message: expect.stringMatching(
          /^The compute worker for dying-test stopped while running 'loop' \(exit code 7\)\. .*the next call starts a new worker\.$/,
        ),
      });
      await expect(runner.run(s, {})).rejects.toThrow(
        /session \d+ belonged to compute worker #1 for dying-test, which stopped \(exit code 7\): load the model again/,
      );
      await expect(runner.read(ref)).rejects.toThrow(/tensor ref \d+ belonged to compute worker #1/);
      await runner.dispose(ref); // nothing to free: no error
      const again = await runner.load(addModel(4));
      expect(runner.epoch).toBe(2);
      const { outputs } = await runner.run(again, { x: f32([4], () => 2), y: f32([4], () => 3) });
      expect(values(outputs.z!)).toEqual([5, 5, 5, 5]);
    } finally {
      await runner.close();
    }
  });
});

describe('runnerFor', () => {
  it('hands every caller the same runner per device, and a fresh one after close', async () => {
    const a = runnerFor('cpu-test');
    expect(runnerFor('cpu-test')).toBe(a);
    expect(runnerFor('other-test')).not.toBe(a);
    await runnerFor('other-test').close();
    await a.close();
    expect(a.closed).toBe(true);
    await expect(a.probeProviders()).rejects.toThrow(/runner is closed/);
    const b = runnerFor('cpu-test');
    expect(b).not.toBe(a);
    await b.close();
  });
});
