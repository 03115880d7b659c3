// taming-transformers' VQModel (Esser, Rombach, Ommer 2021) as engine graph builders: encoder,
// vector quantiser and decoder, with the checkpoint's own parameter names so loading is a name match
// (nanoGPT's from_pretrained; tinygrad's examples/stable_diffusion.py decoder). The reference is
// taming/modules/diffusionmodules/model.py (Encoder, Decoder, ResnetBlock, AttnBlock, Upsample,
// Downsample), taming/modules/vqvae/quantize.py (VectorQuantizer) and taming/models/vqgan.py (VQModel).
//
// Public API
//   VqganConfig, VQGAN_PRESETS, vqganConfigFromYaml(text), downsampleFactor(config)
//   expectedStateDict(config) -> Map<name, shape>        every parameter of the model, taming's names
//   VqganWeights (name -> fp32 HostTensor), vqganWeightsFromStateDict(config, stateDict)  asserts names and shapes
//   vqganParams(b, config, weights?) -> VqganParams       parameters as initializers (weights) or graph inputs
//   encoder(b, p, x), encode(b, p, x)                     image [B, 3, H, W] in [-1, 1] -> z (encode adds quant_conv)
//   quantize(b, p, z) -> { zq, indices }                  nearest codebook rows; zq passes z's gradient straight through
//   embedCode(b, p, indices)                              token grid [B, h, w] -> z_q [B, embed_dim, h, w]
//   decoder(b, p, z), decode(b, p, zq)                    z -> image [B, out_ch, H, W] in about [-1, 1]
//
// Shapes: B batch, C channels, H x W pixels, h x w = H/f x W/f latent cells (f = 2^(levels-1), 16 for f16).
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { type Builder, type HostTensor, type Tensor } from '../graph/index.js';
import { assertStateDict, type StateDict, toFloat32 } from '../weights/index.js';

// ---------------------------------------------------------------------------------------------------
// Config

export interface VqganConfig {
  /** Codebook vector size (quant_conv's output channels). */
  embedDim: number;
  /** Codebook entries. */
  nEmbed: number;
  zChannels: number;
  /** The training resolution: it places the attention blocks (attnResolutions), not the input size. */
  resolution: number;
  inChannels: number;
  outCh: number;
  ch: number;
  chMult: readonly number[];
  numResBlocks: number;
  attnResolutions: readonly number[];
  /** Encoder emits 2 z_channels (mean and log-variance in taming's KL models); false for every VQGAN. */
  doubleZ: boolean;
}

const F16: Omit<VqganConfig, 'nEmbed'> = {
  embedDim: 256,
  zChannels: 256,
  resolution: 256,
  inChannels: 3,
  outCh: 3,
  ch: 128,
  chMult: [1, 1, 2, 2, 4],
  numResBlocks: 2,
  attnResolutions: [16],
  doubleZ: false,
};

/** The catalog's VQGANs (models/catalog.json): one architecture, three codebooks. */
export const VQGAN_PRESETS = {
  vqgan_imagenet_f16_16384: { ...F16, nEmbed: 16384 },
  vqgan_imagenet_f16_1024: { ...F16, nEmbed: 1024 },
  wikiart_16384: { ...F16, nEmbed: 16384 },
} as const satisfies Record<string, VqganConfig>;

export type VqganPreset = keyof typeof VQGAN_PRESETS;

const positive = z.number().int().positive();
const YamlParams = z.object({
  embed_dim: positive,
  n_embed: positive,
  ddconfig: z.object({
    double_z: z.boolean().default(false),
    z_channels: positive,
    resolution: positive,
    in_channels: positive,
    out_ch: positive,
    ch: positive,
    ch_mult: z.array(positive).min(1),
    num_res_blocks: positive,
    attn_resolutions: z.array(z.number().int().nonnegative()).default([]),
    dropout: z.number().default(0),
  }),
});

