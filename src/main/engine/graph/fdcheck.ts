// Finite-difference checking of the emitted gradient graphs (the engine's tests; tinygrad's
// test_gradient.py helpers). The analytic gradient comes from the emitted loss+gradient graph run on
// ORT; the numeric one from central differences of the FORWARD graph alone (the same Graph emitted
// with only the loss as output, so no gradient rule is involved in it).
//
// Public API
//   checkGradient(spec) -> Promise<GradCheckResult>   builds, emits (both graphs pass assertModel and load with
//                                                      optimisation 'all'), runs, compares; throws above spec.tol
//   GradCheckSpec, GradCheckResult, Sampler, samplers (uniform, positive, awayFromZero, ...), rng(seed)
//   runGraph(b, outputs, feeds), f64(dims, values), f32(dims, values)   run once, for hand-checked values
//   worstErrors, opsChecked                            worst error per label; op types the checks covered
//
// Error measure: |a - n| / max(|a|, |n|, floor * scale), scale = sum_k |g_k|·|v_k| for directional checks
// (an upper bound of |a|) and max|g| for Jacobian entries, so near-zero derivatives are judged on the
// gradient's scale instead of dividing by ~0.

import { Builder } from './builder.js';
import { grad } from './grad.js';
import { type DType, type Tensor, sizeOf } from './ir.js';
import { mulberry32 } from '../../../shared/random.js';
import { assertModel } from './check.js';
import { emitModel } from './onnx-proto.js';
import { type HostTensor, type RuntimeSession, type SessionOptions, createSession } from '../runtime/ort.js';

export type FloatDType = 'float32' | 'float64';
export type Sampler = (r: () => number) => number;

/** Deterministic PRNG (mulberry32) in [0, 1). */
export const rng: (seed: number) => () => number = mulberry32;

export const samplers = {
  uniform:
    (lo: number, hi: number): Sampler =>
    (r) =>
      lo + (hi - lo) * r(),
  positive:
    (lo = 0.5, hi = 2): Sampler =>
    (r) =>
      lo + (hi - lo) * r(),
  /** |x| in [0.1, 1]: keeps Relu, Abs, Sign and division away from their kink or pole. */
  awayFromZero: (): Sampler => (r) => (r() < 0.5 ? -1 : 1) * (0.1 + 0.9 * r()),
  /** Standard normal (Box-Muller). */
  normal: (): Sampler => (r) => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()),
};

export interface GradCheckSpec {
  /** Label in the report, usually the op. */
  label: string;
  shapes: readonly (readonly number[])[];
  dtype?: FloatDType;
  /** The op(s) under test; may return any float tensor, the loss is sum(out * fixed random weights). */
  build: (b: Builder, xs: Tensor[]) => Tensor | Tensor[];
  /** Sampler per input (or one for all); default awayFromZero. */
  sample?: Sampler | readonly Sampler[];
  /** Inputs to differentiate (default all). */
  wrt?: readonly number[];
  /** Step (default 1e-5 for float64, 1e-2 for float32). */
  h?: number;
  /** Allowed error (default 1e-6 for float64, 1e-2 for float32). */
  tol?: number;
  /**
   * Floor of the error's denominator, as a fraction of the gradient's scale (default 1e-3 for float64,
   * 1e-2 for float32, where one central difference of a float32 loss has ~1e-6 absolute noise / 2h).
   */
  floor?: number;
  /** Full Jacobian check when the inputs have at most this many elements together (default 64). */
  jacobianMax?: number;
  seed?: number;
  /** Execution provider for both graphs (default 'cpu'). */
  provider?: SessionOptions['provider'];
}

export interface GradCheckResult {
  worstDirectional: number;
  worstJacobian: number | null;
  runs: number;
}

export const worstErrors = new Map<string, { dtype: FloatDType; err: number; tol: number }>();

function floatArray(dtype: FloatDType, n: number): Float32Array | Float64Array {
  return dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
}

function toNumbers(t: HostTensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, Number);
}

