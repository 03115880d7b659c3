// CLIP (Radford et al. 2021) as engine graphs, with the parameter names of Hugging Face's CLIPModel
// (`vision_model.*`, `text_model.*`, `visual_projection`, `text_projection`, `logit_scale`) so a
// checkpoint loads by name. Bottom-up as in nanoGPT's model.py: attention, MLP, encoder layer, the
// two towers; then the configs and the expected state dict.
//
// Public API
//   ClipConfig, ClipVisionConfig, ClipTextConfig, CLIP_VARIANTS ('ViT-B/32' default, 'ViT-B/16', 'ViT-L/14')
//   clipConfigFromHf(json)                   a config.json of transformers' CLIPModel (missing fields: HF defaults)
//   expectedStateDict(config) -> Map         every parameter name -> shape
//   isOptionalBuffer(name)                   `*.embeddings.position_ids`: buffers old HF files carry, not parameters
//   Params, paramsFrom(b, weights)           name -> graph initializer, registered on first use (a tower's graph
//                                            holds only its own weights)
//   buildVisionTower(b, cfg, p, pixels)      pixels (B, 3, S, S) normalised -> image features (B, embed)
//   buildTextTower(b, cfg, p, ids)           ids (B, T) int64 -> text features (B, embed)
// Features are the projections before L2 normalisation (HF's get_image_features / get_text_features).
import { z } from 'zod';
import { type Builder } from '../graph/builder.js';
import { type HostTensor, type Tensor } from '../graph/ir.js';

export interface ClipVisionConfig {
  hiddenSize: number;
  layers: number;
  heads: number;
  intermediateSize: number;
  imageSize: number;
  patchSize: number;
  layerNormEps: number;
  hiddenAct: 'quick_gelu' | 'gelu';
}

export interface ClipTextConfig {
  hiddenSize: number;
  layers: number;
  heads: number;
  intermediateSize: number;
  vocabSize: number;
  maxPositions: number;
  layerNormEps: number;
  hiddenAct: 'quick_gelu' | 'gelu';
  /** 2 in OpenAI's configs, which HF reads as "pool at argmax(ids)" (end-of-text is the largest id). */
  eosTokenId: number;
}

export interface ClipConfig {
  vision: ClipVisionConfig;
  text: ClipTextConfig;
  projectionDim: number;
}

// ---------------------------------------------------------------- blocks

/** A parameter by its checkpoint name. */
export type Params = (name: string) => Tensor;

/** Weights as graph initializers, each registered under its own name the first time a tower reads it. */
export function paramsFrom(b: Builder, weights: ReadonlyMap<string, HostTensor>): Params {
  const made = new Map<string, Tensor>();
  return (name) => {
    let t = made.get(name);
    if (!t) {
      const w = weights.get(name);
      if (!w) throw new Error(`CLIP: no weight '${name}'`);
      t = b.param(name, w);
      made.set(name, t);
    }
    return t;
  };
}

function layerNorm(b: Builder, p: Params, name: string, x: Tensor, eps: number): Tensor {
  return b.layerNorm(x, p(`${name}.weight`), p(`${name}.bias`), { epsilon: eps });
}

function linear(b: Builder, p: Params, name: string, x: Tensor): Tensor {
  return b.linear(x, p(`${name}.weight`), p(`${name}.bias`));
}

/**
 * Multi-head self-attention (HF CLIPAttention); `mask` (T, T) is added to the scores. With `queries` the
 * attention is computed for the first `queries` positions only (keys and values still from all T): the
 * rows a pooled output reads.
 */
function selfAttention(
  b: Builder,
  p: Params,
  name: string,
  x: Tensor,
  heads: number,
  mask: Tensor | null,
  queries?: number,
): Tensor {
  const [B, T, C] = x.shape as [number, number, number];
  const hs = C / heads;
  const Q = queries ?? T;
  // (B, T, C) -> (B, T, nh, hs) -> (B, nh, T, hs)
  const split = (t: Tensor, n: number) => b.transpose(b.reshape(t, [B, n, heads, hs]), [0, 2, 1, 3]);
  const xq = Q === T ? x : b.slice(x, [0], [Q], [1]);
  const q = split(b.mul(linear(b, p, `${name}.q_proj`, xq), hs ** -0.5), Q);
  const k = split(linear(b, p, `${name}.k_proj`, x), T);
  const v = split(linear(b, p, `${name}.v_proj`, x), T);
  let att = b.matmul(q, b.transpose(k, [0, 1, 3, 2])); // (B, nh, Q, T)
  if (mask) att = b.add(att, Q === T ? mask : b.slice(mask, [0], [Q], [0]));
  const y = b.matmul(b.softmax(att, -1), v); // (B, nh, Q, hs)
  const merged = b.reshape(b.transpose(y, [0, 2, 1, 3]), [B, Q, C]); // (B, Q, nh, hs) -> (B, Q, C)
  return linear(b, p, `${name}.out_proj`, merged);
}

