// Cutouts: the views of the image CLIP sees each step, in the two styles users know, as static graphs whose
// random per-step parameters are INPUTS made here on the host from the run's seeded generator.
//
//   original  Crowson's MakeCutouts: `cuts` square crops, side floor(u^cut_pow (max - min) + min) with
//             min = min(H, W, S), max = min(H, W), at a uniform offset, each resampled to S x S as her
//             resample() does (Lanczos-2 anti-aliasing when shrinking, reflect-padded, then bicubic with
//             align_corners=True), then clamp_with_grad to [0, 1]. A crop-and-resample is separable:
//             cut_c = R_c img C_c^T with R_c [S, H] and C_c [S, W] built here, two batched MatMuls in the graph.
//   pooled    nerdyrodent's default: the image reduced to S x S once by (adaptive average pool + adaptive max
//             pool) / 2, then per cutout a random horizontal flip (p 0.5), affine warp (p 0.7: rotation
//             +-15 deg, shear +-5 deg, translation +-10 %) and perspective warp (p 0.7: corners moved up to
//             PERSPECTIVE of the half side), composed into one homography and sampled bilinearly with zero
//             padding (a Gather of 4 taps per pixel with weights, both inputs); colour jitter (p 0.7: hue
//             +-0.1 turn and saturation x[0.9, 1.1] as one linear 3x3 map in YIQ space); Gaussian noise
//             scaled by U(0, 0.1) per cutout.
// Every operation is a linear map of the image (plus noise), so the graph is plain MatMul / Gather / Mul,
// runs on every provider, and its gradient is the transposed maps.
//
// Public API
//   CutSpec { method, cuts, size (S), height, width, cutPow }
//   cutInputSpecs(spec) -> { name, dtype, shape }[]        the graph inputs a spec needs
//   cutFeeds(spec, rng) -> Record<name, HostTensor>         one step's random parameters
//   cutFeedsFrom(spec, params, noise?) -> Record<name, HostTensor>  the same from given parameters (tests, parity)
//   drawCutParams(spec, rng) -> CutParams                   the draws alone
//   applyCutouts(b, img, spec, inputs) -> [cuts, 3, S, S]   in the graph; img [1, 3, H, W] in [0, 1]
//   cutoutSource(b, img, spec), cutoutsFrom(b, source, spec, inputs, from, to)   the same in parts (chunks)
//   cropResampleMatrix(n, offset, length, S) -> Float64Array [S, n]   one axis of an original cutout
//   homography(p, S) / yiqJitter(hue, sat)                   the pooled style's maps (3x3, row-major)
//   PERSPECTIVE, CLIP_MEAN, CLIP_STD
import { type Builder } from '../graph/builder.js';
import { type DType, type HostTensor, type Tensor } from '../graph/ir.js';
import { type Rng } from './prng.js';

export type CutMethod = 'original' | 'pooled';

export interface CutSpec {
  method: CutMethod;
  cuts: number;
  /** CLIP's input side S (224 for ViT-B/32). */
  size: number;
  /** The image's height and width. */
  height: number;
  width: number;
  /** Crowson's cut_pow: > 1 favours small crops, < 1 large ones (original style only). */
  cutPow: number;
}

/** CLIP's image normalisation (OpenAI's preprocess). */
export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

/** The largest corner displacement of the perspective warp, as a fraction of the half side ("small"). */
export const PERSPECTIVE = 0.2;
const AUG_P = 0.7;
const MAX_ROTATE_DEG = 15;
const MAX_SHEAR_DEG = 5;
const MAX_TRANSLATE = 0.1;
const MAX_HUE = 0.1;
const MAX_SATURATION = 0.1;
const MAX_NOISE = 0.1;

export interface OriginalCut {
  side: number;
  x: number;
  y: number;
}

export interface PooledCut {
  flip: boolean;
  /** Radians; 0 when the affine warp was not drawn. */
  rotate: number;
  shear: number;
  /** Fractions of the side. */
  translate: [number, number];
  /** Displacements of the corners (top-left, top-right, bottom-right, bottom-left) as fractions of the half side. */
  corners: [number, number][];
  /** Turns (+-0.1) and factor (0.9..1.1); 0 and 1 when jitter was not drawn. */
  hue: number;
  saturation: number;
  /** Standard deviation of this cutout's noise. */
  noise: number;
}

