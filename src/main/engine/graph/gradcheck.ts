// `fstudio doctor --gradcheck`: does this provider (and its driver) compute the engine's gradients
// correctly? For every op with a backward rule, a small graph f(x) with loss L = sum(f(x) * r)
// (r a fixed random tensor) is differentiated by grad.ts; the analytic directional derivative
// <dL/dx, d> is compared with the central finite difference (L(x + h d) - L(x - h d)) / 2 on the
// chosen provider, in float32 (the dtype every provider runs), over a few random directions.
//
// Inputs are drawn away from kinks (Relu/Abs at 0, Min/Max ties, Clip bounds) and domain edges
// (Sqrt, Log, Asin), so a finite step never crosses one. The same cases drive the CPU-vs-WebGPU
// parity tests (tests/unit/webgpu).
import { Builder } from './builder.js';
import { grad } from './grad.js';
import { NON_DIFFERENTIABLE, RULES } from './grad-rules.js';
import { rng } from './fdcheck.js';
import { sizeOf, type Tensor } from './ir.js';
import { emitModel } from './onnx-proto.js';
import { type HostTensor, type ProviderName } from '../runtime/ort.js';
import type { Device, TaskContext } from '../runtime/worker-core.js';

export interface GradcheckInput {
  shape: readonly number[];
  /** Values uniform in [lo, hi] (default [-1, 1]). */
  lo?: number;
  hi?: number;
  /** Keep every value at least this far from each of these points (kinks, bounds). */
  avoid?: readonly number[];
  margin?: number;
  /** Values = the previous input's plus/minus [gap, 1]: Min/Max never tie. */
  apartFromPrevious?: number;
}

export interface GradcheckCase {
  /** The op whose rule it checks (reports group by it). */
  op: string;
  /** What varies (shapes, broadcast form, attributes). */
  label: string;
  inputs: readonly GradcheckInput[];
  build(b: Builder, xs: Tensor[]): Tensor;
}

const u = (shape: readonly number[], lo = -1, hi = 1): GradcheckInput => ({ shape, lo, hi });
const away = (shape: readonly number[], avoid: readonly number[], margin = 0.1): GradcheckInput => ({
  shape,
  avoid,
  margin,
});

