// The builder: a tiny tensor library whose calls append ONNX nodes (default domain, opset 17) to a
// Graph, inferring every output's static shape and dtype at build time and failing early, with the
// op's name and the shapes, on a mismatch.
//
// Public API (all methods on `Builder`; `b.graph` is the underlying ir.ts Graph)
//   inputs/constants  input(name, shape, dtype='float32'), param(name, HostTensor), constant(HostTensor | number[],
//                     dtype?, shape?), scalar(v, dtype), ints(values) (int64 1-D), zeros/ones/full(shape, dtype, v)
//   elementwise       add sub mul div pow min max (numbers are promoted to scalars of the other operand's dtype),
//                     neg sqrt exp log sigmoid tanh erf asin relu abs sign reciprocal identity square,
//                     clip(x, min?, max?), cast(x, dtype), where(cond, a, b),
//                     less greater equal lessOrEqual greaterOrEqual (bool), and or not
//   linear algebra    matmul(a, b) (batched, broadcast, 1-D operands as numpy), gemm(a, b, c?, {alpha,beta,transA,transB}),
//                     conv(x, w, bias?, ConvOptions), convTranspose(x, w, bias?, ConvTransposeOptions)
//   normalisation     softmax(x, axis=-1), layerNorm(x, scale, bias?, {axis=-1, epsilon=1e-5}) (LayerNormalization op),
//                     groupNorm(x, groups, scale, bias, epsilon=1e-5) (decomposed: Reshape + ReduceMean ..., never
//                     the GroupNormalization op, which ORT's WebGPU provider lacks; a fused op for grad.ts),
//                     groupNormSilu(...) (silu(groupNorm(...)) as one fused op that keeps less for its gradient)
//   reductions        reduceSum(x, axes?, keepdims=false), reduceMean(x, axes?, keepdims=false), reduceMax(...),
//                     reduceSumSquare(...), sum(x), mean(x) (to a scalar), sumTo(t, shape) (undo a broadcast),
//                     sumToward(t, shape) (the same, leaving axes where t is 1 broadcast),
//                     argMax/argMin(x, axis, keepdims=true) (int64, no gradient)
//   shape             reshape(x, shape) (-1 allowed, resolved statically), transpose(x, perm?), concat(xs, axis),
//                     slice(x, starts, ends, axes?, steps?), gather(x, indices, axis=0), pad(x, pads, {mode, value}),
//                     expand(x, shape), squeeze(x, axes), unsqueeze(x, axes), upsample(x, scales) (Resize nearest,
//                     integer scales), scatterElementsAdd(data, indices, updates, axis)
//   composites        linear(x, w[out,in], bias?), gelu, quickGelu, silu, clampWithGrad(x, lo, hi) (the last three fused
//                     ops: one closed-form rule each), l2Normalize(x, axis, eps), split(x, sizes, axis),
//                     adaptiveAvgPool2d(x, [oh, ow]), resizeBilinear(x, [oh, ow]) (PyTorch semantics, as MatMuls),
//                     resampleSeparable(x, rows[oh][H], cols[ow][W]) (any separable filter as two MatMuls)
//   gradient markers  stopGradient(x), straightThrough(forward, backward) (forward value, backward gradient path),
//                     fused(op, out, inputs, saved?, attrs?) (a composite differentiated by RULES[op] as one op)
//   escape hatch      node(opType, inputs, outputSpecs, attrs) (any op; grad() fails naming it if it has no rule)
//   helpers           constValues(t) (numbers of an initializer), broadcastShapes(...shapes), sliceRange(...)
//
// Every shape-like operand (Reshape's shape, ReduceSum's axes, Slice's starts, ...) is an int64 initializer
// computed here, so shapes stay static and grad.ts can read them back with constValues().

import {
  type Attr,
  type DType,
  type HostTensor,
  type Marker,
  type OutputSpec,
  Graph,
  Tensor,
  allocData,
  isFloat,
  sizeOf,
} from './ir.js';

export type TensorLike = Tensor | number;

export interface ConvOptions {
  /** [x1_begin, x2_begin, ..., x1_end, x2_end, ...] as in ONNX; default zeros. */
  pads?: readonly number[];
  strides?: readonly number[];
  dilations?: readonly number[];
  group?: number;
}

export interface ConvTransposeOptions extends ConvOptions {
  outputPadding?: readonly number[];
}

export interface GemmOptions {
  alpha?: number;
  beta?: number;
  transA?: boolean;
  transB?: boolean;
}

export type PadMode = 'constant' | 'reflect' | 'edge';

const ONNX_DTYPE_CODE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int32: 6,
  int64: 7,
  bool: 9,
  float64: 11,
};

export function dtypeCode(dtype: DType): number {
  return ONNX_DTYPE_CODE[dtype];
}

export function dtypeFromCode(code: number): DType {
  for (const [k, v] of Object.entries(ONNX_DTYPE_CODE)) if (v === code) return k as DType;
  throw new Error(`unsupported ONNX data type ${code}`);
}

/** Numpy-style broadcast of several static shapes; throws on incompatible shapes. */
export function broadcastShapes(...shapes: (readonly number[])[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    let d = 1;
    for (const s of shapes) {
      const k = s.length - rank + i;
      const v = k >= 0 ? s[k]! : 1;
      if (v === 1) continue;
      if (d !== 1 && d !== v) {
        throw new Error(`shapes ${shapes.map((s) => `[${s.join(', ')}]`).join(' and ')} do not broadcast`);
      }
      d = v;
    }
    out.push(d);
  }
  return out;
}

function normAxis(axis: number, rank: number, op: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new Error(`${op}: axis ${axis} out of range for rank ${rank}`);
  return a;
}

function shp(t: Tensor): string {
  return `[${t.shape.join(', ')}]`;
}

const i = (value: number): Attr => ({ type: 'int', value });
const f = (value: number): Attr => ({ type: 'float', value });
const ints = (value: readonly number[]): Attr => ({ type: 'ints', value });
const str = (value: string): Attr => ({ type: 'string', value });

export class Builder {
  readonly graph: Graph;
  private readonly constCache = new Map<string, Tensor>();

  constructor(name = 'graph') {
    this.graph = new Graph(name);
  }

  // ---------- inputs and constants ----------

