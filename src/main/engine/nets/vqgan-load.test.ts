// Loading the tiny VQGAN from the places a user keeps it: a checkpoint with model.yaml beside it, a
// model folder (the model manager's layout), a checkpoint without its yaml, and the safetensors cache.
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../weights/index.js';
import { VQGAN_PRESETS, expectedStateDict, vqganConfigFromYaml, vqganWeightsFromStateDict } from './vqgan.js';
import { findVqganFiles, inferVqganConfig, loadVqgan } from './vqgan-load.js';

const FIX = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../tests/fixtures/vqgan');
const CKPT = path.join(FIX, 'tiny.ckpt');
const YAML = readFileSync(path.join(FIX, 'model.yaml'), 'utf8');

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'fstudio-vqgan-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Bit-identical typed arrays (vitest's deep equality walks 700k floats one by one). */
function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** A folder under tmp holding copies of files (null: the tiny model.yaml). */
function folder(name: string, files: Record<string, string | null>): string {
  const dir = path.join(tmp, name);
  for (const [f, src] of Object.entries(files)) {
    const p = path.join(dir, f);
    mkdirSync(path.dirname(p), { recursive: true });
    if (src === null) writeFileSync(p, YAML);
    else copyFileSync(src, p);
  }
  return dir;
}

describe('loadVqgan', () => {
  it('a checkpoint file with model.yaml beside it: config from the yaml, same weights as the direct load', async () => {
    const m = await loadVqgan(CKPT);
    expect(m.files).toEqual({ checkpoint: CKPT, config: path.join(FIX, 'model.yaml') });
    expect(m.config).toEqual(vqganConfigFromYaml(YAML));
    const direct = vqganWeightsFromStateDict(m.config, await loadCheckpoint(CKPT));
    expect([...m.weights.keys()].sort()).toEqual([...direct.keys()].sort());
    for (const [n, t] of direct) expect(sameBytes(m.weights.get(n)!.data, t.data), n).toBe(true);
  });

  it("a model folder in the manager's layout (last.ckpt + model.yaml), through the safetensors cache", async () => {
    const dir = folder('managed', { 'last.ckpt': CKPT, 'model.yaml': null });
    expect(await findVqganFiles(dir)).toEqual({
      checkpoint: path.join(dir, 'last.ckpt'),
      config: path.join(dir, 'model.yaml'),
    });
    const cacheFile = path.join(tmp, 'cache', 'vqgan.safetensors');
    mkdirSync(path.dirname(cacheFile), { recursive: true });
    const first = await loadVqgan(dir, { cacheFile });
    const second = await loadVqgan(dir, { cacheFile });
    expect(second.fromCache).toBe(true);
    for (const [n, t] of first.weights) expect(sameBytes(second.weights.get(n)!.data, t.data), n).toBe(true);
    expect(first.weights.size).toBe(expectedStateDict(first.config).size);
  });

  it('without a yaml the config is inferred from the shapes (and equals the tiny model.yaml)', async () => {
    const dir = folder('bare', { 'last.ckpt': CKPT });
    const m = await loadVqgan(dir);
    expect(m.configFrom).toBe('inferred from the checkpoint shapes');
    expect(m.config).toEqual(vqganConfigFromYaml(YAML));
    expect(inferVqganConfig(expectedStateDict(VQGAN_PRESETS.vqgan_imagenet_f16_16384))).toEqual(
      VQGAN_PRESETS.vqgan_imagenet_f16_16384,
    );
  });

  it('a yaml that does not match the checkpoint names the file and the mis-shaped tensors', async () => {
    const dir = path.join(tmp, 'wrong');
    mkdirSync(dir, { recursive: true });
    copyFileSync(CKPT, path.join(dir, 'last.ckpt'));
    writeFileSync(path.join(dir, 'model.yaml'), YAML.replace('n_embed: 16', 'n_embed: 32'));
    await expect(loadVqgan(dir)).rejects.toThrow(
      /last\.ckpt \(with .*model\.yaml\) does not match the model:\n {2}wrong shape \(1\):\n {4}quantize\.embedding\.weight: expected \[32, 8\], got \[16, 8\]$/,
    );
  });

  it('says what it looked for when a folder has no checkpoint', async () => {
    const dir = path.join(tmp, 'empty');
    mkdirSync(dir, { recursive: true });
    await expect(loadVqgan(dir)).rejects.toThrow(/no VQGAN checkpoint \(looked for last\.ckpt/);
    await expect(loadVqgan(path.join(tmp, 'nope.ckpt'))).rejects.toThrow(/no such file or folder/);
  });
});
