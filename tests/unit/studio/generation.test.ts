// Generation jobs (studio/jobs/generation.ts) over a stand-in of the engine's task (fake-generate-worker.ts):
// the queue, events per step, snapshots, the gallery image and its metadata, pause / resume / cancel,
// fork, a dying compute worker, and a restart with queued and interrupted runs.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { workerEntry } from '../../../src/main/base/worker-entry.js';
import {
  apiCalls,
  type EventName,
  type EventPayload,
  type GenerateSettings,
  type JobFrame,
  type JobStatus,
} from '../../../src/shared/api.js';
import { openStudio, type StudioService } from '../../../src/main/studio/index.js';
import { readTextChunks } from '../../../src/main/studio/png-chunks.js';
import { withTinyModels } from '../../fixtures/tiny-models.js';

const root = mkdtempSync(path.join(tmpdir(), 'fstudio-gen-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const fakeWorker = workerEntry(import.meta.url, './fake-generate-worker.ts', 'fake-generate-worker');
let n = 0;

/** A data folder with the tiny CLIP and VQGAN installed as models/clip-tiny and models/vqgan-tiny. */
function dataFolder(): string {
  const dir = path.join(root, `d${n++}`);
  return withTinyModels(dir);
}

const settings = (o: Partial<GenerateSettings> = {}): GenerateSettings => ({
  prompts: 'a red fox',
  width: 32,
  height: 32,
  steps: 6,
  seed: 5,
  cuts: 2,
  snapshotEvery: 2,
  clip: 'clip-tiny',
  vqgan: 'vqgan-tiny',
  provider: 'cpu',
  ...o,
});

/** A studio whose events are recorded, with waits on them. */
async function studio(dataDir: string, runQueue = true) {
  const s = await openStudio({ dataDir, computeWorker: fakeWorker, runQueue });
  const events: { name: EventName; payload: unknown }[] = [];
  const waiters = new Set<() => void>();
  for (const name of Object.keys({ jobProgress: 1, jobFrame: 1, queueChanged: 1, galleryChanged: 1 }) as EventName[])
    s.on(name, (payload: EventPayload<typeof name>) => {
      events.push({ name, payload });
      for (const w of [...waiters]) w();
    });
  const progress = (jobId: string) =>
    events
      .filter((e) => e.name === 'jobProgress')
      .map((e) => e.payload as JobStatus)
      .filter((p) => p.jobId === jobId);
  const until = (f: () => boolean, what: string) =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 20_000);
      // On every event, and every 50 ms for conditions on state that changed before we listened.
      const poll = setInterval(() => check(), 50);
      const check = () => {
        if (!f()) return;
        clearTimeout(timer);
        clearInterval(poll);
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
      check();
    });
  // The job's last event, else (for a job that ended before we listened) what the studio says of it.
  const stateOf = (jobId: string) =>
    progress(jobId).at(-1)?.state ??
    (jobId.startsWith('run-') ? s.generation.detail(Number(jobId.slice(4))).state : undefined);
  const call = <K extends keyof typeof apiCalls>(name: K, args: unknown) =>
    (s.handlers[name] as (a: unknown) => Promise<Awaited<ReturnType<StudioService['handlers'][K]>>>)(
      apiCalls[name].args.parse(args),
    );
  return { s, events, progress, until, stateOf, call };
}

