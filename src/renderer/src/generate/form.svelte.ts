// The Generate form: what the next run will be. One exported $state object mutated in place (it
// outlives the page, so leaving and coming back keeps what was typed), the settings it makes, the
// checks that say what to fix, and how a remix (a gallery image's spec) or a fork (a run's snapshot)
// fills it.
import {
  GenerateSettings,
  type GenerateSettingsResolved,
  type ImageInput,
  type Provider,
  PROVIDER_CHOICES,
} from '../../../shared/api.js';
import { emptyRow, formatPrompts, parsePrompts, type PromptRow, rowKey, textProblem } from './prompts.js';

export type InitKind = 'random' | 'image' | 'pixels' | 'gradient';

/** A picture given to the run (an image prompt, or the init image), with what the form shows of it. */
export interface PictureEntry {
  key: number;
  image: ImageInput;
  name: string;
  /** Preview: an object URL for dropped bytes (`owned`, revoked when it goes), or an asset URL. */
  url: string;
  owned: boolean;
  weight: number;
  stop: number | null;
}

export interface NoiseRow {
  key: number;
  seed: number;
  weight: number;
}

/** A fork: the run and snapshot the next run starts from (its size and VQGAN are the parent's). */
export interface ForkFrom {
  runId: number;
  step: number;
  title: string;
  width: number;
  height: number;
  vqgan: string;
}

/** The numbers and choices the form shows as the settings name them. */
type Plain = Pick<
  GenerateSettingsResolved,
  'initWeight' | 'width' | 'height' | 'steps' | 'cuts' | 'cutPow' | 'cutMethod' | 'lr' | 'optimizer' | 'snapshotEvery'
>;

export interface GenerateForm extends Plain {
  phrases: PromptRow[][];
  storyEvery: number | null;
  imagePrompts: PictureEntry[];
  noisePrompts: NoiseRow[];
  init: InitKind;
  initImage: PictureEntry | null;
  seedLocked: boolean;
  seed: number;
  decay: boolean;
  decayEvery: number;
  decayFactor: number;
  /** '' = the catalog's default. */
  clip: string;
  vqgan: string;
  /** '' = the provider chosen in Settings. */
  provider: Provider | '';
  fork: ForkFrom | null;
  /** Where the form was last filled from (shown as a line above it), or null. */
  filledFrom: string | null;
}

const defaults: GenerateSettingsResolved = GenerateSettings.parse({});

export const randomSeed = (): number => Math.floor(Math.random() * 0xffffffff);

export function defaultForm(): GenerateForm {
  return {
    phrases: [[emptyRow()]],
    storyEvery: null,
    imagePrompts: [],
    noisePrompts: [],
    init: 'random',
    initImage: null,
    initWeight: defaults.initWeight,
    width: defaults.width,
    height: defaults.height,
    steps: defaults.steps,
    seedLocked: false,
    seed: randomSeed(),
    cuts: defaults.cuts,
    cutPow: defaults.cutPow,
    cutMethod: defaults.cutMethod,
    lr: defaults.lr,
    optimizer: defaults.optimizer,
    decay: false,
    decayEvery: 100,
    decayFactor: 0.5,
    clip: '',
    vqgan: '',
    provider: '',
    snapshotEvery: defaults.snapshotEvery,
    fork: null,
    filledFrom: null,
  };
}

export const form = $state<GenerateForm>(defaultForm());

// ---------- the settings a form makes ----------

const finiteOr = <T>(n: number | null | undefined, fallback: T): number | T =>
  typeof n === 'number' && Number.isFinite(n) ? n : fallback;

