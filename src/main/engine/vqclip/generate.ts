// The `vqclip.generate` task: VQGAN+CLIP text-to-image in the compute worker. It checks the settings, embeds
// the prompts (CLIP's text tower; image prompts through the vision tower; noise prompts from their seed),
// finds the start (random tokens, an encoded image or noise image, a snapshot's tokens, or the state a
// paused run left), builds or reads the step graph (step-graph.ts; cached on disk with both models'
// shared weights files) and runs it step after step, keeping z and the optimiser's moments in the worker
// and streaming the losses, previews and snapshots.
//
// Step k is the state after k updates (nerdyrodent's iteration k): its pass reports the losses of z_k, its
// image (the decode of its tokens, z_k quantised) and its tokens, then updates z_k to z_{k+1}. A run of
// `steps` steps from `from.step` (default 0) passes through states from.step .. steps and ends with the
// image of z_steps (its update is not taken; steps = 0 gives the start image). A run started from a
// snapshot's tokens of step k shows step k's image again as its first frame, byte for byte.
//
// A cancel (ctx.signal) means STOP: the task finishes the step in progress and returns `stopped: true`; with
// `keepKey` the state (z, moments, Adam's step count) stays in the worker (ctx.memo) so that a later run with
// the same key continues exactly where it stopped, as one uninterrupted run would (its `from`, a snapshot at
// or before that step, is only the fallback for a worker that has forgotten the state). All randomness
// comes from the seeded generator (prng.ts), per step, so resumed, forked and uninterrupted runs draw the
// same cutouts.
//
// Public API
//   GenerateSettings, GenerateTaskArgs, GenerateStream, GenerateTaskResult, GeneratePrompt
//   validateGenerateArgs(args, model?) -> Phrase[]    every check that needs no model (and those that need
//                                                      the model's factor and codebook when given)
//   generate(args, ctx)                                 the task
//   optimizerFeeds(settings, step, t)                   the optimiser's scalar inputs of a step (schedule, bias corrections)
//   vqclipTasks                                         { 'vqclip.generate': generate }
//   GENERATE_LIMITS
import { fileIdentity, cachedGraph, type SharedWeights } from '../runtime/graph-cache.js';
import {
  DeviceTensor,
  type Feed,
  type HostTensor,
  type ModelSource,
  type ProviderName,
  type RuntimeSession,
  type SessionOptions,
} from '../runtime/ort.js';
import { isCancelled } from '../runtime/protocol.js';
import type { Device, TaskContext } from '../runtime/worker-core.js';
import { type ClipModelRef, ClipEmbedder } from '../nets/clip-run.js';
import { type VqganModelRef, VqganCoder } from '../nets/vqgan-run.js';
import { downsampleFactor } from '../nets/vqgan.js';
import { type CutMethod, type CutSpec, cutFeeds } from './cutouts.js';
import { Rng, STREAM } from './prng.js';
import { type Phrase, parsePrompts } from './prompts.js';
import {
  ADAM,
  ADAMW_DECAY,
  type Optimizer,
  type StepSpec,
  emitImagePromptGraph,
  emitLookupGraph,
  emitStepGraph,
  latentShape,
  stepSpecKey,
} from './step-graph.js';

export interface GenerateSettings {
  /** Raw prompt text: `text:weight:stop | ...`, story phrases separated by `^` (prompts.ts). */
  prompts: string;
  /** Advance a `^` story phrase every N steps (default: ceil(steps / phrases)). */
  storyEvery?: number;
  /** A picture's CLIP embedding (of its cutouts) as a target; pixels [1, 3, H, W] in [0, 1], any size. */
  imagePrompts: { pixels: HostTensor; weight: number; stop: number }[];
  /** A seeded random direction in CLIP space as a target. */
  noisePrompts: { seed: number; weight: number }[];
  init:
    | { kind: 'random' }
    /** pixels [1, 3, height, width] in [-1, 1] at the output size. */
    | { kind: 'image'; pixels: HostTensor }
    | { kind: 'noise'; style: 'pixels' | 'gradient' };
  /** Weight of the MSE between z and its start (Crowson's init_weight); 0 = off. */
  initWeight: number;
  /** Multiples of the VQGAN's factor (the caller rounds and says so). */
  width: number;
  height: number;
  /** Updates in the run (0: just the start image); the last image is the state after this many. */
  steps: number;
  /** uint32. */
  seed: number;
  cuts: number;
  cutPow: number;
  cutMethod: CutMethod;
  lr: number;
  optimizer: Optimizer;
  /** lr * factor^floor(step / every). */
  stepDecay: { every: number; factor: number } | null;
}

