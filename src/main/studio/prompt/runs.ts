// A prompt run: a prompt-made model over a stream of inputs, as a job with a history run. The run is a
// `runs` row of kind 'prompt' inserted 'running' (never 'queued': that is the generation queue's), indexed
// for the history search (model, instructions, labels, file name), its rows appended in batches and sent
// as `promptRows`, its progress in rows/s; a cancel stops after the current batch and ends it 'cancelled'
// with its rows kept; an error ends it 'failed' with the message, keeping the rows done.
//
// Public API
//   RunRecord (the run's spec JSON), RunProvenance, Tally (accuracy and answer counts as rows come)
//   startRun(ctx, o) -> ActiveRun { runId, jobId, done }   o: spec, lm, saved, source, batches, limit, onRows
//   inlineBatches(items) / goldOf(gold, labels)
import { randomUUID } from 'node:crypto';
import { basename } from 'node:path';
import type { PromptAccuracy, PromptInputSource, PromptRow, PromptRowOutput } from '../../../shared/api.js';
import { type PromptModelSpec } from '../../../shared/prompt-model.js';
import type { StudioContext } from '../context.js';
import type { JobHandle } from '../jobs/manager.js';
import type { InputRow as FileInputRow } from './inputs.js';
import type { ResolvedLm } from './library.js';
import { PromptScorer } from './scoring.js';

/** One input as read from a file (inputs.ts) or given inline. */
export type InputRow = Pick<FileInputRow, 'idx' | 'text' | 'gold'>;

/** What a prompt run's `runs.spec` holds. */
export interface RunRecord {
  kind: 'run' | 'explore';
  spec: PromptModelSpec;
  saved: { name: string; version: number } | null;
  input: PromptInputSource | { inline: number };
  limit: number | null;
  jobId: string;
  /** The explorer's settings (kind 'explore'). */
  variants?: { permutations: number; leaveOneOut: boolean; wordings: boolean; seed: number };
}

/** What a prompt run's `runs.provenance` holds (the outcome parts once it ended). */
export interface RunProvenance {
  lm: string;
  files: PromptModelSpec['model']['files'];
  provider: string | null;
  accuracy?: PromptAccuracy | null;
  answers?: { answer: string; count: number }[];
  rowsPerSecond?: number | null;
  [k: string]: unknown;
}

export interface ActiveRun {
  runId: number;
  jobId: string;
  /** Resolves when the run has ended (its state is in the history). */
  done: Promise<void>;
  tally: Tally;
}

/** Distinct generated answers counted at most (the most common are reported). */
const MAX_DISTINCT = 1000;

/** Accuracy on gold rows and the count of each answer, as rows come. */
export class Tally {
  rows = 0;
  gold = 0;
  correct = 0;
  rawCorrect = 0;
  readonly #answers = new Map<string, number>();

  constructor(private readonly spec: PromptModelSpec) {
    for (const l of spec.labels) if (spec.task === 'classify') this.#answers.set(l.name, 0);
  }

