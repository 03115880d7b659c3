// One small float32 gradient check per op with a rule, runnable on any execution provider (WebGPU has
// no float64): what `fstudio doctor --gradcheck [--provider P]` runs and reports per op. The thorough
// grids (float64, every broadcast form) live in grad.test.ts; these are the portable subset.
//
// Public API
//   OP_CASES: readonly GradCheckSpec[]   label = op type; float32; tolerances stated per case
//   runOpCases(provider?, filter?) -> Promise<OpCaseResult[]>   runs them, never throws per case

import { type GradCheckSpec, checkGradient, samplers } from './fdcheck.js';
import { type SessionOptions } from './runtime.js';

// Nonlinear ops: step 1e-2, error 1e-2. Linear (or bilinear) ops: central differences are exact for
// polynomials of degree <= 2, so step 1 and error 1e-3 (float32 rounding only).
const NL = { dtype: 'float32', h: 1e-2, tol: 1e-2 } as const;
const LIN = { dtype: 'float32', h: 1, tol: 1e-3 } as const;
const normal = samplers.normal();
const pos = samplers.positive();

export const OP_CASES: readonly GradCheckSpec[] = [
  { label: 'Add', shapes: [[2, 3], [3]], build: (b, [x, y]) => b.add(x!, y!), ...LIN },
  { label: 'Sub', shapes: [[2, 1], [3]], build: (b, [x, y]) => b.sub(x!, y!), ...LIN },
  {
    label: 'Mul',
    shapes: [
      [2, 3],
      [2, 1],
    ],
    build: (b, [x, y]) => b.mul(x!, y!),
    ...LIN,
  },
  { label: 'Div', shapes: [[2, 3], []], build: (b, [x, y]) => b.div(x!, y!), ...NL, sample: [normal, pos] },
  { label: 'Neg', shapes: [[2, 3]], build: (b, [x]) => b.neg(x!), ...LIN },
  { label: 'Pow', shapes: [[2, 3]], build: (b, [x]) => b.pow(x!, 3), ...NL },
  { label: 'Sqrt', shapes: [[2, 3]], build: (b, [x]) => b.sqrt(x!), ...NL, sample: pos },
  { label: 'Exp', shapes: [[2, 3]], build: (b, [x]) => b.exp(x!), ...NL, sample: normal },
  { label: 'Log', shapes: [[2, 3]], build: (b, [x]) => b.log(x!), ...NL, sample: pos },
  { label: 'Reciprocal', shapes: [[2, 3]], build: (b, [x]) => b.reciprocal(x!), ...NL, sample: pos },
  { label: 'Sigmoid', shapes: [[2, 3]], build: (b, [x]) => b.sigmoid(x!), ...NL, sample: normal },
  { label: 'Tanh', shapes: [[2, 3]], build: (b, [x]) => b.tanh(x!), ...NL, sample: normal },
  { label: 'Erf', shapes: [[2, 3]], build: (b, [x]) => b.erf(x!), ...NL, sample: normal },
  { label: 'Asin', shapes: [[2, 3]], build: (b, [x]) => b.asin(x!), ...NL, sample: samplers.uniform(-0.8, 0.8) },
  { label: 'Relu', shapes: [[2, 3]], build: (b, [x]) => b.relu(x!), ...LIN, h: 0.05 },
  { label: 'Abs', shapes: [[2, 3]], build: (b, [x]) => b.abs(x!), ...LIN, h: 0.05 },
  { label: 'Sign', shapes: [[2, 3]], build: (b, [x]) => b.add(b.sign(x!), x!), ...LIN, h: 0.05 },
  { label: 'Max', shapes: [[2, 3], [3]], build: (b, [x, y]) => b.max(x!, y!), ...LIN, h: 1e-3 },
  { label: 'Min', shapes: [[2, 3], [3]], build: (b, [x, y]) => b.min(x!, y!), ...LIN, h: 1e-3 },
  { label: 'Clip', shapes: [[2, 3]], build: (b, [x]) => b.clip(x!, -0.5, 0.5), ...LIN, h: 1e-3 },
  {
    label: 'Where',
    shapes: [[2, 3], [3]],
    build: (b, [x, y]) => b.where(b.greater(b.constant([1, -1, 1, -1, -1, 1], 'float32', [2, 3]), 0), x!, y!),
    ...LIN,
  },
  { label: 'Identity', shapes: [[2, 3]], build: (b, [x]) => b.identity(x!), ...LIN },
  { label: 'Cast', shapes: [[2, 3]], build: (b, [x]) => b.cast(b.cast(x!, 'float32'), 'float32'), ...LIN },
  {
    label: 'MatMul',
    shapes: [
      [2, 2, 3],
      [3, 4],
    ],
    build: (b, [x, y]) => b.matmul(x!, y!),
    ...LIN,
  },
  {
    label: 'Gemm',
    shapes: [[3, 2], [4, 3], [4]],
    build: (b, [x, y, z]) => b.gemm(x!, y!, z!, { transA: true, transB: true, alpha: 0.5, beta: 2 }),
    ...LIN,
  },
  {
    label: 'Conv',
    shapes: [[1, 2, 6, 6], [4, 1, 3, 3], [4]],
    build: (b, [x, w, c]) => b.conv(x!, w!, c!, { pads: [1, 1, 1, 1], strides: [2, 2], group: 2 }),
    ...LIN,
  },
  {
    label: 'ConvTranspose',
    shapes: [[1, 2, 3, 3], [2, 3, 3, 3], [3]],
    build: (b, [x, w, c]) =>
      b.convTranspose(x!, w!, c!, { strides: [2, 2], pads: [1, 1, 1, 1], outputPadding: [1, 1] }),
    ...LIN,
  },
  { label: 'Resize', shapes: [[1, 2, 3, 3]], build: (b, [x]) => b.upsample(x!, [1, 1, 2, 2]), ...LIN },
  { label: 'ReduceSum', shapes: [[2, 3, 4]], build: (b, [x]) => b.reduceSum(x!, [0, 2], false), ...LIN },
  { label: 'ReduceMean', shapes: [[2, 3, 4]], build: (b, [x]) => b.reduceMean(x!, [1], true), ...LIN },
  { label: 'Softmax', shapes: [[2, 5]], build: (b, [x]) => b.softmax(x!, -1), ...NL, sample: normal },
  {
    label: 'LayerNormalization',
    shapes: [[2, 5], [5], [5]],
    build: (b, [x, g, c]) => b.layerNorm(x!, g!, c!),
    ...NL,
    sample: normal,
  },
  {
    label: 'GroupNorm (decomposed)',
    shapes: [[1, 4, 3, 3], [4], [4]],
    build: (b, [x, g, c]) => b.groupNorm(x!, 2, g!, c!),
    ...NL,
    sample: normal,
  },
  { label: 'Reshape', shapes: [[2, 6]], build: (b, [x]) => b.reshape(x!, [3, 4]), ...LIN },
  { label: 'Transpose', shapes: [[2, 3, 4]], build: (b, [x]) => b.transpose(x!, [2, 0, 1]), ...LIN },
  {
    label: 'Concat',
    shapes: [
      [2, 3],
      [1, 3],
    ],
    build: (b, [x, y]) => b.concat([x!, y!, x!], 0),
    ...LIN,
  },
  { label: 'Slice', shapes: [[3, 4]], build: (b, [x]) => b.slice(x!, [1, -3], [3, 100], [0, 1]), ...LIN },
  { label: 'Gather', shapes: [[4, 3]], build: (b, [x]) => b.gather(x!, [3, 0, 3], 0), ...LIN },
  { label: 'Pad', shapes: [[3, 4]], build: (b, [x]) => b.pad(x!, [1, -1, 0, 2]), ...LIN },
  { label: 'Expand', shapes: [[3, 1]], build: (b, [x]) => b.expand(x!, [2, 3, 4]), ...LIN },
  { label: 'Squeeze', shapes: [[2, 1, 3]], build: (b, [x]) => b.squeeze(x!, [1]), ...LIN },
  { label: 'Unsqueeze', shapes: [[2, 3]], build: (b, [x]) => b.unsqueeze(x!, [1]), ...LIN },
];

export interface OpCaseResult {
  label: string;
  /** Worst error (max of directional and Jacobian), or null when the case failed to run. */
  error: number | null;
  tol: number;
  ok: boolean;
  message?: string;
}

export async function runOpCases(
  provider: SessionOptions['provider'] = 'cpu',
  filter?: (label: string) => boolean,
): Promise<OpCaseResult[]> {
  const out: OpCaseResult[] = [];
  for (const spec of OP_CASES) {
    if (filter && !filter(spec.label)) continue;
    const tol = spec.tol!;
    try {
      const r = await checkGradient({ ...spec, provider, tol: Infinity });
      const error = Math.max(r.worstDirectional, r.worstJacobian ?? 0);
      out.push({ label: spec.label, error, tol, ok: error <= tol });
    } catch (e) {
      out.push({ label: spec.label, error: null, tol, ok: false, message: (e as Error).message });
    }
  }
  return out;
}
