// Prompt Lab's statistics against values computed by hand in the comments: softmax, contextual calibration
// on a constructed biased model, flip rates / entropies / accuracies of a small answer matrix, and the
// prompt variants.
import { describe, expect, it } from 'vitest';
import { PromptModelSpec } from '../../../src/shared/prompt-model.js';
import { renderPrompt } from '../../../src/shared/prompt-render.js';
import {
  applyVariant,
  argmax,
  buildVariants,
  calibrate,
  classifyScores,
  contentFreeMean,
  exploreStats,
  inputStability,
  leaveOneOut,
  logSoftmax,
  mulberry32,
  permutations,
  softmax,
  summarize,
  variantStats,
  type Answer,
} from '../../../src/shared/prompt-stats.js';

describe('softmax', () => {
  it('matches the hand value and stays finite for large scores', () => {
    // log(e^1 + e^2 + e^3) = 3 + log(e^-2 + e^-1 + 1) = 3.4076059644
    const ls = logSoftmax([1, 2, 3]);
    expect(ls[0]).toBeCloseTo(1 - 3.4076059644, 9);
    expect(ls[2]).toBeCloseTo(3 - 3.4076059644, 9);
    expect(softmax([1000, 1000])).toEqual([0.5, 0.5]);
    expect(logSoftmax([-1000, -1000])[0]).toBeCloseTo(-Math.LN2, 12);
  });
  it('argmax takes the lowest index on ties', () => {
    expect(argmax([0.2, 0.5, 0.5])).toBe(1);
    expect(argmax([])).toBe(-1);
  });
});

describe('calibration (Zhao et al. 2021)', () => {
  // A model biased to "Positive": every content-free input gets p = [0.8, 0.2] (the second given
  // unnormalised, [0.4, 0.1], as label probabilities out of the whole vocabulary are).
  const cf = [
    [0.8, 0.2],
    [0.4, 0.1],
    [0.8, 0.2],
  ];

  it('averages the renormalised content-free probabilities', () => {
    // [0.6,0.4], [1,1] -> [0.5,0.5], [0.4,0.1] -> [0.8,0.2]; mean = [1.9/3, 1.1/3]
    const pcf = contentFreeMean([
      [0.6, 0.4],
      [1, 1],
      [0.4, 0.1],
    ]);
    expect(pcf[0]).toBeCloseTo(1.9 / 3, 12);
    expect(pcf[1]).toBeCloseTo(1.1 / 3, 12);
    expect(() => contentFreeMean([])).toThrow(/at least one content-free input/);
  });

  it('flips a weak Positive to Negative and keeps a strong one', () => {
    // [0.7, 0.3] / [0.8, 0.2] = [0.875, 1.5]; sum 2.375 -> [0.368421, 0.631579]: Negative
    const weak = calibrate([0.7, 0.3], cf);
    expect(weak[0]).toBeCloseTo(0.875 / 2.375, 12);
    expect(weak[1]).toBeCloseTo(1.5 / 2.375, 12);
    expect(argmax(weak)).toBe(1);
    // [0.9, 0.1] / [0.8, 0.2] = [1.125, 0.5]; sum 1.625 -> [0.692308, 0.307692]: still Positive
    const strong = calibrate([0.9, 0.1], cf);
    expect(strong[0]).toBeCloseTo(1.125 / 1.625, 12);
    expect(argmax(strong)).toBe(0);
  });

  it('classifyScores gives probabilities, label and margin, raw and calibrated', () => {
    // Label log-likelihoods log 0.35 and log 0.15 (0.5 of the vocabulary's mass): over the labels [0.7, 0.3].
    const r = classifyScores([Math.log(0.35), Math.log(0.15)], { calibration: [0.8, 0.2] });
    expect(r.probs[0]).toBeCloseTo(0.7, 12);
    expect(r.label).toBe(0);
    expect(r.margin).toBeCloseTo(0.4, 12);
    expect(r.calibrated!.label).toBe(1);
    expect(r.calibrated!.margin).toBeCloseTo((1.5 - 0.875) / 2.375, 12); // 0.263158
    expect(classifyScores([0, 0, 0]).calibrated).toBeUndefined();
    expect(classifyScores([0, 0, 0]).margin).toBe(0);
  });

  it('refuses a calibration of the wrong length and survives a zero', () => {
    expect(() => classifyScores([0, 0], { calibration: [1] })).toThrow(/1 label probabilities for 2 labels/);
    const q = classifyScores([0, 0], { calibration: [1, 0] }).calibrated!;
    expect(q.label).toBe(1); // 0.5 / 1e-12 dwarfs 0.5 / 1
    expect(Number.isFinite(q.probs[0]!)).toBe(true);
  });
});

