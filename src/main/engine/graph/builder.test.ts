// Build-time shape and dtype inference, its errors, and unique names. Shapes are checked against
// what ORT computes for the same graph (runtime shapes), and against hand-worked formulas.
import { describe, expect, it } from 'vitest';
import { Builder, broadcastShapes, sliceRange } from './builder.js';
import { runGraph } from './fdcheck.js';
import { type Tensor } from './ir.js';
import { createSession } from '../runtime/ort.js';
import { emitModel } from './onnx-proto.js';

describe('broadcasting and slicing rules', () => {
  it('broadcasts like numpy', () => {
    expect(broadcastShapes([2, 3], [3])).toEqual([2, 3]);
    expect(broadcastShapes([4, 1, 3], [2, 1])).toEqual([4, 2, 3]);
    expect(broadcastShapes([], [2, 3])).toEqual([2, 3]);
    expect(broadcastShapes([1], [])).toEqual([1]);
    expect(() => broadcastShapes([2, 3], [2])).toThrow(/do not broadcast/);
  });
  it('normalises slices as ONNX does', () => {
    expect(sliceRange(5, 1, 3, 1)).toEqual({ start: 1, length: 2 });
    expect(sliceRange(5, -2, 100, 1)).toEqual({ start: 3, length: 2 });
    expect(sliceRange(5, 0, 5, 2)).toEqual({ start: 0, length: 3 });
    expect(sliceRange(5, 4, -100, -1)).toEqual({ start: 4, length: 5 });
    expect(sliceRange(5, 3, 1, 1)).toEqual({ start: 3, length: 0 });
  });
});

describe('shape inference', () => {
  const b = new Builder();
  const x = b.input('x', [2, 3, 8, 8]);
  it('conv, strided conv and transposed conv', () => {
    const w = b.constant(new Array(4 * 3 * 9).fill(0), 'float32', [4, 3, 3, 3]);
    expect(b.conv(x, w, null, { pads: [1, 1, 1, 1] }).shape).toEqual([2, 4, 8, 8]);
    // floor((8 + 2 - 3) / 2) + 1 = 4
    expect(b.conv(x, w, null, { pads: [1, 1, 1, 1], strides: [2, 2] }).shape).toEqual([2, 4, 4, 4]);
    const wt = b.constant(new Array(3 * 5 * 16).fill(0), 'float32', [3, 5, 4, 4]);
    // 2 * (8 - 1) + 0 + 3 + 1 - 2 = 16
    expect(b.convTranspose(x, wt, null, { strides: [2, 2], pads: [1, 1, 1, 1] }).shape).toEqual([2, 5, 16, 16]);
  });
  it('matmul with numpy promotion of 1-D operands', () => {
    const a = b.input('a', [5, 1, 2, 3]);
    expect(b.matmul(a, b.input('m', [4, 3, 7])).shape).toEqual([5, 4, 2, 7]);
    expect(b.matmul(a, b.input('v', [3])).shape).toEqual([5, 1, 2]);
    expect(b.matmul(b.input('u', [2]), b.input('m2', [2, 6])).shape).toEqual([6]);
  });
  it('reductions, reshape -1, transpose, concat, gather, pad, expand, squeeze, unsqueeze, upsample', () => {
    expect(b.reduceSum(x, [1, -1], true).shape).toEqual([2, 1, 8, 1]);
    expect(b.reduceMean(x, [1]).shape).toEqual([2, 8, 8]);
    expect(b.sum(x).shape).toEqual([]);
    expect(b.reshape(x, [2, -1]).shape).toEqual([2, 192]);
    expect(b.transpose(x, [0, 2, 3, 1]).shape).toEqual([2, 8, 8, 3]);
    expect(b.concat([x, x], 1).shape).toEqual([2, 6, 8, 8]);
    expect(b.gather(x, b.constant([0, 1, 0, 1, 2, 2], 'int64', [2, 3]), 1).shape).toEqual([2, 2, 3, 8, 8]);
    expect(b.pad(x, [0, 0, 1, 2, 0, 0, -1, 3]).shape).toEqual([2, 3, 8, 13]);
    expect(b.expand(b.input('e', [3, 1, 1]), [2, 3, 4, 5]).shape).toEqual([2, 3, 4, 5]);
    expect(b.squeeze(b.input('s', [1, 3, 1]), [0, 2]).shape).toEqual([3]);
    expect(b.unsqueeze(b.input('q', [3, 4]), [0, -1]).shape).toEqual([1, 3, 4, 1]);
    expect(b.upsample(x, [1, 1, 2, 2]).shape).toEqual([2, 3, 16, 16]);
    expect(b.argMax(x, 1, false).dtype).toBe('int64');
    expect(b.less(x, 0).dtype).toBe('bool');
  });
  it('layer norm statistics and group norm', () => {
    const y = b.layerNorm(x, b.input('g', [8]), null, { axis: -1 });
    expect(y.shape).toEqual([2, 3, 8, 8]);
    expect(y.producer!.outputs[1]!.shape).toEqual([2, 3, 8, 1]);
    expect(b.groupNorm(x, 3, b.input('gg', [3]), b.input('gb', [3])).shape).toEqual([2, 3, 8, 8]);
  });
});