/** Every op with a backward rule, one or more small cases each. */
export const GRADCHECK_CASES: readonly GradcheckCase[] = [
  { op: 'Add', label: '[2,3]+[3]', inputs: [u([2, 3]), u([3])], build: (b, [x, y]) => b.add(x!, y!) },
  {
    op: 'Add',
    label: '[2,1,3]+[4,1] and scalar',
    inputs: [u([2, 1, 3]), u([4, 1]), u([])],
    build: (b, [x, y, s]) => b.add(b.add(x!, y!), s!),
  },
  { op: 'Sub', label: '[2,3]-[2,1]', inputs: [u([2, 3]), u([2, 1])], build: (b, [x, y]) => b.sub(x!, y!) },
  { op: 'Mul', label: '[2,3]*[1,3]', inputs: [u([2, 3]), u([1, 3])], build: (b, [x, y]) => b.mul(x!, y!) },
  { op: 'Mul', label: 'x*x (reuse)', inputs: [u([5])], build: (b, [x]) => b.mul(x!, x!) },
  { op: 'Div', label: '[2,3]/[3]', inputs: [u([2, 3]), away([3], [0], 0.7)], build: (b, [x, y]) => b.div(x!, y!) },
  { op: 'Neg', label: '[4]', inputs: [u([4])], build: (b, [x]) => b.neg(x!) },
  { op: 'Pow', label: 'x^3', inputs: [u([2, 3], 0.5, 1.5)], build: (b, [x]) => b.pow(x!, 3) },
  { op: 'Pow', label: 'x^0.5', inputs: [u([4], 0.5, 2)], build: (b, [x]) => b.pow(x!, 0.5) },
  { op: 'Sqrt', label: '[2,3]', inputs: [u([2, 3], 0.5, 2)], build: (b, [x]) => b.sqrt(x!) },
  { op: 'Exp', label: '[2,3]', inputs: [u([2, 3])], build: (b, [x]) => b.exp(x!) },
  { op: 'Log', label: '[2,3]', inputs: [u([2, 3], 0.5, 2)], build: (b, [x]) => b.log(x!) },
  { op: 'Sigmoid', label: '[2,3]', inputs: [u([2, 3], -2, 2)], build: (b, [x]) => b.sigmoid(x!) },
  { op: 'Tanh', label: '[2,3]', inputs: [u([2, 3], -2, 2)], build: (b, [x]) => b.tanh(x!) },
  { op: 'Erf', label: '[2,3]', inputs: [u([2, 3], -2, 2)], build: (b, [x]) => b.erf(x!) },
  { op: 'Asin', label: '[2,3]', inputs: [u([2, 3], -0.7, 0.7)], build: (b, [x]) => b.asin(x!) },
  { op: 'Sign', label: '[2,3] (zero gradient)', inputs: [away([2, 3], [0])], build: (b, [x]) => b.sign(x!) },
  { op: 'Relu', label: '[2,3]', inputs: [away([2, 3], [0])], build: (b, [x]) => b.relu(x!) },
  { op: 'Abs', label: '[2,3]', inputs: [away([2, 3], [0])], build: (b, [x]) => b.abs(x!) },
  {
    op: 'Min',
    label: '[2,3] vs [2,3]',
    inputs: [u([2, 3]), { shape: [2, 3], apartFromPrevious: 0.2 }],
    build: (b, [x, y]) => b.min(x!, y!),
  },
  {
    op: 'Max',
    label: '[2,3] vs [2,3]',
    inputs: [u([2, 3]), { shape: [2, 3], apartFromPrevious: 0.2 }],
    build: (b, [x, y]) => b.max(x!, y!),
  },
  {
    op: 'Clip',
    label: 'clip(x, -0.5, 0.5)',
    inputs: [away([3, 4], [-0.5, 0.5])],
    build: (b, [x]) => b.clip(x!, b.scalar(-0.5), b.scalar(0.5)),
  },
  { op: 'MatMul', label: '[2,3,4]x[4,5]', inputs: [u([2, 3, 4]), u([4, 5])], build: (b, [x, y]) => b.matmul(x!, y!) },
  { op: 'MatMul', label: '[3,4]x[2,4,5]', inputs: [u([3, 4]), u([2, 4, 5])], build: (b, [x, y]) => b.matmul(x!, y!) },
  {
    op: 'Gemm',
    label: 'a[3,4] b[5,4]^T + c[5]',
    inputs: [u([3, 4]), u([5, 4]), u([5])],
    build: (b, [a, w, c]) => b.gemm(a!, w!, c!, { transB: true, alpha: 0.5, beta: 2 }),
  },
  {
    op: 'Conv',
    label: '3x3 stride 2 pad 1 + bias',
    inputs: [u([1, 2, 5, 5]), u([3, 2, 3, 3]), u([3])],
    build: (b, [x, w, c]) => b.conv(x!, w!, c!, { pads: [1, 1, 1, 1], strides: [2, 2] }),
  },
  {
    op: 'Conv',
    label: 'grouped, dilated',
    inputs: [u([2, 4, 5, 5]), u([4, 2, 2, 2])],
    build: (b, [x, w]) => b.conv(x!, w!, null, { group: 2, dilations: [2, 2] }),
  },
  {
    op: 'ConvTranspose',
    label: 'stride 2 pad 1 output_padding 1 + bias',
    inputs: [u([1, 2, 3, 3]), u([2, 3, 3, 3]), u([3])],
    build: (b, [x, w, c]) =>
      b.convTranspose(x!, w!, c!, { strides: [2, 2], pads: [1, 1, 1, 1], outputPadding: [1, 1] }),
  },
  { op: 'Resize', label: 'nearest x2', inputs: [u([1, 2, 3, 3])], build: (b, [x]) => b.upsample(x!, [1, 1, 2, 2]) },
  { op: 'ReduceSum', label: 'axis 1', inputs: [u([2, 3, 4])], build: (b, [x]) => b.reduceSum(x!, [1]) },
  // With the default seed the row maxima are more than 0.1 above their runners-up: larger than the step.
  { op: 'ReduceMax', label: 'axis 1', inputs: [u([3, 4])], build: (b, [x]) => b.reduceMax(x!, [1]) },
  {
    op: 'ReduceMean',
    label: 'axes 0,2 keepdims',
    inputs: [u([2, 3, 4])],
    build: (b, [x]) => b.reduceMean(x!, [0, 2], true),
  },
  { op: 'Softmax', label: 'axis -1', inputs: [u([2, 5], -2, 2)], build: (b, [x]) => b.softmax(x!, -1) },
  {
    op: 'LayerNormalization',
    label: '[2,3,8] over last axis',
    inputs: [u([2, 3, 8], -2, 2), u([8]), u([8])],
    build: (b, [x, s, c]) => b.layerNorm(x!, s!, c!),
  },
  {
    op: 'GroupNorm',
    label: '4 channels, 2 groups (fused, closed form)',
    inputs: [u([2, 4, 3, 3], -2, 2), u([4]), u([4])],
    build: (b, [x, s, c]) => b.groupNorm(x!, 2, s!, c!),
  },
  {
    op: 'GroupNormSiLU',
    label: 'silu(groupNorm), 4 channels, 2 groups (fused, recomputing)',
    inputs: [u([2, 4, 3, 3], -2, 2), u([4]), u([4])],
    build: (b, [x, s, c]) => b.groupNormSilu(x!, 2, s!, c!),
  },
  { op: 'SiLU', label: '[2,5] (fused)', inputs: [u([2, 5], -3, 3)], build: (b, [x]) => b.silu(x!) },
  { op: 'QuickGelu', label: '[2,5] (fused)', inputs: [u([2, 5], -3, 3)], build: (b, [x]) => b.quickGelu(x!) },
  {
    op: 'ClampWithGrad',
    label: 'inside [0, 1] (fused)',
    inputs: [u([3, 4], 0.1, 0.9)],
    build: (b, [x]) => b.clampWithGrad(x!, 0, 1),
  },
  {
    op: 'ReduceSumSquare',
    label: 'axis 1 keepdims',
    inputs: [u([2, 3, 4])],
    build: (b, [x]) => b.reduceSumSquare(x!, [1], true),
  },
  {
    op: 'Conv',
    label: 'patch embedding (stride = kernel, MatMul gradient)',
    inputs: [u([2, 3, 9, 8]), u([5, 3, 4, 4])],
    build: (b, [x, w]) => b.conv(x!, w!, null, { strides: [4, 4] }),
  },
  { op: 'Reshape', label: '[2,3,4] -> [6,4]', inputs: [u([2, 3, 4])], build: (b, [x]) => b.reshape(x!, [6, -1]) },
  { op: 'Transpose', label: 'perm 2,0,1', inputs: [u([2, 3, 4])], build: (b, [x]) => b.transpose(x!, [2, 0, 1]) },
  { op: 'Concat', label: 'axis 1', inputs: [u([2, 3]), u([2, 2])], build: (b, [x, y]) => b.concat([x!, y!], 1) },
  {
    op: 'Slice',
    label: 'rows 1..3, columns 1..',
    inputs: [u([4, 5])],
    build: (b, [x]) => b.slice(x!, [1, 1], [3, 5], [0, 1]),
  },
  { op: 'Gather', label: 'repeated indices', inputs: [u([5, 3])], build: (b, [x]) => b.gather(x!, [0, 2, 2, 4], 0) },
  { op: 'Pad', label: 'constant', inputs: [u([2, 3])], build: (b, [x]) => b.pad(x!, [0, 1, 1, 0], { value: 0.5 }) },
  { op: 'Expand', label: '[3,1] -> [2,3,4]', inputs: [u([3, 1])], build: (b, [x]) => b.expand(x!, [2, 3, 4]) },
  { op: 'Squeeze', label: 'axis 1', inputs: [u([2, 1, 3])], build: (b, [x]) => b.squeeze(x!, [1]) },
  { op: 'Unsqueeze', label: 'axes 0,2', inputs: [u([2, 3])], build: (b, [x]) => b.unsqueeze(x!, [0, 2]) },
  {
    op: 'Where',
    label: 'cond[2,3] ? a[2,3] : b[3]',
    inputs: [u([2, 3]), u([3])],
    build: (b, [x, y]) =>
      b.where(b.constant({ dtype: 'bool', dims: [2, 3], data: new Uint8Array([1, 0, 1, 1, 0, 0]) }), x!, y!),
  },
  { op: 'Cast', label: 'float32 -> float32', inputs: [u([2, 3])], build: (b, [x]) => b.cast(x!, 'float32') },
  { op: 'Identity', label: '[2,3]', inputs: [u([2, 3])], build: (b, [x]) => b.identity(x!) },
];

