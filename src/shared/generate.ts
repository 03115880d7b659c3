// Generate: VQGAN+CLIP text-to-image runs. A run is queued, runs as a job (jobProgress per step with its
// losses, jobFrame previews), is kept in the history with its snapshots (the tokens every few steps, so a
// trajectory can be scrubbed and forked from any of them), and ends as a gallery image whose metadata
// re-creates it. Option names follow the tools users know (nerdyrodent's VQGAN-CLIP).
import { z } from 'zod';
import { Bytes, Id, Sha256 } from './common.js';
import { JobStatus } from './jobs.js';
import { Provider } from './providers.js';
import { RunState } from './runs.js';

/** A picture given to a run: one already in the data folder (a gallery image), or a file's bytes. */
export const ImageInput = z.union([
  z.object({ sha256: Sha256 }).strict(),
  z.object({ name: z.string().min(1).max(1024), data: Bytes }).strict(),
]);
export type ImageInput = z.infer<typeof ImageInput>;

const finite = (what: string) => z.number({ error: `${what} must be a number` }).finite(`${what} must be finite`);

/** A model: a catalog id, or the name of a folder under the data folder's models/ (never a path). */
const ModelRef = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]*$/i, 'expected a model id from the Models page (like clip-vit-base-patch32)')
  .max(200);

export const GenerateSettings = z
  .object({
    /** `text:weight:stop`, several joined by `|`; story phrases joined by `^`. */
    prompts: z.string().max(10_000).default(''),
    /** With `^` story phrases: move to the next phrase every this many steps (default: steps / phrases). */
    storyEvery: z.number().int().positive().optional(),
    imagePrompts: z
      .array(
        z
          .object({
            image: ImageInput,
            weight: finite('an image prompt weight').default(1),
            stop: finite('a stop value').optional(),
          })
          .strict(),
      )
      .max(8)
      .default([]),
    noisePrompts: z
      .array(
        z.object({ seed: z.number().int().min(0).max(0xffffffff), weight: finite('a noise prompt weight') }).strict(),
      )
      .max(8)
      .default([]),
    init: z
      .discriminatedUnion('kind', [
        z.object({ kind: z.literal('random') }).strict(),
        z.object({ kind: z.literal('image'), image: ImageInput }).strict(),
        z.object({ kind: z.literal('noise'), style: z.enum(['pixels', 'gradient']) }).strict(),
      ])
      .default({ kind: 'random' }),
    /** Pull z toward its start (0 = off). */
    initWeight: finite('the init weight').min(0, 'the init weight cannot be negative').max(1000).default(0),
    width: z.number().int().min(16).max(4096).default(256),
    height: z.number().int().min(16).max(4096).default(256),
    steps: z.number().int().min(0).max(100_000).default(300),
    /** Random when left out; the run records the one it used. */
    seed: z.number().int().min(0).max(0xffffffff).optional(),
    cuts: z.number().int().min(1).max(128).default(32),
    cutPow: finite('cut_pow').positive('cut_pow must be above 0').max(10).default(1),
    cutMethod: z.enum(['original', 'pooled']).default('original'),
    lr: finite('the learning rate').positive('the learning rate must be above 0').max(100).default(0.1),
    optimizer: z.enum(['adam', 'adamw', 'sgd']).default('adam'),
    stepDecay: z
      .object({ every: z.number().int().positive(), factor: finite('the decay factor').positive().max(1) })
      .strict()
      .nullable()
      .default(null),
    /** Default: the catalog's default CLIP and VQGAN. */
    clip: ModelRef.optional(),
    vqgan: ModelRef.optional(),
    /** Default: the provider chosen in Settings. */
    provider: Provider.optional(),
    /** Keep the tokens (and a small frame) every this many steps: the trajectory a run can be forked from. */
    snapshotEvery: z.number().int().min(1).max(10_000).default(10),
  })
  .strict();
export type GenerateSettings = z.input<typeof GenerateSettings>;
export type GenerateSettingsResolved = z.output<typeof GenerateSettings>;

/** A run as the queue and the page show it. */
export const RunSummary = z.object({
  runId: Id,
  /** Its job's id: jobProgress / jobFrame events carry it. */
  jobId: z.string(),
  title: z.string(),
  state: RunState,
  step: z.number().int(),
  steps: z.number().int(),
  width: z.number().int(),
  height: z.number().int(),
  seed: z.number().int(),
  parent: z.object({ runId: Id, step: z.number().int() }).nullable(),
  error: z.string().nullable(),
  createdAt: z.number(),
  /** The gallery image it ended as. */
  imageId: Id.nullable(),
});
export type RunSummary = z.infer<typeof RunSummary>;

