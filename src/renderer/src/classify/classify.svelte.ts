// The Classify page's state: the form (labels, templates, where the images are, model, other wordings), the run
// being watched (its job), the results loaded from the studio, and how they are decided (threshold, unsure
// band) and marked by the user for calibration. One exported $state object per concern, mutated in place.
//
// Public API
//   form, view                        the page's state
//   splitLabels(text), shownPath(path, base), formProblems(form), toStartArgs(form)
//   counts(rows, decision, nLabels)   how many images each label gets (and how many are unsure)
//   currentDecision()                 the threshold (two labels only) and the unsure band as set
//   startRun(), loadRun(runId), cancelRun(), calibrate(), explore(), exportCsv(), copyByLabel(), tagGallery()
import {
  decideLabel,
  type ClassifyExploreResult,
  type ClassifyRow,
  type ClassifyRun,
  type ClassifyStartArgs,
  type TemplateSetId,
} from '../../../shared/api.js';
import { downloadBytes } from '../lib/download.js';
import { toastError } from '../lib/errors.js';
import { followJobs } from '../lib/jobs.svelte.js';
import { getStudio } from '../lib/studio-client.js';
import { showToast } from '../lib/toasts.svelte.js';

export type SortKey = 'path' | 'label' | 'margin' | `p${number}`;

export const form = $state({
  labels: ['is photoshopped', 'is not photoshopped'] as string[],
  templateSet: 'imagenet7' as TemplateSetId | 'custom',
  customText: 'a photo that {}.\nan image that {}.',
  sourceKind: 'folder' as 'folder' | 'gallery',
  folder: '',
  galleryText: '',
  /** '' = the catalog's default CLIP. */
  model: '',
  /** Other wordings for the explorer: one a line, labels joined by |. */
  wordings: '',
  tag: true,
});

export const view = $state({
  run: null as ClassifyRun | null,
  rows: [] as ClassifyRow[],
  loading: false,
  starting: false,
  /** A threshold on p(label 0) (two labels), or null: the most probable label. */
  threshold: null as number | null,
  unsureBand: 0,
  /** The user's own labels for images: idx -> 0 or 1 (two-label calibration). */
  marks: {} as Record<number, 0 | 1>,
  sort: { key: 'path' as SortKey, dir: 1 as 1 | -1 },
  tab: 'grid' as 'grid' | 'table' | 'explore',
  explore: null as ClassifyExploreResult | null,
});

/** A result's path as shown: relative to the run's folder when it is inside it. */
export function shownPath(path: string, base: string): string {
  const b = base.replace(/[\\/]+$/, '');
  return b && (path.startsWith(`${b}/`) || path.startsWith(`${b}\\`)) ? path.slice(b.length + 1) : path;
}

/** "a|b" pasted or typed: the labels, trimmed, empty ones dropped. */
export function splitLabels(text: string): string[] {
  return text
    .split('|')
    .map((l) => l.trim())
    .filter(Boolean);
}

export interface Problem {
  field: string;
  message: string;
}

export function formProblems(f: typeof form): Problem[] {
  const out: Problem[] = [];
  if (f.labels.length < 2) {
    out.push({ field: 'label-input', message: 'Add at least two labels: one label has nothing to compare with.' });
  }
  if (f.labels.some((l, i) => f.labels.indexOf(l) !== i))
    out.push({ field: 'label-input', message: 'Each label must be different.' });
  if (f.sourceKind === 'folder' && !f.folder.trim()) {
    out.push({ field: 'classify-folder', message: 'Type the path of a folder of images on this machine.' });
  }
  if (f.templateSet === 'custom') {
    const lines = f.customText
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    if (lines.length === 0)
      out.push({ field: 'custom-templates', message: 'Write one template a line, with {} for the label.' });
    const bad = lines.find((l) => !l.includes('{}'));
    if (bad) out.push({ field: 'custom-templates', message: `“${bad}” has no {} where the label goes.` });
  }
  for (const [i, w] of wordingLines(f.wordings).entries()) {
    if (w.length !== f.labels.length) {
      out.push({
        field: 'wordings',
        message: `Wording ${i + 2} has ${w.length} labels; give ${f.labels.length}, joined by |, in the same order.`,
      });
    }
  }
  return out;
}

function wordingLines(text: string): string[][] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map(splitLabels);
}

export function toStartArgs(f: typeof form): ClassifyStartArgs {
  const custom = f.customText
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  return {
    labels: [...f.labels],
    templates: f.templateSet === 'custom' ? { custom } : { set: f.templateSet },
    source:
      f.sourceKind === 'folder'
        ? { folder: f.folder.trim() }
        : { gallery: f.galleryText.trim() ? { text: f.galleryText.trim() } : {} },
    ...(f.model ? { model: f.model } : {}),
    wordings: wordingLines(f.wordings),
    tag: f.tag,
  };
}

