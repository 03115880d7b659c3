// Prompt runs as the API shows them: summaries and details from the history's runs rows, pages of their
// rows, two runs compared position by position, and a run's rows exported as CSV or JSONL. Large runs are
// read in pages by index (keyset, never OFFSET) with a turn of the event loop between pages, so a million
// rows neither fill memory nor hold the main thread.
//
// Public API
//   summaryOf(ctx, run, active?) / detailOf(ctx, run, active?)
//   rowPage(ctx, runId, offset, limit) -> { total, rows }
//   compareRuns(ctx, a, b, { offset, limit }) -> counts and a page of differences
//   pagedRows(ctx, runId, pageSize?) async generator of stored rows in idx order
//   csvHeader(spec) / csvLine(spec, row) / jsonlLine(row) / csvField(text)   one definition for export and CLI
//   exportRun(ctx, runId, format, inlineMax?) -> { fileName, mime, data | path, bytes, rows }
import { createWriteStream } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import {
  PROMPT_EXPORT_INLINE_MAX,
  StudioError,
  type JobStatus,
  type PromptRow,
  type PromptRowOutput,
  type PromptRunDetail,
  type PromptRunSummary,
} from '../../../shared/api.js';
import { type PromptModelSpec } from '../../../shared/prompt-model.js';
import type { StudioContext } from '../context.js';
import type { RunRow } from '../history.js';
import type { StoredRow } from '../lab-store.js';
import type { RunProvenance, RunRecord, Tally } from './runs.js';

export interface ActiveInfo {
  jobId: string;
  tally: Tally;
}

function recordOf(run: RunRow): RunRecord {
  const r = run.spec as RunRecord | null;
  if (run.kind !== 'prompt' || !r || (r.kind !== 'run' && r.kind !== 'explore'))
    throw new StudioError('NotFound', `Run ${run.id} is not a Prompt Lab run.`);
  return r;
}

/** The run, checked to be a prompt run. */
export function promptRun(ctx: StudioContext, runId: number): RunRow {
  const run = ctx.history.getRun(runId);
  if (!run) throw new StudioError('NotFound', `No run with id ${runId} (it may have been deleted).`);
  recordOf(run);
  return run;
}

function jobOf(ctx: StudioContext, jobId: string | null): JobStatus | null {
  return jobId ? (ctx.jobs.list([jobId])[0] ?? null) : null;
}

export function summaryOf(ctx: StudioContext, run: RunRow, active?: ActiveInfo): PromptRunSummary {
  const r = recordOf(run);
  const p = run.provenance as Partial<RunProvenance>;
  const job = jobOf(ctx, r.jobId);
  return {
    runId: run.id,
    kind: r.kind,
    jobId: job ? r.jobId : null,
    title: run.title,
    state: run.status,
    task: r.spec.task,
    modelName: r.saved?.name ?? null,
    modelVersion: r.saved?.version ?? null,
    lm: r.spec.model.id,
    inputName: 'path' in r.input ? r.input.path.split(/[\\/]/).pop()! : null,
    // The progress recorded after each stored batch (a count over a large run's rows is not cheap).
    rows: active?.tally.rows ?? run.progressStep ?? ctx.lab.rowCount(run.id),
    total: run.progressTotal,
    // An exploration's accuracy is per variant (promptExploreGet), not one number.
    accuracy: r.kind === 'explore' ? null : active ? active.tally.accuracy() : (p.accuracy ?? null),
    error: run.error,
    createdAt: run.createdAt,
    finishedAt: run.finishedAt,
  };
}

export function detailOf(ctx: StudioContext, run: RunRow, active?: ActiveInfo): PromptRunDetail {
  const r = recordOf(run);
  const p = run.provenance as Partial<RunProvenance>;
  return {
    ...summaryOf(ctx, run, active),
    spec: r.spec,
    input: r.input,
    limit: r.limit,
    answers: active ? active.tally.answers() : (p.answers ?? []),
    rowsPerSecond: p.rowsPerSecond ?? null,
    provider: p.provider ?? null,
    job: jobOf(ctx, r.jobId),
  };
}

