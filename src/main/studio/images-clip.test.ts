import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { makeGif, makeJpeg, makeWebp, pngBomb, truncate } from '../../../tests/fixtures/images.js';
import { CLIP_MEAN, CLIP_STD, clipPixelBatch, clipPixels } from './images-clip.js';
import { readVqganImage } from './images-vqgan.js';

const solid = (width: number, height: number, rgb: [number, number, number]) =>
  sharp({ create: { width, height, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
    .png()
    .toBuffer();

describe('CLIP preprocessing', () => {
  it('normalises a flat colour exactly: (value / 255 - mean) / std per channel', async () => {
    const rgb: [number, number, number] = [200, 100, 30];
    const px = await clipPixels(await solid(50, 30, rgb), 24);
    expect(px).toHaveLength(3 * 24 * 24);
    for (let c = 0; c < 3; c++) {
      const want = (rgb[c]! / 255 - CLIP_MEAN[c]!) / CLIP_STD[c]!;
      for (let i = 0; i < 24 * 24; i++) expect(px[c * 576 + i]).toBeCloseTo(want, 5);
    }
  });

  it('resizes the shortest side and crops the center (a wide image keeps its middle)', async () => {
    // 120 x 30: red | green | blue thirds. Shortest side 30 -> 24 gives 96 x 24, whose center columns 36..59
    // lie inside the green third (output columns 32..63), beyond the reach of the cubic kernel at its edges.
    const thirds = await sharp({ create: { width: 120, height: 30, channels: 3, background: '#000' } })
      .composite([
        { input: await solid(40, 30, [255, 0, 0]), left: 0, top: 0 },
        { input: await solid(40, 30, [0, 255, 0]), left: 40, top: 0 },
        { input: await solid(40, 30, [0, 0, 255]), left: 80, top: 0 },
      ])
      .png()
      .toBuffer();
    const px = await clipPixels(thirds, 24);
    for (const i of [0, 23, 12 * 24 + 12, 24 * 24 - 1]) {
      for (let c = 0; c < 3; c++)
        expect(px[c * 576 + i]).toBeCloseTo(((c === 1 ? 1 : 0) - CLIP_MEAN[c]!) / CLIP_STD[c]!, 5);
    }
  });

  it('gives three channels for a greyscale image with alpha, and batches in order', async () => {
    const greyPng = await sharp({
      create: { width: 20, height: 20, channels: 4, background: { r: 128, g: 128, b: 128, alpha: 0.5 } },
    })
      .toColourspace('b-w')
      .png()
      .toBuffer();
    const batch = await clipPixelBatch([greyPng, await solid(20, 20, [0, 0, 0])], 8);
    expect(batch.dims).toEqual([2, 3, 8, 8]);
    const d = batch.data as Float32Array;
    const grey = [0, 1, 2].map((c) => d[c * 64]! * CLIP_STD[c]! + CLIP_MEAN[c]!); // back to [0, 1] per channel
    expect(grey[0]).toBeGreaterThan(0.4);
    expect(grey[0]).toBeLessThan(0.6);
    for (let c = 0; c < 3; c++) {
      expect(grey[c]).toBeCloseTo(grey[0]!, 6); // the same grey in all three channels
      expect(d[192 + c * 64]).toBeCloseTo(-CLIP_MEAN[c]! / CLIP_STD[c]!, 5);
    }
  });
});

describe("images given to CLIP and the VQGAN: the gallery's formats and limit, errors that name the file", () => {
  const clip = (bytes: Uint8Array, name: string) => clipPixels(bytes, 8, name);
  const vqgan = (bytes: Uint8Array, name: string) => readVqganImage(bytes, name, { multiple: 2 });

  it('takes PNG, JPEG, WebP and GIF', async () => {
    for (const [name, bytes] of [
      ['a.jpg', await makeJpeg({ width: 20, height: 16 })],
      ['a.webp', await makeWebp({ width: 20, height: 16 })],
      ['a.gif', await makeGif({ width: 20, height: 16 })],
      ['a.png', await solid(20, 16, [1, 2, 3])],
    ] as const) {
      expect(await clip(bytes, name), name).toHaveLength(3 * 64);
      expect((await vqgan(bytes, name)).width, name).toBe(20);
    }
  });

  it('refuses other formats (TIFF, text) by name, saying what to do', async () => {
    const tiff = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#123' } })
      .tiff()
      .toBuffer();
    for (const read of [clip, vqgan]) {
      await expect(read(tiff, 'scan.tiff')).rejects.toThrow(
        'scan.tiff is not a PNG, JPEG, WebP or GIF file. Convert it to one of these and try again.',
      );
      await expect(read(Buffer.from('not an image'), 'notes.png')).rejects.toThrow(/^notes\.png is not a PNG/);
    }
  });

  it('refuses a truncated JPEG by name, and an image over 100 megapixels before decoding it', async () => {
    const cut = truncate(await makeJpeg({ width: 64, height: 64 }));
    for (const read of [clip, vqgan]) {
      await expect(read(cut, 'cut.jpg')).rejects.toThrow(
        /^cut\.jpg is truncated or corrupt and cannot be decoded \(.+\)\. Re-export or re-download the file\.$/,
      );
      // 120 MP: over the gallery's 100 MP (images.ts MAX_PIXELS), under sharp's own default of 268 MP.
      await expect(read(pngBomb(12000, 10000), 'big.png')).rejects.toThrow(
        'big.png is 12000x10000 (120.0 megapixels), over the limit of 100.0 megapixels. Scale it down and try again.',
      );
    }
  });

  it('names a missing file given by path', async () => {
    await expect(clipPixels('/no/such/dir/cat.png', 8)).rejects.toThrow('/no/such/dir/cat.png: no such file.');
  });
});
