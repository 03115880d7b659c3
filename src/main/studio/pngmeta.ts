// PNG text chunks by hand (sharp cannot write arbitrary ones) and the parsers for the
// metadata other tools leave in them. Pure: node:zlib only, no sharp, no I/O.
//
// Chunk layout (PNG spec §5.3): length (u32 BE) | type (4 ASCII) | data | CRC-32 over type+data.
// tEXt: keyword NUL Latin-1 text. zTXt: keyword NUL method(0) zlib(Latin-1 text).
// iTXt: keyword NUL compressed-flag method language-tag NUL translated-keyword NUL UTF-8 text.
import { deflateSync, inflateSync } from 'node:zlib';
import type { ImageMetadata } from '../../shared/api.js';

export const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
/** Keyword of our own iTXt chunk (JSON, UTF-8). */
export const OUR_KEYWORD = 'foundation-studio';
/** A zTXt/iTXt chunk that inflates past this is skipped: text metadata is never this big. */
const MAX_INFLATED_TEXT = 8 * 1024 * 1024;
/**
 * Per file: at most this much text in all (after inflating) and this many text chunks are
 * read; past either, the rest are ignored (and said so), so a file of many small compressed
 * chunks cannot inflate into gigabytes.
 */
export const MAX_TEXT_TOTAL = 16 * 1024 * 1024;
export const MAX_TEXT_CHUNKS = 256;
/** The raw-map key that says text chunks were ignored (not a valid PNG keyword: it starts with a space). */
export const IGNORED_TEXT_KEY = ' ignored text chunks';

// ---------- CRC-32 (ISO 3309 / PNG Annex D), table-driven ----------
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 of `bytes`; pass a previous result as `crc` to continue over more bytes. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

// ---------- chunks ----------
export interface PngChunk {
  type: string;
  data: Uint8Array;
}

export function isPng(buf: Uint8Array): boolean {
  if (buf.length < PNG_SIGNATURE.length) return false;
  for (let i = 0; i < PNG_SIGNATURE.length; i++) if (buf[i] !== PNG_SIGNATURE[i]) return false;
  return true;
}

export class PngFormatError extends Error {
  override name = 'PngFormatError';
}

const ascii = (b: Uint8Array) => String.fromCharCode(...b);
const latin1Decode = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
const utf8Decode = (b: Uint8Array) => new TextDecoder('utf-8', { fatal: false }).decode(b);

/**
 * Every chunk up to and including IEND. Checks the signature, lengths and each CRC;
 * `strict: false` skips the CRC check (for reading text out of slightly damaged files).
 */
export function readChunks(png: Uint8Array, { strict = true } = {}): PngChunk[] {
  if (!isPng(png)) throw new PngFormatError('not a PNG file (bad signature)');
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const chunks: PngChunk[] = [];
  let pos = 8;
  while (pos + 12 <= png.length) {
    const length = view.getUint32(pos);
    const type = ascii(png.subarray(pos + 4, pos + 8));
    if (!/^[A-Za-z]{4}$/.test(type)) throw new PngFormatError(`bad chunk type at byte ${pos}`);
    const end = pos + 12 + length;
    if (end > png.length)
      throw new PngFormatError(`chunk ${type} at byte ${pos} runs past the end of the file (truncated?)`);
    const data = png.subarray(pos + 8, pos + 8 + length);
    if (strict) {
      const want = view.getUint32(pos + 8 + length);
      const got = crc32(png.subarray(pos + 4, pos + 8 + length));
      if (want !== got) throw new PngFormatError(`CRC mismatch in chunk ${type} at byte ${pos}`);
    }
    chunks.push({ type, data });
    pos = end;
    if (type === 'IEND') return chunks;
  }
  throw new PngFormatError('no IEND chunk (truncated PNG)');
}

