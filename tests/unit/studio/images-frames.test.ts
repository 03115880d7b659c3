// A run's trajectory as an animation: any number of snapshot frames, one included.
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { animate, rgbToPng } from '../../../src/main/studio/images-frames.js';

/** A solid 8x6 frame of one grey level, as a PNG. */
const frame = (level: number) => rgbToPng(new Uint8Array(8 * 6 * 3).fill(level), 8, 6);

describe('animate', () => {
  it('joins frames into a looping animation, each frame as it was, the last held longer', async () => {
    const frames = await Promise.all([10, 120, 240].map(frame));
    for (const format of ['webp', 'gif'] as const) {
      const out = await animate(frames, format, 100);
      const meta = await sharp(out, { animated: true }).metadata();
      expect([meta.format, meta.pages, meta.width, meta.pageHeight]).toEqual([format, 3, 8, 6]);
      expect(meta.delay).toEqual([100, 100, 1000]);
      // The middle frame's pixels are its grey level (GIF's palette and lossy WebP within a few levels).
      const middle = await sharp(out, { page: 1 }).removeAlpha().raw().toBuffer();
      expect(Math.abs(middle[0]! - 120)).toBeLessThanOrEqual(4);
    }
  });

  it('makes a one-frame file from a trajectory of one snapshot', async () => {
    const out = await animate([await frame(200)], 'webp');
    const meta = await sharp(out).metadata();
    expect([meta.format, meta.pages ?? 1, meta.width, meta.height]).toEqual(['webp', 1, 8, 6]);
  });

  it('refuses no frames at all', async () => {
    await expect(animate([], 'gif')).rejects.toThrow(/no frames/);
  });
});
