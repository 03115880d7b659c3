// The `vqclip.generate` task end to end on the tiny fixture models (tests/fixtures/clip/tiny, image size 24;
// tests/fixtures/vqgan/tiny.ckpt, f2 with 16 codes), in this thread with a TaskContext like the worker's:
// the loss falls toward a text target and away from a negative one, a stop stops the pull, the same seed
// gives the same bytes, pause + resume and fork from a snapshot reproduce the uninterrupted run, story
// phrases, image / noise prompts and every start, and every bad input is refused with a sentence.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type HostTensor } from '../graph/ir.js';
import { VqganCoder } from '../nets/vqgan-run.js';
import { CancelledError } from '../runtime/protocol.js';
import { type TaskContext, inThreadDevice } from '../runtime/worker-core.js';
import {
  type GenerateSettings,
  type GenerateStream,
  type GenerateTaskArgs,
  type GenerateTaskResult,
  generate,
  optimizerFeeds,
  validateGenerateArgs,
} from './generate.js';

const FIX = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../tests/fixtures');
const clip = { dir: path.join(FIX, 'clip/tiny') };
const vqgan = { location: path.join(FIX, 'vqgan/tiny.ckpt'), name: 'tiny' };
const W = 28;
const H = 32;

function settings(over: Partial<GenerateSettings> = {}): GenerateSettings {
  return {
    prompts: 'a red apple',
    imagePrompts: [],
    noisePrompts: [],
    init: { kind: 'random' },
    initWeight: 0,
    width: W,
    height: H,
    steps: 8,
    seed: 1234,
    cuts: 6,
    cutPow: 1,
    cutMethod: 'original',
    lr: 0.1,
    optimizer: 'adam',
    stepDecay: null,
    ...over,
  };
}

function args(over: Partial<GenerateSettings> = {}, more: Partial<GenerateTaskArgs> = {}): GenerateTaskArgs {
  return { clip, vqgan, settings: settings(over), previewEvery: 1, snapshotEvery: 1, ...more };
}

/** The worker's side as the task sees it: one device and one memo, kept across runs like the worker's. */
class FakeWorker {
  readonly device = inThreadDevice();
  readonly #memo = new Map<string, { value: Promise<unknown>; dispose: (v: unknown) => Promise<void> }>();

  async run(a: GenerateTaskArgs, opts: { stopAfter?: number; abortFirst?: boolean } = {}) {
    const ac = new AbortController();
    if (opts.abortFirst) ac.abort();
    const msgs: GenerateStream[] = [];
    const ctx: TaskContext = {
      signal: ac.signal,
      device: this.device,
      emit: (m) => {
        const msg = m as GenerateStream;
        msgs.push(msg);
        if (msg.type === 'step' && msg.step === opts.stopAfter) ac.abort();
      },
      checkpoint: async () => {
        await new Promise((r) => setImmediate(r));
        if (ac.signal.aborted) throw new CancelledError('generate');
      },
      memo: async <T>(key: string, create: () => Promise<T>, dispose: (v: T) => Promise<void>) => {
        let e = this.#memo.get(key);
        if (!e) {
          e = { value: create(), dispose: dispose as (v: unknown) => Promise<void> };
          this.#memo.set(key, e);
        }
        return e.value as Promise<T>;
      },
    };
    const result = await generate(a, ctx);
    const of = <K extends GenerateStream['type']>(type: K) =>
      msgs.filter((m): m is Extract<GenerateStream, { type: K }> => m.type === type);
    return { result, steps: of('step'), frames: of('frame'), snapshots: of('snapshot'), msgs };
  }