function mlp(b: Builder, p: Params, name: string, x: Tensor, act: ClipVisionConfig['hiddenAct']): Tensor {
  const h = linear(b, p, `${name}.fc1`, x);
  return linear(b, p, `${name}.fc2`, act === 'quick_gelu' ? b.quickGelu(h) : b.gelu(h));
}

interface TowerConfig {
  hiddenSize: number;
  layers: number;
  heads: number;
  layerNormEps: number;
  hiddenAct: ClipVisionConfig['hiddenAct'];
}

/**
 * The pre-LN transformer: x += attn(ln1(x)); x += mlp(ln2(x)), for each of `encoder.layers.{i}`. With
 * `firstOnly` the last layer computes the first position only (its queries, residual and MLP; keys and
 * values from all positions) and the result is (B, 1, C): the same class token for a tower that pools it,
 * without the work for positions nothing reads.
 */
function encoder(
  b: Builder,
  p: Params,
  prefix: string,
  cfg: TowerConfig,
  x: Tensor,
  mask: Tensor | null,
  firstOnly = false,
): Tensor {
  for (let i = 0; i < cfg.layers; i++) {
    const L = `${prefix}.encoder.layers.${i}`;
    const eps = cfg.layerNormEps;
    const q = firstOnly && i === cfg.layers - 1 ? 1 : undefined;
    const att = selfAttention(b, p, `${L}.self_attn`, layerNorm(b, p, `${L}.layer_norm1`, x, eps), cfg.heads, mask, q);
    x = b.add(q ? b.slice(x, [0], [q], [1]) : x, att);
    x = b.add(x, mlp(b, p, `${L}.mlp`, layerNorm(b, p, `${L}.layer_norm2`, x, eps), cfg.hiddenAct));
  }
  return x;
}

// ---------------------------------------------------------------- towers

/** Image features (B, embed) of pixels (B, 3, S, S), already resized, cropped and normalised. */
export function buildVisionTower(b: Builder, cfg: ClipConfig, p: Params, pixels: Tensor): Tensor {
  const v = cfg.vision;
  const [B, channels, H, W] = pixels.shape as [number, number, number, number];
  if (pixels.rank !== 4 || channels !== 3 || H !== v.imageSize || W !== v.imageSize) {
    throw new Error(
      `CLIP vision: pixels must be [B, 3, ${v.imageSize}, ${v.imageSize}], got [${pixels.shape.join(', ')}]`,
    );
  }
  const C = v.hiddenSize;
  const E = 'vision_model.embeddings';
  const patches = b.conv(pixels, p(`${E}.patch_embedding.weight`), null, { strides: [v.patchSize, v.patchSize] });
  const N = patches.shape[2]! * patches.shape[3]!;
  // (B, C, gh, gw) -> (B, C, N) -> (B, N, C)
  const tokens = b.transpose(b.reshape(patches, [B, C, N]), [0, 2, 1]);
  const cls = b.expand(b.reshape(p(`${E}.class_embedding`), [1, 1, C]), [B, 1, C]);
  let x = b.add(b.concat([cls, tokens], 1), p(`${E}.position_embedding.weight`)); // (B, N + 1, C)
  x = layerNorm(b, p, 'vision_model.pre_layrnorm', x, v.layerNormEps);
  x = encoder(b, p, 'vision_model', v, x, null, true); // (B, 1, C): the class token
  const pooled = b.reshape(x, [B, C]);
  const y = layerNorm(b, p, 'vision_model.post_layernorm', pooled, v.layerNormEps);
  return b.linear(y, p('visual_projection.weight'));
}