  input(name: string, shape: readonly number[], dtype: DType = 'float32'): Tensor {
    return this.graph.addInput(name, dtype, shape);
  }

  /** A named weight (initializer with exactly this name). */
  param(name: string, value: HostTensor): Tensor {
    return this.graph.addInitializer(name, value, true);
  }

  /** An anonymous constant initializer. Plain number arrays default to float32 of shape [n]. */
  constant(value: HostTensor | readonly number[], dtype: DType = 'float32', shape?: readonly number[]): Tensor {
    if (!Array.isArray(value)) return this.graph.addInitializer('const', value as HostTensor);
    const arr = value as readonly number[];
    const dims = shape ?? [arr.length];
    const data = allocData(dtype, arr.length);
    if (data instanceof BigInt64Array) arr.forEach((v, k) => (data[k] = BigInt(v)));
    else arr.forEach((v, k) => (data[k] = v));
    return this.graph.addInitializer('const', { dtype, dims, data });
  }

  /** A rank-0 constant, shared between uses. */
  scalar(v: number, dtype: DType = 'float32'): Tensor {
    const key = `s:${dtype}:${Object.is(v, -0) ? '-0' : String(v)}`;
    let t = this.constCache.get(key);
    if (!t) {
      t = this.constant([v], dtype, []);
      this.constCache.set(key, t);
    }
    return t;
  }

  /** An int64 1-D constant (axes, shapes, pads), shared between uses. */
  ints(values: readonly number[]): Tensor {
    const key = `i:${values.join(',')}`;
    let t = this.constCache.get(key);
    if (!t) {
      t = this.constant(values, 'int64', [values.length]);
      this.constCache.set(key, t);
    }
    return t;
  }

  full(shape: readonly number[], dtype: DType, value: number): Tensor {
    if (shape.length === 0) return this.identity(this.scalar(value, dtype));
    return this.expand(this.scalar(value, dtype), shape);
  }

  zeros(shape: readonly number[], dtype: DType = 'float32'): Tensor {
    return this.full(shape, dtype, 0);
  }

  ones(shape: readonly number[], dtype: DType = 'float32'): Tensor {
    return this.full(shape, dtype, 1);
  }

  /** The numbers of a constant (initializer) tensor, e.g. Reshape's shape operand. */
  constValues(t: Tensor): number[] {
    const v = this.graph.initializers.get(t);
    if (!v) throw new Error(`${t.name} is not a constant`);
    return Array.from(v.data as ArrayLike<number | bigint>, (x) => Number(x));
  }

  // ---------- node plumbing ----------

  /** Appends a node; outputs given as specs. Public so rules and models can emit ops the builder lacks. */
  node(
    opType: string,
    inputs: readonly (Tensor | null)[],
    outputs: readonly OutputSpec[],
    attrs: Record<string, Attr> = {},
    marker?: Marker,
  ): Tensor[] {
    return this.graph.addNode(opType, inputs, outputs, attrs, marker);
  }

  private one(
    opType: string,
    inputs: readonly (Tensor | null)[],
    dtype: DType,
    shape: readonly number[],
    attrs: Record<string, Attr> = {},
  ): Tensor {
    return this.node(opType, inputs, [{ name: opType.toLowerCase(), dtype, shape }], attrs)[0]!;
  }

  private lift(a: TensorLike, like: TensorLike, op: string): Tensor {
    if (a instanceof Tensor) return a;
    if (like instanceof Tensor) return this.scalar(a, like.dtype);
    throw new Error(`${op}: at least one operand must be a tensor`);
  }

  private binary(op: string, a: TensorLike, b: TensorLike, outDtype?: DType): Tensor {
    const x = this.lift(a, b, op);
    const y = this.lift(b, a, op);
    if (x.dtype !== y.dtype) throw new Error(`${op}: dtype mismatch ${x} vs ${y}`);
    let shape: number[];
    try {
      shape = broadcastShapes(x.shape, y.shape);
    } catch (e) {
      throw new Error(`${op}(${x.name}, ${y.name}): ${(e as Error).message}`);
    }
    return this.one(op, [x, y], outDtype ?? x.dtype, shape);
  }

  private unary(op: string, x: Tensor, floatOnly = true): Tensor {
    if (floatOnly && !isFloat(x.dtype)) throw new Error(`${op}: needs a float tensor, got ${x}`);
    return this.one(op, [x], x.dtype, x.shape);
  }

  // ---------- elementwise ----------

  add(a: TensorLike, b: TensorLike): Tensor {
    return this.binary('Add', a, b);
  }
  sub(a: TensorLike, b: TensorLike): Tensor {
    return this.binary('Sub', a, b);
  }
  mul(a: TensorLike, b: TensorLike): Tensor {
    return this.binary('Mul', a, b);
  }
  div(a: TensorLike, b: TensorLike): Tensor {
    return this.binary('Div', a, b);
  }
  /** x ** p; the rule differentiates both operands, but exponents are normally constants. */
  pow(x: Tensor, p: TensorLike): Tensor {
    return this.binary('Pow', x, p);
  }
  min(a: TensorLike, b: TensorLike): Tensor {
    return this.binary('Min', a, b);
  }
  max(a: TensorLike, b: TensorLike): Tensor {
    return this.binary('Max', a, b);
  }
  less(a: TensorLike, b: TensorLike): Tensor {
    return this.binary('Less', a, b, 'bool');
  }
  greater(a: TensorLike, b: TensorLike): Tensor {
    return this.binary('Greater', a, b, 'bool');
  }
  lessOrEqual(a: TensorLike, b: TensorLike): Tensor {
    return this.binary('LessOrEqual', a, b, 'bool');
  }
  greaterOrEqual(a: TensorLike, b: TensorLike): Tensor {
    return this.binary('GreaterOrEqual', a, b, 'bool');
  }
  equal(a: TensorLike, b: TensorLike): Tensor {
    return this.binary('Equal', a, b, 'bool');
  }
  and(a: Tensor, b: Tensor): Tensor {
    if (a.dtype !== 'bool' || b.dtype !== 'bool') throw new Error(`And: needs bool tensors, got ${a} and ${b}`);
    return this.binary('And', a, b);
  }
  or(a: Tensor, b: Tensor): Tensor {
    if (a.dtype !== 'bool' || b.dtype !== 'bool') throw new Error(`Or: needs bool tensors, got ${a} and ${b}`);
    return this.binary('Or', a, b);
  }
  not(a: Tensor): Tensor {
    if (a.dtype !== 'bool') throw new Error(`Not: needs a bool tensor, got ${a}`);
    return this.one('Not', [a], 'bool', a.shape);
  }

