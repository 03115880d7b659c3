// `fstudio embed-text` / `embed-image` on the tiny CLIP fixture, in process: the commands registered on a
// bare program (main.ts adds them to the real one), stdout captured.
import { cp, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { closeRunners, runnerFor } from '../engine/runtime/runner.js';
import { runTask } from '../engine/task-client.js';
import { ModelManager } from '../studio/models/manager.js';
import { clipPixelBatch } from '../studio/images-clip.js';
import { makeJpeg, makePng, truncate } from '../../../tests/fixtures/images.js';
import { registerEmbedCommands } from './embed.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../../tests/fixtures/clip');
const TINY = path.join(FIXTURES, 'tiny');

let dataDir: string;
beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'fstudio-embed-'));
});
afterAll(async () => {
  await closeRunners();
  await rm(dataDir, { recursive: true, force: true });
});

let stderr = '';
async function fstudio(args: string[]): Promise<string> {
  stderr = '';
  const program = new Command('fstudio').option('--data-dir <dir>').exitOverride();
  registerEmbedCommands(program, (cmd) => (cmd.optsWithGlobals() as { dataDir: string }).dataDir);
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    out += String(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk);
    return true;
  });
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
    const out = JSON.parse(
      await fstudio(['embed-text', ...texts, '--model', TINY, '--provider', 'cpu', '--json']),
    ) as Out;
    expect(out).toMatchObject({ model: TINY, provider: 'cpu', dim: 24 });
    expect(stderr).toMatch(/^provider: cpu$/m);
    expect(out.results.map((r) => r.text)).toEqual(texts);
    out.results.forEach((r, i) =>
      r.embedding.forEach((x, k) => expect(Math.abs(x - g.text_embeds[i]![k]!)).toBeLessThan(1e-4)),
    );
  });

  it('embed-image --json: unit vectors, the same as the engine gives for the preprocessed files', async () => {
    const files = [path.join(dataDir, 'a.png'), path.join(dataDir, 'b.jpg')];
    await writeFile(files[0]!, await makePng({ width: 40, height: 30, seed: 1 }));
    await writeFile(files[1]!, await makeJpeg({ width: 30, height: 50, seed: 2 }));
    const out = JSON.parse(
      await fstudio(['embed-image', ...files, '--model', TINY, '--provider', 'cpu', '--json']),
    ) as Out;
    expect(out.results.map((r) => r.image)).toEqual(files);
    const pixels = await clipPixelBatch(files, 24);
    const want = await runTask(runnerFor('cpu'), 'clip.embed', { model: { dir: TINY }, provider: 'cpu', pixels });
    out.results.forEach((r, i) => {
      expect(Math.hypot(...r.embedding)).toBeCloseTo(1, 5);
      expect(r.embedding).toEqual(Array.from(want.embeds[i]!));
    });
  });

  it('the default --provider is auto (as for vqgan), and stderr says what it chose', async () => {
    const out = JSON.parse(await fstudio(['embed-text', 'a cat', '--model', TINY, '--json'])) as Out;
    expect(stderr).toMatch(new RegExp(`^provider: ${out.provider} \\(auto[;)]`, 'm'));
  });

  it('builds a graph once: a second embed-text reads it from <dataDir>/cache/graphs, another batch size adds one', async () => {
    const own = await mkdtemp(path.join(tmpdir(), 'fstudio-embed-graphs-'));
    try {
      const graphs = async () =>
        (await readdir(path.join(own, 'cache', 'graphs'), { recursive: true })).filter((f) => f.endsWith('.onnx'));
      const embed = async (texts: string[]) => {
        const program = new Command('fstudio').exitOverride();
        registerEmbedCommands(program, () => own);
        const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
        const err = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
        try {
          await program.parseAsync(['embed-text', ...texts, '--model', TINY, '--provider', 'cpu'], { from: 'user' });
        } finally {
          out.mockRestore();
          err.mockRestore();
        }
        const files = await graphs();
        return {
          files,
          // A rewrite goes through a temp file and a rename, so it would change the inode (a hit only
          // refreshes the mtime, for the cache's LRU order).
          inodes: await Promise.all(files.map(async (f) => (await stat(path.join(own, 'cache', 'graphs', f))).ino)),
        };
      };
      const first = await embed(['a cat', 'a dog']);
      expect(first.files).toHaveLength(1);
      expect(await embed(['a fox', 'a hen'])).toEqual(first); // same shape: the file is read, not written again
      expect((await embed(['a cat'])).files).toHaveLength(2);
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  });

  it('embed-image names a file it cannot use and says what to do', async () => {
    const notes = path.join(dataDir, 'notes.png');
    await writeFile(notes, 'not an image');
    await expect(fstudio(['embed-image', notes, '--model', TINY, '--provider', 'cpu'])).rejects.toThrow(
      `${notes} is not a PNG, JPEG, WebP or GIF file. Convert it to one of these and try again.`,
    );
    const cut = path.join(dataDir, 'cut.jpg');
    await writeFile(cut, truncate(await makeJpeg({ width: 64, height: 64 })));
    await expect(fstudio(['embed-image', cut, '--model', TINY, '--provider', 'cpu'])).rejects.toThrow(
      new RegExp(
        `^${cut.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is truncated or corrupt .*Re-export or re-download the file\\.$`,
      ),
    );
  });

  it('resolves an installed catalog id under <dataDir>/models/<id>/ and explains a missing one', async () => {
    const dir = path.join(dataDir, 'models', 'clip-tiny');
    await mkdir(path.dirname(dir), { recursive: true });
    await cp(TINY, dir, { recursive: true });
    const out = JSON.parse(await fstudio(['embed-text', 'a cat', '--model', 'clip-tiny', '--json'])) as Out;
    expect(out.model).toBe('clip-tiny');
    const models = new ModelManager(dataDir);
    expect((await models.resolve('clip', 'clip-tiny')).location).toBe(dir);
    await expect(models.resolve('clip', 'clip-vit-base-patch32')).rejects.toThrow(
      /model "clip-vit-base-patch32" is not installed .*download it on the Models page \(or: fstudio models pull clip-vit-base-patch32\)/,
    );
    await expect(models.resolve('clip', './no/such/folder')).rejects.toThrow(/no model folder "\.\/no\/such\/folder"/);
  });
});