/** Text features (B, embed) of token ids (B, T), T <= max positions, padded after end-of-text. */
export function buildTextTower(b: Builder, cfg: ClipConfig, p: Params, ids: Tensor): Tensor {
  const t = cfg.text;
  const [B, T] = ids.shape as [number, number];
  if (ids.rank !== 2 || ids.dtype !== 'int64' || T > t.maxPositions) {
    throw new Error(`CLIP text: ids must be int64 [B, T <= ${t.maxPositions}], got ${ids}`);
  }
  const C = t.hiddenSize;
  const E = 'text_model.embeddings';
  const tok = b.gather(p(`${E}.token_embedding.weight`), ids, 0); // (B, T, C)
  const pos = b.slice(p(`${E}.position_embedding.weight`), [0], [T], [0]); // (T, C)
  let x = b.add(tok, pos);
  // Causal mask: position i attends to j <= i. A large finite negative, so no -inf reaches a gradient rule.
  const causal = new Array<number>(T * T);
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) causal[i * T + j] = j > i ? -1e9 : 0;
  x = encoder(b, p, 'text_model', t, x, b.constant(causal, 'float32', [T, T]));
  x = layerNorm(b, p, 'text_model.final_layer_norm', x, t.layerNormEps);
  // Pool at the end-of-text token: argmax of the ids (it is the largest id) in OpenAI's configs (eos id 2,
  // HF's legacy rule), else the first position holding eos_token_id. A one-hot row times x, so it is a MatMul.
  const key = t.eosTokenId === 2 ? ids : b.equal(ids, t.eosTokenId);
  const eot = b.argMax(b.cast(key, 'float32'), 1, true); // (B, 1), first maximum
  const positions = b.constant(
    Array.from({ length: T }, (_, k) => k),
    'int64',
    [1, T],
  );
  const onehot = b.unsqueeze(b.cast(b.equal(eot, positions), 'float32'), [1]); // (B, 1, T)
  const pooled = b.reshape(b.matmul(onehot, x), [B, C]); // (B, 1, C) -> (B, C)
  return b.linear(pooled, p('text_projection.weight'));
}

// ---------------------------------------------------------------- configs

const VIT_B_TEXT: ClipTextConfig = {
  hiddenSize: 512,
  layers: 12,
  heads: 8,
  intermediateSize: 2048,
  vocabSize: 49408,
  maxPositions: 77,
  layerNormEps: 1e-5,
  hiddenAct: 'quick_gelu',
  eosTokenId: 2,
};

const vitB = (patchSize: number): ClipConfig => ({
  vision: {
    hiddenSize: 768,
    layers: 12,
    heads: 12,
    intermediateSize: 3072,
    imageSize: 224,
    patchSize,
    layerNormEps: 1e-5,
    hiddenAct: 'quick_gelu',
  },
  text: VIT_B_TEXT,
  projectionDim: 512,
});

/** OpenAI's released sizes (the config.json of openai/clip-vit-*); ViT-B/32 is the studio's default. */
export const CLIP_VARIANTS = {
  'ViT-B/32': vitB(32),
  'ViT-B/16': vitB(16),
  'ViT-L/14': {
    vision: {
      hiddenSize: 1024,
      layers: 24,
      heads: 16,
      intermediateSize: 4096,
      imageSize: 224,
      patchSize: 14,
      layerNormEps: 1e-5,
      hiddenAct: 'quick_gelu',
    },
    text: { ...VIT_B_TEXT, hiddenSize: 768, heads: 12, intermediateSize: 3072 },
    projectionDim: 768,
  },
} as const satisfies Record<string, ClipConfig>;

export type ClipVariant = keyof typeof CLIP_VARIANTS;

const act = z.enum(['quick_gelu', 'gelu']);
const pos = z.number().int().positive();
// transformers' CLIPTextConfig / CLIPVisionConfig defaults fill what a config.json leaves out (or sets to null).
const or = <T extends z.ZodType>(schema: T, fallback: z.output<T>) =>
  schema.nullish().transform((v) => (v ?? fallback) as z.output<T>);
const hfText = z.object({
  hidden_size: or(pos, 512),
  num_hidden_layers: or(pos, 12),
  num_attention_heads: or(pos, 8),
  intermediate_size: or(pos, 2048),
  vocab_size: or(pos, 49408),
  max_position_embeddings: or(pos, 77),
  layer_norm_eps: or(z.number().positive(), 1e-5),
  hidden_act: or(act, 'quick_gelu'),
  eos_token_id: or(z.number().int(), 2),
});
const hfVision = z.object({
  hidden_size: or(pos, 768),
  num_hidden_layers: or(pos, 12),
  num_attention_heads: or(pos, 12),
  intermediate_size: or(pos, 3072),
  image_size: or(pos, 224),
  patch_size: or(pos, 32),
  num_channels: or(z.literal(3), 3),
  layer_norm_eps: or(z.number().positive(), 1e-5),
  hidden_act: or(act, 'quick_gelu'),
});
const hfClip = z.object({
  projection_dim: or(pos, 512),
  text_config: z.preprocess((v) => v ?? {}, hfText),
  vision_config: z.preprocess((v) => v ?? {}, hfVision),
});