async function session(bytes: Uint8Array, provider: SessionOptions['provider'] = 'cpu'): Promise<RuntimeSession> {
  assertModel(bytes);
  return createSession(bytes, { provider, optimization: 'all' });
}

/** Op types that appeared in the forward part of a checked graph (to test that every rule was checked). */
export const opsChecked = new Set<string>();

export async function checkGradient(spec: GradCheckSpec): Promise<GradCheckResult> {
  const dtype = spec.dtype ?? 'float64';
  const h = spec.h ?? (dtype === 'float64' ? 1e-5 : 1e-2);
  const tol = spec.tol ?? (dtype === 'float64' ? 1e-6 : 1e-2);
  const floor = spec.floor ?? (dtype === 'float64' ? 1e-3 : 1e-2);
  const r = rng(spec.seed ?? 1234);
  const b = new Builder(`check_${spec.label}`);
  const xs = spec.shapes.map((s, k) => b.input(`x${k}`, s, dtype));
  const built = spec.build(b, xs);
  const outs = Array.isArray(built) ? built : [built];
  let loss: Tensor | null = null;
  for (const out of outs) {
    const w = floatArray(out.dtype as FloatDType, out.size);
    for (let k = 0; k < w.length; k++) w[k] = 0.5 + r(); // positive, not all equal: no accidental cancellation
    const term = b.sum(b.mul(out, b.constant({ dtype: out.dtype, dims: out.shape, data: w })));
    loss = loss ? b.add(loss, term) : term;
  }
  const wrt = spec.wrt ?? xs.map((_, k) => k);
  const grads = grad(
    b,
    loss!,
    wrt.map((k) => xs[k]!),
  );
  const outputs: Record<string, Tensor> = { loss: loss! };
  wrt.forEach((k, j) => (outputs[`grad_x${k}`] = grads[j]!));
  const forwardEnd = loss!.producer?.index ?? -1;
  for (const n of b.graph.nodes) {
    if (n.index > forwardEnd) continue;
    opsChecked.add(n.opType);
    if (n.marker?.kind === 'fused') opsChecked.add(n.marker.op);
  }
  const full = await session(emitModel(b.graph, { outputs }), spec.provider);
  const fwd = await session(emitModel(b.graph, { outputs: { loss: loss! } }), spec.provider);
  let runs = 0;
  try {
    const samplerFor = (k: number): Sampler =>
      Array.isArray(spec.sample) ? spec.sample[k]! : ((spec.sample as Sampler | undefined) ?? samplers.awayFromZero());
    const x0 = spec.shapes.map((s, k) => {
      const a = floatArray(dtype, sizeOf(s));
      const f = samplerFor(k);
      for (let i = 0; i < a.length; i++) a[i] = f(r);
      return a;
    });
    const feeds = (xv: (Float32Array | Float64Array)[]): Record<string, HostTensor> =>
      Object.fromEntries(xv.map((a, k) => [`x${k}`, { dtype: dtype as DType, dims: spec.shapes[k]!, data: a }]));
    const res = await full.run(feeds(x0));
    runs++;
    const g = wrt.map((k) => toNumbers(res[`grad_x${k}`]!));
    g.forEach((gk, j) => {
      if (gk.some((v) => !Number.isFinite(v))) throw new Error(`${spec.label}: non-finite gradient for x${wrt[j]}`);
    });
    const lossAt = async (xv: (Float32Array | Float64Array)[]) => {
      runs++;
      return toNumbers((await fwd.run(feeds(xv))).loss!)[0]!;
    };
    const fd = async (dirs: Map<number, number[]>) => {
      const plus = x0.map((a, k) => {
        const c = a.slice();
        const v = dirs.get(k);
        if (v) for (let i = 0; i < c.length; i++) c[i] = c[i]! + h * v[i]!;
        return c;
      });
      const minus = x0.map((a, k) => {
        const c = a.slice();
        const v = dirs.get(k);
        if (v) for (let i = 0; i < c.length; i++) c[i] = c[i]! - h * v[i]!;
        return c;
      });
      return ((await lossAt(plus)) - (await lossAt(minus))) / (2 * h);
    };
    const relErr = (a: number, n: number, scale: number) =>
      Math.abs(a - n) / Math.max(Math.abs(a), Math.abs(n), floor * scale, 1e-300);

    // Directional derivatives: one random direction per input alone, then two over all inputs jointly.
    let worstDirectional = 0;
    const dirSets: number[][] = [...wrt.map((k) => [k]), wrt.slice(), wrt.slice()];
    for (const set of dirSets) {
      const dirs = new Map<number, number[]>();
      let analytic = 0;
      let scale = 0;
      for (const k of set) {
        const n = sizeOf(spec.shapes[k]!);
        const v = Array.from({ length: n }, () => (r() < 0.5 ? -1 : 1) * (0.5 + r()));
        dirs.set(k, v);
        const gk = g[wrt.indexOf(k)]!;
        let dot = 0;
        let gn = 0;
        let vn = 0;
        for (let i = 0; i < n; i++) {
          dot += gk[i]! * v[i]!;
          gn += gk[i]! * gk[i]!;
          vn += v[i]! * v[i]!;
        }
        analytic += dot;
        scale += Math.sqrt(gn * vn);
      }
      const numeric = await fd(dirs);
      worstDirectional = Math.max(worstDirectional, relErr(analytic, numeric, scale));
    }

    // Full Jacobian (of the scalar loss: every partial derivative) on small inputs.
    let worstJacobian: number | null = null;
    const total = wrt.reduce((s, k) => s + sizeOf(spec.shapes[k]!), 0);
    if (total <= (spec.jacobianMax ?? 64)) {
      worstJacobian = 0;
      for (const k of wrt) {
        const gk = g[wrt.indexOf(k)]!;
        const gmax = Math.max(...gk.map(Math.abs));
        for (let i = 0; i < gk.length; i++) {
          const v = new Array<number>(gk.length).fill(0);
          v[i] = 1;
          const numeric = await fd(new Map([[k, v]]));
          worstJacobian = Math.max(worstJacobian, relErr(gk[i]!, numeric, gmax));
        }
      }
    }
    const worst = Math.max(worstDirectional, worstJacobian ?? 0);
    const prev = worstErrors.get(spec.label);
    if (!prev || prev.err < worst) worstErrors.set(spec.label, { dtype, err: worst, tol });
    if (!(worst <= tol)) {
      throw new Error(
        `${spec.label} (${dtype}, shapes ${JSON.stringify(spec.shapes)}): gradient error ${worst.toExponential(2)} ` +
          `above ${tol} (directional ${worstDirectional.toExponential(2)}, jacobian ${worstJacobian?.toExponential(2)})`,
      );
    }
    return { worstDirectional, worstJacobian, runs };
  } finally {
    await full.release();
    await fwd.release();
  }
}

