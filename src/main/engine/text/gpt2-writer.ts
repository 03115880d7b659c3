// A GPT-2-style causal LM written by the studio's own graph builder, in the layout transformers.js loads
// (config.json, generation_config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx with the
// input and output names of Optimum's exports: input_ids, attention_mask, position_ids,
// past_key_values.<i>.key/value -> logits, present.<i>.key/value), with random weights: the tiny model of
// the tests and the GPT-2-small-sized model of `npm run bench -- text`. The weights are also written as
// model.safetensors under GPT-2's Hugging Face names, so an independent implementation (the benchmark's
// PyTorch model) can load exactly the same model.
//
// The graph is shape-agnostic: batch, sequence and past lengths are read at run time (Shape, Range), the
// reshapes use 0 and -1, and the interface's dims are named (emitModel's dynamicDims). The builder's static
// shapes (batch 1, 3 new tokens, 2 past) are only what it checked the graph with.
//
// Public API
//   Gpt2Shape, TINY_GPT2, GPT2_SMALL                 sizes (vocab, positions, width, layers, heads)
//   gpt2Weights(shape, seed) -> Map<name, HostTensor>  random weights under GPT-2's names (N(0, 0.02), as GPT-2 inits)
//   buildGpt2Onnx(shape, weights) -> Uint8Array      the ONNX model
//   byteLevelTokenizer(corpus, merges) -> { json, vocabSize, eosId }   a GPT-2-style byte-level BPE tokenizer.json
//   writeGpt2Folder(dir, { shape?, seed?, merges? }) -> { vocabSize, eosId, files }   the whole model folder
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Builder } from '../graph/builder.js';
import type { HostTensor, Tensor } from '../graph/ir.js';
import { emitModel } from '../graph/onnx-proto.js';
import { Rng } from '../vqclip/prng.js';
import { writeSafetensors } from '../weights/safetensors.js';
import type { StateDict } from '../weights/tensor.js';

export interface Gpt2Shape {
  /** Rows of the embedding (and logits); may exceed the tokenizer's vocabulary (random models). */
  vocabSize: number;
  nPositions: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
}

/** The tests' model: small enough to commit (its vocabulary is the tiny tokenizer's). */
export const TINY_GPT2: Omit<Gpt2Shape, 'vocabSize'> = { nPositions: 256, nEmbd: 32, nLayer: 2, nHead: 4 };
/** GPT-2 small's sizes (124M parameters). */
export const GPT2_SMALL: Gpt2Shape = { vocabSize: 50257, nPositions: 1024, nEmbd: 768, nLayer: 12, nHead: 12 };

const f32 = (dims: number[], data: Float32Array): HostTensor => ({ dtype: 'float32', dims, data });

/** Random weights under GPT-2's Hugging Face names (Conv1D layout: [in, out]). */
export function gpt2Weights(shape: Gpt2Shape, seed: number): Map<string, HostTensor> {
  const { vocabSize: V, nPositions: P, nEmbd: C } = shape;
  const rng = Rng.stream(seed, 0x67707432);
  const normal = (dims: number[], std: number) => {
    const n = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let k = 0; k < n; k++) data[k] = rng.normal() * std;
    return f32(dims, data);
  };
  // LayerNorm scales near 1 and biases near 0, not exactly: a test then sees a wrong scale or bias.
  const around = (dims: number[], centre: number) => {
    const t = normal(dims, 0.05);
    const d = t.data as Float32Array;
    for (let k = 0; k < d.length; k++) d[k]! += centre;
    return t;
  };
  const w = new Map<string, HostTensor>();
  w.set('transformer.wte.weight', normal([V, C], 0.02));
  w.set('transformer.wpe.weight', normal([P, C], 0.01));
  for (let l = 0; l < shape.nLayer; l++) {
    const h = `transformer.h.${l}`;
    w.set(`${h}.ln_1.weight`, around([C], 1));
    w.set(`${h}.ln_1.bias`, around([C], 0));
    w.set(`${h}.attn.c_attn.weight`, normal([C, 3 * C], 0.02));
    w.set(`${h}.attn.c_attn.bias`, normal([3 * C], 0.02));
    w.set(`${h}.attn.c_proj.weight`, normal([C, C], 0.02 / Math.sqrt(2 * shape.nLayer)));
    w.set(`${h}.attn.c_proj.bias`, normal([C], 0.02));
    w.set(`${h}.ln_2.weight`, around([C], 1));
    w.set(`${h}.ln_2.bias`, around([C], 0));
    w.set(`${h}.mlp.c_fc.weight`, normal([C, 4 * C], 0.02));
    w.set(`${h}.mlp.c_fc.bias`, normal([4 * C], 0.02));
    w.set(`${h}.mlp.c_proj.weight`, normal([4 * C, C], 0.02 / Math.sqrt(2 * shape.nLayer)));
    w.set(`${h}.mlp.c_proj.bias`, normal([C], 0.02));
  }
  w.set('transformer.ln_f.weight', around([C], 1));
  w.set('transformer.ln_f.bias', around([C], 0));
  return w;
}

