// The studio's jobs: every long piece of work a client asked for, with an id its events carry. A job
// is started with the function that does the work; the function reports progress and frames through
// its JobHandle and stops at its next step when its signal aborts (jobCancel). Its status is kept after
// it ends (the last MAX_FINISHED), so a client that reconnects can ask where its jobs got to.
//
// Public API
//   new JobManager(emit)
//     .start(kind, title, work, { runId? }) -> JobStatus     work(job) runs now; its outcome sets the state
//     .track(jobId, kind, title) -> JobHandle                 a job whose work runs elsewhere (model pulls)
//     .list(ids?) / .cancel(jobId) / .close()
//   JobHandle: signal, progress({ step, total, values, message }), frame(frame), finish(state, ...)
import { randomUUID } from 'node:crypto';
import {
  FINISHED_JOB_STATES,
  type EventName,
  type EventPayload,
  type JobFrame,
  type JobKind,
  type JobState,
  type JobStatus,
} from '../../../shared/api.js';

/** Finished jobs kept for reconnecting clients. */
const MAX_FINISHED = 100;

export interface JobProgress {
  /** 'running' unless given (a tracked job may report that it is waiting, or paused). */
  state?: Extract<JobState, 'queued' | 'running' | 'paused'>;
  step?: number;
  total?: number | null;
  values?: Record<string, number>;
  message?: string;
}

export interface JobHandle {
  readonly jobId: string;
  /** Aborted by jobCancel (and when the studio closes). */
  readonly signal: AbortSignal;
  progress(p: JobProgress): void;
  frame(f: Omit<JobFrame, 'jobId'>): void;
  /** Ends the job (start() does this itself from the work's outcome). */
  finish(state: Extract<JobState, 'done' | 'failed' | 'cancelled'>, message?: string, error?: Error): void;
}

type Emit = <K extends EventName>(name: K, payload: EventPayload<K>) => void;

interface Entry {
  status: JobStatus;
  controller: AbortController;
  /** Its work runs elsewhere (track): closing the studio is not a cancel of it. */
  tracked: boolean;
}

export class JobManager {
  readonly #jobs = new Map<string, Entry>();

  constructor(private readonly emit: Emit) {}

  #handle(entry: Entry): JobHandle {
    const update = (patch: Partial<JobStatus>) => {
      if (FINISHED_JOB_STATES.includes(entry.status.state)) return; // nothing changes after the end
      entry.status = { ...entry.status, ...patch, updatedAt: Date.now() };
      this.emit('jobProgress', entry.status);
    };
    return {
      jobId: entry.status.jobId,
      signal: entry.controller.signal,
      progress: (p) =>
        update({
          state: p.state ?? 'running',
          ...(p.step !== undefined ? { step: p.step } : {}),
          ...(p.total !== undefined ? { total: p.total } : {}),
          ...(p.values ? { values: p.values } : {}),
          ...(p.message !== undefined ? { message: p.message } : {}),
        }),
      frame: (f) => {
        if (FINISHED_JOB_STATES.includes(entry.status.state)) return;
        update({ frameStep: f.step });
        this.emit('jobFrame', { ...f, jobId: entry.status.jobId });
      },
      finish: (state, message, error) => {
        update({
          state,
          ...(message !== undefined ? { message } : {}),
          error: error ? { name: error.name, message: error.message } : null,
        });
        this.#trim();
      },
    };
  }

  #add(jobId: string, kind: JobKind, title: string, runId: number | null): Entry {
    const now = Date.now();
    const entry: Entry = {
      controller: new AbortController(),
      tracked: false,
      status: {
        jobId,
        kind,
        title,
        state: 'queued',
        step: 0,
        total: null,
        values: {},
        message: '',
        error: null,
        runId,
        startedAt: now,
        updatedAt: now,
        frameStep: null,
      },
    };
    this.#jobs.set(jobId, entry);
    this.emit('jobProgress', entry.status);
    return entry;
  }

  /** Starts `work` as a job now; resolves the job's first status (the work goes on). */
  start(
    kind: JobKind,
    title: string,
    work: (job: JobHandle) => Promise<string | void>,
    opts: { runId?: number } = {},
  ): JobStatus {
    const entry = this.#add(randomUUID(), kind, title, opts.runId ?? null);
    const job = this.#handle(entry);
    void (async () => {
      try {
        job.progress({});
        const message = await work(job);
        if (job.signal.aborted) job.finish('cancelled', 'Cancelled.');
        else job.finish('done', message ?? 'Done.');
      } catch (e) {
        const err = e instanceof Error ? e : new Error(String(e));
        if (job.signal.aborted || err.name === 'Cancelled') job.finish('cancelled', 'Cancelled.');
        else job.finish('failed', err.message, err);
      }
    })();
    return entry.status;
  }

  /**
   * A job whose work runs elsewhere (it reports through the handle, and ends with finish()); the same handle
   * again while it runs. onCancel hears jobCancel.
   */
  track(jobId: string, kind: JobKind, title: string, onCancel?: () => void, runId: number | null = null): JobHandle {
    const existing = this.#jobs.get(jobId);
    if (existing && !FINISHED_JOB_STATES.includes(existing.status.state)) return this.#handle(existing);
    const entry = this.#add(jobId, kind, title, runId);
    entry.tracked = true;
    if (onCancel) entry.controller.signal.addEventListener('abort', onCancel, { once: true });
    return this.#handle(entry);
  }

  /** The jobs with these ids that are still known, or all of them. */
  list(ids?: readonly string[]): JobStatus[] {
    if (!ids) return [...this.#jobs.values()].map((e) => e.status);
    return ids.flatMap((id) => {
      const e = this.#jobs.get(id);
      return e ? [e.status] : [];
    });
  }

  /** Asks a running job to stop; false when it is unknown or over. */
  cancel(jobId: string): boolean {
    const e = this.#jobs.get(jobId);
    if (!e || FINISHED_JOB_STATES.includes(e.status.state)) return false;
    e.controller.abort();
    return true;
  }

  /**
   * Stops every job started here that is still going (the studio is closing). Tracked jobs are left to
   * their owners (a queued generation run stays queued for the next start).
   */
  close(): void {
    for (const e of this.#jobs.values())
      if (!e.tracked && !FINISHED_JOB_STATES.includes(e.status.state)) e.controller.abort();
  }

  #trim(): void {
    const finished = [...this.#jobs.values()].filter((e) => FINISHED_JOB_STATES.includes(e.status.state));
    for (const e of finished.slice(0, Math.max(0, finished.length - MAX_FINISHED))) this.#jobs.delete(e.status.jobId);
  }
}