/** Reads taming's `model.yaml` (`model.params`: `embed_dim`, `n_embed`, `ddconfig`). */
export function vqganConfigFromYaml(text: string, what = 'model.yaml'): VqganConfig {
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new Error(`${what}: not valid YAML: ${(e as Error).message}`);
  }
  const params = (doc as { model?: { params?: unknown } } | null)?.model?.params;
  if (params === undefined) throw new Error(`${what}: no model.params (is this a taming-transformers model.yaml?)`);
  const r = YamlParams.safeParse(params);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `model.params.${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`${what}: ${issues}`);
  }
  const p = r.data;
  const d = p.ddconfig;
  if (d.double_z) throw new Error(`${what}: ddconfig.double_z is true: that is a KL autoencoder, not a VQGAN`);
  return checkConfig({
    embedDim: p.embed_dim,
    nEmbed: p.n_embed,
    zChannels: d.z_channels,
    resolution: d.resolution,
    inChannels: d.in_channels,
    outCh: d.out_ch,
    ch: d.ch,
    chMult: d.ch_mult,
    numResBlocks: d.num_res_blocks,
    attnResolutions: d.attn_resolutions,
    doubleZ: d.double_z,
  });
}

/** GroupNorm(32) needs every normalised width divisible by 32 (taming fixes the group count). */
export function checkConfig(c: VqganConfig): VqganConfig {
  const widths = new Set(c.chMult.map((m) => c.ch * m));
  for (const w of widths) {
    if (w % GROUPS !== 0) throw new Error(`VQGAN config: ${w} channels do not split into ${GROUPS} norm groups`);
  }
  if (c.resolution % downsampleFactor(c) !== 0) {
    throw new Error(`VQGAN config: resolution ${c.resolution} is not a multiple of ${downsampleFactor(c)}`);
  }
  return c;
}

/** Pixels per latent cell along each axis: 2^(levels - 1). */
export function downsampleFactor(c: VqganConfig): number {
  return 2 ** (c.chMult.length - 1);
}

const GROUPS = 32;
const EPS = 1e-6;

// ---------------------------------------------------------------------------------------------------
// Parameter names and shapes, mirroring the module tree of taming's Encoder and Decoder

/** Per level: channels in and out of each ResnetBlock, and whether that level has attention. */
interface Level {
  blocks: [cin: number, cout: number][];
  attn: boolean;
}

function encoderLevels(c: VqganConfig): Level[] {
  const levels: Level[] = [];
  let res = c.resolution;
  let cin = c.ch;
  c.chMult.forEach((m, i) => {
    const blocks: [number, number][] = [];
    for (let j = 0; j < c.numResBlocks; j++) {
      blocks.push([cin, c.ch * m]);
      cin = c.ch * m;
    }
    levels.push({ blocks, attn: c.attnResolutions.includes(res) });
    if (i !== c.chMult.length - 1) res /= 2;
  });
  return levels;
}

/** Indexed by level i (up.{i}); built from the last level down, as the decoder runs. */
function decoderLevels(c: VqganConfig): Level[] {
  const n = c.chMult.length;
  const levels: Level[] = new Array<Level>(n);
  let res = c.resolution / 2 ** (n - 1);
  let cin = c.ch * c.chMult[n - 1]!;
  for (let i = n - 1; i >= 0; i--) {
    const blocks: [number, number][] = [];
    for (let j = 0; j < c.numResBlocks + 1; j++) {
      blocks.push([cin, c.ch * c.chMult[i]!]);
      cin = c.ch * c.chMult[i]!;
    }
    levels[i] = { blocks, attn: c.attnResolutions.includes(res) };
    if (i !== 0) res *= 2;
  }
  return levels;
}

/** Every parameter of the VQModel with its shape (taming's names; no `loss.*`, which is training-only). */
export function expectedStateDict(c: VqganConfig): Map<string, number[]> {
  const sd = new Map<string, number[]>();
  const conv = (name: string, cin: number, cout: number, k: number) => {
    sd.set(`${name}.weight`, [cout, cin, k, k]);
    sd.set(`${name}.bias`, [cout]);
  };
  const norm = (name: string, ch: number) => {
    sd.set(`${name}.weight`, [ch]);
    sd.set(`${name}.bias`, [ch]);
  };
  const resnet = (name: string, cin: number, cout: number) => {
    norm(`${name}.norm1`, cin);
    conv(`${name}.conv1`, cin, cout, 3);
    norm(`${name}.norm2`, cout);
    conv(`${name}.conv2`, cout, cout, 3);
    if (cin !== cout) conv(`${name}.nin_shortcut`, cin, cout, 1);
  };
  const attn = (name: string, ch: number) => {
    norm(`${name}.norm`, ch);
    for (const p of ['q', 'k', 'v', 'proj_out']) conv(`${name}.${p}`, ch, ch, 1);
  };
  const mid = (name: string, ch: number) => {
    resnet(`${name}.block_1`, ch, ch);
    attn(`${name}.attn_1`, ch);
    resnet(`${name}.block_2`, ch, ch);
  };
  const top = c.ch * c.chMult[c.chMult.length - 1]!;

  conv('encoder.conv_in', c.inChannels, c.ch, 3);
  encoderLevels(c).forEach((level, i) => {
    level.blocks.forEach(([cin, cout], j) => {
      resnet(`encoder.down.${i}.block.${j}`, cin, cout);
      if (level.attn) attn(`encoder.down.${i}.attn.${j}`, cout);
    });
    if (i !== c.chMult.length - 1)
      conv(`encoder.down.${i}.downsample.conv`, c.ch * c.chMult[i]!, c.ch * c.chMult[i]!, 3);
  });
  mid('encoder.mid', top);
  norm('encoder.norm_out', top);
  conv('encoder.conv_out', top, c.doubleZ ? 2 * c.zChannels : c.zChannels, 3);

  conv('decoder.conv_in', c.zChannels, top, 3);
  mid('decoder.mid', top);
  decoderLevels(c).forEach((level, i) => {
    level.blocks.forEach(([cin, cout], j) => {
      resnet(`decoder.up.${i}.block.${j}`, cin, cout);
      if (level.attn) attn(`decoder.up.${i}.attn.${j}`, cout);
    });
    if (i !== 0) conv(`decoder.up.${i}.upsample.conv`, c.ch * c.chMult[i]!, c.ch * c.chMult[i]!, 3);
  });
  norm('decoder.norm_out', c.ch * c.chMult[0]!);
  conv('decoder.conv_out', c.ch * c.chMult[0]!, c.outCh, 3);

  conv('quant_conv', c.zChannels, c.embedDim, 1);
  conv('post_quant_conv', c.embedDim, c.zChannels, 1);
  sd.set('quantize.embedding.weight', [c.nEmbed, c.embedDim]);
  return sd;
}

// ---------------------------------------------------------------------------------------------------
// Weights

/** The model's parameters as fp32 host tensors, by taming's names. */
export type VqganWeights = Map<string, HostTensor>;

/** Training-only tensors in taming's checkpoints (discriminator, LPIPS): never part of the model. */
export const isTrainingOnly = (name: string): boolean => name.startsWith('loss.');

/**
 * Checks a state dict against the config (every name and shape, `loss.*` ignored; a
 * StateDictMismatchError lists exactly what is missing, unexpected or mis-shaped) and converts it to
 * fp32 host tensors (fp16/bf16/fp64 checkpoints are widened or narrowed here).
 */
export function vqganWeightsFromStateDict(c: VqganConfig, sd: StateDict, what = 'VQGAN checkpoint'): VqganWeights {
  const expected = expectedStateDict(c);
  assertStateDict(expected, sd, { ignore: isTrainingOnly, what });
  const out: VqganWeights = new Map();
  for (const [name, shape] of expected) {
    out.set(name, { dtype: 'float32', dims: shape, data: toFloat32(sd.get(name)!) });
  }
  return out;
}

/** How the model code reads its parameters: one graph tensor per name, created on first use. */
export interface VqganParams {
  readonly config: VqganConfig;
  get(name: string): Tensor;
  /** The names read so far (a test checks that a full build reads exactly expectedStateDict). */
  readonly used: ReadonlySet<string>;
}

/**
 * Parameters as initializers holding `weights` (checked against the config first), or, without
 * weights, as graph inputs of the same names and shapes, fed at run time.
 */
export function vqganParams(b: Builder, config: VqganConfig, weights?: ReadonlyMap<string, HostTensor>): VqganParams {
  const expected = expectedStateDict(checkConfig(config));
  if (weights) assertStateDict(expected, new Map([...weights].map(([k, v]) => [k, v.dims])), { what: 'VQGAN weights' });
  const made = new Map<string, Tensor>();
  return {
    config,
    get used() {
      return new Set(made.keys());
    },
    get(name) {
      let t = made.get(name);
      if (t) return t;
      const shape = expected.get(name);
      if (!shape) throw new Error(`VQGAN: the model has no parameter '${name}'`);
      t = weights ? b.param(name, weights.get(name)!) : b.input(name, shape, 'float32');
      made.set(name, t);
      return t;
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Blocks (bottom-up, as taming's model.py)

function conv2d(b: Builder, p: VqganParams, name: string, x: Tensor, opts: { pad?: number; stride?: number } = {}) {
  const w = p.get(`${name}.weight`);
  const pad = opts.pad ?? (w.shape[2]! - 1) / 2;
  const s = opts.stride ?? 1;
  return b.conv(x, w, p.get(`${name}.bias`), { pads: [pad, pad, pad, pad], strides: [s, s] });
}

/** Normalize(): GroupNorm(32 groups, eps 1e-6, affine). */
function normalize(b: Builder, p: VqganParams, name: string, x: Tensor): Tensor {
  return b.groupNorm(x, GROUPS, p.get(`${name}.weight`), p.get(`${name}.bias`), EPS);
}

/**
 * nonlinearity(normalize(x)): swish (x sigmoid(x)) after GroupNorm, the only way the model uses either, as
 * one fused op (its gradient keeps only the normalisation's statistics).
 */
function normSwish(b: Builder, p: VqganParams, name: string, x: Tensor): Tensor {
  return b.groupNormSilu(x, GROUPS, p.get(`${name}.weight`), p.get(`${name}.bias`), EPS);
}

/** norm1 -> swish -> conv1 -> norm2 -> swish -> conv2, plus x (through nin_shortcut when widths differ). */
function resnetBlock(b: Builder, p: VqganParams, name: string, x: Tensor, cout: number): Tensor {
  let h = conv2d(b, p, `${name}.conv1`, normSwish(b, p, `${name}.norm1`, x));
  h = conv2d(b, p, `${name}.conv2`, normSwish(b, p, `${name}.norm2`, h)); // dropout 0: identity
  const skip = x.shape[1] !== cout ? conv2d(b, p, `${name}.nin_shortcut`, x) : x;
  return b.add(skip, h);
}

/** Single-head self-attention over all h*w positions, scale C^-0.5, then proj_out and the residual. */
function attnBlock(b: Builder, p: VqganParams, name: string, x: Tensor): Tensor {
  const [B, C, H, W] = x.shape as [number, number, number, number];
  const h = normalize(b, p, `${name}.norm`, x);
  const q = b.transpose(b.reshape(conv2d(b, p, `${name}.q`, h), [B, C, H * W]), [0, 2, 1]); // (B, HW, C)
  const k = b.reshape(conv2d(b, p, `${name}.k`, h), [B, C, H * W]); // (B, C, HW)
  const v = b.reshape(conv2d(b, p, `${name}.v`, h), [B, C, H * W]); // (B, C, HW)
  const att = b.softmax(b.mul(b.matmul(q, k), C ** -0.5), -1); // (B, HW_q, HW_k)
  const out = b.reshape(b.matmul(v, b.transpose(att, [0, 2, 1])), [B, C, H, W]); // (B, C, HW_q) -> (B, C, H, W)
  return b.add(x, conv2d(b, p, `${name}.proj_out`, out));
}

/** Pad right 1 and bottom 1 (taming's asymmetric pad), then a 3x3 stride-2 conv: (H, W) -> (H/2, W/2). */
function downsample(b: Builder, p: VqganParams, name: string, x: Tensor): Tensor {
  const w = p.get(`${name}.conv.weight`);
  // ONNX pads [top, left, bottom, right]: the pad folded into the conv.
  return b.conv(x, w, p.get(`${name}.conv.bias`), { pads: [0, 0, 1, 1], strides: [2, 2] });
}

/** Nearest x2, then a 3x3 conv. */
function upsample(b: Builder, p: VqganParams, name: string, x: Tensor): Tensor {
  return conv2d(b, p, `${name}.conv`, b.upsample(x, [1, 1, 2, 2]));
}

function mid(b: Builder, p: VqganParams, name: string, x: Tensor): Tensor {
  const ch = x.shape[1]!;
  let h = resnetBlock(b, p, `${name}.block_1`, x, ch);
  h = attnBlock(b, p, `${name}.attn_1`, h);
  return resnetBlock(b, p, `${name}.block_2`, h, ch);
}

// ---------------------------------------------------------------------------------------------------
// Encoder, quantiser, decoder

function checkSpatial(x: Tensor, what: string, channels: number): void {
  if (x.rank !== 4 || x.shape[1] !== channels) throw new Error(`${what}: expected [B, ${channels}, H, W], got ${x}`);
}

/** x (B, in_channels, H, W), H and W multiples of f -> (B, z_channels, H/f, W/f). */
export function encoder(b: Builder, p: VqganParams, x: Tensor): Tensor {
  const c = p.config;
  checkSpatial(x, 'VQGAN encoder', c.inChannels);
  const f = downsampleFactor(c);
  if (x.shape[2]! % f !== 0 || x.shape[3]! % f !== 0) {
    throw new Error(`VQGAN encoder: image ${x.shape[3]}x${x.shape[2]} is not a multiple of ${f} on each side`);
  }
  let h = conv2d(b, p, 'encoder.conv_in', x); // (B, ch, H, W)
  encoderLevels(c).forEach((level, i) => {
    level.blocks.forEach(([, cout], j) => {
      h = resnetBlock(b, p, `encoder.down.${i}.block.${j}`, h, cout);
      if (level.attn) h = attnBlock(b, p, `encoder.down.${i}.attn.${j}`, h);
    });
    if (i !== c.chMult.length - 1) h = downsample(b, p, `encoder.down.${i}.downsample`, h); // (B, C, H/2^(i+1), ..)
  });
  h = mid(b, p, 'encoder.mid', h);
  return conv2d(b, p, 'encoder.conv_out', normSwish(b, p, 'encoder.norm_out', h)); // (B, z, h, w)
}

/** VQModel.encode up to the quantiser: encoder then quant_conv, (B, 3, H, W) -> (B, embed_dim, h, w). */
export function encode(b: Builder, p: VqganParams, x: Tensor): Tensor {
  return conv2d(b, p, 'quant_conv', encoder(b, p, x));
}

/**
 * Nearest codebook row of every latent cell by squared distance |z|^2 + |e|^2 - 2 z.e (taming's
 * VectorQuantizer). zq carries the rows forward and hands its gradient to z unchanged (z + sg(zq - z)).
 * z (B, embed_dim, h, w) -> zq (B, embed_dim, h, w), indices (B, h, w) int64.
 */
export function quantize(b: Builder, p: VqganParams, z: Tensor): { zq: Tensor; indices: Tensor } {
  const c = p.config;
  checkSpatial(z, 'VQGAN quantize', c.embedDim);
  const [B, D, h, w] = z.shape as [number, number, number, number];
  const e = p.get('quantize.embedding.weight'); // (n_embed, D)
  const zf = b.reshape(b.transpose(z, [0, 2, 3, 1]), [B * h * w, D]); // (N, D)
  const zz = b.reduceSum(b.mul(zf, zf), [1], true); // (N, 1)
  const ee = b.reduceSum(b.mul(e, e), [1], false); // (n_embed,)
  const d = b.sub(b.add(zz, ee), b.mul(b.matmul(zf, b.transpose(e)), 2)); // (N, n_embed)
  const idx = b.argMin(d, 1, false); // (N,)
  const indices = b.reshape(idx, [B, h, w]);
  const zq = b.straightThrough(rowsToLatent(b, b.gather(e, idx, 0), B, h, w), z);
  return { zq, indices };
}

/** Codebook lookup of a token grid (B, h, w) int64 -> z_q (B, embed_dim, h, w) (VectorQuantizer.get_codebook_entry). */
export function embedCode(b: Builder, p: VqganParams, indices: Tensor): Tensor {
  if (indices.rank !== 3) throw new Error(`VQGAN embedCode: expected token grid [B, h, w], got ${indices}`);
  const [B, h, w] = indices.shape as [number, number, number];
  const rows = b.gather(p.get('quantize.embedding.weight'), b.reshape(indices, [B * h * w]), 0); // (N, D)
  return rowsToLatent(b, rows, B, h, w);
}

function rowsToLatent(b: Builder, rows: Tensor, B: number, h: number, w: number): Tensor {
  return b.transpose(b.reshape(rows, [B, h, w, rows.shape[1]!]), [0, 3, 1, 2]); // (B, h, w, D) -> (B, D, h, w)
}

/** z (B, z_channels, h, w) -> image (B, out_ch, h*f, w*f). */
export function decoder(b: Builder, p: VqganParams, z: Tensor): Tensor {
  const c = p.config;
  checkSpatial(z, 'VQGAN decoder', c.zChannels);
  let h = conv2d(b, p, 'decoder.conv_in', z); // (B, ch*ch_mult[-1], h, w)
  h = mid(b, p, 'decoder.mid', h);
  const levels = decoderLevels(c);
  for (let i = levels.length - 1; i >= 0; i--) {
    const level = levels[i]!;
    level.blocks.forEach(([, cout], j) => {
      h = resnetBlock(b, p, `decoder.up.${i}.block.${j}`, h, cout);
      if (level.attn) h = attnBlock(b, p, `decoder.up.${i}.attn.${j}`, h);
    });
    if (i !== 0) h = upsample(b, p, `decoder.up.${i}.upsample`, h); // spatial x2
  }
  return conv2d(b, p, 'decoder.conv_out', normSwish(b, p, 'decoder.norm_out', h)); // (B, out_ch, H, W)
}

/** VQModel.decode: post_quant_conv then decoder, (B, embed_dim, h, w) -> (B, 3, H, W). */
export function decode(b: Builder, p: VqganParams, zq: Tensor): Tensor {
  return decoder(b, p, conv2d(b, p, 'post_quant_conv', zq));
}
