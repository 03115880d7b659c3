// The prompt syntax users know from the VQGAN+CLIP notebooks: `text:weight:stop`, several prompts joined
// by `|`, story phrases separated by `^` (the loop moves to the next phrase every N steps). The text may
// itself contain `:` ("a map: the old town"); weight and stop are taken only when they are numbers at the
// end, as Python's rsplit(':', 2) splits them: "a:b:1" is the text "a:b" with weight 1, and "16:9" the
// text "16" with weight 9 (a text that ends in ":number" keeps it with an explicit weight and stop:
// "16:9:1:-inf" is the text "16:9", weight 1, no stop).
//
// One pass over the input, every character visited a bounded number of times, no regular expressions,
// and every size bounded (PROMPT_LIMITS), so a megabyte of adversarial input is answered in linear time.
//
// Public API
//   parsePrompts(text, work?) -> Phrase[]       phrases (one unless `^` is used), each a list of prompts
//   parsePrompt(segment) -> Prompt              one `text:weight:stop`
//   Prompt { text, weight, stop }, Phrase       weight default 1, stop default -Infinity (no stop)
//   PROMPT_LIMITS, PromptError
//   formatPrompt(p)                             the prompt written back in the syntax (for metadata)

export interface Prompt {
  text: string;
  /** Signed weight (negative: push away). Default 1. */
  weight: number;
  /** The loss stops pulling once sign(weight) * distance falls below this. Default -Infinity (never). */
  stop: number;
}

export type Phrase = Prompt[];

export const PROMPT_LIMITS = {
  /** The whole prompt text, in UTF-16 code units. */
  maxChars: 4 * 1024 * 1024,
  /** Characters of one prompt's text (CLIP reads at most 77 tokens of it). */
  maxTextChars: 1000,
  maxPhrases: 100,
  maxPromptsPerPhrase: 32,
  /** Prompts over all phrases. */
  maxPrompts: 256,
  /** Characters of a number (weight or stop); longer tails are text. */
  maxNumberChars: 40,
} as const;

const EXAMPLE =
  'Write what the image should show, e.g. "a watercolour of a lighthouse at dawn". Several prompts: ' +
  '"a lighthouse | stormy sea:0.5"; push away from one: "blurry:-1"; a story: "a seed ^ a sapling ^ an oak".';

export class PromptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PromptError';
  }
}

const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13) || c === 0xa0 || c === 0xfeff;

/** Counts the characters the parser visits (tests check that it is linear in the input length). */
export interface ParseWork {
  steps: number;
}

/**
 * A decimal number (sign, digits, optional fraction, optional exponent) or inf / -inf / +inf, on s[from, to)
 * after trimming; null when it is not exactly one number. At most PROMPT_LIMITS.maxNumberChars are looked at.
 */
function parseNumber(s: string, from: number, to: number, work?: ParseWork): number | null {
  while (from < to && isSpace(s.charCodeAt(from))) from++;
  while (to > from && isSpace(s.charCodeAt(to - 1))) to--;
  if (to - from === 0 || to - from > PROMPT_LIMITS.maxNumberChars) return null;
  if (work) work.steps += to - from;
  let i = from;
  const c0 = s.charCodeAt(i);
  if (c0 === 43 || c0 === 45) i++; // + -
  const rest = s.slice(i, to).toLowerCase();
  if (rest === 'inf' || rest === 'infinity') return c0 === 45 ? -Infinity : Infinity;
  const digitsFrom = (k: number) => {
    while (k < to && s.charCodeAt(k) >= 48 && s.charCodeAt(k) <= 57) k++;
    return k;
  };
  let j = digitsFrom(i);
  let digits = j - i;
  i = j;
  if (i < to && s.charCodeAt(i) === 46) {
    j = digitsFrom(i + 1);
    digits += j - i - 1;
    i = j;
  }
  if (digits === 0) return null;
  if (i < to && (s.charCodeAt(i) === 101 || s.charCodeAt(i) === 69)) {
    i++;
    if (i < to && (s.charCodeAt(i) === 43 || s.charCodeAt(i) === 45)) i++;
    j = digitsFrom(i);
    if (j === i) return null;
    i = j;
  }
  if (i !== to) return null;
  return Number(s.slice(from, to));
}

/** The last `:` in s[from, to), or -1, looking back at most `limit` characters. */
function lastColon(s: string, from: number, to: number, limit: number, work?: ParseWork): number {
  const stop = Math.max(from, to - limit - 1);
  for (let i = to - 1; i >= stop; i--) {
    if (work) work.steps++;
    if (s.charCodeAt(i) === 58) return i;
  }
  return -1;
}

function trimmed(s: string, from: number, to: number): string {
  while (from < to && isSpace(s.charCodeAt(from))) from++;
  while (to > from && isSpace(s.charCodeAt(to - 1))) to--;
  return s.slice(from, to);
}