export interface GenerateTaskArgs {
  clip: ClipModelRef;
  vqgan: VqganModelRef;
  provider?: ProviderName;
  settings: GenerateSettings;
  /** Emit a frame at every step that is a multiple of N (and at the first and last step); 0 = only the last. */
  previewEvery: number;
  /** Emit the tokens at every step after the first that is a multiple of N (and at the last); 0 = only the last. */
  snapshotEvery: number;
  /** Start at this step (0..steps) instead of the start: from its tokens (fork, continue), or z/m/v (resume). */
  from?: { step: number; tokens?: Int32Array; z?: Float32Array; m?: Float32Array; v?: Float32Array };
  /**
   * Keep z/m/v in the worker under this key when the run stops early (a pause), for an exact resume: a later
   * run with the same key goes on from that state at the step where it stopped (when `from` is absent or at
   * or before that step; `from` is then the fallback if the worker has forgotten it). Forgotten when a run
   * with the key completes.
   */
  keepKey?: string;
  /** For the benchmark: profile the step session (ORT per-node timings in the result). */
  profile?: boolean;
}

export type GenerateStream =
  | { type: 'status'; message: string }
  | {
      type: 'step';
      step: number;
      loss: number;
      /** Per prompt, in the order of the result's `prompts`. */
      losses: number[];
      ms: number;
      /** The story phrase in force (0 without `^`). */
      phrase: number;
    }
  | { type: 'frame'; step: number; width: number; height: number; rgb: Uint8Array }
  | { type: 'snapshot'; step: number; tokens: Int32Array };

export interface GeneratePrompt {
  text: string;
  weight: number;
  /** -Infinity: no stop. */
  stop: number;
  kind: 'text' | 'image' | 'noise';
  /** The story phrase of a text prompt (0 without `^`). */
  phrase?: number;
}

export interface GenerateTaskResult {
  /**
   * The step whose tokens and rgb these are: `steps` when the run completed; when it stopped, the last step
   * it passed through (the state after that step's update is what keepKey keeps, so a resume goes on at
   * step + 1).
   */
  step: number;
  stopped: boolean;
  /** int32 [h*w] codebook indices (empty when stopped before the first step). */
  tokens: Int32Array;
  width: number;
  height: number;
  /** Packed 8-bit RGB [height * width * 3] (empty when stopped before the first step). */
  rgb: Uint8Array;
  prompts: GeneratePrompt[];
  /** ORT's per-op time totals in ms (args.profile only). */
  profile?: Record<string, number>;
}

/** Bumped when the step graph (or the lookup graph) changes for the same spec, so cached ones are rebuilt. */
const STEP_GRAPH = 'vqclip-step v2';
const LOOKUP_GRAPH = 'vqclip-lookup v1';

/** Cutouts per chunk of the step graph: CLIP's activations are kept for this many at a time. */
const CUT_CHUNK = 8;

export const GENERATE_LIMITS = {
  maxSide: 2048,
  maxPixels: 1024 * 1024,
  maxSteps: 100_000,
  maxCuts: 128,
  maxImagePrompts: 8,
  maxNoisePrompts: 16,
  maxImagePromptSide: 4096,
} as const;

const isUint32 = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0 && (x as number) <= 0xffffffff;
const isPosInt = (x: unknown, max = Number.MAX_SAFE_INTEGER): x is number =>
  Number.isInteger(x) && (x as number) >= 1 && (x as number) <= max;
const isFiniteNumber = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isStop = (x: unknown): x is number => typeof x === 'number' && !Number.isNaN(x) && x !== Infinity;

function fail(message: string): never {
  throw new Error(message);
}

function checkPixels(t: unknown, what: string, range: [number, number], size?: [number, number]): HostTensor {
  const p = t as HostTensor | undefined;
  if (!p || typeof p !== 'object' || p.dtype !== 'float32' || !(p.data instanceof Float32Array)) {
    fail(`${what}: pixels must be a float32 tensor [1, 3, H, W]`);
  }
  const d = p.dims;
  if (d.length !== 4 || d[0] !== 1 || d[1] !== 3 || !isPosInt(d[2]) || !isPosInt(d[3])) {
    fail(`${what}: pixels must be [1, 3, H, W], got [${d.join(', ')}]`);
  }
  if (p.data.length !== 3 * d[2]! * d[3]!) fail(`${what}: ${p.data.length} values for [${d.join(', ')}]`);
  if (size && (d[2] !== size[0] || d[3] !== size[1])) {
    fail(
      `${what}: pixels are ${d[3]}x${d[2]}, the output is ${size[1]}x${size[0]}: resize the image to the output size`,
    );
  }
  for (const v of p.data) {
    if (!(v >= range[0] && v <= range[1]))
      fail(`${what}: pixel values must be in [${range[0]}, ${range[1]}], found ${v}`);
  }
  return p;
}

/** What validateGenerateArgs needs to know of the models (optional: checks that need them are skipped). */
export interface ModelFacts {
  factor: number;
  nEmbed: number;
  embedDim: number;
}

/**
 * Every check of the arguments, with a sentence saying what is wrong and what would be right; returns the
 * parsed prompts (phrases, possibly none when only image or noise prompts are given).
 */