/** The call's settings; numbers left empty stay undefined, so the checks name them. */
export function toSettings(f: GenerateForm): GenerateSettings {
  const width = f.fork ? f.fork.width : f.width;
  const height = f.fork ? f.fork.height : f.height;
  const vqgan = (f.fork ? f.fork.vqgan : f.vqgan).trim();
  const story = f.phrases.filter((rows) => rows.some((r) => r.text.trim() !== '')).length > 1;
  const s: GenerateSettings = {
    prompts: formatPrompts(f.phrases),
    imagePrompts: f.imagePrompts.map((p) => ({
      image: p.image,
      weight: p.weight,
      ...(p.stop !== null && Number.isFinite(p.stop) ? { stop: p.stop } : {}),
    })),
    noisePrompts: f.noisePrompts.map((n) => ({ seed: n.seed, weight: n.weight })),
    init:
      f.init === 'image' && f.initImage
        ? { kind: 'image', image: f.initImage.image }
        : f.init === 'pixels' || f.init === 'gradient'
          ? { kind: 'noise', style: f.init }
          : { kind: 'random' },
    initWeight: f.initWeight,
    width,
    height,
    steps: f.steps,
    cuts: f.cuts,
    cutPow: f.cutPow,
    cutMethod: f.cutMethod,
    lr: f.lr,
    optimizer: f.optimizer,
    stepDecay: f.decay ? { every: f.decayEvery, factor: f.decayFactor } : null,
    snapshotEvery: f.snapshotEvery,
  };
  if (story && finiteOr(f.storyEvery, null) !== null) s.storyEvery = f.storyEvery!;
  if (f.seedLocked) s.seed = f.seed;
  if (f.clip.trim()) s.clip = f.clip.trim();
  if (vqgan) s.vqgan = vqgan;
  if (f.provider) s.provider = f.provider;
  return s;
}

// ---------- what to fix ----------

export interface Problem {
  /** The form field it is about (the id of its input), for aria-invalid and a link. */
  field: string;
  message: string;
}

const labels: Record<string, string> = {
  prompts: 'Prompts',
  storyEvery: 'Next phrase every',
  imagePrompts: 'Image prompts',
  noisePrompts: 'Noise prompts',
  init: 'Start from',
  initWeight: 'Init weight',
  width: 'Width',
  height: 'Height',
  steps: 'Steps',
  seed: 'Seed',
  cuts: 'Cutouts',
  cutPow: 'Cut power',
  cutMethod: 'Cut method',
  lr: 'Learning rate',
  optimizer: 'Optimiser',
  stepDecay: 'Step decay',
  clip: 'CLIP model',
  vqgan: 'VQGAN model',
  provider: 'Provider',
  snapshotEvery: 'Snapshot every',
};

interface ZodIssueLike {
  code: string;
  path: readonly PropertyKey[];
  message: string;
  minimum?: unknown;
  maximum?: unknown;
  expected?: unknown;
  format?: unknown;
}

function issueWords(issue: ZodIssueLike): string {
  if (issue.code === 'too_small' && issue.minimum !== undefined) return `must be at least ${String(issue.minimum)}`;
  if (issue.code === 'too_big' && issue.maximum !== undefined) return `must be at most ${String(issue.maximum)}`;
  if (issue.code === 'invalid_type' && (issue.expected === 'number' || issue.expected === 'int'))
    return 'needs a number';
  if (issue.expected === 'int' || issue.format === 'safeint') return 'must be a whole number';
  return issue.message.replace(/^Invalid input: /, '');
}

/** Everything that keeps the form from making a run, in words that say what to do. */
export function problems(f: GenerateForm): Problem[] {
  const out: Problem[] = [];
  f.phrases.forEach((rows, p) =>
    rows.forEach((r, i) => {
      const problem = textProblem(r.text);
      if (problem) out.push({ field: `prompt-${p}-${i}`, message: `Prompt ${i + 1}: ${problem}` });
      if (!Number.isFinite(r.weight))
        out.push({ field: `prompt-${p}-${i}-weight`, message: `Prompt ${i + 1}: the weight needs a number.` });
    }),
  );
  const hasText = f.phrases.some((rows) => rows.some((r) => r.text.trim() !== ''));
  if (!hasText && f.imagePrompts.length === 0 && f.noisePrompts.length === 0)
    out.push({ field: 'prompt-0-0', message: 'Write a prompt (or add an image prompt) to say what to paint.' });
  if (f.fork && Number.isFinite(f.steps) && f.steps <= f.fork.step)
    out.push({
      field: 'steps',
      message: `Steps: count from the start, so a fork from step ${f.fork.step} needs more than ${f.fork.step}.`,
    });
  if (f.init === 'image' && !f.initImage)
    out.push({ field: 'init-image', message: 'Start from: drop an init image, or start from random tokens.' });
  const parsed = GenerateSettings.safeParse(toSettings(f));
  if (!parsed.success)
    for (const issue of parsed.error.issues as ZodIssueLike[]) {
      const top = String(issue.path[0] ?? '');
      if (top === 'prompts') continue; // said per row above
      out.push({ field: top, message: `${labels[top] ?? top}: ${issueWords(issue)}.` });
    }
  return out;
}