  add(row: PromptRow): void {
    this.rows++;
    const a = row.output.answer;
    if (this.#answers.has(a) || this.#answers.size < MAX_DISTINCT)
      this.#answers.set(a, (this.#answers.get(a) ?? 0) + 1);
    if (row.gold === null) return;
    this.gold++;
    if (a === row.gold) this.correct++;
    if (row.output.task === 'classify' && row.output.rawLabel === row.gold) this.rawCorrect++;
  }

  accuracy(): PromptAccuracy | null {
    if (this.gold === 0) return null;
    const calibrated = this.spec.task === 'classify' && this.spec.calibrate;
    return {
      rows: this.gold,
      correct: this.correct,
      accuracy: this.correct / this.gold,
      rawCorrect: calibrated ? this.rawCorrect : null,
      rawAccuracy: calibrated ? this.rawCorrect / this.gold : null,
    };
  }

  answers(): { answer: string; count: number }[] {
    const all = [...this.#answers].map(([answer, count]) => ({ answer, count }));
    return this.spec.task === 'classify' ? all : all.sort((a, b) => b.count - a.count).slice(0, 20);
  }
}

/** A gold answer as results compare it: the label it names (ignoring case and spaces), else trimmed. */
export function goldOf(gold: string | undefined, labels: readonly string[]): string | null {
  if (gold === undefined) return null;
  const g = gold.trim();
  if (g === '') return null;
  const lower = g.toLowerCase();
  return labels.find((l) => l.toLowerCase() === lower) ?? g;
}

/** Inputs given as a list, in batches like readInputs'. */
export async function* inlineBatches(items: readonly { text: string; gold?: string }[]): AsyncGenerator<InputRow[]> {
  for (let at = 0; at < items.length; at += 64)
    yield items.slice(at, at + 64).map((x, i) => ({ idx: at + i, text: x.text, gold: x.gold }));
}

export function runTitle(spec: PromptModelSpec, saved: RunRecord['saved'], what: string): string {
  const name = saved ? `${saved.name} v${saved.version}` : spec.name;
  return `${name} on ${what}`;
}

/** What the history search finds a run by. */
export function searchBody(spec: PromptModelSpec, input: RunRecord['input']): string {
  return [
    spec.name,
    spec.description,
    spec.model.id,
    spec.task,
    spec.instructions,
    spec.labels.map((l) => l.name).join(' '),
    'path' in input ? `${basename(input.path)} ${input.path}` : '',
  ]
    .filter(Boolean)
    .join('\n')
    .slice(0, 100_000);
}

export interface StartRun {
  lm: ResolvedLm;
  saved: RunRecord['saved'];
  input: RunRecord['input'];
  /** The inputs, in batches (the first may already have been read, to refuse a bad file before recording). */
  batches: AsyncIterator<InputRow[]>;
  limit: number | null;
  provider: string;
  onRows?: (rows: PromptRow[]) => void;
  /** The share of the input file read so far (for an estimate of the rows when there is no limit). */
  readShare?: () => number | null;
}

/** Records the run, starts its job, and runs it in the background. */
export function startRun(ctx: StudioContext, o: StartRun): ActiveRun {
  const spec = o.lm.spec;
  const jobId = randomUUID();
  const what = 'path' in o.input ? basename(o.input.path) : `${o.input.inline} inputs`;
  const title = runTitle(spec, o.saved, what);
  const record: RunRecord = { kind: 'run', spec, saved: o.saved, input: o.input, limit: o.limit, jobId };
  const provenance: RunProvenance = { lm: o.lm.ref, files: spec.model.files, provider: null };
  const now = Date.now();
  const runId = ctx.history.insertRun({
    kind: 'prompt',
    status: 'running',
    title,
    spec: record,
    provenance,
    createdAt: now,
    startedAt: now,
    progressTotal: o.limit,
  });
  ctx.lab.indexRun(runId, title, searchBody(spec, o.input));
  const job = ctx.jobs.track(jobId, 'prompt', title, undefined, runId);
  const tally = new Tally(spec);
  const done = runRows(ctx, { ...o, runId, job, tally, record, provenance, title });
  return { runId, jobId, done, tally };
}

interface Running extends StartRun {
  runId: number;
  job: JobHandle;
  tally: Tally;
  record: RunRecord;
  provenance: RunProvenance;
  title: string;
}

async function runRows(ctx: StudioContext, r: Running): Promise<void> {
  const started = Date.now();
  const scorer = new PromptScorer(ctx.compute, { ref: r.lm.ref, spec: r.lm.spec, provider: r.provider });
  const labels = r.lm.spec.labels.map((l) => l.name);
  let outcome: RunOutcome = { to: 'done' };
  try {
    r.job.progress({ step: 0, total: r.limit, message: 'Loading the model…' });
    for (;;) {
      if (r.job.signal.aborted) break;
      const left = r.limit === null ? Infinity : r.limit - r.tally.rows;
      if (left <= 0) break;
      const next = await r.batches.next();
      if (next.done) break;
      const batch = next.value.slice(0, left);
      const rows = await scoreBatch(scorer, r, batch, labels);
      if (rows.length === 0) continue;
      ctx.lab.appendRows(
        r.runId,
        rows.map((row) => ({ idx: row.idx, input: row.input, output: { ...row.output, gold: row.gold } })),
      );
      for (const row of rows) r.tally.add(row);
      ctx.emit('promptRows', { runId: r.runId, rows });
      r.onRows?.(rows);
      report(ctx, r, started);
    }
    if (r.job.signal.aborted) outcome = { to: 'cancelled' };
  } catch (e) {
    outcome = r.job.signal.aborted ? { to: 'cancelled' } : { to: 'failed', error: (e as Error).message || String(e) };
  } finally {
    await r.batches.return?.(undefined).catch(() => {});
  }
  finishRun(ctx, r, outcome, started);
}

/** A batch's rows: classified SCORE_BATCH at a time, or generated one by one; a cancel keeps what is done. */
async function scoreBatch(scorer: PromptScorer, r: Running, batch: InputRow[], labels: string[]): Promise<PromptRow[]> {
  const row = (x: InputRow, output: PromptRowOutput): PromptRow => ({
    idx: x.idx,
    input: x.text,
    gold: goldOf(x.gold, labels),
    output,
  });
  if (r.lm.spec.task === 'classify') {
    const { outputs, provider } = await scorer.classify(
      batch.map((x) => x.text),
      r.job.signal,
    );
    r.provenance.provider ??= provider;
    return outputs.map((o, i) => row(batch[i]!, o));
  }
  const rows: PromptRow[] = [];
  for (const x of batch) {
    if (r.job.signal.aborted) break;
    const { provider, ...out } = await scorer.generate(x.text, x.idx, { signal: r.job.signal });
    r.provenance.provider ??= provider;
    rows.push(row(x, out));
  }
  return rows;
}

function report(ctx: StudioContext, r: Running, started: number): void {
  const seconds = (Date.now() - started) / 1000;
  const rate = seconds > 0 ? r.tally.rows / seconds : 0;
  const share = r.readShare?.() ?? null;
  // Without a limit, the rows to come are estimated from the share of the file read so far.
  const total =
    r.limit ?? (share !== null && share > 0 ? Math.max(r.tally.rows, Math.round(r.tally.rows / share)) : null);
  const eta = total !== null && rate > 0 ? (total - r.tally.rows) / rate : null;
  ctx.history.setRunProgress(r.runId, r.tally.rows, total !== null ? Math.max(total, 1) : null, Date.now());
  r.job.progress({
    step: r.tally.rows,
    total,
    values: { rowsPerSecond: rate, ...(eta !== null ? { etaSeconds: eta } : {}) },
    message: `${r.tally.rows.toLocaleString('en-US')} rows, ${rate.toFixed(1)} rows/s`,
  });
}

function finishRun(ctx: StudioContext, r: Running, outcome: RunOutcome, started: number): void {
  const seconds = (Date.now() - started) / 1000;
  const provenance: RunProvenance = {
    ...r.provenance,
    accuracy: r.tally.accuracy(),
    answers: r.tally.answers(),
    rowsPerSecond: seconds > 0 && r.tally.rows > 0 ? r.tally.rows / seconds : null,
  };
  endPromptRun(ctx, { ...r, provenance }, outcome, `${r.tally.rows.toLocaleString('en-US')} rows`);
}

/** How a prompt run or an exploration ended. */
export type RunOutcome = { to: 'done' | 'cancelled' } | { to: 'failed'; error: string };

/**
 * Records how a prompt run or an exploration ended (its record, provenance and title, then its state) and ends
 * its job saying how far it got (`what`: "120 rows"). A run that cannot be recorded (the studio closing under
 * it) is logged; the next open's recovery fails it.
 */
export function endPromptRun(
  ctx: StudioContext,
  r: { runId: number; job: JobHandle; record: unknown; provenance: Record<string, unknown>; title: string },
  outcome: RunOutcome,
  what: string,
): void {
  try {
    const now = Date.now();
    ctx.history.setRunSpec(r.runId, { spec: r.record, provenance: r.provenance, title: r.title }, now);
    ctx.history.transitionRun(r.runId, outcome, now);
  } catch (e) {
    console.error(`[prompt] run ${r.runId} could not be recorded as ${outcome.to}:`, e);
  }
  if (outcome.to === 'failed')
    r.job.finish('failed', `Failed after ${what}: ${outcome.error}`, new Error(outcome.error));
  else r.job.finish(outcome.to, outcome.to === 'done' ? `Done: ${what}.` : `Cancelled after ${what}.`);
}