/** Serialises chunks (signature first), computing lengths and CRCs. */
export function writeChunks(chunks: readonly PngChunk[]): Uint8Array<ArrayBuffer> {
  const total = 8 + chunks.reduce((n, c) => n + 12 + c.data.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  out.set(PNG_SIGNATURE, 0);
  let pos = 8;
  for (const c of chunks) {
    if (!/^[A-Za-z]{4}$/.test(c.type)) throw new PngFormatError(`bad chunk type ${JSON.stringify(c.type)}`);
    view.setUint32(pos, c.data.length);
    for (let i = 0; i < 4; i++) out[pos + 4 + i] = c.type.charCodeAt(i);
    out.set(c.data, pos + 8);
    view.setUint32(pos + 8 + c.data.length, crc32(out.subarray(pos + 4, pos + 8 + c.data.length)));
    pos += 12 + c.data.length;
  }
  return out;
}

// ---------- text chunks ----------
export interface TextChunk {
  keyword: string;
  text: string;
  /** Chunk type; the writer picks iTXt for text that is not Latin-1 whatever is asked. */
  kind: 'tEXt' | 'zTXt' | 'iTXt';
  /** iTXt only: store the text zlib-compressed. */
  compressed?: boolean;
  languageTag?: string;
  translatedKeyword?: string;
}

const TEXT_TYPES = new Set(['tEXt', 'zTXt', 'iTXt']);

function checkKeyword(keyword: string): void {
  // PNG §11.3.4.2: 1-79 Latin-1 printable characters, no leading/trailing/double spaces.
  if (!/^[\x20-\x7e\xa1-\xff]{1,79}$/.test(keyword) || /^ | $| {2}/.test(keyword))
    throw new PngFormatError(`invalid PNG text keyword ${JSON.stringify(keyword)} (1-79 Latin-1 characters)`);
}

function isLatin1(s: string): boolean {
  // Latin-1 text chunks allow LF but no other control characters; anything else goes to iTXt.
  return /^[\n\x20-\x7e\xa0-\xff]*$/.test(s);
}

/** Set when the last inflateLimited call failed for being over its limit (not for bad data). */
let overLimit = false;

function inflateLimited(data: Uint8Array, limit = MAX_INFLATED_TEXT): Uint8Array | null {
  overLimit = false;
  try {
    return inflateSync(data, { maxOutputLength: Math.max(1, Math.min(limit, MAX_INFLATED_TEXT)) });
  } catch (e) {
    overLimit = (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
    return null; // corrupt or over the limit: skip this chunk, keep reading the others
  }
}

/** The keyword of a text chunk, without inflating anything; null for other chunks or a malformed one. */
export function textChunkKeyword(chunk: PngChunk): string | null {
  if (!TEXT_TYPES.has(chunk.type)) return null;
  const nul = chunk.data.indexOf(0);
  return nul < 1 ? null : latin1Decode(chunk.data.subarray(0, nul));
}

/** The keywords of a PNG's text chunks, in file order (cheap: nothing is inflated). */
export function textKeywords(png: Uint8Array): string[] {
  const out: string[] = [];
  for (const c of readChunks(png, { strict: false })) {
    const k = textChunkKeyword(c);
    if (k !== null) out.push(k);
  }
  return out;
}

/**
 * Decodes one tEXt/zTXt/iTXt chunk; null when it is not a text chunk, is malformed, or its
 * compressed text inflates past `inflateLimit` bytes.
 */
export function decodeTextChunk(chunk: PngChunk, inflateLimit = MAX_INFLATED_TEXT): TextChunk | null {
  overLimit = false;
  if (!TEXT_TYPES.has(chunk.type)) return null;
  const d = chunk.data;
  const nul = d.indexOf(0);
  if (nul < 1) return null;
  const keyword = latin1Decode(d.subarray(0, nul));
  if (chunk.type === 'tEXt') return { keyword, text: latin1Decode(d.subarray(nul + 1)), kind: 'tEXt' };
  if (chunk.type === 'zTXt') {
    if (d[nul + 1] !== 0) return null; // only method 0 (zlib) exists
    const raw = inflateLimited(d.subarray(nul + 2), inflateLimit);
    return raw ? { keyword, text: latin1Decode(raw), kind: 'zTXt' } : null;
  }
  // iTXt
  const compressed = d[nul + 1] === 1;
  if (compressed && d[nul + 2] !== 0) return null;
  const langEnd = d.indexOf(0, nul + 3);
  if (langEnd < 0) return null;
  const tkEnd = d.indexOf(0, langEnd + 1);
  if (tkEnd < 0) return null;
  const languageTag = latin1Decode(d.subarray(nul + 3, langEnd));
  const translatedKeyword = utf8Decode(d.subarray(langEnd + 1, tkEnd));
  let body: Uint8Array | null = d.subarray(tkEnd + 1);
  if (compressed) body = inflateLimited(body, inflateLimit);
  if (!body) return null;
  return { keyword, text: utf8Decode(body), kind: 'iTXt', compressed, languageTag, translatedKeyword };
}

/** Builds one text chunk. Text that Latin-1 cannot hold is written as iTXt (UTF-8). */
export function encodeTextChunk(t: TextChunk): PngChunk {
  checkKeyword(t.keyword);
  const kind = t.kind !== 'iTXt' && !isLatin1(t.text) ? 'iTXt' : t.kind;
  const kw = Buffer.from(t.keyword, 'latin1');
  if (kind === 'tEXt') return { type: 'tEXt', data: Buffer.concat([kw, Buffer.of(0), Buffer.from(t.text, 'latin1')]) };
  if (kind === 'zTXt')
    return { type: 'zTXt', data: Buffer.concat([kw, Buffer.of(0, 0), deflateSync(Buffer.from(t.text, 'latin1'))]) };
  const utf8 = Buffer.from(t.text, 'utf8');
  const body = t.compressed ? deflateSync(utf8) : utf8;
  return {
    type: 'iTXt',
    data: Buffer.concat([
      kw,
      Buffer.of(0, t.compressed ? 1 : 0, 0),
      Buffer.from(t.languageTag ?? '', 'latin1'),
      Buffer.of(0),
      Buffer.from(t.translatedKeyword ?? '', 'utf8'),
      Buffer.of(0),
      body,
    ]),
  };
}

/**
 * Every readable text chunk in file order, within MAX_TEXT_CHUNKS chunks and MAX_TEXT_TOTAL
 * bytes of text; `ignored` counts the text chunks past those limits (not read). Damaged CRCs
 * are tolerated here (metadata is best effort).
 */
export function readTextChunksLimited(
  png: Uint8Array,
  limits: { maxChunks?: number; maxTotal?: number } = {},
): { chunks: TextChunk[]; ignored: number } {
  const maxChunks = limits.maxChunks ?? MAX_TEXT_CHUNKS;
  const maxTotal = limits.maxTotal ?? MAX_TEXT_TOTAL;
  const chunks: TextChunk[] = [];
  let seen = 0;
  let total = 0;
  let ignored = 0;
  let full = false;
  for (const c of readChunks(png, { strict: false })) {
    if (!TEXT_TYPES.has(c.type)) continue;
    if (full || seen >= maxChunks) {
      ignored++;
      continue;
    }
    seen++;
    // A compressed chunk inflating past what is left of the budget stops there, uninflated beyond it.
    const left = maxTotal - total;
    const t = decodeTextChunk(c, left + 1);
    const tooBig = t === null && overLimit && left < MAX_INFLATED_TEXT;
    const size = t ? Buffer.byteLength(t.keyword, 'latin1') + Buffer.byteLength(t.text, 'utf8') : 0;
    if (tooBig || size > left) {
      // Over the budget: stop reading text (the chunks after this one are not even inflated).
      full = true;
      ignored++;
      continue;
    }
    total += size;
    if (t) chunks.push(t);
  }
  return { chunks, ignored };
}

/** readTextChunksLimited without the count of what was ignored. */
export function readTextChunks(png: Uint8Array): TextChunk[] {
  return readTextChunksLimited(png).chunks;
}

/**
 * Adds text chunks to a PNG, before the first IDAT (so readers that stop at the image data
 * still see them). Existing text chunks whose keyword is in `replace` are dropped first;
 * every other chunk is kept as it was.
 */
export function insertTextChunks(
  png: Uint8Array,
  texts: readonly TextChunk[],
  replace: readonly string[] = [],
): Uint8Array<ArrayBuffer> {
  const drop = new Set(replace);
  const kept = readChunks(png).filter((c) => {
    const k = textChunkKeyword(c);
    return !(k !== null && drop.has(k));
  });
  const at = kept.findIndex((c) => c.type === 'IDAT' || c.type === 'IEND');
  if (at < 1) throw new PngFormatError('PNG has no IDAT/IEND after its header');
  return writeChunks([...kept.slice(0, at), ...texts.map(encodeTextChunk), ...kept.slice(at)]);
}

// ---------- AUTOMATIC1111 "parameters" ----------
export interface A1111Params {
  prompt: string;
  negativePrompt: string | null;
  parameters: Record<string, string>;
}

// A1111 modules/infotext_utils.py: `\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)`
const A1111_PARAM = /\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)/g;

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

function parseA1111ParamLine(line: string): Record<string, string> | null {
  const out: Record<string, string> = {};
  let n = 0;
  for (const m of line.matchAll(A1111_PARAM)) {
    out[m[1]!.trim()] = unquote(m[2]!.trim());
    n++;
  }
  // A1111 treats the last line as parameters only when it has at least 3 of them.
  return n >= 3 ? out : null;
}

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

/** "prompt\nNegative prompt: ...\nSteps: 20, Sampler: ..., Seed: ..." as A1111 writes it. */
export function formatA1111(p: A1111Params): string {
  const lines = [p.prompt];
  if (p.negativePrompt) lines.push(`Negative prompt: ${p.negativePrompt}`);
  const params = Object.entries(p.parameters)
    .filter(([k, v]) => /^\w[\w \-/]+$/.test(k) && v !== '')
    .map(([k, v]) => `${k}: ${quoteA1111(v)}`);
  if (params.length > 0) lines.push(params.join(', '));
  return lines.join('\n');
}

// ---------- ComfyUI "prompt" (API graph) and "workflow" (UI graph) ----------
type Json = unknown;
const isObj = (v: Json): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: Json): string | null =>
  typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : null;

