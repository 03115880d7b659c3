// Generation runs as jobs: queued in the history (RunQueue), run one at a time on the compute worker by
// the process that owns the queue, reported step by step (jobProgress with the losses, it/s and ETA;
// jobFrame previews encoded off the main thread and throttled to what a page can draw), kept as a
// trajectory (the tokens every snapshotEvery steps, with a small frame each), and ended as a gallery
// image whose PNG carries the settings (our JSON chunk and an AUTOMATIC1111 `parameters` chunk).
//
// States (shared/runs.ts): queued -> running -> done | failed | cancelled, running <-> paused. Pause keeps
// z and the optimiser's state in the worker (the task's keepKey), so resume goes on exactly; after a
// restart a run resumes from its last snapshot. A fork starts a new run from a snapshot of another; a
// continue forks a finished run from its last step with more steps.
//
// Public API
//   new GenerationService(ctx, { runQueue }) .start() .close()
//   .enqueue(settings, { from?, allowPaths?, claim? }) -> { runId, jobId, notes }
//   .queue() .move() .pause() .resume() .cancel() .continueRun() .detail() .exportTrajectory() .estimate()
//   .run(runId) (a claimed run, executed now: the CLI) -> the run's final summary
import { randomInt } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  GenerateSettings,
  StudioError,
  type GenerateSettingsResolved,
  type ImageInput,
  type ImageMetadata,
  type RunDetail,
  type RunSummary,
  type TrajectoryFormat,
} from '../../../shared/api.js';
import { isTerminalRunState } from '../../../shared/runs.js';
import { appVersion } from '../../base/app-version.js';
import type { HostTensor } from '../../engine/graph/ir.js';
import type {
  GeneratePrompt,
  GenerateStream,
  GenerateTaskArgs,
  GenerateTaskResult,
} from '../../engine/vqclip/index.js';
import { readClipConfig } from '../../engine/nets/clip-load.js';
import { CLIP_VARIANTS, type ClipConfig } from '../../engine/nets/clip.js';
import { downsampleFactor, VQGAN_PRESETS, type VqganConfig } from '../../engine/nets/vqgan.js';
import { ortVersion } from '../../engine/runtime/ort.js';
import { acquireFolderLock, type FolderLock } from '../lock.js';
import type { StudioContext } from '../context.js';
import { sha256Async } from '../import-decode.js';
import type { RunRow } from '../history.js';
import { makeThumbnail } from '../images.js';
import { animate, framesZip, rgbToPng, rgbToPreview } from '../images-frames.js';
import { readVqganImage } from '../images-vqgan.js';
import { formatA1111 } from '../metadata/a1111.js';
import { OUR_KEYWORD, ourChunkText } from '../metadata/ours.js';
import type { ResolvedModel } from '../models/manager.js';
import { insertTextChunks } from '../png-chunks.js';
import { estimateStep, memoryRefusal } from './estimate.js';
import type { JobHandle } from './manager.js';
import { SqliteRunQueue, type RunQueue } from './queue.js';

// The engine task's contract (engine/vqclip): step k is the state after k updates; a run of S steps
// reports steps from.step ... S.
type TaskPrompt = GeneratePrompt;
type TaskStream = GenerateStream;
type TaskResult = GenerateTaskResult;

/** What runs.spec holds for a generate run: the settings as run (images as hashes), and where it started. */
interface RunSpec {
  settings: Omit<GenerateSettingsResolved, 'seed' | 'clip' | 'vqgan' | 'provider'> & {
    seed: number;
    clip: string;
    vqgan: string;
    provider: string;
  };
  from: { runId: number; step: number } | null;
  /** Kept when the run ends: the loss curve (thinned) and the prompts as parsed. */
  losses?: LossPoint[];
  prompts?: TaskPrompt[];
}

interface LossPoint {
  step: number;
  total: number;
  perPrompt: number[];
}

interface Active {
  runId: number;
  controller: AbortController;
  /** Why it was stopped: pause keeps its state to resume, cancel ends it. */
  intent: 'pause' | 'cancel' | null;
  done: Promise<void>;
}

export const jobIdOf = (runId: number) => `run-${runId}`;

/** A run's spec as this service wrote it (a run recorded by something else, or damaged, is not one). */
function isRunSpec(spec: unknown): spec is RunSpec {
  const s = (spec as Partial<RunSpec> | null)?.settings;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.prompts === 'string' &&
    [s.steps, s.width, s.height, s.seed, s.cuts, s.snapshotEvery].every((n) => Number.isInteger(n))
  );
}

/** The data folder's file that says which process runs the generation queue (its pid). */
export const QUEUE_LOCK = 'queue.lock';

const MAX_LOSS_POINTS = 1000;
/** Live previews at most this often (a page cannot draw more, and encoding costs). */
const PREVIEW_INTERVAL_MS = 150;
/** How often progress goes to the database while a run runs. */
const PROGRESS_WRITE_MS = 2000;

const toInput = (o: unknown): GenerateSettingsResolved => GenerateSettings.parse(o);