export function validateGenerateArgs(args: GenerateTaskArgs, model?: ModelFacts): Phrase[] {
  const s = args?.settings;
  if (!s || typeof s !== 'object') fail('generate: settings are missing');
  const L = GENERATE_LIMITS;
  if (!isPosInt(s.width) || !isPosInt(s.height)) {
    fail(`width and height must be whole numbers of pixels, got ${s.width}x${s.height}`);
  }
  if (s.width > L.maxSide || s.height > L.maxSide || s.width * s.height > L.maxPixels) {
    fail(
      `${s.width}x${s.height} is too large: at most ${L.maxSide} pixels a side and ${L.maxPixels} pixels in all ` +
        '(e.g. 1024x1024 or 2048x512)',
    );
  }
  if (model && (s.width % model.factor !== 0 || s.height % model.factor !== 0)) {
    const r = (v: number) => Math.max(model.factor, Math.round(v / model.factor) * model.factor);
    fail(
      `${s.width}x${s.height} is not a multiple of this VQGAN's factor ${model.factor}: ` +
        `use ${r(s.width)}x${r(s.height)}`,
    );
  }
  if (!Number.isInteger(s.steps) || s.steps < 0 || s.steps > L.maxSteps) {
    fail(`steps must be a whole number from 0 (just the start image) to ${L.maxSteps}, got ${s.steps}`);
  }
  if (!isUint32(s.seed)) fail(`seed must be a whole number from 0 to 4294967295, got ${s.seed}`);
  if (!isPosInt(s.cuts, L.maxCuts)) fail(`cuts must be a whole number from 1 to ${L.maxCuts}, got ${s.cuts}`);
  if (!isFiniteNumber(s.cutPow) || s.cutPow <= 0) fail(`cutPow must be a positive number, got ${s.cutPow}`);
  if (s.cutMethod !== 'original' && s.cutMethod !== 'pooled') {
    fail(`cutMethod must be 'original' or 'pooled', got ${String(s.cutMethod)}`);
  }
  if (!isFiniteNumber(s.lr) || s.lr <= 0) fail(`lr (the step size) must be a positive number, got ${s.lr}`);
  if (s.optimizer !== 'adam' && s.optimizer !== 'adamw' && s.optimizer !== 'sgd') {
    fail(`optimizer must be 'adam', 'adamw' or 'sgd', got ${String(s.optimizer)}`);
  }
  if (s.stepDecay !== null) {
    const d = s.stepDecay;
    if (!d || !isPosInt(d.every) || !isFiniteNumber(d.factor) || d.factor <= 0) {
      fail(`stepDecay must be null or { every: whole number >= 1, factor: positive number }, got ${JSON.stringify(d)}`);
    }
  }
  if (!isFiniteNumber(s.initWeight) || s.initWeight < 0) {
    fail(`initWeight must be 0 (off) or a positive number, got ${s.initWeight}`);
  }
  if (!Array.isArray(s.imagePrompts) || s.imagePrompts.length > L.maxImagePrompts) {
    fail(`imagePrompts must be a list of at most ${L.maxImagePrompts}`);
  }
  s.imagePrompts.forEach((p, k) => {
    const what = `image prompt ${k + 1}`;
    const px = checkPixels(p?.pixels, what, [0, 1]);
    if (px.dims[2]! > L.maxImagePromptSide || px.dims[3]! > L.maxImagePromptSide) {
      fail(`${what}: at most ${L.maxImagePromptSide} pixels a side`);
    }
    if (!isFiniteNumber(p.weight)) fail(`${what}: weight must be a finite number, got ${p.weight}`);
    if (!isStop(p.stop)) fail(`${what}: stop must be a number or -Infinity (no stop), got ${p.stop}`);
  });
  if (!Array.isArray(s.noisePrompts) || s.noisePrompts.length > L.maxNoisePrompts) {
    fail(`noisePrompts must be a list of at most ${L.maxNoisePrompts}`);
  }
  s.noisePrompts.forEach((p, k) => {
    if (!isUint32(p?.seed)) fail(`noise prompt ${k + 1}: seed must be a whole number from 0 to 4294967295`);
    if (!isFiniteNumber(p.weight)) fail(`noise prompt ${k + 1}: weight must be a finite number, got ${p.weight}`);
  });
  const init = s.init;
  if (!init || (init.kind !== 'random' && init.kind !== 'image' && init.kind !== 'noise')) {
    fail(`init must be { kind: 'random' }, { kind: 'image', pixels } or { kind: 'noise', style }`);
  }
  if (init.kind === 'image') checkPixels(init.pixels, 'init image', [-1, 1], [s.height, s.width]);
  if (init.kind === 'noise' && init.style !== 'pixels' && init.style !== 'gradient') {
    fail(`init noise style must be 'pixels' or 'gradient', got ${String(init.style)}`);
  }
  if (typeof s.prompts !== 'string') fail('prompts must be a string');
  const others = s.imagePrompts.length + s.noisePrompts.length;
  const phrases = others > 0 && s.prompts.trim() === '' ? [] : parsePrompts(s.prompts);
  if (s.storyEvery !== undefined && !isPosInt(s.storyEvery)) {
    fail(`storyEvery must be a whole number of steps >= 1, got ${s.storyEvery}`);
  }
  if (!Number.isInteger(args.previewEvery) || args.previewEvery < 0) {
    fail(`previewEvery must be a whole number >= 0 (0: only the last step), got ${args.previewEvery}`);
  }
  if (!Number.isInteger(args.snapshotEvery) || args.snapshotEvery < 0) {
    fail(`snapshotEvery must be a whole number >= 0 (0: only the last step), got ${args.snapshotEvery}`);
  }
  if (args.keepKey !== undefined && (typeof args.keepKey !== 'string' || !args.keepKey || args.keepKey.length > 200)) {
    fail('keepKey must be a non-empty string of at most 200 characters');
  }
  const f = args.from;
  if (f) {
    if (!Number.isInteger(f.step) || f.step < 0 || f.step > s.steps) {
      fail(`from.step must be a whole number from 0 to steps (${s.steps}), got ${f.step}`);
    }
    if (model) {
      const cells = (s.width / model.factor) * (s.height / model.factor);
      if (f.tokens !== undefined) {
        if (!(f.tokens instanceof Int32Array) || f.tokens.length !== cells) {
          fail(
            `from.tokens must be an Int32Array of ${cells} tokens for ${s.width}x${s.height}, got ${f.tokens?.length}`,
          );
        }
        for (const t of f.tokens) {
          if (t < 0 || t >= model.nEmbed) {
            fail(`from.tokens: token ${t} is outside this VQGAN's codebook (${model.nEmbed} codes): wrong model?`);
          }
        }
      }
      const n = cells * model.embedDim;
      for (const k of ['z', 'm', 'v'] as const) {
        const a = f[k];
        if (a === undefined) continue;
        if (!(a instanceof Float32Array) || a.length !== n) fail(`from.${k} must be a Float32Array of ${n} values`);
        for (const x of a) if (!Number.isFinite(x) || (k === 'v' && x < 0)) fail(`from.${k} holds ${x}`);
      }
      if ((f.m || f.v) && !f.z) fail('from.m and from.v need from.z');
    }
  }
  return phrases;
}

