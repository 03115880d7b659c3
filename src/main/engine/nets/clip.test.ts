// CLIP against goldens of an independent PyTorch implementation (tests/fixtures/clip/make_clip_fixtures.py):
// token ids exactly; features, embeddings, logits and d(embedding . v)/d(pixels) to 1e-4 relative in fp32
// (max |studio - torch| <= 1e-4 * max |torch| per tensor; torch computed in float64 from the fp32 weights).
import { copyFile, cp, mkdir, mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Builder } from '../graph/builder.js';
import { grad } from '../graph/grad.js';
import { emitModel } from '../graph/onnx-proto.js';
import { type HostTensor } from '../graph/ir.js';
import { createSession } from '../runtime/ort.js';
import { DeviceRunner } from '../runtime/runner.js';
import { inThreadDevice } from '../runtime/worker-core.js';
import { runTask } from '../task-client.js';
import { readSafetensors, writeSafetensors } from '../weights/safetensors.js';
import { StateDictMismatchError } from '../weights/state-dict.js';
import { type StateDict } from '../weights/tensor.js';
import {
  CLIP_VARIANTS,
  buildTextTower,
  buildVisionTower,
  clipConfigFromHf,
  expectedStateDict,
  paramsFrom,
} from './clip.js';
import { type LoadedClip, loadClip } from './clip-load.js';
import { openAiToHf } from './clip-names.js';
import { ClipEmbedder } from './clip-run.js';
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
  text_features_eos_a: { eos_token_id: number; features: number[][] };
  grad: { vector: number[][]; loss: number; d_pixels: number[] };
}

let g: Goldens;
let model: LoadedClip;

// Embeddings as the app computes them: the `clip.embed` task in a compute worker.
const runner = new DeviceRunner('clip-test');
afterAll(() => runner.close());
const embedImage = (dir: string, pixels: HostTensor) =>
  runTask(runner, 'clip.embed', { model: { dir }, provider: 'cpu', pixels });
const embedText = (dir: string, texts: string[], o: { cacheFile?: string } = {}) =>
  runTask(runner, 'clip.embed', { model: { dir, ...o }, provider: 'cpu', texts });

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

  it("gives the same ids with transformers' CLIPConverter pre-tokenizer (no special-token alternatives, use_regex)", async () => {
    // Hugging Face's tokenizer.json files differ in these details by converter version.
    const json = JSON.parse(await readFile(path.join(TINY, 'tokenizer.json'), 'utf8')) as {
      pre_tokenizer: { pretokenizers: [{ pattern: { Regex: string } }, { use_regex: boolean }] };
    };
    const [split, byteLevel] = json.pre_tokenizer.pretokenizers;
    split.pattern.Regex = split.pattern.Regex.replace('<\\|startoftext\\|>|<\\|endoftext\\|>|', '');
    expect(split.pattern.Regex.startsWith("'s|")).toBe(true);
    byteLevel.use_regex = true;
    const tok = new ClipTokenizer(json, {}, g.context_length);
    for (const c of [...g.prompts, ...g.extra_texts]) expect(tok.encode(c.text), JSON.stringify(c.text)).toEqual(c.ids);
  });

  it('truncates keeping <|endoftext|> last and pads with it', async () => {
    const tok = await ClipTokenizer.fromDir(TINY, 6);
    const full = g.prompts[0]!.ids; // 'a photo of a cat in a café' at context 16: 12 tokens, then padding
    expect(tok.sot).toBe(full[0]);
    expect(tok.eot).toBe(full.at(-1));
    expect(tok.encode(g.prompts[0]!.text)).toEqual([...full.slice(0, 5), tok.eot]);
    const wide = await ClipTokenizer.fromDir(TINY, 20);
    expect(wide.encode(g.prompts[0]!.text)).toEqual([...full, tok.eot, tok.eot, tok.eot, tok.eot]);
    expect(() => new ClipTokenizer({}, {}, 1)).toThrow(/context length 1/);
  });
});

