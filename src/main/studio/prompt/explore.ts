// The uncertainty explorer: the same inputs through variants of one prompt (orderings of its examples,
// leave-one-out, label wordings; shared/prompt-stats.ts builds them) as a job with a history run of kind
// 'prompt'. One row per (variant, input) goes to the run's rows (idx = variant * inputs + input); a classifier
// is always scored raw and calibrated, so the two can be set side by side. The statistics (per input flip
// rate and entropy, per variant accuracy and class shares, accuracy mean and spread) are computed from the
// rows when asked, with prompt-stats.
//
// Public API
//   startExplore(ctx, o) -> ActiveRun
//   exploreResult(ctx, run, job) -> PromptExploreResult
//   MAX_EXPLORE_CELLS
import { randomUUID } from 'node:crypto';
import { basename } from 'node:path';
import {
  StudioError,
  type ExploreStats as ApiExploreStats,
  type JobStatus,
  type PromptExploreResult,
  type PromptRow,
  type PromptRowOutput,
} from '../../../shared/api.js';
import { type PromptModelSpec } from '../../../shared/prompt-model.js';
import {
  applyVariant,
  buildVariants,
  exploreStats,
  type Answer,
  type AnswerStats,
  type Variant,
} from '../../../shared/prompt-stats.js';
import type { StudioContext } from '../context.js';
import type { RunRow } from '../history.js';
import type { JobHandle } from '../jobs/manager.js';
import type { ResolvedLm } from './library.js';
import {
  endPromptRun,
  goldOf,
  runTitle,
  searchBody,
  Tally,
  type ActiveRun,
  type InputRow,
  type RunOutcome,
  type RunRecord,
} from './runs.js';
import { PromptScorer } from './scoring.js';

/** Variants x inputs at most: an exploration is read back whole. */
export const MAX_EXPLORE_CELLS = 50_000;
/** Characters of each input kept in the run's record (the rows keep them whole). */
const INPUT_PREVIEW = 2000;

interface ExploreRecord extends RunRecord {
  kind: 'explore';
  variantList: { id: string; kind: Variant['kind']; description: string }[];
  inputs: { idx: number; text: string; gold: string | null }[];
}

export interface StartExplore {
  lm: ResolvedLm;
  saved: RunRecord['saved'];
  input: RunRecord['input'];
  rows: InputRow[];
  variants: { permutations: number; leaveOneOut: boolean; wordings: boolean; seed: number };
  limit: number;
  provider: string;
}

/** The variants an exploration runs, refused in words when there are too many. */
export function exploreVariants(spec: PromptModelSpec, o: StartExplore['variants'], inputs: number): Variant[] {
  const variants = buildVariants(spec, {
    permutations: o.permutations + 1,
    seed: o.seed,
    leaveOneOut: o.leaveOneOut,
    wordings: o.wordings,
  });
  if (variants.length * inputs > MAX_EXPLORE_CELLS)
    throw new StudioError(
      'InvalidArgument',
      `${variants.length} variants x ${inputs} inputs is ${variants.length * inputs} answers; the explorer computes ` +
        `at most ${MAX_EXPLORE_CELLS.toLocaleString('en-US')}: ask for fewer permutations or a lower limit.`,
    );
  return variants;
}

export function startExplore(ctx: StudioContext, o: StartExplore): ActiveRun {
  const spec = o.lm.spec;
  if (o.rows.length === 0) throw new StudioError('InputFile', 'There are no inputs to explore.');
  const variants = exploreVariants(spec, o.variants, o.rows.length);
  const labels = spec.labels.map((l) => l.name);
  const jobId = randomUUID();
  const what = 'path' in o.input ? basename(o.input.path) : `${o.rows.length} inputs`;
  const title = `Explore ${runTitle(spec, o.saved, what)}`;
  const record: ExploreRecord = {
    kind: 'explore',
    spec,
    saved: o.saved,
    input: o.input,
    limit: o.limit,
    jobId,
    variants: o.variants,
    variantList: variants.map((v) => ({ id: v.id, kind: v.kind, description: v.description })),
    inputs: o.rows.map((r) => ({ idx: r.idx, text: r.text.slice(0, INPUT_PREVIEW), gold: goldOf(r.gold, labels) })),
  };
  const total = variants.length * o.rows.length;
  const now = Date.now();
  const runId = ctx.history.insertRun({
    kind: 'prompt',
    status: 'running',
    title,
    spec: record,
    provenance: { lm: o.lm.ref, files: spec.model.files, provider: null },
    createdAt: now,
    startedAt: now,
    progressTotal: total,
  });
  ctx.lab.indexRun(runId, title, `explore explorer uncertainty\n${searchBody(spec, o.input)}`);
  const job = ctx.jobs.track(jobId, 'prompt', title, undefined, runId);
  const tally = new Tally(spec);
  const done = exploreRows(ctx, { ...o, runId, job, list: variants, record, title, total, tally });
  return { runId, jobId, done, tally };
}