/** A stored row as the API shows it (the gold answer is kept beside the output). */
export function apiRow(row: StoredRow): PromptRow {
  const {
    gold,
    variant: _variant,
    ...output
  } = row.output as PromptRowOutput & { gold?: string | null; variant?: string };
  return { idx: row.idx, input: row.input, gold: gold ?? null, output: output as PromptRowOutput };
}

export function rowPage(ctx: StudioContext, runId: number, offset: number, limit: number) {
  promptRun(ctx, runId);
  return { total: ctx.lab.rowCount(runId), rows: ctx.lab.rows(runId, { offset, limit }).map(apiRow) };
}

/** Rows with idx > after, in order (a keyset page). */
function rowsAfter(ctx: StudioContext, runId: number, after: number, limit: number): StoredRow[] {
  const rows = ctx.history.db
    .prepare(`SELECT idx, input, output FROM run_rows WHERE run_id = ? AND idx > ? ORDER BY idx LIMIT ?`)
    .all(runId, after, limit) as { idx: number; input: string; output: string }[];
  return rows.map((r) => ({ idx: r.idx, input: r.input, output: JSON.parse(r.output) as unknown }));
}

/** A run's rows in order, a page at a time, yielding to the event loop between pages. */
export async function* pagedRows(ctx: StudioContext, runId: number, pageSize = 2000): AsyncGenerator<StoredRow[]> {
  let after = -1;
  for (;;) {
    ctx.live();
    const page = rowsAfter(ctx, runId, after, pageSize);
    if (page.length === 0) return;
    yield page;
    after = page.at(-1)!.idx;
    await new Promise((r) => setImmediate(r));
  }
}

/** Two runs matched by position: counts over all rows, and a page of the rows whose answers differ. */
export async function compareRuns(ctx: StudioContext, a: number, b: number, page: { offset: number; limit: number }) {
  const runA = promptRun(ctx, a);
  const runB = promptRun(ctx, b);
  const counts = { compared: 0, agree: 0, mismatchedInputs: 0, onlyA: 0, onlyB: 0, differing: 0 };
  const diffs: { idx: number; input: string; gold: string | null; a: string; b: string }[] = [];
  const itA = pagedRows(ctx, a);
  const itB = pagedRows(ctx, b);
  const bufA = new Cursor(itA);
  const bufB = new Cursor(itB);
  for (;;) {
    const [x, y] = [await bufA.peek(), await bufB.peek()];
    if (!x && !y) break;
    if (!y || (x && x.idx < y.idx)) {
      counts.onlyA++;
      bufA.take();
      continue;
    }
    if (!x || y.idx < x.idx) {
      counts.onlyB++;
      bufB.take();
      continue;
    }
    bufA.take();
    bufB.take();
    if (x.input !== y.input) {
      counts.mismatchedInputs++;
      continue;
    }
    counts.compared++;
    const ra = apiRow(x);
    const rb = apiRow(y);
    if (ra.output.answer === rb.output.answer) {
      counts.agree++;
      continue;
    }
    if (counts.differing >= page.offset && diffs.length < page.limit)
      diffs.push({ idx: x.idx, input: x.input, gold: ra.gold ?? rb.gold, a: ra.output.answer, b: rb.output.answer });
    counts.differing++;
  }
  return {
    a: summaryOf(ctx, runA),
    b: summaryOf(ctx, runB),
    ...counts,
    agreement: counts.compared === 0 ? null : counts.agree / counts.compared,
    diffs,
  };
}

