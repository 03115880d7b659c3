// CLIP against goldens of an independent PyTorch implementation (tests/fixtures/clip/make_clip_fixtures.py):
// token ids exactly; features, embeddings, logits and d(embedding . v)/d(pixels) to 1e-4 relative in fp32
// (max |studio - torch| <= 1e-4 * max |torch| per tensor; torch computed in float64 from the fp32 weights).
import { copyFile, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Builder } from '../graph/builder.js';
import { grad } from '../graph/grad.js';
import { emitModel } from '../graph/onnx-proto.js';
import { createSession } from '../graph/runtime.js';
import { readSafetensors, writeSafetensors } from '../weights/safetensors.js';
import { StateDictMismatchError } from '../weights/state-dict.js';
import { type StateDict } from '../weights/tensor.js';
import { CLIP_VARIANTS, buildTextTower, buildVisionTower, clipConfigFromHf, expectedStateDict, paramsFrom } from './clip.js';
import { type LoadedClip, loadClip } from './clip-load.js';
import { openAiToHf } from './clip-names.js';
import { embedImage, embedText } from './clip-run.js';
import { ClipTokenizer } from './clip-tokenizer.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../../../tests/fixtures/clip');
const TINY = path.join(FIXTURES, 'tiny');

interface Goldens {
  context_length: number;
  prompts: { text: string; ids: number[] }[];
  extra_texts: { text: string; ids: number[] }[];
  pixels: { shape: number[]; data: number[] };
  image_features: number[][];
  image_embeds: number[][];
  text_features: number[][];
  text_embeds: number[][];
  logits_per_image: number[][];
  grad: { vector: number[][]; loss: number; d_pixels: number[] };
}

let g: Goldens;
let model: LoadedClip;

beforeAll(async () => {
  g = JSON.parse(await readFile(path.join(FIXTURES, 'goldens.json'), 'utf8')) as Goldens;
  model = await loadClip(TINY);
});

/** max |a - b| / max |b| over the whole tensor. */
function relErr(actual: ArrayLike<number>, expected: readonly number[]): number {
  expect(actual.length).toBe(expected.length);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    err = Math.max(err, Math.abs(actual[i]! - expected[i]!));
    scale = Math.max(scale, Math.abs(expected[i]!));
  }
  expect(scale).toBeGreaterThan(0);
  return err / scale;
}

const pixels = () => ({ dtype: 'float32' as const, dims: g.pixels.shape, data: Float32Array.from(g.pixels.data) });

describe('CLIP tokenizer', () => {
  it('gives the token ids of the Python reference tokenizer', async () => {
    const tok = await ClipTokenizer.fromDir(TINY, g.context_length);
    for (const c of [...g.prompts, ...g.extra_texts]) expect(tok.encode(c.text), JSON.stringify(c.text)).toEqual(c.ids);
  });

  it('truncates keeping <|endoftext|> last and pads with it', async () => {
    const tok = await ClipTokenizer.fromDir(TINY, 6);
    const ids = tok.encode('a photo of a small red cat');
    expect(ids).toHaveLength(6);
    expect(ids[0]).toBe(tok.sot);
    expect(ids[5]).toBe(tok.eot);
    expect(tok.encode('cat')).toEqual([tok.sot, ...tok.encode('cat').slice(1, 3), tok.eot, tok.eot, tok.eot]);
  });
});

