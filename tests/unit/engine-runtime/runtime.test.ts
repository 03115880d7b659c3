import { describe, expect, it } from 'vitest';
import { createSession, ortVersion, probeProviders, zeros } from '../../../src/main/engine/runtime/ort.js';
import {
  describeChoice,
  platformProviders,
  probe,
  resolveProvider,
  softwareVulkanOnly,
} from '../../../src/main/engine/runtime/providers.js';
import { addModel, tinyModel, type TinyValue } from '../../../src/main/engine/runtime/tiny-model.js';

const v = (name: string, dtype: TinyValue['dtype'], dims: number[]): TinyValue => ({ name, dtype, dims });

describe('runtime (in-thread)', () => {
  it('reports the onnxruntime-node version', () => {
    expect(ortVersion()).toBe('1.30.0');
  });

  it('runs a float32 graph on the CPU provider', async () => {
    const s = await createSession(addModel(4));
    expect(s.provider).toBe('cpu');
    expect(s.inputNames).toEqual(['x', 'y']);
    expect(s.outputNames).toEqual(['z']);
    const x = { dtype: 'float32' as const, dims: [4], data: new Float32Array([1, 2, 3, 4]) };
    const out = await s.run({ x, y: x });
    expect(out.z!.dtype).toBe('float32');
    expect(out.z!.dims).toEqual([4]);
    expect(Array.from(out.z!.data as Float32Array)).toEqual([2, 4, 6, 8]);
    await s.release();
    await expect(s.run({ x, y: x })).rejects.toThrow(/after release/);
  });

  it('carries float64, int64 and bool tensors both ways', async () => {
    const model = tinyModel({
      nodes: [
        { op: 'Mul', inputs: ['a', 'a'], outputs: ['a2'] },
        { op: 'Neg', inputs: ['i'], outputs: ['ni'] },
        { op: 'Not', inputs: ['b'], outputs: ['nb'] },
      ],
      inputs: [v('a', 'float64', [2]), v('i', 'int64', [2]), v('b', 'bool', [2])],
      outputs: [v('a2', 'float64', [2]), v('ni', 'int64', [2]), v('nb', 'bool', [2])],
    });
    const s = await createSession(model, { optimization: 'disabled' });
    const out = await s.run({
      a: { dtype: 'float64', dims: [2], data: new Float64Array([1e-200, 3]) },
      i: { dtype: 'int64', dims: [2], data: new BigInt64Array([5n, -(2n ** 40n)]) },
      b: { dtype: 'bool', dims: [2], data: new Uint8Array([1, 0]) },
    });
    expect(Array.from(out.a2!.data as Float64Array)).toEqual([0, 9]);
    expect(Array.from(out.ni!.data as BigInt64Array)).toEqual([-5n, 2n ** 40n]);
    expect(out.nb!.dtype).toBe('bool');
    expect(Array.from(out.nb!.data as Uint8Array)).toEqual([0, 1]);
    await s.release();
  });

  it('names missing feeds and mismatched sizes', async () => {
    const s = await createSession(addModel(4));
    await expect(s.run({ x: zeros('float32', [4]) })).rejects.toThrow(/missing feeds: y/);
    await expect(
      s.run({ x: zeros('float32', [4]), y: { dtype: 'float32', dims: [4], data: new Float32Array(3) } }),
    ).rejects.toThrow(/feed 'y': 3 values/);
    await s.release();
  });

  it('records per-node placement when profiling', async () => {
    const s = await createSession(addModel(4), { profile: true });
    await s.run({ x: zeros('float32', [4]), y: zeros('float32', [4]) });
    const nodes = await s.endProfiling();
    expect(nodes.map((n) => [n.op, n.provider])).toContainEqual(['Add', 'CPUExecutionProvider']);
    await s.release();
  });

  it('probes every provider and explains the unavailable ones', async () => {
    const reports = await probeProviders();
    expect(reports.map((r) => r.name).sort()).toEqual(['coreml', 'cpu', 'cuda', 'dml', 'webgpu']);
    const cpu = reports.find((r) => r.name === 'cpu')!;
    expect(cpu.available).toBe(true);
    expect(cpu.ms).toBeGreaterThan(0);
    for (const r of reports.filter((r) => !r.available)) expect(r.reason.length).toBeGreaterThan(10);
    if (process.platform === 'linux')
      expect(reports.find((r) => r.name === 'dml')!.reason).toMatch(/not available for linux/);
  });

  it("'auto' chooses a provider and says why each other one was not used", async () => {
    const choice = await resolveProvider('auto');
    expect(platformProviders()).toContain(choice.provider);
    const others = choice.considered.filter((r) => r.name !== choice.provider);
    expect(others.length).toBe(platformProviders().length - 1);
    for (const r of others) expect(r.reason).not.toBe('');
    expect(describeChoice(choice)).toMatch(new RegExp(`^using ${choice.provider} \\(asked: auto\\)`));
    // On a machine whose only Vulkan device is lavapipe, WebGPU works but 'auto' passes it over.
    if (process.platform === 'linux' && softwareVulkanOnly() && (await probe('webgpu')).available) {
      expect(choice.provider).not.toBe('webgpu');
      expect(choice.considered.find((r) => r.name === 'webgpu')!.reason).toMatch(
        /passed over: .*lavapipe.*FSTUDIO_WEBGPU_SOFTWARE/,
      );
    }
  });

  it('an unavailable explicit provider fails with what to install', async () => {
    const cuda = (await probeProviders()).find((r) => r.name === 'cuda')!;
    if (cuda.available) return; // a CUDA machine: nothing to show here
    await expect(createSession(addModel(4), { provider: 'cuda' })).rejects.toThrow(
      /'cuda' is not available: .*(install|CUDA)/,
    );
    await expect(createSession(addModel(4), { provider: 'dml' })).rejects.toThrow(/'dml' is not available/);
  });
});