export const RunDetail = RunSummary.extend({
  /** The settings as run (seed and size resolved, models by id with their file hashes). */
  settings: z.record(z.string(), z.unknown()),
  provenance: z.record(z.string(), z.unknown()),
  /** The trajectory: a snapshot every snapshotEvery steps, each with a small frame (an asset's hash). */
  snapshots: z.array(z.object({ step: z.number().int(), frame: Sha256.nullable() })),
  /** The loss curve so far (every step while it runs; kept, thinned to at most 1,000 points, when it ends). */
  losses: z.array(z.object({ step: z.number().int(), total: z.number(), perPrompt: z.array(z.number()) })),
  /** The prompts as parsed, in the order of perPrompt. */
  prompts: z.array(
    z.object({ text: z.string(), weight: z.number(), stop: z.number(), kind: z.enum(['text', 'image', 'noise']) }),
  ),
  job: JobStatus.nullable(),
});
export type RunDetail = z.infer<typeof RunDetail>;

const RunArg = z.object({ runId: Id }).strict();

/** How a trajectory exports: an animated WebP or GIF, or numbered PNG frames in a ZIP. */
export const TrajectoryFormat = z.enum(['webp', 'gif', 'png-frames']);
export type TrajectoryFormat = z.infer<typeof TrajectoryFormat>;

export const generateCalls = {
  /** Queues a run; `from` starts it from a snapshot of another run (fork), with these settings. */
  generate: {
    args: z
      .object({
        settings: GenerateSettings,
        from: z
          .object({ runId: Id, step: z.number().int().min(0) })
          .strict()
          .optional(),
      })
      .strict(),
    result: z.object({ runId: Id, jobId: z.string(), notes: z.array(z.string()) }),
  },
  /** The runs waiting, running or paused, in queue order. */
  generateQueue: { args: z.object({}).strict(), result: z.array(RunSummary) },
  /** Moves a queued run before another (or to the end). */
  generateMove: { args: z.object({ runId: Id, before: Id.nullable() }).strict(), result: z.array(RunSummary) },
  generatePause: { args: RunArg, result: RunSummary },
  generateResume: { args: RunArg, result: RunSummary },
  generateCancel: { args: RunArg, result: RunSummary },
  /** Adds steps to a finished run: a new run that goes on from its last step with the same settings. */
  generateContinue: {
    args: z.object({ runId: Id, steps: z.number().int().min(1).max(100_000) }).strict(),
    result: z.object({ runId: Id, jobId: z.string(), notes: z.array(z.string()) }),
  },
  getRun: { args: RunArg, result: RunDetail },
  /** The whole trajectory as an animated image (every snapshot a frame). */
  exportTrajectory: {
    args: z.object({ runId: Id, format: TrajectoryFormat.default('webp') }).strict(),
    result: z.object({ name: z.string(), mime: z.string(), data: Bytes }),
  },
  /**
   * Gets the compute worker ready for a run with these settings (the models opened, the step graph loaded),
   * without recording anything, so the first preview comes soon after Generate. Nothing is done when a run
   * is running or waiting (the device is busy, or about to be).
   */
  generateWarmup: {
    args: z.object({ settings: GenerateSettings }).strict(),
    result: z.object({ warmed: z.boolean(), reason: z.string() }),
  },
  /** What a size costs on this machine: FLOPs per step, an estimate of seconds per step and of memory. */
  generateEstimate: {
    args: z
      .object({
        width: z.number().int().min(16).max(4096),
        height: z.number().int().min(16).max(4096),
        cuts: z.number().int().min(1).max(128),
        clip: ModelRef.optional(),
        vqgan: ModelRef.optional(),
        provider: Provider.optional(),
      })
      .strict(),
    result: z.object({
      width: z.number().int(),
      height: z.number().int(),
      gflopPerStep: z.number(),
      secondsPerStep: z.number().nullable(),
      memoryBytes: z.number(),
      /** Why it cannot run here (too much memory), in words; null when it can. */
      refusal: z.string().nullable(),
    }),
  },
} as const;

/**
 * A generate run's jobProgress carries, in `values`: `loss` (the total), `loss:<i>` per prompt (in the order
 * of RunDetail.prompts), `itPerSecond` and `etaSeconds`; `step` and `total` are the run's steps.
 */
export const GENERATE_VALUE_KEYS = {
  total: 'loss',
  perPrompt: (i: number) => `loss:${i}`,
  speed: 'itPerSecond',
  eta: 'etaSeconds',
} as const;

export const generateEvents = {
  /** The queue changed (a run added, moved, started, paused, finished). */
  queueChanged: z.object({ runIds: z.array(Id) }),
} as const;