// Deterministic inputs (mulberry32), so a failing gradcheck fails the same way every time.
export { rng };

/** Values for a case's inputs, honouring the ranges, kinks and gaps it asks for. */
export function caseInputs(c: GradcheckCase, seed: number): Float32Array[] {
  const r = rng(seed);
  const out: Float32Array[] = [];
  for (const spec of c.inputs) {
    const n = sizeOf(spec.shape);
    const v = new Float32Array(n);
    const prev = out[out.length - 1];
    for (let i = 0; i < n; i++) {
      if (spec.apartFromPrevious !== undefined && prev) {
        const gap = spec.apartFromPrevious + r() * (1 - spec.apartFromPrevious);
        v[i] = prev[i % prev.length]! + (r() < 0.5 ? -gap : gap);
        continue;
      }
      const lo = spec.lo ?? -1;
      const hi = spec.hi ?? 1;
      let x = lo + r() * (hi - lo);
      for (let tries = 0; spec.avoid?.some((p) => Math.abs(x - p) < (spec.margin ?? 0.1)) && tries < 100; tries++)
        x = lo + r() * (hi - lo);
      v[i] = x;
    }
    out.push(v);
  }
  return out;
}

/** A case as one graph: inputs x0..xk, outputs y (forward), loss = sum(y * r) and grad_k = dloss/dx_k. */
export function buildCaseModel(c: GradcheckCase, seed: number): { model: Uint8Array; ops: string[] } {
  const b = new Builder(`gradcheck_${c.op}`);
  const xs = c.inputs.map((spec, k) => b.input(`x${k}`, spec.shape, 'float32'));
  const y = c.build(b, xs);
  const ops = [...new Set(b.graph.nodes.map((n) => n.opType))];
  const r = rng(seed ^ 0x5eed);
  const weights = new Float32Array(sizeOf(y.shape)).map(() => r() * 2 - 1);
  const loss = b.sum(b.mul(y, b.constant({ dtype: 'float32', dims: [...y.shape], data: weights })));
  const grads = grad(b, loss, xs);
  const outputs: Record<string, Tensor> = { y, loss };
  grads.forEach((g, k) => (outputs[`grad${k}`] = g));
  return { model: emitModel(b.graph, { outputs }), ops };
}