/** One row at a time over pages. */
class Cursor {
  #page: StoredRow[] = [];
  #at = 0;
  #done = false;
  constructor(private readonly it: AsyncGenerator<StoredRow[]>) {}
  async peek(): Promise<StoredRow | null> {
    while (this.#at >= this.#page.length && !this.#done) {
      const n = await this.it.next();
      if (n.done) this.#done = true;
      else [this.#page, this.#at] = [n.value, 0];
    }
    return this.#at < this.#page.length ? this.#page[this.#at]! : null;
  }
  take(): void {
    this.#at++;
  }
}

// ---------- CSV and JSONL ----------

/** RFC 4180: quoted when it holds a comma, a quote or a line break; quotes doubled. */
export function csvField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvHeader(spec: Pick<PromptModelSpec, 'task' | 'labels' | 'calibrate'>): string {
  const cols = ['idx', 'input', 'gold', 'answer'];
  if (spec.task === 'classify') {
    cols.push('raw_label', 'calibrated_label', 'margin', ...spec.labels.map((l) => `p_${l.name}`));
    if (spec.calibrate) cols.push(...spec.labels.map((l) => `calibrated_p_${l.name}`));
  } else cols.push('text', 'finish', 'tokens');
  return cols.map(csvField).join(',') + '\n';
}

const num = (x: number) => (Number.isFinite(x) ? String(Number(x.toPrecision(6))) : '');

export function csvLine(spec: Pick<PromptModelSpec, 'task' | 'labels' | 'calibrate'>, row: PromptRow): string {
  const o = row.output;
  const cells = [String(row.idx), row.input, row.gold ?? '', o.answer];
  if (o.task === 'classify') {
    cells.push(o.rawLabel, o.calibratedLabel ?? '', num(o.margin), ...o.probs.map((p) => num(p.raw)));
    if (spec.calibrate) cells.push(...o.probs.map((p) => (p.calibrated === null ? '' : num(p.calibrated))));
  } else cells.push(o.text, o.finish, String(o.tokens));
  return cells.map(csvField).join(',') + '\n';
}

export function jsonlLine(row: PromptRow): string {
  return JSON.stringify({ idx: row.idx, input: row.input, gold: row.gold, ...row.output }) + '\n';
}

/**
 * A run's rows as CSV or JSONL: bytes when the whole is at most PROMPT_EXPORT_INLINE_MAX, else written to
 * <data>/exports/prompt-run-<id>.<ext> (streamed; the path is returned).
 */
export async function exportRun(
  ctx: StudioContext,
  runId: number,
  format: 'csv' | 'jsonl',
  inlineMax = PROMPT_EXPORT_INLINE_MAX,
) {
  const run = promptRun(ctx, runId);
  const spec = recordOf(run).spec;
  const fileName = `prompt-run-${runId}.${format}`;
  const mime = format === 'csv' ? 'text/csv' : 'application/x-ndjson';
  const enc = new TextEncoder();
  let chunks: Uint8Array[] = format === 'csv' ? [enc.encode(csvHeader(spec))] : [];
  let bytes = chunks.reduce((s, c) => s + c.byteLength, 0);
  let rows = 0;
  let file: { out: ReturnType<typeof createWriteStream>; tmp: string; path: string } | null = null;
  try {
    for await (const page of pagedRows(ctx, runId)) {
      const text = page.map((r) => (format === 'csv' ? csvLine(spec, apiRow(r)) : jsonlLine(apiRow(r)))).join('');
      const chunk = enc.encode(text);
      rows += page.length;
      bytes += chunk.byteLength;
      if (!file && bytes > inlineMax) {
        const dir = join(ctx.dataDir, 'exports');
        await mkdir(dir, { recursive: true });
        const path = join(dir, fileName);
        const tmp = `${path}.${process.pid}.tmp`;
        file = { out: createWriteStream(tmp), tmp, path };
        for (const c of chunks) await write(file.out, c);
        chunks = [];
      }
      if (file) await write(file.out, chunk);
      else chunks.push(chunk);
    }
    if (file) {
      file.out.end();
      await once(file.out, 'finish');
      await rename(file.tmp, file.path);
      return { fileName, mime, data: null, path: file.path, bytes, rows };
    }
  } catch (e) {
    file?.out.destroy();
    throw e;
  }
  const data = new Uint8Array(bytes);
  let at = 0;
  for (const c of chunks) {
    data.set(c, at);
    at += c.byteLength;
  }
  return { fileName, mime, data, path: null, bytes, rows };
}

async function write(out: ReturnType<typeof createWriteStream>, chunk: Uint8Array): Promise<void> {
  if (!out.write(chunk)) await once(out, 'drain');
}