function tryJson(text: string | undefined): Json {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
}

const SAMPLERS = ['KSampler', 'KSamplerAdvanced', 'SamplerCustom', 'SamplerCustomAdvanced'];
const TEXT_ENCODERS = /^CLIPTextEncode/;

function parseComfyApi(graph: Record<string, Json>): A1111Params | null {
  const node = (id: Json): { class_type: string; inputs: Record<string, Json> } | null => {
    const n = graph[String(id)];
    if (!isObj(n) || typeof n.class_type !== 'string') return null;
    return { class_type: n.class_type, inputs: isObj(n.inputs) ? n.inputs : {} };
  };
  const isLink = (v: Json): v is [string | number, number] =>
    Array.isArray(v) && v.length === 2 && typeof v[1] === 'number';
  // A widget value may be a link to a primitive node (seed generators, string nodes): follow a few hops.
  const value = (v: Json, depth = 0): string | null => {
    if (!isLink(v)) return str(v);
    const n = node(v[0]);
    if (!n || depth > 4) return null;
    for (const k of ['value', 'seed', 'noise_seed', 'text', 'string', 'int', 'float']) {
      if (k in n.inputs) return value(n.inputs[k], depth + 1);
    }
    return null;
  };
  // Conditioning may pass through combine/concat/controlnet nodes: collect every text encoder upstream.
  const texts = (v: Json, seen = new Set<string>()): string[] => {
    if (!isLink(v) || seen.has(String(v[0]))) return [];
    seen.add(String(v[0]));
    const n = node(v[0]);
    if (!n) return [];
    if (TEXT_ENCODERS.test(n.class_type)) {
      const t = value(n.inputs.text ?? n.inputs.text_g ?? n.inputs.text_l);
      return t === null ? [] : [t];
    }
    return Object.values(n.inputs).flatMap((x) => texts(x, seen));
  };
  const upstream = (v: Json, key: string, depth = 0): Json => {
    if (!isLink(v) || depth > 16) return undefined;
    const n = node(v[0]);
    if (!n) return undefined;
    return key in n.inputs && !isLink(n.inputs[key])
      ? n.inputs[key]
      : upstream(n.inputs.model ?? n.inputs.samples, key, depth + 1);
  };

  const samplerId = Object.keys(graph).find((id) => SAMPLERS.includes(node(id)?.class_type ?? ''));
  if (samplerId === undefined) {
    // No sampler we know: still show the text of any encoder.
    const all = Object.values(graph).flatMap((n) =>
      isObj(n) && typeof n.class_type === 'string' && TEXT_ENCODERS.test(n.class_type) && isObj(n.inputs)
        ? [str(n.inputs.text)].filter((t): t is string => t !== null)
        : [],
    );
    return all.length ? { prompt: all.join('\n'), negativePrompt: null, parameters: {} } : null;
  }
  const s = node(samplerId)!;
  const guider = isLink(s.inputs.guider) ? node(s.inputs.guider[0]) : null;
  const positive = texts(s.inputs.positive ?? guider?.inputs.positive ?? guider?.inputs.conditioning);
  const negative = texts(s.inputs.negative ?? guider?.inputs.negative);
  const parameters: Record<string, string> = {};
  const put = (k: string, v: string | null) => {
    if (v !== null && v !== '') parameters[k] = v;
  };
  put('Steps', value(s.inputs.steps));
  put('Sampler', value(s.inputs.sampler_name));
  put('Scheduler', value(s.inputs.scheduler));
  put('CFG scale', value(s.inputs.cfg ?? guider?.inputs.cfg));
  put('Seed', value(s.inputs.seed ?? s.inputs.noise_seed));
  put('Denoise', value(s.inputs.denoise));
  const latent = isLink(s.inputs.latent_image) ? node(s.inputs.latent_image[0]) : null;
  if (latent && 'width' in latent.inputs) put('Size', `${value(latent.inputs.width)}x${value(latent.inputs.height)}`);
  put('Model', str(upstream(s.inputs.model, 'ckpt_name') ?? upstream(s.inputs.model, 'unet_name')));
  return { prompt: positive.join('\n'), negativePrompt: negative.length ? negative.join('\n') : null, parameters };
}