/** One prompt, s[from, to): `text`, `text:weight` or `text:weight:stop` (numbers only at the end). */
function promptAt(s: string, from: number, to: number, where: string, work?: ParseWork): Prompt {
  if (work) work.steps += to - from;
  while (from < to && isSpace(s.charCodeAt(from))) from++;
  while (to > from && isSpace(s.charCodeAt(to - 1))) to--;
  let textEnd = to;
  let weight = 1;
  let stop = -Infinity;
  const c1 = lastColon(s, from, to, PROMPT_LIMITS.maxNumberChars + 2, work);
  const n1 = c1 >= 0 ? parseNumber(s, c1 + 1, to, work) : null;
  if (n1 !== null) {
    textEnd = c1;
    weight = n1;
    const c2 = lastColon(s, from, c1, PROMPT_LIMITS.maxNumberChars + 2, work);
    const n2 = c2 >= 0 ? parseNumber(s, c2 + 1, c1, work) : null;
    if (n2 !== null) {
      textEnd = c2;
      weight = n2;
      stop = n1;
    }
  }
  const text = trimmed(s, from, textEnd);
  if (!text) {
    throw new PromptError(
      textEnd < to
        ? `${where} ("${trimmed(s, from, to)}") has a weight but no text: write the text before the ":".`
        : `${where} is empty: remove the extra "|" or "^", or write a prompt there. ${EXAMPLE}`,
    );
  }
  if (text.length > PROMPT_LIMITS.maxTextChars) {
    throw new PromptError(
      `${where} is ${text.length} characters long; at most ${PROMPT_LIMITS.maxTextChars} are allowed ` +
        '(CLIP reads only its first 77 tokens).',
    );
  }
  if (!Number.isFinite(weight)) {
    throw new PromptError(`${where} ("${text}") has weight ${weight}: a weight must be a finite number.`);
  }
  if (Number.isNaN(stop) || stop === Infinity) {
    throw new PromptError(
      `${where} ("${text}") has stop ${stop}: a stop must be a number or -inf (no stop); with +inf it would never pull.`,
    );
  }
  return { text, weight, stop };
}

/** One `text:weight:stop`. */
export function parsePrompt(segment: string): Prompt {
  if (segment.length > PROMPT_LIMITS.maxTextChars + 2 * PROMPT_LIMITS.maxNumberChars + 2) {
    throw new PromptError(`The prompt is ${segment.length} characters long; at most ${PROMPT_LIMITS.maxTextChars}.`);
  }
  return promptAt(segment, 0, segment.length, 'The prompt');
}

/**
 * The phrases of a prompt text: split at `^` (story phrases), then at `|` (prompts), each prompt parsed as
 * `text:weight:stop`. Throws PromptError saying what to write for empty input, empty prompts, weights
 * without text, non-finite weights and inputs beyond PROMPT_LIMITS.
 */
export function parsePrompts(input: string, work?: ParseWork): Phrase[] {
  if (input.length > PROMPT_LIMITS.maxChars) {
    throw new PromptError(
      `The prompt text is ${input.length} characters long; at most ${PROMPT_LIMITS.maxChars} are allowed.`,
    );
  }
  let any = false;
  for (let i = 0; i < input.length && !any; i++) {
    if (work) work.steps++;
    any = !isSpace(input.charCodeAt(i));
  }
  if (!any) throw new PromptError(`The prompt is empty. ${EXAMPLE}`);

  const phrases: Phrase[] = [];
  let phrase: Prompt[] = [];
  let total = 0;
  let start = 0;
  // Bounds are checked during the scan, so it stops early on a flood of separators, and a segment's text
  // (from its first to its last non-space character) is never longer than a prompt's text can be plus
  // its numbers.
  const maxSegment = PROMPT_LIMITS.maxTextChars + 2 * (PROMPT_LIMITS.maxNumberChars + 1) + 64;
  let firstText = -1;
  for (let i = 0; i <= input.length; i++) {
    if (work) work.steps++;
    const end = i === input.length;
    const c = end ? 94 : input.charCodeAt(i);
    if (c !== 124 && c !== 94) {
      if (isSpace(c)) continue;
      if (firstText < 0) firstText = i;
      if (i - firstText >= maxSegment) {
        const where = `Prompt ${phrase.length + 1}${phrases.length ? ` of phrase ${phrases.length + 1}` : ''}`;
        throw new PromptError(
          `${where} is over ${maxSegment} characters long; a prompt's text may have at most ` +
            `${PROMPT_LIMITS.maxTextChars} (CLIP reads only its first 77 tokens).`,
        );
      }
      continue;
    }
    const story = phrases.length > 0 || (c === 94 && !end);
    const where = `Prompt ${phrase.length + 1}${story ? ` of phrase ${phrases.length + 1}` : ''}`;
    if (phrase.length >= PROMPT_LIMITS.maxPromptsPerPhrase) {
      throw new PromptError(
        `Phrase ${phrases.length + 1} has more than ${PROMPT_LIMITS.maxPromptsPerPhrase} prompts; ` +
          'join related words into one prompt.',
      );
    }
    if (++total > PROMPT_LIMITS.maxPrompts) {
      throw new PromptError(`More than ${PROMPT_LIMITS.maxPrompts} prompts in all; use fewer phrases or prompts.`);
    }
    phrase.push(promptAt(input, start, i, where, work));
    start = i + 1;
    firstText = -1;
    if (c === 94) {
      if (phrases.length >= PROMPT_LIMITS.maxPhrases) {
        throw new PromptError(`More than ${PROMPT_LIMITS.maxPhrases} story phrases; split the story over runs.`);
      }
      phrases.push(phrase);
      phrase = [];
    }
  }
  return phrases;
}

const num = (x: number) => (x === -Infinity ? '-inf' : String(x));

/** The prompt as `text:weight:stop`, leaving out the defaults where that parses back to the same prompt. */
export function formatPrompt(p: Prompt): string {
  const c = p.text.lastIndexOf(':');
  const ambiguous = c >= 0 && parseNumber(p.text, c + 1, p.text.length) !== null;
  if (p.stop !== -Infinity || ambiguous) return `${p.text}:${num(p.weight)}:${num(p.stop)}`;
  return p.weight === 1 ? p.text : `${p.text}:${num(p.weight)}`;
}
