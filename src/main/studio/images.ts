// Image decoding with sharp: validation (format, pixel limit, truncation), thumbnails and
// PNG conversion. The only studio module that imports sharp.
import sharp, { type Metadata } from 'sharp';
import { StudioError } from '../../shared/api.js';
import { isPng, readChunks, writeChunks } from './png-chunks.js';

/** Decompression-bomb guard: images over this many pixels are refused before decoding. */
export const MAX_PIXELS = 100_000_000;
export const THUMB_SIZE = 256;
export const THUMB_MIME = 'image/webp';

export interface ImageType {
  format: 'png' | 'jpeg' | 'webp' | 'gif';
  mime: string;
  ext: string;
}

const TYPES: Record<ImageType['format'], ImageType> = {
  png: { format: 'png', mime: 'image/png', ext: 'png' },
  jpeg: { format: 'jpeg', mime: 'image/jpeg', ext: 'jpg' },
  webp: { format: 'webp', mime: 'image/webp', ext: 'webp' },
  gif: { format: 'gif', mime: 'image/gif', ext: 'gif' },
};

export const ACCEPTED = 'PNG, JPEG, WebP or GIF';

/**
 * The format from the file's magic bytes. Only these four are accepted: sharp would also
 * decode SVG, TIFF, HEIF and more, which a gallery of generated images does not need and
 * which widen what untrusted input can reach.
 */
