// Prompt Lab's numbers: label scores to probabilities, contextual calibration (Zhao et al. 2021, "Calibrate
// Before Use": divide by the label probabilities the prompt gives content-free inputs), the explorer's
// statistics over an answer matrix answers[variant][input] (how often an input's answer flips, its entropy,
// each variant's class shares and accuracy, accuracy across variants), and the prompt variants it runs
// (example orderings, leave-one-out, label wordings). Pure math, no Node built-ins: the page draws its
// charts from these results.
//
// Public API
//   logSoftmax(scores) / softmax(scores) / argmax(values)
//   contentFreeMean(cfProbs[][]) -> p_cf      mean of the renormalised content-free label probabilities
//   calibrate(probs, cfProbs[][]) / applyCalibration(probs, p_cf) -> number[]
//   classifyScores(logprobs, { calibration? }) -> ClassifyScores { probs, label, margin, calibrated? }
//   Answer, inputStability(answers) -> InputStability[]   flip rate and entropy (bits) per input
//   variantStats(answers, { gold?, classes? }) -> VariantStats[]; summarize(values) -> Summary
//   exploreStats({ raw, calibrated?, gold?, classes? }) -> ExploreStats   all of it, raw and calibrated
//   mulberry32(seed), permutations(n, count, seed), leaveOneOut(n), labelWordings(labels)
//   Variant, buildVariants(spec, options), applyVariant(spec, variant)
import type { PromptExample, PromptLabel } from './prompt-model.js';
import { mulberry32 } from './random.js';

// ---------- scores and calibration ----------

/** log softmax, stable for any finite scores (max subtracted first). */
export function logSoftmax(scores: readonly number[]): number[] {
  const max = Math.max(...scores);
  const lse = max + Math.log(scores.reduce((s, x) => s + Math.exp(x - max), 0));
  return scores.map((x) => x - lse);
}

export function softmax(scores: readonly number[]): number[] {
  const max = Math.max(...scores);
  return normalise(scores.map((x) => Math.exp(x - max)));
}

/** Index of the largest value; ties go to the lowest index. -1 for an empty list. */
export function argmax(values: readonly number[]): number {
  let best = -1;
  for (let i = 0; i < values.length; i++) if (best < 0 || values[i]! > values[best]!) best = i;
  return best;
}

function normalise(p: readonly number[]): number[] {
  const sum = p.reduce((s, x) => s + x, 0);
  return p.map((x) => x / sum);
}

/** p_cf: the mean over content-free inputs of their label probabilities, each renormalised over the labels. */
export function contentFreeMean(cfProbs: readonly (readonly number[])[]): number[] {
  if (cfProbs.length === 0) throw new Error('Calibration needs at least one content-free input.');
  const k = cfProbs[0]!.length;
  const mean = new Array<number>(k).fill(0);
  for (const p of cfProbs) normalise(p).forEach((x, i) => (mean[i]! += x / cfProbs.length));
  return mean;
}

/** Smallest p_cf used: a label the prompt never produces would otherwise divide by zero. */
const CF_FLOOR = 1e-12;

/** q ∝ p / p_cf, renormalised: W = diag(p_cf)^-1, b = 0. */
export function applyCalibration(probs: readonly number[], pcf: readonly number[]): number[] {
  if (probs.length !== pcf.length) {
    throw new Error(`Calibration has ${pcf.length} label probabilities for ${probs.length} labels.`);
  }
  return normalise(probs.map((p, i) => p / Math.max(pcf[i]!, CF_FLOOR)));
}

/** Zhao et al.'s contextual calibration of one input's label probabilities. */
export function calibrate(probs: readonly number[], cfProbs: readonly (readonly number[])[]): number[] {
  return applyCalibration(probs, contentFreeMean(cfProbs));
}

/** A choice among labels: its probabilities, the chosen index, and how far ahead it is of the next. */
export interface LabelPick {
  probs: number[];
  label: number;
  /** top-1 minus top-2 probability (1 with a single label). */
  margin: number;
}
export interface ClassifyScores extends LabelPick {
  /** With a calibration: the calibrated probabilities, choice and margin. */
  calibrated?: LabelPick;
}

