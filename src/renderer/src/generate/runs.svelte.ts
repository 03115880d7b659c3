// The Generate page's runs: the queue (generateQueue, refetched on queueChanged), the runs that left it
// in this window (and the newest ones in the gallery), the run the page shows with its detail (snapshots,
// losses), the live loss points and preview frames its job sends, and which snapshot is being looked at.
// Kept for the app's lifetime, so leaving the page and coming back shows the same run at the same step.
import { untrack } from 'svelte';
import { SvelteMap } from 'svelte/reactivity';
import {
  FINISHED_JOB_STATES,
  GENERATE_VALUE_KEYS,
  type JobFrame,
  type JobStatus,
  type RunDetail,
  RunSummary,
} from '../../../shared/api.js';
import type { RunState } from '../../../shared/runs.js';
import { describeError } from '../lib/errors.js';
import { getStudio } from '../lib/studio-client.js';
import type { LossPoint } from './chart.js';

export interface RunsBackend {
  generateQueue(): Promise<RunSummary[]>;
  generateMove(runId: number, before: number | null): Promise<RunSummary[]>;
  getRun(runId: number): Promise<RunDetail>;
  /** A URL an <img> shows the frame's bytes at (an object URL), and how to let it go. */
  frameUrl(frame: JobFrame): string;
  revokeUrl(url: string): void;
  now(): number;
}

/** A preview frame as an <img> shows it. */
export type LiveFrame = Pick<JobFrame, 'step' | 'width' | 'height'> & { url: string };

/** Frames kept (one per job, the newest); older jobs' frames are let go. */
const MAX_FRAMES = 12;
const MAX_RECENT = 24;
/** While a run is shown and running, its detail (new snapshots) is fetched again at most this often. */
const DETAIL_REFRESH_MS = 2500;

export const isFinished = (state: RunState): boolean => FINISHED_JOB_STATES.includes(state);

/** A generate job's losses as a chart point, or null when it carries none. */
export function lossPoint(s: Pick<JobStatus, 'step' | 'values'>): LossPoint | null {
  const total = s.values[GENERATE_VALUE_KEYS.total];
  if (total === undefined) return null;
  const perPrompt: number[] = [];
  for (let i = 0; ; i++) {
    const v = s.values[GENERATE_VALUE_KEYS.perPrompt(i)];
    if (v === undefined) break;
    perPrompt.push(v);
  }
  return { step: s.step, total, perPrompt };
}

/**
 * Where a queued run goes when moved one place up (-1) or down (1): the run to put it before (null: the
 * end), or undefined when it cannot move that way. Only queued runs move; running and paused ones stay.
 */
export function moveTarget(
  queue: readonly Pick<RunSummary, 'runId' | 'state'>[],
  runId: number,
  dir: -1 | 1,
): number | null | undefined {
  const queued = queue.filter((r) => r.state === 'queued');
  const i = queued.findIndex((r) => r.runId === runId);
  if (i < 0) return undefined;
  if (dir === -1) return i === 0 ? undefined : queued[i - 1]!.runId;
  if (i === queued.length - 1) return undefined;
  return queued[i + 2]?.runId ?? null;
}

export class GenerateRuns {
  /** Waiting, running and paused runs, in queue order. */
  queue = $state.raw<RunSummary[]>([]);
  /** Runs that left the queue (finished), newest first. */
  recent = $state.raw<RunSummary[]>([]);
  loaded = $state(false);
  error = $state<string | null>(null);
  /** The run the user picked; null: follow the queue. */
  chosenId = $state<number | null>(null);
  detail = $state.raw<RunDetail | null>(null);
  detailError = $state<string | null>(null);
  /** Loss points that arrived (jobProgress) after the detail's last one, for the run they belong to. */
  live = $state.raw<{ runId: number; points: LossPoint[] }>({ runId: 0, points: [] });
  /** The snapshot step looked at in the trajectory; null: the newest picture. */
  scrub = $state<number | null>(null);
  /** The newest preview frame of each job, by job id. */
  readonly frames = new SvelteMap<string, LiveFrame>();
  /** The newest status of each generate job, by run id. */
  readonly status = new SvelteMap<number, JobStatus>();

  private refreshing: Promise<void> | null = null;
  private again = false;
  private loadToken = 0;
  private fetchedAt = 0;

  constructor(private readonly api: RunsBackend) {}

  /** A run's summary with the step and state its job reported last (fresher than the last fetch). */
  current(r: RunSummary): RunSummary {
    const s = this.status.get(r.runId);
    return s ? { ...r, state: s.state, step: s.step } : r;
  }

