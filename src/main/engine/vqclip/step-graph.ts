// One VQGAN+CLIP optimisation step as one static graph (the recipe of Crowson's notebook, see cutouts.ts for
// the views): quantise z with a straight-through gradient, decode, clamp_with_grad to [0, 1], cut out,
// CLIP-normalise, the CLIP image tower, spherical distances to every target with weights and stops, the
// gradient for z, and the optimiser's update of z and its state, so that z and the moments never leave the
// worker and only the losses, the tokens and the 8-bit image come out.
//
// Inputs (all float32 unless said; shapes from StepSpec):
//   z, z0 (init_weight only), m, v (adam/adamw)      [1, D, h, w]
//   lr | step_size, bc2_sqrt (+ decay for adamw)     scalars: the host computes the schedule and bias corrections
//   init_weight                                      scalar (init_weight only)
//   targets [T, E] (unit rows), sign [T], stop [T]   one row per target embedding (text: 1, image: its cutouts)
//   member [T, P]                                    1/K_p where row r belongs to prompt p (K_p rows), else 0
//   weight [P] (|w|), active [P] (0/1: story phrases not current yet report but do not pull)
//   the cutouts' inputs (cutouts.ts cutInputSpecs)
// Outputs:
//   loss (scalar: sum of active prompts' losses + init term), losses [P] (|w_p| mean over cutouts and rows of
//   sign(w_p) d, reported for every prompt), tokens int32 [h*w] (the codes this step decoded), rgb uint8 [H, W, 3]
//   (the decoded image, packed), z_next, m_next, v_next.
// The distance is Crowson's 2 asin(|a - b| / 2)^2 between unit vectors; a row's gradient is cut where
// sign(w) d <= stop (her replace_grad(d, max(d, stop))).
//
// Memory: the cutouts go through CLIP in chunks (StepSpec.cutChunk), each chunk's backward pass done before
// the next chunk's forward pass (a data dependency orders them), so CLIP's activations are kept for one chunk
// at a time; the decoder's norm -> swish pairs keep only their statistics (builder.groupNormSilu); and the
// outputs for the host are built before the gradients, so that ORT's execution order (a reverse depth-first
// walk from the last-built outputs) interleaves the backward pass with the forward pass.
//
// Public API
//   StepSpec, Optimizer, stepSpecKey(spec), stepInputs(spec) -> { name, dtype, shape }[], cutSpecOf, latentShape
//   buildStepGraph(b, spec, clip Params, vqgan VqganParams) -> outputs    (the builder holds the graph)
//   emitStepGraph(spec, clipWeights, vqganWeights, ext?) -> Uint8Array
//   emitLookupGraph(vqganConfig, weights, grid, ext?) -> Uint8Array       tokens int64 [h*w] -> z [1, D, h, w]
//   emitImagePromptGraph(cutSpec, srcHeight, srcWidth) -> Uint8Array      pixels [1, 3, srcH, srcW] in [0, 1] ->
//                                                                          resampled to the run's size -> the run's
//                                                                          cutouts, CLIP-normalised (feed the vision tower)
//   ADAM { beta1, beta2, eps }, ADAMW_DECAY
import { Builder } from '../graph/builder.js';
import { grad } from '../graph/grad.js';
import { type DType, type HostTensor, type Tensor } from '../graph/ir.js';
import { type ExternalWeights, emitModel } from '../graph/onnx-proto.js';
import { type ClipConfig, type Params, buildVisionTower, paramsFrom } from '../nets/clip.js';
import { type VqganConfig, type VqganParams, decode, downsampleFactor, quantize, vqganParams } from '../nets/vqgan.js';
import {
  type CutMethod,
  type CutSpec,
  applyCutouts,
  cropResampleMatrix,
  cutInputSpecs,
  cutoutSource,
  cutoutsFrom,
} from './cutouts.js';

export type Optimizer = 'adam' | 'adamw' | 'sgd';

/** PyTorch's Adam / AdamW defaults (AdamW's weight decay 0.01). */
export const ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-8 } as const;
export const ADAMW_DECAY = 0.01;