export type CutParams = { method: 'original'; cuts: OriginalCut[] } | { method: 'pooled'; cuts: PooledCut[] };

// ------------------------------------------------------------------------------------------------ host side

/** One step's draws, in a fixed order per cutout (so a changed draw in one style never shifts the other). */
export function drawCutParams(spec: CutSpec, rng: Rng): CutParams {
  if (spec.method === 'original') {
    const max = Math.min(spec.height, spec.width);
    const min = Math.min(spec.height, spec.width, spec.size);
    const cuts: OriginalCut[] = [];
    for (let k = 0; k < spec.cuts; k++) {
      const side = Math.floor(rng.next() ** spec.cutPow * (max - min) + min);
      const x = rng.int(spec.width - side + 1);
      const y = rng.int(spec.height - side + 1);
      cuts.push({ side, x, y });
    }
    return { method: 'original', cuts };
  }
  const deg = Math.PI / 180;
  const cuts: PooledCut[] = [];
  for (let k = 0; k < spec.cuts; k++) {
    const flip = rng.next() < 0.5;
    const affine = rng.next() < AUG_P;
    const rotate = rng.uniform(-MAX_ROTATE_DEG, MAX_ROTATE_DEG) * deg;
    const shear = rng.uniform(-MAX_SHEAR_DEG, MAX_SHEAR_DEG) * deg;
    const translate: [number, number] = [
      rng.uniform(-MAX_TRANSLATE, MAX_TRANSLATE),
      rng.uniform(-MAX_TRANSLATE, MAX_TRANSLATE),
    ];
    const persp = rng.next() < AUG_P;
    const corners: [number, number][] = [];
    for (let c = 0; c < 4; c++) corners.push([rng.uniform(-1, 1) * PERSPECTIVE, rng.uniform(-1, 1) * PERSPECTIVE]);
    const jitter = rng.next() < AUG_P;
    const hue = rng.uniform(-MAX_HUE, MAX_HUE);
    const saturation = rng.uniform(1 - MAX_SATURATION, 1 + MAX_SATURATION);
    const noise = rng.uniform(0, MAX_NOISE);
    cuts.push({
      flip,
      rotate: affine ? rotate : 0,
      shear: affine ? shear : 0,
      translate: affine ? translate : [0, 0],
      corners: persp ? corners : corners.map(() => [0, 0]),
      hue: jitter ? hue : 0,
      saturation: jitter ? saturation : 1,
      noise,
    });
  }
  return { method: 'pooled', cuts };
}

const cubicA = -0.75;
const cubic1 = (x: number) => ((cubicA + 2) * x - (cubicA + 3)) * x * x + 1;
const cubic2 = (x: number) => ((cubicA * x - 5 * cubicA) * x + 8 * cubicA) * x - 4 * cubicA;

/** PyTorch's bicubic interpolation (align_corners=True, A = -0.75, clamped borders) from n to out: [out, n]. */
function bicubicMatrix(n: number, out: number): Float64Array {
  const m = new Float64Array(out * n);
  const scale = out > 1 ? (n - 1) / (out - 1) : 0;
  for (let i = 0; i < out; i++) {
    const real = scale * i;
    const x0 = Math.floor(real);
    const t = real - x0;
    const w = [cubic2(t + 1), cubic1(t), cubic1(1 - t), cubic2(2 - t)];
    for (let k = 0; k < 4; k++) {
      const j = Math.min(Math.max(x0 - 1 + k, 0), n - 1);
      m[i * n + j] = m[i * n + j]! + w[k]!;
    }
  }
  return m;
}

/** Crowson's lanczos(ramp(ratio, 2), 2), normalised to sum 1 (ratio = out / in < 1). */
function lanczosKernel(ratio: number): number[] {
  const width = 2;
  const n = Math.ceil(width / ratio + 1);
  const out: number[] = [];
  let cur = 0;
  for (let i = 0; i < n; i++) {
    out.push(Math.fround(cur));
    cur += ratio;
  }
  const pos = [
    ...out
      .slice(1)
      .reverse()
      .map((v) => -v),
    ...out,
  ].slice(1, -1);
  const sinc = (x: number) => (x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x));
  const k = pos.map((x) => (-width < x && x < width ? sinc(x) * sinc(x / width) : 0));
  const sum = k.reduce((a, b) => a + b, 0);
  return k.map((v) => v / sum);
}

