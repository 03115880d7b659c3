// OpenAI's own CLIP names (openai/CLIP's model.py, its TorchScript files) -> Hugging Face's, as one table.
// Not a second model: the few tensors that are not plain renames are listed beside it (q/k/v packed in
// in_proj, projections stored [width, embed] instead of Linear's [embed, width]).
//
// Public API
//   isOpenAiClip(names)          true when the names are OpenAI's (`visual.conv1.weight` present)
//   openAiToHf(stateDict)        a new state dict with HF names; tensors that are only renamed are shared
//   OPENAI_TO_HF                 the rename table (regex -> replacement), in the order tried
import { WEIGHT_DTYPE_SIZE, type StateDict, type WeightTensor } from '../weights/tensor.js';

/** Per-layer renames; `$T` is the tower prefix (`visual.transformer` / `transformer`). */
const LAYER: ReadonlyArray<readonly [string, string]> = [
  ['ln_1', 'layer_norm1'],
  ['ln_2', 'layer_norm2'],
  ['attn.out_proj', 'self_attn.out_proj'],
  ['mlp.c_fc', 'mlp.fc1'],
  ['mlp.c_proj', 'mlp.fc2'],
];

export const OPENAI_TO_HF: ReadonlyArray<readonly [RegExp, string]> = [
  [/^visual\.conv1\.weight$/, 'vision_model.embeddings.patch_embedding.weight'],
  [/^visual\.class_embedding$/, 'vision_model.embeddings.class_embedding'],
  [/^visual\.positional_embedding$/, 'vision_model.embeddings.position_embedding.weight'],
  [/^visual\.ln_pre\.(weight|bias)$/, 'vision_model.pre_layrnorm.$1'],
  [/^visual\.ln_post\.(weight|bias)$/, 'vision_model.post_layernorm.$1'],
  [/^token_embedding\.weight$/, 'text_model.embeddings.token_embedding.weight'],
  [/^positional_embedding$/, 'text_model.embeddings.position_embedding.weight'],
  [/^ln_final\.(weight|bias)$/, 'text_model.final_layer_norm.$1'],
  [/^logit_scale$/, 'logit_scale'],
  ...LAYER.flatMap(([from, to]): [RegExp, string][] => [
    [
      new RegExp(`^visual\\.transformer\\.resblocks\\.(\\d+)\\.${from.replace('.', '\\.')}\\.(weight|bias)$`),
      `vision_model.encoder.layers.$1.${to}.$2`,
    ],
    [
      new RegExp(`^transformer\\.resblocks\\.(\\d+)\\.${from.replace('.', '\\.')}\\.(weight|bias)$`),
      `text_model.encoder.layers.$1.${to}.$2`,
    ],
  ]),
];

/** Packed attention input projections: in_proj_{weight,bias} [3w, (w)] -> q_proj, k_proj, v_proj. */
const IN_PROJ = /^(visual\.)?transformer\.resblocks\.(\d+)\.attn\.in_proj_(weight|bias)$/;
/** Projections stored [width, embed]: transposed into Linear's [embed, width]. */
const TRANSPOSED: Readonly<Record<string, string>> = {
  'visual.proj': 'visual_projection.weight',
  text_projection: 'text_projection.weight',
};
/** Scalars TorchScript files keep beside the weights. */
const DROPPED = new Set(['input_resolution', 'context_length', 'vocab_size']);

export function isOpenAiClip(names: Iterable<string>): boolean {
  for (const n of names) if (n === 'visual.conv1.weight') return true;
  return false;
}

function rowsOf(t: WeightTensor, start: number, count: number): WeightTensor {
  const rowBytes = (t.data.byteLength / t.shape[0]!) | 0;
  return {
    dtype: t.dtype,
    shape: [count, ...t.shape.slice(1)],
    data: t.data.subarray(start * rowBytes, (start + count) * rowBytes),
  };
}

function transpose2d(t: WeightTensor, name: string): WeightTensor {
  if (t.shape.length !== 2) throw new Error(`${name}: expected a matrix, got shape [${t.shape.join(', ')}]`);
  const [r, c] = t.shape as [number, number];
  const s = WEIGHT_DTYPE_SIZE[t.dtype];
  const out = new Uint8Array(t.data.byteLength);
  for (let i = 0; i < r; i++) {
    for (let j = 0; j < c; j++) out.set(t.data.subarray((i * c + j) * s, (i * c + j + 1) * s), (j * r + i) * s);
  }
  return { dtype: t.dtype, shape: [c, r], data: out };
}

/** Renames (and splits / transposes) an OpenAI-named CLIP state dict into HF's names. */
export function openAiToHf(sd: StateDict): StateDict {
  const out: StateDict = new Map();
  const put = (name: string, t: WeightTensor, from: string) => {
    if (out.has(name)) throw new Error(`OpenAI CLIP names: both '${from}' and another tensor map to '${name}'`);
    out.set(name, t);
  };
  for (const [name, t] of sd) {
    if (DROPPED.has(name)) continue;
    const packed = IN_PROJ.exec(name);
    if (packed) {
      const tower = packed[1] ? 'vision_model' : 'text_model';
      const kind = packed[3]!;
      if (t.shape[0]! % 3 !== 0) throw new Error(`${name}: first dimension ${t.shape[0]} is not 3 x width`);
      const w = t.shape[0]! / 3;
      ['q_proj', 'k_proj', 'v_proj'].forEach((proj, k) =>
        put(`${tower}.encoder.layers.${packed[2]}.self_attn.${proj}.${kind}`, rowsOf(t, k * w, w), name),
      );
      continue;
    }
    if (name in TRANSPOSED) {
      put(TRANSPOSED[name]!, transpose2d(t, name), name);
      continue;
    }
    const rule = OPENAI_TO_HF.find(([re]) => re.test(name));
    // Unknown names pass through unchanged, so the state-dict assertion reports them as unexpected.
    put(rule ? name.replace(rule[0], rule[1]) : name, t, name);
  }
  return out;
}
