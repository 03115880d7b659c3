// The backward rules: ONE table, one entry per op (after tinygrad's gradient table).
// Each rule gets the node, its inputs and outputs and the gradient of its outputs, and returns one
// gradient per input (null where the input takes none). A gradient may have the broadcast (output)
// shape: grad.ts sums it down to the input's shape. Rules use builder primitives only, so the backward
// graph is made of default-domain opset-17 ops (no training-only kernels exist in onnxruntime-node).
//
// Fused ops (SiLU, QuickGelu, GroupNorm, ClampWithGrad) are composites the builder marks on their output
// node: their rule sees the composite's inputs as `x` and forward intermediates as `saved`, and gives the
// closed-form gradient in a few full-size passes instead of one chain per op of the forward pass.
//
// Public API
//   RULES: Readonly<Record<string, GradRule>>    the table (ops absent from it have no gradient), ONNX ops and fused ops
//   NON_DIFFERENTIABLE: ReadonlySet<string>      ops whose outputs never carry a gradient (ArgMax, Equal, ...)
//   BROADCAST_DY: ReadonlySet<string>            ops whose rule takes a gradient smaller than the output (broadcast)
//   FUSED_OPS: readonly string[]                 the fused ops' names (the builder marks them)
//   GradRule, RuleContext                        the rule signature
//   convWeightGrad(b, x, dy, kernel, attrs)      dW of a convolution, as a Conv over transposed tensors
//
// Conv's input gradient is a Conv with flipped, channel-swapped weights for stride 1 (faster kernels;
// the flip of constant weights folds away), a MatMul for patch embeddings (stride = kernel, no padding:
// every input pixel is read once) and ConvTranspose with matching pads/strides/dilations and
// output_padding otherwise. Known limits (each fails with an error naming the op): Resize other than
// integer-scale nearest, gradients through LayerNormalization's Mean/InvStdDev outputs, negative pads in
// reflect/edge Pad, and every op absent from the table.

import { type Builder, sliceRange } from './builder.js';
import { type Attr, type Node, type Tensor, isFloat, sizeOf } from './ir.js';

export interface RuleContext {
  b: Builder;
  node: Node;
  /** Inputs (null for omitted optional inputs). */
  x: readonly (Tensor | null)[];
  /** Outputs. */
  y: readonly Tensor[];
  /** Gradient of output 0 (zeros when only another output has a gradient). */
  dy: Tensor;
  /** Gradient of each output, null where none flows. */
  dys: readonly (Tensor | null)[];
  /** Forward tensors a fused op's rule reuses (empty for plain ops). */
  saved: readonly Tensor[];
  /** Whether input k needs a gradient (it depends on a `wrt` tensor). */
  needs(k: number): boolean;
}

export type GradRule = (ctx: RuleContext) => readonly (Tensor | null)[];

function attrInt(n: Node, name: string, dflt: number): number {
  const a: Attr | undefined = n.attrs[name];
  return a && a.type === 'int' ? a.value : dflt;
}
function attrFloat(n: Node, name: string, dflt: number): number {
  const a = n.attrs[name];
  return a && a.type === 'float' ? a.value : dflt;
}
function attrInts(n: Node, name: string): number[] | undefined {
  const a = n.attrs[name];
  return a && a.type === 'ints' ? [...a.value] : undefined;
}
function attrStr(n: Node, name: string, dflt: string): string {
  const a = n.attrs[name];
  return a && a.type === 'string' ? a.value : dflt;
}
function inp(ctx: RuleContext, k: number): Tensor {
  const t = ctx.x[k];
  if (!t) throw new Error(`${ctx.node.opType} (${ctx.node.name}): input ${k} is missing`);
  return t;
}
/**
 * A reduction's axes (the `axes` attribute, or those given; all by default) and its output gradient with the
 * reduced axes kept as 1 (the shape that broadcasts back to the input).
 */
function reduced(c: RuleContext, given?: number[]): { dy: Tensor; axes: number[]; keep: boolean } {
  const x = inp(c, 0);
  const keep = attrInt(c.node, 'keepdims', 1) === 1;
  const axes = given ?? (attrInts(c.node, 'axes') ?? range(0, x.rank)).map((a) => (a < 0 ? a + x.rank : a));
  const kept = x.shape.map((d, k) => (axes.includes(k) ? 1 : d));
  return { dy: keep ? c.dy : c.b.reshape(c.dy, kept), axes, keep };
}

/** Runs f only when input k needs a gradient. */
function when(ctx: RuleContext, k: number, f: () => Tensor): Tensor | null {
  return ctx.needs(k) ? f() : null;
}
/** f evaluated on first call only (a tensor several gradients share, built only when one needs it). */
function once<T>(f: () => T): () => T {
  let v: T | undefined;
  return () => (v ??= f());
}
function range(a: number, b: number): number[] {
  return Array.from({ length: b - a }, (_, k) => a + k);
}
/** Swaps the last two axes. */
function mT(b: Builder, t: Tensor): Tensor {
  const p = range(0, t.rank);
  p[t.rank - 2] = t.rank - 1;
  p[t.rank - 1] = t.rank - 2;
  return b.transpose(t, p);
}