describe('CLIP towers vs PyTorch', () => {
  it('image features and embeddings', async () => {
    const r = await embedImage(TINY, pixels());
    expect(r.provider).toBe('cpu');
    expect(
      relErr(
        r.features.flatMap((v) => [...v]),
        g.image_features.flat(),
      ),
    ).toBeLessThan(1e-4);
    expect(
      relErr(
        r.embeds.flatMap((v) => [...v]),
        g.image_embeds.flat(),
      ),
    ).toBeLessThan(1e-4);
  });

  it('text features and embeddings, with the ids of the reference tokenizer', async () => {
    const r = await embedText(
      TINY,
      g.prompts.map((p) => p.text),
    );
    expect(r.ids).toEqual(g.prompts.map((p) => p.ids));
    expect(
      relErr(
        r.features.flatMap((v) => [...v]),
        g.text_features.flat(),
      ),
    ).toBeLessThan(1e-4);
    expect(
      relErr(
        r.embeds.flatMap((v) => [...v]),
        g.text_embeds.flat(),
      ),
    ).toBeLessThan(1e-4);
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

  it('ClipEmbedder keeps one session per batch size; a batch of one gives its row of the batch of two', async () => {
    const e = await ClipEmbedder.open(inThreadDevice(), TINY);
    try {
      const px = pixels();
      const per = px.data.length / 2;
      const second = { dtype: 'float32' as const, dims: [1, ...px.dims.slice(1)], data: px.data.slice(per) };
      const one = await e.embedImages(second);
      expect(relErr(one.embeds[0]!, g.image_embeds[1]!)).toBeLessThan(1e-4);
      const texts = g.prompts.map((p) => p.text);
      const [a, b] = [await e.embedTexts(texts), await e.embedTexts(texts)];
      expect(b.embeds).toEqual(a.embeds);
      expect(
        relErr(
          a.embeds.flatMap((v) => [...v]),
          g.text_embeds.flat(),
        ),
      ).toBeLessThan(1e-4);
    } finally {
      await e.close();
    }
    const textOnly = await ClipEmbedder.open(inThreadDevice(), TINY, { towers: ['text'] });
    await expect(textOnly.embedImages(pixels())).rejects.toThrow(/opened without the vision tower/);
    expect((await textOnly.load()).weights.has('vision_model.pre_layrnorm.weight')).toBe(false);
    await textOnly.close();
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

  it('a config whose eos_token_id is not 2 pools at the first position holding it', async () => {
    const { eos_token_id, features } = g.text_features_eos_a;
    const config = { ...model.config, text: { ...model.config.text, eosTokenId: eos_token_id } };
    const b = new Builder('clip-text-eos');
    const T = g.context_length;
    const ids = b.input('input_ids', [g.prompts.length, T], 'int64');
    const out = buildTextTower(b, config, paramsFrom(b, model.weights), ids);
    const session = await createSession(emitModel(b.graph, { outputs: { out } }));
    try {
      const feed = BigInt64Array.from(
        g.prompts.flatMap((p) => p.ids),
        BigInt,
      );
      const r = await session.run({ input_ids: { dtype: 'int64', dims: [g.prompts.length, T], data: feed } });
      expect(relErr(r.out!.data as Float32Array, features.flat())).toBeLessThan(1e-4);
      expect(relErr(r.out!.data as Float32Array, g.text_features.flat())).toBeGreaterThan(0.1); // not the EOT pooling
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

  it("the variants' parameter counts are OpenAI's (ViT-B/32: vision 87.85M, text 63.43M)", () => {
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
    // The other two as open_clip's docs/model_profile.csv gives them.
    expect((count('ViT-B/16', 'vision') / 1e6).toFixed(2)).toBe('86.19');
    expect((count('ViT-L/14', 'vision') / 1e6).toFixed(2)).toBe('303.97');
    expect((count('ViT-L/14', 'text') / 1e6).toFixed(2)).toBe('123.65');
  });

  it('HF defaults fill a config.json that leaves fields out', () => {
    const c = clipConfigFromHf({ vision_config: { patch_size: 16, image_size: null }, text_config: null });
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

  it("the catalog's layout (pytorch_model.bin, no tokenizer_config.json) loads through the safetensors cache", async () => {
    const bin = path.join(dir, 'bin');
    await mkdir(bin);
    for (const f of ['config.json', 'tokenizer.json']) await copyFile(path.join(TINY, f), path.join(bin, f));
    await copyFile(path.join(FIXTURES, 'pytorch_model.bin'), path.join(bin, 'pytorch_model.bin'));
    const cacheFile = path.join(dir, 'cache', 'bin.safetensors');
    await mkdir(path.dirname(cacheFile));
    const texts = g.prompts.map((p) => p.text);
    const first = await embedText(bin, texts, { cacheFile });
    expect(
      relErr(
        first.embeds.flatMap((v) => [...v]),
        g.text_embeds.flat(),
      ),
    ).toBeLessThan(1e-4);
    expect(first.ids).toEqual(g.prompts.map((p) => p.ids));
    const written = (await stat(cacheFile)).mtimeMs;
    const again = await loadClip(bin, { cacheFile });
    expect((await stat(cacheFile)).mtimeMs).toBe(written); // read from the cache, not converted again
    expect(again.weights.size).toBe(expectedStateDict(again.config).size);
  });

  it('with a graph cache folder, a tower is built once; a new embedder reads it without reading weights', async () => {
    const model = path.join(dir, 'graph-cache-model');
    await cp(TINY, model, { recursive: true });
    const graphs = path.join(dir, 'graphs');
    const files = async () => (await readdir(graphs, { recursive: true })).filter((f) => f.endsWith('.onnx'));
    const texts = g.prompts.map((p) => p.text);
    const embedWith = async (list: string[]) => {
      const e = await ClipEmbedder.open(inThreadDevice(), model, { towers: ['text'], graphCacheDir: graphs });
      try {
        const r = await e.embedTexts(list);
        return { r, graphs: { ...e.graphs }, weightsLoaded: e.weightsLoaded };
      } finally {
        await e.close();
      }
    };

    const first = await embedWith(texts);
    expect(first.graphs).toEqual({ built: 1, cached: 0 });
    expect(await files()).toHaveLength(1);
    const second = await embedWith(texts); // a fresh embedder, as a second `fstudio embed-text` would be
    expect(second.graphs).toEqual({ built: 0, cached: 1 });
    expect(second.weightsLoaded).toBe(false);
    expect(second.r.embeds).toEqual(first.r.embeds);
    expect(
      relErr(
        second.r.embeds.flatMap((v) => [...v]),
        g.text_embeds.flat(),
      ),
    ).toBeLessThan(1e-4);
    expect(await files()).toHaveLength(1);

    // Another batch size (input shape), another config, or a changed weights file: built again.
    expect((await embedWith(texts.slice(0, 1))).graphs).toEqual({ built: 1, cached: 0 });
    const config = JSON.parse(await readFile(path.join(model, 'config.json'), 'utf8')) as {
      text_config: { layer_norm_eps: number };
    };
    config.text_config.layer_norm_eps = 1e-6;
    await writeFile(path.join(model, 'config.json'), JSON.stringify(config));
    expect((await embedWith(texts)).graphs).toEqual({ built: 1, cached: 0 });
    await utimes(path.join(model, 'model.safetensors'), new Date(2001, 0, 1), new Date(2001, 0, 1));
    expect((await embedWith(texts)).graphs).toEqual({ built: 1, cached: 0 });
    expect(await files()).toHaveLength(4);
    expect((await embedWith(texts)).graphs).toEqual({ built: 0, cached: 1 });
    // The weights are written once per weights file identity (two: before and after the utimes), and
    // every graph of that identity, whatever its batch size or config, references them.
    const all = (await readdir(graphs, { recursive: true })) as string[];
    const bins = all.filter((f) => f.endsWith('weights.bin'));
    expect(bins).toHaveLength(2);
    const binBytes = (await stat(path.join(graphs, bins[0]!))).size;
    for (const f of await files()) expect((await stat(path.join(graphs, f))).size).toBeLessThan(binBytes / 4);
  });

  it('a folder with OpenAI-named weights loads and embeds the same', async () => {
    const od = path.join(dir, 'openai');
    await mkdir(od);
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) {
      await copyFile(path.join(TINY, f), path.join(od, f));
    }
    await copyFile(path.join(FIXTURES, 'openai-names.safetensors'), path.join(od, 'model.safetensors'));
    const r = await embedImage(od, pixels());
    expect(
      relErr(
        r.embeds.flatMap((v) => [...v]),
        g.image_embeds.flat(),
      ),
    ).toBeLessThan(1e-4);
  });
});