  async close(): Promise<void> {
    for (const e of this.#memo.values()) await e.value.then(e.dispose).catch(() => undefined);
    this.#memo.clear();
  }
}

const worker = new FakeWorker();
afterAll(() => worker.close());

const hex = (a: Uint8Array | Int32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

describe('the loop', () => {
  /** The per-prompt losses of `tokens` under the cutouts of step k (a one-step fork from them at step k). */
  const lossesAt = async (over: Partial<GenerateSettings>, tokens: Int32Array, k: number) =>
    (await worker.run(args({ ...over, steps: k + 1 }, { from: { step: k, tokens }, previewEvery: 0 }))).steps[0]!
      .losses;

  it.each([1, 2, 3])(
    'the loss falls over 20 steps toward a text target, and rises away from a negative prompt (seed %d)',
    async (seed) => {
      for (const [prompts, sign] of [
        ['a photo of a cat', 1],
        ['blurry:-1', -1],
      ] as const) {
        const over = { prompts, steps: 20, seed, cuts: 8 };
        const { steps, snapshots, result } = await worker.run(args(over, { previewEvery: 0, snapshotEvery: 20 }));
        expect(steps.map((s) => s.step)).toEqual(Array.from({ length: 21 }, (_, i) => i));
        expect(snapshots.map((s) => s.step)).toEqual([20]);
        expect(result).toMatchObject({ step: 20, stopped: false, width: W, height: H });
        expect(result.rgb.length).toBe(W * H * 3);
        expect(result.tokens.length).toBe((W / 2) * (H / 2));
        for (const s of steps) expect(s.loss).toBe(s.losses[0]);
        // The start image (a run of 0 steps gives it) against the last steps' images under the same cutouts
        // (those of steps 18..20): losses[0] is mean(sign(w) d), so it falls in both cases (d falls toward,
        // rises away).
        const start = (await worker.run(args({ ...over, steps: 0 }))).result.tokens;
        for (const k of [18, 19, 20]) {
          const before = (await lossesAt(over, start, k))[0]!;
          const after = steps[k]!.losses[0]!;
          expect(after).toBeLessThan(before);
          expect(sign * after).toBeGreaterThan(0);
        }
      }
    },
  );

  it('a positive and a negative prompt together: one pulls, the other pushes', async () => {
    const over = { prompts: 'a photo of a cat | blurry:-1', steps: 20, seed: 4, cuts: 8 };
    const { steps, result } = await worker.run(args(over, { previewEvery: 0, snapshotEvery: 20 }));
    expect(result.prompts).toEqual([
      { text: 'a photo of a cat', weight: 1, stop: -Infinity, kind: 'text', phrase: 0 },
      { text: 'blurry', weight: -1, stop: -Infinity, kind: 'text', phrase: 0 },
    ]);
    for (const s of steps) expect(s.loss).toBeCloseTo(s.losses[0]! + s.losses[1]!, 5);
    const start = (await worker.run(args({ ...over, steps: 0 }))).result.tokens;
    const before = await lossesAt(over, start, 20);
    expect(steps[20]!.loss).toBeLessThan(before[0]! + before[1]!);
  });

  it('a prompt with a stop stops pulling once its distance is below it (SGD: no pull, no change)', async () => {
    const over = { optimizer: 'sgd' as const, lr: 2, steps: 4, cuts: 4 };
    const pulled = await worker.run(args(over));
    const d = pulled.steps.map((s) => s.losses[0]!);
    expect(new Set(pulled.frames.map((f) => hex(f.rgb))).size).toBeGreaterThan(1);
    // A stop above every distance of the run: the prompt reports its loss but never pulls, so z never moves.
    const stop = Math.max(...d) + 0.5;
    const held = await worker.run(args({ ...over, prompts: `a red apple:1:${stop}` }));
    expect(held.steps[0]!.losses[0]).toBe(d[0]);
    expect(new Set(held.frames.map((f) => hex(f.rgb))).size).toBe(1);
    expect(new Set(held.snapshots.map((f) => hex(f.tokens))).size).toBe(1);
    expect(held.result.prompts[0]!.stop).toBe(stop);
  });

  it('the same seed, settings and models give byte-identical images; another seed does not', async () => {
    const a1 = await worker.run(args({ seed: 99 }));
    const other = new FakeWorker(); // fresh sessions
    try {
      const a2 = await other.run(args({ seed: 99 }));
      expect(a2.frames.map((f) => hex(f.rgb))).toEqual(a1.frames.map((f) => hex(f.rgb)));
      expect(a2.snapshots.map((s) => hex(s.tokens))).toEqual(a1.snapshots.map((s) => hex(s.tokens)));
      expect(a2.steps.map((s) => s.losses)).toEqual(a1.steps.map((s) => s.losses));
      const b = await other.run(args({ seed: 100 }));
      expect(hex(b.result.rgb)).not.toBe(hex(a1.result.rgb));
    } finally {
      await other.close();
    }
  });

  it('pause (a cancel) and resume with keepKey continue exactly as one uninterrupted run', async () => {
    const straight = await worker.run(args({ steps: 8, seed: 5 }));
    const paused = await worker.run(args({ steps: 8, seed: 5 }, { keepKey: 'job-1', snapshotEvery: 2 }), {
      stopAfter: 4,
    });
    // Stopped after step 4's update: the result is step 4's image, the kept state is step 5.
    expect(paused.result).toMatchObject({ step: 4, stopped: true });
    expect(paused.steps.map((s) => s.step)).toEqual([0, 1, 2, 3, 4]);
    expect(paused.snapshots.map((s) => s.step)).toEqual([2, 4]);
    expect(hex(paused.result.rgb)).toBe(hex(straight.frames[4]!.rgb));
    // As the studio resumes: the key, and a snapshot at or before the pause as the fallback (the one at 2,
    // to test the rule); the kept state wins and the run goes on at step 5.
    const snap = paused.snapshots.find((x) => x.step === 2)!;
    const resumed = await worker.run(
      args({ steps: 8, seed: 5 }, { keepKey: 'job-1', from: { step: 2, tokens: snap.tokens } }),
    );
    expect(resumed.steps.map((s) => s.step)).toEqual([5, 6, 7, 8]);
    expect(resumed.frames.map((f) => [f.step, hex(f.rgb)])).toEqual(
      straight.frames.slice(5).map((f) => [f.step, hex(f.rgb)]),
    );
    expect(resumed.result).toMatchObject({ step: 8, stopped: false });
    expect(hex(resumed.result.rgb)).toBe(hex(straight.result.rgb));
    // Done: the key keeps nothing. A resume without tokens is refused; with them it goes on from the snapshot.
    await expect(worker.run(args({ steps: 8, seed: 5 }, { keepKey: 'job-1', from: { step: 4 } }))).rejects.toThrow(
      /cannot continue at step 4: no state is kept/,
    );
    const fallback = await worker.run(
      args({ steps: 8, seed: 5 }, { keepKey: 'job-1', from: { step: 2, tokens: snap.tokens } }),
    );
    expect(fallback.steps[0]!.step).toBe(2);
    expect(hex(fallback.frames[0]!.rgb)).toBe(hex(straight.frames[2]!.rgb));
  });

  it("a fork from a snapshot's tokens shows that step's image again as its first frame", async () => {
    const parent = await worker.run(args({ steps: 8, seed: 6 }, { snapshotEvery: 5, previewEvery: 5 }));
    expect(parent.snapshots.map((s) => s.step)).toEqual([5, 8]);
    expect(parent.frames.map((f) => f.step)).toEqual([0, 5, 8]);
    const snap = parent.snapshots[0]!;
    const fork = await worker.run(args({ steps: 8, seed: 6 }, { from: { step: 5, tokens: snap.tokens } }));
    expect(fork.frames[0]!.step).toBe(5);
    expect(hex(fork.frames[0]!.rgb)).toBe(hex(parent.frames.find((f) => f.step === 5)!.rgb));
    // Step 5's losses too: they depend only on the image and on step 5's cutouts (the seed's).
    expect(fork.steps[0]!.losses).toEqual(parent.steps[5]!.losses);
    expect(fork.snapshots.map((s) => s.step)).toEqual([6, 7, 8]); // after its first step only
  });

  it('stopped before the first step: stopped, nothing done, no image', async () => {
    const r = await worker.run(args(), { abortFirst: true });
    expect(r.result).toMatchObject({ step: 0, stopped: true });
    expect(r.result.rgb.length).toBe(0);
    expect(r.steps).toEqual([]);
  });

  it('story phrases: the phrase in force pulls, the others report', async () => {
    const { steps, result } = await worker.run(
      args({ prompts: 'a cat ^ a dog | grass:0.5', steps: 4, storyEvery: 2 }, { previewEvery: 0 }),
    );
    expect(steps.map((s) => s.phrase)).toEqual([0, 0, 1, 1, 1]);
    expect(result.prompts.map((p) => [p.text, p.phrase])).toEqual([
      ['a cat', 0],
      ['a dog', 1],
      ['grass', 1],
    ]);
    for (const s of steps) {
      expect(s.losses.every((l) => l > 0)).toBe(true);
      const active = s.phrase === 0 ? s.losses[0]! : s.losses[1]! + s.losses[2]!;
      expect(s.loss).toBeCloseTo(active, 6);
    }
  });

  it('image and noise prompts: a picture of the start image is nearer than another picture', async () => {
    const start = await worker.run(args({ steps: 1, seed: 11 }));
    const img = (rgb: Uint8Array): HostTensor => {
      const data = new Float32Array(3 * W * H);
      for (let p = 0; p < W * H; p++) for (let c = 0; c < 3; c++) data[c * W * H + p] = rgb[p * 3 + c]! / 255;
      return { dtype: 'float32', dims: [1, 3, H, W], data };
    };
    const stripes = new Uint8Array(W * H * 3).map((_, i) => ((Math.floor(i / 3) % W) % 8 < 4 ? 255 : 0));
    const r = await worker.run(
      args({
        prompts: '',
        seed: 11,
        steps: 1,
        imagePrompts: [
          { pixels: img(start.frames[0]!.rgb), weight: 1, stop: -Infinity },
          { pixels: img(stripes), weight: 1, stop: -Infinity },
        ],
        noisePrompts: [{ seed: 3, weight: 0.5 }],
      }),
    );
    expect(r.result.prompts.map((p) => p.kind)).toEqual(['image', 'image', 'noise']);
    const [self, other, noise] = r.steps[0]!.losses as [number, number, number];
    expect(self).toBeLessThan(other);
    expect(noise).toBeGreaterThan(0);
  });

  it('starts from an encoded init image: the first tokens are the VQGAN encoding of it', async () => {
    const data = new Float32Array(3 * W * H).map((_, i) => Math.sin(i / 7) * 0.8);
    const pixels: HostTensor = { dtype: 'float32', dims: [1, 3, H, W], data };
    const r = await worker.run(args({ init: { kind: 'image', pixels }, steps: 0 }));
    expect(r.snapshots.map((s) => s.step)).toEqual([0]);
    const coder = await VqganCoder.open(worker.device, vqgan);
    try {
      const { indices } = await coder.encode(pixels, 'cpu');
      expect(Array.from(r.result.tokens)).toEqual(Array.from(indices.data as BigInt64Array, Number));
    } finally {
      await coder.close();
    }
  });

  it.each([
    ['noise pixels, SGD', { init: { kind: 'noise', style: 'pixels' }, optimizer: 'sgd', lr: 1 }],
    [
      'noise gradient, AdamW, init weight, step decay',
      {
        init: { kind: 'noise', style: 'gradient' },
        optimizer: 'adamw',
        initWeight: 0.5,
        stepDecay: { every: 1, factor: 0.5 },
      },
    ],
    ['pooled cutouts', { cutMethod: 'pooled', cuts: 3 }],
  ] as [string, Partial<GenerateSettings>][])('runs with %s', async (_name, over) => {
    const r = await worker.run(args({ steps: 3, ...over }));
    expect(r.result.step).toBe(3);
    for (const s of r.steps) expect(Number.isFinite(s.loss)).toBe(true);
    expect(new Set(r.frames.map((f) => hex(f.rgb))).size).toBeGreaterThan(0);
  });
});

describe('optimizer feeds', () => {
  it("Adam's bias corrections and the step decay, by hand", () => {
    const f = (x: HostTensor | undefined) => (x!.data as Float32Array)[0]!;
    const a = optimizerFeeds({ lr: 0.1, stepDecay: null, optimizer: 'adam' }, 0, 1);
    expect(f(a.step_size)).toBeCloseTo(0.1 / 0.1, 6);
    expect(f(a.bc2_sqrt)).toBeCloseTo(Math.sqrt(0.001), 7);
    const b = optimizerFeeds({ lr: 0.2, stepDecay: { every: 10, factor: 0.5 }, optimizer: 'sgd' }, 25, 26);
    expect(f(b.lr)).toBeCloseTo(0.05, 7);
    const c = optimizerFeeds({ lr: 0.1, stepDecay: null, optimizer: 'adamw' }, 0, 3);
    expect(f(c.decay)).toBeCloseTo(1 - 0.1 * 0.01, 7);
    expect(f(c.step_size)).toBeCloseTo(0.1 / (1 - 0.9 ** 3), 6);
  });
});

describe('bad input', () => {
  const bad: [string, Partial<GenerateSettings>, Partial<GenerateTaskArgs>, RegExp][] = [
    ['NaN lr', { lr: NaN }, {}, /lr \(the step size\) must be a positive number, got NaN/],
    ['negative lr', { lr: -0.1 }, {}, /lr \(the step size\) must be a positive number/],
    ['zero cuts', { cuts: 0 }, {}, /cuts must be a whole number from 1 to 128, got 0/],
    ['fractional width', { width: 27.5 }, {}, /width and height must be whole numbers/],
    ['too large', { width: 2048, height: 2048 }, {}, /too large: at most 2048 pixels a side and 1048576 pixels/],
    ['negative steps', { steps: -1 }, {}, /steps must be a whole number from 0 \(just the start image\) to 100000/],
    ['bad seed', { seed: -1 }, {}, /seed must be a whole number from 0 to 4294967295/],
    ['cutPow 0', { cutPow: 0 }, {}, /cutPow must be a positive number/],
    ['cut method', { cutMethod: 'latest' as never }, {}, /cutMethod must be 'original' or 'pooled'/],
    ['optimizer', { optimizer: 'adagrad' as never }, {}, /optimizer must be 'adam', 'adamw' or 'sgd'/],
    ['step decay', { stepDecay: { every: 0, factor: 0.5 } }, {}, /stepDecay must be null or/],
    ['init weight', { initWeight: -1 }, {}, /initWeight must be 0 \(off\) or a positive number/],
    ['empty prompt', { prompts: '  ' }, {}, /The prompt is empty\. Write what the image should show/],
    ['empty prompt segment', { prompts: 'a||b' }, {}, /Prompt 2 is empty/],
    ['story every', { storyEvery: 0 }, {}, /storyEvery must be a whole number of steps >= 1/],
    [
      'image prompt dims',
      {
        imagePrompts: [
          { pixels: { dtype: 'float32', dims: [3, 4, 4], data: new Float32Array(48) }, weight: 1, stop: -Infinity },
        ],
      },
      {},
      /image prompt 1: pixels must be \[1, 3, H, W\], got \[3, 4, 4\]/,
    ],
    [
      'image prompt range',
      {
        imagePrompts: [
          {
            pixels: { dtype: 'float32', dims: [1, 3, 2, 2], data: new Float32Array(12).fill(2) },
            weight: 1,
            stop: -Infinity,
          },
        ],
      },
      {},
      /image prompt 1: pixel values must be in \[0, 1\], found 2/,
    ],
    [
      'init image size',
      { init: { kind: 'image', pixels: { dtype: 'float32', dims: [1, 3, 4, 4], data: new Float32Array(48) } } },
      {},
      /init image: pixels are 4x4, the output is 28x32: resize the image to the output size/,
    ],
    [
      'noise style',
      { init: { kind: 'noise', style: 'perlin' as never } },
      {},
      /init noise style must be 'pixels' or 'gradient'/,
    ],
    [
      'noise prompt seed',
      { noisePrompts: [{ seed: 1.5, weight: 1 }] },
      {},
      /noise prompt 1: seed must be a whole number/,
    ],
    ['preview', {}, { previewEvery: -1 }, /previewEvery must be a whole number >= 0/],
    ['from.step', {}, { from: { step: 9 } }, /from.step must be a whole number from 0 to steps \(8\), got 9/],
    ['keepKey', {}, { keepKey: '' }, /keepKey must be a non-empty string/],
  ];
  it.each(bad)('%s', (_name, over, more, re) => {
    expect(() => validateGenerateArgs(args(over, more))).toThrow(re);
  });

  const model = { factor: 2, nEmbed: 16, embedDim: 8 };
  it.each([
    [
      'a size that is not a multiple of the factor',
      { width: 27 },
      {},
      /27x32 is not a multiple of this VQGAN's factor 2: use 28x32/,
    ],
    [
      'tokens of the wrong length',
      {},
      { from: { step: 1, tokens: new Int32Array(3) } },
      /from.tokens must be an Int32Array of 224 tokens/,
    ],
    [
      'tokens outside the codebook',
      {},
      { from: { step: 1, tokens: new Int32Array(224).fill(16) } },
      /token 16 is outside this VQGAN's codebook \(16 codes\)/,
    ],
    ['moments without z', {}, { from: { step: 1, m: new Float32Array(1792) } }, /from.m and from.v need from.z/],
  ] as [string, Partial<GenerateSettings>, Partial<GenerateTaskArgs>, RegExp][])(
    '%s (with the model)',
    (_n, over, more, re) => {
      expect(() => validateGenerateArgs(args(over, more), model)).toThrow(re);
    },
  );

  it('the task checks the size against the model it opens', async () => {
    await expect(worker.run(args({ width: 27 }))).rejects.toThrow(/not a multiple of this VQGAN's factor 2: use 28x32/);
  });
});

// Keep the result type in use (the studio imports it).
export type { GenerateTaskResult };