interface ConvAttrs {
  pads: number[];
  strides: number[];
  dilations: number[];
  group: number;
}

function convAttrs(n: Node, spatial: number): ConvAttrs {
  if (attrStr(n, 'auto_pad', 'NOTSET') !== 'NOTSET') throw new Error(`${n.opType}: gradient needs explicit pads`);
  return {
    pads: attrInts(n, 'pads') ?? new Array<number>(2 * spatial).fill(0),
    strides: attrInts(n, 'strides') ?? new Array<number>(spatial).fill(1),
    dilations: attrInts(n, 'dilations') ?? new Array<number>(spatial).fill(1),
    group: attrInt(n, 'group', 1),
  };
}

/**
 * dW of y = conv(x, W) for x [N, C, *in], dy [N, M, *out]: dW[m, c, k] = sum_{n,o} dy[n, m, o] x[n, c, o*s + k*d - p],
 * itself a Conv with the batch as channels: input x^T [C/G, G*N, *in], weight dy^T [M, N, *out], strides and
 * dilations swapped, same pads, groups G; the result [C/G, M, *k'] (k' >= k) is transposed and cropped to k.
 */
export function convWeightGrad(b: Builder, x: Tensor, dy: Tensor, kernel: readonly number[], a: ConvAttrs): Tensor {
  const n = kernel.length;
  const [N, C] = x.shape as [number, number];
  const M = dy.shape[1]!;
  const G = a.group;
  const sp = range(2, 2 + n);
  let xin: Tensor;
  let win: Tensor;
  if (G === 1) {
    xin = b.transpose(x, [1, 0, ...sp]);
    win = b.transpose(dy, [1, 0, ...sp]);
  } else {
    const Cg = C / G;
    const Mg = M / G;
    const sp3 = range(3, 3 + n);
    xin = b.reshape(b.transpose(b.reshape(x, [N, G, Cg, ...x.shape.slice(2)]), [2, 1, 0, ...sp3]), [
      Cg,
      G * N,
      ...x.shape.slice(2),
    ]);
    win = b.reshape(b.transpose(b.reshape(dy, [N, G, Mg, ...dy.shape.slice(2)]), [1, 2, 0, ...sp3]), [
      M,
      N,
      ...dy.shape.slice(2),
    ]);
  }
  const r = b.conv(xin, win, null, { pads: a.pads, strides: a.dilations, dilations: a.strides, group: G });
  let dw = b.transpose(r, [1, 0, ...sp]);
  if (dw.shape.slice(2).join() !== kernel.join()) {
    dw = b.slice(
      dw,
      kernel.map(() => 0),
      kernel,
      sp,
    );
  }
  return dw;
}

/**
 * dX of a stride-1 conv as a Conv of dy with the spatially flipped, in/out-swapped weights and pads
 * d(k-1) - p (a "full" correlation). Same result as ConvTranspose(dy, W), but ORT's Conv kernels are
 * faster (measured 21 ms vs 32 ms for 128 channels at 96x96 on the CPU provider), and with constant W
 * the flip folds away at session creation. Returns null where it does not apply (strides > 1, or pads
 * wider than the kernel's reach): the caller uses ConvTranspose then.
 */
function flippedConvInputGrad(
  b: Builder,
  dy: Tensor,
  w: Tensor,
  a: ConvAttrs,
  xShape: readonly number[],
): Tensor | null {
  const n = w.rank - 2;
  const kernel = w.shape.slice(2);
  if (a.strides.some((s) => s !== 1)) return null;
  const pads = [
    ...range(0, n).map((d) => a.dilations[d]! * (kernel[d]! - 1) - a.pads[d]!),
    ...range(0, n).map((d) => a.dilations[d]! * (kernel[d]! - 1) - a.pads[d + n]!),
  ];
  if (pads.some((p) => p < 0)) return null;
  const [M, Cg] = w.shape as [number, number];
  const G = a.group;
  const sp = range(2, 2 + n);
  // [M, C/G, *k] -> [C, M/G, *k]: swap in/out channels within each group.
  const swapped =
    G === 1
      ? b.transpose(w, [1, 0, ...sp])
      : b.reshape(b.transpose(b.reshape(w, [G, M / G, Cg, ...kernel]), [0, 2, 1, ...range(3, 3 + n)]), [
          G * Cg,
          M / G,
          ...kernel,
        ]);
  const flipped = b.slice(
    swapped,
    kernel.map((k) => k - 1),
    kernel.map((k) => -k - 1),
    sp,
    kernel.map(() => -1),
  );
  const g = b.conv(dy, flipped, null, { pads, strides: a.strides, dilations: a.dilations, group: G });
  if (g.shape.join() !== xShape.join())
    throw new Error(`Conv: flipped-kernel gradient gave ${g}, want [${xShape.join(', ')}]`);
  return g;
}

/**
 * dX of a patch embedding (2-D, stride = kernel > 1x1, no padding or dilation, one group: ViT's patchify) as a
 * MatMul: each input pixel feeds exactly one output cell, so dX is dy^T [N, oh, ow, M] times W [M, C kh kw],
 * rearranged from patches back to the image (col2im without overlaps), with zero rows and columns for the
 * pixels past the last whole patch. A large GEMM instead of a strided ConvTranspose. Null where it does not apply.
 */
