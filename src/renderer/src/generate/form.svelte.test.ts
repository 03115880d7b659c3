// The Generate form without a browser: prompt rows to the `text:weight:stop|…^…` string and back, the
// settings a form makes (what a fork keeps), the problems it names, and a remix of a stored spec.
import { describe, expect, it } from 'vitest';
import { GenerateSettings } from '../../../shared/api.js';
import { lossGeometry, thin, type LossPoint } from './chart.js';
import { applySpec, defaultForm, fork, problems, toSettings, useImageSettings } from './form.svelte.js';
import { missingModels } from './needs.js';
import { formatPrompts, parsePrompt, parsePrompts, textProblem } from './prompts.js';
import type { ModelInfo } from '../../../shared/api.js';

const strip = (rows: { text: string; weight: number; stop: number | null }[][]) =>
  rows.map((r) => r.map(({ text, weight, stop }) => ({ text, weight, stop })));

describe('prompts', () => {
  it('parses text:weight:stop, prompts joined by | and story phrases by ^', () => {
    expect(strip(parsePrompts('a cosmic room:1.5|seismic surprises:-0.5:-0.2^a quiet garden'))).toEqual([
      [
        { text: 'a cosmic room', weight: 1.5, stop: null },
        { text: 'seismic surprises', weight: -0.5, stop: -0.2 },
      ],
      [{ text: 'a quiet garden', weight: 1, stop: null }],
    ]);
  });

  it('keeps colons that are not numbers in the text, and reads -inf as no stop', () => {
    expect(parsePrompt('a map: the old town')).toMatchObject({ text: 'a map: the old town', weight: 1, stop: null });
    expect(parsePrompt('a cat:2:-inf')).toMatchObject({ text: 'a cat', weight: 2, stop: null });
    expect(parsePrompt('16:9:1:-inf')).toMatchObject({ text: '16:9', weight: 1, stop: null });
  });

  it('a text that ends like a weight is written with its weight and stop, so it reads back the same', () => {
    const rows = [[{ key: 1, text: 'ratio 16:9', weight: 1, stop: null }]];
    expect(formatPrompts(rows)).toBe('ratio 16:9:1:-inf');
    expect(strip(parsePrompts(formatPrompts(rows)))).toEqual(strip(rows));
  });

  it('writes the weight only when it is not 1 and the stop only when there is one; empty rows go', () => {
    const rows = parsePrompts('a:1|b:0.5|c:1:-0.1^^d');
    rows[0]!.push({ key: 99, text: '  ', weight: 3, stop: null });
    expect(formatPrompts(rows)).toBe('a|b:0.5|c:1:-0.1^d');
    expect(formatPrompts(parsePrompts(formatPrompts(rows)))).toBe('a|b:0.5|c:1:-0.1^d');
  });

  it('an empty string is one empty row, and separators in a text are named', () => {
    expect(strip(parsePrompts(''))).toEqual([[{ text: '', weight: 1, stop: null }]]);
    expect(textProblem('a|b')).toContain('prompts');
    expect(textProblem('a^b')).toContain('story');
    expect(textProblem('a map: the old town')).toBeNull();
  });
});