/** A ClipConfig from transformers' CLIPModel config.json (parsed JSON). */
export function clipConfigFromHf(json: unknown): ClipConfig {
  const r = hfClip.safeParse(json);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`CLIP config.json: ${issues}`);
  }
  const { text_config: t, vision_config: v, projection_dim } = r.data;
  const cfg: ClipConfig = {
    vision: {
      hiddenSize: v.hidden_size,
      layers: v.num_hidden_layers,
      heads: v.num_attention_heads,
      intermediateSize: v.intermediate_size,
      imageSize: v.image_size,
      patchSize: v.patch_size,
      layerNormEps: v.layer_norm_eps,
      hiddenAct: v.hidden_act,
    },
    text: {
      hiddenSize: t.hidden_size,
      layers: t.num_hidden_layers,
      heads: t.num_attention_heads,
      intermediateSize: t.intermediate_size,
      vocabSize: t.vocab_size,
      maxPositions: t.max_position_embeddings,
      layerNormEps: t.layer_norm_eps,
      hiddenAct: t.hidden_act,
      eosTokenId: t.eos_token_id,
    },
    projectionDim: projection_dim,
  };
  checkConfig(cfg);
  return cfg;
}

function checkConfig(cfg: ClipConfig): void {
  for (const [tower, c] of [
    ['vision', cfg.vision],
    ['text', cfg.text],
  ] as const) {
    if (c.hiddenSize % c.heads !== 0) {
      throw new Error(`CLIP config: ${tower} hidden_size ${c.hiddenSize} is not a multiple of ${c.heads} heads`);
    }
  }
  if (cfg.vision.imageSize % cfg.vision.patchSize !== 0) {
    throw new Error(
      `CLIP config: image_size ${cfg.vision.imageSize} is not a multiple of patch_size ${cfg.vision.patchSize}`,
    );
  }
}

/** Number of vision tokens: the patches plus the class token (50 for ViT-B/32). */
export function visionTokens(v: ClipVisionConfig): number {
  return (v.imageSize / v.patchSize) ** 2 + 1;
}

// ---------------------------------------------------------------- state dict

function layerShapes(out: Map<string, number[]>, prefix: string, c: TowerConfig & { intermediateSize: number }) {
  const w = c.hiddenSize;
  for (let i = 0; i < c.layers; i++) {
    const L = `${prefix}.encoder.layers.${i}`;
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) {
      out.set(`${L}.self_attn.${proj}.weight`, [w, w]);
      out.set(`${L}.self_attn.${proj}.bias`, [w]);
    }
    for (const ln of ['layer_norm1', 'layer_norm2']) {
      out.set(`${L}.${ln}.weight`, [w]);
      out.set(`${L}.${ln}.bias`, [w]);
    }
    out.set(`${L}.mlp.fc1.weight`, [c.intermediateSize, w]);
    out.set(`${L}.mlp.fc1.bias`, [c.intermediateSize]);
    out.set(`${L}.mlp.fc2.weight`, [w, c.intermediateSize]);
    out.set(`${L}.mlp.fc2.bias`, [w]);
  }
}

/** Every parameter of HF's CLIPModel with its shape (Linear weights [out, in]). */
export function expectedStateDict(cfg: ClipConfig): Map<string, number[]> {
  const { vision: v, text: t, projectionDim: e } = cfg;
  const out = new Map<string, number[]>();
  const ln = (name: string, w: number) => {
    out.set(`${name}.weight`, [w]);
    out.set(`${name}.bias`, [w]);
  };
  out.set('text_model.embeddings.token_embedding.weight', [t.vocabSize, t.hiddenSize]);
  out.set('text_model.embeddings.position_embedding.weight', [t.maxPositions, t.hiddenSize]);
  layerShapes(out, 'text_model', t);
  ln('text_model.final_layer_norm', t.hiddenSize);
  out.set('vision_model.embeddings.class_embedding', [v.hiddenSize]);
  out.set('vision_model.embeddings.patch_embedding.weight', [v.hiddenSize, 3, v.patchSize, v.patchSize]);
  out.set('vision_model.embeddings.position_embedding.weight', [visionTokens(v), v.hiddenSize]);
  ln('vision_model.pre_layrnorm', v.hiddenSize);
  layerShapes(out, 'vision_model', v);
  ln('vision_model.post_layernorm', v.hiddenSize);
  out.set('visual_projection.weight', [e, v.hiddenSize]);
  out.set('text_projection.weight', [e, t.hiddenSize]);
  out.set('logit_scale', []);
  return out;
}

/** Buffers that transformers before 4.31 saved with the weights (position_ids); ignored when present. */
export function isOptionalBuffer(name: string): boolean {
  return name === 'text_model.embeddings.position_ids' || name === 'vision_model.embeddings.position_ids';
}
