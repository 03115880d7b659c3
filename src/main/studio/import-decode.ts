// What an import learns from a file's pixels and text, in one function the import workers run
// (import-worker.ts), so header checks, the full decode for the thumbnail and metadata parsing never
// run on the thread that serves the UI. (The hash comes first, on the main thread's side but computed
// by WebCrypto off it, so a file already in the gallery is never decoded: sha256Async.)
// A PNG whose text chunks give no prompt is looked at once more for the metadata AUTOMATIC1111's
// "stealth pnginfo" and NovelAI hide in the pixels' lowest bits (sites that strip text keep those).
import { webcrypto } from 'node:crypto';
import type { ImageMetadata } from '../../shared/api.js';
import { inspectImage, makeThumbnail } from './images.js';
import { readStealth } from './images-stealth.js';
import { readExifMetadata, readImageMetadata } from './metadata/index.js';
import { withStealth } from './metadata/stealth.js';

/** The SHA-256 (hex) of the bytes, computed on libuv's thread pool (WebCrypto), not the calling thread. */
export async function sha256Async(data: Uint8Array): Promise<string> {
  return Buffer.from(await webcrypto.subtle.digest('SHA-256', data)).toString('hex');
}

export interface DecodedImport {
  format: string;
  ext: string;
  mime: string;
  width: number;
  height: number;
  /** The WebP thumbnail. */
  thumb: Uint8Array;
  metadata: ImageMetadata;
}

/** Checks, thumbnails and reads the metadata of one file; errors are StudioErrors naming it. */
export async function decodeForImport(data: Uint8Array, fileName: string): Promise<DecodedImport> {
  const img = await inspectImage(data, fileName);
  const thumb = await makeThumbnail(data, fileName); // decodes every pixel: truncation shows up here
  let metadata = img.format === 'png' ? readImageMetadata(data) : readExifMetadata(img.exif);
  if (img.format === 'png' && !metadata.prompt) {
    const hidden = await readStealth(data);
    if (hidden) metadata = withStealth(metadata, hidden);
  }
  return {
    format: img.format,
    ext: img.ext,
    mime: img.mime,
    width: img.width,
    height: img.height,
    thumb: new Uint8Array(thumb.buffer, thumb.byteOffset, thumb.byteLength),
    metadata,
  };
}
