// A generation run's pictures with sharp (encoding runs in libvips's threads, not the calling one): the
// final PNG, the live preview frames, the small frames kept with each snapshot, and the trajectory as an
// animated WebP or GIF (no ffmpeg).
import { zipSync } from 'fflate';
import sharp from 'sharp';

const raw = (rgb: Uint8Array, width: number, height: number) => {
  if (rgb.length !== width * height * 3)
    throw new Error(`expected ${width * height * 3} bytes for a ${width}x${height} RGB image, got ${rgb.length}`);
  return sharp(rgb, { raw: { width, height, channels: 3 } });
};

const bytes = (b: Buffer): Uint8Array<ArrayBuffer> =>
  new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.byteLength);

/** The full picture, losslessly. */
export async function rgbToPng(rgb: Uint8Array, width: number, height: number): Promise<Uint8Array<ArrayBuffer>> {
  return bytes(await raw(rgb, width, height).png({ compressionLevel: 6 }).toBuffer());
}

/** A live preview: WebP, at most `maxSide` px on the longer side (enlarged with nearest neighbours when tiny). */
export async function rgbToPreview(
  rgb: Uint8Array,
  width: number,
  height: number,
  maxSide = 768,
): Promise<{ data: Uint8Array<ArrayBuffer>; width: number; height: number; mime: 'image/webp' }> {
  const scale = Math.min(maxSide / Math.max(width, height), Math.max(1, Math.floor(256 / Math.max(width, height))));
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const img = raw(rgb, width, height);
  if (w !== width || h !== height) img.resize(w, h, { kernel: scale > 1 ? 'nearest' : 'lanczos3' });
  const data = bytes(await img.webp({ quality: 90, effort: 0 }).toBuffer());
  return { data, width: w, height: h, mime: 'image/webp' };
}

/** Frames joined into one looping animation, `delayMs` per frame (the last one held longer). */
export async function animate(
  frames: readonly Uint8Array[],
  format: 'webp' | 'gif',
  delayMs = 120,
): Promise<Uint8Array<ArrayBuffer>> {
  if (frames.length === 0) throw new Error('no frames to animate');
  const first = await sharp(frames[0]!).metadata();
  const size = { width: first.width!, height: first.height! };
  // Every frame at the first one's size, then joined as the pages of one animation.
  const pages = await Promise.all(
    frames.map((f) => sharp(f).resize(size.width, size.height, { fit: 'fill' }).png().toBuffer()),
  );
  const delay = pages.map((_, i) => (i === pages.length - 1 ? delayMs * 10 : delayMs));
  // sharp joins two or more images; a trajectory of one snapshot is a one-frame file.
  const img = pages.length === 1 ? sharp(pages[0]) : sharp(pages, { join: { animated: true } });
  const out = format === 'webp' ? img.webp({ loop: 0, delay, quality: 90 }) : img.gif({ loop: 0, delay });
  return bytes(await out.toBuffer());
}

/**
 * Frames as numbered PNGs in one ZIP (`<prefix>-step-000120.png`, in order), for tools that take an image
 * sequence (ffmpeg, video editors). PNG is compressed already, so the ZIP only stores.
 */
export async function framesZip(
  frames: readonly { step: number; data: Uint8Array }[],
  prefix: string,
): Promise<Uint8Array<ArrayBuffer>> {
  if (frames.length === 0) throw new Error('no frames to export');
  const width = String(Math.max(...frames.map((f) => f.step))).length;
  const files: Record<string, Uint8Array> = {};
  for (const f of frames) {
    const name = `${prefix}-step-${String(f.step).padStart(Math.max(6, width), '0')}.png`;
    files[name] = new Uint8Array(await sharp(f.data).png().toBuffer());
  }
  const zip = zipSync(files, { level: 0 });
  return new Uint8Array(zip.buffer as ArrayBuffer, zip.byteOffset, zip.byteLength);
}
