// The driver: hand-checked values (so a bug shared by a forward op and finite differences cannot
// hide), accumulation, broadcast reduction, the markers, and the errors.
import { describe, expect, it } from 'vitest';
import { Builder } from './builder.js';
import { checkGradient, f32, f64, runGraph } from './fdcheck.js';
import { grad } from './grad.js';
import { assertModel } from './check.js';
import { emitModel, neededNodes } from './onnx-proto.js';

const close = (got: number[], want: number[], tol = 1e-12) => {
  expect(got.length).toBe(want.length);
  got.forEach((g, k) => expect(Math.abs(g - want[k]!)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(want[k]!))));
};

describe('hand-checked gradients', () => {
  it('d/dx sum(x*x) = 2x (one node reads x twice)', async () => {
    const b = new Builder();
    const x = b.input('x', [3], 'float64');
    const loss = b.sum(b.mul(x, x));
    const [dx] = grad(b, loss, [x]);
    const r = await runGraph(b, { loss, dx: dx! }, { x: f64([3], [1, 2, -3]) });
    close(r.loss!, [14]);
    close(r.dx!, [2, 4, -6]);
  });

  it('x read by three nodes: d/dx sum(exp(x) + 2x + x) = exp(x) + 3', async () => {
    const b = new Builder();
    const x = b.input('x', [2], 'float64');
    const loss = b.sum(b.add(b.add(b.exp(x), b.mul(x, 2)), x));
    const [dx] = grad(b, loss, [x]);
    const r = await runGraph(b, { dx: dx! }, { x: f64([2], [0, 1]) });
    close(r.dx!, [4, Math.E + 3]);
  });

  it("sigmoid'(0) = 1/4, sigmoid'(ln 3) = 3/16", async () => {
    const b = new Builder();
    const x = b.input('x', [2], 'float64');
    const [dx] = grad(b, b.sum(b.sigmoid(x)), [x]);
    close((await runGraph(b, { dx: dx! }, { x: f64([2], [0, Math.log(3)]) })).dx!, [0.25, 0.1875]);
  });

  it('matmul [1,2] x [[3],[4]]: dx = [3,4], dw = [[1],[2]]', async () => {
    const b = new Builder();
    const x = b.input('x', [1, 2], 'float64');
    const w = b.input('w', [2, 1], 'float64');
    const [dx, dw] = grad(b, b.sum(b.matmul(x, w)), [x, w]);
    const r = await runGraph(b, { dx: dx!, dw: dw! }, { x: f64([1, 2], [1, 2]), w: f64([2, 1], [3, 4]) });
    close(r.dx!, [3, 4]);
    close(r.dw!, [1, 2]);
  });

  it('broadcast add: the gradient of the [3] operand is the column sums of the weights', async () => {
    const b = new Builder();
    const x = b.input('x', [2, 3], 'float64');
    const y = b.input('y', [3], 'float64');
    const W = b.constant([1, 2, 3, 4, 5, 6], 'float64', [2, 3]);
    const [dx, dy] = grad(b, b.sum(b.mul(b.add(x, y), W)), [x, y]);
    const r = await runGraph(b, { dx: dx!, dy: dy! }, { x: f64([2, 3], [0, 0, 0, 0, 0, 0]), y: f64([3], [0, 0, 0]) });
    close(r.dx!, [1, 2, 3, 4, 5, 6]);
    close(r.dy!, [5, 7, 9]);
  });

  it('softmax at [0, 0] weighted [1, 0]: dx = [1/4, -1/4]', async () => {
    const b = new Builder();
    const x = b.input('x', [2], 'float64');
    const [dx] = grad(b, b.sum(b.mul(b.softmax(x), b.constant([1, 0], 'float64'))), [x]);
    close((await runGraph(b, { dx: dx! }, { x: f64([2], [0, 0]) })).dx!, [0.25, -0.25]);
  });

  it('1-D conv x=[1,2,3,4,5], w=[1,2,1], stride 2: dx = [1,2,2,2,1], dw = [4,6,8]', async () => {
    const b = new Builder();
    const x = b.input('x', [1, 1, 5], 'float32');
    const w = b.input('w', [1, 1, 3], 'float32');
    const y = b.conv(x, w, null, { strides: [2] });
    expect(y.shape).toEqual([1, 1, 2]);
    const [dx, dw] = grad(b, b.sum(y), [x, w]);
    const r = await runGraph(
      b,
      { y, dx: dx!, dw: dw! },
      { x: f32([1, 1, 5], [1, 2, 3, 4, 5]), w: f32([1, 1, 3], [1, 2, 1]) },
    );
    close(r.y!, [8, 16]);
    close(r.dx!, [1, 2, 2, 2, 1]);
    close(r.dw!, [4, 6, 8]);
  });

  it('x ** 0 has gradient 0 even at x = 0; x ** 3 has 3x^2', async () => {
    const b = new Builder();
    const x = b.input('x', [2], 'float64');
    const [d0, d3] = [grad(b, b.sum(b.pow(x, 0)), [x])[0]!, grad(b, b.sum(b.pow(x, 3)), [x])[0]!];
    const r = await runGraph(b, { d0, d3 }, { x: f64([2], [0, -2]) });
    close(r.d0!, [0, 0]);
    close(r.d3!, [0, 12]);
  });

  it('gather with a repeated index adds: x[[0, 2, 2]] -> dx = [1, 0, 2]', async () => {
    const b = new Builder();
    const x = b.input('x', [3], 'float64');
    const [dx] = grad(b, b.sum(b.gather(x, [0, 2, 2])), [x]);
    close((await runGraph(b, { dx: dx! }, { x: f64([3], [5, 6, 7]) })).dx!, [1, 0, 2]);
  });
});

