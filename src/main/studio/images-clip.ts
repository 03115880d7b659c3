// CLIP's image preprocessing (transformers' CLIPImageProcessor) with sharp: resize the shortest side to
// `size` with a bicubic kernel, center-crop size x size, scale to [0, 1], normalise with CLIP's mean/std,
// channels first. Differs from PIL's bicubic by rounding only (sharp's 'cubic' is Catmull-Rom, PIL's
// BICUBIC is the same a = -0.5 kernel); like the HF processor it does not apply EXIF rotation.
//
// Public API
//   CLIP_MEAN, CLIP_STD
//   clipPixels(image, size = 224) -> Float32Array      [3, size, size]
//   clipPixelBatch(images, size = 224) -> HostTensor   float32 [B, 3, size, size], the vision tower's input
import sharp from 'sharp';
import { type HostTensor } from '../engine/graph/ir.js';

export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

// Far above any photo; sharp's default limit, stated so a decompression bomb fails the same everywhere.
const MAX_PIXELS = 268_402_689;

/** One image (file path or encoded bytes) as CLIP's normalised [3, size, size] pixels. */
export async function clipPixels(image: string | Uint8Array, size = 224): Promise<Float32Array> {
  const input = typeof image === 'string' ? image : Buffer.from(image.buffer, image.byteOffset, image.byteLength);
  const meta = await sharp(input, { limitInputPixels: MAX_PIXELS }).metadata();
  const w0 = meta.width;
  const h0 = meta.height;
  if (!w0 || !h0) throw new Error(`${typeof image === 'string' ? image : 'image'}: no dimensions`);
  // Shortest side to `size`, the other scaled and truncated as transformers' get_resize_output_image_size.
  const short = Math.min(w0, h0);
  const w = w0 === short ? size : Math.max(size, Math.trunc((size * w0) / short));
  const h = h0 === short ? size : Math.max(size, Math.trunc((size * h0) / short));
  const left = Math.floor((w - size) / 2);
  const top = Math.floor((h - size) / 2);
  const { data, info } = await sharp(input, { limitInputPixels: MAX_PIXELS })
    .toColourspace('srgb')
    .removeAlpha()
    .resize({ width: w, height: h, fit: 'fill', kernel: 'cubic' })
    .extract({ left, top, width: size, height: size })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`CLIP preprocessing: expected 3 channels, got ${info.channels}`);
  const out = new Float32Array(3 * size * size);
  const plane = size * size;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = (data[i * 3 + c]! / 255 - CLIP_MEAN[c]!) / CLIP_STD[c]!;
  }
  return out;
}

export async function clipPixelBatch(images: readonly (string | Uint8Array)[], size = 224): Promise<HostTensor> {
  const data = new Float32Array(images.length * 3 * size * size);
  for (let i = 0; i < images.length; i++) data.set(await clipPixels(images[i]!, size), i * 3 * size * size);
  return { dtype: 'float32', dims: [images.length, 3, size, size], data };
}
