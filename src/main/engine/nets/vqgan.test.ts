// Parity of the studio's VQGAN graphs with an independent PyTorch implementation of taming's VQModel
// (tests/fixtures/vqgan/make_fixtures.py): the tiny checkpoint is a real torch.save Lightning file,
// loaded through the weights reader; goldens are PyTorch's outputs and autograd gradient, fp32.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { Builder, assertModel, emitModel, grad, type HostTensor } from '../graph/index.js';
import { createSession } from '../runtime/ort.js';
import {
  StateDictMismatchError,
  loadCheckpoint,
  readSafetensors,
  toFloat32,
  type StateDict,
} from '../weights/index.js';
import {
  VQGAN_PRESETS,
  type VqganConfig,
  type VqganWeights,
  decode,
  decoder,
  downsampleFactor,
  embedCode,
  encode,
  expectedStateDict,
  quantize,
  vqganConfigFromYaml,
  vqganParams,
  vqganWeightsFromStateDict,
} from './vqgan.js';

const FIX = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../tests/fixtures/vqgan');

/** max |a - b| / max |b|: the error relative to the golden tensor's scale. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / den;
}

const f32 = (t: HostTensor): Float32Array => t.data as Float32Array;

let config: VqganConfig;
let sd: StateDict;
let weights: VqganWeights;
let gold: Record<string, { dims: number[]; data: Float32Array | BigInt64Array }>;

beforeAll(async () => {
  config = vqganConfigFromYaml(readFileSync(path.join(FIX, 'model.yaml'), 'utf8'));
  sd = await loadCheckpoint(path.join(FIX, 'tiny.ckpt'));
  weights = vqganWeightsFromStateDict(config, sd);
  gold = {};
  for (const [name, t] of await readSafetensors(path.join(FIX, 'goldens.safetensors'))) {
    const data =
      t.dtype === 'I64'
        ? new BigInt64Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength))
        : toFloat32(t);
    gold[name] = { dims: t.shape, data };
  }
});

describe('VQGAN config', () => {
  it('reads taming model.yaml', () => {
    expect(config).toEqual({
      embedDim: 8,
      nEmbed: 16,
      zChannels: 8,
      resolution: 32,
      inChannels: 3,
      outCh: 3,
      ch: 32,
      chMult: [1, 2],
      numResBlocks: 1,
      attnResolutions: [16],
      doubleZ: false,
    });
    expect(downsampleFactor(config)).toBe(2);
  });

  it('rejects a yaml that is not a taming VQGAN config, naming the field', () => {
    expect(() => vqganConfigFromYaml('model:\n  target: x\n')).toThrow(/no model.params/);
    const bad = readFileSync(path.join(FIX, 'model.yaml'), 'utf8').replace('ch: 32', 'ch: thirty-two');
    expect(() => vqganConfigFromYaml(bad)).toThrow(/model\.params\.ddconfig\.ch:/);
    const odd = readFileSync(path.join(FIX, 'model.yaml'), 'utf8').replace('ch: 32', 'ch: 24');
    expect(() => vqganConfigFromYaml(odd)).toThrow(/24 channels do not split into 32 norm groups/);
  });

  it('f16 preset has the published size: decoder about 42.5M parameters, 16384 x 256 codebook', () => {
    const c = VQGAN_PRESETS.vqgan_imagenet_f16_16384;
    const sdShapes = expectedStateDict(c);
    const count = (prefix: string) =>
      [...sdShapes].filter(([n]) => n.startsWith(prefix)).reduce((s, [, sh]) => s + sh.reduce((a, d) => a * d, 1), 0);
    expect(count('decoder.') / 1e6).toBeCloseTo(42.5, 0);
    expect(sdShapes.get('quantize.embedding.weight')).toEqual([16384, 256]);
    expect(sdShapes.get('encoder.down.4.attn.1.q.weight')).toEqual([512, 512, 1, 1]);
    expect(sdShapes.has('encoder.down.3.attn.0.q.weight')).toBe(false);
    expect(sdShapes.get('decoder.up.4.attn.2.proj_out.weight')).toEqual([512, 512, 1, 1]);
    expect(sdShapes.get('encoder.down.2.block.0.nin_shortcut.weight')).toEqual([256, 128, 1, 1]);
    expect(sdShapes.has('encoder.down.4.downsample.conv.weight')).toBe(false);
    expect(sdShapes.has('decoder.up.0.upsample.conv.weight')).toBe(false);
    expect(downsampleFactor(c)).toBe(16);
  });

  it('the f16 16384 model builds at 256x256 with its gradient, and the ONNX passes the checker', () => {
    const c = VQGAN_PRESETS.vqgan_imagenet_f16_16384;
    const b = new Builder('f16');
    const p = vqganParams(b, c); // parameters as graph inputs: no 360 MB of initializers in a unit test
    const x = b.input('x', [1, 3, 256, 256]);
    const z = encode(b, p, x);
    expect(z.shape).toEqual([1, 256, 16, 16]);
    const { zq, indices } = quantize(b, p, z);
    const rec = decode(b, p, zq);
    expect(indices.shape).toEqual([1, 16, 16]);
    expect(rec.shape).toEqual([1, 3, 256, 256]);
    const [dz] = grad(b, b.mean(rec), [z]);
    assertModel(emitModel(b.graph, { outputs: { rec, dz: dz!, indices } }));
  });

  it('a full build reads exactly the parameters expectedStateDict lists', () => {
    for (const c of [config, VQGAN_PRESETS.vqgan_imagenet_f16_1024]) {
      const b = new Builder('names');
      const p = vqganParams(b, c);
      const f = downsampleFactor(c);
      const h = encode(b, p, b.input('x', [1, 3, f, 2 * f]));
      decode(b, p, quantize(b, p, h).zq);
      expect([...p.used].sort()).toEqual([...expectedStateDict(c).keys()].sort());
    }
  });
});

describe('VQGAN loading', () => {
  it('loads the Lightning .ckpt state_dict and ignores loss.* keys', () => {
    expect(sd.has('loss.discriminator.main.0.weight')).toBe(true);
    expect(weights.size).toBe(expectedStateDict(config).size);
    expect(weights.has('loss.discriminator.main.0.weight')).toBe(false);
  });

  it('says exactly which tensors are missing, unexpected and mis-shaped', () => {
    const broken: StateDict = new Map(sd);
    broken.delete('decoder.up.1.attn.0.q.bias');
    broken.delete('quant_conv.weight');
    broken.set('encoder.down.9.block.0.conv1.weight', sd.get('quant_conv.weight')!);
    const emb = sd.get('quantize.embedding.weight')!;
    broken.set('quantize.embedding.weight', { ...emb, shape: [8, 16] });
    let err: unknown;
    try {
      vqganWeightsFromStateDict(config, broken, 'tiny.ckpt');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StateDictMismatchError);
    const m = err as StateDictMismatchError;
    expect(m.missing).toEqual(['decoder.up.1.attn.0.q.bias', 'quant_conv.weight']);
    expect(m.unexpected).toEqual(['encoder.down.9.block.0.conv1.weight']);
    expect(m.misshaped).toEqual([{ name: 'quantize.embedding.weight', expected: [16, 8], actual: [8, 16] }]);
    expect(m.message).toContain('tiny.ckpt does not match the model');
    expect(m.message).not.toContain('loss.');
  });

  it('a checkpoint of another config is refused before any graph is built', () => {
    const other = { ...config, nEmbed: 32 };
    expect(() => vqganWeightsFromStateDict(other, sd)).toThrow(
      /wrong shape \(1\):\n {4}quantize\.embedding\.weight: expected \[32, 8\], got \[16, 8\]/,
    );
  });
});

describe('VQGAN parity with PyTorch (fp32, ORT CPU)', () => {
  it('encoder output, token indices and reconstruction match the goldens to 1e-4 relative', async () => {
    const b = new Builder('vqgan_roundtrip');
    const p = vqganParams(b, config, weights);
    const x = b.input('x', [1, 3, 32, 32]);
    const h = encode(b, p, x);
    const { zq, indices } = quantize(b, p, h);
    const rec = decode(b, p, zq);
    expect(h.shape).toEqual([1, 8, 16, 16]);
    expect(indices.shape).toEqual([1, 16, 16]);
    expect(rec.shape).toEqual([1, 3, 32, 32]);
    const bytes = emitModel(b.graph, { outputs: { h, indices, zq, rec } });
    assertModel(bytes);
    const s = await createSession(bytes);
    try {
      const out = await s.run({ x: { dtype: 'float32', dims: [1, 3, 32, 32], data: gold.x!.data } });
      const errs = {
        h: relErr(f32(out.h!), gold.h!.data as Float32Array),
        zq: relErr(f32(out.zq!), gold.zq!.data as Float32Array),
        rec: relErr(f32(out.rec!), gold.rec!.data as Float32Array),
      };
      console.log('VQGAN parity (max abs err / max abs golden):', errs);
      expect(errs.h).toBeLessThan(1e-4);
      expect(errs.zq).toBeLessThan(1e-4);
      expect(errs.rec).toBeLessThan(1e-4);
      expect(Array.from(out.indices!.data as BigInt64Array)).toEqual(Array.from(gold.indices!.data as BigInt64Array));
      expect(new Set(Array.from(out.indices!.data as BigInt64Array)).size).toBeGreaterThan(4);
    } finally {
      await s.release();
    }
  });

  it('a batch of two non-square (24 x 40) images matches too: no H/W swap, no batch mix-up', async () => {
    const b = new Builder('vqgan_batch');
    const p = vqganParams(b, config, weights);
    const x = b.input('x', [2, 3, 24, 40]);
    const h = encode(b, p, x);
    const { zq, indices } = quantize(b, p, h);
    const rec = decode(b, p, zq);
    expect(indices.shape).toEqual([2, 12, 20]);
    const s = await createSession(emitModel(b.graph, { outputs: { h, indices, rec } }));
    try {
      const out = await s.run({ x: { dtype: 'float32', dims: [2, 3, 24, 40], data: gold.x2!.data } });
      const errs = {
        h: relErr(f32(out.h!), gold.h2!.data as Float32Array),
        rec: relErr(f32(out.rec!), gold.rec2!.data as Float32Array),
      };
      console.log('VQGAN batch parity (max abs err / max abs golden):', errs);
      expect(errs.h).toBeLessThan(1e-4);
      expect(errs.rec).toBeLessThan(1e-4);
      expect(Array.from(out.indices!.data as BigInt64Array)).toEqual(Array.from(gold.indices2!.data as BigInt64Array));
    } finally {
      await s.release();
    }
  });

  it('decoding the golden token grid (embedCode) gives the golden reconstruction', async () => {
    const b = new Builder('vqgan_decode_tokens');
    const p = vqganParams(b, config, weights);
    const tokens = b.input('tokens', [1, 16, 16], 'int64');
    const rec = decode(b, p, embedCode(b, p, tokens));
    const s = await createSession(emitModel(b.graph, { outputs: { rec } }));
    try {
      const out = await s.run({ tokens: { dtype: 'int64', dims: [1, 16, 16], data: gold.indices!.data } });
      expect(relErr(f32(out.rec!), gold.rec!.data as Float32Array)).toBeLessThan(1e-4);
    } finally {
      await s.release();
    }
  });

  it('gradient of sum(w * decode(quantize(z))) w.r.t. z matches torch autograd (straight-through) to 1e-4', async () => {
    const b = new Builder('vqgan_grad');
    const p = vqganParams(b, config, weights);
    const z = b.input('z', [1, 8, 16, 16]);
    const w = b.input('w', [1, 3, 32, 32]);
    const rec = decode(b, p, quantize(b, p, z).zq);
    const loss = b.sum(b.mul(rec, w));
    const [dz] = grad(b, loss, [z]);
    const bytes = emitModel(b.graph, { outputs: { loss, dz: dz!, rec } });
    assertModel(bytes);
    const s = await createSession(bytes);
    try {
      const out = await s.run({
        z: { dtype: 'float32', dims: [1, 8, 16, 16], data: gold.h!.data },
        w: { dtype: 'float32', dims: [1, 3, 32, 32], data: gold.w!.data },
      });
      const err = relErr(f32(out.dz!), gold.grad_z!.data as Float32Array);
      console.log('VQGAN decoder gradient (max abs err / max abs golden):', err);
      expect(err).toBeLessThan(1e-4);
      expect(relErr(f32(out.rec!), gold.rec!.data as Float32Array)).toBeLessThan(1e-4);
    } finally {
      await s.release();
    }
  });

  it('the decoder alone on a non-square latent has the right shape (f = 2)', () => {
    const b = new Builder('shape');
    const p = vqganParams(b, config);
    expect(decoder(b, p, b.input('z', [2, 8, 3, 5])).shape).toEqual([2, 3, 6, 10]);
    expect(() => encode(b, p, b.input('x', [1, 3, 31, 32]))).toThrow(/not a multiple of 2/);
  });
});