function parseComfyWorkflow(wf: Record<string, Json>): A1111Params | null {
  // UI format: nodes[] with {id, type, inputs: [{name, link}], widgets_values}, links[] as
  // [id, from_node, from_slot, to_node, to_slot, type].
  const nodes = Array.isArray(wf.nodes) ? wf.nodes.filter(isObj) : [];
  const links = Array.isArray(wf.links) ? wf.links : [];
  const byId = new Map(nodes.map((n) => [String(n.id), n]));
  const from = (linkId: Json) => {
    const l = links.find((x): x is Json[] => Array.isArray(x) && x[0] === linkId);
    return l ? byId.get(String(l[1])) : undefined;
  };
  const widgets = (n: Record<string, Json> | undefined) =>
    n && Array.isArray(n.widgets_values) ? n.widgets_values : [];
  const inputLink = (n: Record<string, Json>, name: string): Json => {
    const ins = Array.isArray(n.inputs) ? n.inputs.filter(isObj) : [];
    return ins.find((i) => i.name === name)?.link;
  };
  const sampler = nodes.find((n) => n.type === 'KSampler' || n.type === 'KSamplerAdvanced');
  if (!sampler) return null;
  const textOf = (name: string) => {
    const n = from(inputLink(sampler, name));
    return n && typeof n.type === 'string' && TEXT_ENCODERS.test(n.type) ? str(widgets(n)[0]) : null;
  };
  const w = widgets(sampler);
  const parameters: Record<string, string> = {};
  // KSampler widgets: seed, control_after_generate, steps, cfg, sampler_name, scheduler, denoise.
  // KSamplerAdvanced: add_noise, noise_seed, control, steps, cfg, sampler_name, scheduler, ...
  const o = sampler.type === 'KSampler' ? 0 : 1;
  const put = (k: string, v: Json) => {
    const s = str(v);
    if (s !== null && s !== '') parameters[k] = s;
  };
  put('Seed', w[o]);
  put('Steps', w[o + 2]);
  put('CFG scale', w[o + 3]);
  put('Sampler', w[o + 4]);
  put('Scheduler', w[o + 5]);
  return { prompt: textOf('positive') ?? '', negativePrompt: textOf('negative'), parameters };
}

