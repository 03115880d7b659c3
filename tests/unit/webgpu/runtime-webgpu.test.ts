import { afterAll, describe, expect, it } from 'vitest';
import { createSession, readDevice } from '../../../src/main/engine/runtime/ort.js';
import { DeviceRunner } from '../../../src/main/engine/runtime/runner.js';
import { addModel } from '../../../src/main/engine/runtime/tiny-model.js';
import { webgpuSkipReason } from './webgpu-env.js';

const f32 = (values: number[]) => ({
  dtype: 'float32' as const,
  dims: [values.length],
  data: new Float32Array(values),
});

describe.skipIf(webgpuSkipReason !== null)('runtime on WebGPU', () => {
  it('runs on the WebGPU provider with every node placed there', async () => {
    const s = await createSession(addModel(4), { provider: 'webgpu', profile: true });
    expect(s.provider).toBe('webgpu');
    const out = await s.run({ x: f32([1, 2, 3, 4]), y: f32([10, 20, 30, 40]) });
    expect(Array.from(out.z!.data as Float32Array)).toEqual([11, 22, 33, 44]);
    const nodes = await s.endProfiling();
    expect(nodes.filter((n) => n.op === 'Add').map((n) => n.provider)).toEqual(['WebGpuExecutionProvider']);
    await s.release();
  });

  it('keeps gpu-buffer outputs on the device, feeds them back, and reads them through a CPU-output graph', async () => {
    const s = await createSession(addModel(4), { provider: 'webgpu', preferredOutputLocation: { z: 'gpu-buffer' } });
    await expect(s.run({ x: f32([1, 1, 1, 1]), y: f32([1, 1, 1, 1]) })).rejects.toThrow(/GPU-located: use runMixed/);
    const first = await s.runMixed({ x: f32([1, 2, 3, 4]), y: f32([1, 1, 1, 1]) });
    expect(first.host).toEqual({});
    const z = first.device.z!;
    expect(z.location).toBe('gpu-buffer');
    const second = await s.runMixed({ x: z, y: z });
    z.dispose();
    expect(Array.from((await readDevice(second.device.z!)).data as Float32Array)).toEqual([4, 6, 8, 10]);
    second.device.z!.dispose();
    await s.release();
  });

  describe('in the compute worker', () => {
    const worker = new DeviceRunner('webgpu-test');
    afterAll(() => worker.close());

    it('chains runs through GPU-resident refs', async () => {
      const s = await worker.load(addModel(4), { provider: 'webgpu', preferredOutputLocation: { z: 'gpu-buffer' } });
      expect(s.provider).toBe('webgpu');
      const one = f32([1, 1, 1, 1]);
      let acc = (await worker.run(s, { x: one, y: one })).refs.z!;
      expect(acc.location).toBe('gpu-buffer');
      for (let i = 0; i < 4; i++) {
        const { refs, outputs } = await worker.run(s, { x: acc, y: one });
        expect(outputs).toEqual({});
        await worker.dispose(acc);
        acc = refs.z!;
      }
      expect(Array.from((await worker.read(acc)).data as Float32Array)).toEqual([6, 6, 6, 6]);
      await worker.dispose(acc);
      await worker.release(s);
    });
  });
});

if (webgpuSkipReason) describe('runtime on WebGPU', () => it.skip(webgpuSkipReason ?? '', () => {}));