describe('generation jobs', () => {
  it('a run goes from the queue to the gallery: steps, frames, snapshots, and a PNG that carries its settings', async () => {
    const t = await studio(dataFolder());
    try {
      const { runId, jobId, notes } = await t.call('generate', { settings: settings({ width: 33, height: 32 }) });
      expect(notes).toEqual(['33x32 was rounded to 32x32: this VQGAN needs sides that are multiples of 2.']);
      await t.until(() => t.stateOf(jobId) === 'done', 'the run to finish');
      const steps = t.progress(jobId).filter((p) => p.state === 'running' && p.step > 0);
      expect([...new Set(steps.map((p) => p.step))]).toEqual([1, 2, 3, 4, 5, 6]); // and step 0, the start
      expect(steps.at(-1)!.values).toMatchObject({ loss: 1 / 7, 'loss:0': 1 / 7 });
      const frames = t.events.filter((e) => e.name === 'jobFrame').map((e) => e.payload as JobFrame);
      expect(frames.length).toBeGreaterThan(0);
      expect(frames.every((f) => f.jobId === jobId && f.mime === 'image/webp')).toBe(true);

      const run = await t.call('getRun', { runId });
      expect(run).toMatchObject({ state: 'done', step: 6, steps: 6, width: 32, height: 32, seed: 5, parent: null });
      expect(run.snapshots.map((s) => s.step)).toEqual([2, 4, 6]);
      expect(run.snapshots.every((s) => s.frame !== null)).toBe(true);
      expect(run.losses.map((l) => l.step)).toEqual([0, 1, 2, 3, 4, 5, 6]);
      expect(run.settings).toMatchObject({ prompts: 'a red fox', clip: 'clip-tiny', vqgan: 'vqgan-tiny', cuts: 2 });

      // In the gallery, with its prompt and parameters; its file carries them for other tools too.
      const item = await t.call('getItem', { id: run.imageId! });
      expect(item.item).toMatchObject({ kind: 'generate', title: 'a red fox', width: 32, height: 32 });
      expect(item.metadata).toMatchObject({
        source: 'foundation-studio',
        prompt: 'a red fox',
        parameters: { Steps: '6', Seed: '5', Size: '32x32', CLIP: 'clip-tiny', VQGAN: 'vqgan-tiny' },
      });
      const found = await t.call('galleryQuery', { text: 'fox' });
      expect(found.items.map((i) => i.id)).toEqual([run.imageId]);
      const file = await t.s.assetFile(item.item.sha256, 'file');
      const chunks = readTextChunks(readFileSync(file!.path));
      const a1111 = chunks.find((c) => c.keyword === 'parameters')!.text;
      expect(a1111).toMatch(/^a red fox\nSteps: 6, Seed: 5, Size: 32x32, /);
      expect(JSON.parse(chunks.find((c) => c.keyword === 'foundation-studio')!.text)).toMatchObject({
        prompt: 'a red fox',
        run: { id: runId, kind: 'generate', spec: { settings: { seed: 5, steps: 6 } } },
      });
      // The trajectory as an animation: one frame per snapshot.
      const anim = await t.call('exportTrajectory', { runId, format: 'webp' });
      expect((await sharp(anim.data, { animated: true }).metadata()).pages).toBe(3);
      // Or as numbered PNG frames in a ZIP, one per snapshot, named by its step.
      const zip = await t.call('exportTrajectory', { runId, format: 'png-frames' });
      expect([zip.name, zip.mime]).toEqual([`run-${runId}-trajectory.zip`, 'application/zip']);
      const entries = unzipSync(zip.data);
      const snapshotSteps = (await t.call('getRun', { runId })).snapshots.map((x) => x.step);
      expect(Object.keys(entries)).toEqual(
        snapshotSteps.map((k) => `run-${runId}-step-${String(k).padStart(6, '0')}.png`),
      );
      for (const png of Object.values(entries)) expect((await sharp(png).metadata()).format).toBe('png');
    } finally {
      await t.s.close();
    }
  });

  it('pause keeps its state and resume goes on from that step; cancel ends it keeping its snapshots', async () => {
    const t = await studio(dataFolder());
    try {
      const { runId, jobId } = await t.call('generate', { settings: settings({ prompts: 'slow fox', steps: 200 }) });
      await t.until(() => (t.progress(jobId).at(-1)?.step ?? 0) >= 5, 'step 5');
      const paused = await t.call('generatePause', { runId });
      expect(paused.state).toBe('paused');
      const at = paused.step;
      expect(t.stateOf(jobId)).toBe('paused');
      await t.call('generateResume', { runId });
      await t.until(() => (t.progress(jobId).at(-1)?.step ?? 0) >= at + 5, 'five more steps');
      const resumedSteps = [
        ...new Set(
          t
            .progress(jobId)
            .filter((p) => p.state === 'running' && p.step > at)
            .map((p) => p.step),
        ),
      ];
      expect(resumedSteps.slice(0, 3)).toEqual([at + 1, at + 2, at + 3]); // on from the same step, not from 0
      const cancelled = await t.call('generateCancel', { runId });
      expect(cancelled).toMatchObject({ state: 'cancelled', imageId: null });
      expect(t.stateOf(jobId)).toBe('cancelled');
      const run = await t.call('getRun', { runId });
      expect(run.snapshots.length).toBeGreaterThan(0);
      expect(run.snapshots.at(-1)!.step).toBeLessThanOrEqual(run.step);
      expect(await t.call('generateQueue', {})).toEqual([]);
      // A queued run can be cancelled before it starts; a paused one cannot be paused again mid-air.
      await expect(t.call('generatePause', { runId })).rejects.toThrow(/only a run running here can pause/);
    } finally {
      await t.s.close();
    }
  });

  it('runs one at a time in queue order, and a move reorders the waiting ones', async () => {
    const t = await studio(dataFolder());
    try {
      const a = await t.call('generate', { settings: settings({ prompts: 'slow a', steps: 40 }) });
      const b = await t.call('generate', { settings: settings({ prompts: 'b', steps: 2 }) });
      const c = await t.call('generate', { settings: settings({ prompts: 'c', steps: 2 }) });
      await t.until(() => t.stateOf(a.jobId) === 'running', 'a to run');
      expect((await t.call('generateQueue', {})).map((r) => [r.runId, r.state])).toEqual([
        [a.runId, 'running'],
        [b.runId, 'queued'],
        [c.runId, 'queued'],
      ]);
      await t.call('generateMove', { runId: c.runId, before: b.runId });
      await t.until(() => t.stateOf(b.jobId) === 'done' && t.stateOf(c.jobId) === 'done', 'b and c');
      const doneAt = (jobId: string) =>
        t.events.findIndex(
          (e) =>
            e.name === 'jobProgress' &&
            (e.payload as JobStatus).jobId === jobId &&
            (e.payload as JobStatus).state === 'done',
        );
      expect(doneAt(a.jobId)).toBeLessThan(doneAt(c.jobId));
      expect(doneAt(c.jobId)).toBeLessThan(doneAt(b.jobId));
    } finally {
      await t.s.close();
    }
  });

  it("a fork starts from a snapshot of another run: with no steps of its own it is that run's picture at that step", async () => {
    const t = await studio(dataFolder());
    try {
      const parent = await t.call('generate', { settings: settings({ steps: 8 }) });
      await t.until(() => t.stateOf(parent.jobId) === 'done', 'the parent');
      // The same seed to step 4 (the stand-in's tokens depend only on seed and step, as a deterministic run's do).
      const straight = await t.call('generate', { settings: settings({ steps: 4 }) });
      const fork = await t.call('generate', {
        settings: settings({ prompts: 'a blue fox', steps: 4 }),
        from: { runId: parent.runId, step: 4 },
      });
      await t.until(() => t.stateOf(straight.jobId) === 'done' && t.stateOf(fork.jobId) === 'done', 'both');
      const pixels = async (runId: number) => {
        const run = await t.call('getRun', { runId });
        const item = await t.call('getItem', { id: run.imageId! });
        return sharp((await t.s.assetFile(item.item.sha256, 'file'))!.path)
          .raw()
          .toBuffer();
      };
      expect((await pixels(fork.runId)).equals(await pixels(straight.runId))).toBe(true);
      expect(await t.call('getRun', { runId: fork.runId })).toMatchObject({ parent: { runId: parent.runId, step: 4 } });
      expect((await pixels(fork.runId)).equals(await pixels(parent.runId))).toBe(false); // step 8 differs
      await expect(t.call('generate', { settings: settings(), from: { runId: 9999, step: 1 } })).rejects.toThrow(
        /No generate run with id 9999/,
      );
      // Continue: more steps for a finished run, from its last step.
      const more = await t.call('generateContinue', { runId: straight.runId, steps: 2 });
      await t.until(() => t.stateOf(more.jobId) === 'done', 'the continuation');
      expect(await t.call('getRun', { runId: more.runId })).toMatchObject({
        steps: 6,
        parent: { runId: straight.runId, step: 4 },
      });
    } finally {
      await t.s.close();
    }
  });

  it('a compute worker that dies fails its run with what happened; the next run goes on', async () => {
    const t = await studio(dataFolder());
    try {
      const dying = await t.call('generate', { settings: settings({ prompts: 'crash at 3', steps: 10 }) });
      const next = await t.call('generate', { settings: settings({ steps: 3 }) });
      await t.until(() => t.stateOf(dying.jobId) === 'failed', 'the failure');
      expect(t.progress(dying.jobId).at(-1)!.message).toMatch(
        /^The compute worker for cpu stopped while running 'task' \(exit code 3\)\. .*the next call starts a new worker\.$/,
      );
      expect(await t.call('getRun', { runId: dying.runId })).toMatchObject({
        state: 'failed',
        error: expect.stringContaining('exit code 3'),
      });
      await t.until(() => t.stateOf(next.jobId) === 'done', 'the next run');
    } finally {
      await t.s.close();
    }
  });

  it('bad settings are refused with what to do, and nothing is queued', async () => {
    const t = await studio(dataFolder());
    try {
      await expect(t.call('generate', { settings: settings({ prompts: '   ' }) })).rejects.toThrow(/Write a prompt/);
      expect(() => apiCalls.generate.args.parse({ settings: settings({ lr: Number.NaN }) })).toThrow(
        /learning rate must be/,
      );
      expect(() => apiCalls.generate.args.parse({ settings: settings({ lr: -1 }) })).toThrow(
        /learning rate must be above 0/,
      );
      await expect(t.call('generate', { settings: settings({ vqgan: 'vqgan_imagenet_f16_16384' }) })).rejects.toThrow(
        /VQGAN "vqgan_imagenet_f16_16384" is not installed .*download it on the Models page .*fstudio models pull vqgan_imagenet_f16_16384/,
      );
      await expect(
        t.call('generate', {
          settings: settings({
            init: { kind: 'image', image: { name: 'notes.png', data: new Uint8Array([1, 2, 3]) } },
          }),
        }),
      ).rejects.toThrow(/notes\.png/);
      expect(() => apiCalls.generate.args.parse({ settings: settings({ clip: '../../etc' }) })).toThrow(
        /expected a model id/,
      );
      expect(await t.call('generateQueue', {})).toEqual([]);
    } finally {
      await t.s.close();
    }
  });
});

