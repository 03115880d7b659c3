// sharp (libvips) reads every PNG text chunk into memory; the studio hands it PNGs without
// them (png-chunks.ts reads the text, within a budget), so a file of many compressed text chunks
// cannot blow up the decoder. Checked by recording what sharp is given.
import { deflateSync } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { addTextChunks, chunk, makePng, textChunk } from '../../fixtures/images.js';

const given: Uint8Array[] = [];
vi.mock('sharp', async (importOriginal) => {
  const real = (await importOriginal<{ default: (...a: unknown[]) => unknown }>()).default;
  const spy = (input: unknown, ...rest: unknown[]) => {
    if (input instanceof Uint8Array) given.push(input);
    return real(input, ...rest);
  };
  return { default: Object.assign(spy, real) };
});

const { inspectImage, makeThumbnail, pixelsOnly } = await import('../../../src/main/studio/images.js');
const { readChunks, textKeywords } = await import('../../../src/main/studio/png-chunks.js');
const { readImageMetadata } = await import('../../../src/main/studio/metadata/index.js');

describe('what sharp is given', () => {
  it('is a PNG without its text chunks, the same pixels, while the metadata is still read', async () => {
    const body = deflateSync(Buffer.alloc(1024 * 1024, 0x41));
    const png = addTextChunks(await makePng({ seed: 40, width: 32, height: 24 }), [
      textChunk('parameters', 'a red fox\nSteps: 20'),
      ...Array.from({ length: 50 }, (_, i) =>
        chunk('zTXt', Buffer.concat([Buffer.from(`z${i}`, 'latin1'), Buffer.of(0, 0), body])),
      ),
    ]);
    given.length = 0;
    const img = await inspectImage(png, 'many.png');
    expect(img).toMatchObject({ format: 'png', width: 32, height: 24 });
    const thumb = await makeThumbnail(png, 'many.png');
    expect(given.length).toBeGreaterThanOrEqual(2);
    for (const b of given) expect(textKeywords(b)).toEqual([]);
    // Nothing but the text went: the same thumbnail as from the file without any text chunks.
    const bare = await makePng({ seed: 40, width: 32, height: 24 });
    expect(Buffer.compare(thumb, await makeThumbnail(bare, 'bare.png'))).toBe(0);
    expect(readChunks(pixelsOnly(png)).map((c) => c.type)).toEqual(readChunks(bare).map((c) => c.type));
    expect(readImageMetadata(png).raw.parameters).toBe('a red fox\nSteps: 20');
  });

  it('passes other formats and PNGs whose chunks do not check out unchanged', async () => {
    const png = addTextChunks(await makePng({ seed: 41 }), [textChunk('Comment', 'x')]);
    const damaged = Uint8Array.from(png);
    damaged[damaged.length - 20]! ^= 0xff; // a CRC or data byte near the end: readChunks refuses it
    expect(pixelsOnly(damaged)).toBe(damaged);
    const notPng = Buffer.from('GIF89a');
    expect(pixelsOnly(notPng)).toBe(notPng);
  });
});
