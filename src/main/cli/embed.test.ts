// `fstudio embed-text` / `embed-image` on the tiny CLIP fixture, in process: the commands registered on a
// bare program (main.ts adds them to the real one), stdout captured.
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { embedImage } from '../engine/nets/clip-run.js';
import { clipPixelBatch } from '../studio/images-clip.js';
import { makeJpeg, makePng } from '../../../tests/fixtures/images.js';
import { registerEmbedCommands, resolveModel } from './embed.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../../tests/fixtures/clip');
const TINY = path.join(FIXTURES, 'tiny');

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'fstudio-embed-'));
});
afterAll(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

async function fstudio(args: string[]): Promise<string> {
  const program = new Command('fstudio').option('--data-dir <dir>').exitOverride();
  registerEmbedCommands(program, (cmd) => (cmd.optsWithGlobals() as { dataDir: string }).dataDir);
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    await program.parseAsync(['node', 'fstudio', '--data-dir', dataDir, ...args]);
  } finally {
    spy.mockRestore();
    err.mockRestore();
  }
  return out;
}

interface Out {
  model: string;
  provider: string;
  dim: number;
  results: { text?: string; image?: string; embedding: number[] }[];
}

describe('fstudio embed-text / embed-image', () => {
  it('embed-text --json gives the reference embeddings', async () => {
    const g = JSON.parse(await readFile(path.join(FIXTURES, 'goldens.json'), 'utf8')) as {
      prompts: { text: string }[];
      text_embeds: number[][];
    };
    const texts = g.prompts.map((p) => p.text);
    const out = JSON.parse(await fstudio(['embed-text', ...texts, '--model', TINY, '--json'])) as Out;
    expect(out).toMatchObject({ model: TINY, provider: 'cpu', dim: 24 });
    expect(out.results.map((r) => r.text)).toEqual(texts);
    out.results.forEach((r, i) =>
      r.embedding.forEach((x, k) => expect(Math.abs(x - g.text_embeds[i]![k]!)).toBeLessThan(1e-4)),
    );
  });

  it('embed-image --json: unit vectors, the same as the engine gives for the preprocessed files', async () => {
    const files = [path.join(dataDir, 'a.png'), path.join(dataDir, 'b.jpg')];
    await writeFile(files[0]!, await makePng({ width: 40, height: 30, seed: 1 }));
    await writeFile(files[1]!, await makeJpeg({ width: 30, height: 50, seed: 2 }));
    const out = JSON.parse(await fstudio(['embed-image', ...files, '--model', TINY, '--json'])) as Out;
    expect(out.results.map((r) => r.image)).toEqual(files);
    const want = await embedImage(TINY, await clipPixelBatch(files, 24));
    out.results.forEach((r, i) => {
      expect(Math.hypot(...r.embedding)).toBeCloseTo(1, 5);
      expect(r.embedding).toEqual(Array.from(want.embeds[i]!));
    });
  });

  it('resolves an installed catalog id under <dataDir>/models/<id>/ and explains a missing one', async () => {
    const dir = path.join(dataDir, 'models', 'clip-tiny');
    await mkdir(path.dirname(dir), { recursive: true });
    await cp(TINY, dir, { recursive: true });
    const out = JSON.parse(await fstudio(['embed-text', 'a cat', '--model', 'clip-tiny', '--json'])) as Out;
    expect(out.model).toBe('clip-tiny');
    expect(resolveModel('clip-tiny', dataDir).dir).toBe(dir);
    expect(() => resolveModel('clip-vit-base-patch32', dataDir)).toThrow(
      /model "clip-vit-base-patch32" is not installed .* run `fstudio models pull clip-vit-base-patch32`/,
    );
    expect(() => resolveModel('./no/such/folder', dataDir)).toThrow(/no model folder "\.\/no\/such\/folder"/);
  });
});
