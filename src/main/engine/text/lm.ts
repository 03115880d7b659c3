// Causal LMs in the compute worker through transformers.js (@huggingface/transformers, on the same
// onnxruntime-node): the model and tokenizer load from the studio's model folder only (remote loading off;
// downloads go through the model manager), every run of its sessions takes the device lock like the engine's
// own, and two things are built on its forward pass: label scoring (the log-likelihood of each continuation
// after a prompt, all of its tokens) and free generation (streaming, stop sequences, temperature, top-p,
// max tokens, a seed), both with their own loops over the key/value cache so that they are reproducible.
//
// Public API
//   TextLm.open(device, ref, provider) -> TextLm    a model folder; errors say what is wrong with it
//     .info: TextModelInfo
//     .score(prompts, continuations, { signal?, onProgress? }) -> ScoreResult
//     .generate(args, { signal?, onDelta? }) -> GenerateResult
//     .close()
//   onnxFileFor(dir, dtype?) -> { file, dtype }     which ONNX file of onnx/ a folder runs
//   logNormalizer(logits, offset, vocab), logSoftmaxAt(logits, offset, vocab, token)   log p(token) from a row of logits
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type * as Tf from '@huggingface/transformers';
import type { ExplicitProvider } from '../../../shared/providers.js';
import { Rng } from '../vqclip/prng.js';
import type { Device } from '../runtime/worker-core.js';
import type {
  GenerateArgs,
  GenerateResult,
  GenerateStreamMessage,
  ScoreResult,
  TextModelInfo,
  TextModelRef,
} from './types.js';

type Transformers = typeof Tf;
type TfTensor = InstanceType<Transformers['Tensor']>;
type Feeds = Record<string, TfTensor>;
type Outputs = Record<string, TfTensor>;

interface Loaded {
  forward(feeds: Feeds): Promise<Outputs>;
  dispose(): Promise<unknown>;
}
interface Tok {
  encode(text: string, o: { add_special_tokens: boolean }): number[];
  decode(ids: number[], o: { skip_special_tokens: boolean }): string;
}

let transformers: Promise<Transformers> | null = null;
/** transformers.js, loaded on first use (the worker starts without it), set to read local folders only. */
function loadTransformers(): Promise<Transformers> {
  transformers ??= import('@huggingface/transformers').then((tf) => {
    tf.env.allowRemoteModels = false;
    tf.env.allowLocalModels = true;
    tf.env.useFSCache = false;
    return tf;
  });
  return transformers;
}

/** transformers.js' suffix per dtype (model.onnx, model_quantized.onnx, ...), in the order tried. */
const DTYPE_SUFFIX: readonly [NonNullable<TextModelRef['dtype']>, string][] = [
  ['fp32', ''],
  ['q8', '_quantized'],
  ['q4', '_q4'],
  ['fp16', '_fp16'],
];
/** The ONNX base names of transformers.js' exports: today's, and the merged decoder of older Xenova exports. */
const BASE_NAMES = ['model', 'decoder_model_merged'] as const;

/** Which ONNX file of a folder's onnx/ runs: the first of the wanted dtypes (all, in order, when none is given). */
export function onnxFileFor(
  dir: string,
  dtype?: TextModelRef['dtype'],
): { file: string; dtype: NonNullable<TextModelRef['dtype']>; baseName: (typeof BASE_NAMES)[number] } {
  const onnxDir = path.join(dir, 'onnx');
  const wanted = dtype ? DTYPE_SUFFIX.filter(([d]) => d === dtype) : DTYPE_SUFFIX;
  for (const [d, suffix] of wanted) {
    for (const base of BASE_NAMES) {
      const name = `${base}${suffix}.onnx`;
      if (existsSync(path.join(onnxDir, name))) return { file: `onnx/${name}`, dtype: d, baseName: base };
    }
  }
  const found = existsSync(onnxDir) ? readdirSync(onnxDir).filter((f) => f.endsWith('.onnx')) : [];
  const names = wanted.map(([, suffix]) => `onnx/model${suffix}.onnx`).join(' or ');
  throw new Error(
    `${dir} has no ${names} (found: ${found.length ? found.join(', ') : 'no onnx/ files'}); ` +
      'a text model folder is a transformers.js export: config.json, tokenizer.json and onnx/model*.onnx',
  );
}

/** log sum exp of logits[offset .. offset+vocab), computed stably: log p(token) is logits[token] minus it. */
export function logNormalizer(logits: Float32Array, offset: number, vocab: number): number {
  let max = -Infinity;
  for (let k = 0; k < vocab; k++) max = Math.max(max, logits[offset + k]!);
  let sum = 0;
  for (let k = 0; k < vocab; k++) sum += Math.exp(logits[offset + k]! - max);
  return max + Math.log(sum);
}

