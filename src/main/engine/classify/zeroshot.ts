// CLIP zero-shot classification, the arithmetic: a label's classifier weight is the mean of its templates'
// L2-normalised text embeddings, normalised again (the CLIP notebook's ensembling); an image's logits are
// logit_scale * cos(image, weight), its probabilities their softmax. Also the margin between the top two
// probabilities, the "unsure" band, per-template probabilities, the two-label threshold fitted to images
// the user labelled, and the statistics of the wording / order explorer. Pure: no I/O, no models.
//
// Public API
//   DEFAULT_LOGIT_SCALE (100, CLIP's clamp), logitScaleFrom(raw)  exp(raw) clamped to 100
//   normalize(v) -> Float64Array                    v / |v|
//   ensembleWeight(templateEmbeds) -> Float64Array   mean of the normalised embeddings, renormalised
//   softmax(logits) -> number[]
//   scoreImage(image, weights, logitScale) -> { logits, probs, top, margin }
//   templateProbs(image, perLabelTemplateEmbeds, logitScale) -> number[][]   [template][label]
//   decide(probs, { threshold?, unsureBand? }) -> { label, unsure }   threshold: on p(label 0), two labels only
//   calibrateThreshold(samples) -> { threshold, accuracy, correct, interval }
//   answerStats(answers, nClasses) -> { perItem: { flipRate, entropy, majority }[], perVariant: shares[] }

import { decideLabel, topTwo } from '../../../shared/classify.js';

/** CLIP clamps its learned temperature at 100 (exp(logit_scale) <= 100). */
export const DEFAULT_LOGIT_SCALE = 100;