describe('CLIP towers vs PyTorch', () => {
  it('image features and embeddings', async () => {
    const r = await embedImage(TINY, pixels());
    expect(r.provider).toBe('cpu');
    expect(relErr(r.features.flatMap((v) => [...v]), g.image_features.flat())).toBeLessThan(1e-4);
    expect(relErr(r.embeds.flatMap((v) => [...v]), g.image_embeds.flat())).toBeLessThan(1e-4);
  });

  it('text features and embeddings, with the ids of the reference tokenizer', async () => {
    const r = await embedText(
      TINY,
      g.prompts.map((p) => p.text),
    );
    expect(r.ids).toEqual(g.prompts.map((p) => p.ids));
    expect(relErr(r.features.flatMap((v) => [...v]), g.text_features.flat())).toBeLessThan(1e-4);
    expect(relErr(r.embeds.flatMap((v) => [...v]), g.text_embeds.flat())).toBeLessThan(1e-4);
  });

  it('zero-shot logits exp(logit_scale) cos(image, text)', async () => {
    const img = await embedImage(TINY, pixels());
    const txt = await embedText(
      TINY,
      g.prompts.map((p) => p.text),
    );
    const scale = Math.exp((model.weights.get('logit_scale')!.data as Float32Array)[0]!);
    const logits = img.embeds.flatMap((a) => txt.embeds.map((t) => scale * a.reduce((s, x, k) => s + x * t[k]!, 0)));
    expect(relErr(logits, g.logits_per_image.flat())).toBeLessThan(1e-4);
  });

  it('d(sum_b normalize(image_embeds_b) . v_b)/d(pixels) matches torch autograd', async () => {
    const b = new Builder('clip-grad');
    const px = b.input('pixels', g.pixels.shape, 'float32');
    const features = buildVisionTower(b, model.config, paramsFrom(b, model.weights), px);
    const v = b.constant(g.grad.vector.flat(), 'float32', [g.grad.vector.length, g.grad.vector[0]!.length]);
    const loss = b.sum(b.mul(b.l2Normalize(features, -1), v));
    const [dpx] = grad(b, loss, [px]);
    const session = await createSession(emitModel(b.graph, { outputs: { loss, dpx: dpx! } }));
    try {
      const out = await session.run({ pixels: pixels() });
      expect(relErr(out.loss!.data as Float32Array, [g.grad.loss])).toBeLessThan(1e-4);
      expect(relErr(out.dpx!.data as Float32Array, g.grad.d_pixels)).toBeLessThan(1e-4);
    } finally {
      await session.release();
    }
  });

  it('a text tower shorter than the position table (T < max positions) still pools at end-of-text', async () => {
    // The first prompt's ids end in padding at position 14; cutting to 15 keeps its end-of-text token.
    const T = 15;
    const b = new Builder('clip-text-short');
    const ids = b.input('input_ids', [1, T], 'int64');
    const out = buildTextTower(b, model.config, paramsFrom(b, model.weights), ids);
    const session = await createSession(emitModel(b.graph, { outputs: { out } }));
    try {
      const feed = BigInt64Array.from(g.prompts[0]!.ids.slice(0, T), BigInt);
      const r = await session.run({ input_ids: { dtype: 'int64', dims: [1, T], data: feed } });
      expect(relErr(r.out!.data as Float32Array, g.text_features[0]!)).toBeLessThan(1e-4);
    } finally {
      await session.release();
    }
  });
});

