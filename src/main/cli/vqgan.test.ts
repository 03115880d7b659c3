// `fstudio vqgan encode | decode` on the tiny fixture VQGAN: the PNG's token grid is PyTorch's, and
// decoding it gives PyTorch's reconstruction quantised to 8 bits.
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors, toFloat32 } from '../engine/weights/index.js';
import { readVqganImage, vqganTargetSize } from '../studio/images-vqgan.js';
import { StudioError } from '../../shared/api.js';
import {
  parseSize,
  readTokensFile,
  registerVqganCommands,
  vqganDecode,
  vqganEncode,
  type VqganTokens,
} from './vqgan.js';

const FIX = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../tests/fixtures/vqgan');
const CKPT = path.join(FIX, 'tiny.ckpt');
const IMAGE = path.join(FIX, 'image.png');

let dataDir: string;
let goldIndices: number[];
let goldRec: Float32Array;

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'fstudio-vqgan-cli-'));
  const g = await readSafetensors(path.join(FIX, 'goldens.safetensors'));
  const idx = g.get('indices')!;
  goldIndices = Array.from(new BigInt64Array(idx.data.slice().buffer), Number);
  goldRec = toFloat32(g.get('rec')!);
});
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('fstudio vqgan', () => {
  let tokens: VqganTokens;

  it('encode: the PNG gives the token grid PyTorch computed', async () => {
    tokens = await vqganEncode(dataDir, IMAGE, { model: CKPT, provider: 'cpu' });
    expect(tokens).toMatchObject({
      format: 'fstudio-vqgan-tokens',
      model: CKPT,
      nEmbed: 16,
      factor: 2,
      width: 16,
      height: 16,
    });
    expect(tokens.tokens.flat()).toEqual(goldIndices);
    // The weights went through the safetensors cache in the data folder.
    expect(existsSync(path.join(dataDir, 'cache', 'weights'))).toBe(true);
  });

  it('decode: the PNG is the golden reconstruction, (x + 1) / 2 clamped and rounded to 8 bits', async () => {
    const { png, width, height } = await vqganDecode(dataDir, tokens, { provider: 'cpu' });
    expect([width, height]).toEqual([32, 32]);
    const img = await readVqganImage(png, 'rec.png', { multiple: 2 });
    let worst = 0;
    for (let i = 0; i < goldRec.length; i++) {
      const want = Math.round(Math.min(1, Math.max(0, (goldRec[i]! + 1) / 2)) * 255);
      const got = Math.round(((img.data[i]! + 1) / 2) * 255);
      worst = Math.max(worst, Math.abs(got - want));
    }
    expect(worst).toBeLessThanOrEqual(1); // a golden value within 1e-6 of a rounding boundary may land either side
  });

  it('through commander: encode -o tokens.json, then decode -o out.png', async () => {
    const program = new Command('fstudio').exitOverride();
    registerVqganCommands(program, () => dataDir);
    const json = path.join(dataDir, 'tokens.json');
    const out = path.join(dataDir, 'out.png');
    await program.parseAsync(['vqgan', 'encode', IMAGE, '--model', CKPT, '--provider', 'cpu', '-q', '-o', json], {
      from: 'user',
    });
    const t = await readTokensFile(json);
    expect(t.tokens.flat()).toEqual(goldIndices);
    expect(readFileSync(json, 'utf8').split('\n').length).toBeLessThan(40); // one line per token row
    await program.parseAsync(['vqgan', 'decode', json, '--provider', 'cpu', '-q', '-o', out], { from: 'user' });
    expect(readFileSync(out).subarray(1, 4).toString()).toBe('PNG');
  });

  it('graphs are built once per model, config and size, then read from <dataDir>/cache/graphs', async () => {
    const own = mkdtempSync(path.join(tmpdir(), 'fstudio-vqgan-graphs-'));
    try {
      const graphs = () =>
        (readdirSync(path.join(own, 'cache', 'graphs'), { recursive: true }) as string[]).filter((f) =>
          f.endsWith('.onnx'),
        );
      const run = async (size?: { width: number; height: number }) => {
        const lines: string[] = [];
        const t = await vqganEncode(own, IMAGE, { model: CKPT, provider: 'cpu', log: (l) => lines.push(l), size });
        expect(t.width * t.height).toBeGreaterThan(0);
        return lines.join('\n');
      };
      const first = await run();
      expect(first).toMatch(/encode graph built/);
      expect(first).toMatch(/weights loaded/);
      expect(graphs()).toHaveLength(1);
      const second = await run(); // as a second `fstudio vqgan encode` would: nothing kept in memory between
      expect(second).toMatch(/encode graph read from the cache/);
      expect(second).not.toMatch(/weights loaded/);
      expect(graphs()).toHaveLength(1);
      expect(await run({ width: 16, height: 16 })).toMatch(/encode graph built/); // another input shape
      expect(graphs()).toHaveLength(2);
      const t = await vqganEncode(own, IMAGE, { model: CKPT, provider: 'cpu' });
      const lines: string[] = [];
      await vqganDecode(own, t, { provider: 'cpu', log: (l) => lines.push(l) });
      expect(lines.join('\n')).toMatch(/decode graph built/);
      expect(graphs()).toHaveLength(3);
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  });

  it('-o refuses to replace a file without --force, and names a missing folder', async () => {
    const program = new Command('fstudio').exitOverride();
    registerVqganCommands(program, () => dataDir);
    const json = path.join(dataDir, 'existing.tokens.json');
    const png = path.join(dataDir, 'existing.png');
    writeFileSync(json, 'keep me');
    writeFileSync(png, 'keep me');
    const parse = (args: string[]) =>
      program.parseAsync(['vqgan', ...args, '--provider', 'cpu', '-q'], { from: 'user' });
    await expect(parse(['encode', IMAGE, '--model', CKPT, '-o', json])).rejects.toThrow(
      `${json} already exists. Choose another name with -o, or add --force to replace it.`,
    );
    expect(readFileSync(json, 'utf8')).toBe('keep me');
    const fresh = path.join(dataDir, 'fresh.tokens.json');
    await parse(['encode', IMAGE, '--model', CKPT, '-o', fresh]);
    await expect(parse(['decode', fresh, '-o', png])).rejects.toThrow(/existing\.png already exists.*add --force/);
    expect(readFileSync(png, 'utf8')).toBe('keep me');
    await parse(['encode', IMAGE, '--model', CKPT, '-o', json, '--force']);
    expect((await readTokensFile(json)).tokens.flat()).toEqual(goldIndices);
    await parse(['decode', json, '-o', png, '--force']);
    expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
    const nowhere = path.join(dataDir, 'no', 'such', 'dir', 'x.png');
    await expect(parse(['decode', json, '-o', nowhere])).rejects.toThrow(
      `cannot write ${nowhere}: the folder ${path.dirname(nowhere)} does not exist`,
    );
  });

  it('refuses tokens outside the codebook and malformed grids, with the reason', async () => {
    const bad = { ...tokens, tokens: tokens.tokens.map((r, i) => (i === 3 ? r.map(() => 99) : r)) };
    await expect(vqganDecode(dataDir, bad, { provider: 'cpu' })).rejects.toThrow(
      /token 99 is outside this VQGAN's codebook \(16 codes\)/,
    );
    await expect(vqganDecode(dataDir, { ...tokens, width: 15 }, { provider: 'cpu' })).rejects.toThrow(
      /not 16 rows of 15 tokens/,
    );
    const file = path.join(dataDir, 'junk.json');
    writeFileSync(file, JSON.stringify({ format: 'something-else' }));
    await expect(readTokensFile(file)).rejects.toThrow(/not a token grid from `fstudio vqgan encode`/);
  });

  it('a checkpoint that does not fit its model.yaml is a ModelMismatch error listing the tensors', async () => {
    const dir = path.join(dataDir, 'wrong-model');
    mkdirSync(dir);
    copyFileSync(CKPT, path.join(dir, 'last.ckpt'));
    const yaml = readFileSync(path.join(FIX, 'model.yaml'), 'utf8').replace('embed_dim: 8', 'embed_dim: 4');
    writeFileSync(path.join(dir, 'model.yaml'), yaml);
    const err = await vqganEncode(dataDir, IMAGE, { model: dir, provider: 'cpu' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StudioError);
    expect((err as StudioError).code).toBe('ModelMismatch');
    expect((err as Error).message).toContain(
      [
        '  wrong shape (4):',
        '    quant_conv.weight: expected [4, 8, 1, 1], got [8, 8, 1, 1]',
        '    quant_conv.bias: expected [4], got [8]',
        '    post_quant_conv.weight: expected [8, 4, 1, 1], got [8, 8, 1, 1]',
        '    quantize.embedding.weight: expected [16, 4], got [16, 8]',
      ].join('\n'),
    );
  });

  it('a catalog VQGAN that is not installed is refused with the command that installs it', async () => {
    await expect(vqganEncode(dataDir, IMAGE, { model: 'vqgan_imagenet_f16_1024' })).rejects.toThrow(
      /VQGAN "vqgan_imagenet_f16_1024" is not installed .*fstudio models pull vqgan_imagenet_f16_1024/,
    );
    await expect(vqganEncode(dataDir, IMAGE, { model: 'no-such-model' })).rejects.toThrow(
      /model "no-such-model" is not a file, a folder, or a VQGAN in the catalog \(vqgan_imagenet_f16_16384/,
    );
  });

  it('sizes: floored to the factor, shrunk to max side, or exact', () => {
    expect(vqganTargetSize(1000, 700, { multiple: 16 })).toEqual({ width: 512, height: 352 });
    expect(vqganTargetSize(100, 50, { multiple: 16 })).toEqual({ width: 96, height: 48 });
    expect(vqganTargetSize(100, 50, { multiple: 16, size: parseSize('64x32') })).toEqual({ width: 64, height: 32 });
    expect(() => vqganTargetSize(100, 50, { multiple: 16, size: parseSize('60') })).toThrow(/multiple of 16/);
    expect(() => parseSize('big')).toThrow(/WIDTHxHEIGHT/);
  });
});