  find(runId: number): RunSummary | undefined {
    const r =
      this.queue.find((q) => q.runId === runId) ??
      this.recent.find((q) => q.runId === runId) ??
      (this.detail?.runId === runId ? this.detail : undefined);
    return r && this.current(r);
  }

  /** The run the page shows: the one picked, else the one running, else the next queued, else the newest. */
  readonly selectedId = $derived.by((): number | null => {
    if (this.chosenId !== null && this.find(this.chosenId)) return this.chosenId;
    const queue = this.queue.map((r) => this.current(r));
    return queue.find((r) => r.state === 'running')?.runId ?? queue[0]?.runId ?? this.recent[0]?.runId ?? null;
  });

  readonly selected = $derived(this.selectedId === null ? undefined : this.find(this.selectedId));
  readonly selectedDetail = $derived(
    this.detail !== null && this.detail.runId === this.selectedId ? this.detail : null,
  );

  /** The selected run's losses: the detail's, then the points that came after. */
  readonly losses = $derived.by((): LossPoint[] => {
    const base = this.selectedDetail?.losses ?? [];
    return this.live.runId === this.selectedId ? [...base, ...this.live.points] : base;
  });

  choose(runId: number | null): void {
    this.chosenId = runId;
    this.scrub = null;
  }

  // ---------- the queue ----------

