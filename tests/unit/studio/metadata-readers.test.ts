// The metadata reader table and its bounds, and the hand-written scanners checked against the
// regexes they replace (AUTOMATIC1111's own parameter regex, InvokeAI's Dream and bracket
// syntax) on many short random texts, where the regexes are still fast.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ImageMetadata } from '../../../src/shared/api.js';
import { formatA1111, parseA1111 } from '../../../src/main/studio/metadata/a1111.js';
import {
  boundFields,
  cut,
  isSpace,
  MAX_PARAMETER_CHARS,
  MAX_PROMPT_CHARS,
  NOTE_KEY,
} from '../../../src/main/studio/metadata/common.js';
import { comfyuiReader } from '../../../src/main/studio/metadata/comfyui.js';
import { parseMetadata, READERS } from '../../../src/main/studio/metadata/index.js';

/** Deterministic pseudo-random texts over `alphabet` (tokens of any length). */
function* randomTexts(seed: number, count: number, alphabet: readonly string[], maxTokens: number) {
  let s = seed >>> 0;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8;
  for (let i = 0; i < count; i++) {
    const n = next() % (maxTokens + 1);
    let t = '';
    for (let k = 0; k < n; k++) t += alphabet[next() % alphabet.length];
    yield t;
  }
}

// ---------- AUTOMATIC1111: the regex of modules/infotext_utils.py as the reference ----------
const A1111_PARAM = /\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/g;

function referenceParameters(line: string): [string, string][] {
  const out: Record<string, string> = {}; // an object, as A1111's dict: integer-like names come first
  let n = 0;
  for (const m of line.matchAll(A1111_PARAM)) {
    n++;
    const v = m[2]!.trim();
    let value = v;
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"'))
      try {
        const j: unknown = JSON.parse(v);
        if (typeof j === 'string') value = j;
      } catch {
        /* kept as written */
      }
    out[m[1]!.trim()] = value;
  }
  return n >= 3 ? Object.entries(out) : []; // fewer than 3 pairs: the line is prompt text
}

describe('AUTOMATIC1111 parameter line, against A1111’s own regex', () => {
  const check = (texts: Iterable<string>) => {
    let withParams = 0;
    const wrong: unknown[] = [];
    for (const line of texts) {
      const want = referenceParameters(line.trim());
      if (want.length > 0) withParams++;
      const got = Object.entries(parseA1111(line).parameters);
      if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push({ line, got, want });
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    return withParams;
  };

  it('agrees on 20,000 random lines of the characters that matter', () => {
    const chars = ['a', 'Z', '_', '7', ' ', '\t', '\r', '\u00a0', '\u2028', ':', ',', '"', '\\', '-', '/', '.', 'é'];
    check(randomTexts(1, 20_000, chars, 24));
  });

  it('agrees on 20,000 random lines of name: value pairs, some broken', () => {
    // A pair is a name, a separator and a value; the joins between pairs are not always commas.
    const names = ['Steps', 'CFG scale', 'a', 'k-v/w', '_1', ' x y ', ''];
    const seps = [': ', ':', ' :', '::', ''];
    const values = [
      '12',
      '"x, y"',
      '"a\\"b"',
      '"',
      '""',
      'v"',
      '"\\',
      ' q ',
      '\t',
      '"é,"',
      '"\\\r, z"',
      '"\\\u2028, z"',
    ];
    const joins = [', ', ',', ' ', '', ',,'];
    const pairs = names.flatMap((n) => seps.flatMap((s) => values.map((v) => n + s + v)));
    const lines = [...randomTexts(2, 20_000, [...pairs, ...joins, ...joins, ...joins], 12)];
    // Many of these lines have 3 pairs or more: values are compared, not only names.
    expect(check(lines)).toBeGreaterThan(2000);
  });
});

// ---------- InvokeAI Dream: the regexes of the earlier reader as the reference ----------
function referenceDream(text: string): { prompt: string; negative: string | null } | null {
  const m = /^\s*"((?:\\.|[^"\\])*)"\s*(.*)$/s.exec(text);
  if (!m) return null;
  const p = m[1]!.replace(/\\"/g, '"');
  const neg = [...p.matchAll(/\[([^\]]*)\]/g)].map((x) => x[1]!.trim());
  if (neg.length === 0) return { prompt: p.trim(), negative: null };
  return {
    prompt: p
      .replace(/\[[^\]]*\]/g, '')
      .replace(/\s+/g, ' ')
      .trim(),
    negative: neg.join(', '),
  };
}