describe('CLIP checkpoints', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'fstudio-clip-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('the tiny config.json gives the fixture sizes', () => {
    const c = model.config;
    expect(c.vision).toMatchObject({ hiddenSize: 40, layers: 2, heads: 4, imageSize: 24, patchSize: 8 });
    expect(c.text).toMatchObject({ hiddenSize: 32, layers: 2, heads: 4, maxPositions: 16, vocabSize: 562 });
    expect(c.projectionDim).toBe(24);
  });

  it("the variants' parameter counts are OpenAI's (MODELS.md: ViT-B/32 vision 87.85M, text 63.43M)", () => {
    const count = (variant: keyof typeof CLIP_VARIANTS, tower: 'vision' | 'text') => {
      let n = 0;
      for (const [name, shape] of expectedStateDict(CLIP_VARIANTS[variant])) {
        const isVision = name.startsWith('vision_model.') || name === 'visual_projection.weight';
        const isText = name.startsWith('text_model.') || name === 'text_projection.weight';
        if ((tower === 'vision' && isVision) || (tower === 'text' && isText)) n += shape.reduce((a, d) => a * d, 1);
      }
      return n;
    };
    expect((count('ViT-B/32', 'vision') / 1e6).toFixed(2)).toBe('87.85');
    expect((count('ViT-B/32', 'text') / 1e6).toFixed(2)).toBe('63.43');
    // open_clip's docs/model_profile.csv for the other two (not in MODELS.md).
    expect((count('ViT-B/16', 'vision') / 1e6).toFixed(2)).toBe('86.19');
    expect((count('ViT-L/14', 'vision') / 1e6).toFixed(2)).toBe('303.97');
    expect((count('ViT-L/14', 'text') / 1e6).toFixed(2)).toBe('123.65');
  });

  it('HF defaults fill a config.json that leaves fields out', () => {
    const c = clipConfigFromHf({ vision_config: { patch_size: 16 }, text_config: null });
    expect(c).toEqual(CLIP_VARIANTS['ViT-B/16']);
    expect(() => clipConfigFromHf({ text_config: { hidden_size: 30, num_attention_heads: 8 } })).toThrow(
      /hidden_size 30 is not a multiple of 8 heads/,
    );
    expect(() => clipConfigFromHf({ vision_config: { hidden_act: 'relu' } })).toThrow(/vision_config\.hidden_act/);
  });

  it('a state dict with a missing, an extra and a mis-shaped tensor is refused, naming each', async () => {
    const sd: StateDict = await readSafetensors(path.join(TINY, 'model.safetensors'));
    sd.delete('text_model.encoder.layers.1.mlp.fc2.bias');
    sd.set('text_model.encoder.layers.2.mlp.fc2.bias', { dtype: 'F32', shape: [32], data: new Uint8Array(128) });
    sd.set('visual_projection.weight', { dtype: 'F32', shape: [40, 24], data: new Uint8Array(40 * 24 * 4) });
    const bad = path.join(dir, 'bad');
    await mkdir(bad);
    await copyFile(path.join(TINY, 'config.json'), path.join(bad, 'config.json'));
    const file = path.join(bad, 'model.safetensors');
    await writeSafetensors(file, sd);
    const err = await loadClip(bad).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StateDictMismatchError);
    const e = err as StateDictMismatchError;
    expect(e.missing).toEqual(['text_model.encoder.layers.1.mlp.fc2.bias']);
    expect(e.unexpected).toEqual(['text_model.encoder.layers.2.mlp.fc2.bias']);
    expect(e.misshaped).toEqual([{ name: 'visual_projection.weight', expected: [24, 40], actual: [40, 24] }]);
    expect(e.message).toBe(
      [
        `${file} does not match the model:`,
        '  missing (1):',
        '    text_model.encoder.layers.1.mlp.fc2.bias',
        '  unexpected (1):',
        '    text_model.encoder.layers.2.mlp.fc2.bias',
        '  wrong shape (1):',
        '    visual_projection.weight: expected [24, 40], got [40, 24]',
      ].join('\n'),
    );
  });

  it("OpenAI's names map onto HF's tensor for tensor (split in_proj, transposed projections)", async () => {
    const hf = await readSafetensors(path.join(TINY, 'model.safetensors'));
    const mapped = openAiToHf(await readSafetensors(path.join(FIXTURES, 'openai-names.safetensors')));
    const params = [...hf.keys()].filter((n) => !n.endsWith('position_ids')).sort();
    expect([...mapped.keys()].sort()).toEqual(params);
    for (const n of params) {
      expect(mapped.get(n)!.shape, n).toEqual(hf.get(n)!.shape);
      expect(Buffer.from(mapped.get(n)!.data).equals(Buffer.from(hf.get(n)!.data)), n).toBe(true);
    }
  });

  it('a folder with OpenAI-named weights loads and embeds the same', async () => {
    const od = path.join(dir, 'openai');
    await mkdir(od);
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) {
      await copyFile(path.join(TINY, f), path.join(od, f));
    }
    await copyFile(path.join(FIXTURES, 'openai-names.safetensors'), path.join(od, 'model.safetensors'));
    const r = await embedImage(od, pixels());
    expect(relErr(r.embeds.flatMap((v) => [...v]), g.image_embeds.flat())).toBeLessThan(1e-4);
  });
});
