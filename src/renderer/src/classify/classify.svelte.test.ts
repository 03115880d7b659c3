// The Classify page's own logic: labels pasted as "a|b", paths shown relative to the run's folder, the
// form's problems in words, the arguments it sends, and the tally of labels under a threshold and band.
import { describe, expect, it } from 'vitest';
import type { ClassifyRow } from '../../../shared/api.js';
import { counts, form, formProblems, shownPath, splitLabels, toStartArgs } from './classify.svelte.js';

const row = (idx: number, p0: number): ClassifyRow => ({
  idx,
  path: `/x/${idx}.png`,
  itemId: null,
  sha256: null,
  probs: [p0, 1 - p0],
  top: p0 >= 0.5 ? 0 : 1,
  margin: Math.abs(2 * p0 - 1),
  templateProbs: [],
  variants: [],
});

describe('the Classify page', () => {
  it('splits pasted labels and shows paths relative to the folder', () => {
    expect(splitLabels(' is photoshopped | is not photoshopped |')).toEqual(['is photoshopped', 'is not photoshopped']);
    expect(shownPath('/data/shots/day 2/a.png', '/data/shots')).toBe('day 2/a.png');
    expect(shownPath('/data/shots-old/a.png', '/data/shots')).toBe('/data/shots-old/a.png');
  });

  it('says what is wrong with the form, and sends what it shows', () => {
    const f = {
      ...form,
      labels: ['only one'],
      folder: '',
      templateSet: 'custom' as const,
      customText: 'no slot',
      wordings: 'a|b|c',
    };
    expect(formProblems(f).map((p) => p.message)).toEqual([
      'Add at least two labels: one label has nothing to compare with.',
      'Type the path of a folder of images on this machine.',
      '“no slot” has no {} where the label goes.',
      'Wording 2 has 3 labels; give 1, joined by |, in the same order.',
    ]);
    const ok = {
      ...form,
      labels: ['a', 'b'],
      folder: ' /pics ',
      wordings: 'x|y\n\n',
      templateSet: 'imagenet80' as const,
    };
    expect(formProblems(ok)).toEqual([]);
    expect(toStartArgs(ok)).toEqual({
      labels: ['a', 'b'],
      templates: { set: 'imagenet80' },
      source: { folder: '/pics' },
      wordings: [['x', 'y']],
      tag: true,
    });
  });

  it('tallies labels under the threshold and the unsure band', () => {
    // p0: 0.9 (margin 0.8), 0.55 (0.1), 0.3 (0.4). Threshold 0.5, band 0.2: 1 first, 1 second, 1 unsure.
    const rows = [row(0, 0.9), row(1, 0.55), row(2, 0.3)];
    expect(counts(rows, { threshold: 0.5, unsureBand: 0.2 }, 2)).toEqual({ perLabel: [1, 1], unsure: 1 });
    // Threshold 0.25, no band: all three are the first label.
    expect(counts(rows, { threshold: 0.25, unsureBand: 0 }, 2)).toEqual({ perLabel: [3, 0], unsure: 0 });
  });
});
