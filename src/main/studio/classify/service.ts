// Classify runs: a folder's images (or the gallery's) classified by CLIP zero-shot against labels, each label's
// weight the ensemble of its templates. A run is a history run of kind 'classify', inserted 'running', tracked
// as a job (progress with images/s and ETA; cancel stops it between batches); its rows go to the LabStore in
// batches, and it is indexed by its labels and folder so the history search finds it. Files that cannot be
// read are skipped and named in the run; the others go on.
//
// Public API
//   new ClassifyService(ctx)
//     .start(args) -> { runId, jobId, images }     the folder walked first (empty / missing: refused at once)
//     .run(runId) / .rows(runId, page) / .runs({ text, limit })
//     .calibrate(runId, marks) / .explore(runId)
//     .exportCsv(runId, decision) / .copy(runId, decision, dest?) / .tag(runId, decision) / .thumb(runId, idx)
//     .done(runId) -> Promise<ClassifyRun>        resolves when the run's job ends (CLI, SDK, tests)
//   explorerVariants(labels, wordings)             the explorer's variants (as given, other wordings, reversed)
//                                               (which may name a model by its folder; the API may not)
import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import {
  ClassifySource,
  ClassifyStartArgs,
  Decision,
  MAX_CLASSIFY_IMAGES,
  StudioError,
  type ClassifyRow,
  type ClassifyRun,
} from '../../../shared/api.js';
import { formatDuration } from '../../../shared/format.js';
import { TEMPLATE_SETS, fillTemplate } from '../../engine/classify/templates.js';
import {
  answerStats,
  calibrateThreshold,
  ensembleWeight,
  scoreImage,
  templateProbs,
} from '../../engine/classify/zeroshot.js';
import type { StudioContext } from '../context.js';
import { makeThumbnail, THUMB_MIME } from '../images.js';
import { ClipRunner, readLogitScale } from './clip-model.js';
import { walkImages } from './folder.js';
import {
  csvHeader,
  csvLine,
  decideRow,
  round6,
  runOf,
  sourceText,
  toRow,
  type RunSpec,
  type StoredOutput,
} from './results.js';

/** Images decoded and embedded per call into the compute worker (a cancel waits at most for one batch). */
export const BATCH = 16;
/** Labels x templates up to which each row keeps every template's probabilities (2 labels x 80 templates fit). */
export const MAX_TEMPLATE_SCORES = 256;

/** An image to classify: a file, or a gallery item's asset. */
interface Target {
  path: string;
  file: string;
  itemId: number | null;
  sha256: string | null;
}

type StartArgs = z.output<typeof StartWithPaths>;

/**
 * The CLI and the SDK may name a model by its folder or file (the API takes installed models only), and the SDK
 * may give a list of image files instead of a folder.
 */
const StartWithPaths = ClassifyStartArgs.extend({
  model: z.string().min(1).max(4096).optional(),
  source: z.union([
    ClassifySource,
    z.object({ files: z.array(z.string().min(1).max(4096)).min(1).max(MAX_CLASSIFY_IMAGES) }).strict(),
  ]),
});
export type ClassifyServiceArgs = z.input<typeof StartWithPaths>;

export class ClassifyService {
  readonly #jobs = new Map<number, { jobId: string; done: Promise<void> }>();

  constructor(private readonly ctx: StudioContext) {}

  // ---------- starting a run ----------