/** The model's `logit_scale` parameter (a log) as the factor on cosines, clamped as CLIP does. */
export function logitScaleFrom(raw: number): number {
  if (!Number.isFinite(raw)) throw new Error(`logit_scale is not a finite number (${raw})`);
  return Math.min(Math.exp(raw), DEFAULT_LOGIT_SCALE);
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`embeddings of different lengths (${a.length} and ${b.length})`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

export function normalize(v: ArrayLike<number>): Float64Array {
  const n = Math.sqrt(dot(v, v));
  if (!(n > 0)) throw new Error('cannot normalise a zero embedding');
  return Float64Array.from(v as ArrayLike<number>, (x) => x / n);
}

/** One label's classifier weight from its templates' text embeddings. */
export function ensembleWeight(templateEmbeds: readonly ArrayLike<number>[]): Float64Array {
  if (templateEmbeds.length === 0) throw new Error('a label needs at least one template embedding');
  const dim = templateEmbeds[0]!.length;
  const sum = new Float64Array(dim);
  for (const e of templateEmbeds) {
    const u = normalize(e);
    if (u.length !== dim) throw new Error(`template embeddings of different lengths (${dim} and ${u.length})`);
    for (let i = 0; i < dim; i++) sum[i]! += u[i]!;
  }
  for (let i = 0; i < dim; i++) sum[i]! /= templateEmbeds.length;
  return normalize(sum);
}

export function softmax(logits: readonly number[]): number[] {
  const m = Math.max(...logits);
  const e = logits.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

export interface ImageScore {
  logits: number[];
  probs: number[];
  /** The most probable label's index. */
  top: number;
  /** Its probability minus the second's (0 to 1; near 0: the model cannot tell). */
  margin: number;
}

export function scoreImage(
  image: ArrayLike<number>,
  weights: readonly ArrayLike<number>[],
  logitScale: number,
): ImageScore {
  const u = normalize(image);
  const logits = weights.map((w) => logitScale * dot(u, w));
  const probs = softmax(logits);
  return { logits, probs, ...topTwo(probs) };
}

/**
 * The probabilities each template gives alone: [template][label], from every label's embedding of that
 * template (perLabel[label][template]).
 */
export function templateProbs(
  image: ArrayLike<number>,
  perLabel: readonly (readonly ArrayLike<number>[])[],
  logitScale: number,
): number[][] {
  const n = perLabel[0]?.length ?? 0;
  if (perLabel.some((t) => t.length !== n)) throw new Error('every label needs the same templates');
  const u = normalize(image);
  return Array.from({ length: n }, (_, t) => softmax(perLabel.map((l) => logitScale * dot(u, normalize(l[t]!)))));
}

/** A result's label under a threshold (two labels) and whether it is in the unsure band (src/shared/classify.ts). */
export const decide = decideLabel;

export interface Calibration {
  /** The threshold on p(label 0): the middle of the widest interval of thresholds with the best accuracy. */
  threshold: number;
  accuracy: number;
  correct: number;
  /** The interval [lo, hi] of thresholds that reach that accuracy (the threshold is its middle). */
  interval: [number, number];
}

/**
 * The threshold on p(label 0) that classifies the most labelled images right (label 0 when p0 >= t), among
 * t in [0, 1]. Accuracy only changes at the images' p0 values, so each "cut" between two neighbouring
 * distinct values is an interval of equally good thresholds; neighbouring cuts that tie join into one
 * interval, and of the best intervals the widest wins; the threshold is its middle. O(n log n).
 */
export function calibrateThreshold(samples: readonly { p0: number; label: 0 | 1 }[]): Calibration {
  const n0 = samples.filter((s) => s.label === 0).length;
  const n1 = samples.length - n0;
  if (n0 === 0 || n1 === 0) {
    throw new Error(
      `Mark at least one image as each label to fit a threshold (got ${n0} of the first and ${n1} of the second).`,
    );
  }
  for (const s of samples) {
    if (!(s.p0 >= 0 && s.p0 <= 1)) throw new Error(`a probability must be between 0 and 1 (got ${s.p0})`);
  }
  const values = [...new Set(samples.map((s) => s.p0))].sort((a, b) => a - b);
  const zeros = new Map<number, number>();
  const ones = new Map<number, number>();
  for (const s of samples) {
    const m = s.label === 0 ? zeros : ones;
    m.set(s.p0, (m.get(s.p0) ?? 0) + 1);
  }
  // Cut i: t in (values[i-1], values[i]] -> images with p0 >= values[i] are called label 0.
  // correct(i) = label-0 images at or above values[i] + label-1 images below it.
  const cuts: { lo: number; hi: number; correct: number }[] = [];
  let zerosBelow = 0;
  let onesBelow = 0;
  for (let i = 0; i <= values.length; i++) {
    const lo = i === 0 ? 0 : values[i - 1]!;
    const hi = i === values.length ? 1 : values[i]!;
    cuts.push({ lo, hi, correct: n0 - zerosBelow + onesBelow });
    if (i < values.length) {
      zerosBelow += zeros.get(values[i]!) ?? 0;
      onesBelow += ones.get(values[i]!) ?? 0;
    }
  }
  const best = Math.max(...cuts.map((c) => c.correct));
  let pick: [number, number] | null = null;
  for (let i = 0; i < cuts.length; i++) {
    if (cuts[i]!.correct !== best) continue;
    let j = i;
    while (j + 1 < cuts.length && cuts[j + 1]!.correct === best) j++;
    const run: [number, number] = [cuts[i]!.lo, cuts[j]!.hi];
    if (!pick || run[1] - run[0] > pick[1] - pick[0]) pick = run;
    i = j;
  }
  const [lo, hi] = pick!;
  return { threshold: (lo + hi) / 2, accuracy: best / samples.length, correct: best, interval: [lo, hi] };
}

export interface AnswerStats {
  /** Per item: the share of variants that disagree with its most common answer, the entropy (bits) of its answers. */
  perItem: { flipRate: number; entropy: number; majority: number }[];
  /** Per variant: the share of items given each class. */
  perVariant: number[][];
}

/** answers[item][variant] = the class (index into the original labels) that variant gave the item. */
export function answerStats(answers: readonly (readonly number[])[], nClasses: number): AnswerStats {
  const nVariants = answers[0]?.length ?? 0;
  const perVariant = Array.from({ length: nVariants }, () => new Array<number>(nClasses).fill(0));
  const perItem = answers.map((row) => {
    if (row.length !== nVariants) throw new Error('every item needs an answer from every variant');
    const counts = new Array<number>(nClasses).fill(0);
    row.forEach((c, v) => {
      if (!Number.isInteger(c) || c < 0 || c >= nClasses) throw new Error(`answer ${c} is not a class index`);
      counts[c]!++;
      perVariant[v]![c]!++;
    });
    let majority = 0;
    for (let c = 1; c < nClasses; c++) if (counts[c]! > counts[majority]!) majority = c;
    let entropy = 0;
    for (const k of counts) if (k > 0) entropy -= (k / row.length) * Math.log2(k / row.length);
    return { flipRate: row.length ? 1 - counts[majority]! / row.length : 0, entropy: entropy || 0, majority };
  });
  const n = answers.length || 1;
  return { perItem, perVariant: perVariant.map((counts) => counts.map((k) => k / n)) };
}