export interface GradcheckOpResult {
  op: string;
  cases: number;
  /** Worst |analytic - numeric| / max(|analytic|, |numeric|, floor) over cases and directions. */
  worstRelError: number;
  worstCase: string;
  pass: boolean;
  /** Set when a case could not be built or run. */
  error?: string;
}

export interface GradcheckReport {
  provider: string;
  dtype: 'float32';
  tolerance: number;
  step: number;
  directions: number;
  ops: GradcheckOpResult[];
  /** Ops with a backward rule that no case exercises (should stay empty). */
  uncovered: string[];
  passed: boolean;
  ms: number;
}

export interface GradcheckOptions {
  provider?: ProviderName;
  /**
   * Relative tolerance. Float32 central differences with step 1e-2 on O(1) values land near 1e-4
   * to 1e-3 (step² truncation plus rounding of the loss); a wrong kernel is off by O(1).
   */
  tolerance?: number;
  step?: number;
  directions?: number;
  seed?: number;
  /** Only these ops (default: all). */
  ops?: readonly string[];
  /** Other cases instead of GRADCHECK_CASES (tests). */
  cases?: readonly GradcheckCase[];
}

const f32 = (shape: readonly number[], data: Float32Array): HostTensor => ({
  dtype: 'float32',
  dims: [...shape],
  data,
});