/**
 * One axis of an original cutout: the crop [offset, offset + length) of an axis of n pixels resampled to S
 * as Crowson's resample() does, as a [S, n] matrix (row i: the weights of output pixel i).
 */
export function cropResampleMatrix(n: number, offset: number, length: number, S: number): Float64Array {
  // Anti-aliasing filter over the crop, reflect padding folded in: row i as (column, weight) taps (banded).
  let filt: [number, number][][] | null = null;
  if (S < length) {
    const ker = lanczosKernel(S / length);
    const pad = (ker.length - 1) / 2;
    filt = [];
    for (let i = 0; i < length; i++) {
      const row: [number, number][] = [];
      for (let k = 0; k < ker.length; k++) {
        let q = i + k - pad;
        if (q < 0) q = -q;
        if (q >= length) q = 2 * (length - 1) - q;
        row.push([q, ker[k]!]);
      }
      filt.push(row);
    }
  }
  // Bicubic rows (4 taps each) times the filter: O(S * 4 * taps), never a dense product.
  const bic = bicubicMatrix(length, S);
  const m = new Float64Array(S * n);
  for (let i = 0; i < S; i++) {
    for (let j = 0; j < length; j++) {
      const v = bic[i * length + j]!;
      if (v === 0) continue;
      if (!filt) {
        m[i * n + offset + j] = m[i * n + offset + j]! + v;
        continue;
      }
      for (const [q, f] of filt[j]!) m[i * n + offset + q] = m[i * n + offset + q]! + v * f;
    }
  }
  return m;
}

type Mat3 = [number, number, number, number, number, number, number, number, number];
const mul3 = (a: Mat3, b: Mat3): Mat3 => {
  const o = new Array<number>(9).fill(0) as Mat3;
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++)
      for (let k = 0; k < 3; k++) o[i * 3 + j] = o[i * 3 + j]! + a[i * 3 + k]! * b[k * 3 + j]!;
  return o;
};

/** Solves the 8x8 system for the homography taking (x, y) to (u, v) for four point pairs. */
function fourPoint(src: [number, number][], dst: [number, number][]): Mat3 {
  const A: number[][] = [];
  for (let k = 0; k < 4; k++) {
    const [x, y] = src[k]!;
    const [u, v] = dst[k]!;
    A.push([x, y, 1, 0, 0, 0, -u * x, -u * y, u]);
    A.push([0, 0, 0, x, y, 1, -v * x, -v * y, v]);
  }
  // Gaussian elimination with partial pivoting on the augmented 8 x 9 matrix.
  for (let c = 0; c < 8; c++) {
    let p = c;
    for (let r = c + 1; r < 8; r++) if (Math.abs(A[r]![c]!) > Math.abs(A[p]![c]!)) p = r;
    [A[c], A[p]] = [A[p]!, A[c]!];
    for (let r = 0; r < 8; r++) {
      if (r === c) continue;
      const f = A[r]![c]! / A[c]![c]!;
      for (let k = c; k < 9; k++) A[r]![k]! -= f * A[c]![k]!;
    }
  }
  const h = A.map((row, r) => row[8]! / row[r]!);
  return [h[0]!, h[1]!, h[2]!, h[3]!, h[4]!, h[5]!, h[6]!, h[7]!, 1];
}

/**
 * A pooled cutout's warp as one homography in normalised coordinates ([-1, 1], pixel centres at
 * (2i + 1) / S - 1): it takes an OUTPUT position to the SOURCE position it samples. Flip first, then the
 * affine map (rotation, x-shear, translation: src = R Sh dst + t), then the perspective map (the output's
 * corners go to the corners displaced by `corners`).
 */
export function homography(p: PooledCut): Mat3 {
  const flip: Mat3 = [p.flip ? -1 : 1, 0, 0, 0, 1, 0, 0, 0, 1];
  const [c, s] = [Math.cos(p.rotate), Math.sin(p.rotate)];
  const rot: Mat3 = [c, -s, 0, s, c, 0, 0, 0, 1];
  const sh: Mat3 = [1, Math.tan(p.shear), 0, 0, 1, 0, 0, 0, 1];
  const tr: Mat3 = [1, 0, 2 * p.translate[0], 0, 1, 2 * p.translate[1], 0, 0, 1];
  const affine = mul3(tr, mul3(rot, sh));
  const base: [number, number][] = [
    [-1, -1],
    [1, -1],
    [1, 1],
    [-1, 1],
  ];
  const persp = fourPoint(
    base,
    base.map(([x, y], k) => [x + p.corners[k]![0], y + p.corners[k]![1]]),
  );
  // src = persp(affine(flip(dst)))
  return mul3(persp, mul3(affine, flip));
}

