// AUTOMATIC1111's "stealth pnginfo" (an extension; NovelAI writes the same): the metadata hidden in
// the lowest bit of each pixel's alpha value ('alpha' mode) or of its red, green and blue values
// ('rgb' mode, three bits a pixel, in that order), for when a site strips the text chunks. Pixels
// are read column by column (x outer, y inner). The bit stream is: the signature (15 ASCII bytes,
// `stealth_pnginfo` / `stealth_pngcomp` in alpha, `stealth_rgbinfo` / `stealth_rgbcomp` in rgb;
// `comp`: the payload is gzip), the payload's length in bits (32 bits, big-endian), the payload
// (UTF-8 text, most significant bit first). A1111 puts its infotext there; NovelAI a JSON object of
// its text chunks (Title, Description, Software, Source, Comment, ...), followed by error-correction
// data that is not read here. The extension looks for the rgb signature after 40 pixels and the
// alpha one after 120; so does this. (The extension prefers the pixels to the text chunks; here they
// are read only when the chunks give no prompt, import-decode.ts.)
//
// This module is pure (the bits come from a strip of decoded pixels: images-stealth.ts decodes);
// bounds: a payload over MAX_STEALTH_BYTES is not read, gzip inflates to at most MAX_INFLATED_TEXT.
//
// Public API: STEALTH_SIGNATURES, StealthSignature, HEADER_BITS, MAX_STEALTH_BYTES, PixelStrip,
// StealthHeader, StealthResult, readStealthHeader, stealthPixels, readStealthPayload,
// decodeStealthPayload, stealthRaw, withStealth.
import { gunzipSync } from 'node:zlib';
import type { ImageMetadata } from '../../../shared/api.js';
import { MAX_INFLATED_TEXT } from '../png-chunks.js';
import { cut, isObj, MAX_PARAMETER_CHARS, NOTE_KEY, tryJson } from './common.js';
import { parseMetadata } from './index.js';

export const STEALTH_SIGNATURES = {
  stealth_pnginfo: { mode: 'alpha', compressed: false },
  stealth_pngcomp: { mode: 'alpha', compressed: true },
  stealth_rgbinfo: { mode: 'rgb', compressed: false },
  stealth_rgbcomp: { mode: 'rgb', compressed: true },
} as const;
export type StealthSignature = keyof typeof STEALTH_SIGNATURES;

const SIGNATURE_BITS = 15 * 8;
/** Signature and length: the bits before the payload. */
export const HEADER_BITS = SIGNATURE_BITS + 32;
/**
 * A payload longer than this (256 KiB in the pixels, 2 Mi pixels in alpha mode) is not read:
 * infotext, and NovelAI's gzip-compressed chunks, are a few kilobytes.
 */
export const MAX_STEALTH_BYTES = 256 * 1024;

/**
 * The first `cols` columns of an image `height` pixels high, as 8-bit RGBA rows of `cols` pixels
 * (what sharp's extract + ensureAlpha + raw gives): the first `pixels` pixels in column-major
 * order (a single column may be cut short: fewer rows than `height`).
 */
export interface PixelStrip {
  data: Uint8Array;
  cols: number;
  height: number;
  pixels: number;
}

export interface StealthHeader {
  signature: StealthSignature;
  mode: 'alpha' | 'rgb';
  compressed: boolean;
  /** The payload's length in bits, as written. */
  bits: number;
}

/** What was found: the payload's text, or why it could not be read. */
export type StealthResult =
  { signature: StealthSignature; text: string } | { signature: StealthSignature; problem: string };

/** Bit `k` of the alpha or rgb stream of the strip (column-major pixels). */
function bitAt(s: PixelStrip, mode: 'alpha' | 'rgb', k: number): number {
  const pixel = mode === 'alpha' ? k : Math.floor(k / 3);
  const channel = mode === 'alpha' ? 3 : k % 3;
  const x = Math.floor(pixel / s.height);
  const y = pixel % s.height;
  return s.data[(y * s.cols + x) * 4 + channel]! & 1;
}

/** `count` bits from bit `from` as bytes, most significant first (a last partial byte as its value). */
function bytesAt(s: PixelStrip, mode: 'alpha' | 'rgb', from: number, count: number): Uint8Array {
  const out = new Uint8Array(Math.ceil(count / 8));
  for (let i = 0; i < count; i++) out[i >> 3] = (out[i >> 3]! << 1) | bitAt(s, mode, from + i);
  return out;
}

const ascii = (b: Uint8Array) => String.fromCharCode(...b);

/** Pixels (column-major) the stream of `mode` needs for `bits` bits. */
export const stealthPixels = (mode: 'alpha' | 'rgb', bits: number) => (mode === 'alpha' ? bits : Math.ceil(bits / 3));

/**
 * The signature and length at the start of the strip (which must hold HEADER_BITS pixels, or all
 * of a smaller image), for an image of `width` x `height` pixels. Null: no signature. A length
 * the image cannot hold, or over MAX_STEALTH_BYTES, is a problem, said in words.
 */