function thin(points: LossPoint[]): LossPoint[] {
  if (points.length <= MAX_LOSS_POINTS) return points;
  const every = points.length / MAX_LOSS_POINTS;
  return Array.from({ length: MAX_LOSS_POINTS }, (_, i) => points[Math.floor(i * every)]!).concat(points.at(-1)!);
}

function titleOf(prompts: string): string {
  const first = prompts
    .split(/[|^]/)[0]!
    .replace(/:[-\d.eE+]+(:[-\d.eE+]+)?\s*$/, '')
    .trim();
  return (first || 'Generated image').slice(0, 200);
}

/** A side rounded down to a multiple of the VQGAN's factor (at least one cell). */
function sideFor(vqgan: VqganConfig, v: number): number {
  const factor = downsampleFactor(vqgan);
  return Math.max(factor, Math.floor(v / factor) * factor);
}

/** The two models of a run as the vqclip.generate task takes them: where they are and their caches. */
function taskModels(clip: ResolvedModel, vqgan: ResolvedModel): Pick<GenerateTaskArgs, 'clip' | 'vqgan'> {
  return {
    clip: { dir: clip.location, cacheFile: clip.weightsCacheFile, graphCacheDir: clip.graphCacheDir },
    vqgan: {
      location: vqgan.location,
      name: vqgan.ref,
      cacheFile: vqgan.weightsCacheFile,
      graphCacheDir: vqgan.graphCacheDir,
    },
  };
}

export class GenerationService {
  readonly queue: RunQueue;
  #active: Active | null = null;
  #lock: FolderLock | null = null;
  #closed = false;
  #retry: NodeJS.Timeout | null = null;
  readonly #losses = new Map<number, LossPoint[]>();
  readonly #prompts = new Map<number, TaskPrompt[]>();
  #speed: Promise<number> | null = null;
  #warming: Promise<void> | null = null;

  constructor(
    private readonly ctx: StudioContext,
    private readonly opts: { runQueue: boolean },
  ) {
    this.queue = new SqliteRunQueue(ctx.history);
  }