/** log softmax(logits[offset .. offset+vocab))[token]. */
export function logSoftmaxAt(logits: Float32Array, offset: number, vocab: number, token: number): number {
  return logits[offset + token]! - logNormalizer(logits, offset, vocab);
}

const TRANSFORMERS_DEVICE: Partial<Record<ExplicitProvider, string>> = {
  cpu: 'cpu',
  webgpu: 'webgpu',
  cuda: 'cuda',
  dml: 'dml',
  coreml: 'coreml',
};

/** The longest batch of logits kept at once (floats): bounds memory on large vocabularies. */
const MAX_LOGIT_FLOATS = 64 * 1024 * 1024;

export class TextLm {
  private constructor(
    private readonly tf: Transformers,
    private readonly model: Loaded,
    private readonly tok: Tok,
    readonly info: TextModelInfo,
    readonly provider: ExplicitProvider,
  ) {}

  static async open(device: Device, ref: TextModelRef, provider: ExplicitProvider): Promise<TextLm> {
    const dir = path.resolve(ref.dir);
    const configText = await readFile(path.join(dir, 'config.json'), 'utf8').catch(() => {
      throw new Error(`${dir} is not a model folder (no config.json)`);
    });
    const config = JSON.parse(configText) as Record<string, unknown>;
    const modelType = String(config.model_type ?? '');
    const { file, dtype, baseName } = onnxFileFor(dir, ref.dtype);
    const tf = await loadTransformers();
    const id = path.basename(dir);
    // Both of transformers.js' folders point at the model's own folder: nothing is read from, or written to,
    // anywhere else.
    tf.env.localModelPath = path.dirname(dir) + path.sep;
    tf.env.cacheDir = path.dirname(dir);
    const device_ = TRANSFORMERS_DEVICE[provider] ?? 'cpu';
    const [tokenizer, model] = await Promise.all([
      tf.AutoTokenizer.from_pretrained(id, { local_files_only: true }),
      tf.AutoModelForCausalLM.from_pretrained(id, {
        local_files_only: true,
        dtype,
        model_file_name: baseName,
        device: device_ as 'cpu',
      }),
    ]).catch((e: unknown) => {
      const why = e instanceof Error ? e.message : String(e);
      if (/unsupported model type|not a valid|cannot find|unknown model/i.test(why) || !modelType) {
        throw new Error(
          `${id} is not a causal language model (config.json says model_type "${modelType || 'none'}"): ` +
            `Prompt Lab needs a text model such as GPT-2, SmolLM2 or Qwen2.5 (Models page). (${why})`,
        );
      }
      throw new Error(`could not open the text model ${id}: ${why}`);
    });
    // transformers.js' sessions run under the device lock, in turn with every other run on this device.
    const sessions = (model as unknown as { sessions: Record<string, { run: (...a: unknown[]) => Promise<unknown> }> })
      .sessions;
    for (const s of Object.values(sessions)) {
      const run = s.run.bind(s);
      s.run = (...a: unknown[]) => device.exclusive(() => run(...a));
    }
    const eos = config.eos_token_id;
    const info: TextModelInfo = {
      modelType,
      vocabSize: Number(config.vocab_size ?? 0),
      maxPositions: Number(config.n_positions ?? config.max_position_embeddings ?? 1024),
      onnxFile: file,
      eosTokenIds: (Array.isArray(eos) ? eos : eos === undefined || eos === null ? [] : [eos]).map(Number),
    };
    return new TextLm(tf, model as unknown as Loaded, tokenizer as unknown as Tok, info, provider);
  }