describe('clear errors at build time', () => {
  const b = new Builder();
  const x = b.input('x', [2, 3]);
  it.each<[string, () => unknown, RegExp]>([
    ['add shapes', () => b.add(x, b.input('y', [4])), /Add\(x, y\): shapes \[2, 3\] and \[4\] do not broadcast/],
    ['add dtypes', () => b.add(x, b.input('d', [2, 3], 'float64')), /Add: dtype mismatch/],
    ['matmul inner', () => b.matmul(x, b.input('w', [2, 3])), /MatMul: inner dimensions differ: \[2, 3\] x \[2, 3\]/],
    [
      'conv channels',
      () => b.conv(b.input('i', [1, 4, 5, 5]), b.input('k', [2, 3, 3, 3])),
      /Conv: x \[1, 4, 5, 5\] and w \[2, 3, 3, 3\]/,
    ],
    ['reshape size', () => b.reshape(x, [4, 2]), /Reshape: cannot reshape/],
    ['transpose perm', () => b.transpose(x, [0, 0]), /not a permutation/],
    ['concat', () => b.concat([x, b.input('c', [2, 4])], 0), /Concat on axis 0/],
    ['axis', () => b.softmax(x, 2), /Softmax: axis 2 out of range for rank 2/],
    ['squeeze', () => b.squeeze(x, [0]), /Squeeze: axis 0/],
    ['gather indices', () => b.gather(x, b.input('fi', [2])), /Gather: indices must be int64/],
    [
      'group norm',
      () => b.groupNorm(b.input('gn', [1, 6, 2]), 4, b.input('s6', [6]), b.input('b6', [6])),
      /6 channels do not split into 4/,
    ],
    ['duplicate input name', () => b.input('x', [1]), /name 'x' is already used/],
    ['clip bounds', () => b.clip(x, b.input('lo', [2])), /Clip: bounds must be float32 scalars/],
    ['sqrt of ints', () => b.sqrt(b.input('n', [2], 'int64')), /Sqrt: needs a float tensor/],
  ])('%s', (_n, f, msg) => expect(f).toThrow(msg));
});

describe('names', () => {
  it('are unique by construction, even against user-chosen names', () => {
    const b = new Builder();
    const x = b.input('add', [2]);
    const ys: Tensor[] = [];
    for (let k = 0; k < 5; k++) ys.push(b.add(x, 1));
    const names = [...b.graph.nodes.map((n) => n.name), ...b.graph.nodes.flatMap((n) => n.outputs.map((t) => t.name))];
    expect(new Set(names).size).toBe(names.length);
    expect(names).not.toContain('add');
  });
});

describe('inferred shapes match what ORT computes', () => {
  it('for every op kind in one graph', async () => {
    const b = new Builder();
    const x = b.input('x', [2, 3, 6, 6]);
    const w = b.constant(
      Array.from({ length: 4 * 3 * 9 }, (_, k) => (k % 7) / 7),
      'float32',
      [4, 3, 3, 3],
    );
    const outs: Record<string, Tensor> = {
      conv: b.conv(x, w, null, { pads: [1, 0, 2, 1], strides: [2, 1], dilations: [1, 2] }),
      convt: b.convTranspose(x, b.transpose(w, [1, 0, 2, 3]), null, {
        strides: [3, 2],
        pads: [1, 1, 0, 2],
        outputPadding: [2, 1],
      }),
      mm: b.matmul(b.reshape(x, [2, 1, 18, 6]), b.input('m', [3, 6, 5])),
      slice: b.slice(x, [-4, 1], [100, -1], [2, 3]),
      gather: b.gather(x, b.constant([0, 2, 1, 1], 'int64', [2, 2]), 1),
      pad: b.pad(x, [0, 1, -1, 2, 1, 0, 2, -3]),
      up: b.upsample(x, [1, 2, 2, 3]),
      red: b.reduceSum(x, [0, 3], false),
      ln: b.layerNorm(x, b.input('g', [6, 6]), null, { axis: 2 }),
      am: b.argMin(x, 2, false),
    };
    const feeds = {
      x: { dtype: 'float32' as const, dims: [2, 3, 6, 6], data: new Float32Array(216).fill(0.5) },
      m: { dtype: 'float32' as const, dims: [3, 6, 5], data: new Float32Array(90).fill(1) },
      g: { dtype: 'float32' as const, dims: [6, 6], data: new Float32Array(36).fill(1) },
    };
    const s = await createSession(emitModel(b.graph, { outputs: outs }), { optimization: 'all' });
    try {
      const res = await s.run(feeds);
      for (const [k, t] of Object.entries(outs)) {
        expect([k, [...res[k]!.dims]]).toEqual([k, t.shape]);
        expect([k, res[k]!.dtype]).toEqual([k, t.dtype]);
      }
    } finally {
      await s.release();
    }
    // and the values of a few are right by hand
    const r = await runGraph(b, { red: outs.red! }, feeds);
    expect(r.red!.every((v) => v === 6)).toBe(true);
  });
});