interface Exploring extends StartExplore {
  runId: number;
  job: JobHandle;
  list: Variant[];
  record: ExploreRecord;
  title: string;
  total: number;
  tally: Tally;
}

async function exploreRows(ctx: StudioContext, e: Exploring): Promise<void> {
  const started = Date.now();
  const n = e.rows.length;
  let provider: string | null = null;
  let outcome: RunOutcome = { to: 'done' };
  try {
    for (let v = 0; v < e.list.length && !e.job.signal.aborted; v++) {
      const variant = e.list[v]!;
      // A classifier is scored raw and calibrated in every exploration (when it has content-free inputs).
      const spec = { ...applyVariant(e.lm.spec, variant), calibrate: e.lm.spec.contentFree.length > 0 };
      const scorer = new PromptScorer(ctx.compute, { ref: e.lm.ref, spec, provider: e.provider });
      const outputs = await variantOutputs(scorer, spec, e.rows, e.job.signal, (p) => (provider ??= p));
      const rows: PromptRow[] = outputs.map((output, i) => ({
        idx: v * n + i,
        input: e.rows[i]!.text,
        gold: e.record.inputs[i]!.gold,
        output,
      }));
      ctx.lab.appendRows(
        e.runId,
        rows.map((r) => ({ idx: r.idx, input: r.input, output: { ...r.output, gold: r.gold, variant: variant.id } })),
      );
      for (const r of rows) e.tally.add(r);
      ctx.emit('promptRows', { runId: e.runId, rows });
      const rate = e.tally.rows / Math.max(0.001, (Date.now() - started) / 1000);
      ctx.history.setRunProgress(e.runId, e.tally.rows, e.total, Date.now());
      e.job.progress({
        step: e.tally.rows,
        total: e.total,
        values: { rowsPerSecond: rate, etaSeconds: (e.total - e.tally.rows) / rate, variant: v + 1 },
        message: `Variant ${v + 1} of ${e.list.length} (${variant.description})`,
      });
    }
    if (e.job.signal.aborted) outcome = { to: 'cancelled' };
  } catch (err) {
    outcome = e.job.signal.aborted ? { to: 'cancelled' } : { to: 'failed', error: (err as Error).message };
  }
  const seconds = (Date.now() - started) / 1000;
  const provenance = {
    lm: e.lm.ref,
    files: e.lm.spec.model.files,
    provider,
    rowsPerSecond: seconds > 0 && e.tally.rows > 0 ? e.tally.rows / seconds : null,
  };
  const what = `${e.tally.rows.toLocaleString('en-US')} of ${e.total.toLocaleString('en-US')} answers`;
  endPromptRun(ctx, { ...e, provenance }, outcome, what);
}

/** One variant's answers for every input (a cancel in the middle leaves the variant out: [] is returned). */
async function variantOutputs(
  scorer: PromptScorer,
  spec: PromptModelSpec,
  rows: InputRow[],
  signal: AbortSignal,
  onProvider: (p: string) => void,
): Promise<PromptRowOutput[]> {
  if (spec.task === 'classify') {
    const { outputs, provider } = await scorer.classify(
      rows.map((r) => r.text),
      signal,
    );
    if (provider) onProvider(provider);
    return outputs.length === rows.length ? outputs : [];
  }
  const out: PromptRowOutput[] = [];
  for (const r of rows) {
    if (signal.aborted) return [];
    const { provider, ...o } = await scorer.generate(r.text, r.idx, { signal });
    onProvider(provider);
    out.push(o);
  }
  return out;
}