// ---------- filling the form from a run's settings (remix, fork) ----------

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const numberOf = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** A model as a run records it: an id, or an object with its id (and file hashes). */
function modelOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isRecord(v) && typeof v.id === 'string') return v.id;
  return undefined;
}

/** Only pictures already in the data folder can come back (bytes are not kept in a spec). */
function pictureOf(
  v: unknown,
  assetUrl: (sha: string) => string,
  weight = 1,
  stop: number | null = null,
): PictureEntry | null {
  if (!isRecord(v) || typeof v.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(v.sha256)) return null;
  return {
    key: rowKey(),
    image: { sha256: v.sha256 },
    name: `Image ${v.sha256.slice(0, 8)}`,
    url: assetUrl(v.sha256),
    owned: false,
    weight,
    stop,
  };
}

function releasePictures(f: GenerateForm): void {
  for (const p of [...f.imagePrompts, ...(f.initImage ? [f.initImage] : [])]) if (p.owned) URL.revokeObjectURL(p.url);
}

/**
 * Puts a run's settings (a gallery image's spec, a RunDetail's settings) into the form; what it does
 * not name keeps its default. The seed comes back locked, so the same settings make the same picture.
 * Returns what could not be carried over, in words.
 */
export function applySpec(f: GenerateForm, spec: unknown, assetUrl: (sha: string) => string): string[] {
  const dropped: string[] = [];
  const outer = isRecord(spec) ? spec : {};
  // A run's stored spec holds its settings under `settings` (with where it started and its losses).
  const s = typeof outer.prompts !== 'string' && isRecord(outer.settings) ? outer.settings : outer;
  const next = defaultForm();
  if (typeof s.prompts === 'string') next.phrases = parsePrompts(s.prompts);
  next.storyEvery = numberOf(s.storyEvery) ?? null;
  if (Array.isArray(s.imagePrompts))
    for (const p of s.imagePrompts) {
      const entry = isRecord(p)
        ? pictureOf(p.image, assetUrl, numberOf(p.weight) ?? 1, numberOf(p.stop) ?? null)
        : null;
      if (entry) next.imagePrompts.push(entry);
      else dropped.push('an image prompt that is not in the data folder');
    }
  if (Array.isArray(s.noisePrompts))
    for (const n of s.noisePrompts)
      if (isRecord(n) && numberOf(n.seed) !== undefined)
        next.noisePrompts.push({ key: rowKey(), seed: numberOf(n.seed)!, weight: numberOf(n.weight) ?? 1 });
  if (isRecord(s.init)) {
    if (s.init.kind === 'noise' && (s.init.style === 'pixels' || s.init.style === 'gradient')) next.init = s.init.style;
    else if (s.init.kind === 'image') {
      next.initImage = pictureOf(s.init.image, assetUrl);
      if (next.initImage) next.init = 'image';
      else dropped.push('the init image, which is not in the data folder');
    }
  }
  const numbers = ['initWeight', 'width', 'height', 'steps', 'cuts', 'cutPow', 'lr', 'snapshotEvery'] as const;
  for (const k of numbers) next[k] = numberOf(s[k]) ?? next[k];
  const seed = numberOf(s.seed);
  if (seed !== undefined) {
    next.seed = seed;
    next.seedLocked = true;
  }
  if (s.cutMethod === 'original' || s.cutMethod === 'pooled') next.cutMethod = s.cutMethod;
  if (s.optimizer === 'adam' || s.optimizer === 'adamw' || s.optimizer === 'sgd') next.optimizer = s.optimizer;
  if (isRecord(s.stepDecay) && numberOf(s.stepDecay.every) && numberOf(s.stepDecay.factor)) {
    next.decay = true;
    next.decayEvery = numberOf(s.stepDecay.every)!;
    next.decayFactor = numberOf(s.stepDecay.factor)!;
  }
  next.clip = modelOf(s.clip) ?? '';
  next.vqgan = modelOf(s.vqgan) ?? '';
  if (typeof s.provider === 'string' && (PROVIDER_CHOICES as readonly string[]).includes(s.provider))
    next.provider = s.provider as Provider;
  releasePictures(f);
  Object.assign(f, next);
  return dropped;
}