describe('generation across restarts', () => {
  it('a queued run waits for a studio that runs the queue; one closed mid-run resumes from where it paused', async () => {
    const dir = dataFolder();
    const cli = await studio(dir, false); // a process that does not run the queue (the CLI)
    const queued = await cli.call('generate', { settings: settings({ steps: 3 }) });
    expect(cli.stateOf(queued.jobId)).toBe('queued');
    await cli.s.close();

    let t = await studio(dir);
    await t.until(() => t.stateOf(queued.jobId) === 'done', 'the queued run');
    const long = await t.call('generate', { settings: settings({ prompts: 'slow fox', steps: 100 }) });
    await t.until(() => (t.progress(long.jobId).at(-1)?.step ?? 0) >= 6, 'step 6');
    await t.s.close(); // the running run pauses...
    t = await studio(dir);
    try {
      // ...and goes on at the next start, first in the queue.
      await t.until(() => t.progress(long.jobId).some((p) => p.values.loss !== undefined), 'the resume');
      const first = t.progress(long.jobId).find((p) => p.values.loss !== undefined)!; // the first step computed
      // It went on from its last snapshot (step 6 or later; the first step reported is that one), not from 0.
      const snaps = (await t.call('getRun', { runId: long.runId })).snapshots.map((x) => x.step);
      expect(first.step).toBeGreaterThanOrEqual(6);
      expect(snaps).toContain(first.step);
      await t.call('generateCancel', { runId: long.runId });
    } finally {
      await t.s.close();
    }
  });

  it('a process killed mid-run leaves a run that resumes from its last snapshot at the next open', async () => {
    const dir = dataFolder();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(import.meta.dirname, 'generate-child.ts'), dir],
      {
        cwd: path.resolve(import.meta.dirname, '../../..'),
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let runId = 0;
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = [...out.matchAll(/snapshot (\d+) (\d+)/g)].at(-1);
        if (m && Number(m[2]) >= 4 && !runId) {
          runId = Number(m[1]);
          child.kill('SIGKILL');
        }
      });
      // Resolved once it has exited (and been reaped): a killed pid still counts as alive until then.
      child.on('exit', (code) => (runId ? resolve() : reject(new Error(`child exited ${code}: ${out}`))));
    });
    const t = await studio(dir);
    try {
      expect((await t.s.checked).runsResumable).toBe(1);
      const jobId = `run-${runId}`;
      await t.until(() => (t.progress(jobId).at(-1)?.step ?? 0) > 0, 'the resume');
      await t.until(() => t.progress(jobId).some((p) => p.values.loss !== undefined), 'a step');
      const first = t.progress(jobId).find((p) => p.values.loss !== undefined)!; // the first step computed
      const snaps = (await t.call('getRun', { runId })).snapshots.map((s) => s.step);
      expect(first.step).toBe(Math.max(...snaps.filter((s) => s <= first.step))); // its last snapshot
      expect(first.step).toBeGreaterThanOrEqual(4);
      await t.call('generateCancel', { runId });
    } finally {
      await t.s.close();
    }
  }, 60_000);
});