  #encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false });
  }

  #ints(rows: number[][], width: number, fill: number): TfTensor {
    const data = new BigInt64Array(rows.length * width).fill(BigInt(fill));
    rows.forEach((r, i) => r.forEach((v, k) => (data[i * width + k] = BigInt(v))));
    return new this.tf.Tensor('int64', data, [rows.length, width]);
  }

  #checkLength(n: number, what: string): void {
    if (n > this.info.maxPositions) {
      throw new Error(
        `${what} is ${n} tokens; this model reads at most ${this.info.maxPositions}: use fewer or shorter examples`,
      );
    }
  }

  /** One forward pass over right-padded rows after an optional cache; returns logits and the new cache. */
  async #forward(
    rows: number[][],
    opts: { past?: Feeds; pastLengths?: number[]; pastWidth?: number } = {},
  ): Promise<{ logits: Float32Array; width: number; vocab: number; cache: Feeds }> {
    const width = Math.max(...rows.map((r) => r.length));
    const pastWidth = opts.pastWidth ?? 0;
    const mask: number[][] = [];
    const pos: number[][] = [];
    rows.forEach((r, i) => {
      const past = opts.pastLengths?.[i] ?? 0;
      mask.push([
        ...Array.from({ length: pastWidth }, (_, k) => (k < past ? 1 : 0)),
        ...Array.from({ length: width }, (_, k) => (k < r.length ? 1 : 0)),
      ]);
      pos.push(Array.from({ length: width }, (_, k) => past + Math.min(k, Math.max(0, r.length - 1))));
    });
    const feeds: Feeds & { past_key_values?: Feeds } = {
      input_ids: this.#ints(rows, width, this.info.eosTokenIds[0] ?? 0),
      attention_mask: this.#ints(mask, pastWidth + width, 0),
      position_ids: this.#ints(pos, width, 0),
    };
    if (opts.past) feeds.past_key_values = opts.past;
    const out = await this.model.forward(feeds);
    const logits = out.logits!;
    const cache: Feeds = {};
    for (const [name, t] of Object.entries(out)) {
      if (name.startsWith('present')) cache[name.replace('present', 'past_key_values')] = t;
    }
    return { logits: logits.data as Float32Array, width, vocab: logits.dims.at(-1)!, cache };
  }

  /** A cache's rows picked (and repeated) by `rows` (batch axis 0). */
  #pick(cache: Feeds, rows: number[]): Feeds {
    const out: Feeds = {};
    for (const [name, t] of Object.entries(cache)) {
      const [b, ...rest] = t.dims;
      const per = rest.reduce((x, y) => x * y, 1);
      const src = t.data as Float32Array;
      const data = new Float32Array(rows.length * per);
      rows.forEach((r, k) => {
        if (r >= b!) throw new Error(`cache row ${r} of ${b}`);
        data.set(src.subarray(r * per, (r + 1) * per), k * per);
      });
      out[name] = new this.tf.Tensor('float32', data, [rows.length, ...rest]);
    }
    return out;
  }

  async score(
    prompts: readonly string[],
    continuations: readonly string[],
    o: { signal?: AbortSignal; onProgress?: (done: number) => void } = {},
  ): Promise<ScoreResult> {
    if (continuations.length === 0) throw new Error('score: no continuations to score');
    const conts = continuations.map((c) => this.#encode(c));
    conts.forEach((c, j) => {
      if (c.length === 0) throw new Error(`score: continuation ${j + 1} ("${continuations[j]}") has no tokens`);
    });
    const longest = Math.max(...conts.map((c) => c.length));
    const encoded = prompts.map((p, i) => {
      const ids = this.#encode(p);
      if (ids.length === 0) throw new Error(`score: prompt ${i + 1} is empty`);
      this.#checkLength(ids.length + longest, `prompt ${i + 1} with its longest continuation`);
      return ids;
    });
    const vocab = Math.max(1, this.info.vocabSize);
    const logprobs: number[][] = [];
    for (let i = 0; i < encoded.length;) {
      if (o.signal?.aborted) throw new DOMException('cancelled', 'AbortError');
      // As many prompts as fit the logits budget go through together.
      let n = 1;
      let width = encoded[i]!.length;
      while (i + n < encoded.length && n < 32) {
        const w = Math.max(width, encoded[i + n]!.length);
        if ((n + 1) * w * vocab > MAX_LOGIT_FLOATS) break;
        width = w;
        n++;
      }
      logprobs.push(...(await this.#scoreBatch(encoded.slice(i, i + n), conts)));
      i += n;
      o.onProgress?.(i);
    }
    const promptTokens = encoded.map((ids) => ids.length);
    return { logprobs, continuationTokens: conts, promptTokens, provider: this.provider };
  }

  /**
   * Prompts (right-padded) in one pass: each continuation's first token from the prompt's last logits; the
   * rest of every multi-token continuation in a second pass over the prompts' caches, one row per (prompt,
   * continuation).
   */
  async #scoreBatch(prompts: number[][], conts: number[][]): Promise<number[][]> {
    const first = await this.#forward(prompts);
    // Every continuation's first token from the same row of logits: its normaliser computed once.
    const result = prompts.map((p, i) => {
      const offset = (i * first.width + p.length - 1) * first.vocab;
      const z = logNormalizer(first.logits, offset, first.vocab);
      return conts.map((c) => first.logits[offset + c[0]!]! - z);
    });
    const multi = conts.map((c, j) => ({ c, j })).filter(({ c }) => c.length > 1);
    if (multi.length === 0) return result;
    const rows: { i: number; j: number; c: number[] }[] = [];
    prompts.forEach((_, i) => multi.forEach(({ c, j }) => rows.push({ i, j, c })));
    const second = await this.#forward(
      rows.map((r) => r.c.slice(0, -1)),
      {
        past: this.#pick(
          first.cache,
          rows.map((r) => r.i),
        ),
        pastLengths: rows.map((r) => prompts[r.i]!.length),
        pastWidth: first.width,
      },
    );
    rows.forEach((r, k) => {
      for (let t = 1; t < r.c.length; t++) {
        result[r.i]![r.j]! += logSoftmaxAt(
          second.logits,
          (k * second.width + t - 1) * second.vocab,
          second.vocab,
          r.c[t]!,
        );
      }
    });
    return result;
  }

  async generate(
    a: Omit<GenerateArgs, 'model' | 'provider'>,
    o: { signal?: AbortSignal; onDelta?: (m: GenerateStreamMessage) => void } = {},
  ): Promise<GenerateResult> {
    const prompt = this.#encode(a.prompt);
    if (prompt.length === 0) throw new Error('generate: the prompt is empty');
    this.#checkLength(prompt.length, 'the prompt');
    const maxTokens = Math.min(a.maxTokens, this.info.maxPositions - prompt.length);
    const rng = Rng.stream(a.seed >>> 0, 0x74657874);
    const eos = new Set(this.info.eosTokenIds);
    const made: number[] = [];
    let text = '';
    let sent = 0;
    let finish: GenerateResult['finish'] = 'length';
    let step = await this.#forward([prompt]);
    let offset = (prompt.length - 1) * step.vocab;
    let pastWidth = prompt.length;
    while (made.length < maxTokens) {
      if (o.signal?.aborted) throw new DOMException('cancelled', 'AbortError');
      const token = pickToken(step.logits.subarray(offset, offset + step.vocab), a.temperature, a.topP, rng);
      if (eos.has(token)) {
        finish = 'eos';
        break;
      }
      made.push(token);
      text = this.tok.decode(made, { skip_special_tokens: true });
      const stopAt = firstStop(text, a.stop);
      if (stopAt !== null) {
        text = text.slice(0, stopAt);
        finish = 'stop';
        break;
      }
      // Text held back while it may still become a stop sequence or ends in half a character.
      const safe = safeLength(text, a.stop);
      if (safe > sent) {
        o.onDelta?.({ delta: text.slice(sent, safe), tokens: made.length });
        sent = safe;
      }
      if (made.length >= maxTokens) break;
      step = await this.#forward([[token]], { past: step.cache, pastLengths: [pastWidth], pastWidth });
      pastWidth++;
      offset = 0;
    }
    if (text.length > sent) o.onDelta?.({ delta: text.slice(sent), tokens: made.length });
    return { text, tokens: made.length, finish, provider: this.provider };
  }

  async close(): Promise<void> {
    await this.model.dispose();
  }
}