/** Back to a blank form (a new random seed, no fork). */
export function resetForm(f: GenerateForm = form): void {
  releasePictures(f);
  Object.assign(f, defaultForm());
}

/** Fills the form from a run's settings for a remix: the same run, to change and queue again. */
export function remix(spec: unknown, title: string, assetUrl: (sha: string) => string, f = form): string[] {
  const dropped = applySpec(f, spec, assetUrl);
  f.filledFrom = `Remixing “${title}”`;
  return dropped;
}

/**
 * Fills the form to fork a run at one of its snapshots: its settings and its seed; size and VQGAN stay
 * the parent's. A run's steps count from its very start (a fork goes on from its snapshot's step), so the
 * fork ends where its parent would have, or, forked at its end, runs as many steps again.
 */
export function fork(
  run: { runId: number; title: string; steps: number; width: number; height: number; settings: unknown },
  step: number,
  assetUrl: (sha: string) => string,
  f = form,
): string[] {
  const dropped = applySpec(f, run.settings, assetUrl);
  f.steps = run.steps > step + 1 ? run.steps : step + run.steps;
  f.fork = { runId: run.runId, step, title: run.title, width: run.width, height: run.height, vqgan: f.vqgan };
  f.width = run.width;
  f.height = run.height;
  f.filledFrom = null;
  return dropped;
}

export function stopForking(f: GenerateForm = form): void {
  f.fork = null;
}

/** What an image made elsewhere (AUTOMATIC1111, ComfyUI, InvokeAI, ...) says about how it was made. */
export interface ImageSettings {
  prompt: string | null;
  negativePrompt: string | null;
  /** The tool's parameters as shown ("Seed", "Size", "Steps", ...). */
  parameters: Record<string, string>;
  /** The image's own size, used when the parameters give none. */
  width: number;
  height: number;
}

/** Sizes a run takes: multiples of 16 (VQGAN's grid) within the form's bounds. */
const runSize = (n: number): number => Math.min(4096, Math.max(16, Math.round(n / 16) * 16));

/**
 * Fills the form from an image another tool made: its prompt (and its negative prompt as a prompt
 * that pushes away, weight −1), its size, and its seed where it fits this studio's seeds. The
 * rest starts fresh: the tool's sampler steps, CFG scale and model are not what a VQGAN+CLIP run
 * means by its steps and models. Returns what was carried over and what was not, in words.
 */
export function useImageSettings(
  image: ImageSettings,
  title: string,
  f: GenerateForm = form,
): { carried: string[]; dropped: string[] } {
  const carried: string[] = [];
  const dropped: string[] = [];
  const next = defaultForm();
  // `|` and `^` separate prompts and story phrases here; in another tool's prompt they are text.
  const text = (s: string) => s.replace(/\s*[|^]\s*/g, ', ').trim();
  if (image.prompt?.trim()) {
    next.phrases = [[emptyRow(text(image.prompt))]];
    carried.push('the prompt');
  }
  if (image.negativePrompt?.trim()) {
    next.phrases[0]!.push({ ...emptyRow(text(image.negativePrompt)), weight: -1 });
    carried.push('the negative prompt (as a prompt of weight −1)');
  }
  const size = /^(\d+)\s*x\s*(\d+)$/i.exec(image.parameters.Size ?? '');
  const [w, h] = size ? [Number(size[1]), Number(size[2])] : [image.width, image.height];
  if (w > 0 && h > 0) {
    next.width = runSize(w);
    next.height = runSize(h);
    carried.push(`the size (${next.width} × ${next.height})`);
  }
  const seed = image.parameters.Seed;
  if (seed !== undefined) {
    const n = Number(seed);
    if (Number.isInteger(n) && n >= 0 && n <= 0xffffffff) {
      next.seed = n;
      next.seedLocked = true;
      carried.push('the seed');
    } else dropped.push(`the seed ${seed} (seeds here go up to 4294967295)`);
  }
  if (image.parameters.Steps !== undefined)
    dropped.push(`the ${image.parameters.Steps} sampler steps (a VQGAN+CLIP run counts its own steps)`);
  releasePictures(f);
  Object.assign(f, next);
  f.filledFrom = `Using the settings of “${title}”`;
  return { carried, dropped };
}
