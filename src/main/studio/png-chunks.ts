// The PNG chunk codec, by hand (sharp cannot write arbitrary chunks): reading and writing chunks
// with their CRCs, decoding and encoding the text chunks, inserting text chunks before the image
// data. Pure: node:zlib only, no sharp, no I/O. What the text means is for metadata/.
//
// Chunk layout (PNG spec §5.3): length (u32 BE) | type (4 ASCII) | data | CRC-32 over type+data.
// tEXt: keyword NUL Latin-1 text. zTXt: keyword NUL method(0) zlib(Latin-1 text).
// iTXt: keyword NUL compressed-flag method language-tag NUL translated-keyword NUL UTF-8 text.
//
// Bounds: a compressed chunk inflating past MAX_INFLATED_TEXT is skipped; a file's text is read up
// to MAX_TEXT_CHUNKS chunks and MAX_TEXT_TOTAL bytes (readTextChunksLimited counts the rest).
//
// Public API: PNG_SIGNATURE, MAX_INFLATED_TEXT, MAX_TEXT_TOTAL, MAX_TEXT_CHUNKS, crc32, isPng,
// PngChunk, PngFormatError, readChunks, writeChunks, TextChunk, textChunkKeyword, textKeywords,
// decodeTextChunk, encodeTextChunk, readTextChunksLimited, readTextChunks, insertTextChunks.
import { crc32 as zlibCrc32, deflateSync, inflateSync } from 'node:zlib';

export const PNG_SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
/** A zTXt/iTXt chunk that inflates past this (8 MiB) is skipped: text metadata is never this big. */
export const MAX_INFLATED_TEXT = 8 * 1024 * 1024;
/**
 * Per file: at most this much text in all (after inflating) and this many text chunks are
 * read; past either, the rest are ignored (and said so), so a file of many small compressed
 * chunks cannot inflate into gigabytes.
 */
export const MAX_TEXT_TOTAL = 16 * 1024 * 1024;
export const MAX_TEXT_CHUNKS = 256;

// ---------- CRC-32 (ISO 3309 / PNG Annex D) ----------
/** CRC-32 of `bytes`; pass a previous result as `crc` to continue over more bytes. */
export function crc32(bytes: Uint8Array, crc = 0): number {
  // zlib's own (Node 20.15 and later): a large image's chunks are checked in a fraction of the table's time.
  return zlibCrc32(bytes, crc) >>> 0;
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
