// The prompt string of a run, as the tools users know write it: `text:weight:stop` for each prompt,
// prompts joined by `|`, story phrases joined by `^` ("a red room:1|walls of eyes:0.5^a blue room").
// The editor shows rows; these turn rows into the string and back (a pasted or remixed prompt).

export interface PromptRow {
  /** Keys the row in the editor's list (stable while the row is edited). */
  key: number;
  text: string;
  weight: number;
  /** Stop pulling toward the prompt once its loss is below this; null: never. */
  stop: number | null;
}

let nextKey = 1;
export const rowKey = (): number => nextKey++;

export function emptyRow(text = ''): PromptRow {
  return { key: rowKey(), text, weight: 1, stop: null };
}

/** The characters that separate prompts (`|`) and story phrases (`^`); a `:` may stay in a text. */
export const RESERVED = /[|^]/;

/** What is wrong with a prompt's text, in words, or null. */
export function textProblem(text: string): string | null {
  const m = RESERVED.exec(text);
  if (!m) return null;
  return `“${m[0]}” separates ${m[0] === '|' ? 'prompts' : 'story phrases'}: add another ${m[0] === '|' ? 'prompt row' : 'story phrase'} instead.`;
}

const numeric = (s: string): number | null => {
  const t = s.trim();
  if (t === '') return null;
  if (/^-?inf(inity)?$/i.test(t)) return t.startsWith('-') ? -Infinity : Infinity;
  const n = Number(t);
  return Number.isFinite(n) ? n : null;
};

/**
 * One `text:weight:stop`: trailing parts count only when they are numbers (so "a map: the old town" stays
 * text), at most two of them, as the studio's parser reads it.
 */
export function parsePrompt(part: string): PromptRow {
  const pieces = part.split(':');
  const nums: number[] = [];
  while (pieces.length > 1 && nums.length < 2) {
    const n = numeric(pieces[pieces.length - 1]!);
    if (n === null) break;
    nums.unshift(n);
    pieces.pop();
  }
  const [weight = 1, stop = -Infinity] = nums;
  return {
    key: rowKey(),
    text: pieces.join(':').trim(),
    weight: Number.isFinite(weight) ? weight : 1,
    stop: Number.isFinite(stop) ? stop : null,
  };
}

/** The whole string: story phrases, each a list of rows (empty parts dropped, at least one row each). */
export function parsePrompts(s: string): PromptRow[][] {
  const phrases = s.split('^').map((phrase) =>
    phrase
      .split('|')
      .filter((p) => p.trim() !== '')
      .map(parsePrompt),
  );
  const kept = phrases.filter((rows) => rows.length > 0);
  return kept.length > 0 ? kept : [[emptyRow()]];
}

const num = (n: number): string => String(Number(n.toPrecision(6)));

export function formatPrompt(row: Pick<PromptRow, 'text' | 'weight' | 'stop'>): string {
  const text = row.text.trim();
  const stop = typeof row.stop === 'number' && Number.isFinite(row.stop) ? num(row.stop) : null;
  // A text that ends in ":<number>" would lose it to the weight: write weight and stop out.
  const endsLikeWeight = parsePrompt(text).text !== text;
  if (stop !== null || endsLikeWeight) return `${text}:${num(row.weight)}:${stop ?? '-inf'}`;
  return row.weight === 1 ? text : `${text}:${num(row.weight)}`;
}

/** Rows back to the string; rows without text are left out. */
export function formatPrompts(phrases: readonly (readonly PromptRow[])[]): string {
  return phrases
    .map((rows) =>
      rows
        .filter((r) => r.text.trim() !== '')
        .map(formatPrompt)
        .join('|'),
    )
    .filter((p) => p !== '')
    .join('^');
}
