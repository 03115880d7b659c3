// The zero-shot arithmetic against hand calculations written out here: the template ensemble (mean of the
// normalised embeddings, renormalised), logits and softmax, the margin and the unsure band, the threshold
// fitted to labelled images (ties -> the middle of the widest best interval), and the explorer's statistics.
import { describe, expect, it } from 'vitest';
import {
  answerStats,
  calibrateThreshold,
  decide,
  ensembleWeight,
  logitScaleFrom,
  scoreImage,
  softmax,
  templateProbs,
} from '../../../src/main/engine/classify/zeroshot.js';

describe('template ensembling', () => {
  it('averages the L2-normalised template embeddings and renormalises (by hand)', () => {
    // Two templates of one label: (3, 4, 0) has length 5 -> (0.6, 0.8, 0); (0, 0, 2) -> (0, 0, 1).
    // Mean: (0.3, 0.4, 0.5); its length is sqrt(0.09 + 0.16 + 0.25) = sqrt(0.5) = 0.70710678...
    // Renormalised: (0.3, 0.4, 0.5) / 0.70710678 = (0.42426407, 0.56568542, 0.70710678).
    const w = ensembleWeight([
      [3, 4, 0],
      [0, 0, 2],
    ]);
    expect(w[0]).toBeCloseTo(0.42426407, 7);
    expect(w[1]).toBeCloseTo(0.56568542, 7);
    expect(w[2]).toBeCloseTo(0.70710678, 7);
  });

  it('is not the normalised sum of raw embeddings (a long embedding does not outweigh a short one)', () => {
    // Raw sum (3, 4, 2) / sqrt(29) = (0.557, 0.743, 0.371): differs from the ensemble above.
    const w = ensembleWeight([
      [3, 4, 0],
      [0, 0, 2],
    ]);
    expect(Math.abs(w[2]! - 2 / Math.sqrt(29))).toBeGreaterThan(0.3);
  });

  it('refuses a zero embedding and an empty template list', () => {
    expect(() => ensembleWeight([[0, 0]])).toThrow(/zero embedding/);
    expect(() => ensembleWeight([])).toThrow(/at least one template/);
  });
});

describe('scores', () => {
  it('logits are logit_scale times the cosine; probabilities their softmax (by hand)', () => {
    // image (1, 0) ; weights w0 = (1, 0), w1 = (0, 1); scale 10 -> logits (10, 0).
    // softmax: e^10 / (e^10 + 1) = 22026.4658 / 22027.4658 = 0.9999546
    const s = scoreImage([2, 0], [new Float64Array([1, 0]), new Float64Array([0, 1])], 10);
    expect(s.logits[0]).toBeCloseTo(10, 10);
    expect(s.logits[1]).toBeCloseTo(0, 10);
    expect(s.probs[0]).toBeCloseTo(0.9999546, 7);
    expect(s.top).toBe(0);
    expect(s.margin).toBeCloseTo(0.9999546 - 0.0000454, 6);
  });

  it('softmax of (ln 1, ln 2, ln 3) is (1/6, 2/6, 3/6)', () => {
    const p = softmax([0, Math.log(2), Math.log(3)]);
    expect(p[0]).toBeCloseTo(1 / 6, 12);
    expect(p[1]).toBeCloseTo(2 / 6, 12);
    expect(p[2]).toBeCloseTo(3 / 6, 12);
  });

  it('per-template probabilities use each template alone', () => {
    // label 0's templates: (1,0), (0,1); label 1's: (0,1), (1,0). Image (1,0), scale ln 3:
    // template 0: logits (ln3, 0) -> (3/4, 1/4); template 1: logits (0, ln3) -> (1/4, 3/4).
    const tp = templateProbs(
      [1, 0],
      [
        [
          [1, 0],
          [0, 1],
        ],
        [
          [0, 1],
          [1, 0],
        ],
      ],
      Math.log(3),
    );
    expect(tp[0]![0]).toBeCloseTo(0.75, 12);
    expect(tp[1]![0]).toBeCloseTo(0.25, 12);
  });

  it("the model's logit scale is exp(logit_scale), clamped at 100 as CLIP does", () => {
    expect(logitScaleFrom(Math.log(14))).toBeCloseTo(14, 10);
    expect(logitScaleFrom(10)).toBe(100);
  });
});