async function checkCase(
  device: Device,
  c: GradcheckCase,
  o: Required<Omit<GradcheckOptions, 'ops' | 'cases'>>,
): Promise<number> {
  const { model } = buildCaseModel(c, o.seed);
  const s = await device.load(model, { provider: o.provider });
  try {
    const x = caseInputs(c, o.seed);
    const feeds = (vals: Float32Array[]) =>
      Object.fromEntries(vals.map((v, k) => [`x${k}`, f32(c.inputs[k]!.shape, v)]));
    const base = await s.run(feeds(x));
    const grads = x.map((_, k) => base[`grad${k}`]!.data as Float32Array);
    const r = rng(o.seed ^ 0xd1ec7);
    let worst = 0;
    for (let d = 0; d < o.directions; d++) {
      const plus = x.map((v) => v.map((xi) => xi + o.step * (r() * 2 - 1)));
      const minus = x.map((v, k) => v.map((xi, i) => 2 * xi - plus[k]![i]!));
      // The perturbation actually applied, after rounding to float32 (halved: central difference).
      let analytic = 0;
      x.forEach((_, k) => plus[k]!.forEach((p, i) => (analytic += grads[k]![i]! * ((p - minus[k]![i]!) / 2))));
      const lp = (await s.run(feeds(plus))).loss!.data[0] as number;
      const lm = (await s.run(feeds(minus))).loss!.data[0] as number;
      const numeric = (lp - lm) / 2;
      const err = Math.abs(analytic - numeric) / Math.max(Math.abs(analytic), Math.abs(numeric), o.step * 1e-2);
      worst = Math.max(worst, err);
    }
    return worst;
  } finally {
    await s.release();
  }
}

/**
 * Checks every op's gradient on a provider of `device` (the compute worker's, through the `gradcheck` task);
 * see the file comment for the method. `onCase` hears after each case (progress; it may throw to stop).
 */