  /** Takes the queue (one process at a time runs it), resumes runs a restart interrupted, starts the next. */
  start(): void {
    if (!this.opts.runQueue || this.#closed) return;
    const lock = acquireFolderLock(this.ctx.dataDir, QUEUE_LOCK);
    if (!lock.held) {
      // Another studio (the app and `fstudio serve` on one folder) runs the queue; take over when it stops.
      this.#retry = setTimeout(() => this.start(), 5000);
      this.#retry.unref();
      return;
    }
    this.#lock = lock;
    for (const run of this.ctx.history.listRunsByState('paused')) {
      const spec = run.provenance as { resumeAfterRestart?: boolean };
      if (run.kind !== 'generate' || !spec.resumeAfterRestart) continue;
      const { resumeAfterRestart: _, ...provenance } = run.provenance;
      this.ctx.history.setRunSpec(run.id, { spec: run.spec, provenance, title: run.title }, Date.now());
      this.ctx.history.transitionRun(run.id, { to: 'queued' }, Date.now());
      this.queue.first(run.id);
    }
    for (const run of this.queue.list()) this.#track(run);
    void this.#pump();
  }

  /** Pauses the running run (it resumes at the next start) and lets the queue go. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retry) clearTimeout(this.#retry);
    const a = this.#active;
    if (a) {
      a.intent = 'pause';
      a.controller.abort();
      await a.done;
    }
    this.#lock?.release();
  }

  // ---------- queueing ----------

  /**
   * Checks and records a run: the settings completed (seed, size rounded to the VQGAN's factor, models,
   * provider), the pictures it uses kept as assets it holds, the memory it needs checked. `claim` puts it
   * straight into running for the caller to run (the CLI), so no queue owner takes it meanwhile.
   */
  async enqueue(
    input: GenerateSettingsResolved,
    o: { from?: { runId: number; step: number }; allowPaths?: boolean; claim?: boolean } = {},
  ): Promise<{ runId: number; jobId: string; notes: string[] }> {
    this.ctx.live();
    const notes: string[] = [];
    const { history } = this.ctx;
    if (!input.prompts.trim() && input.imagePrompts.length === 0 && input.noisePrompts.length === 0)
      throw new StudioError(
        'InvalidArgument',
        'Write a prompt (like "a lighthouse at dusk"), or give an image prompt: a run needs something to aim for.',
      );
    if (o.from) {
      const parent = history.getRun(o.from.runId);
      if (!parent || parent.kind !== 'generate')
        throw new StudioError('NotFound', `No generate run with id ${o.from.runId} to start from.`);
      if (!history.snapshotAt(o.from.runId, o.from.step))
        throw new StudioError('NotFound', `Run ${o.from.runId} has no snapshot at or before step ${o.from.step}.`);
    }
    const clip = await this.#model('clip', input.clip, o.allowPaths);
    const vqgan = await this.#model('vqgan', input.vqgan, o.allowPaths);
    const { clipConfig, vqganConfig } = await this.#configs(clip, vqgan);
    const width = sideFor(vqganConfig, input.width);
    const height = sideFor(vqganConfig, input.height);
    if (width !== input.width || height !== input.height)
      notes.push(
        `${input.width}x${input.height} was rounded to ${width}x${height}: this VQGAN needs sides that are multiples of ${downsampleFactor(vqganConfig)}.`,
      );
    const cost = estimateStep(clipConfig, vqganConfig, width, height, input.cuts);
    const refusal = memoryRefusal(cost, width, height, input.cuts);
    if (refusal) throw new StudioError('TooLarge', refusal);
    const settings: RunSpec['settings'] = {
      ...input,
      width,
      height,
      seed: input.seed ?? randomInt(0, 0xffffffff),
      clip: clip.ref,
      vqgan: vqgan.ref,
      provider: input.provider ?? this.ctx.settings.get().preferredProvider,
    };
    // Pictures: kept in the data folder as assets the run holds, so the run can be re-created.
    const images = await Promise.all([
      ...settings.imagePrompts.map((p) => this.#keepImage(p.image)),
      ...(settings.init.kind === 'image' ? [this.#keepImage(settings.init.image)] : []),
    ]);
    settings.imagePrompts = settings.imagePrompts.map((p, i) => ({ ...p, image: { sha256: images[i]! } }));
    if (settings.init.kind === 'image') settings.init = { kind: 'image', image: { sha256: images.at(-1)! } };
    const spec: RunSpec = { settings, from: o.from ?? null };
    const now = Date.now();
    const runId = await this.ctx.mutex.run(async () =>
      history.transaction(() => {
        const id = history.enqueueRun({
          kind: 'generate',
          title: titleOf(settings.prompts),
          spec,
          provenance: this.#provenance(clip, vqgan),
          parentRunId: o.from?.runId ?? null,
          createdAt: now,
          progressTotal: Math.max(1, settings.steps),
        });
        settings.imagePrompts.forEach((p) =>
          history.addRunAsset(id, { sha256: (p.image as { sha256: string }).sha256, role: 'image-prompt' }),
        );
        if (settings.init.kind === 'image')
          history.addRunAsset(id, { sha256: (settings.init.image as { sha256: string }).sha256, role: 'init' });
        if (o.claim) history.transitionRun(id, { to: 'running' }, now);
        else this.queue.add(id);
        return id;
      }),
    );
    this.#track(history.getRun(runId)!);
    this.ctx.emit('queueChanged', { runIds: [runId] });
    if (!o.claim) void this.#pump();
    return { runId, jobId: jobIdOf(runId), notes };
  }

  async #model(kind: 'clip' | 'vqgan', ref: string | undefined, allowPaths = false): Promise<ResolvedModel> {
    if (ref && !allowPaths && /[\\/]/.test(ref))
      throw new StudioError('InvalidArgument', `"${ref}" is a path: name a model installed on the Models page.`);
    return this.ctx.models.resolve(kind, ref, { allowPaths });
  }

  async #configs(
    clip: ResolvedModel,
    vqgan: ResolvedModel,
  ): Promise<{ clipConfig: ClipConfig; vqganConfig: VqganConfig }> {
    const clipConfig = await readClipConfig(clip.location).catch(() => CLIP_VARIANTS['ViT-B/32'] as ClipConfig);
    const preset = vqgan.entry ? (VQGAN_PRESETS as Record<string, VqganConfig>)[vqgan.entry.id] : undefined;
    const vqganConfig =
      preset ??
      (
        await this.ctx.compute.vqganInfo({
          location: vqgan.location,
          name: vqgan.ref,
          cacheFile: vqgan.weightsCacheFile,
          graphCacheDir: vqgan.graphCacheDir,
        })
      ).config;
    return { clipConfig, vqganConfig };
  }

  #provenance(clip: ResolvedModel, vqgan: ResolvedModel): Record<string, unknown> {
    const hashes = (m: ResolvedModel) => m.entry?.files.map((f) => f.sha256 ?? null).filter(Boolean) ?? [];
    return {
      appVersion: appVersion(),
      node: process.versions.node,
      onnxruntime: ortVersion(),
      models: { clip: { ref: clip.ref, sha256: hashes(clip) }, vqgan: { ref: vqgan.ref, sha256: hashes(vqgan) } },
    };
  }

  /** A picture given to a run, as an asset of the data folder (checked and thumbnailed in an import worker). */
  async #keepImage(image: ImageInput): Promise<string> {
    const { history, files } = this.ctx;
    if ('sha256' in image) {
      const a = history.getAsset(image.sha256);
      if (!a || !files.abs(a.path) || !(await files.has(a.path)))
        throw new StudioError(
          'NotFound',
          `No picture ${image.sha256.slice(0, 12)}… in the data folder: drop the file again.`,
        );
      return image.sha256;
    }
    const sha256 = await sha256Async(image.data);
    const img = await this.ctx.decoder.decode(image.data, image.name);
    return this.ctx.mutex.run(async () => {
      const assetRel = files.assetRel(sha256, img.ext);
      const thumbRel = files.thumbRel(sha256);
      if (!(await files.has(assetRel))) await files.write(assetRel, image.data);
      if (!(await files.has(thumbRel))) await files.write(thumbRel, img.thumb);
      history.upsertAsset({
        sha256,
        path: assetRel,
        mime: img.mime,
        bytes: image.data.byteLength,
        width: img.width,
        height: img.height,
        thumbPath: thumbRel,
      });
      return sha256;
    });
  }