function patchConvInputGrad(b: Builder, dy: Tensor, w: Tensor, a: ConvAttrs, xShape: readonly number[]): Tensor | null {
  if (w.rank !== 4 || a.group !== 1) return null;
  const [M, C, kh, kw] = w.shape as [number, number, number, number];
  // 1x1 convolutions keep the Conv path (no layout change around a pointwise product).
  if (kh * kw === 1) return null;
  if (a.strides[0] !== kh || a.strides[1] !== kw || a.dilations.some((d) => d !== 1) || a.pads.some((p) => p !== 0))
    return null;
  const [N, , oh, ow] = dy.shape as [number, number, number, number];
  const cols = b.matmul(b.transpose(dy, [0, 2, 3, 1]), b.reshape(w, [M, C * kh * kw])); // (N, oh, ow, C kh kw)
  const img = b.transpose(b.reshape(cols, [N, oh, ow, C, kh, kw]), [0, 3, 1, 4, 2, 5]); // (N, C, oh, kh, ow, kw)
  const g = b.reshape(img, [N, C, oh * kh, ow * kw]);
  const [H, W] = [xShape[2]!, xShape[3]!];
  return H === oh * kh && W === ow * kw ? g : b.pad(g, [0, 0, 0, 0, 0, 0, H - oh * kh, W - ow * kw]);
}

/**
 * Gradient of a reflect / edge Pad, one axis at a time: the centre of dy, plus the padded strips folded
 * back onto the cells they copied (reflect: mirrored, without the edge cell; edge: summed onto the edge).
 */
function foldPadded(
  b: Builder,
  dy: Tensor,
  xShape: readonly number[],
  pads: readonly number[],
  mode: 'reflect' | 'edge',
  node: Node,
): Tensor {
  const r = xShape.length;
  let g = dy;
  for (let a = 0; a < r; a++) {
    const pb = pads[a]!;
    const pe = pads[a + r]!;
    const n = xShape[a]!;
    if (pb < 0 || pe < 0) throw new Error(`Pad: no gradient for negative pads in mode '${mode}' (${node.name})`);
    if (pb === 0 && pe === 0) continue;
    const along = (t: Tensor, lo: number, hi: number) => {
      const p = new Array<number>(2 * r).fill(0);
      p[a] = lo;
      p[a + r] = hi;
      return b.pad(t, p);
    };
    const flip = (t: Tensor) => b.slice(t, [-1], [-(t.shape[a]! + 1)], [a], [-1]);
    let centre = b.slice(g, [pb], [pb + n], [a]);
    if (pb > 0) {
      const left = b.slice(g, [0], [pb], [a]); // copies of x[pb], ..., x[1] (reflect) or x[0] (edge)
      if (mode === 'reflect') {
        if (pb >= n) throw new Error(`Pad: reflect pads must be smaller than the axis (${node.name})`);
        centre = b.add(centre, along(flip(left), 1, n - 1 - pb));
      } else {
        centre = b.add(centre, along(b.reduceSum(left, [a], true), 0, n - 1));
      }
    }
    if (pe > 0) {
      const right = b.slice(g, [pb + n], [pb + n + pe], [a]); // copies of x[n-2], ..., x[n-1-pe] (reflect)
      if (mode === 'reflect') {
        if (pe >= n) throw new Error(`Pad: reflect pads must be smaller than the axis (${node.name})`);
        centre = b.add(centre, along(flip(right), n - 1 - pe, 1));
      } else {
        centre = b.add(centre, along(b.reduceSum(right, [a], true), n - 1, 0));
      }
    }
    g = centre;
  }
  return g;
}

/** Where(cond, dy, 0): the gradient masked to where cond holds. */
function mask(b: Builder, cond: Tensor, dy: Tensor, keepWhere = true): Tensor {
  const z = b.scalar(0, dy.dtype);
  return keepWhere ? b.where(cond, dy, z) : b.where(cond, z, dy);
}

const nonDifferentiable: GradRule = ({ x }) => x.map(() => null);

/** Ops whose outputs are integers or booleans, or are piecewise constant: no gradient flows through them. */
export const NON_DIFFERENTIABLE: ReadonlySet<string> = new Set([
  'ArgMax',
  'ArgMin',
  'Equal',
  'Less',
  'Greater',
  'LessOrEqual',
  'GreaterOrEqual',
  'And',
  'Or',
  'Not',
]);

/** The builder's fused ops (composites with one closed-form rule each). */
export const FUSED_OPS: readonly string[] = ['SiLU', 'QuickGelu', 'GroupNorm', 'GroupNormSiLU', 'ClampWithGrad'];

function groupDims(c: RuleContext) {
  const x = inp(c, 0);
  const attrs = c.node.marker?.kind === 'fused' ? c.node.marker.attrs : undefined;
  const G = attrs?.groups ?? 0;
  const [N, C] = x.shape as [number, number];
  const Cg = C / G;
  return { G, N, C, Cg, HW: x.size / (N * C) };
}