/** RGB -> YIQ (FCC NTSC), and its inverse. */
const YIQ: Mat3 = [0.299, 0.587, 0.114, 0.5959, -0.2746, -0.3213, 0.2115, -0.5227, 0.3112];
function inverse3(m: Mat3): Mat3 {
  const [a, b, c, d, e, f, g, h, i] = m;
  const A = e * i - f * h;
  const B = -(d * i - f * g);
  const C = d * h - e * g;
  const det = a * A + b * B + c * C;
  return [
    A / det,
    -(b * i - c * h) / det,
    (b * f - c * e) / det,
    B / det,
    (a * i - c * g) / det,
    -(a * f - c * d) / det,
    C / det,
    -(a * h - b * g) / det,
    (a * e - b * d) / det,
  ];
}
const YIQ_INV = inverse3(YIQ);

/** Colour jitter as one linear map: rotate the chroma (I, Q) by `hue` turns and scale it by `saturation`. */
export function yiqJitter(hue: number, saturation: number): Mat3 {
  const a = 2 * Math.PI * hue;
  const [c, s] = [Math.cos(a) * saturation, Math.sin(a) * saturation];
  return mul3(YIQ_INV, mul3([1, 0, 0, 0, c, -s, 0, s, c], YIQ));
}

const f32 = (dims: number[], data: Float32Array): HostTensor => ({ dtype: 'float32', dims, data });

/** The graph inputs a spec needs (names, dtypes, shapes). */
export function cutInputSpecs(spec: CutSpec): { name: string; dtype: DType; shape: number[] }[] {
  const { cuts: n, size: S, height: H, width: W } = spec;
  if (spec.method === 'original') {
    return [
      { name: 'cut_rows', dtype: 'float32', shape: [n, 1, S, H] },
      { name: 'cut_cols', dtype: 'float32', shape: [n, 1, W, S] },
    ];
  }
  return [
    { name: 'warp_index', dtype: 'int32', shape: [n * S * S * 4] },
    { name: 'warp_weight', dtype: 'float32', shape: [n, S * S, 4, 1] },
    { name: 'colour', dtype: 'float32', shape: [n, 3, 3] },
    { name: 'noise', dtype: 'float32', shape: [n, 3, S, S] },
  ];
}

/** One step's feeds: the draws of `rng` turned into matrices, taps and noise. */
export function cutFeeds(spec: CutSpec, rng: Rng): Record<string, HostTensor> {
  return cutFeedsFrom(spec, drawCutParams(spec, rng), rng);
}

/**
 * Feeds for given parameters; the pooled style's noise is drawn from `noise` (a generator: each cutout's
 * standard normals times its noise scale), or given ([cuts, 3, S, S], already scaled), or zero.
 */