export function sniffImageType(b: Uint8Array): ImageType | null {
  const at = (i: number, ...bytes: number[]) => bytes.every((x, k) => b[i + k] === x);
  if (at(0, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return TYPES.png;
  if (at(0, 0xff, 0xd8, 0xff)) return TYPES.jpeg;
  if (at(0, 0x52, 0x49, 0x46, 0x46) && at(8, 0x57, 0x45, 0x42, 0x50)) return TYPES.webp;
  if (at(0, 0x47, 0x49, 0x46, 0x38)) return TYPES.gif;
  return null;
}

/** Image formats we recognise but do not accept, by magic bytes, to name them in the refusal. */
export function sniffUnsupportedImage(b: Uint8Array): string | null {
  const at = (i: number, ...bytes: number[]) => bytes.every((x, k) => b[i + k] === x);
  if (at(0, 0x49, 0x49, 0x2a, 0x00) || at(0, 0x4d, 0x4d, 0x00, 0x2a)) return 'TIFF';
  if (at(0, 0x42, 0x4d) && b.length > 14) return 'BMP';
  if (at(4, 0x66, 0x74, 0x79, 0x70)) {
    const brand = String.fromCharCode(...b.subarray(8, 12));
    if (brand === 'avif' || brand === 'avis') return 'AVIF';
    if (/^(heic|heix|hevc|heim|heis|mif1|msf1)$/.test(brand)) return 'HEIF';
  }
  if (at(0, 0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c, 0x20) || at(0, 0xff, 0x0a)) return 'JPEG XL';
  return null;
}

const TEXT_CHUNK_TYPES = new Set(['tEXt', 'zTXt', 'iTXt']);

/**
 * The bytes sharp is given: a PNG without its text chunks. libvips reads every text chunk of a
 * PNG into memory as metadata, so a small file of many compressed chunks would inflate into
 * gigabytes there; png-chunks.ts reads them instead, within a budget. Other formats, and a PNG
 * whose chunks do not check out (sharp then judges the original), pass unchanged.
 */
export function pixelsOnly(data: Uint8Array): Uint8Array {
  if (!isPng(data)) return data;
  // An import asks twice (the header check, then the thumbnail): the second time is free.
  const done = stripped.get(data);
  if (done) return done;
  const out = stripText(data);
  stripped.set(data, out);
  return out;
}

const stripped = new WeakMap<Uint8Array, Uint8Array>();

function stripText(data: Uint8Array): Uint8Array {
  try {
    const chunks = readChunks(data);
    const kept = chunks.filter((c) => !TEXT_CHUNK_TYPES.has(c.type));
    return kept.length === chunks.length ? data : writeChunks(kept);
  } catch {
    return data;
  }
}

export interface InspectedImage extends ImageType {
  width: number;
  height: number;
  /** The raw EXIF block (JPEG/WebP), for exifmeta.ts. */
  exif: Uint8Array | null;
}

const mp = (px: number) => `${(px / 1e6).toFixed(1)} megapixels`;

/**
 * Validates an image from its header only (cheap, no pixel decoding): format, dimensions and
 * the pixel limit. The full decode that catches truncation happens in makeThumbnail.
 */
export async function inspectImage(data: Uint8Array, name: string): Promise<InspectedImage> {
  const type = sniffImageType(data);
  if (!type) {
    const other = sniffUnsupportedImage(data);
    if (other)
      throw new StudioError(
        'UnsupportedImage',
        `unsupported image format: ${other} (${name}); supported: ${ACCEPTED}. Convert it to PNG first.`,
      );
    throw new StudioError('NotAnImage', `not an image: ${name} (expected ${ACCEPTED})`);
  }
  let meta: Metadata;
  try {
    // limitInputPixels off here only because this call reads the header alone; the limit is checked just below.
    meta = await sharp(pixelsOnly(data), { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new StudioError(
      'CorruptImage',
      `${name} looks like a ${type.format.toUpperCase()} but its header cannot be read (${sharpReason(e)}). ` +
        'Re-export or re-download the file.',
    );
  }
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height)
    throw new StudioError('CorruptImage', `${name}: the ${type.format.toUpperCase()} header gives no image size`);
  const pixels = width * height;
  if (pixels > MAX_PIXELS)
    throw new StudioError(
      'ImageTooLarge',
      `${name} is ${width}x${height} (${mp(pixels)}), over the limit of ${mp(MAX_PIXELS)}; it was not decoded. ` +
        `Scale it down before importing.`,
    );
  return { ...type, width, height, exif: meta.exif ?? null };
}

function decoder(data: Uint8Array) {
  // failOn 'error': a truncated or corrupt file is an error, not a half-grey image.
  return sharp(pixelsOnly(data), { limitInputPixels: MAX_PIXELS, failOn: 'error' });
}

/**
 * libvips's reason, as one clean phrase: its first line, without the trailing colon it leaves when it
 * has nothing to add ("Input buffer has corrupt header: ").
 */
export function sharpReason(e: unknown): string {
  const text = (e instanceof Error ? e.message : String(e)).split('\n')[0]!;
  return text.replace(/[\s:]+$/, '').trim() || 'no reason given';
}

/** A decoding failure as a StudioError that names the file and says what to do. */
export function decodeError(name: string, e: unknown): StudioError {
  const msg = sharpReason(e);
  if (/pixel limit/i.test(msg))
    return new StudioError('ImageTooLarge', `${name} is over the limit of ${mp(MAX_PIXELS)}; it was not decoded.`);
  return new StudioError(
    'CorruptImage',
    `${name} is truncated or corrupt and cannot be decoded (${msg}). Re-export or re-download the file.`,
  );
}

/** A 256 px WebP thumbnail (aspect kept, never enlarged, EXIF orientation applied). Decodes the whole image. */
export async function makeThumbnail(data: Uint8Array, name: string): Promise<Buffer> {
  try {
    return await decoder(data)
      .rotate()
      .resize(THUMB_SIZE, THUMB_SIZE, { fit: 'inside', withoutEnlargement: true })
      // effort 1 of 6: a third less time than the default 4 for a thumbnail of the same size (an import's largest cost).
      .webp({ quality: 80, effort: 1 })
      .toBuffer();
  } catch (e) {
    throw decodeError(name, e);
  }
}

/** Converts any accepted image to PNG (first frame of an animation), orientation applied. */
export async function convertToPng(data: Uint8Array, name: string): Promise<Buffer> {
  try {
    return await decoder(data).rotate().png().toBuffer();
  } catch (e) {
    throw decodeError(name, e);
  }
}
