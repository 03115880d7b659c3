// How fast this device multiplies matrices: a 1024³ float32 MatMul run a few times in the compute worker,
// the best run kept. The studio turns a step's FLOPs into an estimate of seconds per step with it.
import { Builder } from './builder.js';
import { emitModel } from './onnx-proto.js';
import type { ProviderName } from '../runtime/ort.js';
import type { TaskContext } from '../runtime/worker-core.js';

const N = 1024;

export interface DeviceSpeed {
  provider: string;
  /** The best of a few runs of a 1024³ MatMul, in GFLOP/s (2 FLOP per multiply-add). */
  matmulGflops: number;
}

export const speedTasks = {
  async 'device.speed'(a: { provider?: ProviderName }, ctx: TaskContext): Promise<DeviceSpeed> {
    const b = new Builder('speed');
    const y = b.matmul(b.input('x', [N, N]), b.input('w', [N, N]));
    const s = await ctx.device.load(emitModel(b.graph, { outputs: { y } }), { provider: a.provider ?? 'cpu' });
    try {
      const fill = () => ({ dtype: 'float32' as const, dims: [N, N], data: new Float32Array(N * N).fill(0.5) });
      const feeds = { x: fill(), w: fill() };
      await s.run(feeds); // warm-up
      let best = Infinity;
      for (let i = 0; i < 3; i++) {
        const t0 = performance.now();
        await s.run(feeds);
        best = Math.min(best, performance.now() - t0);
        await ctx.checkpoint();
      }
      return { provider: s.provider, matmulGflops: (2 * N ** 3) / (best / 1000) / 1e9 };
    } finally {
      await s.release();
    }
  },
};