/** GPT-2's GELU (the tanh approximation, "gelu_new"). */
function geluNew(b: Builder, x: Tensor): Tensor {
  const inner = b.mul(b.add(x, b.mul(b.mul(b.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return b.mul(b.mul(x, 0.5), b.add(b.tanh(inner), 1));
}

const I = (value: number) => ({ type: 'int' as const, value });

/** The causal LM as ONNX: logits for every position and the key/value cache after these tokens. */
export function buildGpt2Onnx(shape: Gpt2Shape, weights: ReadonlyMap<string, HostTensor>): Uint8Array {
  const { vocabSize: V, nEmbd: C, nHead: H, nLayer: L } = shape;
  if (C % H !== 0) throw new Error(`GPT-2: width ${C} is not a multiple of ${H} heads`);
  const D = C / H;
  const [B, T, PAST] = [1, 3, 2];
  const S = PAST + T;
  const b = new Builder('gpt2');
  const params = new Map<string, Tensor>();
  const p = (name: string) => {
    let t = params.get(name);
    if (!t) {
      const w = weights.get(name);
      if (!w) throw new Error(`GPT-2: no weight ${name}`);
      t = b.param(name, w);
      params.set(name, t);
    }
    return t;
  };
  const ids = b.input('input_ids', [B, T], 'int64');
  const mask = b.input('attention_mask', [B, S], 'int64');
  const pos = b.input('position_ids', [B, T], 'int64');
  const past = Array.from({ length: L }, (_, l) => ({
    key: b.input(`past_key_values.${l}.key`, [B, H, PAST, D]),
    value: b.input(`past_key_values.${l}.value`, [B, H, PAST, D]),
  }));

  // Which keys each query may see: causal (key position <= past + query position) and not padding.
  const scalarOf = (shapeOf: Tensor, axis: number, name: string) =>
    b.node('Gather', [shapeOf, b.scalar(axis, 'int64')], [{ name, dtype: 'int64', shape: [] }], { axis: I(0) })[0]!;
  const idsShape = b.node('Shape', [ids], [{ name: 'ids_shape', dtype: 'int64', shape: [2] }])[0]!;
  const maskShape = b.node('Shape', [mask], [{ name: 'mask_shape', dtype: 'int64', shape: [2] }])[0]!;
  const total = scalarOf(maskShape, 1, 'total_len');
  const pastLen = b.sub(total, scalarOf(idsShape, 1, 'new_len'));
  const range = (start: Tensor, n: number, name: string) =>
    b.node('Range', [start, total, b.scalar(1, 'int64')], [{ name, dtype: 'int64', shape: [n] }])[0]!;
  const queryPos = range(pastLen, T, 'query_pos');
  const keyPos = range(b.scalar(0, 'int64'), S, 'key_pos');
  const causal = b.lessOrEqual(b.unsqueeze(keyPos, [0]), b.unsqueeze(queryPos, [1]));
  const notPad = b.unsqueeze(b.cast(mask, 'bool'), [1, 2]);
  const allowed = b.and(causal, notPad); // [B, 1, T, S]

  const reshape = (x: Tensor, to: number[], out: number[], name: string) =>
    b.node('Reshape', [x, b.ints(to)], [{ name, dtype: 'float32', shape: out }])[0]!;
  const heads = (x: Tensor, name: string) => b.transpose(reshape(x, [0, 0, H, D], [B, T, H, D], name), [0, 2, 1, 3]);
  const dense = (x: Tensor, prefix: string) => b.add(b.matmul(x, p(`${prefix}.weight`)), p(`${prefix}.bias`));
  const norm = (x: Tensor, prefix: string) => b.layerNorm(x, p(`${prefix}.weight`), p(`${prefix}.bias`));

  let x = b.add(b.gather(p('transformer.wte.weight'), ids, 0), b.gather(p('transformer.wpe.weight'), pos, 0));
  const presents: Record<string, Tensor> = {};
  for (let l = 0; l < L; l++) {
    const h = `transformer.h.${l}`;
    const [q, k, v] = b.split(dense(norm(x, `${h}.ln_1`), `${h}.attn.c_attn`), [C, C, C], 2);
    const keys = b.concat([past[l]!.key, heads(k!, `k_heads_${l}`)], 2);
    const values = b.concat([past[l]!.value, heads(v!, `v_heads_${l}`)], 2);
    presents[`present.${l}.key`] = keys;
    presents[`present.${l}.value`] = values;
    const scores = b.mul(b.matmul(heads(q!, `q_heads_${l}`), b.transpose(keys, [0, 1, 3, 2])), 1 / Math.sqrt(D));
    const probs = b.softmax(b.where(allowed, scores, -1e9), -1);
    const merged = reshape(b.transpose(b.matmul(probs, values), [0, 2, 1, 3]), [0, 0, C], [B, T, C], `merge_${l}`);
    x = b.add(x, dense(merged, `${h}.attn.c_proj`));
    x = b.add(x, dense(geluNew(b, dense(norm(x, `${h}.ln_2`), `${h}.mlp.c_fc`)), `${h}.mlp.c_proj`));
  }
  x = norm(x, 'transformer.ln_f');
  // The tied output layer as one Gemm against the embedding as stored ([V, C], transB): no transposed copy.
  const flat = reshape(x, [-1, C], [B * T, C], 'flat');
  const logits2 = b.gemm(flat, p('transformer.wte.weight'), null, { transB: true });
  const outShape = b.concat([idsShape, b.ints([V])], 0);
  const logits = b.node(
    'Reshape',
    [logits2, outShape],
    [{ name: 'logits_out', dtype: 'float32', shape: [B, T, V] }],
  )[0]!;

  const cache = ['batch_size', null, 'past_sequence_length', null];
  const presentDims = ['batch_size', null, 'total_sequence_length', null];
  const dynamicDims: Record<string, (string | null)[]> = {
    input_ids: ['batch_size', 'sequence_length'],
    attention_mask: ['batch_size', 'total_sequence_length'],
    position_ids: ['batch_size', 'sequence_length'],
    logits: ['batch_size', 'sequence_length', null],
  };
  for (let l = 0; l < L; l++) {
    for (const kv of ['key', 'value']) {
      dynamicDims[`past_key_values.${l}.${kv}`] = cache;
      dynamicDims[`present.${l}.${kv}`] = presentDims;
    }
  }
  return emitModel(b.graph, { outputs: { logits, ...presents }, dynamicDims, name: 'gpt2' });
}

// ---------- the tokenizer ----------

/** GPT-2's byte-to-character table: printable bytes stand for themselves, the rest from U+0100 on. */
export function byteToChar(): string[] {
  const keep = (c: number) => (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255);
  const out: string[] = [];
  let extra = 0;
  for (let c = 0; c < 256; c++) out.push(String.fromCodePoint(keep(c) ? c : 256 + extra++));
  return out;
}

/** GPT-2's pre-tokenizer regex (words with their leading space, numbers, punctuation runs, spaces). */
const PRE_TOKEN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * Learns `merges` byte-pair merges from `corpus` (the most frequent adjacent pair each round, ties broken by
 * the pair's text), deterministic: a small vocabulary for a tiny model, in GPT-2's tokenizer.json layout.
 */
export function byteLevelTokenizer(
  corpus: string,
  merges: number,
): { json: unknown; vocabSize: number; eosId: number } {
  const table = byteToChar();
  const enc = new TextEncoder();
  const words = new Map<string, number>();
  for (const m of corpus.matchAll(PRE_TOKEN)) {
    const w = Array.from(enc.encode(m[0]), (c) => table[c]!).join('\u0000');
    words.set(w, (words.get(w) ?? 0) + 1);
  }
  let split = [...words.entries()].map(([w, n]) => ({ parts: w.split('\u0000'), n }));
  const vocab: Record<string, number> = {};
  table.forEach((ch, k) => (vocab[ch] = k));
  const mergeList: string[] = [];
  for (let round = 0; round < merges; round++) {
    const counts = new Map<string, number>();
    for (const { parts, n } of split) {
      for (let k = 0; k + 1 < parts.length; k++) {
        const key = `${parts[k]} ${parts[k + 1]}`;
        counts.set(key, (counts.get(key) ?? 0) + n);
      }
    }
    let best: string | null = null;
    let bestN = 1;
    for (const [key, n] of counts)
      if (n > bestN || (n === bestN && best !== null && key < best)) [best, bestN] = [key, n];
    if (best === null) break;
    const [a, c] = best.split(' ') as [string, string];
    mergeList.push(best);
    vocab[a + c] = Object.keys(vocab).length;
    split = split.map(({ parts, n }) => {
      const out: string[] = [];
      for (let k = 0; k < parts.length; k++) {
        if (k + 1 < parts.length && parts[k] === a && parts[k + 1] === c) {
          out.push(a + c);
          k++;
        } else out.push(parts[k]!);
      }
      return { parts: out, n };
    });
  }
  const eosId = Object.keys(vocab).length;
  vocab['<|endoftext|>'] = eosId;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id: eosId,
        content: '<|endoftext|>',
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: mergeList,
    },
  };
  return { json, vocabSize: eosId + 1, eosId };
}

/** What the tiny tokenizer learns its merges from: the talk's few-shot examples, sentiment and questions. */
export const TINY_CORPUS = [
  'Q: Capital of India? A: Delhi. Q: Capital of France? A: Paris. Q: Capital of Japan? A: Tokyo.',
  'I: Average movie O: Negative. I: Great acting and a moving story O: Positive. I: Boring and too long O: Negative.',
  'The review is positive. The review is negative. This movie was great. This film was terrible.',
  'Input: the food was lovely Output: Positive. Input: the service was slow Output: Negative.',
  'What is the answer? The answer is yes. The answer is no. Sentiment: positive, negative, neutral.',
].join('\n');

export interface WrittenModel {
  vocabSize: number;
  eosId: number;
  /** Paths written, relative to the folder. */
  files: string[];
}

/**
 * Writes a transformers.js causal-LM folder: random GPT-2 weights (shape defaults to TINY_GPT2 with the tiny
 * tokenizer's vocabulary) with the byte-level tokenizer learnt from TINY_CORPUS. Deterministic for a seed.
 */
export async function writeGpt2Folder(
  dir: string,
  opts: { shape?: Partial<Gpt2Shape>; seed?: number; merges?: number } = {},
): Promise<WrittenModel> {
  const tok = byteLevelTokenizer(TINY_CORPUS, opts.merges ?? 120);
  const shape: Gpt2Shape = { ...TINY_GPT2, vocabSize: tok.vocabSize, ...opts.shape };
  if (shape.vocabSize < tok.vocabSize) {
    throw new Error(`GPT-2: vocabulary ${shape.vocabSize} is smaller than the tokenizer's ${tok.vocabSize}`);
  }
  const weights = gpt2Weights(shape, opts.seed ?? 0);
  await mkdir(path.join(dir, 'onnx'), { recursive: true });
  const json = (name: string, value: unknown) => writeFile(path.join(dir, name), `${JSON.stringify(value, null, 2)}\n`);
  await json('config.json', {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    vocab_size: shape.vocabSize,
    n_positions: shape.nPositions,
    n_ctx: shape.nPositions,
    n_embd: shape.nEmbd,
    n_layer: shape.nLayer,
    n_head: shape.nHead,
    activation_function: 'gelu_new',
    layer_norm_epsilon: 1e-5,
    bos_token_id: tok.eosId,
    eos_token_id: tok.eosId,
    tie_word_embeddings: true,
  });
  await json('generation_config.json', { bos_token_id: tok.eosId, eos_token_id: tok.eosId });
  await json('tokenizer.json', tok.json);
  await json('tokenizer_config.json', {
    tokenizer_class: 'GPT2Tokenizer',
    model_max_length: shape.nPositions,
    bos_token: '<|endoftext|>',
    eos_token: '<|endoftext|>',
    unk_token: '<|endoftext|>',
    add_bos_token: false,
    clean_up_tokenization_spaces: false,
  });
  await writeFile(path.join(dir, 'onnx', 'model.onnx'), buildGpt2Onnx(shape, weights));
  const dict: StateDict = new Map();
  for (const [name, t] of weights) {
    const data = t.data as Float32Array;
    dict.set(name, {
      dtype: 'F32',
      shape: [...t.dims],
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    });
  }
  await writeSafetensors(path.join(dir, 'model.safetensors'), dict, { format: 'pt' });
  return {
    vocabSize: shape.vocabSize,
    eosId: tok.eosId,
    files: [
      'config.json',
      'generation_config.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'onnx/model.onnx',
      'model.safetensors',
    ],
  };
}