function pick(probs: number[]): LabelPick {
  const sorted = [...probs].sort((a, b) => b - a);
  return { probs, label: argmax(probs), margin: (sorted[0] ?? 0) - (sorted[1] ?? 0) };
}

/**
 * One input's label log-likelihoods (the summed token log-probabilities of each label's continuation) to
 * probabilities over the labels, the argmax and margin; with `calibration` (p_cf) the calibrated ones too.
 */
export function classifyScores(
  logprobs: readonly number[],
  opts: { calibration?: readonly number[] } = {},
): ClassifyScores {
  const raw = pick(softmax(logprobs));
  return opts.calibration ? { ...raw, calibrated: pick(applyCalibration(raw.probs, opts.calibration)) } : raw;
}

// ---------- the explorer's statistics ----------

/** A label index (classify), an answer string (generate), or null (no answer: the row failed). */
export type Answer = number | string | null;

export interface AnswerCount {
  answer: number | string;
  count: number;
}
export interface InputStability {
  input: number;
  /** The most common answer across variants (ties: lowest label index, or the first seen string). */
  mode: number | string | null;
  /** Share of the answering variants whose answer differs from the mode (0 = stable). */
  flipRate: number;
  /** Entropy of the answer distribution across variants, in bits (log base 2). */
  entropyBits: number;
  counts: AnswerCount[];
  /** Variants that answered. */
  answered: number;
}

/** Strings compare trimmed; label indices as they are. */
function key(a: number | string): string {
  return typeof a === 'number' ? `#${a}` : `s${a.trim()}`;
}

function countAnswers(answers: readonly Answer[]): AnswerCount[] {
  const counts = new Map<string, AnswerCount>();
  for (const a of answers) {
    if (a === null) continue;
    const c = counts.get(key(a));
    if (c) c.count++;
    else counts.set(key(a), { answer: typeof a === 'string' ? a.trim() : a, count: 1 });
  }
  return [...counts.values()];
}

function modeOf(counts: readonly AnswerCount[]): AnswerCount | null {
  let best: AnswerCount | null = null;
  for (const c of counts) {
    const better =
      !best ||
      c.count > best.count ||
      (c.count === best.count &&
        typeof c.answer === 'number' &&
        typeof best.answer === 'number' &&
        c.answer < best.answer);
    if (better) best = c;
  }
  return best;
}

function entropyBits(counts: readonly AnswerCount[], n: number): number {
  let h = 0;
  for (const c of counts) h -= (c.count / n) * Math.log2(c.count / n);
  return h === 0 ? 0 : h; // no -0
}

/** Per input (column of answers[variant][input]): flip rate and entropy of its answers across variants. */
export function inputStability(answers: readonly (readonly Answer[])[]): InputStability[] {
  const inputs = answers[0]?.length ?? 0;
  const out: InputStability[] = [];
  for (let j = 0; j < inputs; j++) {
    const column = answers.map((row) => row[j] ?? null);
    const counts = countAnswers(column);
    const n = counts.reduce((s, c) => s + c.count, 0);
    const mode = modeOf(counts);
    out.push({
      input: j,
      mode: mode?.answer ?? null,
      flipRate: n === 0 ? 0 : (n - mode!.count) / n,
      entropyBits: n === 0 ? 0 : entropyBits(counts, n),
      counts,
      answered: n,
    });
  }
  return out;
}

export interface VariantStats {
  variant: number;
  answered: number;
  /** With `classes`: the share of each class among the variant's answers. */
  classShare: number[] | null;
  /** Rows with a gold answer and an answer. */
  graded: number;
  correct: number;
  /** correct / graded; null without gold answers. */
  accuracy: number | null;
}

export interface StatsOptions {
  /** Gold answers per input (a label index or a string), null where unknown. */
  gold?: readonly Answer[];
  /** Number of classes (labels) for class shares. */
  classes?: number;
}

function shares(answers: readonly Answer[], classes: number): number[] {
  const counts = new Array<number>(classes).fill(0);
  let n = 0;
  for (const a of answers) {
    if (typeof a === 'number' && a >= 0 && a < classes) {
      counts[a]!++;
      n++;
    }
  }
  return counts.map((c) => (n === 0 ? 0 : c / n));
}