/** Formats worstErrors as a table for the test log. */
export function worstErrorReport(): string {
  const rows = [...worstErrors.entries()].sort(([a], [b]) => a.localeCompare(b));
  return rows
    .map(([k, v]) => `${k.padEnd(28)} ${v.dtype.padEnd(8)} ${v.err.toExponential(2)} (tol ${v.tol})`)
    .join('\n');
}

/**
 * Emits `outputs` of b's graph (checked with assertModel), runs it once on ORT CPU with optimisation
 * 'all' and returns every output as plain numbers.
 */
export async function runGraph(
  b: Builder,
  outputs: Record<string, Tensor>,
  feeds: Record<string, HostTensor> = {},
): Promise<Record<string, number[]>> {
  const s = await session(emitModel(b.graph, { outputs }));
  try {
    const res = await s.run(feeds);
    return Object.fromEntries(Object.entries(res).map(([k, v]) => [k, toNumbers(v)]));
  } finally {
    await s.release();
  }
}

/** A float64 HostTensor from numbers. */
export function f64(dims: readonly number[], values: readonly number[]): HostTensor {
  return { dtype: 'float64', dims, data: Float64Array.from(values) };
}

/** A float32 HostTensor from numbers. */
export function f32(dims: readonly number[], values: readonly number[]): HostTensor {
  return { dtype: 'float32', dims, data: Float32Array.from(values) };
}