describe('the form', () => {
  it('makes settings the schema accepts, with the defaults of the schema', () => {
    const f = defaultForm();
    f.phrases[0]![0]!.text = 'a cosmic room of seismic surprises';
    const s = toSettings(f);
    expect(GenerateSettings.safeParse(s).success).toBe(true);
    expect(s).toMatchObject({
      prompts: 'a cosmic room of seismic surprises',
      width: 256,
      height: 256,
      steps: 300,
      cuts: 32,
    });
    expect(s.seed).toBeUndefined(); // random unless locked
    expect(s.clip).toBeUndefined(); // the catalog's default
    f.seedLocked = true;
    f.seed = 42;
    f.clip = 'tiny-clip';
    f.init = 'gradient';
    f.decay = true;
    expect(toSettings(f)).toMatchObject({
      seed: 42,
      clip: 'tiny-clip',
      init: { kind: 'noise', style: 'gradient' },
      stepDecay: { every: 100, factor: 0.5 },
    });
  });

  it('names what to fix: no prompt, a separator in a text, a size out of range, an empty number', () => {
    const f = defaultForm();
    expect(problems(f).map((p) => p.field)).toEqual(['prompt-0-0']);
    f.phrases[0]![0]!.text = 'a | b';
    f.width = 8;
    f.steps = null as unknown as number; // an emptied number field (bind:value gives null)
    const found = problems(f);
    expect(found.map((p) => p.field)).toEqual(['prompt-0-0', 'width', 'steps']);
    expect(found[1]!.message).toBe('Width: must be at least 16.');
    expect(found[2]!.message).toBe('Steps: needs a number.');
  });

  it('a remix takes the spec, locks its seed, and keeps only pictures that are in the data folder', () => {
    const sha = 'a'.repeat(64);
    const f = defaultForm();
    const dropped = applySpec(
      f,
      {
        prompts: 'a red room:2',
        width: 32,
        height: 48,
        steps: 60,
        seed: 7,
        cuts: 4,
        clip: { id: 'tiny-clip', files: {} },
        vqgan: 'tiny-vqgan',
        imagePrompts: [{ image: { sha256: sha }, weight: 0.5 }, { image: { name: 'x.png' } }],
        init: { kind: 'noise', style: 'pixels' },
        optimizer: 'adamw',
        provider: 'cpu',
        unknownKey: true,
      },
      (s) => `/thumb/${s}`,
    );
    expect(dropped).toHaveLength(1);
    expect(f).toMatchObject({ width: 32, height: 48, steps: 60, seed: 7, seedLocked: true, cuts: 4 });
    expect(f).toMatchObject({
      clip: 'tiny-clip',
      vqgan: 'tiny-vqgan',
      init: 'pixels',
      optimizer: 'adamw',
      provider: 'cpu',
    });
    expect(f.imagePrompts).toHaveLength(1);
    expect(f.imagePrompts[0]).toMatchObject({ image: { sha256: sha }, weight: 0.5, url: `/thumb/${sha}` });
    expect(toSettings(f).prompts).toBe('a red room:2');
  });

  it('a remix reads a run’s stored spec too (its settings with where it started and its losses)', () => {
    const f = defaultForm();
    applySpec(f, { settings: { prompts: 'a blue room', steps: 40, seed: 9 }, from: null, losses: [] }, (s) => s);
    expect(f).toMatchObject({ steps: 40, seed: 9, seedLocked: true });
    expect(toSettings(f).prompts).toBe('a blue room');
  });

  it('a fork keeps the parent size and VQGAN and ends where the parent would have', () => {
    const f = defaultForm();
    const run = {
      runId: 5,
      title: 'a red room',
      steps: 300,
      width: 32,
      height: 32,
      settings: { prompts: 'a red room', width: 32, height: 32, vqgan: 'tiny-vqgan', seed: 3 },
    };
    fork(run, 120, (s) => s, f);
    f.width = 512; // the size fields are locked while forking; the settings ignore them anyway
    f.vqgan = 'other';
    expect(f.steps).toBe(300); // steps count from the start: the fork runs 120..300
    expect(toSettings(f)).toMatchObject({ width: 32, height: 32, vqgan: 'tiny-vqgan', seed: 3, steps: 300 });
    f.steps = 100;
    expect(problems(f).map((p) => p.message)).toContain(
      'Steps: count from the start, so a fork from step 120 needs more than 120.',
    );
    fork(run, 299, (s) => s, f);
    expect(f.steps).toBe(599); // forked at its end: as many steps again
  });
});

