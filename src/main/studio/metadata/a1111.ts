// AUTOMATIC1111's infotext (the `parameters` text chunk, or the EXIF UserComment of a JPEG/WebP):
//   prompt lines
//   Negative prompt: negative lines
//   Steps: 20, Sampler: Euler a, Seed: 42, Lora hashes: "a: 1, b: 2", ...
// Read in one pass, linear in the text: A1111's own parameter regex (modules/infotext_utils.py)
// rescans each word when no `:` follows, quadratic on a long last line, so the line is scanned by
// hand with the same result (tests check the two agree).
//
// Public API: A1111Params, parseA1111, formatA1111, a1111Reader.
import { has, isSpace, type MetadataReader } from './common.js';

export interface A1111Params {
  prompt: string;
  negativePrompt: string | null;
  parameters: Record<string, string>;
}

const COMMA = 0x2c;
const COLON = 0x3a;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** `\w` without the u flag. */
const isWord = (c: number) =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
/** `[\w \-/]`: the characters of a parameter name after its first. */
const isNameChar = (c: number) => isWord(c) || c === 0x20 || c === 0x2d || c === 0x2f;
/** What `.` does not match: the line terminators. */
const isLineTerminator = (c: number) => c === 0x0a || c === 0x0d || c === 0x2028 || c === 0x2029;

function unquote(v: string): string {
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
    try {
      const s: unknown = JSON.parse(v);
      if (typeof s === 'string') return s;
    } catch {
      /* not JSON-quoted after all: keep as written */
    }
  }
  return v;
}

/**
 * Where a quoted value `"(?:\\.|[^\\"])+"` starting at `s` ends, when a comma or the end of the
 * line follows it; -1 otherwise (the value is then everything up to the next comma).
 */
function quotedEnd(line: string, s: number): number {
  if (line.charCodeAt(s) !== QUOTE) return -1;
  let i = s + 1;
  for (; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === QUOTE) break;
    if (c === BACKSLASH) {
      if (i + 1 >= line.length || isLineTerminator(line.charCodeAt(i + 1))) return -1;
      i++;
    }
  }
  if (i >= line.length || i === s + 1) return -1;
  return i + 1 === line.length || line.charCodeAt(i + 1) === COMMA ? i + 1 : -1;
}

/**
 * The `name: value` pairs of A1111's parameter line, as its regex
 * `\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)` finds them with matchAll, in one pass:
 * a name is a whole run of name characters, so a start inside a run that failed fails too and the
 * scan goes on after the run. Null when fewer than 3 pairs (then the line is prompt text).
 */
function parseA1111ParamLine(line: string): Record<string, string> | null {
  const out: Record<string, string> = {};
  const len = line.length;
  let n = 0;
  let p = 0;
  while (p < len) {
    let q = p;
    while (q < len && isSpace(line.charCodeAt(q))) q++;
    if (q >= len) break;
    if (!isWord(line.charCodeAt(q))) {
      p = q + 1;
      continue;
    }
    let r = q + 1;
    while (r < len && isNameChar(line.charCodeAt(r))) r++;
    if (r - q < 2 || line.charCodeAt(r) !== COLON) {
      p = r;
      continue;
    }
    let s = r + 1;
    while (s < len && isSpace(line.charCodeAt(s))) s++;
    let end = quotedEnd(line, s);
    if (end < 0) {
      const comma = line.indexOf(',', s);
      end = comma < 0 ? len : comma;
    }
    out[line.slice(q, r).trim()] = unquote(line.slice(s, end).trim());
    n++;
    p = end < len ? end + 1 : len; // past the comma
  }
  // A1111 treats the last line as parameters only when it has at least 3 of them.
  return n >= 3 ? out : null;
}

/** Reads A1111's infotext. Fields are as long as the text (parseMetadata bounds them). */
export function parseA1111(text: string): A1111Params {
  const lines = text.trim().split('\n');
  let parameters: Record<string, string> = {};
  const last = lines.at(-1) ?? '';
  const parsed = lines.length > 0 ? parseA1111ParamLine(last) : null;
  if (parsed) {
    parameters = parsed;
    lines.pop();
  }
  const prompt: string[] = [];
  const negative: string[] = [];
  let inNegative = false;
  for (const line of lines) {
    if (!inNegative && line.startsWith('Negative prompt:')) {
      inNegative = true;
      negative.push(line.slice('Negative prompt:'.length).trimStart());
    } else (inNegative ? negative : prompt).push(line);
  }
  return {
    prompt: prompt.join('\n').trim(),
    negativePrompt: inNegative ? negative.join('\n').trim() : null,
    parameters,
  };
}

function quoteA1111(v: string): string {
  // A1111 infotext_utils.quote(): JSON-quote values that would break the "k: v, k: v" line.
  return /[,\n:"]/.test(v) ? JSON.stringify(v) : v;
}

/**
 * "prompt\nNegative prompt: ...\nSteps: 20, Sampler: ..., Seed: ..." as A1111 writes it.
 * A1111 reads the last line as parameters only when it holds 3 or more (else it is prompt text,
 * and so would be a prompt's own last line of `a: b, c: d, e: f`): the `fill` pairs not already
 * there are added, in order, until the line has 3.
 */
export function formatA1111(p: A1111Params, fill: readonly (readonly [string, string])[] = []): string {
  const lines = [p.prompt];
  if (p.negativePrompt) lines.push(`Negative prompt: ${p.negativePrompt}`);
  const usable = ([k, v]: readonly [string, string]) => /^\w[\w \-/]+$/.test(k) && v !== '';
  const entries = Object.entries(p.parameters).filter(usable);
  for (const f of fill) if (entries.length < 3 && usable(f) && !Object.hasOwn(p.parameters, f[0])) entries.push([...f]);
  const params = entries.map(([k, v]) => `${k}: ${quoteA1111(v)}`);
  if (params.length > 0) lines.push(params.join(', '));
  return lines.join('\n');
}

export const a1111Reader: MetadataReader = {
  name: 'AUTOMATIC1111',
  source: 'automatic1111',
  detect: (raw) => has(raw, 'parameters'),
  parse: (raw) => parseA1111(raw.parameters!),
};
