// Prompt rendering, spec validation and the template-file reader: expected prompts are written out by hand,
// and the reader is checked by round trip (rendering what it read gives the file back) and on adversarial
// megabyte input (it must finish in linear time).
import { describe, expect, it } from 'vitest';
import { PromptModelSpec, type PromptModelInput } from '../../../src/shared/prompt-model.js';
import {
  TEMPLATE_MAX_BYTES,
  assertValidSpec,
  contentFreePrompts,
  distinctOutputs,
  fillTemplate,
  labelContinuation,
  parseTemplateFile,
  renderPrompt,
  validateSpec,
} from '../../../src/shared/prompt-render.js';

const base: PromptModelInput = {
  name: 'sentiment',
  task: 'classify',
  model: { id: 'tiny-gpt2' },
  instructions: 'Classify the sentiment of each review.',
  exampleTemplate: 'Review: {input}\nSentiment: {output}',
  queryTemplate: 'Review: {input}\nSentiment:',
  examples: [
    { input: 'A delight', output: 'Positive' },
    { input: 'Dull', output: 'Negative' },
  ],
  labels: [{ name: 'Positive' }, { name: 'Negative' }],
};
const spec = (over: Partial<PromptModelInput> = {}) => PromptModelSpec.parse({ ...base, ...over });

describe('renderPrompt', () => {
  it('joins instructions, examples and the query with the separator', () => {
    expect(renderPrompt(spec(), 'Great fun')).toBe(
      'Classify the sentiment of each review.\n\n' +
        'Review: A delight\nSentiment: Positive\n\n' +
        'Review: Dull\nSentiment: Negative\n\n' +
        'Review: Great fun\nSentiment:',
    );
  });

  it('skips empty parts and uses the given separator', () => {
    const s = spec({ instructions: '', separator: '\n###\n', examples: [{ input: 'x', output: 'Positive' }] });
    expect(renderPrompt(s, 'y')).toBe('Review: x\nSentiment: Positive\n###\nReview: y\nSentiment:');
    expect(renderPrompt(spec({ instructions: '', examples: [] }), 'z')).toBe('Review: z\nSentiment:');
  });

  it('inserts inputs literally: slots and replacement patterns in the input stay as typed', () => {
    const tricky = 'say {output} and {input} and $& $1 $$';
    const out = renderPrompt(spec({ instructions: '', examples: [{ input: tricky, output: '$&' }] }), tricky);
    expect(out).toBe(`Review: ${tricky}\nSentiment: $&\n\nReview: ${tricky}\nSentiment:`);
  });

  it('fills every slot occurrence and leaves {output} alone in a query', () => {
    expect(fillTemplate('{input}-{input}-{output}', { input: 'a', output: 'b' })).toBe('a-a-b');
    expect(fillTemplate('{input} {output}', { input: 'a' })).toBe('a {output}');
  });

  it('is linear: a megabyte of slot-like input renders at once', () => {
    const big = '{in{input}{output}'.repeat(60_000); // ~1 MB
    const t0 = performance.now();
    const out = renderPrompt({ ...spec(), examples: [{ input: big, output: big }] }, big); // past zod's bounds
    expect(performance.now() - t0).toBeLessThan(500);
    expect(out.length).toBe(
      'Classify the sentiment of each review.\n\n'.length +
        'Review: \nSentiment: '.length +
        2 * big.length +
        '\n\nReview: \nSentiment:'.length +
        big.length,
    );
  });

  it('renders a prompt per content-free input', () => {
    const s = spec({ instructions: '', examples: [], contentFree: ['N/A', ''] });
    expect(contentFreePrompts(s)).toEqual(['Review: N/A\nSentiment:', 'Review: \nSentiment:']);
  });
});

describe('labelContinuation', () => {
  it('is the label text, or a space and the name', () => {
    expect(labelContinuation({ name: 'Positive' })).toBe(' Positive');
    expect(labelContinuation({ name: 'Positive', text: ' good' })).toBe(' good');
    expect(labelContinuation({ name: 'Positive', text: '' })).toBe('');
  });
});

