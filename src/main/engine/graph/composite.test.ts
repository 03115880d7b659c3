// Composite graphs: reuse (residuals, x*x), a decoder-style upsampling block with strided padded
// ConvTranspose, attention with layer norm, and a two-layer MLP trained through the emitted gradient.
import { afterAll, describe, expect, it } from 'vitest';
import { Builder } from './builder.js';
import { assertModel } from './check.js';
import { checkGradient, rng, samplers, worstErrorReport } from './fdcheck.js';
import { grad } from './grad.js';
import { type Tensor } from './ir.js';
import { emitModel } from './onnx-proto.js';
import { createSession } from '../runtime/ort.js';

afterAll(() => console.log(`worst gradient error per composite:\n${worstErrorReport()}`));

describe('composite gradients', () => {
  it('residual reuse: y = x + tanh(x W); loss uses y * y and x again', () =>
    checkGradient({
      label: 'residual reuse',
      shapes: [
        [3, 4],
        [4, 4],
      ],
      build: (b, [x, w]) => {
        const y = b.add(x!, b.tanh(b.matmul(x!, w!)));
        return b.add(b.mul(y, y), b.mul(x!, y));
      },
      jacobianMax: 40,
    }));

  it('decoder block: conv -> strided padded ConvTranspose -> GroupNorm -> SiLU -> nearest x2 -> conv (float32)', () =>
    checkGradient({
      label: 'decoder block f32',
      dtype: 'float32',
      h: 1e-2,
      tol: 1e-2,
      shapes: [[1, 4, 4, 4], [4, 4, 3, 3], [4, 2, 3, 3], [2], [2], [3, 2, 3, 3]],
      build: (b, [x, w1, wt, g, beta, w2]) => {
        const h1 = b.conv(x!, w1!, null, { pads: [1, 1, 1, 1] });
        const up = b.convTranspose(h1, wt!, null, { strides: [2, 2], pads: [1, 1, 1, 1], outputPadding: [1, 1] });
        expect(up.shape).toEqual([1, 2, 8, 8]);
        const n = b.groupNorm(up, 2, g!, beta!);
        const s = b.mul(n, b.sigmoid(n));
        return b.conv(b.upsample(s, [1, 1, 2, 2]), w2!, null, { pads: [1, 1, 1, 1], strides: [2, 2] });
      },
      sample: samplers.uniform(-0.5, 0.5),
    }));

  it('at working sizes in float32: 64-channel 32x32 decoder stage, directional derivatives', () =>
    checkGradient({
      label: 'decoder stage 64ch 32x32 f32',
      dtype: 'float32',
      h: 1e-2,
      tol: 1e-2,
      jacobianMax: 0,
      shapes: [[1, 64, 32, 32]],
      wrt: [0],
      build: (b, [x]) => {
        const r = rng(3);
        const w = (shape: number[], scale: number) =>
          b.constant(
            Array.from({ length: shape.reduce((p, q) => p * q, 1) }, () => scale * (2 * r() - 1)),
            'float32',
            shape,
          );
        const h = b.groupNorm(x!, 32, w([64], 1), w([64], 0.1));
        const a = b.conv(b.silu(h), w([64, 64, 3, 3], 0.05), w([64], 0.1), { pads: [1, 1, 1, 1] });
        const up = b.upsample(b.add(x!, a), [1, 1, 2, 2]);
        return b.conv(up, w([8, 64, 3, 3], 0.05), null, { pads: [1, 1, 1, 1] });
      },
      sample: samplers.normal(),
    }));

  const attention = (b: Builder, [x, g, beta, wq, wk, wv, wo]: Tensor[], heads: number, causal: boolean) => {
    const [T, D] = x!.shape as [number, number];
    const hd = D / heads;
    const ln = b.layerNorm(x!, g!, beta!);
    // (T, D) -> (heads, T, hd)
    const split = (t: Tensor) => b.transpose(b.reshape(t, [T, heads, hd]), [1, 0, 2]);
    const q = split(b.matmul(ln, wq!));
    const k = split(b.matmul(ln, wk!));
    const v = split(b.matmul(ln, wv!));
    let att = b.div(b.matmul(q, b.transpose(k, [0, 2, 1])), Math.sqrt(hd)); // (heads, T, T)
    if (causal) {
      const mask = b.constant(
        Array.from({ length: T * T }, (_, i) => (i % T <= Math.floor(i / T) ? 1 : 0)),
        'float64',
        [T, T],
      );
      att = b.where(b.greater(mask, 0), att, -1e9);
    }
    const y = b.matmul(b.softmax(att, -1), v); // (heads, T, hd)
    const merged = b.reshape(b.transpose(y, [1, 0, 2]), [T, D]);
    return b.add(x!, b.matmul(merged, wo!));
  };

  it('attention block softmax(QK^T/sqrt d)V with layer norm, full Jacobian', () =>
    checkGradient({
      label: 'attention (1 head)',
      shapes: [[3, 4], [4], [4], [4, 4], [4, 4], [4, 4], [4, 4]],
      build: (b, xs) => attention(b, xs, 1, false),
      sample: samplers.uniform(-1, 1),
      jacobianMax: 200,
    }));

  it('multi-head causal attention block', () =>
    checkGradient({
      label: 'attention (2 heads, causal)',
      shapes: [[5, 8], [8], [8], [8, 8], [8, 8], [8, 8], [8, 8]],
      build: (b, xs) => attention(b, xs, 2, true),
      sample: samplers.uniform(-1, 1),
    }));
});

