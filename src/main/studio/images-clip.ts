// CLIP's image preprocessing (transformers' CLIPImageProcessor) with sharp: resize the shortest side to
// `size` with a bicubic kernel, center-crop size x size, scale to [0, 1], normalise with CLIP's mean/std,
// channels first. Differs from PIL's bicubic by rounding only (sharp's 'cubic' is Catmull-Rom, PIL's
// BICUBIC is the same a = -0.5 kernel); like the HF processor it does not apply EXIF rotation.
//
// Public API
//   CLIP_MEAN, CLIP_STD
//   clipPixels(image, size = 224, name?) -> Float32Array   [3, size, size]; PNG, JPEG, WebP or GIF up to 100 MP
//   checkModelImage(bytes, name), modelImageError(name, e)  the gallery's checks and errors that name the file
//   clipPixelBatch(images, size = 224) -> HostTensor   float32 [B, 3, size, size], the vision tower's input
//   stackPixels(pixels[], size) -> HostTensor           the same batch from images decoded one by one
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { StudioError } from '../../shared/api.js';
import { type HostTensor } from '../engine/graph/ir.js';
import { ACCEPTED, MAX_PIXELS, decodeError, pixelsOnly, sniffImageType } from './images.js';

export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

const mp = (px: number) => `${(px / 1e6).toFixed(1)} megapixels`;

/**
 * The checks the gallery makes on an image given to a model (images.ts): one of its formats by magic bytes,
 * and at most MAX_PIXELS (100 MP) by the header, before any pixel is decoded. Errors name the file and say
 * what to do. `decodable` is what to hand sharp: the bytes without a PNG's text chunks (pixelsOnly, as
 * the gallery), so libvips never inflates them.
 */
export async function checkModelImage(
  bytes: Uint8Array,
  name: string,
): Promise<{ width: number; height: number; decodable: Uint8Array }> {
  const type = sniffImageType(bytes);
  if (!type) {
    throw new StudioError('NotAnImage', `${name} is not a ${ACCEPTED} file. Convert it to one of these and try again.`);
  }
  const decodable = pixelsOnly(bytes);
  let width: number | undefined;
  let height: number | undefined;
  try {
    // limitInputPixels off only for this header read; the limit is checked just below.
    const meta = await sharp(decodable, { limitInputPixels: false }).metadata();
    width = meta.width;
    height = meta.height;
  } catch (e) {
    throw modelImageError(name, e);
  }
  if (!width || !height)
    throw modelImageError(name, new Error(`the ${type.format.toUpperCase()} header gives no size`));
  if (width * height > MAX_PIXELS) {
    throw new StudioError(
      'ImageTooLarge',
      `${name} is ${width}x${height} (${mp(width * height)}), over the limit of ${mp(MAX_PIXELS)}. Scale it down and try again.`,
    );
  }
  return { width, height, decodable };
}

/** A decoding failure as a StudioError that names the file and says what to do. */
export function modelImageError(name: string, e: unknown): StudioError {
  return e instanceof StudioError ? e : decodeError(name, e);
}

/**
 * One image (file path or encoded bytes; `name` for messages, default the path) as CLIP's normalised
 * [3, size, size] pixels. PNG, JPEG, WebP or GIF (first frame), at most 100 megapixels, as the gallery.
 */
export async function clipPixels(image: string | Uint8Array, size = 224, name?: string): Promise<Float32Array> {
  const label = name ?? (typeof image === 'string' ? image : 'image');
  let bytes: Uint8Array;
  if (typeof image === 'string') {
    try {
      bytes = await readFile(image);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new StudioError(
        'NotFound',
        code === 'ENOENT'
          ? `${label}: no such file. Check the path.`
          : `cannot read ${label}: ${code ?? (e as Error).message}`,
      );
    }
  } else bytes = image;
  const { width: w0, height: h0, decodable } = await checkModelImage(bytes, label);
  // Shortest side to `size`, the other scaled and truncated as transformers' get_resize_output_image_size.
  const short = Math.min(w0, h0);
  const w = w0 === short ? size : Math.max(size, Math.trunc((size * w0) / short));
  const h = h0 === short ? size : Math.max(size, Math.trunc((size * h0) / short));
  const left = Math.floor((w - size) / 2);
  const top = Math.floor((h - size) / 2);
  let data: Buffer;
  let channels: number;
  try {
    // failOn 'error' as the gallery's decoder: a truncated or corrupt file is an error, not a half-grey image.
    const r = await sharp(decodable, { limitInputPixels: MAX_PIXELS, failOn: 'error' })
      .toColourspace('srgb')
      .removeAlpha()
      .resize({ width: w, height: h, fit: 'fill', kernel: 'cubic' })
      .extract({ left, top, width: size, height: size })
      .raw()
      .toBuffer({ resolveWithObject: true });
    data = r.data;
    channels = r.info.channels;
  } catch (e) {
    throw modelImageError(label, e);
  }
  if (channels !== 3) throw new Error(`CLIP preprocessing: expected 3 channels, got ${channels}`);
  const out = new Float32Array(3 * size * size);
  const plane = size * size;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = (data[i * 3 + c]! / 255 - CLIP_MEAN[c]!) / CLIP_STD[c]!;
  }
  return out;
}

export async function clipPixelBatch(images: readonly (string | Uint8Array)[], size = 224): Promise<HostTensor> {
  const pixels: Float32Array[] = [];
  for (const image of images) pixels.push(await clipPixels(image, size));
  return stackPixels(pixels, size);
}

/** Images already in CLIP's pixels (clipPixels), as one [B, 3, size, size] batch. */
export function stackPixels(pixels: readonly Float32Array[], size: number): HostTensor {
  const n = 3 * size * size;
  const data = new Float32Array(pixels.length * n);
  pixels.forEach((p, i) => data.set(p, i * n));
  return { dtype: 'float32', dims: [pixels.length, 3, size, size], data };
}