/** Where the first stop sequence starts in text, or null. */
function firstStop(text: string, stops: readonly string[]): number | null {
  let at: number | null = null;
  for (const s of stops) {
    const k = text.indexOf(s);
    if (k >= 0 && (at === null || k < at)) at = k;
  }
  return at;
}

/** How much of text can be shown: not a tail that starts a stop sequence, nor a trailing replacement char. */
function safeLength(text: string, stops: readonly string[]): number {
  let n = text.endsWith('\uFFFD') ? text.length - 1 : text.length;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, n); k > 0; k--) {
      if (text.slice(n - k, n) === s.slice(0, k)) {
        n -= k;
        break;
      }
    }
  }
  return Math.max(0, n);
}

/** Greedy at temperature 0; else a sample from the temperature-scaled distribution cut to its top-p mass. */
export function pickToken(logits: Float32Array, temperature: number, topP: number, rng: Rng): number {
  let best = 0;
  for (let k = 1; k < logits.length; k++) if (logits[k]! > logits[best]!) best = k;
  if (temperature <= 0) return best;
  const max = logits[best]!;
  const p = new Float64Array(logits.length);
  let sum = 0;
  for (let k = 0; k < logits.length; k++) sum += p[k] = Math.exp((logits[k]! - max) / temperature);
  const order = Array.from({ length: logits.length }, (_, k) => k);
  if (topP < 1) order.sort((x, y) => p[y]! - p[x]! || x - y);
  let kept = 0;
  let n = 0;
  for (const k of order) {
    kept += p[k]!;
    n++;
    if (topP < 1 && kept >= topP * sum) break;
  }
  let u = rng.next() * kept;
  for (let m = 0; m < n; m++) {
    u -= p[order[m]!]!;
    if (u < 0) return order[m]!;
  }
  return order[n - 1]!;
}