export interface StepSpec {
  clip: ClipConfig;
  vqgan: VqganConfig;
  width: number;
  height: number;
  cuts: number;
  cutMethod: CutMethod;
  /** Target rows (T) and prompts (P). */
  targets: number;
  prompts: number;
  optimizer: Optimizer;
  /** With the init_weight term (MSE of z against z0). */
  initTerm: boolean;
  /** Cutouts per chunk (default all): CLIP's activations are kept for one chunk at a time. */
  cutChunk?: number;
}

/** What the graph's bytes depend on (for the graph cache key). */
export function stepSpecKey(spec: StepSpec): Record<string, unknown> {
  return { ...spec };
}

export function cutSpecOf(spec: StepSpec, cutPow = 1): CutSpec {
  return {
    method: spec.cutMethod,
    cuts: spec.cuts,
    size: spec.clip.vision.imageSize,
    height: spec.height,
    width: spec.width,
    cutPow,
  };
}

/** The latent grid of a spec: [D, h, w]. */
export function latentShape(spec: { vqgan: VqganConfig; width: number; height: number }): [number, number, number] {
  const f = downsampleFactor(spec.vqgan);
  return [spec.vqgan.embedDim, spec.height / f, spec.width / f];
}

export function stepInputs(spec: StepSpec): { name: string; dtype: DType; shape: number[] }[] {
  const [D, h, w] = latentShape(spec);
  const zs = [1, D, h, w];
  const E = spec.clip.projectionDim;
  const { targets: T, prompts: P } = spec;
  const f = (name: string, shape: number[]) => ({ name, dtype: 'float32' as DType, shape });
  const list = [f('z', zs)];
  if (spec.optimizer !== 'sgd') list.push(f('m', zs), f('v', zs));
  if (spec.initTerm) list.push(f('z0', zs), f('init_weight', []));
  if (spec.optimizer === 'sgd') list.push(f('lr', []));
  else list.push(f('step_size', []), f('bc2_sqrt', []));
  if (spec.optimizer === 'adamw') list.push(f('decay', []));
  list.push(f('targets', [T, E]), f('sign', [T]), f('stop', [T]), f('member', [T, P]), f('weight', [P]));
  list.push(f('active', [P]));
  return [...list, ...cutInputSpecs(cutSpecOf(spec))];
}

export interface StepOutputs {
  /** The gradient of loss for z (not an output of the emitted graph unless asked: tests compare it). */
  grad: Tensor;
  loss: Tensor;
  losses: Tensor;
  tokens: Tensor;
  rgb: Tensor;
  z_next: Tensor;
  m_next?: Tensor;
  v_next?: Tensor;
}