/** How many images each label gets under the decision, and how many are unsure. */
export function counts(rows: readonly ClassifyRow[], d: { threshold: number | null; unsureBand: number }, n: number) {
  const perLabel = new Array<number>(n).fill(0);
  let unsure = 0;
  for (const r of rows) {
    const x = decideLabel(r.probs, d);
    if (x.unsure) unsure++;
    else perLabel[x.label]!++;
  }
  return { perLabel, unsure };
}

const studio = () => getStudio();

export async function loadRun(runId: number): Promise<void> {
  view.loading = true;
  try {
    const run = await studio().classifyRun({ runId });
    const rows: ClassifyRow[] = [];
    for (let offset = 0; ; offset += 2000) {
      const page = await studio().classifyRows({ runId, offset, limit: 2000 });
      rows.push(...page.rows);
      if (rows.length >= page.total || page.rows.length === 0) break;
    }
    if (view.run?.runId !== runId) {
      view.marks = {};
      view.threshold = null;
      view.explore = null;
    }
    view.run = run;
    view.rows = rows;
    if (view.tab === 'explore') await explore();
  } catch (e) {
    toastError(e, 'Loading the run');
  } finally {
    view.loading = false;
  }
}

/** Follows a run's job to its end, then loads its results. */
function follow(runId: number, jobId: string): void {
  const jobs = followJobs();
  const timer = setInterval(() => {
    const s = jobs.byId[jobId];
    if (!s || !['done', 'failed', 'cancelled'].includes(s.state)) return;
    clearInterval(timer);
    void loadRun(runId).then(() => {
      if (s.state === 'done') showToast('success', s.message || 'Classified.');
      else if (s.state === 'failed') showToast('error', `The run failed: ${s.error?.message ?? s.message}`);
      else showToast('info', s.message || 'Cancelled.');
    });
  }, 250);
}

export async function startRun(): Promise<void> {
  if (view.starting) return;
  view.starting = true;
  try {
    const r = await studio().classifyStart(toStartArgs(form));
    view.run = await studio().classifyRun({ runId: r.runId });
    view.rows = [];
    view.marks = {};
    view.threshold = null;
    view.explore = null;
    follow(r.runId, r.jobId);
  } catch (e) {
    toastError(e, 'Starting the run');
  } finally {
    view.starting = false;
  }
}

export async function cancelRun(): Promise<void> {
  const jobId = view.run?.jobId;
  if (!jobId) return;
  try {
    await studio().jobCancel({ jobId });
  } catch (e) {
    toastError(e, 'Cancelling the run');
  }
}

export async function calibrate(): Promise<void> {
  const run = view.run;
  if (!run) return;
  const marks = Object.entries(view.marks).map(([idx, label]) => ({ idx: Number(idx), label }));
  try {
    const c = await studio().classifyCalibrate({ runId: run.runId, marks });
    view.threshold = c.threshold;
    showToast(
      'success',
      `Threshold ${c.threshold.toFixed(3)}: ${c.correct} of ${c.marked} marked images right (${Math.round(c.accuracy * 100)}%).`,
    );
  } catch (e) {
    toastError(e, 'Fitting the threshold');
  }
}

export async function explore(): Promise<void> {
  if (!view.run) return;
  try {
    view.explore = await studio().classifyExplore({ runId: view.run.runId });
  } catch (e) {
    toastError(e, 'Exploring the wordings');
  }
}

/** The decision as the page shows it (a threshold only with two labels). */
export const currentDecision = () => ({
  threshold: view.run?.labels.length === 2 ? view.threshold : null,
  unsureBand: view.unsureBand,
});

export async function exportCsv(): Promise<void> {
  if (!view.run) return;
  try {
    const f = await studio().classifyExport({ runId: view.run.runId, decision: currentDecision() });
    downloadBytes(f.data, f.name, f.mime);
    showToast('success', `Exported ${f.name}.`);
  } catch (e) {
    toastError(e, 'Exporting the CSV');
  }
}

export async function copyByLabel(): Promise<void> {
  if (!view.run) return;
  try {
    const r = await studio().classifyCopy({ runId: view.run.runId, decision: currentDecision() });
    const per = Object.entries(r.perLabel).map(([l, n]) => `${n} “${l}”`);
    showToast('success', `Copied ${r.copied} images into ${r.folder}: ${per.join(', ')}.`);
  } catch (e) {
    toastError(e, 'Copying the images');
  }
}

export async function tagGallery(): Promise<void> {
  if (!view.run) return;
  try {
    const r = await studio().classifyTag({ runId: view.run.runId, decision: currentDecision() });
    showToast('success', `Tagged ${r.tagged} gallery items with their label.`);
  } catch (e) {
    toastError(e, 'Tagging the gallery');
  }
}