describe('training through the emitted gradient graph', () => {
  it('a two-layer MLP trained with SGD: the loss goes down', async () => {
    const N = 32;
    const b = new Builder('mlp');
    const X = b.input('X', [N, 3]);
    const Y = b.input('Y', [N, 1]);
    const params = {
      W1: b.input('W1', [3, 16]),
      b1: b.input('b1', [16]),
      W2: b.input('W2', [16, 1]),
      b2: b.input('b2', [1]),
    };
    const hidden = b.relu(b.add(b.matmul(X, params.W1), params.b1));
    const pred = b.gemm(hidden, params.W2, params.b2);
    const err = b.sub(pred, Y);
    const loss = b.mean(b.mul(err, err));
    const names = Object.keys(params) as (keyof typeof params)[];
    const grads = grad(
      b,
      loss,
      names.map((k) => params[k]),
    );
    const bytes = emitModel(b.graph, {
      outputs: { loss, ...Object.fromEntries(names.map((k, i) => [`grad_${k}`, grads[i]!])) },
    });
    assertModel(bytes);
    const session = await createSession(bytes, { provider: 'cpu', optimization: 'all' });

    const r = rng(7);
    const x = Float32Array.from({ length: N * 3 }, () => 2 * r() - 1);
    const y = Float32Array.from({ length: N }, (_, n) => Math.sin(2 * x[3 * n]!) + x[3 * n + 1]! * x[3 * n + 2]!);
    const init = (n: number, s: number) => Float32Array.from({ length: n }, () => s * (2 * r() - 1));
    const values: Record<string, Float32Array> = {
      W1: init(48, 0.8),
      b1: init(16, 0.1),
      W2: init(16, 0.5),
      b2: init(1, 0),
    };
    const dims: Record<string, number[]> = { W1: [3, 16], b1: [16], W2: [16, 1], b2: [1] };
    const losses: number[] = [];
    try {
      for (let step = 0; step < 60; step++) {
        const out = await session.run({
          X: { dtype: 'float32', dims: [N, 3], data: x },
          Y: { dtype: 'float32', dims: [N, 1], data: y },
          ...Object.fromEntries(names.map((k) => [k, { dtype: 'float32' as const, dims: dims[k]!, data: values[k]! }])),
        });
        losses.push((out.loss!.data as Float32Array)[0]!);
        for (const k of names) {
          const g = out[`grad_${k}`]!.data as Float32Array;
          const v = values[k]!;
          for (let i = 0; i < v.length; i++) v[i] = v[i]! - 0.1 * g[i]!;
        }
      }
    } finally {
      await session.release();
    }
    console.log(`MLP loss: ${losses[0]!.toFixed(4)} -> ${losses.at(-1)!.toFixed(4)} after ${losses.length} SGD steps`);
    expect(losses.at(-1)!).toBeLessThan(0.5 * losses[0]!);
    // Small steps on a smooth loss: each of the first steps lowers it.
    for (let s = 1; s < 5; s++) expect(losses[s]!).toBeLessThan(losses[s - 1]!);
  });
});