describe('resampling composites match PyTorch by hand', () => {
  it('resizeBilinear: [0, 1] -> 4 is [0, .25, .75, 1]; [0, 1, 2, 3] -> 2 is [.5, 2.5]', async () => {
    const b = new Builder();
    const x = b.input('x', [1, 2], 'float64');
    const z = b.input('z', [1, 4], 'float64');
    const r = await runGraph(
      b,
      { up: b.resizeBilinear(x, [1, 4]), down: b.resizeBilinear(z, [1, 2]) },
      { x: f64([1, 2], [0, 1]), z: f64([1, 4], [0, 1, 2, 3]) },
    );
    close(r.up!, [0, 0.25, 0.75, 1]);
    close(r.down!, [0.5, 2.5]);
  });
  it('adaptiveAvgPool2d: 5 -> 3 averages [0,1], [1,2,3], [3,4]; 3x3 -> 1x1 is the mean', async () => {
    const b = new Builder();
    const x = b.input('x', [1, 5], 'float64');
    const s = b.input('s', [1, 1, 3, 3], 'float64');
    const r = await runGraph(
      b,
      { p: b.adaptiveAvgPool2d(x, [1, 3]), m: b.adaptiveAvgPool2d(s, [1, 1]) },
      { x: f64([1, 5], [1, 2, 3, 4, 5]), s: f64([1, 1, 3, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9]) },
    );
    close(r.p!, [1.5, 3, 4.5]);
    close(r.m!, [5]);
  });
});