// ---------- reading an exploration back ----------

type Matrix = string[][];

/** The variants' answers as stored (label names or generated answers), '' where not computed. */
function answerMatrices(ctx: StudioContext, runId: number, variants: number, n: number) {
  const blank = () => Array.from({ length: variants }, () => new Array<string>(n).fill(''));
  const raw: Matrix = blank();
  const calibrated: Matrix = blank();
  let anyCalibrated = false;
  for (const row of ctx.lab.iterateRows(runId)) {
    const v = Math.floor(row.idx / n);
    const i = row.idx % n;
    if (v >= variants) continue;
    const out = row.output as PromptRowOutput;
    raw[v]![i] = out.task === 'classify' ? out.rawLabel : out.answer;
    if (out.task === 'classify' && out.calibratedLabel !== null) {
      calibrated[v]![i] = out.calibratedLabel;
      anyCalibrated = true;
    }
  }
  return { raw, calibrated: anyCalibrated ? calibrated : null };
}

function toAnswers(m: Matrix, labels: readonly string[]): Answer[][] {
  return m.map((row) =>
    row.map((a) => {
      if (a === '') return null;
      if (labels.length === 0) return a;
      const i = labels.indexOf(a);
      return i >= 0 ? i : a;
    }),
  );
}

function apiStats(
  s: AnswerStats,
  goldShare: number[] | null,
  record: ExploreRecord,
  labels: readonly string[],
): ApiExploreStats {
  const name = (a: number | string | null) => (a === null ? '' : typeof a === 'number' ? (labels[a] ?? '') : a);
  return {
    perInput: s.inputs.map((x) => {
      const gold = record.inputs[x.input]!.gold;
      const hit = gold === null ? null : (x.counts.find((c) => name(c.answer) === gold)?.count ?? 0);
      return {
        idx: record.inputs[x.input]!.idx,
        majority: name(x.mode),
        flipRate: x.flipRate,
        entropyBits: x.entropyBits,
        correctShare: hit === null || x.answered === 0 ? null : hit / x.answered,
      };
    }),
    perVariant: s.variants.map((v) => ({
      variantId: record.variantList[v.variant]!.id,
      accuracy: v.accuracy,
      shares: v.classShare ?? [],
    })),
    dataShares: goldShare,
    accuracy: s.accuracy
      ? { mean: s.accuracy.mean, sd: s.accuracy.sd, min: s.accuracy.min, max: s.accuracy.max }
      : null,
    meanFlipRate: s.meanFlipRate,
    meanEntropyBits: s.inputs.length === 0 ? 0 : s.inputs.reduce((a, x) => a + x.entropyBits, 0) / s.inputs.length,
  };
}

export function exploreResult(
  ctx: StudioContext,
  run: RunRow,
  summary: PromptExploreResult['run'],
  job: JobStatus | null,
): PromptExploreResult {
  const record = run.spec as ExploreRecord;
  if (record?.kind !== 'explore')
    throw new StudioError('NotFound', `Run ${run.id} is not an exploration: open it with promptRunGet.`);
  const labels = record.spec.task === 'classify' ? record.spec.labels.map((l) => l.name) : [];
  const n = record.inputs.length;
  const { raw, calibrated } = answerMatrices(ctx, run.id, record.variantList.length, n);
  const complete = raw.every((row) => row.every((a) => a !== ''));
  let stats: PromptExploreResult['stats'] = null;
  if (complete) {
    // A gold answer that is not a label stays a string: every answer to it counts as wrong.
    const [gold] = toAnswers([record.inputs.map((x) => x.gold ?? '')], labels);
    const s = exploreStats({
      raw: toAnswers(raw, labels),
      ...(calibrated ? { calibrated: toAnswers(calibrated, labels) } : {}),
      gold,
      classes: labels.length || undefined,
    });
    stats = {
      raw: apiStats(s.raw, s.goldShare, record, labels),
      calibrated: s.calibrated ? apiStats(s.calibrated, s.goldShare, record, labels) : null,
    };
  }
  return {
    run: summary,
    task: record.spec.task,
    labels,
    variants: record.variantList,
    inputs: record.inputs,
    raw,
    calibrated,
    stats,
    job,
  };
}