/** Per variant (row of answers[variant][input]): class shares and accuracy on the rows with a gold answer. */
export function variantStats(answers: readonly (readonly Answer[])[], opts: StatsOptions = {}): VariantStats[] {
  return answers.map((row, v) => {
    let graded = 0;
    let correct = 0;
    row.forEach((a, j) => {
      const g = opts.gold?.[j] ?? null;
      if (a === null || g === null) return;
      graded++;
      if (key(a) === key(g)) correct++;
    });
    return {
      variant: v,
      answered: row.filter((a) => a !== null).length,
      classShare: opts.classes ? shares(row, opts.classes) : null,
      graded,
      correct,
      accuracy: graded === 0 ? null : correct / graded,
    };
  });
}

export interface Summary {
  n: number;
  mean: number;
  /** Population standard deviation (divides by n): the variants run are all the variants asked about. */
  sd: number;
  min: number;
  max: number;
}

/** Mean, population sd, min and max; null for no values. */
export function summarize(values: readonly number[]): Summary | null {
  if (values.length === 0) return null;
  const mean = values.reduce((s, x) => s + x, 0) / values.length;
  const variance = values.reduce((s, x) => s + (x - mean) ** 2, 0) / values.length;
  return { n: values.length, mean, sd: Math.sqrt(variance), min: Math.min(...values), max: Math.max(...values) };
}

export interface AnswerStats {
  inputs: InputStability[];
  variants: VariantStats[];
  /** Accuracy across variants (null without gold answers). */
  accuracy: Summary | null;
  /** Mean flip rate over inputs. */
  meanFlipRate: number;
}
export interface ExploreStats {
  raw: AnswerStats;
  calibrated?: AnswerStats;
  /** With gold answers and `classes`: the share of each class among the gold answers. */
  goldShare: number[] | null;
}

function answerStats(answers: readonly (readonly Answer[])[], opts: StatsOptions): AnswerStats {
  const inputs = inputStability(answers);
  const variants = variantStats(answers, opts);
  const accs = variants.flatMap((v) => (v.accuracy === null ? [] : [v.accuracy]));
  const meanFlipRate = inputs.length === 0 ? 0 : inputs.reduce((s, i) => s + i.flipRate, 0) / inputs.length;
  return { inputs, variants, accuracy: summarize(accs), meanFlipRate };
}

/** Everything the explorer shows, for raw answers and (when given) calibrated ones. */
export function exploreStats(
  data: { raw: readonly (readonly Answer[])[]; calibrated?: readonly (readonly Answer[])[] } & StatsOptions,
): ExploreStats {
  const opts = { gold: data.gold, classes: data.classes };
  const goldShare =
    data.gold && data.classes && data.gold.some((g) => g !== null) ? shares(data.gold, data.classes) : null;
  return {
    raw: answerStats(data.raw, opts),
    ...(data.calibrated ? { calibrated: answerStats(data.calibrated, opts) } : {}),
    goldShare,
  };
}

// ---------- variants ----------

export { mulberry32 };

function factorial(n: number): number {
  let f = 1;
  for (let i = 2; i <= n; i++) f *= i;
  return f;
}

/** All orderings of 0..n-1 in lexicographic order (identity first). Only for small n. */
function allPermutations(n: number): number[][] {
  const out: number[][] = [];
  const walk = (prefix: number[], rest: number[]) => {
    if (rest.length === 0) out.push(prefix);
    rest.forEach((x, i) => walk([...prefix, x], [...rest.slice(0, i), ...rest.slice(i + 1)]));
  };
  walk([], [...Array(n).keys()]);
  return out;
}