  neg(x: Tensor): Tensor {
    return this.unary('Neg', x);
  }
  sqrt(x: Tensor): Tensor {
    return this.unary('Sqrt', x);
  }
  exp(x: Tensor): Tensor {
    return this.unary('Exp', x);
  }
  log(x: Tensor): Tensor {
    return this.unary('Log', x);
  }
  sigmoid(x: Tensor): Tensor {
    return this.unary('Sigmoid', x);
  }
  tanh(x: Tensor): Tensor {
    return this.unary('Tanh', x);
  }
  erf(x: Tensor): Tensor {
    return this.unary('Erf', x);
  }
  asin(x: Tensor): Tensor {
    return this.unary('Asin', x);
  }
  relu(x: Tensor): Tensor {
    return this.unary('Relu', x);
  }
  abs(x: Tensor): Tensor {
    return this.unary('Abs', x);
  }
  sign(x: Tensor): Tensor {
    return this.unary('Sign', x);
  }
  reciprocal(x: Tensor): Tensor {
    return this.unary('Reciprocal', x);
  }
  identity(x: Tensor): Tensor {
    return this.one('Identity', [x], x.dtype, x.shape);
  }
  square(x: Tensor): Tensor {
    return this.mul(x, x);
  }

  // ---------- composites (no rules of their own: their parts have them) ----------

  /**
   * x @ w^T + bias, with PyTorch's Linear layout w [out, in], so checkpoint weights load by name. One Gemm
   * (transB) over x flattened to 2-D: w is read as it is, and the gradient's Gemm reads the same w, so a graph
   * with both holds one copy of it (a MatMul would need w^T, folded into a second copy).
   */
  linear(x: Tensor, w: Tensor, bias?: Tensor | null): Tensor {
    if (x.rank < 1 || w.rank !== 2 || x.shape[x.rank - 1] !== w.shape[1]) {
      throw new Error(`linear: x ${shp(x)} and w ${shp(w)} (PyTorch layout [out, in]) do not match`);
    }
    const [out, inner] = w.shape as [number, number];
    const x2 = this.reshape(x, [x.size / inner, inner]);
    const y = this.gemm(x2, w, bias ?? null, { transB: true });
    return this.reshape(y, [...x.shape.slice(0, -1), out]);
  }

  /** GELU, exact (erf) form: x/2 (1 + erf(x / sqrt 2)). */
  gelu(x: Tensor): Tensor {
    return this.mul(this.mul(x, 0.5), this.add(this.erf(this.mul(x, Math.SQRT1_2)), 1));
  }

  /**
   * CLIP's QuickGELU: x sigmoid(1.702 x). A fused op: grad-rules.ts QuickGelu forms its derivative from the
   * saved sigmoid and the output in one closed form (dx = dy (s + 1.702 (y - y s))).
   */
  quickGelu(x: Tensor): Tensor {
    const s = this.sigmoid(this.mul(x, 1.702));
    return this.fused('QuickGelu', 'Mul', [x, s], [x], [s]);
  }

  /** SiLU / swish: x sigmoid(x); a fused op like quickGelu (dx = dy (s + y - y s)). */
  silu(x: Tensor): Tensor {
    const s = this.sigmoid(x);
    return this.fused('SiLU', 'Mul', [x, s], [x], [s]);
  }

  /**
   * clamp(x, lo, hi) whose gradient still flows where it points back into the range (Crowson's
   * clamp_with_grad: dx = dy where dy (x - clamp(x)) >= 0): the clamped image of VQGAN+CLIP keeps pulling
   * saturated pixels back. A fused op on a Clip node.
   */
  clampWithGrad(x: Tensor, lo: number, hi: number): Tensor {
    if (!isFloat(x.dtype)) throw new Error(`clampWithGrad: needs a float tensor, got ${x}`);
    const bounds = [this.scalar(lo, x.dtype), this.scalar(hi, x.dtype)];
    return this.fused('ClampWithGrad', 'Clip', [x, ...bounds], [x], [], { min: lo, max: hi });
  }

  /**
   * Appends `opType(nodeInputs)` (same shape and dtype as nodeInputs[0] broadcast with the rest) as the output
   * of a composite that grad.ts differentiates as one op with RULES[op], from `inputs` (the composite's own
   * inputs) to this output, reusing the forward tensors `saved`. The composite's other nodes are ordinary.
   */
  fused(
    op: string,
    opType: string,
    nodeInputs: readonly Tensor[],
    inputs: readonly Tensor[],
    saved: readonly Tensor[] = [],
    attrs: Record<string, number> = {},
    outShape?: readonly number[],
    nodeAttrs: Record<string, Attr> = {},
  ): Tensor {
    const first = nodeInputs[0]!;
    const shape = outShape ?? broadcastShapes(...nodeInputs.filter((t) => isFloat(t.dtype)).map((t) => t.shape));
    return this.node(opType, nodeInputs, [{ name: op.toLowerCase(), dtype: first.dtype, shape }], nodeAttrs, {
      kind: 'fused',
      op,
      inputs,
      saved,
      attrs,
    })[0]!;
  }

  /** x / max(|x|, eps) along axis (torch.nn.functional.normalize). */
  l2Normalize(x: Tensor, axis = -1, eps = 1e-12): Tensor {
    const ss = this.reduceSum(this.mul(x, x), [axis], true);
    return this.div(x, this.sqrt(this.max(ss, eps * eps)));
  }

  /**
   * PyTorch's adaptive_avg_pool2d on [..., H, W]: output cell i averages rows floor(i H / oh) ..
   * ceil((i + 1) H / oh) - 1. Done as two MatMuls with constant pooling matrices, so it has a gradient
   * and runs on every provider whatever the (non-integer) ratio.
   */
  adaptiveAvgPool2d(x: Tensor, size: readonly [number, number]): Tensor {
    const pool = (n: number, out: number): number[] => {
      const m = new Array<number>(out * n).fill(0);
      for (let i = 0; i < out; i++) {
        const s = Math.floor((i * n) / out);
        const e = Math.ceil(((i + 1) * n) / out);
        for (let j = s; j < e; j++) m[i * n + j] = 1 / (e - s);
      }
      return m;
    };
    return this.resample2d(x, size, pool);
  }