// ---------- InvokeAI ----------
function parseInvokeMetadata(m: Record<string, Json>): A1111Params {
  const parameters: Record<string, string> = {};
  const put = (k: string, v: Json) => {
    const s = str(v);
    if (s !== null && s !== '') parameters[k] = s;
  };
  put('Seed', m.seed);
  put('Steps', m.steps);
  put('CFG scale', m.cfg_scale);
  put('Scheduler', m.scheduler);
  if (m.width !== undefined && m.height !== undefined) put('Size', `${str(m.width)}x${str(m.height)}`);
  const model = isObj(m.model) ? (m.model.model_name ?? m.model.name) : m.model;
  put('Model', model);
  if (isObj(m.model)) put('Model base', m.model.base_model ?? m.model.base);
  put('Mode', m.generation_mode);
  put('Strength', m.strength);
  return { prompt: str(m.positive_prompt) ?? '', negativePrompt: str(m.negative_prompt), parameters };
}

/** InvokeAI 2.x: prompt text may carry the negative in [brackets]. */
function splitBracketNegative(p: string): { prompt: string; negative: string | null } {
  const neg = [...p.matchAll(/\[([^\]]*)\]/g)].map((m) => m[1]!.trim());
  if (neg.length === 0) return { prompt: p.trim(), negative: null };
  return {
    prompt: p
      .replace(/\[[^\]]*\]/g, '')
      .replace(/\s+/g, ' ')
      .trim(),
    negative: neg.join(', '),
  };
}

