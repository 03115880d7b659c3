import { afterAll, describe, expect, it } from 'vitest';
import { ComputeWorker, computeWorkerFor } from '../../../src/main/engine/graph/runtime-compute.js';
import { addModel, tinyModel, type TinyValue } from '../../../src/main/engine/graph/runtime-tiny-model.js';

const f32 = (dims: number[], fill: (i: number) => number) => {
  const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < data.length; i++) data[i] = fill(i);
  return { dtype: 'float32' as const, dims, data };
};

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

describe('ComputeWorker', () => {
  const worker = new ComputeWorker();
  afterAll(() => worker.close());

  it('loads, runs and releases a session in the worker', async () => {
    const s = await worker.load(addModel(4));
    expect(s.provider).toBe('cpu');
    expect(s.inputNames).toEqual(['x', 'y']);
    const x = f32([4], (i) => i + 1);
    const { outputs, refs } = await worker.run(s, { x, y: x });
    expect(Array.from(outputs.z!.data as Float32Array)).toEqual([2, 4, 6, 8]);
    expect(refs).toEqual({});
    expect(Array.from(x.data)).toEqual([1, 2, 3, 4]); // copied, not transferred, by default
    await worker.release(s);
    await expect(worker.run(s, { x, y: x })).rejects.toThrow(/no session with handle/);
  });

  it('probes the providers inside the worker', async () => {
    const reports = await worker.probeProviders();
    expect(reports.find((r) => r.name === 'cpu')).toMatchObject({ available: true });
    expect(reports).toHaveLength(5);
  });

  it('transfers feeds when asked', async () => {
    const s = await worker.load(addModel(4));
    const x = f32([4], () => 1);
    const y = f32([4], () => 2);
    const { outputs } = await worker.run(s, { x, y }, { transferFeeds: true });
    expect(Array.from(outputs.z!.data as Float32Array)).toEqual([3, 3, 3, 3]);
    expect(x.data.length).toBe(0); // detached: ownership moved to the worker
    await worker.release(s);
  });

  it('errors cross as data and the worker stays usable', async () => {
    await expect(worker.load(new Uint8Array([1, 2, 3]))).rejects.toThrow(/could not create the session/);
    const s = await worker.load(addModel(4));
    await expect(worker.run(s, { x: f32([4], () => 0) })).rejects.toThrow(/missing feeds: y/);
    const { outputs } = await worker.run(s, { x: f32([4], () => 1), y: f32([4], () => 1) });
    expect(outputs.z!.data[0]).toBe(2);
    await worker.release(s);
  });

  it('keeps outputs in the worker as refs that feed the next run', async () => {
    const s = await worker.load(addModel(4));
    const one = f32([4], () => 1);
    let acc = (await worker.run(s, { x: one, y: one }, { outputLocations: { z: 'gpu-buffer' } })).refs.z!;
    expect(acc).toMatchObject({ dtype: 'float32', dims: [4], location: 'cpu' });
    for (let i = 0; i < 3; i++) {
      const next = (await worker.run(s, { x: acc, y: one }, { outputLocations: { z: 'gpu-buffer' } })).refs.z!;
      await worker.dispose(acc);
      acc = next;
    }
    expect(Array.from((await worker.read(acc)).data as Float32Array)).toEqual([5, 5, 5, 5]);
    await worker.dispose(acc);
    await expect(worker.read(acc)).rejects.toThrow(/disposed/);
    await worker.release(s);
  });

  it("the main thread's event loop keeps ticking while the worker computes", async () => {
    const n = 768;
    const s = await worker.load(matmulChain(n, 12), { optimization: 'disabled' });
    const x = f32([n, n], (i) => ((i * 7919) % 13) / 13 - 0.5);
    const w = f32([n, n], (i) => ((i * 104729) % 17) / 170);
    await worker.run(s, { x, w }); // warm-up
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const { outputs } = await worker.run(s, { x, w });
    clearInterval(timer);
    expect(outputs.y!.dims).toEqual([n, n]);
    expect(ticks).toBeGreaterThan(0);
    await worker.release(s);
  });
});

describe('computeWorkerFor', () => {
  it('hands every caller the same worker per device, and a fresh one after close', async () => {
    const a = computeWorkerFor('cpu-test');
    expect(computeWorkerFor('cpu-test')).toBe(a);
    expect(computeWorkerFor('other-test')).not.toBe(a);
    await computeWorkerFor('other-test').close();
    await a.close();
    expect(a.closed).toBe(true);
    const b = computeWorkerFor('cpu-test');
    expect(b).not.toBe(a);
    await b.close();
  });
});