// ------------------------------------------------------------------------------------------------ state

/** What a run leaves under keepKey: enough to go on exactly. */
interface KeptState {
  step: number;
  /** Adam's step count (bias corrections) at `step`. */
  t: number;
  z: Float32Array;
  m: Float32Array;
  v: Float32Array;
  shape: string;
}

interface KeepBox {
  state: KeptState | null;
}

/** The worker's box for a run's kept state (ctx.memo: it outlives the task, least recently used go first). */
const keepBox = (ctx: TaskContext, key: string) =>
  ctx.memo<KeepBox>(
    `vqclip.keep:${key}`,
    async () => ({ state: null }),
    async () => {},
  );

/** The step graph's sessions, one set per worker (the last spec used), reused by the next run of that spec. */
interface Engine {
  key: string;
  /** Null until the session is created (after the models' weights, if any were read, are let go). */
  step: RuntimeSession | null;
  /** Where the step graph is (a cache file, or bytes) until its session exists. */
  source: ModelSource | null;
  lookup: RuntimeSession | null;
}

interface EngineSlot {
  engine: Engine | null;
  /** Runs take the slot in turn (one step graph in memory at a time). */
  tail: Promise<void>;
}

async function closeEngine(e: Engine | null): Promise<void> {
  if (!e) return;
  await Promise.all([e.step?.release(), e.lookup?.release()].map((p) => p?.catch(() => undefined)));
}

// ------------------------------------------------------------------------------------------------ helpers

const f32 = (dims: number[], data: Float32Array): HostTensor => ({ dtype: 'float32', dims, data });
const scalar = (v: number): HostTensor => f32([], Float32Array.of(v));

function unit(v: ArrayLike<number>): Float32Array {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i]! * v[i]!;
  const s = 1 / Math.max(Math.sqrt(n), 1e-12);
  return Float32Array.from(v, (x) => x * s);
}

