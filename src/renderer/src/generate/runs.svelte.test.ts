// The Generate page's run store without a browser: the queue refetches coalesce, runs that leave the
// queue are kept as recent ones, the shown run follows the queue until the user picks one, loss points
// from progress events extend the detail's curve once each, frames replace (and let go of) older ones,
// and moves in the queue name the right neighbour.
import { describe, expect, it } from 'vitest';
import type { JobFrame, JobStatus, RunDetail, RunSummary } from '../../../shared/api.js';
import { GenerateRuns, lossPoint, moveTarget, type RunsBackend } from './runs.svelte.js';

function summary(runId: number, state: RunSummary['state'], extra: Partial<RunSummary> = {}): RunSummary {
  return {
    runId,
    jobId: `job-${runId}`,
    title: `run ${runId}`,
    state,
    step: 0,
    steps: 100,
    width: 32,
    height: 32,
    seed: 1,
    parent: null,
    error: null,
    createdAt: runId,
    imageId: null,
    ...extra,
  };
}

function detail(s: RunSummary, losses: RunDetail['losses'] = []): RunDetail {
  return { ...s, settings: {}, provenance: {}, snapshots: [], losses, prompts: [], job: null };
}

function status(runId: number, step: number, state: JobStatus['state'] = 'running', loss?: number): JobStatus {
  return {
    jobId: `job-${runId}`,
    kind: 'generate',
    title: '',
    state,
    step,
    total: 100,
    values: loss === undefined ? {} : { loss, 'loss:0': loss / 2, 'loss:1': loss / 4, itPerSecond: 5 },
    message: '',
    error: null,
    runId,
    startedAt: 0,
    updatedAt: 0,
    frameStep: null,
  };
}

function fake() {
  let queue: RunSummary[] = [];
  const runs = new Map<number, RunDetail>();
  const revoked: string[] = [];
  let queueCalls = 0;
  let release: (() => void) | null = null;
  let hold = false;
  let clock = 0;
  let urls = 0;
  const api: RunsBackend = {
    generateQueue: async () => {
      queueCalls++;
      if (hold) await new Promise<void>((ok) => (release = ok));
      return queue;
    },
    generateMove: async () => queue,
    getRun: async (runId) => {
      const d = runs.get(runId);
      if (!d) throw Object.assign(new Error(`no run ${runId}`), { name: 'NotFound' });
      return d;
    },
    frameUrl: () => `blob:${++urls}`,
    revokeUrl: (u) => revoked.push(u),
    now: () => clock,
  };
  return {
    api,
    revoked,
    setQueue: (q: RunSummary[]) => (queue = q),
    setRun: (d: RunDetail) => runs.set(d.runId, d),
    calls: () => queueCalls,
    hold: (on: boolean) => (hold = on),
    release: () => release?.(),
    tick: (ms: number) => (clock += ms),
  };
}

const settle = () => new Promise((r) => setTimeout(r, 0));

