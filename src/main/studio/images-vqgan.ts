// Pixels in and out of a VQGAN with sharp: an image file to the [1, 3, H, W] float tensor in [-1, 1]
// that taming's encoder takes (H and W multiples of the downsampling factor), and a decoded tensor
// back to a PNG. Only studio/images* import sharp (a lint rule in eslint.config.js).
import sharp from 'sharp';
import { StudioError } from '../../shared/api.js';
import { MAX_PIXELS } from './images.js';
import { checkModelImage, modelImageError } from './images-clip.js';

export interface VqganImage {
  /** [1, 3, height, width], channel-major, (pixel / 255) * 2 - 1. */
  data: Float32Array;
  width: number;
  height: number;
  /** The file's own size (after EXIF orientation). */
  sourceWidth: number;
  sourceHeight: number;
}

export interface VqganImageOptions {
  /** Every side is made a multiple of this (16 for f16 VQGANs). */
  multiple: number;
  /** Exact output size; default the image's size, shrunk to maxSide, floored to `multiple`. */
  size?: { width: number; height: number };
  /** Longest side when no size is given (default 512: the usual VQGAN+CLIP size). */
  maxSide?: number;
}

/** The size an image is resized to: `size` if given, else the source shrunk to maxSide and floored to `multiple`. */
export function vqganTargetSize(
  sourceWidth: number,
  sourceHeight: number,
  opts: VqganImageOptions,
): { width: number; height: number } {
  const m = opts.multiple;
  if (opts.size) {
    const { width, height } = opts.size;
    if (width % m !== 0 || height % m !== 0 || width < m || height < m) {
      throw new StudioError('BadRequest', `size ${width}x${height} must be a positive multiple of ${m} on each side`);
    }
    return { width, height };
  }
  const maxSide = opts.maxSide ?? 512;
  const scale = Math.min(1, maxSide / Math.max(sourceWidth, sourceHeight));
  const fit = (d: number) => Math.max(m, Math.floor((d * scale) / m) * m);
  return { width: fit(sourceWidth), height: fit(sourceHeight) };
}

/**
 * Decodes an image file's bytes (PNG, JPEG, WebP, GIF; at most 100 megapixels, as the gallery) to a VQGAN
 * input tensor. Errors name the file and say what to do.
 */
export async function readVqganImage(bytes: Uint8Array, name: string, opts: VqganImageOptions): Promise<VqganImage> {
  const { decodable } = await checkModelImage(bytes, name); // without a PNG's text chunks
  try {
    // Orientation applied, alpha composited on white, 8-bit sRGB; resized (Lanczos, as PIL's LANCZOS in the
    // VQGAN+CLIP notebooks) only when the size must change.
    const src = await sharp(decodable, { limitInputPixels: MAX_PIXELS, failOn: 'error' })
      .rotate()
      .flatten({ background: '#ffffff' })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const sw = src.info.width;
    const sh = src.info.height;
    if (src.info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${src.info.channels}`);
    const { width, height } = vqganTargetSize(sw, sh, opts);
    const px =
      width === sw && height === sh
        ? src.data
        : await sharp(src.data, { raw: { width: sw, height: sh, channels: 3 } })
            .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
            .raw()
            .toBuffer();
    const n = width * height;
    const data = new Float32Array(3 * n);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 3; c++) data[c * n + i] = (px[i * 3 + c]! / 255) * 2 - 1;
    }
    return { data, width, height, sourceWidth: sw, sourceHeight: sh };
  } catch (e) {
    throw modelImageError(name, e);
  }
}

/** A decoded [1, 3, H, W] tensor in [-1, 1] to PNG bytes: (x + 1) / 2, clamped, rounded to 8 bits. */
export async function vqganTensorToPng(data: Float32Array, width: number, height: number): Promise<Buffer> {
  const n = width * height;
  if (data.length !== 3 * n)
    throw new Error(`expected ${3 * n} values for a ${width}x${height} RGB image, got ${data.length}`);
  const px = Buffer.alloc(3 * n);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const v = (data[c * n + i]! + 1) / 2;
      px[i * 3 + c] = Math.round(Math.min(1, Math.max(0, v)) * 255);
    }
  }
  return sharp(px, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}