export async function runGradcheck(
  device: Device,
  opts: GradcheckOptions = {},
  onCase?: (done: number, total: number, op: string) => void | Promise<void>,
): Promise<GradcheckReport> {
  const t0 = performance.now();
  const o = {
    provider: opts.provider ?? 'cpu',
    tolerance: opts.tolerance ?? 1e-2,
    step: opts.step ?? 1e-2,
    directions: opts.directions ?? 3,
    seed: opts.seed ?? 17,
  };
  // Resolve 'auto' once so every case runs on the same provider and the report names it.
  const probe = await device.load(emitProbe(), { provider: o.provider });
  const provider = probe.provider;
  await probe.release();
  const cases = (opts.cases ?? GRADCHECK_CASES).filter((c) => !opts.ops || opts.ops.includes(c.op));
  const byOp = new Map<string, GradcheckOpResult>();
  for (const [k, c] of cases.entries()) {
    const res = byOp.get(c.op) ?? { op: c.op, cases: 0, worstRelError: 0, worstCase: c.label, pass: true };
    res.cases++;
    try {
      const err = await checkCase(device, c, { ...o, provider });
      if (err >= res.worstRelError) {
        res.worstRelError = err;
        res.worstCase = c.label;
      }
      if (!(err <= o.tolerance)) res.pass = false;
    } catch (e) {
      res.pass = false;
      res.worstRelError = Number.POSITIVE_INFINITY;
      res.worstCase = c.label;
      res.error = (e as Error).message.split('\n')[0];
    }
    byOp.set(c.op, res);
    await onCase?.(k + 1, cases.length, c.op);
  }
  const covered = new Set<string>();
  for (const c of GRADCHECK_CASES) for (const op of buildCaseOps(c)) covered.add(op);
  const uncovered = opts.cases
    ? []
    : Object.keys(RULES).filter((op) => !covered.has(op) && !NON_DIFFERENTIABLE.has(op));
  const ops = [...byOp.values()];
  return {
    provider,
    dtype: 'float32',
    tolerance: o.tolerance,
    step: o.step,
    directions: o.directions,
    ops,
    uncovered,
    passed: ops.every((r) => r.pass),
    ms: performance.now() - t0,
  };
}

/** The ops a case's rule table entries cover: every node's op, and the fused op a node stands for. */
function buildCaseOps(c: GradcheckCase): string[] {
  const b = new Builder('ops');
  c.build(
    b,
    c.inputs.map((spec, k) => b.input(`x${k}`, spec.shape, 'float32')),
  );
  return b.graph.nodes.flatMap((n) => (n.marker?.kind === 'fused' ? [n.opType, n.marker.op] : [n.opType]));
}

function emitProbe(): Uint8Array {
  const b = new Builder('probe');
  const x = b.input('x', [2], 'float32');
  return emitModel(b.graph, { outputs: { y: b.add(x, x) } });
}

/** The report as a table, one line per op, worst first, then a verdict. */
export function formatGradcheckReport(r: GradcheckReport): string {
  const rows = [...r.ops].sort((a, b) => b.worstRelError - a.worstRelError);
  const w = Math.max(...rows.map((x) => x.op.length), 2);
  const lines = [
    `gradcheck on ${r.provider} (${r.dtype}, central differences, step ${r.step}, ${r.directions} directions, tolerance ${r.tolerance})`,
    `${'op'.padEnd(w)}  cases  worst rel. error  result  worst case`,
    ...rows.map((x) => {
      const err = Number.isFinite(x.worstRelError) ? x.worstRelError.toExponential(2) : 'error';
      const note = x.error ? `${x.worstCase}: ${x.error}` : x.worstCase;
      return `${x.op.padEnd(w)}  ${String(x.cases).padStart(5)}  ${err.padStart(15)}  ${(x.pass ? 'ok' : 'FAIL').padEnd(6)}  ${note}`;
    }),
  ];
  if (r.uncovered.length) lines.push(`ops with a rule but no case: ${r.uncovered.join(', ')}`);
  const failed = rows.filter((x) => !x.pass).length;
  lines.push(
    failed
      ? `FAILED: ${failed} of ${rows.length} ops above tolerance or in error (${(r.ms / 1000).toFixed(1)} s)`
      : `passed: all ${rows.length} ops within ${r.tolerance} (${(r.ms / 1000).toFixed(1)} s)`,
  );
  return lines.join('\n');
}

/** A stream message of the gradcheck task. */
export interface GradcheckProgress {
  done: number;
  total: number;
  op: string;
}

/** The worker's `gradcheck` task (`fstudio doctor --gradcheck`): cancellable between cases. */
export const gradcheckTasks = {
  gradcheck: (a: Omit<GradcheckOptions, 'cases'>, ctx: TaskContext): Promise<GradcheckReport> =>
    runGradcheck(ctx.device, a, async (done, total, op) => {
      ctx.emit({ done, total, op } satisfies GradcheckProgress);
      await ctx.checkpoint();
    }),
};