describe('the run store', () => {
  it('coalesces queue refetches made while one is in flight into one more', async () => {
    const f = fake();
    const store = new GenerateRuns(f.api);
    f.hold(true);
    const first = store.refreshQueue();
    void store.refreshQueue();
    void store.refreshQueue();
    f.hold(false);
    f.release();
    await first;
    expect(f.calls()).toBe(2);
  });

  it('shows the running run until one is picked; a run that leaves the queue becomes recent', async () => {
    const f = fake();
    const store = new GenerateRuns(f.api);
    f.setQueue([summary(1, 'queued'), summary(2, 'running')]);
    await store.refreshQueue();
    expect(store.selectedId).toBe(2);
    store.choose(1);
    expect(store.selectedId).toBe(1);
    f.setRun(detail(summary(2, 'done', { step: 100, imageId: 9 })));
    f.setQueue([summary(1, 'running')]);
    await store.refreshQueue();
    await settle();
    expect(store.recent.map((r) => [r.runId, r.state, r.imageId])).toEqual([[2, 'done', 9]]);
    store.choose(77); // not known: falls back to the queue
    expect(store.selectedId).toBe(1);
  });

  it('a queued run is shown at once unless the one shown still runs', async () => {
    const f = fake();
    const store = new GenerateRuns(f.api);
    f.setQueue([summary(1, 'running')]);
    await store.refreshQueue();
    store.added(2);
    expect(store.chosenId).toBeNull();
    store.onProgress(status(1, 100, 'done'));
    store.added(3);
    expect(store.chosenId).toBe(3);
  });

  it('extends the detail curve with progress losses, once per step, for the shown run only', async () => {
    const f = fake();
    const store = new GenerateRuns(f.api);
    f.setQueue([summary(1, 'running'), summary(2, 'queued')]);
    f.setRun(
      detail(summary(1, 'running', { step: 2 }), [
        { step: 1, total: 3, perPrompt: [1.5, 0.75] },
        { step: 2, total: 2.5, perPrompt: [1.2, 0.6] },
      ]),
    );
    await store.refreshQueue();
    await store.load(store.selectedId);
    store.onProgress(status(1, 2, 'running', 2.5)); // already in the detail
    store.onProgress(status(1, 3, 'running', 2));
    store.onProgress(status(1, 3, 'running', 2)); // the same event again
    store.onProgress(status(2, 1, 'running', 9)); // another run's
    expect(store.losses.map((p) => p.step)).toEqual([1, 2, 3]);
    expect(store.losses[2]).toEqual({ step: 3, total: 2, perPrompt: [1, 0.5] });
    expect(store.find(1)?.step).toBe(3);
    // A refetched detail that holds step 3 takes it over from the live points.
    f.setRun(
      detail(summary(1, 'running', { step: 3 }), [
        { step: 1, total: 3, perPrompt: [1.5, 0.75] },
        { step: 2, total: 2.5, perPrompt: [1.2, 0.6] },
        { step: 3, total: 2, perPrompt: [1, 0.5] },
      ]),
    );
    f.tick(5000);
    store.onProgress(status(1, 4, 'running', 1.5));
    await settle();
    expect(store.losses.map((p) => p.step)).toEqual([1, 2, 3, 4]);
    expect(store.live.points.map((p) => p.step)).toEqual([4]);
  });

  it('refetches the shown run at most every few seconds while it runs, and at once when it pauses', async () => {
    const f = fake();
    const store = new GenerateRuns(f.api);
    let gets = 0;
    const getRun = f.api.getRun;
    f.api.getRun = (id) => (gets++, getRun(id));
    f.setQueue([summary(1, 'running')]);
    f.setRun(detail(summary(1, 'running')));
    await store.refreshQueue();
    await store.load(1);
    expect(gets).toBe(1);
    for (let step = 1; step <= 10; step++) {
      f.tick(100);
      store.onProgress(status(1, step, 'running', 1));
    }
    expect(gets).toBe(1);
    f.tick(2500);
    store.onProgress(status(1, 11, 'running', 1));
    expect(gets).toBe(2);
    store.onProgress(status(1, 11, 'paused', 1));
    expect(gets).toBe(3);
    await settle();
  });

  it('keeps the newest frame per job and lets go of the one it replaces', () => {
    const f = fake();
    const store = new GenerateRuns(f.api);
    const frame = (jobId: string, step: number): JobFrame => ({
      jobId,
      step,
      mime: 'image/png',
      width: 32,
      height: 32,
      data: new Uint8Array([1]),
    });
    store.onFrame(frame('a', 1));
    store.onFrame(frame('a', 5));
    store.onFrame(frame('a', 3)); // late: dropped
    expect(store.frames.get('a')).toMatchObject({ url: 'blob:2', step: 5 });
    expect(f.revoked).toEqual(['blob:1']);
    for (let i = 0; i < 20; i++) store.onFrame(frame(`j${i}`, 1));
    expect(store.frames.size).toBe(12);
    expect(f.revoked).toContain('blob:2');
  });

  it('moves a queued run before its neighbour, or to the end', () => {
    const q = [summary(1, 'running'), summary(2, 'queued'), summary(3, 'queued'), summary(4, 'queued')];
    expect(moveTarget(q, 2, -1)).toBeUndefined(); // the running one stays first
    expect(moveTarget(q, 3, -1)).toBe(2);
    expect(moveTarget(q, 2, 1)).toBe(4);
    expect(moveTarget(q, 3, 1)).toBeNull();
    expect(moveTarget(q, 4, 1)).toBeUndefined();
    expect(moveTarget(q, 1, 1)).toBeUndefined();
  });

  it('reads the losses of a progress event by the shared value keys', () => {
    expect(lossPoint(status(1, 7, 'running', 2))).toEqual({ step: 7, total: 2, perPrompt: [1, 0.5] });
    expect(lossPoint(status(1, 7))).toBeNull();
  });
});