/**
 * GroupNorm's backward pass for the gradient dy of its output (y = xc inv scale + bias per group, xc = x - mean,
 * inv = 1/std over the group's K values; g = dy scale):
 *   dx = inv (g - mean(g) - xhat mean(g xhat)) = dy (inv scale) + xc (-inv^3 mean(g xc)) + (-inv mean(g)),
 * the means over the group from per-channel sums of dy and dy xc (two full-size reads), the factors per
 * (sample, channel) or per (sample, group): four full-size writes in all.
 */
function groupNormGrad(c: RuleContext, dy: Tensor): (Tensor | null)[] {
  const { b } = c;
  const x = inp(c, 0);
  const scale = inp(c, 1);
  const [xc, inv] = c.saved as [Tensor, Tensor];
  const { G, N, C, Cg, HW } = groupDims(c);
  const K = Cg * HW;
  const dy4 = b.reshape(dy, [N, G, Cg, HW]);
  const xc4 = b.reshape(xc, [N, G, Cg, HW]);
  const g4 = b.reshape(scale, [1, G, Cg, 1]);
  const inv4 = b.reshape(inv, [N, G, 1, 1]);
  const sdy = once(() => b.reduceSum(dy4, [3], true)); // (N, G, Cg, 1)
  const sdyx = once(() => b.reduceSum(b.mul(dy4, xc4), [3], true));
  return [
    when(c, 0, () => {
      const mg = b.div(b.reduceSum(b.mul(sdy(), g4), [2], true), K); // (N, G, 1, 1)
      const mgx = b.div(b.reduceSum(b.mul(sdyx(), g4), [2], true), K);
      const a = b.mul(inv4, g4); // (N, G, Cg, 1)
      const p = b.neg(b.mul(b.mul(b.mul(inv4, inv4), inv4), mgx));
      const q = b.neg(b.mul(inv4, mg));
      return b.reshape(b.add(b.mul(dy4, a), b.add(b.mul(xc4, p), q)), x.shape);
    }),
    when(c, 1, () => b.reshape(b.reduceSum(b.mul(sdyx(), inv4), [0, 3], false), [C])),
    when(c, 2, () => b.reshape(b.reduceSum(sdy(), [0, 3], false), [C])),
  ];
}

/**
 * Ops whose rule is correct for a gradient that is smaller than the output along some axes (broadcast):
 * elementwise rules, whose results broadcast to the output's shape anyway. Every other rule gets the
 * gradient materialised at the output's shape.
 */
export const BROADCAST_DY: ReadonlySet<string> = new Set(
  (
    'Add Sub Mul Div Neg Pow Sqrt Exp Log Reciprocal Sigmoid Tanh Erf Asin Relu Abs Sign Max Min Clip Where ' +
    'Identity Cast Expand SiLU QuickGelu ClampWithGrad'
  ).split(' '),
);