export function cutFeedsFrom(spec: CutSpec, params: CutParams, noise?: Rng | Float32Array): Record<string, HostTensor> {
  const { cuts: n, size: S, height: H, width: W } = spec;
  if (params.cuts.length !== n) throw new Error(`cutouts: ${params.cuts.length} parameter sets for ${n} cutouts`);
  if (params.method === 'original') {
    const rows = new Float32Array(n * S * H);
    const cols = new Float32Array(n * W * S);
    params.cuts.forEach((c, k) => {
      rows.set(cropResampleMatrix(H, c.y, c.side, S), k * S * H);
      const cm = cropResampleMatrix(W, c.x, c.side, S); // [S, W] -> stored transposed [W, S]
      for (let i = 0; i < S; i++) for (let j = 0; j < W; j++) cols[k * W * S + j * S + i] = cm[i * W + j]!;
    });
    return { cut_rows: f32([n, 1, S, H], rows), cut_cols: f32([n, 1, W, S], cols) };
  }
  const index = new Int32Array(n * S * S * 4);
  const weight = new Float32Array(n * S * S * 4);
  const colour = new Float32Array(n * 9);
  const noiseData = noise instanceof Float32Array ? noise : new Float32Array(n * 3 * S * S);
  if (noiseData.length !== n * 3 * S * S) throw new Error(`cutouts: noise must have ${n * 3 * S * S} values`);
  params.cuts.forEach((c, k) => {
    const [h0, h1, h2, h3, h4, h5, h6, h7, h8] = homography(c);
    for (let i = 0; i < S; i++) {
      const v = (2 * i + 1) / S - 1;
      for (let j = 0; j < S; j++) {
        const u = (2 * j + 1) / S - 1;
        const w = h6 * u + h7 * v + h8;
        // grid_sample's unnormalisation (align_corners=False), then bilinear taps with zero padding.
        const x = (((h0 * u + h1 * v + h2) / w + 1) * S - 1) / 2;
        const y = (((h3 * u + h4 * v + h5) / w + 1) * S - 1) / 2;
        const x0 = Math.floor(x);
        const y0 = Math.floor(y);
        const fx = x - x0;
        const fy = y - y0;
        const base = ((k * S + i) * S + j) * 4;
        const inX0 = x0 >= 0 && x0 < S;
        const inX1 = x0 + 1 >= 0 && x0 + 1 < S;
        // Taps outside the image keep index 0 and weight 0 (the arrays start zeroed).
        const inY0 = y0 >= 0 && y0 < S;
        const inY1 = y0 + 1 >= 0 && y0 + 1 < S;
        if (inY0 && inX0) {
          index[base] = y0 * S + x0;
          weight[base] = (1 - fy) * (1 - fx);
        }
        if (inY0 && inX1) {
          index[base + 1] = y0 * S + x0 + 1;
          weight[base + 1] = (1 - fy) * fx;
        }
        if (inY1 && inX0) {
          index[base + 2] = (y0 + 1) * S + x0;
          weight[base + 2] = fy * (1 - fx);
        }
        if (inY1 && inX1) {
          index[base + 3] = (y0 + 1) * S + x0 + 1;
          weight[base + 3] = fy * fx;
        }
      }
    }
    colour.set(yiqJitter(c.hue, c.saturation), k * 9);
    if (noise && !(noise instanceof Float32Array))
      noise.fillNormal(noiseData.subarray(k * 3 * S * S, (k + 1) * 3 * S * S), c.noise);
  });
  return {
    warp_index: { dtype: 'int32', dims: [n * S * S * 4], data: index },
    warp_weight: f32([n, S * S, 4, 1], weight),
    colour: f32([n, 3, 3], colour),
    noise: f32([n, 3, S, S], noiseData),
  };
}

// ------------------------------------------------------------------------------------------------ graph side

/** Rows [i*n/out, ceil((i+1)*n/out)) of adaptive pooling, padded to a common width with the window's last row. */
function poolWindows(n: number, out: number): { index: number[]; width: number } {
  const wins: number[][] = [];
  for (let i = 0; i < out; i++) {
    const s = Math.floor((i * n) / out);
    const e = Math.ceil(((i + 1) * n) / out);
    wins.push(Array.from({ length: e - s }, (_, k) => s + k));
  }
  const width = Math.max(...wins.map((w) => w.length));
  return { index: wins.flatMap((w) => [...w, ...new Array<number>(width - w.length).fill(w[w.length - 1]!)]), width };
}

/**
 * The maximum along `axis` (removed) whose gradient goes to the FIRST maximal element, as PyTorch's max-pool
 * kernels give it (ReduceMax's rule splits it between ties): a one-hot of ArgMax times x, summed.
 */
function firstMax(b: Builder, x: Tensor, axis: number): Tensor {
  const k = x.shape[axis]!;
  const at = b.argMax(x, axis, true); // first index of the maximum
  const positions = b.constant(
    Array.from({ length: k }, (_, i) => i),
    'int64',
    x.shape.map((_, d) => (d === axis ? k : 1)),
  );
  const onehot = b.cast(b.equal(at, positions), x.dtype);
  return b.reduceSum(b.mul(x, onehot), [axis], false);
}

/**
 * PyTorch's adaptive_max_pool2d on [..., H, W] as Gathers and first-maximum reductions (windows padded by
 * repeating their last row or column): columns first, then rows, so a tie goes to the first maximum in
 * row-major order, as PyTorch's kernel does.
 */
