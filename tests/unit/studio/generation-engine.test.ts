// Generation end to end with the real VQGAN+CLIP task and the tiny fixture models: through the studio (a
// run to the gallery, reproducible byte for byte, a fork that starts from the parent's picture at that
// step) and through `fstudio generate` (nerdyrodent's options, the PNG written, the run in the history).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { apiCalls, type GenerateSettings } from '../../../src/shared/api.js';
import { openStudio, type StudioService } from '../../../src/main/studio/index.js';
import { readTextChunks } from '../../../src/main/studio/png-chunks.js';
import { withTinyModels } from '../../fixtures/tiny-models.js';
import { fstudio } from '../cli/fstudio.js';

const root = mkdtempSync(path.join(tmpdir(), 'fstudio-gen-engine-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function dataFolder(name: string): string {
  const dir = path.join(root, name);
  return withTinyModels(dir);
}

const settings = (o: Partial<GenerateSettings> = {}): GenerateSettings => ({
  prompts: 'a red fox in the snow',
  width: 32,
  height: 32,
  steps: 8,
  seed: 11,
  cuts: 4,
  snapshotEvery: 4,
  clip: 'clip-tiny',
  vqgan: 'vqgan-tiny',
  provider: 'cpu',
  ...o,
});

/** Queues a run and waits for it to end; returns its detail. */
async function runToEnd(s: StudioService, args: unknown) {
  const { runId } = await s.handlers.generate(apiCalls.generate.args.parse(args));
  for (let i = 0; i < 600; i++) {
    const d = s.generation.detail(runId);
    if (d.state === 'done' || d.state === 'failed' || d.state === 'cancelled') return d;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`run ${runId} did not end`);
}

async function pixels(s: StudioService, imageId: number): Promise<Buffer> {
  const item = await s.handlers.getItem({ id: imageId });
  return sharp((await s.assetFile(item.item.sha256, 'file'))!.path)
    .raw()
    .toBuffer();
}

describe('generation with the real engine (tiny models)', () => {
  it('runs to a gallery image; the same seed gives the same picture; a fork starts from the parent at that step', async () => {
    const s = await openStudio({ dataDir: dataFolder('studio') });
    try {
      const a = await runToEnd(s, { settings: settings() });
      expect(a).toMatchObject({ state: 'done', step: 8, error: null });
      expect(a.snapshots.map((x) => x.step)).toEqual([4, 8]);
      expect(a.losses.map((l) => l.step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]); // step 0 is the start
      expect(a.prompts).toEqual([expect.objectContaining({ text: 'a red fox in the snow', kind: 'text' })]);
      const again = await runToEnd(s, { settings: settings() });
      expect((await pixels(s, again.imageId!)).equals(await pixels(s, a.imageId!))).toBe(true);
      const other = await runToEnd(s, { settings: settings({ seed: 12 }) });
      expect((await pixels(s, other.imageId!)).equals(await pixels(s, a.imageId!))).toBe(false);

      // The picture of step 4: a 4-step run with the same seed, and a fork of run a at step 4 with no steps.
      const four = await runToEnd(s, { settings: settings({ steps: 4 }) });
      const fork = await runToEnd(s, {
        settings: settings({ steps: 4, prompts: 'a blue fox' }),
        from: { runId: a.runId, step: 4 },
      });
      expect(fork).toMatchObject({ state: 'done', parent: { runId: a.runId, step: 4 } });
      expect((await pixels(s, fork.imageId!)).equals(await pixels(s, four.imageId!))).toBe(true);
    } finally {
      await s.close();
    }
  }, 120_000);

  it('a warm-up loads the step graph so the next run starts at once, and records nothing', async () => {
    const s = await openStudio({ dataDir: dataFolder('warm') });
    try {
      const settings0 = apiCalls.generateWarmup.args.parse({ settings: settings({ steps: 4 }) }).settings;
      expect(await s.handlers.generateWarmup({ settings: settings0 })).toMatchObject({ warmed: true });
      expect(s.generation.list()).toEqual([]);
      expect((await s.handlers.galleryQuery(apiCalls.galleryQuery.args.parse({}))).items).toEqual([]);
      // The run after it: no "loading the step graph" in its messages (the graph is already loaded).
      const messages: string[] = [];
      s.on('jobProgress', (p) => messages.push(p.message));
      const run = await runToEnd(s, { settings: settings({ steps: 4 }) });
      expect(run.state).toBe('done');
      expect(messages.join('\n')).not.toMatch(/loading the step graph/);
    } finally {
      await s.close();
    }
  }, 120_000);

  it('fstudio generate writes the PNG with its settings and records the run; -i 0 writes the starting image', async () => {
    const dir = dataFolder('cli');
    const out = path.join(dir, 'fox.png');
    const clip = path.join(dir, 'models/clip-tiny');
    const vqgan = path.join(dir, 'models/vqgan-tiny');
    const r = await fstudio([
      'generate',
      '-p',
      'a red fox:1 | fog:-0.5',
      '-s',
      '32',
      '32',
      '-i',
      '6',
      '-sd',
      '7',
      '-cuts',
      '4',
      '-se',
      '3',
      '--clip',
      clip,
      '--vqgan',
      vqgan,
      '--provider',
      'cpu',
      '-o',
      out,
      '--data-dir',
      dir,
    ]);
    expect(r.stderr).toMatch(/Wrote 32x32 to .*fox\.png \(run \d+, seed 7; in the Gallery as item \d+\)\./);
    expect(r.code).toBe(0);
    const chunks = readTextChunks(readFileSync(out));
    expect(chunks.find((c) => c.keyword === 'parameters')!.text).toMatch(
      /^a red fox:1 \| fog:-0\.5\nSteps: 6, Seed: 7, Size: 32x32, Cutouts: 4/,
    );
    const list = await fstudio(['gallery', 'list', '--kind', 'generate', '--json', '--data-dir', dir]);
    expect(JSON.parse(list.stdout).items).toHaveLength(1);

    const start = path.join(dir, 'start.png');
    const zero = await fstudio([
      'generate',
      '-p',
      'a fox',
      '-s',
      '32',
      '32',
      '-i',
      '0',
      '-sd',
      '7',
      '--clip',
      clip,
      '--vqgan',
      vqgan,
      '--provider',
      'cpu',
      '-o',
      start,
      '--data-dir',
      dir,
    ]);
    expect(zero.code).toBe(0);
    expect((await sharp(start).metadata()).width).toBe(32);

    const bad = await fstudio([
      'generate',
      '-p',
      ' ',
      '--clip',
      clip,
      '--vqgan',
      vqgan,
      '-o',
      path.join(dir, 'x.png'),
      '--data-dir',
      dir,
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/Write a prompt/);
  }, 120_000);
});