export const RULES: Readonly<Record<string, GradRule>> = {
  // ---- elementwise arithmetic (broadcast reduction happens in grad.ts) ----
  Add: ({ dy }) => [dy, dy],
  // Reduce, then negate: the negation runs on the subtrahend's (often much smaller) shape.
  Sub: (c) => [c.dy, when(c, 1, () => c.b.neg(c.b.sumToward(c.dy, inp(c, 1).shape)))],
  Mul: (c) => [when(c, 0, () => c.b.mul(c.dy, inp(c, 1))), when(c, 1, () => c.b.mul(c.dy, inp(c, 0)))],
  Div: (c) => {
    const { b, dy } = c;
    const den = inp(c, 1);
    // d(a/b)/db = -a/b^2 = -y/b; b is constant along its broadcast axes, so sum dy*y over them first.
    return [
      when(c, 0, () => b.div(dy, den)),
      when(c, 1, () => b.neg(b.div(b.sumToward(b.mul(dy, c.y[0]!), den.shape), den))),
    ];
  },
  Neg: ({ b, dy }) => [b.neg(dy)],
  Pow: (c) => {
    const { b, dy } = c;
    const x = inp(c, 0);
    const p = inp(c, 1);
    const dx = when(c, 0, () => {
      if (p.kind === 'initializer' && p.size === 1) {
        const v = b.constValues(p)[0]!;
        if (v === 1) return dy;
        if (v === 0) return b.zeros(x.shape, x.dtype); // x^0 = 1 (also at x = 0, where p x^(p-1) would be NaN)
        const d = v === 2 ? x : b.pow(x, b.scalar(v - 1, x.dtype));
        return b.mul(dy, b.mul(d, b.scalar(v, x.dtype)));
      }
      return b.mul(dy, b.mul(p, b.pow(x, b.sub(p, 1))));
    });
    // d(x^p)/dp = x^p log x (defined for x > 0)
    return [dx, when(c, 1, () => b.mul(dy, b.mul(c.y[0]!, b.log(x))))];
  },
  Sqrt: ({ b, dy, y }) => [b.div(b.mul(dy, 0.5), y[0]!)],
  Exp: ({ b, dy, y }) => [b.mul(dy, y[0]!)],
  Log: (c) => [c.b.div(c.dy, inp(c, 0))],
  Reciprocal: ({ b, dy, y }) => [b.neg(b.mul(dy, b.mul(y[0]!, y[0]!)))],
  Sigmoid: ({ b, dy, y }) => [b.mul(dy, b.mul(y[0]!, b.sub(1, y[0]!)))],
  Tanh: ({ b, dy, y }) => [b.mul(dy, b.sub(1, b.mul(y[0]!, y[0]!)))],
  Erf: (c) => {
    const x = inp(c, 0);
    const { b } = c;
    return [b.mul(c.dy, b.mul(b.exp(b.neg(b.mul(x, x))), 2 / Math.sqrt(Math.PI)))];
  },
  Asin: (c) => {
    const x = inp(c, 0);
    const { b } = c;
    return [b.div(c.dy, b.sqrt(b.sub(1, b.mul(x, x))))];
  },
  Relu: (c) => [mask(c.b, c.b.greater(inp(c, 0), 0), c.dy)],
  // sign(x) written with Where (0 at x = 0, as PyTorch): ORT 1.30's WebGPU provider has no Sign kernel.
  Abs: (c) => {
    const { b } = c;
    const x = inp(c, 0);
    return [b.where(b.less(x, 0), b.neg(c.dy), mask(b, b.greater(x, 0), c.dy))];
  },
  Sign: ({ b, x }) => [b.zeros(x[0]!.shape, x[0]!.dtype)],
  // Ties go to the first operand.
  Max: (c) => {
    if (c.x.length !== 2) throw new Error(`Max: gradient implemented for two operands, got ${c.x.length}`);
    const ge = c.b.greaterOrEqual(inp(c, 0), inp(c, 1));
    return [when(c, 0, () => mask(c.b, ge, c.dy)), when(c, 1, () => mask(c.b, ge, c.dy, false))];
  },
  Min: (c) => {
    if (c.x.length !== 2) throw new Error(`Min: gradient implemented for two operands, got ${c.x.length}`);
    const le = c.b.lessOrEqual(inp(c, 0), inp(c, 1));
    return [when(c, 0, () => mask(c.b, le, c.dy)), when(c, 1, () => mask(c.b, le, c.dy, false))];
  },
  Clip: (c) => {
    const { b, dy } = c;
    const x = inp(c, 0);
    const lo = c.x[1] ?? null;
    const hi = c.x[2] ?? null;
    let inside: Tensor | null = null;
    if (lo) inside = b.greaterOrEqual(x, lo);
    if (hi) inside = inside ? b.and(inside, b.lessOrEqual(x, hi)) : b.lessOrEqual(x, hi);
    return [
      when(c, 0, () => (inside ? mask(b, inside, dy) : dy)),
      when(c, 1, () => mask(b, b.less(x, lo!), dy)),
      when(c, 2, () => mask(b, b.greater(x, hi!), dy)),
    ];
  },
  Where: (c) => [
    null,
    when(c, 1, () => mask(c.b, inp(c, 0), c.dy)),
    when(c, 2, () => mask(c.b, inp(c, 0), c.dy, false)),
  ],
  Identity: ({ dy }) => [dy],
  Cast: (c) => {
    const x = inp(c, 0);
    return [isFloat(x.dtype) && isFloat(c.dy.dtype) ? c.b.cast(c.dy, x.dtype) : null];
  },

  // ---- linear algebra ----
  MatMul: (c) => {
    const { b } = c;
    const a = inp(c, 0);
    const w = inp(c, 1);
    // Promote 1-D operands as numpy does, so both products below are plain batched matmuls.
    const a2 = a.rank === 1 ? b.reshape(a, [1, a.shape[0]!]) : a;
    const w2 = w.rank === 1 ? b.reshape(w, [w.shape[0]!, 1]) : w;
    const out2 = [...broadcastBatch(a2, w2), a2.shape[a2.rank - 2]!, w2.shape[w2.rank - 1]!];
    const dy2 = b.reshape(c.dy, out2);
    return [
      when(c, 0, () => {
        const g = b.matmul(dy2, mT(b, w2));
        return a.rank === 1 ? b.reshape(b.sumTo(g, [1, a.shape[0]!]), a.shape) : g;
      }),
      when(c, 1, () => {
        const g = b.matmul(mT(b, a2), dy2);
        return w.rank === 1 ? b.reshape(b.sumTo(g, [w.shape[0]!, 1]), w.shape) : g;
      }),
    ];
  },
  Gemm: (c) => {
    const { b, dy, node } = c;
    const A = inp(c, 0);
    const B = inp(c, 1);
    const alpha = attrFloat(node, 'alpha', 1);
    const beta = attrFloat(node, 'beta', 1);
    const tA = attrInt(node, 'transA', 0) === 1;
    const tB = attrInt(node, 'transB', 0) === 1;
    return [
      when(c, 0, () => {
        // dA' = alpha dy B'^T, with B'^T = transB ? B : B^T
        const g = b.gemm(dy, B, null, { alpha, transB: !tB });
        return tA ? b.transpose(g) : g;
      }),
      when(c, 1, () => {
        // dB' = alpha A'^T dy, with A'^T = transA ? A : A^T
        const g = b.gemm(A, dy, null, { alpha, transA: !tA });
        return tB ? b.transpose(g) : g;
      }),
      // Float attributes are float32 in ONNX: scale by the beta the forward pass really used.
      when(c, 2, () => (beta === 1 ? dy : b.mul(dy, Math.fround(beta)))),
    ];
  },
  Conv: (c) => {
    const { b, dy, node } = c;
    const x = inp(c, 0);
    const w = inp(c, 1);
    const n = x.rank - 2;
    const a = convAttrs(node, n);
    const kernel = w.shape.slice(2);
    return [
      when(c, 0, () => {
        const patches = patchConvInputGrad(b, dy, w, a, x.shape);
        if (patches) return patches;
        const flipped = flippedConvInputGrad(b, dy, w, a, x.shape);
        if (flipped) return flipped;
        // ConvTranspose is the adjoint of Conv; output_padding restores the rows a strided conv dropped.
        const outputPadding = range(0, n).map((d) => {
          const span = (kernel[d]! - 1) * a.dilations[d]! + 1;
          return x.shape[2 + d]! - (a.strides[d]! * (dy.shape[2 + d]! - 1) + span - a.pads[d]! - a.pads[d + n]!);
        });
        return b.convTranspose(dy, w, null, { ...a, outputPadding });
      }),
      when(c, 1, () => convWeightGrad(b, x, dy, kernel, a)),
      when(c, 2, () => b.reduceSum(dy, [0, ...range(2, 2 + n)])),
    ];
  },
  ConvTranspose: (c) => {
    const { b, dy, node } = c;
    const x = inp(c, 0);
    const w = inp(c, 1);
    const n = x.rank - 2;
    const a = convAttrs(node, n);
    if (attrInts(node, 'output_shape'))
      throw new Error('ConvTranspose: gradient needs output_padding, not output_shape');
    return [
      when(c, 0, () => {
        const g = b.conv(dy, w, null, a);
        if (g.shape.join() !== x.shape.join()) throw new Error(`ConvTranspose: adjoint conv gave ${g}, want ${x}`);
        return g;
      }),
      // The weight gradient of a transposed conv is the conv weight gradient with x and dy swapped.
      when(c, 1, () => convWeightGrad(b, dy, x, w.shape.slice(2), a)),
      when(c, 2, () => b.reduceSum(dy, [0, ...range(2, 2 + n)])),
    ];
  },

  // ---- resampling, reductions, normalisation ----
  Resize: (c) => {
    const { b, dy, node } = c;
    const x = inp(c, 0);
    const mode = attrStr(node, 'mode', 'nearest');
    const ctm = attrStr(node, 'coordinate_transformation_mode', 'half_pixel');
    const scalesT = c.x[2];
    if (mode !== 'nearest' || ctm !== 'asymmetric' || attrStr(node, 'nearest_mode', '') !== 'floor' || !scalesT) {
      throw new Error(`Resize: gradient only for nearest / asymmetric / floor with integer scales (${node.name})`);
    }
    const scales = b.constValues(scalesT);
    // y[i*s + r] = x[i]: split each scaled axis into (d, s) and sum the s part.
    const split: number[] = [];
    const axes: number[] = [];
    x.shape.forEach((d, k) => {
      split.push(d);
      if (scales[k]! !== 1) {
        split.push(scales[k]!);
        axes.push(split.length - 1);
      }
    });
    return [b.reduceSum(b.reshape(dy, split), axes, false), null, null, null];
  },
  ReduceSum: (c) => {
    const { b } = c;
    const axesT = c.x[1];
    const x = inp(c, 0);
    const axes = axesT ? b.constValues(axesT).map((a) => (a < 0 ? a + x.rank : a)) : range(0, x.rank);
    // Kept dimensions, not an Expand: grad.ts broadcasts it where a rule needs the full shape.
    return [reduced(c, axes).dy, null];
  },
  ReduceSumSquare: (c) => {
    const { dy } = reduced(c);
    return [c.b.mul(inp(c, 0), c.b.mul(dy, 2))];
  },
  ReduceMean: (c) => {
    const { dy, axes } = reduced(c);
    const x = inp(c, 0);
    return [
      c.b.div(
        dy,
        axes.reduce((s, a) => s * x.shape[a]!, 1),
      ),
    ];
  },
  ReduceMax: (c) => {
    const { b } = c;
    const x = inp(c, 0);
    const { dy: g, axes, keep } = reduced(c);
    const y = keep ? c.y[0]! : b.reshape(c.y[0]!, g.shape);
    // The gradient goes to the maxima, split evenly between ties.
    const hit = b.cast(b.equal(x, y), x.dtype);
    return [b.mul(hit, b.div(g, b.reduceSum(hit, axes, true)))];
  },
  Softmax: (c) => {
    const { b, dy, node } = c;
    const y = c.y[0]!;
    const axis = attrInt(node, 'axis', -1);
    // dx = y * (dy - sum(dy * y))
    return [b.mul(y, b.sub(dy, b.reduceSum(b.mul(dy, y), [axis], true)))];
  },
  LayerNormalization: (c) => {
    const { b, dy, node } = c;
    if (c.dys[1] || c.dys[2]) throw new Error('LayerNormalization: no gradient through the Mean/InvStdDev outputs');
    const x = inp(c, 0);
    const scale = inp(c, 1);
    const axis = attrInt(node, 'axis', -1);
    const a = axis < 0 ? axis + x.rank : axis;
    const axes = range(a, x.rank);
    let [, mean, inv] = c.y as [Tensor, Tensor, Tensor];
    if (mean.dtype !== x.dtype) {
      // The saved statistics are float32 (stash_type); for float64 recompute them exactly.
      const eps = Math.fround(attrFloat(node, 'epsilon', 1e-5)); // the float32 attribute the kernel reads
      mean = b.reduceMean(x, axes, true);
      const xc = b.sub(x, mean);
      inv = b.reciprocal(b.sqrt(b.add(b.reduceMean(b.mul(xc, xc), axes, true), eps)));
    }
    // From the saved statistics: xhat = (x - mean) * inv, g = dy * scale,
    // dx = inv * (g - mean(g) - xhat * mean(g * xhat)).
    const xhat = b.mul(b.sub(x, mean), inv);
    return [
      when(c, 0, () => {
        const g = b.mul(dy, scale);
        const mg = b.reduceMean(g, axes, true);
        const mgx = b.reduceMean(b.mul(g, xhat), axes, true);
        return b.mul(inv, b.sub(b.sub(g, mg), b.mul(xhat, mgx)));
      }),
      when(c, 1, () => b.mul(dy, xhat)),
      when(c, 2, () => dy),
    ];
  },

  // ---- shape ops ----
  Reshape: (c) => [c.b.reshape(c.dy, inp(c, 0).shape), null],
  Squeeze: (c) => [c.b.reshape(c.dy, inp(c, 0).shape), null],
  Unsqueeze: (c) => [c.b.reshape(c.dy, inp(c, 0).shape), null],
  Expand: ({ dy }) => [dy, null],
  Transpose: (c) => {
    const perm = attrInts(c.node, 'perm') ?? range(0, c.dy.rank).reverse();
    const inv = new Array<number>(perm.length);
    perm.forEach((p, k) => (inv[p] = k));
    return [c.b.transpose(c.dy, inv)];
  },
  Concat: (c) => {
    const rank = c.dy.rank;
    const axis = (attrInt(c.node, 'axis', 0) + rank) % rank;
    let off = 0;
    return c.x.map((t, k) => {
      const len = t!.shape[axis]!;
      const start = off;
      off += len;
      return c.needs(k) ? c.b.slice(c.dy, [start], [start + len], [axis]) : null;
    });
  },
  Slice: (c) => {
    const { b, dy } = c;
    const x = inp(c, 0);
    const starts = b.constValues(inp(c, 1));
    const ends = b.constValues(inp(c, 2));
    const axes = c.x[3] ? b.constValues(c.x[3]) : starts.map((_, k) => k);
    const steps = c.x[4] ? b.constValues(c.x[4]) : starts.map(() => 1);
    const r = x.rank;
    const ranges = axes.map((ax, k) => ({
      a: ax < 0 ? ax + r : ax,
      step: steps[k]!,
      ...sliceRange(x.shape[ax < 0 ? ax + r : ax]!, starts[k]!, ends[k]!, steps[k]!),
    }));
    if (ranges.some((q) => q.length === 0)) return [b.zeros(x.shape, x.dtype), null, null, null, null];
    // Unit steps: the gradient is a zero Pad back to the input's shape.
    const pads = new Array<number>(2 * r).fill(0);
    let g = dy;
    for (const q of ranges) {
      let first = q.start;
      let step = q.step;
      if (step < 0) {
        // Reversed (flips): reverse dy along the axis, then it is the ascending slice from the last index.
        g = b.slice(g, [-1], [-(q.length + 1)], [q.a], [-1]);
        first = q.start + (q.length - 1) * step;
        step = -step;
      }
      if (step > 1) {
        // Strided: put step-1 zeros after each element, [.., L, ..] -> [.., L, step, ..] -> [.., L*step, ..].
        const spread = g.shape.map((d, k) => (k === q.a ? [d, 1] : [d])).flat();
        const padSpread = new Array<number>(2 * (r + 1)).fill(0);
        padSpread[r + 1 + q.a + 1] = step - 1;
        const wide = g.shape.map((d, k) => (k === q.a ? d * step : d));
        g = b.reshape(b.pad(b.reshape(g, spread), padSpread), wide);
      }
      pads[q.a] = first;
      pads[q.a + r] = x.shape[q.a]! - first - g.shape[q.a]!; // may be negative: Pad crops the trailing zeros
    }
    return [b.pad(g, pads), null, null, null, null];
  },
  Gather: (c) => {
    const { b, dy } = c;
    const x = inp(c, 0);
    const idx = inp(c, 1);
    const axis = attrInt(c.node, 'axis', 0);
    const a = axis < 0 ? axis + x.rank : axis;
    // Flatten the index dims into one so ScatterElements (indices shaped like updates) can add dy into zeros.
    const k = idx.size;
    const upd = b.reshape(dy, [...x.shape.slice(0, a), k, ...x.shape.slice(a + 1)]);
    let full: Tensor;
    if (idx.kind === 'initializer' && upd.size <= 1 << 24) {
      // Constant indices: expand them here, as int32, so the backward graph has no int64 Expand
      // (which ORT's WebGPU provider runs only with enableInt64).
      const vals = b.constValues(idx);
      const data = new Int32Array(upd.size);
      const inner = sizeOf(x.shape.slice(a + 1));
      for (let p = 0; p < data.length; p++) data[p] = vals[Math.floor(p / inner) % k]!;
      full = b.constant({ dtype: 'int32', dims: upd.shape, data });
    } else {
      const ix = b.reshape(idx, [...x.shape.slice(0, a).map(() => 1), k, ...x.shape.slice(a + 1).map(() => 1)]);
      full = b.expand(ix, upd.shape);
    }
    return [b.scatterElementsAdd(b.zeros(x.shape, x.dtype), full, upd, a), null];
  },
  Pad: (c) => {
    const { b, dy, node } = c;
    const x = inp(c, 0);
    const mode = attrStr(node, 'mode', 'constant');
    if (c.needs(2)) throw new Error(`Pad: no gradient for the constant value (${node.name})`);
    const pads = b.constValues(inp(c, 1));
    const r = x.rank;
    if (mode === 'reflect' || mode === 'edge') return [foldPadded(b, dy, x.shape, pads, mode, node), null, null];
    if (mode !== 'constant') throw new Error(`Pad: no gradient for mode '${mode}' (${node.name})`);
    // Crop what was padded, then zero-pad what was cropped (negative pads).
    const crop = b.slice(
      dy,
      range(0, r).map((k) => Math.max(pads[k]!, 0)),
      range(0, r).map((k) => dy.shape[k]! - Math.max(pads[k + r]!, 0)),
      range(0, r),
    );
    const back = [
      ...range(0, r).map((k) => Math.max(-pads[k]!, 0)),
      ...range(0, r).map((k) => Math.max(-pads[k + r]!, 0)),
    ];
    return [back.some((p) => p > 0) ? b.pad(crop, back) : crop, null, null];
  },
  // ---- fused ops (builder composites; x = the composite's inputs, saved = its forward intermediates) ----
  // SiLU y = x s, s = sigmoid(x): dx = dy (s + x s (1 - s)) = dy (s + y - y s). The derivative is built here,
  // after the gradient flowing in: ORT's execution order (a reverse depth-first walk that takes a node's
  // later-built inputs first) then computes it right after the forward pass's s and y, so the backward pass
  // keeps one tensor per SiLU (the derivative) instead of two (s and y).
  SiLU: (c) => {
    const { b, dy } = c;
    const y = c.y[0]!;
    const s = c.saved[0]!;
    return [b.mul(dy, b.add(s, b.sub(y, b.mul(y, s))))];
  },
  // QuickGELU y = x s, s = sigmoid(1.702 x): dx = dy (s + 1.702 x s (1 - s)) = dy (s + 1.702 (y - y s)), likewise.
  QuickGelu: (c) => {
    const { b, dy } = c;
    const y = c.y[0]!;
    const s = c.saved[0]!;
    return [b.mul(dy, b.add(s, b.mul(b.sub(y, b.mul(y, s)), 1.702)))];
  },
  // GroupNorm (see groupNormGrad).
  GroupNorm: (c) => groupNormGrad(c, c.dy),
  // silu(groupNorm(x)): the normalised y = xc A + bias and s = sigmoid(y) are recomputed here from the saved xc
  // and 1/std (written with the operands in another order than the forward pass's, so ORT's common-subexpression
  // pass does not fold them back into the forward tensors and keep those alive), then g = dy silu'(y) goes
  // through the GroupNorm rule (with out = y s: s + y s (1 - s) = s + out - out s).
  GroupNormSiLU: (c) => {
    const { b, dy } = c;
    const x = inp(c, 0);
    const [xc, inv] = c.saved as [Tensor, Tensor];
    const { G, N, Cg, HW } = groupDims(c);
    const a = b.mul(b.reshape(c.x[1]!, [1, G, Cg, 1]), b.reshape(inv, [N, G, 1, 1]));
    const y = b.reshape(b.add(b.reshape(c.x[2]!, [1, G, Cg, 1]), b.mul(a, b.reshape(xc, [N, G, Cg, HW]))), x.shape);
    const s = b.sigmoid(y);
    const out = b.mul(s, y); // the op's output, silu(y)
    return groupNormGrad(c, b.mul(dy, b.add(b.sub(out, b.mul(out, s)), s)));
  },
  // clamp_with_grad: the gradient passes where it points back into the range, dy (x - clamp(x)) >= 0.
  ClampWithGrad: (c) => {
    const { b, dy } = c;
    const x = inp(c, 0);
    return [mask(b, b.greaterOrEqual(b.mul(dy, b.sub(x, c.y[0]!)), 0), dy)];
  },

  // ---- non-differentiable ----
  ...Object.fromEntries([...NON_DIFFERENTIABLE].map((op) => [op, nonDifferentiable])),
};

function broadcastBatch(a: Tensor, b: Tensor): number[] {
  const sa = a.shape.slice(0, -2);
  const sb = b.shape.slice(0, -2);
  const r = Math.max(sa.length, sb.length);
  const out: number[] = [];
  for (let k = 0; k < r; k++) {
    const da = sa[sa.length - r + k] ?? 1;
    const db = sb[sb.length - r + k] ?? 1;
    out.push(da === 1 ? db : da);
  }
  return out;
}
