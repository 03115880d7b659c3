import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { exifUserComment, MAX_COMMENT_BYTES, readUserComment } from '../../../src/main/studio/exifmeta.js';
import { openStudio } from '../../../src/main/studio/index.js';
import { A1111_SAMPLE, exifWithUserComment, makeJpegWithExif } from '../../fixtures/images.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TEXT = `${A1111_SAMPLE.split('\n')[0]}, 猫 🐈\nNegative prompt: blurry\nSteps: 20, Seed: 5, Size: 64x48`;

describe('EXIF UserComment', () => {
  it.each([
    { order: 'MM' as const, utf16le: false },
    { order: 'II' as const, utf16le: false }, // piexif: big-endian text even in a little-endian TIFF
    { order: 'II' as const, utf16le: true },
  ])('reads UNICODE comments (TIFF $order, UTF-16 LE: $utf16le)', ({ order, utf16le }) => {
    expect(exifUserComment(exifWithUserComment(TEXT, { order, utf16le }))).toBe(TEXT);
  });

  it('reads the ASCII comments libvips writes, through sharp', async () => {
    const webp = await sharp({ create: { width: 8, height: 8, channels: 3, background: 'red' } })
      .withExif({ IFD2: { UserComment: 'a plain comment' } })
      .webp()
      .toBuffer();
    const { exif } = await sharp(webp).metadata();
    expect(exifUserComment(exif!)).toBe('a plain comment');
  });

  it('says how big the comment was and whether it was cut; NUL padding is dropped', () => {
    // "UNICODE\0" + 2 bytes a character.
    expect(readUserComment(exifWithUserComment(`${TEXT}\0\0`))).toEqual({
      text: TEXT,
      bytes: 8 + 2 * (TEXT.length + 2),
      truncated: false,
    });
    const over = readUserComment(exifWithUserComment('ab'.repeat(MAX_COMMENT_BYTES / 4)))!;
    expect(over.bytes).toBe(8 + MAX_COMMENT_BYTES);
    expect(over.truncated).toBe(true);
    expect(over.text).toBe('ab'.repeat(MAX_COMMENT_BYTES / 4 - 2)); // the 8 prefix bytes count
  });

  it('returns null for broken or absent data', () => {
    expect(exifUserComment(new Uint8Array(0))).toBeNull();
    expect(exifUserComment(Buffer.from('Exif\0\0XX*\0\0\0\0\0'))).toBeNull();
    const cut = exifWithUserComment(TEXT).subarray(0, 50);
    expect(exifUserComment(cut)).toBeNull();
  });

  it('an imported A1111 JPEG shows its parameters', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fs-exif-'));
    try {
      const s = await openStudio({ dataDir: dir });
      const data = await makeJpegWithExif(exifWithUserComment(TEXT), { seed: 77 });
      const r = await s.handlers.importImages({ files: [{ name: 'a1111.jpg', data }] });
      expect(r.failed).toEqual([]);
      const d = await s.handlers.getItem({ id: r.imported[0]!.id });
      expect(d.metadata).toMatchObject({
        source: 'automatic1111',
        prompt: 'a castle on a hill, (masterpiece:1.2), golden hour, 猫 🐈',
        negativePrompt: 'blurry',
        parameters: { Steps: '20', Seed: '5', Size: '64x48' },
      });
      await s.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