  /** The run's job, following it from the queue (jobCancel cancels the run). */
  #track(run: RunRow): JobHandle {
    const job = this.ctx.jobs.track(
      jobIdOf(run.id),
      'generate',
      run.title,
      () => void this.cancel(run.id).catch(() => {}),
      run.id,
    );
    const spec = run.spec as RunSpec;
    const state = run.status === 'running' ? 'running' : run.status === 'paused' ? 'paused' : 'queued';
    job.progress({ state, step: run.progressStep ?? spec.from?.step ?? 0, total: spec.settings.steps });
    return job;
  }

  // ---------- the queue's controls ----------

  list(): RunSummary[] {
    const { history } = this.ctx;
    const active = ['running', 'paused'].flatMap((s) => history.listRunsByState(s as 'running' | 'paused'));
    return [...active, ...this.queue.list()].filter((r) => r.kind === 'generate').map((r) => this.#summary(r));
  }

  move(runId: number, before: number | null): RunSummary[] {
    this.ctx.live();
    this.queue.move(runId, before);
    this.ctx.emit('queueChanged', { runIds: [runId] });
    return this.list();
  }

  async pause(runId: number): Promise<RunSummary> {
    const run = this.#run(runId);
    if (run.status === 'paused') return this.#summary(run);
    if (run.status !== 'running' || this.#active?.runId !== runId)
      throw new StudioError(
        'InvalidTransition',
        run.status === 'queued'
          ? `Run ${runId} has not started yet: move it in the queue, or cancel it.`
          : `Run ${runId} is ${run.status}${run.status === 'running' ? ' in another process' : ''}: only a run running here can pause.`,
      );
    await this.#stop('pause');
    return this.#summary(this.#run(runId));
  }

  async resume(runId: number): Promise<RunSummary> {
    const run = this.#run(runId);
    if (run.status !== 'paused')
      throw new StudioError('InvalidTransition', `Run ${runId} is ${run.status}: only a paused run can resume.`);
    this.ctx.history.transitionRun(runId, { to: 'queued' }, Date.now());
    this.queue.first(runId);
    this.#job(runId).progress({ state: 'queued', message: 'Waiting to resume.' });
    this.ctx.emit('queueChanged', { runIds: [runId] });
    void this.#pump();
    return this.#summary(this.#run(runId));
  }

  async cancel(runId: number): Promise<RunSummary> {
    const run = this.#run(runId);
    if (this.#active?.runId === runId) await this.#stop('cancel');
    else if (run.status === 'queued' || run.status === 'paused') {
      this.ctx.history.transitionRun(runId, { to: 'cancelled' }, Date.now());
      this.#job(runId).finish('cancelled', 'Cancelled before it finished.');
      this.ctx.emit('queueChanged', { runIds: [runId] });
    } else if (!isTerminalRunState(run.status))
      throw new StudioError('InvalidTransition', `Run ${runId} is running in another process: cancel it there.`);
    return this.#summary(this.#run(runId));
  }

  /** More steps for a finished run: a new run from its last snapshot with the same settings. */
  async continueRun(runId: number, steps: number): Promise<{ runId: number; jobId: string; notes: string[] }> {
    const run = this.#run(runId);
    if (run.status !== 'done' && run.status !== 'cancelled')
      throw new StudioError('InvalidTransition', `Run ${runId} is ${run.status}: continue a run that has finished.`);
    const last = this.ctx.history.snapshotSteps(runId).at(-1);
    if (!last) throw new StudioError('NotFound', `Run ${runId} has no snapshot to go on from.`);
    const spec = run.spec as RunSpec;
    return this.enqueue(toInput({ ...spec.settings, steps: last.step + steps }), {
      from: { runId, step: last.step },
      allowPaths: true,
    });
  }

  async #stop(intent: 'pause' | 'cancel'): Promise<void> {
    const a = this.#active;
    if (!a) return;
    a.intent = intent;
    a.controller.abort();
    await a.done;
  }

  #run(runId: number): RunRow {
    const run = this.ctx.history.getRun(runId);
    if (!run || run.kind !== 'generate') throw new StudioError('NotFound', `No generate run with id ${runId}.`);
    return run;
  }

  #job(runId: number): JobHandle {
    return this.#track(this.#run(runId));
  }

  #summary(run: RunRow): RunSummary {
    const spec: RunSpec = isRunSpec(run.spec)
      ? run.spec
      : ({ settings: { steps: 0, width: 0, height: 0, seed: 0 }, from: null } as unknown as RunSpec);
    const image = this.ctx.history.liveImageIdsOfRun(run.id)[0] ?? null;
    return {
      runId: run.id,
      jobId: jobIdOf(run.id),
      title: run.title,
      state: run.status,
      step: run.progressStep ?? spec.from?.step ?? 0,
      steps: spec.settings.steps,
      width: spec.settings.width,
      height: spec.settings.height,
      seed: spec.settings.seed,
      parent: spec.from,
      error: run.error,
      createdAt: run.createdAt,
      imageId: image,
    };
  }

  detail(runId: number): RunDetail {
    const run = this.#run(runId);
    const spec = run.spec as RunSpec;
    const frames = new Map(this.ctx.history.runAssets(runId, 'frame').map((a) => [a.step, a.sha256]));
    return {
      ...this.#summary(run),
      settings: spec.settings as unknown as Record<string, unknown>,
      provenance: run.provenance,
      snapshots: this.ctx.history
        .snapshotSteps(runId)
        .map((s) => ({ step: s.step, frame: frames.get(s.step) ?? null })),
      losses: this.#losses.get(runId) ?? spec.losses ?? [],
      prompts: this.#prompts.get(runId) ?? spec.prompts ?? [],
      job: this.ctx.jobs.list([jobIdOf(runId)])[0] ?? null,
    };
  }

  /**
   * The trajectory, every snapshot's frame in order: as an animated WebP or GIF, or as numbered PNG frames
   * in a ZIP (`png-frames`).
   */
  async exportTrajectory(
    runId: number,
    format: TrajectoryFormat,
  ): Promise<{ name: string; mime: string; data: Uint8Array<ArrayBuffer> }> {
    const detail = this.detail(runId);
    const frames: { step: number; data: Uint8Array }[] = [];
    for (const s of detail.snapshots) {
      const a = s.frame ? this.ctx.history.getAsset(s.frame) : null;
      const abs = a ? this.ctx.files.abs(a.path) : null;
      if (abs) frames.push({ step: s.step, data: await readFile(abs) });
    }
    if (frames.length === 0)
      throw new StudioError(
        'NotFound',
        `Run ${runId} has no frames yet: its first snapshot comes after ${String(detail.settings.snapshotEvery)} steps.`,
      );
    const name = `run-${runId}-trajectory`;
    if (format === 'png-frames')
      return { name: `${name}.zip`, mime: 'application/zip', data: await framesZip(frames, `run-${runId}`) };
    const data = await animate(
      frames.map((f) => f.data),
      format,
    );
    return { name: `${name}.${format}`, mime: format === 'webp' ? 'image/webp' : 'image/gif', data };
  }

  /**
   * Opens the models and loads the step graph in the compute worker for these settings (a run of 0 steps,
   * recorded nowhere), so a run started next begins at once. Skipped while a run runs or waits, or while
   * another warm-up is under way; a later call with other settings replaces the prepared graph.
   */
  async warmup(input: GenerateSettingsResolved): Promise<{ warmed: boolean; reason: string }> {
    if (this.#active || this.queue.list().length > 0) return { warmed: false, reason: 'a run is using the device' };
    if (this.#warming) return { warmed: false, reason: 'already warming up' };
    const t0 = performance.now();
    const clip = await this.#model('clip', input.clip);
    const vqgan = await this.#model('vqgan', input.vqgan);
    const { clipConfig, vqganConfig } = await this.#configs(clip, vqgan);
    const side = (v: number) => sideFor(vqganConfig, v);
    // What a run of these settings would be refused for is not warmed up either.
    const cost = estimateStep(clipConfig, vqganConfig, side(input.width), side(input.height), input.cuts);
    const refusal = memoryRefusal(cost, side(input.width), side(input.height), input.cuts);
    if (refusal) return { warmed: false, reason: refusal };
    this.#warming = this.ctx.compute
      .generate(
        {
          ...taskModels(clip, vqgan),
          provider: (input.provider ?? this.ctx.settings.get().preferredProvider) as GenerateTaskArgs['provider'],
          settings: {
            ...input,
            prompts: input.prompts.trim() || 'warm up',
            imagePrompts: [],
            noisePrompts: [],
            init: { kind: 'random' },
            width: side(input.width),
            height: side(input.height),
            steps: 0,
            seed: 0,
          },
          previewEvery: 0,
          snapshotEvery: input.snapshotEvery,
        },
        { onStream: () => {} },
      )
      .then(() => undefined)
      .finally(() => (this.#warming = null));
    await this.#warming;
    return { warmed: true, reason: `ready in ${((performance.now() - t0) / 1000).toFixed(1)} s` };
  }

  /** FLOPs, time and memory of a step at this size on this machine. */
  async estimate(o: { width: number; height: number; cuts: number; clip?: string; vqgan?: string; provider?: string }) {
    const clip = await this.#model('clip', o.clip);
    const vqgan = await this.#model('vqgan', o.vqgan);
    const { clipConfig, vqganConfig } = await this.#configs(clip, vqgan);
    const width = sideFor(vqganConfig, o.width);
    const height = sideFor(vqganConfig, o.height);
    const e = estimateStep(clipConfig, vqganConfig, width, height, o.cuts);
    const provider = o.provider ?? this.ctx.settings.get().preferredProvider;
    // A step reaches about half the device's matmul speed (convolutions, normalisations, the host's share).
    const gflops = await (this.#speed ??= this.ctx.compute
      .deviceSpeed(provider as Parameters<StudioContext['compute']['deviceSpeed']>[0])
      .then((s) => s.matmulGflops));
    return {
      width,
      height,
      gflopPerStep: e.gflopPerStep,
      secondsPerStep: gflops > 0 ? e.gflopPerStep / (0.5 * gflops) : null,
      memoryBytes: e.memoryBytes,
      refusal: memoryRefusal(e, width, height, o.cuts),
    };
  }

  // ---------- running ----------

  /** Starts the next queued run when nothing runs here. */
  async #pump(): Promise<void> {
    if (this.#closed || this.#active || !this.#lock) return;
    const run = this.queue.claim();
    if (!run) return;
    this.ctx.emit('queueChanged', { runIds: [run.id] });
    await this.#execute(run);
    void this.#pump();
  }

  /** Runs a run that is already running (claimed) in this process, to its end; resolves its summary. */
  async run(runId: number): Promise<RunSummary> {
    const run = this.#run(runId);
    if (run.status !== 'running')
      throw new StudioError('InvalidTransition', `Run ${runId} is ${run.status}, not claimed.`);
    await this.#execute(run);
    return this.#summary(this.#run(runId));
  }

  async #execute(run: RunRow): Promise<void> {
    const controller = new AbortController();
    let finished!: () => void;
    const active: Active = { runId: run.id, controller, intent: null, done: new Promise((r) => (finished = r)) };
    this.#active = active;
    const job = this.#track(run);
    try {
      await this.#generate(run, job, active);
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      this.#end(run.id, { to: 'failed', error: message });
      job.finish('failed', message, e instanceof Error ? e : new Error(message));
    } finally {
      this.#active = null;
      this.ctx.emit('queueChanged', { runIds: [run.id] });
      finished();
    }
  }

  #end(runId: number, change: { to: 'done' | 'cancelled' | 'paused' } | { to: 'failed'; error: string }): void {
    try {
      this.ctx.history.transitionRun(runId, change, Date.now());
    } catch {
      /* the studio is closing, or another process moved it: the history says where it is */
    }
  }

  async #generate(run: RunRow, job: JobHandle, active: Active): Promise<void> {
    const { history } = this.ctx;
    if (!isRunSpec(run.spec))
      throw new StudioError('InvalidRun', `Run ${run.id}'s settings cannot be read: start a new run.`);
    const spec = run.spec;
    const s = spec.settings;
    job.progress({ message: 'Loading the models…' });
    const clip = await this.#model('clip', s.clip, true);
    const vqgan = await this.#model('vqgan', s.vqgan, true);
    const imagePrompts = await Promise.all(
      s.imagePrompts.map(async (p) => ({
        pixels: await this.#assetPixels((p.image as { sha256: string }).sha256, 'prompt'),
        weight: p.weight,
        stop: p.stop ?? -Infinity,
      })),
    );
    const init =
      s.init.kind === 'image'
        ? {
            kind: 'image' as const,
            pixels: await this.#initPixels((s.init.image as { sha256: string }).sha256, s.width, s.height),
          }
        : s.init;
    // Where it starts: its own last snapshot (a resume after a restart), else the snapshot it was forked from.
    const own = history.snapshotSteps(run.id).at(-1);
    const source = own ? { runId: run.id, step: own.step } : spec.from;
    const snap = source ? history.snapshotAt(source.runId, source.step) : null;
    if (snap) {
      // It goes on from there: the steps after the snapshot are done again (the history says so too).
      history.setRunProgress(run.id, snap.step, Math.max(1, s.steps, snap.step), Date.now());
      job.progress({ step: snap.step, total: s.steps, message: `Going on from step ${snap.step}…` });
    }
    const losses = this.#losses.get(run.id) ?? [];
    this.#losses.set(run.id, losses);
    const total = s.steps;
    let lastWrite = 0;
    let speed = 0; // steps per second, smoothed
    const frames = this.#frameSink(run.id, job);

    const args: GenerateTaskArgs = {
      ...taskModels(clip, vqgan),
      provider: s.provider as never,
      settings: {
        prompts: s.prompts,
        storyEvery: s.storyEvery,
        imagePrompts,
        noisePrompts: s.noisePrompts,
        init,
        initWeight: s.initWeight,
        width: s.width,
        height: s.height,
        steps: total,
        seed: s.seed,
        cuts: s.cuts,
        cutPow: s.cutPow,
        cutMethod: s.cutMethod,
        lr: s.lr,
        optimizer: s.optimizer,
        stepDecay: s.stepDecay,
      },
      previewEvery: 1,
      snapshotEvery: s.snapshotEvery,
      ...(snap ? { from: { step: snap.step, tokens: snap.tokens } } : {}),
      keepKey: jobIdOf(run.id),
    };
    const result = await this.ctx.compute.generate(args, {
      signal: active.controller.signal,
      onStream: (m: TaskStream) => {
        if (m.type === 'status') job.progress({ message: m.message });
        else if (m.type === 'step') {
          losses.push({ step: m.step, total: m.loss, perPrompt: m.losses });
          speed = speed ? 0.8 * speed + 0.2 * (1000 / Math.max(1, m.ms)) : 1000 / Math.max(1, m.ms);
          const values: Record<string, number> = { loss: m.loss, itPerSecond: speed };
          m.losses.forEach((l, i) => (values[`loss:${i}`] = l));
          if (total > m.step) values.etaSeconds = (total - m.step) / speed;
          job.progress({ step: m.step, total, values, message: `Step ${m.step} of ${total}` });
          if (Date.now() - lastWrite > PROGRESS_WRITE_MS || m.step === total) {
            lastWrite = Date.now();
            history.setRunProgress(run.id, m.step, Math.max(1, total, m.step), Date.now());
          }
        } else if (m.type === 'frame') frames.frame(m);
        else if (m.type === 'snapshot') frames.snapshot(m);
      },
    });
    await frames.flush();
    this.#prompts.set(run.id, result.prompts);
    history.setRunProgress(run.id, result.step, Math.max(1, total, result.step), Date.now());
    if (result.stopped) {
      if (active.intent === 'cancel') {
        this.#finishSpec(run, losses, result.prompts);
        this.#end(run.id, { to: 'cancelled' });
        job.finish('cancelled', `Cancelled at step ${result.step} of ${total}.`);
      } else {
        // Paused (by the user, or because the studio is closing: it resumes at the next start).
        this.#end(run.id, { to: 'paused' });
        if (this.#closed && active.intent === 'pause' && this.#lock) {
          const r = this.#run(run.id);
          history.setRunSpec(
            run.id,
            { spec: r.spec, provenance: { ...r.provenance, resumeAfterRestart: true }, title: r.title },
            Date.now(),
          );
        }
        job.progress({ state: 'paused', step: result.step, message: `Paused at step ${result.step} of ${total}.` });
      }
      return;
    }
    const imageId = await this.#saveImage(run, result);
    this.#finishSpec(run, losses, result.prompts);
    this.#end(run.id, { to: 'done' });
    this.ctx.emit('galleryChanged', { reason: 'import', ids: [imageId] });
    job.finish('done', `Done: ${total} steps, in the Gallery.`);
  }

  /** Keeps the loss curve (thinned) and the parsed prompts in the run's spec once it ends. */
  #finishSpec(run: RunRow, losses: LossPoint[], prompts: TaskPrompt[]): void {
    const current = this.#run(run.id);
    const spec = { ...(current.spec as RunSpec), losses: thin(losses), prompts };
    this.ctx.history.setRunSpec(run.id, { spec, provenance: current.provenance, title: current.title }, Date.now());
    this.#losses.delete(run.id);
  }

  /**
   * Live previews (the newest frame, at most every PREVIEW_INTERVAL_MS, encoded in libvips's threads) and a
   * small frame kept with each snapshot, written in order.
   */
  #frameSink(runId: number, job: JobHandle) {
    type Frame = Extract<TaskStream, { type: 'frame' }>;
    let pending: Frame | null = null;
    let encoding: Promise<void> | null = null;
    let last = 0;
    let timer: NodeJS.Timeout | null = null;
    const recent: Frame[] = []; // the last few frames, for the snapshot of their step
    const waitingSnapshots = new Set<number>();
    let writes: Promise<unknown> = Promise.resolve();
    const keepFrame = (f: Frame) => {
      writes = writes.then(() => this.#keepSnapshotFrame(runId, f)).catch(() => undefined);
    };
    const send = () => {
      if (encoding || !pending) return;
      const wait = last + PREVIEW_INTERVAL_MS - Date.now();
      if (wait > 0) {
        timer ??= setTimeout(() => {
          timer = null;
          send();
        }, wait);
        return;
      }
      const f = pending;
      pending = null;
      encoding = rgbToPreview(f.rgb, f.width, f.height)
        .then((p) => job.frame({ step: f.step, mime: p.mime, width: p.width, height: p.height, data: p.data }))
        .catch(() => undefined)
        .finally(() => {
          encoding = null;
          last = Date.now();
          send();
        });
    };
    return {
      frame: (f: Frame) => {
        recent.push(f);
        if (recent.length > 4) recent.shift();
        if (waitingSnapshots.delete(f.step)) keepFrame(f);
        pending = f;
        send();
      },
      snapshot: (m: Extract<TaskStream, { type: 'snapshot' }>) => {
        const grid = { width: 0, height: 0 };
        const f = recent.find((r) => r.step === m.step);
        const spec = this.#run(runId).spec as RunSpec;
        const factor = Math.round(Math.sqrt((spec.settings.width * spec.settings.height) / m.tokens.length));
        grid.width = spec.settings.width / factor;
        grid.height = spec.settings.height / factor;
        this.ctx.history.addSnapshot(runId, m.step, grid, m.tokens);
        if (f) keepFrame(f);
        else waitingSnapshots.add(m.step);
      },
      flush: async () => {
        if (timer) clearTimeout(timer);
        timer = null;
        if (pending && !encoding) {
          last = 0;
          send();
        }
        await encoding;
        await writes;
      },
    };
  }

  async #keepSnapshotFrame(
    runId: number,
    f: { step: number; width: number; height: number; rgb: Uint8Array },
  ): Promise<void> {
    const p = await rgbToPreview(f.rgb, f.width, f.height, 192);
    const sha256 = await sha256Async(p.data);
    const { files, history } = this.ctx;
    await this.ctx.mutex.run(async () => {
      const rel = files.assetRel(sha256, 'webp');
      if (!(await files.has(rel))) await files.write(rel, p.data);
      history.transaction(() => {
        history.upsertAsset({
          sha256,
          path: rel,
          mime: p.mime,
          bytes: p.data.byteLength,
          width: p.width,
          height: p.height,
          thumbPath: null,
        });
        history.addRunAsset(runId, { sha256, role: 'frame', step: f.step });
      });
    });
  }

  /** The finished picture: a PNG carrying the run's settings, as a gallery image of the run. */
  async #saveImage(run: RunRow, r: TaskResult): Promise<number> {
    const { files, history } = this.ctx;
    const spec = this.#run(run.id).spec as RunSpec;
    const s = spec.settings;
    const parameters: Record<string, string> = {
      Steps: String(r.step),
      Seed: String(s.seed),
      Size: `${r.width}x${r.height}`,
      Cutouts: String(s.cuts),
      'Cut pow': String(s.cutPow),
      'Cut method': s.cutMethod,
      'Learning rate': String(s.lr),
      Optimizer: s.optimizer,
      'Init weight': String(s.initWeight),
      Init: s.init.kind === 'noise' ? `noise (${s.init.style})` : s.init.kind,
      CLIP: s.clip,
      VQGAN: s.vqgan,
      Provider: s.provider,
      Version: `Foundation Studio ${appVersion()}`,
    };
    if (spec.from) parameters['Forked from'] = `run ${spec.from.runId}, step ${spec.from.step}`;
    const metadata: ImageMetadata = {
      source: 'foundation-studio',
      prompt: s.prompts,
      negativePrompt: null,
      parameters,
      raw: {},
    };
    const plain = await rgbToPng(r.rgb, r.width, r.height);
    const png = insertTextChunks(plain, [
      {
        keyword: OUR_KEYWORD,
        text: ourChunkText({
          prompt: s.prompts,
          negativePrompt: null,
          parameters,
          source: 'foundation-studio',
          app: { name: 'foundation-studio', version: appVersion() },
          run: { id: run.id, kind: 'generate', createdAt: run.createdAt, spec, provenance: run.provenance },
        }),
        kind: 'iTXt',
        compressed: true,
      },
      {
        keyword: 'parameters',
        text: formatA1111({ prompt: s.prompts, negativePrompt: null, parameters }),
        kind: 'iTXt',
        compressed: false,
      },
    ]);
    const sha256 = await sha256Async(png);
    const thumb = await makeThumbnail(png, `run-${run.id}.png`);
    return this.ctx.mutex.run(async () => {
      const assetRel = files.assetRel(sha256, 'png');
      const thumbRel = files.thumbRel(sha256);
      if (!(await files.has(assetRel))) await files.write(assetRel, png);
      await files.write(thumbRel, thumb);
      return history.transaction(() => {
        history.upsertAsset({
          sha256,
          path: assetRel,
          mime: 'image/png',
          bytes: png.byteLength,
          width: r.width,
          height: r.height,
          thumbPath: thumbRel,
        });
        return history.insertImage(run.id, { sha256, fileName: `run-${run.id}.png`, metadata, createdAt: Date.now() });
      });
    });
  }

  /** An image prompt's picture: CLIP-sized pixels are made in the worker; here, [0, 1] RGB at most 512 px. */
  async #assetPixels(sha256: string, what: string): Promise<HostTensor> {
    const data = await this.#assetBytes(sha256, what);
    const img = await readVqganImage(data, `the ${what} picture`, { multiple: 1, maxSide: 512 });
    const px = new Float32Array(img.data.length);
    for (let i = 0; i < px.length; i++) px[i] = (img.data[i]! + 1) / 2;
    return { dtype: 'float32', dims: [1, 3, img.height, img.width], data: px };
  }

  /** The init picture at the run's size, in [-1, 1] as the VQGAN encoder takes it. */
  async #initPixels(sha256: string, width: number, height: number): Promise<HostTensor> {
    const data = await this.#assetBytes(sha256, 'init');
    const img = await readVqganImage(data, 'the init picture', { multiple: 1, size: { width, height } });
    return { dtype: 'float32', dims: [1, 3, height, width], data: img.data };
  }

  async #assetBytes(sha256: string, what: string): Promise<Uint8Array> {
    const a = this.ctx.history.getAsset(sha256);
    const abs = a ? this.ctx.files.abs(a.path) : null;
    if (!abs)
      throw new StudioError('FileMissing', `The ${what} picture of this run is not in the data folder any more.`);
    try {
      return await readFile(abs);
    } catch {
      throw new StudioError(
        'FileMissing',
        `The ${what} picture (${a!.path}) is missing from the data folder; put it back or start a new run.`,
      );
    }
  }
}