describe('the loss chart', () => {
  const points = (n: number): LossPoint[] =>
    Array.from({ length: n }, (_, i) => ({ step: i, total: 1 - i / n, perPrompt: [0.5 - i / (2 * n), 0.5] }));

  it('thins long runs to bucket means and keeps the last step', () => {
    const t = thin(points(1000), 100);
    expect(t).toHaveLength(100);
    expect(t.at(-1)!.step).toBe(999);
    expect(t[0]!.total).toBeCloseTo(1 - 4.5 / 1000, 6);
  });

  it('draws the total and each prompt inside the box, falling curves going down the y axis upside', () => {
    const g = lossGeometry(points(50), 600, 160);
    expect(g.perPrompt).toHaveLength(2);
    const coords = [...g.total.matchAll(/[ML]([\d.]+) ([\d.]+)/g)].map((m): [number, number] => [
      Number(m[1]),
      Number(m[2]),
    ]);
    expect(coords).toHaveLength(50);
    expect(coords[0]![0]).toBe(0);
    expect(coords.at(-1)![0]).toBe(600);
    for (const [x, y] of coords) {
      expect(x).toBeGreaterThanOrEqual(0);
      expect(y).toBeGreaterThanOrEqual(0);
      expect(y).toBeLessThanOrEqual(160);
    }
    expect(coords.at(-1)![1]).toBeGreaterThan(coords[0]![1]); // the loss falls: the line goes down the screen
    expect(lossGeometry([], 600, 160).total).toBe('');
    expect(lossGeometry(points(1), 600, 160).total).toMatch(/^M0 [\d.]+L600 [\d.]+$/);
  });
});

describe('missing models', () => {
  const model = (id: string, kind: 'clip' | 'vqgan', state: ModelInfo['state'], isDefault: boolean, bytes: number) =>
    ({
      id,
      kind,
      state,
      default: isDefault,
      expectedBytes: bytes,
      expectedApproximate: true,
      bytesOnDisk: state === 'partial' ? 100 : 0,
    }) as ModelInfo;
  const list = [
    model('clip-b32', 'clip', 'missing', true, 605),
    model('clip-b16', 'clip', 'installed', false, 600),
    model('vq-16384', 'vqgan', 'partial', true, 980),
  ];

  it('names the defaults not installed, with what is left to download', () => {
    const m = missingModels(list, '', '');
    expect(m.models.map((x) => x.id)).toEqual(['clip-b32', 'vq-16384']);
    expect(m.bytes).toBe(605 + 880);
    expect(m.approximate).toBe(true);
  });

  it('a chosen installed model or a folder the catalog does not know is not missing', () => {
    expect(missingModels(list, 'clip-b16', 'my-vqgan-folder').models).toEqual([]);
  });
});

describe('the settings of an image from another tool', () => {
  const castle = {
    prompt: 'a castle on a hill | at dusk',
    negativePrompt: 'blurry, lowres',
    parameters: { Steps: '20', Seed: '1234567890', Size: '500x770', Sampler: 'Euler a' },
    width: 96,
    height: 128,
  };

  it('fills the prompt, the negative prompt as a prompt that pushes away, the size and the seed', () => {
    const f = defaultForm();
    const { carried, dropped } = useImageSettings(castle, 'castle.png', f);
    expect(strip(f.phrases)).toEqual([
      [
        { text: 'a castle on a hill, at dusk', weight: 1, stop: null },
        { text: 'blurry, lowres', weight: -1, stop: null },
      ],
    ]);
    // Sizes a run takes: multiples of 16.
    expect([f.width, f.height]).toEqual([496, 768]);
    expect([f.seed, f.seedLocked]).toEqual([1234567890, true]);
    expect(f.steps).toBe(defaultForm().steps);
    expect(f.filledFrom).toBe('Using the settings of “castle.png”');
    expect(carried).toEqual([
      'the prompt',
      'the negative prompt (as a prompt of weight −1)',
      'the size (496 × 768)',
      'the seed',
    ]);
    expect(dropped).toEqual(['the 20 sampler steps (a VQGAN+CLIP run counts its own steps)']);
    expect(problems(f)).toEqual([]);
  });

  it('takes the image size when the parameters give none, and says why a seed too large stays out', () => {
    const f = defaultForm();
    const { dropped } = useImageSettings(
      { prompt: 'glass bottle', negativePrompt: null, parameters: { Seed: '156680208700286' }, width: 100, height: 60 },
      'ComfyUI_00007_.png',
      f,
    );
    expect([f.width, f.height]).toEqual([96, 64]);
    expect(f.seedLocked).toBe(false);
    expect(dropped).toEqual(['the seed 156680208700286 (seeds here go up to 4294967295)']);
  });
});