  /**
   * PyTorch's interpolate(mode='bilinear', align_corners=False, antialias=False) on [..., H, W], as two
   * MatMuls with constant interpolation matrices (differentiable, portable).
   */
  resizeBilinear(x: Tensor, size: readonly [number, number]): Tensor {
    const lin = (n: number, out: number): number[] => {
      const m = new Array<number>(out * n).fill(0);
      const scale = n / out;
      for (let i = 0; i < out; i++) {
        const src = Math.max(scale * (i + 0.5) - 0.5, 0);
        const i0 = Math.min(Math.floor(src), n - 1);
        const i1 = i0 < n - 1 ? i0 + 1 : i0;
        const l1 = src - i0;
        m[i * n + i0] = m[i * n + i0]! + (1 - l1);
        m[i * n + i1] = m[i * n + i1]! + l1;
      }
      return m;
    };
    return this.resample2d(x, size, lin);
  }

  /**
   * A separable linear resampling of the last two axes: y = R x C^T with R = rows [oh][H] and C =
   * cols [ow][W] given as weight rows (any filter: bilinear, bicubic, Lanczos, box, reflect-padded edges
   * folded into the weights). Two MatMuls with constants, so it has a gradient on every provider.
   */
  resampleSeparable(x: Tensor, rows: readonly (readonly number[])[], cols: readonly (readonly number[])[]): Tensor {
    if (x.rank < 2 || !isFloat(x.dtype))
      throw new Error(`resampleSeparable: needs a float tensor [..., H, W], got ${x}`);
    const [H, W] = x.shape.slice(-2) as [number, number];
    if (rows.some((r) => r.length !== H) || cols.some((c) => c.length !== W)) {
      throw new Error(`resampleSeparable: weight rows must have length H=${H} (rows) and W=${W} (cols)`);
    }
    const oh = rows.length;
    const ow = cols.length;
    const y = this.matmul(this.constant(rows.flat(), x.dtype, [oh, H]), x); // [..., oh, W]
    const ct = new Array<number>(W * ow);
    for (let i = 0; i < ow; i++) for (let j = 0; j < W; j++) ct[j * ow + i] = cols[i]![j]!;
    return this.matmul(y, this.constant(ct, x.dtype, [W, ow])); // [..., oh, ow]
  }

  private resample2d(x: Tensor, size: readonly [number, number], matrix: (n: number, out: number) => number[]): Tensor {
    if (x.rank < 2) throw new Error(`resample2d: needs [..., H, W], got ${x}`);
    const [H, W] = x.shape.slice(-2) as [number, number];
    const asRows = (m: number[], n: number, out: number) =>
      Array.from({ length: out }, (_, i) => m.slice(i * n, (i + 1) * n));
    return this.resampleSeparable(x, asRows(matrix(H, size[0]), H, size[0]), asRows(matrix(W, size[1]), W, size[1]));
  }

  /** Splits along axis into parts of the given sizes (Slices, so each part has the Slice rule). */
  split(x: Tensor, sizes: readonly number[], axis: number): Tensor[] {
    const a = normAxis(axis, x.rank, 'Split');
    if (sizes.reduce((p, q) => p + q, 0) !== x.shape[a]) {
      throw new Error(`Split: sizes [${sizes.join(', ')}] do not add up to ${x.shape[a]} (axis ${a} of ${x})`);
    }
    let off = 0;
    return sizes.map((n) => {
      const part = this.slice(x, [off], [off + n], [a]);
      off += n;
      return part;
    });
  }

  clip(x: Tensor, min?: TensorLike, max?: TensorLike): Tensor {
    const lo = min === undefined ? null : this.lift(min, x, 'Clip');
    const hi = max === undefined ? null : this.lift(max, x, 'Clip');
    for (const t of [lo, hi]) {
      if (t && (t.rank !== 0 || t.dtype !== x.dtype))
        throw new Error(`Clip: bounds must be ${x.dtype} scalars, got ${t}`);
    }
    return this.one('Clip', [x, lo, hi], x.dtype, x.shape);
  }

  cast(x: Tensor, to: DType): Tensor {
    return this.one('Cast', [x], to, x.shape, { to: i(dtypeCode(to)) });
  }