  /** Refetches the queue; calls made while one is in flight coalesce into one more. */
  refreshQueue(): Promise<void> {
    if (this.refreshing) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        do {
          this.again = false;
          this.setQueue(await this.api.generateQueue());
        } while (this.again);
        this.error = null;
      } catch (e) {
        this.error = describeError(e, 'Loading the queue');
      } finally {
        this.loaded = true;
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  setQueue(next: RunSummary[]): void {
    const left = this.queue.filter((r) => !next.some((n) => n.runId === r.runId));
    this.queue = next;
    this.remember(left.map((r) => this.current(r)));
    this.recent = this.recent.filter((r) => !next.some((n) => n.runId === r.runId));
    // A run that left the queue ended: fetch how (its image, its last snapshots).
    for (const r of left) void this.refreshSummary(r.runId);
  }

  /** Puts runs at the front of the recent list (newest first, each once). */
  remember(runs: readonly RunSummary[]): void {
    if (runs.length === 0) return;
    this.recent = [...runs, ...this.recent.filter((r) => !runs.some((n) => n.runId === r.runId))]
      .sort((a, b) => b.createdAt - a.createdAt)
      .slice(0, MAX_RECENT);
  }

  /** A run's summary as the server has it now, into whichever list holds it. */
  applySummary(s: RunSummary): void {
    const summary = RunSummary.parse(s);
    const status = this.status.get(summary.runId);
    // A status newer than this answer would be overwritten by an older state: drop the status instead.
    if (status && status.state !== summary.state) this.status.delete(summary.runId);
    if (this.queue.some((r) => r.runId === summary.runId))
      this.queue = this.queue.map((r) => (r.runId === summary.runId ? summary : r));
    else if (this.recent.some((r) => r.runId === summary.runId))
      this.recent = this.recent.map((r) => (r.runId === summary.runId ? summary : r));
    else if (!isFinished(summary.state)) void this.refreshQueue();
    else this.remember([summary]);
  }

  private async refreshSummary(runId: number): Promise<void> {
    try {
      const d = await this.api.getRun(runId);
      if (this.queue.some((r) => r.runId === runId)) return;
      this.applySummary(d);
      if (runId === this.selectedId) this.takeDetail(d);
    } catch {
      // Gone (deleted with its images): it stays as it was last seen.
    }
  }

  /** Moves a queued run one place; the server answers with the new order. */
  async move(runId: number, dir: -1 | 1): Promise<boolean> {
    const before = moveTarget(
      this.queue.map((r) => this.current(r)),
      runId,
      dir,
    );
    if (before === undefined) return false;
    this.setQueue(await this.api.generateMove(runId, before));
    return true;
  }

  /** Adds runs (the newest of the gallery) to the recent list without disturbing what is there. */
  async loadRecent(runIds: readonly number[]): Promise<void> {
    const wanted = runIds.filter((id) => !this.find(id));
    const found = await Promise.all(wanted.map((id) => this.api.getRun(id).catch(() => null)));
    const summaries = found.filter((d): d is RunDetail => d !== null).map((d) => RunSummary.parse(d));
    this.remember(summaries.filter((s) => isFinished(s.state) && !this.queue.some((q) => q.runId === s.runId)));
  }

  /** A run was just queued: show it, unless the user is watching one that still runs. */
  added(runId: number): void {
    const shown = this.selected;
    if (!shown || isFinished(shown.state)) this.choose(runId);
    void this.refreshQueue();
  }

  // ---------- the selected run's detail ----------

  /** Loads a run's detail (a no-op when it is already the one loaded, unless `refresh`). */
  async load(runId: number | null, refresh = false): Promise<void> {
    if (runId === null) return;
    if (!refresh && untrack(() => this.detail?.runId === runId)) return;
    const token = ++this.loadToken;
    this.fetchedAt = this.api.now();
    try {
      const d = await this.api.getRun(runId);
      if (token !== this.loadToken) return;
      this.takeDetail(d);
    } catch (e) {
      if (token === this.loadToken) this.detailError = describeError(e, 'Loading the run');
    }
  }

  private takeDetail(d: RunDetail): void {
    this.detail = d;
    this.detailError = null;
    const last = d.losses.at(-1)?.step ?? -Infinity;
    this.live =
      this.live.runId === d.runId
        ? { runId: d.runId, points: this.live.points.filter((p) => p.step > last) }
        : { runId: d.runId, points: [] };
  }

  // ---------- events ----------

  onProgress(s: JobStatus): void {
    if (s.kind !== 'generate' || s.runId === null) return;
    const runId = s.runId;
    const before = this.status.get(runId);
    this.status.set(runId, s);
    if (runId !== untrack(() => this.selectedId)) return;
    const point = lossPoint(s);
    if (point) {
      const live = this.live.runId === runId ? this.live.points : [];
      const last = live.at(-1)?.step ?? this.detail?.losses.at(-1)?.step ?? -Infinity;
      if (point.step > last) this.live = { runId, points: [...live, point] };
    }
    // New snapshots while it runs, all of them when it pauses or ends (and its image when it is done).
    const moved = before !== undefined && before.state !== s.state;
    if (moved || isFinished(s.state) || this.api.now() - this.fetchedAt >= DETAIL_REFRESH_MS)
      void this.load(runId, true);
  }

  onFrame(f: JobFrame): void {
    const prev = this.frames.get(f.jobId);
    if (prev && prev.step > f.step) return; // an older frame that arrived late
    const url = this.api.frameUrl(f);
    if (prev) {
      this.api.revokeUrl(prev.url);
      this.frames.delete(f.jobId); // re-inserted last: the map's order is "least recently updated first"
    }
    this.frames.set(f.jobId, { url, step: f.step, width: f.width, height: f.height });
    for (const [jobId, frame] of this.frames) {
      if (this.frames.size <= MAX_FRAMES) break;
      this.api.revokeUrl(frame.url);
      this.frames.delete(jobId);
    }
  }
}

/** The studio behind the store (asked for at the first call, so the logic also runs under Node in tests). */
function browserBackend(): RunsBackend {
  return {
    generateQueue: () => getStudio().generateQueue({}),
    generateMove: (runId, before) => getStudio().generateMove({ runId, before }),
    getRun: (runId) => getStudio().getRun({ runId }),
    frameUrl: (f) => URL.createObjectURL(new Blob([f.data.slice()], { type: f.mime })),
    revokeUrl: (url) => URL.revokeObjectURL(url),
    now: () => Date.now(),
  };
}

export const runs = new GenerateRuns(browserBackend());

let started = false;

/** Subscribes once to the events the page follows and loads the queue; safe to call again. */
export async function startRuns(): Promise<void> {
  if (started) return;
  started = true;
  const studio = getStudio();
  studio.onJobProgress((s) => runs.onProgress(s));
  studio.onJobFrame((f) => runs.onFrame(f));
  studio.onQueueChanged(() => void runs.refreshQueue());
  // Events sent while the connection was down are lost: fetch what changed when it returns.
  let wasClosed = false;
  studio.onConnection((state) => {
    if (state === 'closed' || state === 'unauthorized') wasClosed = true;
    else if (state === 'open' && wasClosed) {
      wasClosed = false;
      void runs.refreshQueue();
      void runs.load(runs.selectedId, true);
    }
  });
  await runs.refreshQueue();
  // The newest generated images' runs, so a fresh window has runs to look at and fork.
  try {
    const page = await studio.galleryQuery({ kind: 'generate', limit: 12 });
    const ids = page.items.map((i) => i.runId);
    await runs.loadRecent(ids.filter((id, i) => ids.indexOf(id) === i).slice(0, 8));
  } catch {
    // The recent list is a convenience; the queue and the gallery say the rest.
  }
}