describe('explorer statistics', () => {
  // answers[variant][input], two classes; null = no answer.
  const answers: Answer[][] = [
    [0, 1, 0, 1],
    [0, 0, 1, null],
    [0, 1, 1, 0],
  ];
  const gold: Answer[] = [0, 1, 0, 1];
  // By hand, per input:
  //   0: 0,0,0        mode 0, flip 0,   H = 0
  //   1: 1,0,1        mode 1, flip 1/3, H = -(1/3 log2 1/3 + 2/3 log2 2/3) = log2 3 - 2/3 = 0.918296
  //   2: 0,1,1        mode 1, flip 1/3, H = 0.918296
  //   3: 1,-,0        tie 1:1 -> lowest label 0, flip 1/2 (of 2 answering), H = 1 bit
  it('computes flip rate and entropy (bits) per input', () => {
    const s = inputStability(answers);
    expect(s.map((x) => x.mode)).toEqual([0, 1, 1, 0]);
    expect(s.map((x) => x.flipRate)).toEqual([0, 1 / 3, 1 / 3, 1 / 2]);
    const h = Math.log2(3) - 2 / 3;
    expect(s[0]!.entropyBits).toBe(0);
    expect(s[1]!.entropyBits).toBeCloseTo(h, 12);
    expect(s[2]!.entropyBits).toBeCloseTo(h, 12);
    expect(s[3]!.entropyBits).toBeCloseTo(1, 12);
    expect(s[3]!.answered).toBe(2);
  });

  // Per variant on graded rows (answer and gold both present):
  //   v0: 0✓ 1✓ 0✓ 1✓ = 4/4 = 1      shares [2/4, 2/4]
  //   v1: 0✓ 0✗ 1✗ -  = 1/3          shares [2/3, 1/3]
  //   v2: 0✓ 1✓ 1✗ 0✗ = 2/4 = 0.5    shares [2/4, 2/4]
  // mean = (1 + 1/3 + 1/2) / 3 = 11/18; deviations 7/18, -5/18, -2/18; population variance
  // (49 + 25 + 4) / 324 / 3 = 13/162, sd = 0.283279
  it('computes per-variant accuracy and class shares, and their summary', () => {
    const v = variantStats(answers, { gold, classes: 2 });
    expect(v.map((x) => x.accuracy)).toEqual([1, 1 / 3, 0.5]);
    expect(v.map((x) => x.graded)).toEqual([4, 3, 4]);
    expect(v[1]!.classShare).toEqual([2 / 3, 1 / 3]);
    const e = exploreStats({ raw: answers, calibrated: [[0, 1, 0, 1]], gold, classes: 2 });
    expect(e.raw.accuracy!.mean).toBeCloseTo(11 / 18, 12);
    expect(e.raw.accuracy!.sd).toBeCloseTo(Math.sqrt(13 / 162), 12);
    expect(e.raw.accuracy!.min).toBeCloseTo(1 / 3, 12);
    expect(e.raw.accuracy!.max).toBe(1);
    expect(e.raw.meanFlipRate).toBeCloseTo((0 + 1 / 3 + 1 / 3 + 1 / 2) / 4, 12); // 7/24
    expect(e.goldShare).toEqual([0.5, 0.5]);
    expect(e.calibrated!.accuracy).toEqual({ n: 1, mean: 1, sd: 0, min: 1, max: 1 });
    expect(e.calibrated!.meanFlipRate).toBe(0);
  });

  it('has no accuracy without gold answers', () => {
    const e = exploreStats({ raw: answers, classes: 2 });
    expect(e.raw.accuracy).toBeNull();
    expect(e.goldShare).toBeNull();
    expect(e.calibrated).toBeUndefined();
    expect(summarize([])).toBeNull();
  });

  it('compares string answers trimmed; ties go to the first seen', () => {
    const s = inputStability([
      ['Delhi', 'b'],
      ['Delhi ', 'a'],
      ['New Delhi', null],
    ]);
    expect(s[0]!.mode).toBe('Delhi');
    expect(s[0]!.flipRate).toBeCloseTo(1 / 3, 12);
    expect(s[1]!.mode).toBe('b');
    expect(variantStats([['Paris ']], { gold: ['Paris'] })[0]!.accuracy).toBe(1);
  });
});

