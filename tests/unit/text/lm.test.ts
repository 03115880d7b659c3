// The text runtime (engine/text/lm.ts) on the tiny GPT-2 fixture, against an independent computation: the
// same ONNX model run here directly on whole sequences (no cache, no padding, no batching), its logits turned
// into log-probabilities by a float64 log-softmax written in this file.
import { cp, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, type RuntimeSession } from '../../../src/main/engine/runtime/ort.js';
import { inThreadDevice } from '../../../src/main/engine/runtime/worker-core.js';
import { TextLm } from '../../../src/main/engine/text/lm.js';
import { Rng } from '../../../src/main/engine/vqclip/prng.js';
import { TINY_GPT2_DIR } from '../../fixtures/text/make-tiny-gpt2.js';

const config = (await import('../../fixtures/text/tiny-gpt2/config.json', { with: { type: 'json' } })).default;
const { n_layer: L, n_head: H, n_embd: C, vocab_size: V } = config;

let lm: TextLm;
let direct: RuntimeSession;

beforeAll(async () => {
  lm = await TextLm.open(inThreadDevice(), { dir: TINY_GPT2_DIR }, 'cpu');
  direct = await createSession({ file: path.join(TINY_GPT2_DIR, 'onnx/model.onnx') });
});
afterAll(async () => {
  await lm.close();
  await direct.release();
});

/** Logits [T, V] for a whole sequence in one pass with an empty cache. */
async function logitsOf(ids: number[]): Promise<Float64Array[]> {
  const T = ids.length;
  const feeds: Record<string, { dtype: 'int64' | 'float32'; dims: number[]; data: BigInt64Array | Float32Array }> = {
    input_ids: { dtype: 'int64', dims: [1, T], data: BigInt64Array.from(ids, BigInt) },
    attention_mask: { dtype: 'int64', dims: [1, T], data: new BigInt64Array(T).fill(1n) },
    position_ids: { dtype: 'int64', dims: [1, T], data: BigInt64Array.from(ids.map((_, k) => BigInt(k))) },
  };
  for (let l = 0; l < L; l++) {
    for (const kv of ['key', 'value']) {
      feeds[`past_key_values.${l}.${kv}`] = { dtype: 'float32', dims: [1, H, 0, C / H], data: new Float32Array(0) };
    }
  }
  const out = await direct.run(feeds);
  const data = out.logits!.data as Float32Array;
  return ids.map((_, t) => Float64Array.from(data.subarray(t * V, (t + 1) * V)));
}

function logSoftmax(row: Float64Array, token: number): number {
  const max = Math.max(...row);
  const sum = row.reduce((s, x) => s + Math.exp(x - max), 0);
  return row[token]! - max - Math.log(sum);
}

/** The tokenizer, as transformers.js loads it from the folder (the encoding is not what is under test). */
const tf = await import('@huggingface/transformers');
tf.env.allowRemoteModels = false;
tf.env.localModelPath = path.dirname(TINY_GPT2_DIR) + path.sep;
const tokenizer = await tf.AutoTokenizer.from_pretrained(path.basename(TINY_GPT2_DIR));
const encode = (s: string) => tokenizer.encode(s, { add_special_tokens: false });

async function referenceScore(prompt: string, continuation: string): Promise<number> {
  const p = encode(prompt);
  const c = encode(continuation);
  const rows = await logitsOf([...p, ...c]);
  return c.reduce((s, tok, k) => s + logSoftmax(rows[p.length - 1 + k]!, tok), 0);
}

describe('label scoring', () => {
  it('equals the log-probabilities computed from the whole sequence, for prompts of different lengths and multi-token labels', async () => {
    const prompts = [
      'I: Average movie O: Negative\nI: Great acting O:',
      'Q: Capital of India? A:',
      'x',
      'Input: the food was lovely\nOutput: Positive\n\nInput: the service was slow\nOutput:',
    ];
    const continuations = [' Positive', ' Negative', ' Delhi', '!'];
    expect(encode(' Delhi').length).toBeGreaterThan(1); // a multi-token label is part of the check
    expect(encode('!').length).toBe(1);
    const done: number[] = [];
    const r = await lm.score(prompts, continuations, { onProgress: (n) => done.push(n) });
    expect(r.logprobs).toHaveLength(prompts.length);
    for (let i = 0; i < prompts.length; i++) {
      for (let j = 0; j < continuations.length; j++) {
        const want = await referenceScore(prompts[i]!, continuations[j]!);
        expect(r.logprobs[i]![j]!).toBeCloseTo(want, 4);
      }
    }
    expect(r.promptTokens).toEqual(prompts.map((p) => encode(p).length));
    expect(r.continuationTokens).toEqual(continuations.map(encode));
    expect(done.at(-1)).toBe(prompts.length);
  });

  it('says which prompt is too long for the model and refuses an empty continuation', async () => {
    const long = 'positive '.repeat(400);
    await expect(lm.score(['ok', long], [' a'])).rejects.toThrow(
      /prompt 2 with its longest continuation is \d+ tokens; this model reads at most 256/,
    );
    await expect(lm.score(['ok'], [''])).rejects.toThrow(/continuation 1 \(""\) has no tokens/);
  });
});

