// What a classify run keeps and gives back: the row stored per image (run_rows.output), its reading back as the
// API's ClassifyRow, the run's summary (ClassifyRun, from the runs row's spec), and decisions under a
// threshold and an unsure band, with the CSV of the results.
//
// Public API
//   StoredOutput (the row's JSON), toRow(stored), RunSpec, runOf(runRow, jobId)
//   decideRow(row, decision) -> { label, unsure }
//   csvField(value), resultsCsv(run, rows, decision) -> string
import { StudioError, type ClassifyRow, type ClassifyRun, type Decision } from '../../../shared/api.js';
import { decide } from '../../engine/classify/zeroshot.js';
import type { Provider } from '../../../shared/providers.js';
import type { RunRow } from '../history.js';
import type { StoredRow } from '../lab-store.js';

/** run_rows.output of a classify run. */
export interface StoredOutput {
  itemId: number | null;
  sha256: string | null;
  probs: number[];
  top: number;
  margin: number;
  templateProbs: number[][];
  variants: number[];
}

/** runs.spec of a classify run (what it was asked, and, once it ends, what it found). */
export interface RunSpec {
  labels: string[];
  templateSet: string;
  templates: string[];
  source: { folder: string } | { gallery: { text?: string } } | { files: string[] };
  model: string;
  provider: Provider;
  variants: { name: string; labels: string[] }[];
  images: number;
  logitScale: number | null;
  logitScaleSource: 'model' | 'default' | null;
  skipped: { path: string; error: string }[];
  tag: boolean;
}

/** Probabilities are kept to 6 decimals (enough for a threshold; a quarter of the JSON). */
export const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

export function toRow(r: StoredRow): ClassifyRow {
  const o = r.output as StoredOutput;
  return { idx: r.idx, path: r.input, ...o };
}

export function sourceText(s: RunSpec['source']): string {
  if ('folder' in s) return s.folder;
  if ('files' in s) return `${s.files.length} files`;
  return s.gallery.text ? `the gallery: “${s.gallery.text}”` : 'the gallery';
}

export function runOf(run: RunRow, jobId: string | null): ClassifyRun {
  if (run.kind !== 'classify') throw new StudioError('NotFound', `Run ${run.id} is not a classify run.`);
  const s = run.spec as RunSpec;
  return {
    runId: run.id,
    jobId,
    title: run.title,
    state: run.status,
    error: run.error,
    createdAt: run.createdAt,
    labels: s.labels,
    templateSet: s.templateSet,
    templates: s.templates,
    source: sourceText(s.source),
    logitScale: s.logitScale,
    logitScaleSource: s.logitScaleSource,
    variants: s.variants,
    images: s.images,
    skipped: s.skipped,
  };
}

export function decideRow(row: Pick<ClassifyRow, 'probs'>, d: Decision): { label: number; unsure: boolean } {
  if (d.threshold != null && row.probs.length !== 2) {
    throw new StudioError('TwoLabelsOnly', 'A threshold applies to two labels only; this run has more. Leave it out.');
  }
  return decide(row.probs, { threshold: d.threshold ?? null, unsureBand: d.unsureBand ?? 0 });
}

/**
 * One CSV field (RFC 4180: quoted when it holds a comma, quote or line break; quotes doubled). A text that a
 * spreadsheet would run as a formula (= + - @ at its start) gets a leading apostrophe.
 */
export function csvField(v: string | number | boolean): string {
  if (typeof v !== 'string') return String(v);
  const s = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvHeader(labels: readonly string[]): string {
  return ['path', 'label', 'unsure', 'margin', ...labels.map((l) => `p(${l})`)].map(csvField).join(',');
}

export function csvLine(labels: readonly string[], row: ClassifyRow, d: Decision): string {
  const { label, unsure } = decideRow(row, d);
  return [row.path, labels[label]!, unsure, round6(row.margin), ...row.probs.map(round6)].map(csvField).join(',');
}