describe('variants', () => {
  it('mulberry32 matches the reference generator', () => {
    // From a separate Python transcription of mulberry32 (seed 42 -> 0.6011037519201636 is the usual check).
    const r = mulberry32(42);
    expect([r(), r(), r()]).toEqual([0.6011037519201636, 0.44829055899754167, 0.8524657934904099]);
    expect(mulberry32(0)()).toBe(0.26642920868471265);
  });

  it('lists all orderings when asked for n! or more, identity first', () => {
    expect(permutations(3, 10, 1)).toEqual([
      [0, 1, 2],
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
    ]);
    expect(permutations(0, 5, 1)).toEqual([[]]);
  });

  it('draws distinct seeded orderings', () => {
    for (const [n, count] of [
      [4, 5],
      [4, 23],
      [12, 200],
    ] as const) {
      const ps = permutations(n, count, 7);
      expect(ps).toHaveLength(count);
      expect(ps[0]).toEqual([...Array(n).keys()]);
      expect(new Set(ps.map((p) => p.join(','))).size).toBe(count);
      for (const p of ps) expect([...p].sort((a, b) => a - b)).toEqual([...Array(n).keys()]);
      expect(permutations(n, count, 7)).toEqual(ps);
    }
    expect(permutations(6, 20, 1)).not.toEqual(permutations(6, 20, 2));
    expect(() => permutations(3, 0, 1)).toThrow(/count >= 1/);
  });

  it('leaves one out', () => {
    expect(leaveOneOut(3)).toEqual([
      [1, 2],
      [0, 2],
      [0, 1],
    ]);
  });

  const spec = PromptModelSpec.parse({
    name: 's',
    task: 'classify',
    model: { id: 'm' },
    exampleTemplate: '{input} => {output}',
    queryTemplate: '{input} =>',
    separator: '\n',
    examples: [
      { input: 'a', output: 'Positive' },
      { input: 'b', output: 'Negative' },
      { input: 'c', output: 'Positive' },
    ],
    labels: [
      { name: 'Positive', paraphrases: ['good'] },
      { name: 'Negative', paraphrases: ['bad', ' awful'] },
    ],
  });

  it('builds the asked-for variants with their descriptions', () => {
    const vs = buildVariants(spec, { permutations: 3, seed: 1, leaveOneOut: true, wordings: true });
    expect(vs.map((v) => v.kind)).toEqual([
      'original',
      'permutation',
      'permutation',
      'leave-one-out',
      'leave-one-out',
      'leave-one-out',
      'wording',
      'wording',
      'wording',
    ]);
    expect(vs[1]!.description).toMatch(/^order \d-\d-\d$/);
    expect(vs[1]!.description).not.toBe('order 1-2-3');
    expect(vs.map((v) => v.id).length).toBe(new Set(vs.map((v) => v.id)).size);
    expect(vs[4]!.description).toBe('without example 2');
    expect(vs.slice(6).map((v) => v.description)).toEqual([
      "label Positive as ' good'",
      "label Negative as ' bad'",
      "label Negative as ' awful'",
    ]);
  });

  it('applies a variant without changing the spec', () => {
    const before = JSON.stringify(spec);
    const perm = applyVariant(spec, { id: 'p', kind: 'permutation', order: [2, 0, 1], description: '' });
    expect(renderPrompt(perm, 'd')).toBe('c => Positive\na => Positive\nb => Negative\nd =>');
    const loo = applyVariant(spec, { id: 'l', kind: 'leave-one-out', without: 1, description: '' });
    expect(renderPrompt(loo, 'd')).toBe('a => Positive\nc => Positive\nd =>');
    const w = applyVariant(spec, { id: 'w', kind: 'wording', label: 0, wording: 'good', description: '' });
    expect(renderPrompt(w, 'd')).toBe('a => good\nb => Negative\nc => good\nd =>');
    expect(w.labels[0]).toEqual({ name: 'Positive', text: ' good', paraphrases: ['good'] });
    expect(w.labels[1]).toBe(spec.labels[1]);
    expect(JSON.stringify(spec)).toBe(before);
  });
});