describe('markers', () => {
  it('stopGradient: d/dx sum(x * stop(x)) = x, not 2x', async () => {
    const b = new Builder();
    const x = b.input('x', [3], 'float64');
    const [dx] = grad(b, b.sum(b.mul(x, b.stopGradient(x))), [x]);
    close((await runGraph(b, { dx: dx! }, { x: f64([3], [1, 2, -3]) })).dx!, [1, 2, -3]);
  });

  it('straightThrough: forward the clipped value, backward as if identity (clamp-with-grad)', async () => {
    const b = new Builder();
    const x = b.input('x', [3], 'float64');
    const st = b.straightThrough(b.clip(x, 0, 1), x);
    const loss = b.sum(b.mul(st, b.constant([1, 2, 3], 'float64')));
    const [dx] = grad(b, loss, [x]);
    const r = await runGraph(b, { st, loss, dx: dx! }, { x: f64([3], [-1, 0.5, 2]) });
    close(r.st!, [0, 0.5, 1]);
    close(r.loss!, [4]);
    close(r.dx!, [1, 2, 3]);
  });

  it('straightThrough for vector quantisation: codebook lookup forward, gradient to z', async () => {
    const b = new Builder();
    const z = b.input('z', [2, 2], 'float64'); // two vectors of dim 2
    const codebook = b.constant([0, 0, 1, 1, -1, 2], 'float64', [3, 2]);
    // squared distances [2, 3] = |z|^2 - 2 z.c + |c|^2
    const d = b.add(
      b.sub(b.reduceSum(b.mul(z, z), [1], true), b.mul(b.matmul(z, b.transpose(codebook)), 2)),
      b.reshape(b.reduceSum(b.mul(codebook, codebook), [1]), [1, 3]),
    );
    const q = b.gather(codebook, b.argMin(d, 1, false), 0);
    const zq = b.straightThrough(q, z);
    const loss = b.sum(b.mul(zq, zq));
    const [dz] = grad(b, loss, [z]);
    const r = await runGraph(b, { zq, dz: dz! }, { z: f64([2, 2], [0.9, 1.2, -0.8, 1.7]) });
    close(r.zq!, [1, 1, -1, 2]);
    close(r.dz!, [2, 2, -2, 4]); // d sum(zq^2)/dzq = 2 zq, passed straight to z
  });

  it('clampWithGrad: the gradient passes inside [0, 1] and where it points back into the range, by hand', async () => {
    const b = new Builder();
    const x = b.input('x', [6], 'float64');
    const y = b.clampWithGrad(x, 0, 1);
    // x below, inside, above the range; the weights make dy positive or negative.
    const w = b.constant([1, -1, 2, 3, -3, 1], 'float64');
    const [dx] = grad(b, b.sum(b.mul(y, w)), [x]);
    const r = await runGraph(b, { y, dx: dx! }, { x: f64([6], [-0.5, -0.5, 0.5, 1.5, 1.5, 1]) });
    close(r.y!, [0, 0, 0.5, 1, 1, 1]);
    // Below the range: a descent step (-dy) must raise x, so dy < 0 passes; above: dy > 0 passes.
    close(r.dx!, [0, -1, 2, 3, 0, 1]);
  });

  it('a fused op differentiates as one op: GroupNorm by hand (two groups of two values)', async () => {
    const b = new Builder();
    const x = b.input('x', [1, 2, 2], 'float64');
    const y = b.groupNorm(x, 2, b.constant([2, 3], 'float64'), b.constant([0.5, -1], 'float64'), 0);
    const w = b.constant([1, 0, 0, 1], 'float64', [1, 2, 2]);
    const [dx] = grad(b, b.sum(b.mul(y, w)), [x]);
    const r = await runGraph(b, { y, dx: dx! }, { x: f64([1, 2, 2], [1, 3, 5, 5.5]) });
    // Each group of two normalises to [-1, 1]: y = scale * [-1, 1] + bias. The loss picks y[0,0,0] and y[0,1,1],
    // each an odd function of the difference of its two values, whose derivative there is 0: only the
    // mean-free part remains, d(-1)/dx = [0, 0] since xhat = sign(x0 - x1) is constant (unit std).
    close(r.y!, [-1.5, 2.5, -4, 2]);
    close(r.dx!, [0, 0, 0, 0]);
    expect(b.graph.nodes.some((n) => n.marker?.kind === 'fused' && n.marker.op === 'GroupNorm')).toBe(true);
  });

  it('fused SiLU and QuickGelu: the backward pass is one closed form from the saved sigmoid', () => {
    for (const [f, ops] of [
      ['silu', ['Add', 'Identity', 'Mul', 'Mul', 'Reshape', 'Sub']],
      ['quickGelu', ['Add', 'Identity', 'Mul', 'Mul', 'Mul', 'Reshape', 'Sub']],
    ] as const) {
      const b = new Builder();
      const x = b.input('x', [3, 4], 'float32');
      const y = b[f](x);
      const loss = b.sum(y);
      const before = b.graph.nodes.length;
      const [dx] = grad(b, loss, [x]);
      const backward = neededNodes(b.graph, [dx!]).filter((n) => n.index >= before);
      // The seed (a scalar one), the ReduceSum's gradient with kept dimensions (a Reshape, no Expand), and
      // dy (s + [1.702] (y - y s)): no Sigmoid rule, no gradient through the sigmoid's input.
      expect(backward.map((n) => n.opType).sort()).toEqual([...ops]);
      expect(neededNodes(b.graph, [dx!]).filter((n) => n.opType === 'Sigmoid')).toHaveLength(1);
    }
  });

  it('kept dimensions: the gradient of a mean reaches a Mul without a full-size Expand', () => {
    const b = new Builder();
    const x = b.input('x', [4, 5], 'float32');
    const s = b.input('s', [4, 5], 'float32');
    const [dx] = grad(b, b.reduceMean(b.mul(x, s)), [x]);
    const ops = neededNodes(b.graph, [dx!]).map((n) => n.opType);
    expect(ops).not.toContain('Expand');
    expect(dx!.shape).toEqual([4, 5]);
  });

  it('a loss that does not depend on wrt gives zeros; ArgMax-only paths are not errors', async () => {
    const b = new Builder();
    const x = b.input('x', [2, 3], 'float64');
    const y = b.input('y', [2], 'float64');
    const loss = b.sum(b.mul(b.cast(b.argMax(x, 1, false), 'float64'), y));
    const [dx, dy] = grad(b, loss, [x, y]);
    const r = await runGraph(b, { dx: dx!, dy: dy! }, { x: f64([2, 3], [1, 5, 2, 7, 0, 1]), y: f64([2], [3, 4]) });
    close(r.dx!, [0, 0, 0, 0, 0, 0]);
    close(r.dy!, [1, 0]);
  });
});