export function readStealthHeader(
  s: PixelStrip,
  image: { width: number; height: number; hasAlpha: boolean },
): StealthHeader | { signature: StealthSignature; problem: string } | null {
  const pixels = image.width * image.height;
  const strip = s.pixels;
  // The rgb stream is checked first: its signature ends at pixel 40, the alpha one's at 120.
  for (const mode of ['rgb', 'alpha'] as const) {
    if (mode === 'alpha' && !image.hasAlpha) continue;
    if (stealthPixels(mode, SIGNATURE_BITS) > Math.min(pixels, strip)) continue;
    const sig = ascii(bytesAt(s, mode, 0, SIGNATURE_BITS));
    if (!Object.hasOwn(STEALTH_SIGNATURES, sig)) continue;
    const signature = sig as StealthSignature;
    const info = STEALTH_SIGNATURES[signature];
    if (info.mode !== mode) continue;
    const capacity = mode === 'alpha' ? pixels : pixels * 3;
    if (capacity < HEADER_BITS || stealthPixels(mode, HEADER_BITS) > strip)
      return { signature, problem: 'the image ends before the payload’s length' };
    const bits = new DataView(bytesAt(s, mode, SIGNATURE_BITS, 32).buffer).getUint32(0);
    if (bits === 0) return { signature, problem: 'its length is 0' };
    if (bits > capacity - HEADER_BITS)
      return {
        signature,
        problem: `its length (${bits} bits) runs past the end of the image (${capacity - HEADER_BITS} bits left)`,
      };
    if (bits > MAX_STEALTH_BYTES * 8)
      return {
        signature,
        problem: `its length (${Math.ceil(bits / 8)} bytes) is over the limit of ${MAX_STEALTH_BYTES} bytes`,
      };
    return { signature, mode, compressed: info.compressed, bits };
  }
  return null;
}

/** The payload bytes, from a strip holding stealthPixels(mode, HEADER_BITS + bits) pixels. */
export function readStealthPayload(s: PixelStrip, h: StealthHeader): Uint8Array {
  if (s.pixels < stealthPixels(h.mode, HEADER_BITS + h.bits)) throw new RangeError('the strip is short of the payload');
  return bytesAt(s, h.mode, HEADER_BITS, h.bits);
}

/**
 * The payload as text: gunzipped for the `comp` signatures (to at most MAX_INFLATED_TEXT bytes;
 * A1111 then wants strict UTF-8), UTF-8 for the others (A1111 ignores bad bytes; they become
 * U+FFFD here).
 */
export function decodeStealthPayload(bytes: Uint8Array, h: StealthHeader): StealthResult {
  const { signature } = h;
  if (!h.compressed) return { signature, text: new TextDecoder('utf-8').decode(bytes) };
  let inflated: Uint8Array;
  try {
    inflated = gunzipSync(bytes, { maxOutputLength: MAX_INFLATED_TEXT });
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE'
      ? { signature, problem: `its gzip payload inflates past ${MAX_INFLATED_TEXT / (1024 * 1024)} MiB` }
      : { signature, problem: 'its gzip payload is corrupt' };
  }
  try {
    return { signature, text: new TextDecoder('utf-8', { fatal: true }).decode(inflated) };
  } catch {
    return { signature, problem: 'its payload is not UTF-8 text' };
  }
}

const WHERE = { alpha: 'the alpha channel', rgb: 'the red, green and blue channels' };

/**
 * The payload as the text chunks it stands for: NovelAI's JSON object of chunks (Comment,
 * Description, Software, ...) as those keywords, anything else as A1111's `parameters`.
 */
export function stealthRaw(text: string): Record<string, string> {
  const j = text.trimStart().startsWith('{') ? tryJson(text) : undefined;
  if (isObj(j) && ('Comment' in j || 'Description' in j || 'Software' in j)) {
    const raw: Record<string, string> = {};
    for (const [k, v] of Object.entries(j)) raw[k] = typeof v === 'string' ? v : JSON.stringify(v);
    return raw;
  }
  return { parameters: text };
}

/**
 * The metadata of a file whose text chunks (`meta`) gave no prompt, with what its pixels hide:
 * read as the chunks it stands for (the NOTE_KEY parameter says where it came from; the text
 * chunks' raw text is kept beside it), or, when it cannot be read, `meta` with a note saying why.
 */
export function withStealth(meta: ImageMetadata, r: StealthResult): ImageMetadata {
  const where = WHERE[STEALTH_SIGNATURES[r.signature].mode];
  const earlier = meta.parameters[NOTE_KEY];
  if ('problem' in r) {
    const note = `stealth pnginfo (${r.signature}) in ${where} not read: ${r.problem}`;
    return {
      ...meta,
      source: meta.source === 'none' ? 'unknown' : meta.source,
      parameters: { ...meta.parameters, [NOTE_KEY]: cut(earlier ? `${earlier}; ${note}` : note, MAX_PARAMETER_CHARS) },
    };
  }
  const compressed = STEALTH_SIGNATURES[r.signature].compressed ? ', gzip' : '';
  const note = `hidden in ${where} (stealth pnginfo: ${r.signature}${compressed})`;
  const found = parseMetadata(stealthRaw(r.text), earlier ? [earlier, note] : [note]);
  const raw = { ...meta.raw, [` ${r.signature} (${where})`]: r.text };
  // What the pixels say wins when it has a prompt or the chunks were no known tool's.
  if (found.prompt || meta.source === 'none' || meta.source === 'unknown') return { ...found, raw };
  return { ...meta, raw };
}