function shuffle<T>(items: T[], rand: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** Up to this many examples all orderings are listed and sampled from; above, random ones are drawn. */
const ENUMERATE_UP_TO = 8;

/**
 * `count` distinct orderings of n examples (each a list of example indices), the identity first, the
 * others drawn with a seeded generator (the same seed gives the same list). With count >= n! all n!.
 */
export function permutations(n: number, count: number, seed: number): number[][] {
  if (!Number.isInteger(n) || n < 0 || !Number.isInteger(count) || count < 1) {
    throw new Error(`permutations needs whole numbers n >= 0 and count >= 1 (got n=${n}, count=${count}).`);
  }
  const rand = mulberry32(seed);
  const total = factorial(n);
  if (n <= ENUMERATE_UP_TO) {
    const all = allPermutations(n);
    if (count >= total) return all;
    return [all[0]!, ...shuffle(all.slice(1), rand).slice(0, count - 1)];
  }
  const identity = [...Array(n).keys()];
  const seen = new Set([identity.join(',')]);
  const out = [identity];
  while (out.length < count) {
    const p = shuffle([...identity], rand);
    if (!seen.has(p.join(','))) {
      seen.add(p.join(','));
      out.push(p);
    }
  }
  return out;
}

/** For each example, the index list without it. */
export function leaveOneOut(n: number): number[][] {
  return [...Array(n).keys()].map((skip) => [...Array(n).keys()].filter((i) => i !== skip));
}

/** The continuation of a paraphrase: as written when it starts with a space, else a space and the word. */
export function paraphraseContinuation(paraphrase: string): string {
  return /^\s/.test(paraphrase) ? paraphrase : ' ' + paraphrase;
}

/** One wording per paraphrase: label index and the paraphrase. */
export function labelWordings(
  labels: readonly Pick<PromptLabel, 'paraphrases'>[],
): { label: number; wording: string }[] {
  return labels.flatMap((l, i) => l.paraphrases.map((wording) => ({ label: i, wording })));
}

/** A variant of the prompt, as data; applyVariant makes its spec. */
export type Variant = { id: string; description: string } & (
  | { kind: 'original' }
  | { kind: 'permutation'; order: number[] }
  | { kind: 'leave-one-out'; without: number }
  | { kind: 'wording'; label: number; wording: string }
);

/** The parts of a spec a variant changes. */
export interface VariantSpec {
  examples: PromptExample[];
  labels: PromptLabel[];
}

export interface VariantOptions {
  /** How many example orderings (the original order counts as the first). */
  permutations?: number;
  seed?: number;
  leaveOneOut?: boolean;
  wordings?: boolean;
}

/** The original first, then the orderings, the leave-one-outs and the label wordings asked for. */
export function buildVariants(spec: VariantSpec, opts: VariantOptions): Variant[] {
  const n = spec.examples.length;
  const out: Variant[] = [{ id: 'original', kind: 'original', description: 'the prompt as written' }];
  if ((opts.permutations ?? 0) > 1 && n > 1) {
    for (const order of permutations(n, opts.permutations!, opts.seed ?? 0).slice(1)) {
      const words = order.map((i) => i + 1).join('-');
      out.push({ id: `order:${words}`, kind: 'permutation', order, description: `order ${words}` });
    }
  }
  if (opts.leaveOneOut && n > 1) {
    for (let i = 0; i < n; i++) {
      out.push({ id: `without:${i + 1}`, kind: 'leave-one-out', without: i, description: `without example ${i + 1}` });
    }
  }
  if (opts.wordings) {
    for (const { label, wording } of labelWordings(spec.labels)) {
      const text = paraphraseContinuation(wording);
      const name = spec.labels[label]!.name;
      out.push({
        id: `wording:${label}:${wording}`,
        kind: 'wording',
        label,
        wording,
        description: `label ${name} as '${text}'`,
      });
    }
  }
  return out;
}

/**
 * The spec of a variant (a new object; the input is not changed). A wording variant scores the label by the
 * paraphrase and writes it in the examples whose answer was the label's name, so the prompt and the scored
 * text agree; results stay keyed by the label's name.
 */
export function applyVariant<S extends VariantSpec>(spec: S, variant: Variant): S {
  switch (variant.kind) {
    case 'original':
      return { ...spec };
    case 'permutation':
      return { ...spec, examples: variant.order.map((i) => spec.examples[i]!) };
    case 'leave-one-out':
      return { ...spec, examples: spec.examples.filter((_, i) => i !== variant.without) };
    case 'wording': {
      const name = spec.labels[variant.label]!.name;
      const text = paraphraseContinuation(variant.wording);
      return {
        ...spec,
        labels: spec.labels.map((l, i) => (i === variant.label ? { ...l, text } : l)),
        examples: spec.examples.map((e) => (e.output.trim() === name ? { ...e, output: text.trim() } : e)),
      };
    }
  }
}
