// Jobs: events that carry their id, frames, cancel, the state kept for reconnecting clients; and a real
// job end to end (the gradient check, run as a task in the compute worker behind openStudio).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { apiCalls, apiEvents, type JobFrame, type JobStatus } from '../../../src/shared/api.js';
import { openStudio } from '../../../src/main/studio/index.js';
import { JobManager } from '../../../src/main/studio/jobs/manager.js';

const root = mkdtempSync(path.join(tmpdir(), 'fstudio-jobs-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A JobManager whose events are checked against the API's schemas and recorded. */
function manager() {
  const events: { name: string; payload: unknown }[] = [];
  const jobs = new JobManager((name, payload) => {
    apiEvents[name].parse(payload); // every event as the transports would send it
    events.push({ name, payload });
  });
  const progress = (id: string) =>
    events
      .filter((e) => e.name === 'jobProgress' && (e.payload as JobStatus).jobId === id)
      .map((e) => e.payload as JobStatus);
  return { jobs, events, progress };
}

describe('JobManager', () => {
  it('a job reports progress and frames under its id, and ends done with its message', async () => {
    const { jobs, events, progress } = manager();
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const started = jobs.start('gradcheck', 'A job', async (job) => {
      job.progress({ step: 1, total: 3, values: { loss: 0.5 }, message: 'first' });
      job.frame({ step: 1, mime: 'image/png', width: 2, height: 1, data: new Uint8Array([1, 2, 3]) });
      await gate;
      job.progress({ step: 3, total: 3 });
      return 'All 3 done.';
    });
    expect(started).toMatchObject({ kind: 'gradcheck', title: 'A job', state: 'running' });
    release();
    await new Promise((r) => setTimeout(r, 10));
    const seen = progress(started.jobId);
    expect(seen.map((s) => [s.state, s.step])).toEqual([
      ['queued', 0],
      ['running', 0],
      ['running', 1],
      ['running', 1], // the frame's step recorded
      ['running', 3],
      ['done', 3],
    ]);
    expect(seen.at(-1)).toMatchObject({ message: 'All 3 done.', values: { loss: 0.5 }, frameStep: 1, error: null });
    const frames = events.filter((e) => e.name === 'jobFrame').map((e) => e.payload as JobFrame);
    expect(frames).toEqual([
      { jobId: started.jobId, step: 1, mime: 'image/png', width: 2, height: 1, data: new Uint8Array([1, 2, 3]) },
    ]);
    expect(jobs.list([started.jobId, 'unknown'])).toEqual([seen.at(-1)]);
  });

  it('cancel aborts the work, which ends cancelled; a failure ends failed with the error; nothing after the end', async () => {
    const { jobs, progress } = manager();
    const stopped = new Promise<void>((resolve) => {
      jobs.start('gradcheck', 'Long', async (job) => {
        await new Promise<void>((r) => job.signal.addEventListener('abort', () => r()));
        resolve();
        job.progress({ step: 99 }); // after the cancel: ignored once the job has ended
      });
    });
    const [long] = jobs.list();
    expect(jobs.cancel(long!.jobId)).toBe(true);
    await stopped;
    await new Promise((r) => setTimeout(r, 0));
    expect(progress(long!.jobId).at(-1)).toMatchObject({ state: 'cancelled', message: 'Cancelled.' });
    expect(jobs.cancel(long!.jobId)).toBe(false); // over already
    expect(jobs.cancel('nope')).toBe(false);

    const failing = jobs.start('gradcheck', 'Broken', async () => {
      throw Object.assign(new Error('the driver said no'), { name: 'DriverError' });
    });
    await new Promise((r) => setTimeout(r, 0));
    expect(progress(failing.jobId).at(-1)).toMatchObject({
      state: 'failed',
      message: 'the driver said no',
      error: { name: 'DriverError', message: 'the driver said no' },
    });
  });

  it('a tracked job (work elsewhere) keeps one entry, hears cancel once, and keeps the last 100 finished', () => {
    const { jobs } = manager();
    let cancels = 0;
    const a = jobs.track('pull-1', 'model-pull', 'Download x', () => cancels++);
    a.progress({ state: 'queued', message: 'waiting' });
    const again = jobs.track('pull-1', 'model-pull', 'Download x', () => cancels++);
    again.progress({ step: 10, total: 100 });
    expect(jobs.list(['pull-1'])).toMatchObject([{ state: 'running', step: 10, total: 100 }]);
    jobs.cancel('pull-1');
    expect(cancels).toBe(1);
    a.finish('cancelled');
    for (let i = 0; i < 120; i++) jobs.track(`j${i}`, 'model-pull', 'x').finish('done');
    const left = jobs.list();
    expect(left).toHaveLength(100);
    expect(left.some((s) => s.jobId === 'j119')).toBe(true);
    expect(left.some((s) => s.jobId === 'pull-1')).toBe(false); // the oldest finished went first
  });
});

describe('a real job through the studio', () => {
  it('checkGradients runs in the compute worker, reports per case under its job id, and can be cancelled', async () => {
    const studio = await openStudio({ dataDir: path.join(root, 'studio') });
    try {
      const statuses: JobStatus[] = [];
      let onUpdate = () => {};
      studio.on('jobProgress', (s) => {
        statuses.push(s);
        onUpdate();
      });
      const until = (f: () => boolean) =>
        new Promise<void>((resolve) => {
          onUpdate = () => f() && resolve();
          onUpdate();
        });
      const args = apiCalls.checkGradients.args.parse({ provider: 'cpu' });
      const { jobId } = await studio.handlers.checkGradients(args);
      const mine = () => statuses.filter((s) => s.jobId === jobId);
      await until(() => mine().at(-1)?.state === 'done');
      const last = mine().at(-1)!;
      expect(last.message).toMatch(
        /^All \d+ ops agree with finite differences on cpu \(worst relative error .*, tolerance 0\.01\)\.$/,
      );
      expect(last.total).toBeGreaterThan(30);
      expect(last.step).toBe(last.total);
      // One update per case checked, in order.
      const steps = mine()
        .filter((s) => s.state === 'running' && s.step > 0)
        .map((s) => s.step);
      expect(steps).toEqual(Array.from({ length: last.total! }, (_, i) => i + 1));
      expect(await studio.handlers.jobList({ ids: [jobId] })).toEqual([last]);

      // Cancelled after its third case: it stops long before the end and says so.
      const second = await studio.handlers.checkGradients(args);
      const theirs = () => statuses.filter((s) => s.jobId === second.jobId);
      await until(() => (theirs().at(-1)?.step ?? 0) >= 3);
      expect(await studio.handlers.jobCancel({ jobId: second.jobId })).toEqual({ cancelled: true });
      await until(() => theirs().at(-1)?.state === 'cancelled');
      expect(theirs().at(-1)!.step).toBeLessThan(last.total! / 2);
    } finally {
      await studio.close();
    }
  });
});