  where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
    if (cond.dtype !== 'bool') throw new Error(`Where: condition must be bool, got ${cond}`);
    const x = this.lift(a, b, 'Where');
    const y = this.lift(b, a, 'Where');
    if (x.dtype !== y.dtype) throw new Error(`Where: dtype mismatch ${x} vs ${y}`);
    let shape: number[];
    try {
      shape = broadcastShapes(cond.shape, x.shape, y.shape);
    } catch (e) {
      throw new Error(`Where: ${(e as Error).message}`);
    }
    return this.one('Where', [cond, x, y], x.dtype, shape);
  }

  // ---------- linear algebra ----------

  matmul(a: Tensor, b: Tensor): Tensor {
    if (a.dtype !== b.dtype) throw new Error(`MatMul: dtype mismatch ${a} vs ${b}`);
    if (a.rank < 1 || b.rank < 1) throw new Error(`MatMul: operands must have rank >= 1, got ${a} and ${b}`);
    const as = a.rank === 1 ? [1, a.shape[0]!] : [...a.shape];
    const bs = b.rank === 1 ? [b.shape[0]!, 1] : [...b.shape];
    const [m, k1] = as.slice(-2) as [number, number];
    const [k2, n] = bs.slice(-2) as [number, number];
    if (k1 !== k2) throw new Error(`MatMul: inner dimensions differ: ${shp(a)} x ${shp(b)}`);
    let batch: number[];
    try {
      batch = broadcastShapes(as.slice(0, -2), bs.slice(0, -2));
    } catch {
      throw new Error(`MatMul: batch dimensions do not broadcast: ${shp(a)} x ${shp(b)}`);
    }
    const out = [...batch, ...(a.rank === 1 ? [] : [m]), ...(b.rank === 1 ? [] : [n])];
    return this.one('MatMul', [a, b], a.dtype, out);
  }

  gemm(a: Tensor, b: Tensor, c?: Tensor | null, opts: GemmOptions = {}): Tensor {
    if (a.rank !== 2 || b.rank !== 2) throw new Error(`Gemm: A and B must be 2-D, got ${a} and ${b}`);
    if (a.dtype !== b.dtype || (c && c.dtype !== a.dtype)) throw new Error(`Gemm: dtype mismatch`);
    const [m, k1] = opts.transA ? [a.shape[1]!, a.shape[0]!] : [a.shape[0]!, a.shape[1]!];
    const [k2, n] = opts.transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
    if (k1 !== k2)
      throw new Error(
        `Gemm: inner dimensions differ: ${shp(a)} x ${shp(b)} (transA ${!!opts.transA}, transB ${!!opts.transB})`,
      );
    if (c) {
      const bc = broadcastShapes(c.shape, [m, n]);
      if (bc[0] !== m || bc[1] !== n) throw new Error(`Gemm: C ${shp(c)} does not broadcast to [${m}, ${n}]`);
    }
    return this.one('Gemm', [a, b, c ?? null], a.dtype, [m, n], {
      alpha: f(opts.alpha ?? 1),
      beta: f(opts.beta ?? 1),
      transA: i(opts.transA ? 1 : 0),
      transB: i(opts.transB ? 1 : 0),
    });
  }

  private convAttrs(op: string, x: Tensor, w: Tensor, o: ConvTransposeOptions) {
    const n = x.rank - 2;
    if (n < 1 || w.rank !== x.rank)
      throw new Error(`${op}: need x [N, C, ...] and w of the same rank, got ${x} and ${w}`);
    if (x.dtype !== w.dtype) throw new Error(`${op}: dtype mismatch ${x} vs ${w}`);
    const kernel = w.shape.slice(2);
    const pads = [...(o.pads ?? new Array<number>(2 * n).fill(0))];
    const strides = [...(o.strides ?? new Array<number>(n).fill(1))];
    const dilations = [...(o.dilations ?? new Array<number>(n).fill(1))];
    const group = o.group ?? 1;
    if (pads.length !== 2 * n || strides.length !== n || dilations.length !== n) {
      throw new Error(`${op}: pads/strides/dilations lengths do not match ${n} spatial dims`);
    }
    return { n, kernel, pads, strides, dilations, group };
  }

  conv(x: Tensor, w: Tensor, bias?: Tensor | null, opts: ConvOptions = {}): Tensor {
    const { n, kernel, pads, strides, dilations, group } = this.convAttrs('Conv', x, w, opts);
    const [N, C] = x.shape as [number, number];
    const M = w.shape[0]!;
    if (w.shape[1]! * group !== C || M % group !== 0) {
      throw new Error(`Conv: x ${shp(x)} and w ${shp(w)} do not match for group ${group}`);
    }
    if (bias && (bias.rank !== 1 || bias.shape[0] !== M)) throw new Error(`Conv: bias ${shp(bias)} must be [${M}]`);
    const out = [N, M];
    for (let d = 0; d < n; d++) {
      const span = dilations[d]! * (kernel[d]! - 1) + 1;
      const o = Math.floor((x.shape[2 + d]! + pads[d]! + pads[d + n]! - span) / strides[d]!) + 1;
      if (o < 1) throw new Error(`Conv: empty output for x ${shp(x)}, w ${shp(w)}`);
      out.push(o);
    }
    return this.one('Conv', bias ? [x, w, bias] : [x, w], x.dtype, out, {
      dilations: ints(dilations),
      group: i(group),
      kernel_shape: ints(kernel),
      pads: ints(pads),
      strides: ints(strides),
    });
  }

  convTranspose(x: Tensor, w: Tensor, bias?: Tensor | null, opts: ConvTransposeOptions = {}): Tensor {
    const { n, kernel, pads, strides, dilations, group } = this.convAttrs('ConvTranspose', x, w, opts);
    const outputPadding = [...(opts.outputPadding ?? new Array<number>(n).fill(0))];
    const [N, C] = x.shape as [number, number];
    if (w.shape[0] !== C || C % group !== 0) {
      throw new Error(`ConvTranspose: x ${shp(x)} and w ${shp(w)} do not match for group ${group}`);
    }
    const M = w.shape[1]! * group;
    if (bias && (bias.rank !== 1 || bias.shape[0] !== M)) {
      throw new Error(`ConvTranspose: bias ${shp(bias)} must be [${M}]`);
    }
    const out = [N, M];
    for (let d = 0; d < n; d++) {
      if (outputPadding[d]! >= Math.max(strides[d]!, dilations[d]!)) {
        throw new Error(`ConvTranspose: output_padding ${outputPadding[d]} must be below stride or dilation`);
      }
      const o =
        strides[d]! * (x.shape[2 + d]! - 1) +
        outputPadding[d]! +
        (kernel[d]! - 1) * dilations[d]! +
        1 -
        pads[d]! -
        pads[d + n]!;
      if (o < 1) throw new Error(`ConvTranspose: empty output for x ${shp(x)}, w ${shp(w)}`);
      out.push(o);
    }
    return this.one('ConvTranspose', bias ? [x, w, bias] : [x, w], x.dtype, out, {
      dilations: ints(dilations),
      group: i(group),
      kernel_shape: ints(kernel),
      output_padding: ints(outputPadding),
      pads: ints(pads),
      strides: ints(strides),
    });
  }

  // ---------- normalisation ----------

  softmax(x: Tensor, axis = -1): Tensor {
    const a = normAxis(axis, x.rank, 'Softmax');
    if (!isFloat(x.dtype)) throw new Error(`Softmax: needs a float tensor, got ${x}`);
    return this.one('Softmax', [x], x.dtype, x.shape, { axis: i(a) });
  }

  /** LayerNormalization over axes [axis, rank); scale (and bias) have the normalised shape. */
  layerNorm(x: Tensor, scale: Tensor, bias?: Tensor | null, opts: { axis?: number; epsilon?: number } = {}): Tensor {
    const a = normAxis(opts.axis ?? -1, x.rank, 'LayerNormalization');
    const norm = x.shape.slice(a);
    for (const t of bias ? [scale, bias] : [scale]) {
      if (t.dtype !== x.dtype) throw new Error(`LayerNormalization: dtype mismatch ${x} vs ${t}`);
      const bs = broadcastShapes(t.shape, norm);
      if (bs.join() !== norm.join()) {
        throw new Error(`LayerNormalization: ${t} does not broadcast to the normalised shape [${norm.join(', ')}]`);
      }
    }
    const stat = [...x.shape.slice(0, a), ...norm.map(() => 1)];
    // Opset 17 types Mean/InvStdDev by stash_type (default 1 = float32) whatever X's type.
    const statType: DType = 'float32';
    const outs = this.node(
      'LayerNormalization',
      bias ? [x, scale, bias] : [x, scale],
      [
        { name: 'layernorm', dtype: x.dtype, shape: x.shape },
        { name: 'layernorm_mean', dtype: statType, shape: stat },
        { name: 'layernorm_invstd', dtype: statType, shape: stat },
      ],
      { axis: i(a), epsilon: f(opts.epsilon ?? 1e-5) },
    );
    return outs[0]!;
  }

  /**
   * GroupNorm over [N, C, ...] (PyTorch's, biased variance): decomposed into Reshape + ReduceMean + elementwise
   * ops (two-pass statistics: mean, then the mean square of x - mean), never the GroupNormalization op, which
   * ORT's WebGPU provider lacks. A fused op: grad-rules.ts GroupNorm differentiates it in closed form from the
   * saved x - mean and 1/std, with a few passes over the full tensor instead of one per op of the forward pass.
   */
  groupNorm(x: Tensor, groups: number, scale: Tensor, bias: Tensor, epsilon = 1e-5): Tensor {
    const g = this.groupNormParts(x, groups, scale, bias, epsilon);
    return this.fused(
      'GroupNorm',
      'Reshape',
      [g.y4, this.ints(x.shape)],
      [x, scale, bias],
      [g.xc, g.inv],
      {
        groups,
        epsilon,
      },
      x.shape,
    );
  }

  /**
   * silu(groupNorm(x)), the VQGAN's norm -> swish, as one fused op whose backward pass keeps only what the
   * GroupNorm keeps (x - mean and 1/std) and recomputes the normalised values and their sigmoid from them
   * (grad-rules.ts GroupNormSiLU): one full-size tensor kept per use instead of three.
   */
  groupNormSilu(x: Tensor, groups: number, scale: Tensor, bias: Tensor, epsilon = 1e-5): Tensor {
    const g = this.groupNormParts(x, groups, scale, bias, epsilon);
    const y = this.reshape(g.y4, x.shape);
    return this.fused('GroupNormSiLU', 'Mul', [y, this.sigmoid(y)], [x, scale, bias], [g.xc, g.inv], {
      groups,
      epsilon,
    });
  }

  private groupNormParts(x: Tensor, groups: number, scale: Tensor, bias: Tensor, epsilon: number) {
    if (x.rank < 2) throw new Error(`GroupNorm: x must be [N, C, ...], got ${x}`);
    const [N, C] = x.shape as [number, number];
    if (C % groups !== 0) throw new Error(`GroupNorm: ${C} channels do not split into ${groups} groups`);
    if (scale.shape.join() !== `${C}` || bias.shape.join() !== `${C}`) {
      throw new Error(`GroupNorm: scale ${shp(scale)} and bias ${shp(bias)} must be [${C}]`);
    }
    const Cg = C / groups;
    const HW = x.size / (N * C);
    const xg = this.reshape(x, [N, groups, Cg * HW]); // (N, G, C/G * spatial)
    const mu = this.reduceMean(xg, [2], true);
    const xc = this.sub(xg, mu);
    const v = this.div(this.reduceSumSquare(xc, [2], true), Cg * HW);
    const inv = this.reciprocal(this.sqrt(this.add(v, epsilon))); // (N, G, 1)
    // y = xc * (inv * scale) + bias, in (N, G, C/G, spatial) with per-(n, channel) factors.
    const a = this.mul(this.reshape(inv, [N, groups, 1, 1]), this.reshape(scale, [1, groups, Cg, 1]));
    const y4 = this.add(this.mul(this.reshape(xc, [N, groups, Cg, HW]), a), this.reshape(bias, [1, groups, Cg, 1]));
    return { xc, inv, y4 };
  }

  // ---------- reductions ----------

  private reduceAxes(op: string, x: Tensor, axes: readonly number[] | undefined, keepdims: boolean) {
    const ax = axes === undefined ? x.shape.map((_, k) => k) : axes.map((a) => normAxis(a, x.rank, op));
    const set = new Set(ax);
    if (set.size !== ax.length) throw new Error(`${op}: repeated axes [${axes?.join(', ')}]`);
    const sorted = [...set].sort((p, q) => p - q);
    const out = keepdims ? x.shape.map((d, k) => (set.has(k) ? 1 : d)) : x.shape.filter((_, k) => !set.has(k));
    return { sorted, out };
  }

  /** Sum over axes (all when omitted). ReduceSum's axes are an input in opset 13+. */
  reduceSum(x: Tensor, axes?: readonly number[], keepdims = false): Tensor {
    const { sorted, out } = this.reduceAxes('ReduceSum', x, axes, keepdims);
    if (sorted.length === 0) return x;
    return this.one('ReduceSum', [x, this.ints(sorted)], x.dtype, out, { keepdims: i(keepdims ? 1 : 0) });
  }

  /** Mean over axes (all when omitted). ReduceMean's axes are an attribute up to opset 17. */
  reduceMean(x: Tensor, axes?: readonly number[], keepdims = false): Tensor {
    const { sorted, out } = this.reduceAxes('ReduceMean', x, axes, keepdims);
    if (sorted.length === 0) return x;
    return this.one('ReduceMean', [x], x.dtype, out, { axes: ints(sorted), keepdims: i(keepdims ? 1 : 0) });
  }

  reduceMax(x: Tensor, axes?: readonly number[], keepdims = false): Tensor {
    const { sorted, out } = this.reduceAxes('ReduceMax', x, axes, keepdims);
    if (sorted.length === 0) return x;
    return this.one('ReduceMax', [x], x.dtype, out, { axes: ints(sorted), keepdims: i(keepdims ? 1 : 0) });
  }

  /** Sum of squares over axes (all when omitted); ReduceSumSquare's axes are an attribute up to opset 17. */
  reduceSumSquare(x: Tensor, axes?: readonly number[], keepdims = false): Tensor {
    const { sorted, out } = this.reduceAxes('ReduceSumSquare', x, axes, keepdims);
    if (sorted.length === 0) return this.mul(x, x);
    return this.one('ReduceSumSquare', [x], x.dtype, out, { axes: ints(sorted), keepdims: i(keepdims ? 1 : 0) });
  }

  sum(x: Tensor): Tensor {
    return x.rank === 0 ? x : this.reduceSum(x);
  }

  /**
   * The reverse of broadcasting: sums t (of a shape that `shape` broadcasts to) down to `shape`, over the
   * leading axes and the axes where `shape` has 1. Axes are computed here from static shapes.
   */
  sumTo(t: Tensor, shape: readonly number[]): Tensor {
    if (t.shape.join() === shape.join()) return t;
    const lead = t.rank - shape.length;
    const bad = () => new Error(`cannot sum ${t} down to [${shape.join(', ')}]: not a broadcast of it`);
    if (lead < 0) throw bad();
    const axes: number[] = [];
    for (let k = 0; k < t.rank; k++) {
      if (k < lead) axes.push(k);
      else if (shape[k - lead] !== t.shape[k]) {
        if (shape[k - lead] !== 1) throw bad();
        axes.push(k);
      }
    }
    return this.reshape(this.reduceSum(t, axes, true), shape);
  }

  /**
   * sumTo that leaves t broadcast where it is smaller: sums the leading axes and the axes where `shape` has 1
   * and t more; axes where t has 1 and `shape` more stay 1 (t is constant along them). The result has the
   * rank of `shape` and broadcasts to it.
   */
  sumToward(t: Tensor, shape: readonly number[]): Tensor {
    if (t.shape.join() === shape.join()) return t;
    const lead = Math.max(0, t.rank - shape.length);
    const axes: number[] = [];
    const kept: number[] = [];
    for (let k = 0; k < t.rank; k++) {
      const s = k - (t.rank - shape.length);
      if (k < lead) {
        axes.push(k);
        continue;
      }
      const want = s >= 0 ? shape[s]! : 1;
      if (t.shape[k] === want || t.shape[k] === 1) kept.push(t.shape[k]!);
      else if (want === 1) {
        axes.push(k);
        kept.push(1);
      } else throw new Error(`cannot sum ${t} toward [${shape.join(', ')}]: not a broadcast of it`);
    }
    const target = [...new Array<number>(Math.max(0, shape.length - kept.length)).fill(1), ...kept];
    return this.reshape(this.reduceSum(t, axes, true), target);
  }

  mean(x: Tensor): Tensor {
    return x.rank === 0 ? x : this.reduceMean(x);
  }

  argMax(x: Tensor, axis = 0, keepdims = true): Tensor {
    return this.arg('ArgMax', x, axis, keepdims);
  }

  argMin(x: Tensor, axis = 0, keepdims = true): Tensor {
    return this.arg('ArgMin', x, axis, keepdims);
  }

  private arg(op: string, x: Tensor, axis: number, keepdims: boolean): Tensor {
    const a = normAxis(axis, x.rank, op);
    const out = keepdims ? x.shape.map((d, k) => (k === a ? 1 : d)) : x.shape.filter((_, k) => k !== a);
    return this.one(op, [x], 'int64', out, { axis: i(a), keepdims: i(keepdims ? 1 : 0) });
  }

  // ---------- shape ----------

  /** Reshape to a static shape; one -1 is resolved here (0 is not special). */
  reshape(x: Tensor, shape: readonly number[]): Tensor {
    const known = shape.filter((d) => d !== -1);
    if (shape.length - known.length > 1 || known.some((d) => d < 0 || !Number.isInteger(d))) {
      throw new Error(`Reshape: bad target shape [${shape.join(', ')}]`);
    }
    const rest = sizeOf(known);
    const out = shape.map((d) => (d === -1 ? (rest === 0 ? 0 : x.size / rest) : d));
    if (sizeOf(out) !== x.size || out.some((d) => !Number.isInteger(d))) {
      throw new Error(`Reshape: cannot reshape ${x} to [${shape.join(', ')}]`);
    }
    if (out.join() === x.shape.join()) return x;
    return this.one('Reshape', [x, this.ints(out)], x.dtype, out);
  }

  transpose(x: Tensor, perm?: readonly number[]): Tensor {
    const p = perm ?? x.shape.map((_, k) => x.rank - 1 - k);
    if (p.length !== x.rank || [...p].sort((a, b) => a - b).some((v, k) => v !== k)) {
      throw new Error(`Transpose: perm [${p.join(', ')}] is not a permutation of rank ${x.rank}`);
    }
    return this.one(
      'Transpose',
      [x],
      x.dtype,
      p.map((k) => x.shape[k]!),
      { perm: ints(p) },
    );
  }

  concat(xs: readonly Tensor[], axis: number): Tensor {
    if (xs.length === 0) throw new Error('Concat: no inputs');
    const first = xs[0]!;
    const a = normAxis(axis, first.rank, 'Concat');
    let total = 0;
    for (const t of xs) {
      const same = t.rank === first.rank && t.shape.every((d, k) => k === a || d === first.shape[k]);
      if (!same || t.dtype !== first.dtype) {
        throw new Error(`Concat on axis ${a}: ${t} does not match ${first}`);
      }
      total += t.shape[a]!;
    }
    const out = first.shape.map((d, k) => (k === a ? total : d));
    return this.one('Concat', xs, first.dtype, out, { axis: i(a) });
  }

  /** ONNX Slice with static starts/ends/axes/steps (clamped as the spec says). */
  slice(
    x: Tensor,
    starts: readonly number[],
    ends: readonly number[],
    axes?: readonly number[],
    steps?: readonly number[],
  ): Tensor {
    const ax = (axes ?? starts.map((_, k) => k)).map((a) => normAxis(a, x.rank, 'Slice'));
    const st = steps ?? starts.map(() => 1);
    if (ends.length !== starts.length || ax.length !== starts.length || st.length !== starts.length) {
      throw new Error('Slice: starts, ends, axes and steps must have the same length');
    }
    const out = [...x.shape];
    ax.forEach((a, k) => {
      const r = sliceRange(x.shape[a]!, starts[k]!, ends[k]!, st[k]!);
      out[a] = r.length;
    });
    return this.one('Slice', [x, this.ints(starts), this.ints(ends), this.ints(ax), this.ints(st)], x.dtype, out);
  }

  /** Gather along axis; indices an int64/int32 tensor or a list (int64 constant). */
  gather(x: Tensor, indices: Tensor | readonly number[], axis = 0): Tensor {
    const idx = indices instanceof Tensor ? indices : this.constant(indices, 'int64', [indices.length]);
    if (idx.dtype !== 'int64' && idx.dtype !== 'int32')
      throw new Error(`Gather: indices must be int64/int32, got ${idx}`);
    const a = normAxis(axis, x.rank, 'Gather');
    const out = [...x.shape.slice(0, a), ...idx.shape, ...x.shape.slice(a + 1)];
    return this.one('Gather', [x, idx], x.dtype, out, { axis: i(a) });
  }

  /** ScatterElements with reduction 'add' (the gradient of Gather). */
  scatterElementsAdd(data: Tensor, indices: Tensor, updates: Tensor, axis: number): Tensor {
    const a = normAxis(axis, data.rank, 'ScatterElements');
    if (indices.shape.join() !== updates.shape.join() || indices.rank !== data.rank) {
      throw new Error(
        `ScatterElements: indices ${shp(indices)} / updates ${shp(updates)} / data ${shp(data)} mismatch`,
      );
    }
    return this.one('ScatterElements', [data, indices, updates], data.dtype, data.shape, {
      axis: i(a),
      reduction: str('add'),
    });
  }

  /** Pad with ONNX pads [b1, b2, ..., e1, e2, ...]; negative pads crop. */
  pad(x: Tensor, pads: readonly number[], opts: { mode?: PadMode; value?: number } = {}): Tensor {
    if (pads.length !== 2 * x.rank) throw new Error(`Pad: ${pads.length} pads for rank ${x.rank}`);
    const out = x.shape.map((d, k) => d + pads[k]! + pads[k + x.rank]!);
    if (out.some((d) => d < 0)) throw new Error(`Pad: pads [${pads.join(', ')}] crop ${x} below zero`);
    const mode = opts.mode ?? 'constant';
    const inputs = [x, this.ints(pads), mode === 'constant' ? this.scalar(opts.value ?? 0, x.dtype) : null];
    return this.one('Pad', inputs, x.dtype, out, { mode: str(mode) });
  }

  expand(x: Tensor, shape: readonly number[]): Tensor {
    let out: number[];
    try {
      out = broadcastShapes(x.shape, shape);
    } catch (e) {
      throw new Error(`Expand: ${(e as Error).message}`);
    }
    if (out.join() === x.shape.join()) return x;
    return this.one('Expand', [x, this.ints(shape)], x.dtype, out);
  }

  squeeze(x: Tensor, axes: readonly number[]): Tensor {
    const ax = axes.map((a) => normAxis(a, x.rank, 'Squeeze'));
    for (const a of ax) if (x.shape[a] !== 1) throw new Error(`Squeeze: axis ${a} of ${x} is not 1`);
    const out = x.shape.filter((_, k) => !ax.includes(k));
    return this.one('Squeeze', [x, this.ints(ax)], x.dtype, out);
  }

  unsqueeze(x: Tensor, axes: readonly number[]): Tensor {
    const r = x.rank + axes.length;
    const ax = axes.map((a) => normAxis(a, r, 'Unsqueeze'));
    if (new Set(ax).size !== ax.length) throw new Error(`Unsqueeze: repeated axes`);
    const out: number[] = [];
    let k = 0;
    for (let d = 0; d < r; d++) out.push(ax.includes(d) ? 1 : x.shape[k++]!);
    return this.one('Unsqueeze', [x, this.ints(ax)], x.dtype, out);
  }

  /** Nearest-neighbour upsampling by integer factors per axis (Resize, asymmetric, floor). */
  upsample(x: Tensor, scales: readonly number[]): Tensor {
    if (scales.length !== x.rank || scales.some((s) => !Number.isInteger(s) || s < 1)) {
      throw new Error(`Resize: scales [${scales.join(', ')}] must be positive integers, one per axis of ${x}`);
    }
    const out = x.shape.map((d, k) => d * scales[k]!);
    return this.one('Resize', [x, null, this.constant(scales, 'float32')], x.dtype, out, {
      mode: str('nearest'),
      coordinate_transformation_mode: str('asymmetric'),
      nearest_mode: str('floor'),
    });
  }

  // ---------- gradient markers ----------

  /** Forward: x. Backward: no gradient flows into x. */
  stopGradient(x: Tensor): Tensor {
    return this.node(
      'Identity',
      [x],
      [{ name: 'stopgrad', dtype: x.dtype, shape: x.shape }],
      {},
      {
        kind: 'stopGradient',
      },
    )[0]!;
  }

  /** Forward: the value of `forward`. Backward: the gradient goes to `backward` (not to `forward`). */
  straightThrough(forward: Tensor, backward: Tensor): Tensor {
    if (forward.shape.join() !== backward.shape.join() || forward.dtype !== backward.dtype) {
      throw new Error(`straightThrough: ${forward} and ${backward} must have the same shape and dtype`);
    }
    return this.node(
      'Identity',
      [forward],
      [{ name: 'straight', dtype: forward.dtype, shape: forward.shape }],
      {},
      {
        kind: 'straightThrough',
        backward,
      },
    )[0]!;
  }
}

/** ONNX Slice semantics for one axis: normalised start, step and output length. */
export function sliceRange(dim: number, start: number, end: number, step: number): { start: number; length: number } {
  if (step === 0 || !Number.isInteger(step)) throw new Error('Slice: step must be a non-zero integer');
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
  } else {
    s = Math.min(Math.max(s, 0), dim - 1);
    e = Math.min(Math.max(e, -1), dim - 1);
  }
  const length = Math.max(0, Math.ceil((e - s) / step));
  return { start: s, length };
}