function parseSdMetadata(m: Record<string, Json>): A1111Params | null {
  const img = isObj(m.image) ? m.image : null;
  if (!img) return null;
  const rawPrompt = Array.isArray(img.prompt)
    ? img.prompt
        .filter(isObj)
        .map((p) => str(p.prompt) ?? '')
        .join(' ')
    : (str(img.prompt) ?? '');
  const { prompt, negative } = splitBracketNegative(rawPrompt);
  const parameters: Record<string, string> = {};
  const put = (k: string, v: Json) => {
    const s = str(v);
    if (s !== null && s !== '') parameters[k] = s;
  };
  put('Seed', img.seed);
  put('Steps', img.steps);
  put('CFG scale', img.cfg_scale);
  put('Sampler', img.sampler);
  if (img.width !== undefined) put('Size', `${str(img.width)}x${str(img.height)}`);
  put('Model', m.model_weights);
  put('Model hash', m.model_hash);
  put('Version', m.app_version);
  return { prompt, negativePrompt: negative, parameters };
}

/** InvokeAI 1.x/2.x "Dream" chunk: `"a prompt [neg]" -s 50 -S 42 -W 512 -H 512 -C 7.5 -A k_lms`. */
function parseDream(text: string): A1111Params | null {
  const m = /^\s*"((?:\\.|[^"\\])*)"\s*(.*)$/s.exec(text);
  if (!m) return null;
  const { prompt, negative } = splitBracketNegative(m[1]!.replace(/\\"/g, '"'));
  const names: Record<string, string> = {
    s: 'Steps',
    S: 'Seed',
    W: 'Width',
    H: 'Height',
    C: 'CFG scale',
    A: 'Sampler',
  };
  const parameters: Record<string, string> = {};
  for (const f of m[2]!.matchAll(/-([A-Za-z])\s*([^\s-][^\s]*)/g)) {
    const k = names[f[1]!];
    if (k) parameters[k] = f[2]!;
  }
  if (parameters.Width && parameters.Height) {
    parameters.Size = `${parameters.Width}x${parameters.Height}`;
    delete parameters.Width;
    delete parameters.Height;
  }
  return { prompt, negativePrompt: negative, parameters };
}

// ---------- our own chunk ----------
/** The JSON we write into the `foundation-studio` iTXt chunk. */
export interface OurChunk {
  format: 'foundation-studio/1';
  prompt: string | null;
  negativePrompt: string | null;
  parameters: Record<string, string>;
  [extra: string]: unknown;
}

export function ourChunkText(c: Omit<OurChunk, 'format'>): string {
  return JSON.stringify({ format: 'foundation-studio/1', ...c });
}

function parseOurs(text: string): A1111Params | null {
  const j = tryJson(text);
  if (!isObj(j)) return null;
  const parameters: Record<string, string> = {};
  if (isObj(j.parameters))
    for (const [k, v] of Object.entries(j.parameters)) if (str(v) !== null) parameters[k] = str(v)!;
  return { prompt: str(j.prompt) ?? '', negativePrompt: str(j.negativePrompt), parameters };
}

// ---------- dispatch ----------
/** The raw keyword -> text map; a repeated keyword gets `#2`, `#3`... so nothing is lost. */
export function textChunkMap(chunks: readonly TextChunk[]): Record<string, string> {
  const raw: Record<string, string> = {};
  for (const c of chunks) {
    let k = c.keyword;
    for (let i = 2; k in raw; i++) k = `${c.keyword}#${i}`;
    raw[k] = c.text;
  }
  return raw;
}

/** Recognises the tool that wrote these text chunks, most specific format first. */
export function parseMetadata(raw: Record<string, string>): ImageMetadata {
  const done = (source: ImageMetadata['source'], p: A1111Params | null): ImageMetadata | null =>
    p ? { source, prompt: p.prompt, negativePrompt: p.negativePrompt, parameters: p.parameters, raw } : null;
  const attempts: Array<() => ImageMetadata | null> = [
    () => (raw[OUR_KEYWORD] !== undefined ? done('foundation-studio', parseOurs(raw[OUR_KEYWORD])) : null),
    () => {
      const j = tryJson(raw.invokeai_metadata);
      return isObj(j) ? done('invokeai', parseInvokeMetadata(j)) : null;
    },
    () => {
      const api = tryJson(raw.prompt);
      if (isObj(api)) {
        const r = parseComfyApi(api);
        if (r) return done('comfyui', r);
      }
      const wf = tryJson(raw.workflow);
      return isObj(wf) ? done('comfyui', parseComfyWorkflow(wf)) : null;
    },
    () => (raw.parameters !== undefined ? done('automatic1111', parseA1111(raw.parameters)) : null),
    () => {
      const j = tryJson(raw['sd-metadata']);
      return isObj(j) ? done('invokeai', parseSdMetadata(j)) : null;
    },
    () => (raw.Dream !== undefined ? done('invokeai', parseDream(raw.Dream)) : null),
  ];
  for (const attempt of attempts) {
    const r = attempt();
    if (r) return r;
  }
  const source = Object.keys(raw).length ? 'unknown' : 'none';
  return { source, prompt: null, negativePrompt: null, parameters: {}, raw };
}

/** Metadata of any image file: PNG text chunks are read; other formats report `none`. */
export function readImageMetadata(file: Uint8Array): ImageMetadata {
  if (!isPng(file)) return parseMetadata({});
  try {
    const { chunks, ignored } = readTextChunksLimited(file);
    const raw = textChunkMap(chunks);
    if (ignored > 0)
      raw[IGNORED_TEXT_KEY] =
        `${ignored} text chunk(s) were not read: a file's text metadata is read up to ${MAX_TEXT_CHUNKS} chunks ` +
        `and ${MAX_TEXT_TOTAL / (1024 * 1024)} MB in all. The image itself was imported whole.`;
    return parseMetadata(raw);
  } catch {
    return parseMetadata({});
  }
}

export const NO_METADATA: ImageMetadata = {
  source: 'none',
  prompt: null,
  negativePrompt: null,
  parameters: {},
  raw: {},
};
