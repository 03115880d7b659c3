// The prompt syntax: what users write in the notebooks parses as they expect, every mistake is an error
// that says what to write, and a megabyte of adversarial input costs work linear in its length (counted
// character visits, not wall-clock time).
import { describe, expect, it } from 'vitest';
import { PROMPT_LIMITS, PromptError, type ParseWork, formatPrompt, parsePrompt, parsePrompts } from './prompts.js';

const P = (text: string, weight = 1, stop = -Infinity) => ({ text, weight, stop });

describe('parsePrompts', () => {
  it('text, text:weight and text:weight:stop, joined by |', () => {
    expect(parsePrompts('a lighthouse')).toEqual([[P('a lighthouse')]]);
    expect(parsePrompts(' a lighthouse:1.5 | stormy sea:0.5 ')).toEqual([
      [P('a lighthouse', 1.5), P('stormy sea', 0.5)],
    ]);
    expect(parsePrompts('fog:-1:-0.3|rain:2e-1:1E-2')).toEqual([[P('fog', -1, -0.3), P('rain', 0.2, 0.01)]]);
    expect(parsePrompts('a:.5:-inf')).toEqual([[P('a', 0.5)]]);
  });

  it('keeps colons in the text: weight and stop only when they are numbers at the end', () => {
    expect(parsePrompts('a map: the old town')).toEqual([[P('a map: the old town')]]);
    expect(parsePrompts('a map: the old town:2')).toEqual([[P('a map: the old town', 2)]]);
    expect(parsePrompts('a:b:1')).toEqual([[P('a:b', 1)]]);
    expect(parsePrompts('ratio 16:9')).toEqual([[P('ratio 16', 9)]]); // as rsplit(':', 2)
    expect(parsePrompts('ratio 16:9:1:-inf')).toEqual([[P('ratio 16:9', 1)]]);
    expect(parsePrompts('x:1e')).toEqual([[P('x:1e')]]);
    expect(parsePrompts('x: 3 cats')).toEqual([[P('x: 3 cats')]]);
    expect(parsePrompts('time 12:30 pm')).toEqual([[P('time 12:30 pm')]]);
    expect(parsePrompts('x:')).toEqual([[P('x:')]]);
  });

  it('story phrases with ^', () => {
    expect(parsePrompts('a seed ^ a sapling | sun:0.5 ^ an oak')).toEqual([
      [P('a seed')],
      [P('a sapling'), P('sun', 0.5)],
      [P('an oak')],
    ]);
  });

  it('explains every mistake', () => {
    const bad: [string, RegExp][] = [
      ['', /The prompt is empty\. Write what the image should show/],
      ['  \n\t ', /The prompt is empty/],
      ['a || b', /Prompt 2 is empty: remove the extra "\|"/],
      ['a |', /Prompt 2 is empty/],
      ['a ^ b ^', /Prompt 1 of phrase 3 is empty/],
      ['^a', /Prompt 1 of phrase 1 is empty/],
      [':1.5', /has a weight but no text: write the text before the ":"/],
      ['a:inf', /weight Infinity: a weight must be a finite number/],
      ['a:1:inf', /stop Infinity: a stop must be a number or -inf/],
      ['x'.repeat(PROMPT_LIMITS.maxTextChars + 1), /characters long; at most 1000 are allowed/],
      [Array.from({ length: PROMPT_LIMITS.maxPromptsPerPhrase + 1 }, () => 'a').join('|'), /more than 32 prompts/],
      [Array.from({ length: PROMPT_LIMITS.maxPhrases + 2 }, () => 'a').join('^'), /More than 100 story phrases/],
    ];
    for (const [input, re] of bad) {
      let err: unknown;
      try {
        parsePrompts(input);
      } catch (e) {
        err = e;
      }
      expect(err, input.slice(0, 40)).toBeInstanceOf(PromptError);
      expect((err as Error).message).toMatch(re);
    }
    expect(() => parsePrompts('a'.repeat(PROMPT_LIMITS.maxChars + 1))).toThrow(/at most 4194304 are allowed/);
    expect(() => parsePrompts(Array.from({ length: 9 }, () => new Array(31).fill('a').join('|')).join('^'))).toThrow(
      /More than 256 prompts in all/,
    );
  });

  it('parsePrompt and formatPrompt round-trip', () => {
    for (const p of [P('a'), P('a', 2), P('a', -0.5, 0.1), P('ratio 16:9'), P('a:b', 3)]) {
      expect(parsePrompt(formatPrompt(p))).toEqual(p);
    }
    expect(formatPrompt(P('a', -0.5, 0.1))).toBe('a:-0.5:0.1');
  });
});

describe('linear time on adversarial input', () => {
  const MB = 1 << 20;
  const inputs: [string, string][] = [
    ['colons', ':'.repeat(MB)],
    ['number-like tails', '1:'.repeat(MB / 2)],
    ['separators', '|'.repeat(MB)],
    ['phrases', '^'.repeat(MB)],
    ['digits', '9'.repeat(MB)],
    ['exponents', '1e'.repeat(MB / 2)],
    ['whitespace then a prompt', ' '.repeat(MB) + 'a:1'],
    ['one long text', 'a'.repeat(MB)],
    ['long text with colons and numbers', 'a:1.5e-3:'.repeat(MB / 9)],
    ['minus signs', '-'.repeat(MB)],
    ['many short prompts', 'a|'.repeat(MB / 2)],
  ];
  it.each(inputs)('%s (1 MiB): answered with work proportional to the length', (_name, input) => {
    const work: ParseWork = { steps: 0 };
    try {
      parsePrompts(input, work);
    } catch (e) {
      expect(e).toBeInstanceOf(PromptError);
    }
    expect(work.steps).toBeLessThanOrEqual(4 * input.length + 1000);
  });

  it('the work counter sees the whole input when it parses (the bound is not vacuous)', () => {
    const input = ' '.repeat(MB) + 'a:1';
    const work: ParseWork = { steps: 0 };
    expect(parsePrompts(input, work)).toEqual([[P('a')]]);
    expect(work.steps).toBeGreaterThanOrEqual(input.length);
    expect(parsePrompts(`fog:2${' '.repeat(MB)}| rain`)).toEqual([[P('fog', 2), P('rain')]]);
  });
});