/** Appends the step to b's graph; parameters by checkpoint name from `pc` (CLIP) and `pv` (VQGAN). */
export function buildStepGraph(b: Builder, spec: StepSpec, pc: Params, pv: VqganParams): StepOutputs {
  const [D, h, w] = latentShape(spec);
  if (!Number.isInteger(h) || !Number.isInteger(w)) {
    throw new Error(`step graph: ${spec.width}x${spec.height} is not a multiple of the VQGAN's factor`);
  }
  const ins: Record<string, Tensor> = {};
  for (const s of stepInputs(spec)) ins[s.name] = b.input(s.name, s.shape, s.dtype);
  const z = ins.z!;

  // Quantise (straight-through), decode, clamp with gradient: the image in [0, 1].
  const { zq, indices } = quantize(b, pv, z);
  const x = decode(b, pv, zq);
  const img = b.clampWithGrad(b.add(b.mul(x, 0.5), 0.5), 0, 1); // [1, 3, H, W]

  // The outputs for the host, built here, before the gradients: ORT runs a graph in a reverse depth-first
  // order from its last-built outputs, so z_next (built last) leads and the backward pass interleaves with
  // the forward pass as it should (derivatives formed right after what they are formed from, see SiLU in
  // grad-rules.ts) instead of the whole forward pass running first for the image.
  const tokens = b.cast(b.reshape(indices, [h * w]), 'int32');
  const hw = b.transpose(b.reshape(img, [3, spec.height, spec.width]), [1, 2, 0]);
  const [rounded] = b.node('Round', [b.mul(hw, 255)], [{ name: 'rgb_f', dtype: 'float32', shape: hw.shape }]);
  const rgb = b.cast(rounded!, 'uint8');

  // Cutouts -> CLIP -> losses, in chunks of cutouts: each chunk's forward and backward (to the cutouts'
  // source) run before the next chunk's forward starts, so only one chunk's CLIP activations are kept at a
  // time. The loss is linear in each (cutout, row) term: chunk k's share is sum_t c_t sum_{cut in k} term,
  // c = member (weight * active) / n, and the chunks' gradients add up to the whole loss's.
  const cut = cutSpecOf(spec);
  const source = cutoutSource(b, img, cut);
  const n = spec.cuts;
  const c = b.div(b.matmul(ins.member!, b.mul(ins.weight!, ins.active!)), n); // [T]
  const chunk = Math.max(1, Math.min(spec.cutChunk ?? n, n));
  const rowSums: Tensor[] = [];
  let dSource: Tensor | null = null;
  let after: Tensor | null = null; // a zero that depends on the previous chunk's gradient (ordering only)
  for (let from = 0; from < n; from += chunk) {
    const to = Math.min(n, from + chunk);
    const src = after ? b.add(source, b.stopGradient(after)) : source;
    const cuts = cutoutsFrom(b, src, cut, ins, from, to);
    const emb = b.l2Normalize(buildVisionTower(b, spec.clip, pc, cuts), -1); // [k, E]
    // Spherical distance of every (cutout, target row): 2 asin(|a - b| / 2)^2.
    const diff = b.sub(b.unsqueeze(emb, [1]), b.unsqueeze(ins.targets!, [0])); // [k, T, E]
    const norm = b.sqrt(b.reduceSumSquare(diff, [2], false)); // [k, T]
    const d = b.mul(b.square(b.asin(b.mul(norm, 0.5))), 2);
    const ds = b.mul(d, ins.sign!);
    // Stops: the value is sign(w) d everywhere; its gradient only where sign(w) d > stop.
    const term = b.where(b.greater(ds, ins.stop!), ds, b.stopGradient(ds));
    const rows = b.reduceSum(term, [0], false); // [T]
    rowSums.push(rows);
    const [g] = grad(b, b.sum(b.mul(rows, c)), [src]) as [Tensor];
    dSource = dSource ? b.add(dSource, g) : g;
    if (to < n) {
      const s0 = b.reduceSum(g);
      after = b.where(b.equal(s0, s0), b.scalar(0, s0.dtype), 0); // exactly 0, also when s0 is NaN
    }
  }
  const perRow = b.div(
    rowSums.reduce((acc, r) => b.add(acc, r)),
    n,
  ); // [T]
  const losses = b.mul(b.reshape(b.matmul(b.reshape(perRow, [1, -1]), ins.member!), [spec.prompts]), ins.weight!);
  let loss = b.sum(b.mul(losses, ins.active!));
  // The rest of the way to z: through the cutouts' source, the clamp, the decoder and the quantiser.
  let [g] = grad(b, source, [z], { seed: dSource! }) as [Tensor];
  if (spec.initTerm) {
    const dz = b.sub(z, ins.z0!);
    const init = b.mul(b.mean(b.mul(dz, dz)), b.mul(ins.init_weight!, 0.5));
    loss = b.add(loss, init);
    g = b.add(g, grad(b, init, [z])[0]!);
  }

  // The optimiser, as PyTorch's Adam / AdamW (single-tensor) and plain SGD.
  let zNext: Tensor;
  let mNext: Tensor | undefined;
  let vNext: Tensor | undefined;
  if (spec.optimizer === 'sgd') {
    zNext = b.sub(z, b.mul(g, ins.lr!));
  } else {
    mNext = b.add(b.mul(ins.m!, ADAM.beta1), b.mul(g, 1 - ADAM.beta1));
    vNext = b.add(b.mul(ins.v!, ADAM.beta2), b.mul(b.mul(g, g), 1 - ADAM.beta2));
    const denom = b.add(b.div(b.sqrt(vNext), ins.bc2_sqrt!), ADAM.eps);
    const base = spec.optimizer === 'adamw' ? b.mul(z, ins.decay!) : z;
    zNext = b.sub(base, b.mul(b.div(mNext, denom), ins.step_size!));
  }
  // Clamp every channel of z to the codebook's range of that channel (folded to constants by ORT).
  const e = pv.get('quantize.embedding.weight'); // [n_embed, D]
  const zmax = b.reshape(b.reduceMax(e, [0]), [1, D, 1, 1]);
  const zmin = b.reshape(b.neg(b.reduceMax(b.neg(e), [0])), [1, D, 1, 1]);
  zNext = b.min(b.max(zNext, zmin), zmax);

  return {
    grad: g,
    loss,
    losses,
    tokens,
    rgb,
    z_next: zNext,
    ...(mNext ? { m_next: mNext } : {}),
    ...(vNext ? { v_next: vNext } : {}),
  };
}

