// The Prompt Lab draft without a browser: a spec to the form and back unchanged, escapes of the fields that
// hold newlines, the problems the page lists (zod's bounds and validateSpec's sentences), which model a call
// runs (the saved version only while the draft is unchanged), and the unstable-inputs table's order.
import { describe, expect, it } from 'vitest';
import { PromptModelSpec } from '../../../shared/prompt-model.js';
import type { ExploreStats, PromptExploreResult } from '../../../shared/api.js';
import { unstableRows } from './charts.js';
import {
  draftFromSpec,
  draftProblems,
  escapeText,
  lab,
  markSaved,
  modelChoice,
  newDraft,
  specFromDraft,
  unescapeText,
} from './draft.svelte.js';

const spec = PromptModelSpec.parse({
  name: 'Capitals',
  task: 'generate',
  model: { id: 'tiny-gpt2' },
  exampleTemplate: 'Q: {input}\nA: {output}',
  queryTemplate: 'Q: {input}\nA:',
  separator: '\n',
  examples: [{ input: 'Capital of India?', output: 'Delhi' }],
  contentFree: ['N/A', '', 'line\nbreak'],
  decoding: { maxTokens: 8, stop: ['\n', '###'], temperature: 0.7, seed: 3 },
});

describe('the draft', () => {
  it('turns a spec into the form and back unchanged', () => {
    expect(PromptModelSpec.parse(specFromDraft(draftFromSpec(spec)))).toEqual(spec);
    const classifier = PromptModelSpec.parse({
      ...spec,
      task: 'classify',
      examples: [{ input: 'Great', output: 'Positive' }],
      labels: [
        { name: 'Positive', paraphrases: ['good', 'great'] },
        { name: 'Negative', text: ' bad\n', paraphrases: [] },
      ],
      calibrate: true,
    });
    const d = draftFromSpec(classifier);
    expect(d.labels[0]).toEqual({ name: 'Positive', text: '', paraphrases: 'good, great' });
    expect(PromptModelSpec.parse(specFromDraft(d))).toEqual(classifier);
  });

  it('shows newlines, tabs and backslashes as escapes and reads them back', () => {
    expect(escapeText('a\nb\tc\\n')).toBe('a\\nb\\tc\\\\n');
    expect(unescapeText('a\\nb\\tc\\\\n')).toBe('a\nb\tc\\n');
    for (const s of ['', '\n', '\\', '\\\\n', 'x\ty']) expect(unescapeText(escapeText(s))).toBe(s);
  });

  it('drops labels and calibration when generating', () => {
    const d = { ...newDraft(), task: 'generate' as const, modelId: 'm' };
    const s = specFromDraft(d);
    expect(s.labels).toEqual([]);
    expect(s.calibrate).toBe(false);
  });

  it('lists the problems: no model chosen, the spec bounds, then what validateSpec says', () => {
    const d = newDraft();
    expect(draftProblems(d)).toEqual(['No model is chosen: pick a text model for the prompt to run on.']);
    d.modelId = 'tiny-gpt2';
    expect(draftProblems(d)).toEqual([]);
    d.name = ' ';
    d.labels[1]!.name = '';
    d.maxTokens = 5000;
    expect(draftProblems({ ...d, task: 'generate' })).toEqual([
      'The name is empty: fill it in.',
      'Max tokens is too long or too large (at most 4096).',
    ]);
    expect(draftProblems(d)).toContain('Label 2 name is empty: fill it in.');
    d.name = 'Sentiment';
    d.labels[1]!.name = 'Negative';
    d.maxTokens = 32;
    d.labels = d.labels.slice(0, 1);
    d.examples = [];
    expect(draftProblems(d)).toEqual(['A classifier needs at least two labels (got one: "Positive").']);
  });

  it('runs the saved version only while the draft is unchanged', () => {
    lab.draft = draftFromSpec(spec);
    markSaved({ name: 'Capitals', version: 2 });
    expect(modelChoice()).toEqual({ saved: { name: 'Capitals', version: 2 } });
    lab.draft.instructions = 'Answer in one word.';
    const choice = modelChoice();
    expect('spec' in choice && choice.spec.instructions).toBe('Answer in one word.');
    markSaved(null);
    lab.draft.instructions = '';
    expect('spec' in modelChoice()).toBe(true);
  });
});

describe('the most unstable inputs', () => {
  it('sorts by flip rate, then entropy, then position', () => {
    const perInput = [
      { idx: 0, majority: 'A', flipRate: 0.25, entropyBits: 0.8, correctShare: null },
      { idx: 1, majority: 'B', flipRate: 0.5, entropyBits: 1, correctShare: null },
      { idx: 2, majority: 'A', flipRate: 0.25, entropyBits: 0.9, correctShare: null },
      { idx: 3, majority: 'A', flipRate: 0, entropyBits: 0, correctShare: null },
    ];
    const stats = { perInput } as ExploreStats;
    const result = {
      inputs: perInput.map((p) => ({ idx: p.idx, text: `input ${p.idx}`, gold: null })),
    } as unknown as PromptExploreResult;
    expect(unstableRows(result, stats, 3).map((r) => [r.idx, r.text])).toEqual([
      [1, 'input 1'],
      [2, 'input 2'],
      [0, 'input 0'],
    ]);
  });
});