/** nerdyrodent's random noise images: uniform pixels, or a gradient between random colours. */
function noiseImage(style: 'pixels' | 'gradient', width: number, height: number, rng: Rng): HostTensor {
  const data = new Float32Array(3 * width * height);
  const plane = width * height;
  if (style === 'pixels') {
    for (let i = 0; i < data.length; i++) data[i] = (rng.int(256) / 255) * 2 - 1;
  } else {
    // gradient_3d(start=(0, 0, r), stop=(r1, r2, r3), horizontal=(True, False, False)).
    const start = [0, 0, rng.int(256)];
    const stop = [1 + rng.int(255), 2 + rng.int(254), 3 + rng.int(126)];
    for (let c = 0; c < 3; c++) {
      const n = c === 0 ? width : height;
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const t = n > 1 ? (c === 0 ? x : y) / (n - 1) : 0;
          const v = Math.trunc(start[c]! + (stop[c]! - start[c]!) * t); // uint8, as the original
          data[c * plane + y * width + x] = (v / 255) * 2 - 1;
        }
      }
    }
  }
  return f32([1, 3, height, width], data);
}

async function toHost(device: Device, t: Feed, provider: RuntimeSession['provider']): Promise<HostTensor> {
  return t instanceof DeviceTensor ? device.read(t, provider) : t;
}

function learningRate(s: Pick<GenerateSettings, 'lr' | 'stepDecay'>, step: number): number {
  return s.stepDecay ? s.lr * s.stepDecay.factor ** Math.floor(step / s.stepDecay.every) : s.lr;
}

/**
 * The optimiser's scalar feeds for step `step` (0-based, for the schedule) when the moments have seen `t - 1`
 * updates before it (Adam's bias corrections use t, 1-based): computed in float64 as PyTorch does.
 */
export function optimizerFeeds(
  s: Pick<GenerateSettings, 'lr' | 'stepDecay' | 'optimizer'>,
  step: number,
  t: number,
): Record<string, HostTensor> {
  const lr = learningRate(s, step);
  if (s.optimizer === 'sgd') return { lr: scalar(lr) };
  const feeds: Record<string, HostTensor> = {
    step_size: scalar(lr / (1 - ADAM.beta1 ** t)),
    bc2_sqrt: scalar(Math.sqrt(1 - ADAM.beta2 ** t)),
  };
  if (s.optimizer === 'adamw') feeds.decay = scalar(1 - lr * ADAMW_DECAY);
  return feeds;
}

// ------------------------------------------------------------------------------------------------ the task

interface Setup {
  spec: StepSpec;
  cut: CutSpec;
  prompts: GeneratePrompt[];
  /** Feeds that stay the same every step (targets, signs, stops, membership, weights). */
  fixed: Record<string, HostTensor>;
  /** Per prompt: the story phrase of a text prompt, -1 for image and noise prompts. */
  phraseOf: number[];
  phrases: number;
  engine: Engine;
  start: { z: Float32Array; m: Float32Array; v: Float32Array; t: number; tokens: Int32Array | null };
  z0: Float32Array | null;
  /** The first step to run. */
  first: number;
}

export async function generate(args: GenerateTaskArgs, ctx: TaskContext): Promise<GenerateTaskResult> {
  const phrases = validateGenerateArgs(args);
  const provider = args.provider ?? 'cpu';
  const emit = (m: GenerateStream) => ctx.emit(m);
  const slot = await ctx.memo<EngineSlot>(
    'vqclip.engine',
    async () => ({ engine: null, tail: Promise.resolve() }),
    async (x) => closeEngine(x.engine),
  );
  // One run at a time holds the step graph (a second waits for the first to end or pause).
  const prev = slot.tail;
  let release!: () => void;
  slot.tail = new Promise<void>((r) => (release = r));
  try {
    await prev;
    const setup = await prepare(args, phrases, ctx, slot, provider);
    // The step session is created here, after prepare() has let go of the models (whose weights it read into
    // memory when a graph had to be built), so the two copies are not held at once.
    const engine = setup.engine;
    if (!engine.step) {
      // memoryPattern: ORT's memory pattern allocates the planned block on the second run on top of the
      // arena the first run filled (3.2 GB instead of 2.3 GB at 256x256 with 32 cutouts); off, the arena's
      // blocks are reused from run to run.
      const opts: SessionOptions = {
        provider,
        preferredOutputLocation: { z_next: 'gpu-buffer', m_next: 'gpu-buffer', v_next: 'gpu-buffer' },
        memoryPattern: false,
        ...(args.profile ? { profile: true } : {}),
      };
      emit({ type: 'status', message: 'loading the step graph' });
      engine.step = await ctx.device.load(engine.source!, opts);
      engine.source = null;
    }
    const result = await run(args, ctx, setup, engine.step, emit);
    if (args.profile) {
      // A profile ends with the session's; the next run gets a fresh one.
      const byOp: Record<string, number> = {};
      for (const n of await engine.step.endProfiling()) byOp[n.op] = (byOp[n.op] ?? 0) + n.durUs / 1000;
      result.profile = byOp;
      await closeEngine(setup.engine);
      if (slot.engine === setup.engine) slot.engine = null;
    }
    return result;
  } finally {
    release();
  }
}