  async #targets(a: StartArgs, signal: AbortSignal): Promise<{ targets: Target[]; skipped: RunSpec['skipped'] }> {
    if ('files' in a.source) {
      return { targets: a.source.files.map((f) => ({ path: f, file: f, itemId: null, sha256: null })), skipped: [] };
    }
    if ('folder' in a.source) {
      const w = await walkImages(a.source.folder, { max: MAX_CLASSIFY_IMAGES, signal });
      if (w.files.length === 0) {
        throw new StudioError(
          'EmptyFolder',
          `${path.resolve(a.source.folder)} holds no images (PNG, JPEG, WebP or GIF, in it or its sub-folders). ` +
            'Choose a folder with images.',
        );
      }
      return { targets: w.files.map((f) => ({ path: f, file: f, itemId: null, sha256: null })), skipped: w.unreadable };
    }
    const targets: Target[] = [];
    let after: number | undefined;
    for (;;) {
      const page = this.ctx.history.query({
        text: a.source.gallery.text,
        sort: 'newest',
        offset: targets.length,
        limit: 500,
        ...(after !== undefined ? { after } : {}),
      });
      for (const c of page.rows) {
        const asset = this.ctx.history.getAsset(c.sha256);
        const img = this.ctx.history.getImage(c.id);
        const file = asset ? this.ctx.files.abs(asset.path) : null;
        if (!file) continue;
        if (targets.length === MAX_CLASSIFY_IMAGES) {
          throw new StudioError(
            'TooManyImages',
            `More than ${MAX_CLASSIFY_IMAGES.toLocaleString('en')} gallery items match. Narrow the search.`,
          );
        }
        targets.push({
          path: img?.fileName ?? c.title ?? `item ${c.id}`,
          file,
          itemId: c.id,
          sha256: c.sha256,
        });
      }
      if (page.rows.length < 500) break;
      after = page.rows[page.rows.length - 1]!.sortKey;
    }
    if (targets.length === 0) {
      throw new StudioError(
        'EmptyFolder',
        a.source.gallery.text
          ? `No gallery item matches “${a.source.gallery.text}”. Change the search.`
          : 'The gallery is empty. Import images first, or classify a folder.',
      );
    }
    return { targets, skipped: [] };
  }

  async start(
    input: ClassifyServiceArgs,
    o: { allowPaths?: boolean } = {},
  ): Promise<{ runId: number; jobId: string; images: number }> {
    this.ctx.live();
    const parsed = (o.allowPaths ? StartWithPaths : ClassifyStartArgs).safeParse(input);
    if (!parsed.success) {
      throw new StudioError('InvalidArgument', parsed.error.issues.map((i) => i.message).join('; '));
    }
    const a = parsed.data;
    const templates = 'set' in a.templates ? [...TEMPLATE_SETS[a.templates.set].templates] : a.templates.custom;
    const templateSet = 'set' in a.templates ? a.templates.set : 'custom';
    for (const w of a.wordings) {
      if (w.length !== a.labels.length) {
        throw new StudioError(
          'BadWording',
          `Each wording needs ${a.labels.length} labels, one per label in the same order (got ${w.length}: ${w.join(' | ')}).`,
        );
      }
    }
    const controller = new AbortController();
    // A model that is not there is refused before anything is recorded.
    await this.ctx.models.resolve('clip', a.model);
    const { targets, skipped } = await this.#targets(a, controller.signal);
    const variants = explorerVariants(a.labels, a.wordings);
    const provider = a.provider ?? this.ctx.settings.get().preferredProvider;
    const title = `Classify: ${a.labels.join(' | ')}`;
    const spec: RunSpec = {
      labels: a.labels,
      templateSet,
      templates,
      source: a.source,
      model: a.model ?? 'default',
      provider,
      variants: variants.map(({ name, labels }) => ({ name, labels })),
      images: 0,
      logitScale: null,
      logitScaleSource: null,
      skipped,
      tag: a.tag,
    };
    const now = Date.now();
    const runId = this.ctx.history.insertRun({
      kind: 'classify',
      status: 'running',
      title,
      spec,
      provenance: { source: sourceText(a.source) },
      createdAt: now,
      startedAt: now,
      progressTotal: targets.length,
    });
    const folderName =
      'folder' in a.source ? path.basename(path.resolve(a.source.folder)) : 'gallery' in a.source ? 'gallery' : 'files';
    this.ctx.lab.indexRun(
      runId,
      title,
      [...a.labels, ...a.wordings.flat(), folderName, sourceText(a.source), templateSet].join('\n'),
    );
    const jobId = randomUUID();
    const job = this.ctx.jobs.track(jobId, 'classify', title, () => controller.abort(), runId);
    const work = new ClassifyWork(this.ctx, { runId, spec, targets, variants, provider, model: a.model, job });
    const done = work.run(controller.signal).finally(() => this.#jobs.delete(runId));
    this.#jobs.set(runId, { jobId, done });
    return { runId, jobId, images: targets.length };
  }

  /** Resolves when the run's job has ended (at once for a finished run). */
  async done(runId: number): Promise<ClassifyRun> {
    await this.#jobs.get(runId)?.done;
    return this.run(runId);
  }

  // ---------- reading a run ----------

  #runRow(runId: number) {
    const run = this.ctx.history.getRun(runId);
    if (!run || run.kind !== 'classify') {
      throw new StudioError('NotFound', `No classify run with id ${runId} (it may have been deleted).`);
    }
    return run;
  }

  run(runId: number): ClassifyRun {
    return runOf(this.#runRow(runId), this.#jobs.get(runId)?.jobId ?? null);
  }

  rows(runId: number, page: { offset: number; limit: number }): { rows: ClassifyRow[]; total: number } {
    this.#runRow(runId);
    return { rows: this.ctx.lab.rows(runId, page).map(toRow), total: this.ctx.lab.rowCount(runId) };
  }

  *#allRows(runId: number): Generator<ClassifyRow> {
    for (const r of this.ctx.lab.iterateRows(runId)) yield toRow(r);
  }

  runs(q: { text?: string; limit: number }) {
    return this.ctx.lab.searchRuns({ text: q.text, kinds: ['classify'], limit: q.limit }).map((r) => {
      const { templates: _t, skipped: _s, variants: _v, ...rest } = runOf(r, this.#jobs.get(r.id)?.jobId ?? null);
      return rest;
    });
  }

  calibrate(runId: number, marks: readonly { idx: number; label: 0 | 1 }[]) {
    const run = this.run(runId);
    if (run.labels.length !== 2) {
      throw new StudioError(
        'TwoLabelsOnly',
        `Calibrating a threshold works with two labels; this run has ${run.labels.length}. Use the most probable label.`,
      );
    }
    const byIdx = new Map(marks.map((m) => [m.idx, m.label]));
    const samples: { p0: number; label: 0 | 1 }[] = [];
    for (const r of this.#allRows(runId)) {
      const label = byIdx.get(r.idx);
      if (label !== undefined) samples.push({ p0: r.probs[0]!, label });
    }
    if (samples.length < byIdx.size) {
      throw new StudioError('NotFound', `${byIdx.size - samples.length} of the marked images are not in run ${runId}.`);
    }
    try {
      return { ...calibrateThreshold(samples), marked: samples.length };
    } catch (e) {
      throw new StudioError('NeedsMarks', (e as Error).message);
    }
  }

  explore(runId: number) {
    const run = this.run(runId);
    const answers: number[][] = [];
    const idxs: number[] = [];
    for (const r of this.#allRows(runId)) {
      answers.push(r.variants);
      idxs.push(r.idx);
    }
    const s = answerStats(answers, run.labels.length);
    const mean = s.perItem.reduce((a, p) => a + p.flipRate, 0) / (s.perItem.length || 1);
    return {
      variants: run.variants.map((v, i) => ({ ...v, shares: s.perVariant[i] ?? run.labels.map(() => 0) })),
      perImage: s.perItem.map((p, i) => ({ idx: idxs[i]!, flipRate: p.flipRate, entropy: p.entropy })),
      meanFlipRate: mean,
      anyFlip: s.perItem.filter((p) => p.flipRate > 0).length / (s.perItem.length || 1),
    };
  }

  // ---------- acting on the results ----------

  exportCsv(runId: number, d: z.input<typeof Decision>) {
    const run = this.run(runId);
    const decision = Decision.parse(d);
    const lines = [csvHeader(run.labels)];
    for (const r of this.#allRows(runId)) lines.push(csvLine(run.labels, r, decision));
    return {
      name: `classify-${runId}.csv`,
      mime: 'text/csv',
      data: new TextEncoder().encode(lines.join('\r\n') + '\r\n'),
    };
  }

  /** Copies a folder run's files into dest/<label>/ (unsure/ for those in the band); names kept, clashes numbered. */
  async copy(runId: number, d: z.input<typeof Decision>, dest?: string) {
    const run = this.run(runId);
    const spec = this.#runRow(runId).spec as RunSpec;
    if ('gallery' in spec.source) {
      throw new StudioError('GalleryRun', 'This run classified gallery items: tag them instead of copying.');
    }
    const decision = Decision.parse(d);
    const folder = dest ?? path.join(this.ctx.dataDir, 'exports', `classify-${runId}`);
    const perLabel: Record<string, number> = {};
    const used = new Set<string>();
    let copied = 0;
    // Read first: the copies await, and other writes must not meet an open statement.
    for (const r of [...this.#allRows(runId)]) {
      const { label, unsure } = decideRow(r, decision);
      const group = unsure ? 'unsure' : run.labels[label]!;
      const dir = path.join(folder, safeName(group));
      await mkdir(dir, { recursive: true });
      await copyFile(r.path, path.join(dir, uniqueName(used, dir, path.basename(r.path))));
      perLabel[group] = (perLabel[group] ?? 0) + 1;
      copied++;
    }
    return { folder, copied, perLabel };
  }

  /** Tags a gallery run's items with their label; the run's other labels are taken off, other tags kept. */
  tag(runId: number, d: z.input<typeof Decision>): { tagged: number } {
    const run = this.run(runId);
    const decision = Decision.parse(d);
    // Read first: better-sqlite3 refuses writes while a statement is iterating.
    const tagged = tagItems(this.ctx, run.labels, [...this.#allRows(runId)], (r) => {
      const { label, unsure } = decideRow(r, decision);
      return unsure ? null : label;
    });
    if (tagged === 0) {
      throw new StudioError(
        'FolderRun',
        'This run has no gallery items to tag (it classified a folder: copy the images by label instead).',
      );
    }
    return { tagged };
  }

  async thumb(runId: number, idx: number): Promise<{ mime: string; data: Uint8Array<ArrayBuffer> }> {
    this.#runRow(runId);
    const row = this.ctx.lab.rows(runId, { offset: idx, limit: 1 })[0];
    if (!row || row.idx !== idx) throw new StudioError('NotFound', `Run ${runId} has no image ${idx}.`);
    if ((row.output as StoredOutput).sha256) {
      throw new StudioError('InvalidArgument', 'A gallery item has its thumbnail at the asset route (its sha256).');
    }
    const bytes = await readFile(row.input).catch((e: NodeJS.ErrnoException) => {
      throw new StudioError('NotFound', `${row.input} cannot be read any more (${e.code ?? e.message}).`);
    });
    return { mime: THUMB_MIME, data: Uint8Array.from(await makeThumbnail(bytes, path.basename(row.input))) };
  }
}

/**
 * The explorer's variants: the labels as given, each other wording (same classes, same order), and the labels
 * in reversed order; classOf maps a variant's label position to the class (the index in the labels as given).
 */
export function explorerVariants(labels: string[], wordings: string[][]) {
  return [
    { name: 'as given', labels, classOf: labels.map((_, i) => i) },
    ...wordings.map((w, k) => ({ name: `wording ${k + 2}`, labels: w, classOf: w.map((_, i) => i) })),
    { name: 'order reversed', labels: [...labels].reverse(), classOf: labels.map((_, i) => labels.length - 1 - i) },
  ];
}

/** A label as a folder name: path separators and characters Windows refuses become _. */
function safeName(label: string): string {
  const clean = Array.from(label, (c) => (c < ' ' || '\\/:*?"<>|'.includes(c) ? '_' : c)).join('');
  return clean.replace(/^\.+$/, '_') || '_';
}

function uniqueName(used: Set<string>, dir: string, base: string): string {
  const ext = path.extname(base);
  const stem = base.slice(0, base.length - ext.length);
  let name = base;
  for (let n = 2; used.has(path.join(dir, name)); n++) name = `${stem}-${n}${ext}`;
  used.add(path.join(dir, name));
  return name;
}

interface VariantWeights {
  perLabel: Float32Array[][];
  weights: Float64Array[];
  classOf: number[];
}

/** One run's work: text weights, then the images in batches. */
class ClassifyWork {
  #nextIdx = 0;

  constructor(
    private readonly ctx: StudioContext,
    private readonly w: {
      runId: number;
      spec: RunSpec;
      targets: Target[];
      variants: { name: string; labels: string[]; classOf: number[] }[];
      provider: RunSpec['provider'];
      model?: string;
      job: ReturnType<StudioContext['jobs']['track']>;
    },
  ) {}

  /**
   * Runs to the end and records the outcome; never rejects. A studio closed mid-run stops the work at the next
   * batch; the run is then left as it was, and the next open's recovery marks it failed (interrupted).
   */
  async run(signal: AbortSignal): Promise<void> {
    const { runId, spec, job } = this.w;
    let outcome: { to: 'done'; message: string } | { to: 'cancelled' } | { to: 'failed'; error: Error };
    try {
      outcome = { to: 'done', message: await this.#classify(signal) };
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      outcome = signal.aborted ? { to: 'cancelled' } : { to: 'failed', error };
    }
    try {
      this.ctx.live();
      this.#finish();
      const now = Date.now();
      if (outcome.to === 'done') {
        this.ctx.history.transitionRun(runId, { to: 'done' }, now);
        job.finish('done', outcome.message);
      } else if (outcome.to === 'cancelled') {
        this.ctx.history.transitionRun(runId, { to: 'cancelled' }, now);
        job.finish('cancelled', `Cancelled after ${spec.images} of ${this.w.targets.length} images.`);
      } else {
        const why = outcome.error.message || outcome.error.name;
        this.ctx.history.transitionRun(runId, { to: 'failed', error: why }, now);
        job.finish('failed', why, outcome.error);
      }
    } catch (e) {
      // The studio closed under the run (its database is gone): the next open recovers the run.
      job.finish('failed', `The studio closed during the run (${(e as Error).message}).`);
    }
  }

  #finish(): void {
    const run = this.ctx.history.getRun(this.w.runId);
    if (run)
      this.ctx.history.setRunSpec(
        this.w.runId,
        { spec: this.w.spec, provenance: run.provenance, title: run.title },
        Date.now(),
      );
  }

  async #classify(signal: AbortSignal): Promise<string> {
    const { spec, targets, job } = this.w;
    const clip = new ClipRunner(this.ctx, { model: this.w.model, provider: this.w.provider, signal });
    job.progress({ step: 0, total: targets.length, message: 'Opening the model and embedding the labels…' });
    const scale = await readLogitScale(await clip.open());
    spec.logitScale = scale.value;
    spec.logitScaleSource = scale.source;
    const variants = await this.#variantWeights(clip);
    const started = Date.now();
    let done = 0;
    for (let i = 0; i < targets.length; i += BATCH) {
      signal.throwIfAborted();
      this.ctx.live();
      const batch = targets.slice(i, i + BATCH);
      const rows = await this.#batch(clip, batch, variants, scale.value);
      this.ctx.lab.appendRows(this.w.runId, rows);
      spec.images += rows.length;
      done += batch.length;
      this.#progress(done, started);
    }
    if (spec.images === 0) {
      throw new StudioError(
        'NoImages',
        `None of the ${targets.length} files could be read (${spec.skipped[0]?.error ?? 'unknown'}). Check the files.`,
      );
    }
    if (spec.tag && 'gallery' in spec.source) this.#tagGallery();
    const skippedWords = spec.skipped.length ? `, ${spec.skipped.length} skipped (unreadable)` : '';
    return `Classified ${spec.images} images${skippedWords}.`;
  }

  /** Per variant, per label (in the variant's order): its templates' embeddings and their ensemble. */
  async #variantWeights(clip: ClipRunner): Promise<VariantWeights[]> {
    const out: VariantWeights[] = [];
    for (const v of this.w.variants) {
      const perLabel: Float32Array[][] = [];
      for (const l of v.labels) perLabel.push(await clip.texts(this.w.spec.templates.map((t) => fillTemplate(t, l))));
      out.push({ perLabel, weights: perLabel.map((e) => ensembleWeight(e)), classOf: v.classOf });
    }
    return out;
  }

  /** One batch: decoded one by one (the unreadable skipped and named), embedded together, scored. */
  async #batch(clip: ClipRunner, batch: Target[], variants: VariantWeights[], scale: number) {
    const { spec } = this.w;
    const decoded = await Promise.all(batch.map((t) => clip.decode(t.file, t.path)));
    const good = batch.flatMap((t, k) => {
      const d = decoded[k]!;
      if (d instanceof Error) {
        spec.skipped.push({ path: t.path, error: d.message });
        return [];
      }
      return [{ t, pixels: d }];
    });
    const embeds = good.length ? await clip.images(good.map((g) => g.pixels)) : [];
    const main = variants[0]!;
    // Per-template probabilities are kept while they stay small beside the rest of a row.
    const keepTemplates = spec.labels.length * spec.templates.length <= MAX_TEMPLATE_SCORES;
    return good.map(({ t }, k) => {
      const e = embeds[k]!;
      const s = scoreImage(e, main.weights, scale);
      const output: StoredOutput = {
        itemId: t.itemId,
        sha256: t.sha256,
        probs: s.probs.map(round6),
        top: s.top,
        margin: round6(s.margin),
        templateProbs: keepTemplates ? templateProbs(e, main.perLabel, scale).map((p) => p.map(round6)) : [],
        variants: variants.map((v) => v.classOf[scoreImage(e, v.weights, scale).top]!),
      };
      return { idx: this.#nextIdx++, input: t.path, output };
    });
  }

  /** The job's progress (images/s and the time left at that rate) and the run's. */
  #progress(done: number, started: number): void {
    const total = this.w.targets.length;
    const secs = (Date.now() - started) / 1000;
    const rate = secs > 0 ? done / secs : 0;
    const eta = rate > 0 ? (total - done) / rate : null;
    this.ctx.history.setRunProgress(this.w.runId, done, total, Date.now());
    this.w.job.progress({
      step: done,
      total,
      values: {
        imagesPerSecond: rate,
        ...(eta !== null ? { etaSeconds: eta } : {}),
        skipped: this.w.spec.skipped.length,
      },
      message: `${done} of ${total} images${eta !== null ? `, ${formatDuration(eta)} left` : ''}`,
    });
  }

  #tagGallery(): void {
    const rows = [...this.ctx.lab.iterateRows(this.w.runId)].map(toRow);
    tagItems(this.ctx, this.w.spec.labels, rows, (r) => r.top);
  }
}

/**
 * Tags gallery items with the label `pick` gives (null: none); the run's other labels are taken off an item,
 * its other tags kept. Returns how many items were tagged, and tells the windows.
 */
function tagItems(
  ctx: StudioContext,
  labels: readonly string[],
  rows: Iterable<ClassifyRow>,
  pick: (r: ClassifyRow) => number | null,
): number {
  const ids: number[] = [];
  const ours = new Set(labels);
  for (const r of rows) {
    if (r.itemId === null) continue;
    const label = pick(r);
    const kept = ctx.history.tagsOf(r.itemId).filter((t) => !ours.has(t));
    if (ctx.history.setTags(r.itemId, label === null ? kept : [...kept, labels[label]!])) ids.push(r.itemId);
  }
  if (ids.length) ctx.emit('galleryChanged', { reason: 'update', ids });
  return ids.length;
}