describe('decisions', () => {
  it('a threshold on p(label 0) and the unsure band on the margin', () => {
    expect(decide([0.4, 0.6])).toEqual({ label: 1, unsure: false });
    expect(decide([0.4, 0.6], { threshold: 0.3 })).toEqual({ label: 0, unsure: false });
    expect(decide([0.45, 0.55], { unsureBand: 0.2 })).toEqual({ label: 1, unsure: true });
    expect(() => decide([0.2, 0.3, 0.5], { threshold: 0.5 })).toThrow(/two labels only/);
  });
});

describe('threshold calibration', () => {
  it('separable marks: the middle of the gap between the classes', () => {
    // label 0 at p0 0.7, 0.9; label 1 at 0.2, 0.4. Every t in (0.4, 0.7] is right on all four: middle 0.55.
    const c = calibrateThreshold([
      { p0: 0.9, label: 0 },
      { p0: 0.7, label: 0 },
      { p0: 0.4, label: 1 },
      { p0: 0.2, label: 1 },
    ]);
    expect(c.correct).toBe(4);
    expect(c.accuracy).toBe(1);
    expect(c.interval).toEqual([0.4, 0.7]);
    expect(c.threshold).toBeCloseTo(0.55, 12);
  });

  it('overlapping marks: the best accuracy, ties joined, the widest interval', () => {
    // Sorted p0: 0.1(1) 0.3(0) 0.5(1) 0.8(0). Cuts (t in): [0,0.1]:2 right; (0.1,0.3]:3; (0.3,0.5]:2;
    // (0.5,0.8]:3; (0.8,1]:2. Best 3 in two intervals of width 0.2 and 0.3: the wider, (0.5, 0.8] -> 0.65.
    const c = calibrateThreshold([
      { p0: 0.1, label: 1 },
      { p0: 0.3, label: 0 },
      { p0: 0.5, label: 1 },
      { p0: 0.8, label: 0 },
    ]);
    expect(c.correct).toBe(3);
    expect(c.interval).toEqual([0.5, 0.8]);
    expect(c.threshold).toBeCloseTo(0.65, 12);
  });

  it('a threshold that moves every mark the right way beats the default 0.5', () => {
    // All p0 below 0.5, but label 0 ones are higher: (0.2, 0.3] separates -> 0.25.
    const c = calibrateThreshold([
      { p0: 0.3, label: 0 },
      { p0: 0.35, label: 0 },
      { p0: 0.2, label: 1 },
      { p0: 0.1, label: 1 },
    ]);
    expect(c.threshold).toBeCloseTo(0.25, 12);
    expect(c.accuracy).toBe(1);
  });

  it('needs marks of both labels, and says so', () => {
    expect(() => calibrateThreshold([{ p0: 0.3, label: 0 }])).toThrow(/at least one image as each label/);
  });
});

describe('explorer statistics', () => {
  it('flip rate and entropy per item, class shares per variant (by hand)', () => {
    // item 0: answers 0,0,1 -> majority 0, flip rate 1/3, entropy -(2/3 log2 2/3 + 1/3 log2 1/3) = 0.9182958
    // item 1: answers 1,1,1 -> flip rate 0, entropy 0.
    // variant shares: v0: (0,1) -> [0.5, 0.5]; v1: (0,1) -> [0.5, 0.5]; v2: (1,1) -> [0, 1].
    const s = answerStats(
      [
        [0, 0, 1],
        [1, 1, 1],
      ],
      2,
    );
    expect(s.perItem[0]!.flipRate).toBeCloseTo(1 / 3, 12);
    expect(s.perItem[0]!.entropy).toBeCloseTo(0.9182958, 6);
    expect(s.perItem[1]).toEqual({ flipRate: 0, entropy: 0, majority: 1 });
    expect(s.perVariant).toEqual([
      [0.5, 0.5],
      [0.5, 0.5],
      [0, 1],
    ]);
  });
});