async function prepare(
  args: GenerateTaskArgs,
  phrases: Phrase[],
  ctx: TaskContext,
  slot: EngineSlot,
  provider: ProviderName,
): Promise<Setup> {
  const s = args.settings;
  const emit = (m: GenerateStream) => ctx.emit(m);
  emit({ type: 'status', message: 'opening the models' });
  const coder = await VqganCoder.open(ctx.device, args.vqgan, (line) => emit({ type: 'status', message: line }));
  const embedder = await ClipEmbedder.open(ctx.device, args.clip.dir, {
    provider,
    ...(args.clip.cacheFile ? { cacheFile: args.clip.cacheFile } : {}),
    ...(args.clip.graphCacheDir ? { graphCacheDir: args.clip.graphCacheDir } : {}),
  });
  try {
    const vq = coder.info.config;
    const factor = downsampleFactor(vq);
    validateGenerateArgs(args, { factor, nEmbed: vq.nEmbed, embedDim: vq.embedDim });
    const clip = embedder.config;
    const E = clip.projectionDim;

    // ---- prompts -> target rows
    emit({ type: 'status', message: 'embedding the prompts' });
    const prompts: GeneratePrompt[] = [];
    const phraseOf: number[] = [];
    const rows: { v: Float32Array; prompt: number; sign: number; stop: number }[] = [];
    const texts = phrases.flatMap((ph, k) => ph.map((p) => ({ p, k })));
    const cache = new Map<string, Float32Array>();
    for (const { p, k } of texts) {
      let v = cache.get(p.text);
      if (!v) {
        v = (await embedder.embedTexts([p.text])).embeds[0]!;
        cache.set(p.text, v);
        await ctx.checkpoint().catch(swallowCancel);
      }
      rows.push({ v, prompt: prompts.length, sign: Math.sign(p.weight), stop: p.stop });
      phraseOf.push(phrases.length > 1 ? k : 0);
      prompts.push({ text: p.text, weight: p.weight, stop: p.stop, kind: 'text', phrase: phrases.length > 1 ? k : 0 });
    }
    const cut: CutSpec = {
      method: s.cutMethod,
      cuts: s.cuts,
      size: clip.vision.imageSize,
      height: s.height,
      width: s.width,
      cutPow: s.cutPow,
    };
    for (const [k, ip] of s.imagePrompts.entries()) {
      const [, , ih, iw] = ip.pixels.dims as [number, number, number, number];
      const session = await ctx.device.load(emitImagePromptGraph(cut, ih, iw), { provider });
      let embeds: Float32Array[];
      try {
        const feeds = { pixels: ip.pixels, ...cutFeeds(cut, Rng.stream(s.seed, STREAM.imagePrompt, k)) };
        const { cutouts } = await session.run(feeds);
        embeds = (await embedder.embedImages(cutouts!)).embeds;
      } finally {
        await session.release();
      }
      for (const v of embeds) rows.push({ v, prompt: prompts.length, sign: Math.sign(ip.weight), stop: ip.stop });
      phraseOf.push(-1);
      prompts.push({ text: `image ${k + 1} (${iw}x${ih})`, weight: ip.weight, stop: ip.stop, kind: 'image' });
    }
    for (const np of s.noisePrompts) {
      const v = new Float32Array(E);
      Rng.stream(np.seed, STREAM.noisePrompt).fillNormal(v);
      rows.push({ v: unit(v), prompt: prompts.length, sign: Math.sign(np.weight), stop: -Infinity });
      phraseOf.push(-1);
      prompts.push({ text: `noise ${np.seed}`, weight: np.weight, stop: -Infinity, kind: 'noise' });
    }
    if (prompts.length === 0) fail('generate: no prompts (write a text prompt, or give an image or noise prompt)');
    const T = rows.length;
    const P = prompts.length;
    const targets = new Float32Array(T * E);
    const sign = new Float32Array(T);
    const stop = new Float32Array(T);
    const member = new Float32Array(T * P);
    const perPrompt = new Array<number>(P).fill(0);
    for (const r of rows) perPrompt[r.prompt]!++;
    rows.forEach((r, i) => {
      targets.set(unit(r.v), i * E);
      // A zero weight still reports its distance (sign +1) but never pulls (its factor is 0).
      sign[i] = r.sign === 0 ? 1 : r.sign;
      stop[i] = r.stop;
      member[i * P + r.prompt] = 1 / perPrompt[r.prompt]!;
    });
    const fixed: Record<string, HostTensor> = {
      targets: f32([T, E], targets),
      sign: f32([T], sign),
      stop: f32([T], stop),
      member: f32([T, P], member),
      weight: f32(
        [P],
        Float32Array.from(prompts, (p) => Math.abs(p.weight)),
      ),
    };

    // ---- the step graph (and the token lookup) for this spec, reusing the worker's when it matches
    const spec: StepSpec = {
      clip,
      vqgan: vq,
      width: s.width,
      height: s.height,
      cuts: s.cuts,
      cutMethod: s.cutMethod,
      targets: T,
      prompts: P,
      optimizer: s.optimizer,
      initTerm: s.initWeight > 0,
      cutChunk: CUT_CHUNK,
    };
    const [D, h, w] = latentShape(spec);
    const clipId = fileIdentity(embedder.weightsFile);
    const vqId = fileIdentity(coder.info.checkpoint);
    const key = JSON.stringify({ spec: stepSpecKey(spec), clipId, vqId, provider, profile: !!args.profile });
    if (slot.engine?.key !== key) {
      await closeEngine(slot.engine);
      slot.engine = null;
      const shared: SharedWeights[] = [
        { id: clipId, load: async () => (await embedder.load()).weights },
        { id: vqId, load: () => coder.weights() },
      ];
      const cacheDir = args.clip.graphCacheDir ?? args.vqgan.graphCacheDir;
      const t0 = performance.now();
      emit({ type: 'status', message: 'building the step graph' });
      const g = await cachedGraph(
        cacheDir,
        { graph: STEP_GRAPH, weights: `${clipId}|${vqId}`, shapes: { z: [1, D, h, w] }, options: stepSpecKey(spec) },
        async (ext) => emitStepGraph(spec, (await embedder.load()).weights, await coder.weights(), ext),
        { weights: shared },
      );
      emit({
        type: 'status',
        message: `step graph ${g.hit ? 'read from the cache' : 'built'} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
      });
      const source: ModelSource = g.external && g.file ? { file: g.file } : g.bytes;
      slot.engine = { key, step: null, source, lookup: null };
    }
    const engine = slot.engine;
    const lookup = async (tokens: Int32Array): Promise<Float32Array> => {
      if (!engine.lookup) {
        const g = await cachedGraph(
          args.vqgan.graphCacheDir,
          { graph: LOOKUP_GRAPH, weights: vqId, shapes: { tokens: [h * w] }, options: { config: vq, h, w } },
          async (ext) => emitLookupGraph(vq, await coder.weights(), { h, w }, ext),
          { weights: { id: vqId, load: () => coder.weights() } },
        );
        engine.lookup = await ctx.device.load(g.external && g.file ? { file: g.file } : g.bytes, { provider });
      }
      const ids = { dtype: 'int64' as const, dims: [h * w], data: BigInt64Array.from(tokens, (t) => BigInt(t)) };
      return (await engine.lookup.run({ tokens: ids })).z!.data as Float32Array;
    };

    // ---- the start
    const initTokens = async (): Promise<Int32Array> => {
      const init = s.init;
      if (init.kind === 'random') {
        const rng = Rng.stream(s.seed, STREAM.init);
        return Int32Array.from({ length: h * w }, () => rng.int(vq.nEmbed));
      }
      emit({ type: 'status', message: 'encoding the start image' });
      const x =
        init.kind === 'image'
          ? init.pixels
          : noiseImage(init.style, s.width, s.height, Rng.stream(s.seed, STREAM.init));
      const { indices } = await coder.encode(x, provider);
      return Int32Array.from(indices.data as BigInt64Array, (t) => Number(t));
    };
    const n = D * h * w;
    const f = args.from;
    const shapeKey = `${D}x${h}x${w}`;
    let start: Setup['start'] | null = null;
    let first = f?.step ?? 0;
    if (f?.z) {
      const zero = new Float32Array(n);
      start = { z: f.z, m: f.m ?? zero, v: f.v ?? zero.slice(), t: f.m ? f.step : 0, tokens: null };
    }
    if (!start && args.keepKey) {
      // A paused run's state goes on exactly, from where it stopped (a `from` at or before that step is the
      // caller's fallback for when the worker has forgotten it).
      const box = await keepBox(ctx, args.keepKey);
      const k = box.state;
      if (k && k.shape === shapeKey && k.step >= first && k.step <= s.steps) {
        start = { z: k.z, m: k.m, v: k.v, t: k.t, tokens: null };
        first = k.step;
        box.state = null;
      }
    }
    if (!start && f?.tokens) {
      start = { z: await lookup(f.tokens), m: new Float32Array(n), v: new Float32Array(n), t: 0, tokens: f.tokens };
    }
    if (!start && first > 0) {
      fail(
        `cannot continue at step ${first}: no state is kept under this key any more (the worker restarted or ` +
          'forgot it) and no tokens were given: continue from a snapshot instead',
      );
    }
    let z0: Float32Array | null = null;
    if (!start || s.initWeight > 0) {
      const tokens = await initTokens();
      const z = await lookup(tokens);
      z0 = s.initWeight > 0 ? z : null;
      start ??= { z: z.slice(), m: new Float32Array(n), v: new Float32Array(n), t: 0, tokens };
    }
    return { spec, cut, prompts, fixed, phraseOf, phrases: Math.max(1, phrases.length), engine, start, z0, first };
  } finally {
    await embedder.close();
    await coder.close();
  }
}

function swallowCancel(e: unknown): void {
  if (!isCancelled(e)) throw e;
}

async function run(
  args: GenerateTaskArgs,
  ctx: TaskContext,
  st: Setup,
  session: RuntimeSession,
  emit: (m: GenerateStream) => void,
): Promise<GenerateTaskResult> {
  const s = args.settings;
  const { spec } = st;
  const [D, h, w] = latentShape(spec);
  const zShape = [1, D, h, w];
  const first = st.first;
  const every = s.storyEvery ?? Math.max(1, Math.ceil(s.steps / st.phrases));
  const base: GenerateTaskResult = {
    step: first,
    stopped: true,
    tokens: st.start.tokens ?? new Int32Array(0),
    width: s.width,
    height: s.height,
    rgb: new Uint8Array(0),
    prompts: st.prompts,
  };
  let z: Feed = f32(zShape, st.start.z);
  let m: Feed = f32(zShape, st.start.m);
  let v: Feed = f32(zShape, st.start.v);
  const owned = new Set<DeviceTensor>();
  const replace = (old: Feed, next: Feed | undefined): Feed => {
    if (!next) return old;
    if (old instanceof DeviceTensor && owned.delete(old)) old.dispose();
    if (next instanceof DeviceTensor) owned.add(next);
    return next;
  };
  let t = st.start.t;
  /** The state z, m, v hold: the number of updates behind them. */
  let state = first;
  let stopped = false;
  /** Keeps the state under keepKey when the run stopped early, forgets it when it is done. */
  const keep = async () => {
    if (!args.keepKey) return;
    const box = await keepBox(ctx, args.keepKey);
    if (!stopped) {
      box.state = null;
      return;
    }
    const host = async (x: Feed) => (await toHost(ctx.device, x, session.provider)).data.slice() as Float32Array;
    box.state = { step: state, t, z: await host(z), m: await host(m), v: await host(v), shape: `${D}x${h}x${w}` };
  };
  try {
    if (ctx.signal.aborted) {
      stopped = true;
      await keep();
      return base;
    }
    emit({ type: 'status', message: `running ${s.steps - first} steps` });
    // State i is z after i updates: its pass reports its losses, image and tokens, then (but for the last
    // state, s.steps) updates it to state i + 1.
    for (let i = first; i <= s.steps; i++) {
      const last = i === s.steps;
      const phrase = st.phrases > 1 ? Math.min(Math.floor(i / every), st.phrases - 1) : 0;
      const active = Float32Array.from(st.phraseOf, (p) => (p < 0 || p === phrase ? 1 : 0));
      const tt = t + 1;
      const feeds: Record<string, Feed> = {
        ...st.fixed,
        ...cutFeeds(st.cut, Rng.stream(s.seed, STREAM.cuts, i)),
        ...optimizerFeeds(s, i, tt),
        z,
        active: f32([active.length], active),
      };
      if (spec.optimizer !== 'sgd') {
        feeds.m = m;
        feeds.v = v;
      }
      if (spec.initTerm) {
        feeds.z0 = f32(zShape, st.z0!);
        feeds.init_weight = scalar(s.initWeight);
      }
      const t0 = performance.now();
      const { host, device } = await session.runMixed(feeds);
      const ms = performance.now() - t0;
      const losses = Array.from(host.losses!.data as Float32Array);
      emit({ type: 'step', step: i, loss: (host.loss!.data as Float32Array)[0]!, losses, ms, phrase });
      const rgb = host.rgb!.data as Uint8Array;
      const tokens = host.tokens!.data as Int32Array;
      base.step = i;
      base.rgb = rgb;
      base.tokens = tokens;
      if (last || i === first || (args.previewEvery > 0 && i % args.previewEvery === 0)) {
        emit({ type: 'frame', step: i, width: s.width, height: s.height, rgb: rgb.slice() });
      }
      if (last || (args.snapshotEvery > 0 && i % args.snapshotEvery === 0 && i > first)) {
        emit({ type: 'snapshot', step: i, tokens: tokens.slice() });
      }
      if (last) {
        // The last state's update is not taken (nothing would show it); its outputs are let go.
        for (const d of Object.values(device)) d.dispose();
        break;
      }
      const out = { ...host, ...device } as Record<string, Feed>;
      z = replace(z, out.z_next);
      if (spec.optimizer !== 'sgd') {
        m = replace(m, out.m_next);
        v = replace(v, out.v_next);
      }
      t = tt;
      state = i + 1;
      try {
        await ctx.checkpoint();
      } catch (e) {
        if (!isCancelled(e)) throw e;
        stopped = true;
        break;
      }
    }
    await keep();
    return { ...base, stopped };
  } finally {
    for (const d of owned) d.dispose();
  }
}

/** The worker's generation task. */
export const vqclipTasks = {
  'vqclip.generate': generate,
};
