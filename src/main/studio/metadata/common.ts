// What the per-tool metadata readers share: the shape of a row of the reader table, the parsed
// result, small JSON and character helpers, and the bounds every parsed field is held to.
//
// The readers parse in linear time and return fields as long as the text they read (itself
// bounded by the container: png-chunks.ts, exifmeta.ts); boundFields then cuts what is shown
// and stored to MAX_PROMPT_CHARS per prompt, MAX_PARAMETERS parameters of at most
// MAX_PARAMETER_CHARS characters each (names of at most MAX_PARAMETER_NAME_CHARS), and says what
// was cut, with whatever the reader itself left out, in the NOTE_KEY parameter.
//
// Public API: RawText, Parsed, MetadataReader, MAX_PROMPT_CHARS, MAX_PARAMETERS,
// MAX_PARAMETER_CHARS, MAX_PARAMETER_NAME_CHARS, NOTE_KEY, boundFields, cut, collector, has, isObj,
// str, nonEmpty, tryJson, isSpace, firstNonSpace.
import type { ImageMetadata } from '../../../shared/api.js';

/** Keyword -> text, as found in the file (see textChunkMap). */
export type RawText = Readonly<Record<string, string>>;

/** What a reader makes of the text: the prompts and flat parameters, and what it left out. */
export interface Parsed {
  prompt: string;
  negativePrompt: string | null;
  parameters: Record<string, string>;
  /** What the reader did not read (graph nodes past a bound, ...), in words; shown under NOTE_KEY. */
  notes?: string[];
}

/** One row of the reader table: a tool's format, tried in table order. */
export interface MetadataReader {
  /** The tool, in words (for notes). */
  name: string;
  source: ImageMetadata['source'];
  /** Cheap: are the keywords this format uses there at all? Nothing is parsed. */
  detect(raw: RawText): boolean;
  /** The parsed metadata, or null when the text is not this format after all (the next row is tried). */
  parse(raw: RawText): Parsed | null;
}

/** A prompt or negative prompt is cut to this many characters (64 Ki). */
export const MAX_PROMPT_CHARS = 64 * 1024;
/** At most this many parameters are kept, in the order the reader gave them. */
export const MAX_PARAMETERS = 256;
/** A parameter value is cut to this many characters (16 Ki). */
export const MAX_PARAMETER_CHARS = 16 * 1024;
/** A parameter whose name is longer than this is no parameter name: skipped (and counted). */
export const MAX_PARAMETER_NAME_CHARS = 128;
/** The parameter that says what was cut or left out of the metadata. */
export const NOTE_KEY = 'Metadata note';

/** `s` cut to at most `max` UTF-16 units, never between the two halves of a surrogate pair. */
export function cut(s: string, max: number): string {
  if (s.length <= max) return s;
  const c = s.charCodeAt(max - 1);
  return s.slice(0, c >= 0xd800 && c <= 0xdbff ? max - 1 : max);
}

/**
 * The fields of `p` within the bounds above; what was cut, and the reader's own notes, are
 * appended to the NOTE_KEY parameter (after any such note the text already carried).
 */
export function boundFields(p: Parsed, extraNotes: readonly string[] = []): Omit<Parsed, 'notes'> {
  const notes = [...extraNotes, ...(p.notes ?? [])];
  const field = (what: string, s: string) => {
    if (s.length > MAX_PROMPT_CHARS) notes.push(`${what}: ${s.length} characters, kept the first ${MAX_PROMPT_CHARS}`);
    return cut(s, MAX_PROMPT_CHARS);
  };
  const prompt = field('prompt', p.prompt);
  const negativePrompt = p.negativePrompt === null ? null : field('negative prompt', p.negativePrompt);
  const parameters: Record<string, string> = {};
  let earlier: string | null = null;
  let kept = 0;
  let over = 0;
  let longNames = 0;
  const cutNames: string[] = [];
  let cutValues = 0;
  for (const [k, v] of Object.entries(p.parameters)) {
    if (k === NOTE_KEY) earlier = v;
    else if (k.length > MAX_PARAMETER_NAME_CHARS) longNames++;
    else if (kept >= MAX_PARAMETERS) over++;
    else {
      kept++;
      if (v.length > MAX_PARAMETER_CHARS && cutValues++ < 5) cutNames.push(k);
      parameters[k] = cut(v, MAX_PARAMETER_CHARS);
    }
  }
  if (longNames > 0)
    notes.push(`${longNames} parameter(s) with a name over ${MAX_PARAMETER_NAME_CHARS} characters skipped`);
  if (over > 0) notes.push(`${kept + over} parameters, kept the first ${MAX_PARAMETERS}`);
  if (cutValues > 0)
    notes.push(
      `${cutValues} parameter value(s) cut to ${MAX_PARAMETER_CHARS} characters (${cutNames.join(', ')}` +
        `${cutValues > cutNames.length ? ', ...' : ''})`,
    );
  if (earlier !== null) notes.unshift(earlier);
  if (notes.length > 0) parameters[NOTE_KEY] = cut(notes.join('; '), MAX_PARAMETER_CHARS);
  return { prompt, negativePrompt, parameters };
}

// ---------- helpers for the readers ----------
type Json = unknown;
export const isObj = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
export const str = (v: Json): string | null =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : null;
/** str, with the empty string as null. */
export const nonEmpty = (v: Json): string | null => {
  const s = str(v);
  return s === '' ? null : s;
};
/** A parameters record and its `put`, which keeps non-empty scalar values only (as text). */
export function collector(): [Record<string, string>, (k: string, v: Json) => void] {
  const parameters: Record<string, string> = {};
  const put = (k: string, v: Json) => {
    const s = str(v);
    if (s !== null && s !== '') parameters[k] = s;
  };
  return [parameters, put];
}
/** Own keyword of the raw map (not one inherited from Object.prototype). */
export const has = (raw: RawText, keyword: string): boolean => Object.hasOwn(raw, keyword);

/** JSON.parse (linear in the text), undefined for no text or text that is not JSON. */
export function tryJson(text: string | undefined): Json {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
}

/** Whether UTF-16 unit `c` is matched by the regex class `\s` (for hand-written scanners). */
export function isSpace(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0xa0) return false;
  return (
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000 ||
    c === 0xfeff
  );
}

/** The first character of `s` that is not `\s` ('' for none): how a JSON text is told from others. */
export function firstNonSpace(s: string): string {
  let i = 0;
  while (i < s.length && isSpace(s.charCodeAt(i))) i++;
  return s.charAt(i);
}