describe('driver behaviour', () => {
  it('names a missing rule', () => {
    const b = new Builder();
    const x = b.input('x', [2, 3], 'float64');
    const [y] = b.node('Sin', [x], [{ name: 'sin', dtype: 'float64', shape: [2, 3] }]);
    expect(() => grad(b, b.sum(y!), [x])).toThrow(/no gradient rule for op 'Sin' \(node Sin\)/);
  });

  it('refuses what a rule does not cover, naming the op', () => {
    const b = new Builder();
    const x = b.input('x', [2, 3], 'float64');
    expect(() => grad(b, b.sum(b.pad(x, [0, -1, 0, 1], { mode: 'reflect' })), [x])).toThrow(
      /Pad: no gradient for negative pads in mode 'reflect'/,
    );
    const [, mean] = b.layerNorm(x, b.input('g', [3], 'float64')).producer!.outputs;
    expect(() => grad(b, b.sum(b.cast(mean!, 'float64')), [x])).toThrow(
      /LayerNormalization: no gradient through the Mean/,
    );
  });

  it('ReduceMax splits the gradient between tied maxima, by hand', async () => {
    const b = new Builder();
    const x = b.input('x', [2, 3], 'float64');
    const [dx] = grad(b, b.sum(b.reduceMax(x, [1])), [x]);
    close((await runGraph(b, { dx: dx! }, { x: f64([2, 3], [1, 5, 5, 7, 0, 1]) })).dx!, [0, 0.5, 0.5, 1, 0, 0]);
  });

  it('reflect Pad folds the mirrored strip back, by hand', async () => {
    const b = new Builder();
    const x = b.input('x', [4], 'float64');
    // reflect pads (2, 1): [x2, x1, x0, x1, x2, x3, x2]
    const y = b.pad(x, [2, 1], { mode: 'reflect' });
    const w = b.constant([1, 10, 100, 1000, 10000, 100000, 1e6], 'float64');
    const [dx] = grad(b, b.sum(b.mul(y, w)), [x]);
    const r = await runGraph(b, { y, dx: dx! }, { x: f64([4], [1, 2, 3, 4]) });
    close(r.y!, [3, 2, 1, 2, 3, 4, 3]);
    close(r.dx!, [100, 10 + 1000, 1 + 10000 + 1e6, 100000]);
  });

  it('refuses integer wrt and losses', () => {
    const b = new Builder();
    const x = b.input('x', [2], 'int64');
    const y = b.input('y', [2], 'float64');
    expect(() => grad(b, b.sum(y), [x])).toThrow(/not a float tensor/);
  });

  it('differentiates with respect to an intermediate tensor, and twice in one graph with unique names', async () => {
    const b = new Builder();
    const x = b.input('x', [3], 'float64');
    const y = b.mul(x, 2);
    const loss = b.sum(b.mul(y, y));
    const [dy, dx] = grad(b, loss, [y, x]);
    const [dx2] = grad(b, b.sum(b.exp(x)), [x]);
    const bytes = emitModel(b.graph, { outputs: { dy: dy!, dx: dx!, dx2: dx2! } });
    assertModel(bytes);
    const r = await runGraph(b, { dy: dy!, dx: dx!, dx2: dx2! }, { x: f64([3], [1, -1, 0]) });
    close(r.dy!, [4, -4, 0]); // 2y
    close(r.dx!, [8, -8, 0]); // 8x
    close(r.dx2!, [Math.E, 1 / Math.E, 1]);
  });

  it('differentiates with respect to a weight stored as an initializer', async () => {
    const b = new Builder();
    const x = b.input('x', [3], 'float64');
    const w = b.param('w', { dtype: 'float64', dims: [3], data: Float64Array.from([1, 2, 3]) });
    const [dw] = grad(b, b.sum(b.mul(b.mul(x, w), w)), [w]);
    close((await runGraph(b, { dw: dw! }, { x: f64([3], [1, -1, 2]) })).dw!, [2, -4, 12]); // 2 x w
  });

  it('uses a given seed instead of ones', async () => {
    const b = new Builder();
    const x = b.input('x', [2], 'float64');
    const y = b.mul(x, x);
    const [dx] = grad(b, y, [x], { seed: b.constant([10, 100], 'float64') });
    close((await runGraph(b, { dx: dx! }, { x: f64([2], [1, 2]) })).dx!, [20, 400]);
  });

  it('the check harness fails on a wrong gradient (a deliberately broken rule)', async () => {
    const { RULES } = await import('./grad-rules.js');
    const table = RULES as Record<string, (typeof RULES)[string]>;
    const saved = table.Exp!;
    table.Exp = ({ b, dy, y }) => [b.mul(b.mul(dy, y[0]!), 1.001)];
    try {
      await expect(
        checkGradient({ label: 'broken Exp', shapes: [[3]], build: (bb, [x]) => bb.exp(x!) }),
      ).rejects.toThrow(/gradient error/);
    } finally {
      table.Exp = saved;
    }
  });
});