function adaptiveMaxPool2d(b: Builder, x: Tensor, oh: number, ow: number): Tensor {
  const r = x.rank;
  const [H, W] = x.shape.slice(-2) as [number, number];
  const cols = poolWindows(W, ow);
  let y = b.gather(x, b.constant(cols.index, 'int64', [ow, cols.width]), r - 1); // [..., H, ow, kw]
  y = firstMax(b, y, r); // [..., H, ow]
  const rows = poolWindows(H, oh);
  y = b.gather(y, b.constant(rows.index, 'int64', [oh, rows.width]), r - 2); // [..., oh, kh, ow]
  return firstMax(b, y, r - 1); // [..., oh, ow]
}

/**
 * What the cutouts are cut from: the image itself (original style, [1, 3, H, W]) or the pooled image as
 * pixels x channels (pooled style, [S*S, 3]). Computed once; cutoutsFrom takes any range of cutouts of it.
 */
export function cutoutSource(b: Builder, img: Tensor, spec: CutSpec): Tensor {
  const { size: S } = spec;
  const [, C, H, W] = img.shape as [number, number, number, number];
  if (img.rank !== 4 || C !== 3 || H !== spec.height || W !== spec.width) {
    throw new Error(`cutouts: image must be [1, 3, ${spec.height}, ${spec.width}], got ${img}`);
  }
  if (spec.method === 'original') return img;
  const x = b.reshape(img, [3, H, W]);
  const pooled = b.mul(b.add(b.adaptiveAvgPool2d(x, [S, S]), adaptiveMaxPool2d(b, x, S, S)), 0.5); // [3, S, S]
  return b.transpose(b.reshape(pooled, [3, S * S]), [1, 0]); // [S*S, 3]
}

/**
 * Cutouts [from, to) of a cutoutSource as [to - from, 3, S, S], CLIP-normalised, from the graph inputs of
 * cutInputSpecs(spec) (by name in `inputs`, for all the spec's cutouts: sliced here).
 */
export function cutoutsFrom(
  b: Builder,
  source: Tensor,
  spec: CutSpec,
  inputs: Readonly<Record<string, Tensor>>,
  from = 0,
  to = spec.cuts,
): Tensor {
  const { size: S } = spec;
  const n = to - from;
  if (!(Number.isInteger(from) && Number.isInteger(to) && from >= 0 && to <= spec.cuts && n >= 1)) {
    throw new Error(`cutouts: bad range [${from}, ${to}) of ${spec.cuts}`);
  }
  const input = (name: string) => {
    const t = inputs[name];
    if (!t) throw new Error(`cutouts: missing input '${name}'`);
    if (n === spec.cuts) return t;
    const per = t.shape[0]! / spec.cuts; // rows per cutout along axis 0
    return b.slice(t, [from * per], [to * per], [0]);
  };
  let cut: Tensor;
  if (spec.method === 'original') {
    cut = b.matmul(b.matmul(input('cut_rows'), source), input('cut_cols')); // [n, 3, S, W] -> [n, 3, S, S]
    cut = b.clampWithGrad(cut, 0, 1);
  } else {
    const taps = b.reshape(b.gather(source, input('warp_index'), 0), [n, S * S, 4, 3]);
    const warped = b.reduceSum(b.mul(taps, input('warp_weight')), [2], false); // [n, S*S, 3]
    const coloured = b.matmul(warped, b.transpose(input('colour'), [0, 2, 1])); // [n, S*S, 3]
    cut = b.add(b.reshape(b.transpose(coloured, [0, 2, 1]), [n, 3, S, S]), input('noise'));
  }
  const mean = b.constant([...CLIP_MEAN], cut.dtype, [1, 3, 1, 1]);
  const inv = b.constant(
    CLIP_STD.map((s) => 1 / s),
    cut.dtype,
    [1, 3, 1, 1],
  );
  return b.mul(b.sub(cut, mean), inv);
}

/** All the cutouts of img [1, 3, H, W] (values in [0, 1]) as [cuts, 3, S, S], CLIP-normalised. */
export function applyCutouts(b: Builder, img: Tensor, spec: CutSpec, inputs: Readonly<Record<string, Tensor>>): Tensor {
  return cutoutsFrom(b, cutoutSource(b, img, spec), spec, inputs);
}