describe('InvokeAI Dream and bracket negatives, against the regexes', () => {
  it('agrees on 20,000 random command lines', () => {
    const chars = ['"', '\\', '[', ']', ' ', '\n', '\u3000', 'a', 'b', '-', 's'];
    let read = 0;
    const wrong: unknown[] = [];
    for (const text of randomTexts(3, 20_000, chars, 20)) {
      const r = referenceDream(text);
      if (r) read++;
      const want = r ? ['invokeai', r.prompt, r.negative] : ['unknown', null, null];
      const m = parseMetadata({ Dream: text });
      const got = [m.source, m.prompt, m.negativePrompt];
      if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push({ text, got, want });
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    expect(read).toBeGreaterThan(1000);
  });

  it('reads the flags after the prompt', () => {
    const m = parseMetadata({ Dream: '  "a \\"quoted\\" word [no]" -s 9 -S 3 -W 64 -H 32 -C 2 -A ddim -x 1' });
    expect(m).toMatchObject({ source: 'invokeai', prompt: 'a "quoted" word', negativePrompt: 'no' });
    expect(m.parameters).toEqual({ Steps: '9', Seed: '3', 'CFG scale': '2', Sampler: 'ddim', Size: '64x32' });
  });
});

// ---------- the table ----------
describe('the reader table', () => {
  afterEach(() => vi.restoreAllMocks());

  it('holds one row per format, in the order they are tried', () => {
    expect(READERS.map((r) => r.name)).toEqual([
      'Foundation Studio',
      'InvokeAI',
      'NovelAI',
      'SwarmUI',
      'ComfyUI',
      'Fooocus',
      'AUTOMATIC1111',
      'InvokeAI 1.x/2.x',
    ]);
    // Each row detects by its own keywords only.
    const detected = (raw: Record<string, string>) => READERS.filter((r) => r.detect(raw)).map((r) => r.name);
    expect(detected({ parameters: 'x', Comment: 'y' })).toEqual(['AUTOMATIC1111']);
    expect(detected({ workflow: '{}', Dream: '"x"' })).toEqual(['ComfyUI', 'InvokeAI 1.x/2.x']);
    expect(detected({ Software: 'NovelAI', Comment: '{}' })).toEqual(['NovelAI']);
    expect(detected({ Title: 'AI generated image', Comment: '{}' })).toEqual(['NovelAI']);
    expect(detected({ Title: 'AI generated image', Description: 'no Comment' })).toEqual([]);
    expect(detected({ parameters: '{"sui_image_params": {}}' })).toEqual(['SwarmUI', 'AUTOMATIC1111']);
    expect(detected({ parameters: ' {"full_prompt": []}' })).toEqual(['Fooocus', 'AUTOMATIC1111']);
    expect(detected({ parameters: 'p\nSteps: 1', fooocus_scheme: 'a1111' })).toEqual(['Fooocus', 'AUTOMATIC1111']);
    expect(detected({ parameters: 'p\nSteps: 1, Seed: 2, Version: Fooocus v2.5.5' })).toEqual([
      'Fooocus',
      'AUTOMATIC1111',
    ]);
    expect(detected({ parameters: '{"prompt": "an A1111 prompt that is JSON"}' })).toEqual(['AUTOMATIC1111']);
  });

  it('a reader that throws is passed over, said so, and the raw text is kept', () => {
    vi.spyOn(comfyuiReader, 'parse').mockImplementation(() => {
      throw new RangeError('Maximum call stack size exceeded');
    });
    const alone = parseMetadata({ prompt: '{}' });
    expect(alone).toMatchObject({ source: 'unknown', prompt: null, raw: { prompt: '{}' } });
    expect(alone.parameters).toEqual({
      [NOTE_KEY]: 'the ComfyUI metadata could not be read (Maximum call stack size exceeded)',
    });
    const withA1111 = parseMetadata({ prompt: '{}', parameters: 'cat\nSteps: 1, Seed: 2, Size: 3x3' });
    expect(withA1111).toMatchObject({ source: 'automatic1111', prompt: 'cat' });
    expect(withA1111.parameters[NOTE_KEY]).toMatch(/^the ComfyUI metadata could not be read/);
    expect(ImageMetadata.safeParse(withA1111).success).toBe(true);
  });
});

// ---------- bounds ----------
describe('field bounds', () => {
  it('cuts prompts and values at their bounds and says what was cut, after an earlier note', () => {
    const b = boundFields(
      {
        prompt: 'p'.repeat(MAX_PROMPT_CHARS + 1),
        negativePrompt: 'short',
        parameters: {
          [NOTE_KEY]: 'cut before',
          a: 'v'.repeat(MAX_PARAMETER_CHARS),
          b: 'w'.repeat(MAX_PARAMETER_CHARS + 5),
        },
        notes: ['the reader’s own'],
      },
      ['the container’s'],
    );
    expect(b.prompt).toHaveLength(MAX_PROMPT_CHARS);
    expect(b.negativePrompt).toBe('short');
    expect(b.parameters.a).toHaveLength(MAX_PARAMETER_CHARS); // at the bound: kept whole
    expect(b.parameters.b).toBe('w'.repeat(MAX_PARAMETER_CHARS));
    expect(b.parameters[NOTE_KEY]).toBe(
      [
        'cut before',
        'the container’s',
        'the reader’s own',
        `prompt: ${MAX_PROMPT_CHARS + 1} characters, kept the first ${MAX_PROMPT_CHARS}`,
        `1 parameter value(s) cut to ${MAX_PARAMETER_CHARS} characters (b)`,
      ].join('; '),
    );
  });

  it('names at most 5 of the values it cut', () => {
    const parameters = Object.fromEntries(
      Array.from({ length: 7 }, (_, i) => [`p${i}`, 'x'.repeat(MAX_PARAMETER_CHARS + 1)]),
    );
    const b = boundFields({ prompt: '', negativePrompt: null, parameters });
    expect(b.parameters[NOTE_KEY]).toBe(
      `7 parameter value(s) cut to ${MAX_PARAMETER_CHARS} characters (p0, p1, p2, p3, p4, ...)`,
    );
  });

  it('never cuts between the halves of a surrogate pair', () => {
    expect(cut('ab🐈', 3)).toBe('ab');
    expect(cut('ab🐈', 4)).toBe('ab🐈');
    expect(cut('abc', 2)).toBe('ab');
  });

  it('a note survives an export in A1111’s format and a re-import', () => {
    const first = parseMetadata({ parameters: `${'p'.repeat(MAX_PROMPT_CHARS + 10)}\nSteps: 1, Seed: 2, Size: 3x3` });
    const text = formatA1111({ prompt: first.prompt!, negativePrompt: null, parameters: first.parameters });
    const again = parseMetadata({ parameters: text });
    expect(again.prompt).toBe(first.prompt);
    expect(again.parameters).toEqual(first.parameters);
  });

  it('isSpace is exactly the regex class \\s', () => {
    const wrong: number[] = [];
    for (let c = 0; c <= 0xffff; c++) if (isSpace(c) !== /\s/.test(String.fromCharCode(c))) wrong.push(c);
    expect(wrong).toEqual([]);
    expect(isSpace(0x20) && isSpace(0x3000) && !isSpace(0x41)).toBe(true);
  });
});
