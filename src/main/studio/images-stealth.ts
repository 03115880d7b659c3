// The pixels that "stealth pnginfo" hides metadata in (metadata/stealth.ts reads the bits): the
// first columns of a PNG, decoded by sharp within the gallery's pixel limit, as 8-bit RGBA. Only
// the pixels the bits need are kept: the top of the first column, or the first columns, for the
// signature, then as many as the payload's length asks for (at most MAX_STEALTH_BYTES of payload:
// under 2 x 8 x MAX_STEALTH_BYTES pixels, 4 bytes each).
//
// Only the PNG's critical chunks and tRNS reach the decoder: an ICC profile would make sharp
// convert the colours (and lose the low bits), and text chunks are read elsewhere, within their
// own budget. PNG only: the writers (the A1111 extension, NovelAI) write PNG, and a lossy format
// cannot keep the bits. Unsure: the writers make 8-bit RGB(A) images; a 16-bit or palette PNG is
// read as sharp reduces it to 8-bit RGBA, which may not be how PIL hands it to the extension.
//
// Public API: readStealth.
import sharp from 'sharp';
import { MAX_PIXELS } from './images.js';
import {
  decodeStealthPayload,
  HEADER_BITS,
  readStealthHeader,
  readStealthPayload,
  stealthPixels,
  type PixelStrip,
  type StealthResult,
} from './metadata/stealth.js';
import { isPng, readChunks, writeChunks } from './png-chunks.js';

/** The chunks the pixels need; everything else (colour profiles, gamma, text) is left out. */
const PIXEL_CHUNKS = new Set(['IHDR', 'PLTE', 'tRNS', 'IDAT', 'IEND']);

/** The first `pixels` pixels, column by column, of a PNG `width` x `height` (or all of them). */
async function strip(png: Uint8Array, width: number, height: number, pixels: number): Promise<PixelStrip> {
  const cols = Math.min(width, Math.ceil(pixels / height));
  const rows = cols === 1 ? Math.min(height, pixels) : height;
  const { data, info } = await sharp(png, { limitInputPixels: MAX_PIXELS, failOn: 'error' })
    .extract({ left: 0, top: 0, width: cols, height: rows })
    .toColourspace('srgb')
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 4 || info.width !== cols || info.height !== rows)
    throw new Error(`unexpected pixel layout ${info.width}x${info.height}x${info.channels}`);
  return { data, cols, height, pixels: cols === 1 ? rows : cols * height };
}

/**
 * What a PNG hides in its pixels' lowest bits: null when there is no stealth signature (or the
 * file is no PNG sharp decodes: the import reports that itself), the text, or why it could not be
 * read.
 */
export async function readStealth(file: Uint8Array): Promise<StealthResult | null> {
  if (!isPng(file)) return null;
  let png: Uint8Array;
  try {
    png = writeChunks(readChunks(file, { strict: false }).filter((c) => PIXEL_CHUNKS.has(c.type)));
  } catch {
    return null;
  }
  try {
    const meta = await sharp(png, { limitInputPixels: MAX_PIXELS }).metadata();
    const width = meta.width ?? 0;
    const height = meta.height ?? 0;
    if (width * height === 0 || width * height > MAX_PIXELS) return null;
    const head = await strip(png, width, height, HEADER_BITS);
    const h = readStealthHeader(head, { width, height, hasAlpha: meta.hasAlpha === true });
    if (h === null || 'problem' in h) return h;
    const needed = stealthPixels(h.mode, HEADER_BITS + h.bits);
    const body = needed <= head.pixels ? head : await strip(png, width, height, needed);
    return decodeStealthPayload(readStealthPayload(body, h), h);
  } catch {
    return null; // not decodable: the thumbnail's decode says why
  }
}