describe('generation', () => {
  it('greedy decoding with the cache picks, token by token, the argmax of a whole-sequence pass', async () => {
    const prompt = 'Q: Capital of France? A:';
    const r = await lm.generate({ prompt, maxTokens: 8, temperature: 0, topP: 1, stop: [], seed: 0 });
    const ids = encode(prompt);
    const made: number[] = [];
    for (let k = 0; k < 8; k++) {
      const rows = await logitsOf([...ids, ...made]);
      const last = rows.at(-1)!;
      const next = last.indexOf(Math.max(...last));
      if (next === config.eos_token_id) break;
      made.push(next);
    }
    expect(r.tokens).toBe(made.length);
    expect(r.text).toBe(tokenizer.decode(made, { skip_special_tokens: true }));
  });

  it('samples reproducibly for a seed, differently for another, and streams exactly the text it returns', async () => {
    const args = { prompt: 'The review is', maxTokens: 12, temperature: 1.5, topP: 0.95, stop: [], seed: 7 };
    const pieces: string[] = [];
    const a = await lm.generate(args, { onDelta: (m) => pieces.push(m.delta) });
    const b = await lm.generate(args);
    const c = await lm.generate({ ...args, seed: 8 });
    expect(b.text).toBe(a.text);
    expect(pieces.join('')).toBe(a.text);
    expect(c.text).not.toBe(a.text);
  });

  it('stops at a stop sequence and leaves it out', async () => {
    const free = await lm.generate({
      prompt: 'I: Boring O:',
      maxTokens: 20,
      temperature: 1,
      topP: 1,
      stop: [],
      seed: 3,
    });
    // A stop text taken from what the model writes unconstrained: two characters from its middle.
    const mid = Math.floor(free.text.length / 2);
    const stop = free.text.slice(mid, mid + 2);
    expect(stop.length).toBe(2);
    const r = await lm.generate({
      prompt: 'I: Boring O:',
      maxTokens: 20,
      temperature: 1,
      topP: 1,
      stop: [stop],
      seed: 3,
    });
    expect(r.finish).toBe('stop');
    expect(r.text).toBe(free.text.slice(0, free.text.indexOf(stop)));
  });

  it('picks from the top-p nucleus only', async () => {
    const { pickToken } = await import('../../../src/main/engine/text/lm.js');
    // softmax([log 0.5, log 0.3, log 0.2]) = [0.5, 0.3, 0.2]: top-p 0.6 keeps tokens 0 and 1 only.
    const logits = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.2)]);
    const rng = Rng.stream(1);
    const seen = new Set<number>();
    for (let k = 0; k < 300; k++) seen.add(pickToken(logits, 1, 0.6, rng));
    expect([...seen].sort()).toEqual([0, 1]);
    expect(pickToken(logits, 0, 1, rng)).toBe(0);
  });
});

describe('model folders', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(tmpdir(), 'fstudio-lm-'));
  });
  afterAll(() => rm(tmp, { recursive: true, force: true }));

  it('a CLIP folder is not a causal LM, and says so', async () => {
    const clip = path.join(import.meta.dirname, '../../fixtures/clip/tiny');
    const dir = path.join(tmp, 'clip');
    await cp(clip, dir, { recursive: true });
    await expect(TextLm.open(inThreadDevice(), { dir }, 'cpu')).rejects.toThrow(/no onnx\/model\.onnx/);
    await cp(path.join(TINY_GPT2_DIR, 'onnx'), path.join(dir, 'onnx'), { recursive: true });
    await expect(TextLm.open(inThreadDevice(), { dir }, 'cpu')).rejects.toThrow(
      /clip is not a causal language model \(config.json says model_type "clip"\)/,
    );
  });

  it("opens an older Xenova export's merged decoder (onnx/decoder_model_merged.onnx) the same way", async () => {
    const dir = path.join(tmp, 'legacy');
    await cp(TINY_GPT2_DIR, dir, { recursive: true });
    await rename(path.join(dir, 'onnx/model.onnx'), path.join(dir, 'onnx/decoder_model_merged.onnx'));
    const legacy = await TextLm.open(inThreadDevice(), { dir }, 'cpu');
    try {
      expect(legacy.info.onnxFile).toBe('onnx/decoder_model_merged.onnx');
      const [a, b] = await Promise.all([legacy.score(['Q: A'], [' B']), lm.score(['Q: A'], [' B'])]);
      expect(a.logprobs[0]![0]).toBeCloseTo(b.logprobs[0]![0]!, 6);
    } finally {
      await legacy.close();
    }
    await expect(TextLm.open(inThreadDevice(), { dir, dtype: 'q4' }, 'cpu')).rejects.toThrow(
      /has no onnx\/model_q4\.onnx \(found: decoder_model_merged\.onnx\)/,
    );
  });

  it('a folder without config.json is not a model folder', async () => {
    await expect(TextLm.open(inThreadDevice(), { dir: tmp }, 'cpu')).rejects.toThrow(
      /is not a model folder \(no config.json\)/,
    );
  });
});