describe('validateSpec', () => {
  it('passes a spec that can run', () => {
    expect(validateSpec(spec())).toEqual([]);
    expect(() => assertValidSpec(spec())).not.toThrow();
  });

  it('says what to fix in the templates and the model', () => {
    const problems = validateSpec(
      spec({ model: { id: ' ' }, queryTemplate: 'Review:', exampleTemplate: 'Review: text' }),
    );
    expect(problems).toEqual([
      'No model is chosen: pick a text model for the prompt to run on.',
      'The query template has no {input} slot: add {input} where each input goes.',
      "The example template has no {input} slot: add {input} where each example's input goes.",
      "The example template has no {output} slot: add {output} where each example's answer goes.",
    ]);
  });

  it('does not need example slots when there are no examples', () => {
    expect(validateSpec(spec({ examples: [], exampleTemplate: '' }))).toEqual([]);
  });

  it("checks a classifier's labels", () => {
    expect(validateSpec(spec({ labels: [{ name: 'Positive' }], examples: [] }))).toEqual([
      'A classifier needs at least two labels (got one: "Positive").',
    ]);
    expect(validateSpec(spec({ labels: [], examples: [] }))).toEqual([
      'A classifier needs at least two labels (got none).',
    ]);
    expect(validateSpec(spec({ labels: [{ name: 'A' }, { name: 'B' }, { name: 'A' }], examples: [] }))).toEqual([
      'The label "A" is listed more than once: each label needs its own name.',
    ]);
    expect(
      validateSpec(
        spec({
          labels: [
            { name: 'Yes', text: ' y' },
            { name: 'Sure', text: ' y' },
          ],
          examples: [],
        }),
      ),
    ).toEqual(['"Yes" and "Sure" are scored by the same text " y": give each its own text.']);
  });

  it('names an example whose answer is not a label', () => {
    const s = spec({ examples: [...base.examples!, { input: 'Meh', output: 'Neutral' }] });
    expect(validateSpec(s)).toEqual([
      'Example 3\'s answer "Neutral" is not one of the labels (Positive and Negative): ' +
        'change the answer or add it as a label.',
    ]);
    expect(() => assertValidSpec(s)).toThrow(/Example 3's answer "Neutral"/);
  });

  it('leaves labels alone for generation', () => {
    expect(validateSpec(spec({ task: 'generate', labels: [] }))).toEqual([]);
  });

  it('collects every problem in the thrown error', () => {
    try {
      assertValidSpec(spec({ queryTemplate: 'x', labels: [], examples: [] }));
      expect.unreachable();
    } catch (e) {
      expect((e as { problems: string[] }).problems).toHaveLength(2);
      expect((e as Error).message).toMatch(/no \{input\} slot.*at least two labels/);
    }
  });
});

describe('parseTemplateFile', () => {
  const qa = 'Q: Capital of India?\nA: Delhi\n\nQ: Capital of France?\nA: Paris\n\nQ: {input}\nA:';

  it('reads Q/A blocks: the last is the query, earlier ones the examples', () => {
    const t = parseTemplateFile(qa);
    expect(t).toEqual({
      instructions: '',
      exampleTemplate: 'Q: {input}\nA: {output}',
      queryTemplate: 'Q: {input}\nA:',
      separator: '\n\n',
      examples: [
        { input: 'Capital of India?', output: 'Delhi' },
        { input: 'Capital of France?', output: 'Paris' },
      ],
      labels: [],
    });
    // Round trip: the prompt for an input is the file with {input} replaced.
    expect(renderPrompt(t, 'Capital of Peru?')).toBe(qa.replace('{input}', 'Capital of Peru?'));
  });

  it('keeps blocks before the first example as instructions; CRLF, BOM and extra blank lines are fine', () => {
    const file =
      '\uFEFFAnswer with the capital.\r\nOne word.\r\n\r\n\r\nQ: Spain?\r\nA: Madrid\r\n\r\nQ: {input}\r\nA:  \r\n';
    const t = parseTemplateFile(file);
    expect(t.instructions).toBe('Answer with the capital.\nOne word.');
    expect(t.examples).toEqual([{ input: 'Spain?', output: 'Madrid' }]);
    expect(t.queryTemplate).toBe('Q: {input}\nA:');
    expect(renderPrompt(t, 'Peru?')).toBe(
      'Answer with the capital.\nOne word.\n\nQ: Spain?\nA: Madrid\n\nQ: Peru?\nA:',
    );
  });

  it('reads the one-line style, with labels given', () => {
    const file = 'Sentiment of movie reviews.\n\nI: Average movie O: Negative\nI: Loved it O: Positive\nI: {input} O:';
    const t = parseTemplateFile(file, { labels: ['Positive', 'Negative'] });
    expect(t.examples).toEqual([
      { input: 'Average movie', output: 'Negative' },
      { input: 'Loved it', output: 'Positive' },
    ]);
    expect(t.queryTemplate).toBe('I: {input} O:');
    expect(t.exampleTemplate).toBe('I: {input} O: {output}');
    expect(t.separator).toBe('\n');
    expect(t.labels).toEqual([
      { name: 'Positive', paraphrases: [] },
      { name: 'Negative', paraphrases: [] },
    ]);
    expect(renderPrompt(t, 'Boring')).toBe(file.replace('{input}', 'Boring'));
    expect(distinctOutputs(t.examples)).toEqual(['Negative', 'Positive']);
    const full = PromptModelSpec.parse({ ...t, name: 'n', task: 'classify', model: { id: 'm' } });
    expect(validateSpec(full)).toEqual([]);
  });

  it('refuses a template without {input}, or with text after the query', () => {
    expect(() => parseTemplateFile('Q: What?\nA:')).toThrow(/The template has no \{input\} slot/);
    expect(() => parseTemplateFile('Q: {input}\nA:\n\nThanks!')).toThrow(/Text follows the query \(line 4\)/);
  });

  it('refuses a block that breaks the examples, naming its line', () => {
    const file = 'Q: a\nA: b\n\nSomething else\n\nQ: {input}\nA:';
    expect(() => parseTemplateFile(file)).toThrow(/Line 4 \("Something else"\) comes after the first example/);
  });

  it('refuses a template over 1 MB with its size', () => {
    const big = 'x'.repeat(TEMPLATE_MAX_BYTES) + '{input}';
    expect(() => parseTemplateFile(big)).toThrow(
      /The template is 1,000,007 bytes; the most a template may be is 1,000,000/,
    );
    // Multi-byte characters count as their UTF-8 bytes: 400,000 × 3 bytes.
    expect(() => parseTemplateFile('€'.repeat(400_000) + '{input}')).toThrow(/1,200,007 bytes/);
  });

  it('is linear on adversarial input just under the limit', () => {
    const cases = [
      '{in'.repeat(330_000) + '{input}', // one line of near-slots
      'Q: ' + 'a'.repeat(600_000) + ' x\n\nQ: {input}' + 'a'.repeat(200_000) + 'b A:', // naive search's worst case
      'Q: a\nA: b\n\n'.repeat(80_000) + 'Q: {input}\nA:', // many blocks
      '\n'.repeat(990_000) + '{input}', // only blank lines
    ];
    for (const file of cases) {
      const t0 = performance.now();
      parseTemplateFile(file);
      expect(performance.now() - t0).toBeLessThan(1500);
    }
    expect(parseTemplateFile(cases[2]!).examples).toHaveLength(80_000);
  });
});