/** The step graph as ONNX bytes: weights inline, or referencing the shared weights files in `ext`. */
export function emitStepGraph(
  spec: StepSpec,
  clipWeights: ReadonlyMap<string, HostTensor>,
  vqganWeights: ReadonlyMap<string, HostTensor>,
  ext?: ExternalWeights,
): Uint8Array {
  const b = new Builder('vqclip_step');
  const outs = buildStepGraph(b, spec, paramsFrom(b, clipWeights), vqganParams(b, spec.vqgan, vqganWeights));
  const outputs: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(outs)) if (t && k !== 'grad') outputs[k] = t;
  return emitModel(b.graph, { outputs, sharedWeights: ext });
}

/** tokens int64 [h*w] -> z [1, D, h, w]: the codebook rows (VectorQuantizer.get_codebook_entry). */
export function emitLookupGraph(
  config: VqganConfig,
  weights: ReadonlyMap<string, HostTensor>,
  grid: { h: number; w: number },
  ext?: ExternalWeights,
): Uint8Array {
  const b = new Builder('vqclip_lookup');
  const p = vqganParams(b, config, weights);
  const tokens = b.input('tokens', [grid.h * grid.w], 'int64');
  const rows = b.gather(p.get('quantize.embedding.weight'), tokens, 0); // [h*w, D]
  const z = b.transpose(b.reshape(rows, [1, grid.h, grid.w, config.embedDim]), [0, 3, 1, 2]);
  return emitModel(b.graph, { outputs: { z }, sharedWeights: ext });
}

/**
 * An image prompt's cutouts: the picture (any size) resampled to the run's size as Crowson's resample() does
 * (anti-aliased when shrinking), clamped to [0, 1], then cut out as the run's image is. No weights.
 */
export function emitImagePromptGraph(cut: CutSpec, srcHeight: number, srcWidth: number): Uint8Array {
  const b = new Builder('vqclip_image_prompt');
  const pixels = b.input('pixels', [1, 3, srcHeight, srcWidth], 'float32');
  const ins: Record<string, Tensor> = {};
  for (const s of cutInputSpecs(cut)) ins[s.name] = b.input(s.name, s.shape, s.dtype);
  const rows = cropResampleMatrix(srcHeight, 0, srcHeight, cut.height); // [H, srcH]
  const cols = cropResampleMatrix(srcWidth, 0, srcWidth, cut.width); // [W, srcW]
  const colsT = new Float32Array(srcWidth * cut.width);
  for (let i = 0; i < cut.width; i++)
    for (let j = 0; j < srcWidth; j++) colsT[j * cut.width + i] = cols[i * srcWidth + j]!;
  const R = b.constant({ dtype: 'float32', dims: [cut.height, srcHeight], data: Float32Array.from(rows) });
  const Ct = b.constant({ dtype: 'float32', dims: [srcWidth, cut.width], data: colsT });
  const img = b.clip(b.matmul(b.matmul(R, pixels), Ct), 0, 1);
  return emitModel(b.graph, { outputs: { cutouts: applyCutouts(b, img, cut, ins) } });
}
