// The model-image path (embed-image's CLIP preprocessing, the VQGAN reader) hands sharp a PNG without
// its text chunks, as the gallery's import does (images.ts pixelsOnly): libvips never inflates
// hundreds of zTXt chunks. Checked by recording what sharp is given.
import { deflateSync } from 'node:zlib';
import { describe, expect, it, vi } from 'vitest';
import { addTextChunks, chunk, makePng, textChunk } from '../../../tests/fixtures/images.js';

const given: Uint8Array[] = [];
vi.mock('sharp', async (importOriginal) => {
  const real = (await importOriginal<{ default: (...a: unknown[]) => unknown }>()).default;
  const spy = (input: unknown, ...rest: unknown[]) => {
    if (input instanceof Uint8Array) given.push(input);
    return real(input, ...rest);
  };
  return { default: Object.assign(spy, real) };
});

const { clipPixelBatch, clipPixels } = await import('./images-clip.js');
const { readVqganImage } = await import('./images-vqgan.js');
const { textKeywords } = await import('./png-chunks.js');

async function manyTextChunks(): Promise<{ png: Buffer; bare: Buffer }> {
  const body = deflateSync(Buffer.alloc(1024 * 1024, 0x41));
  const bare = await makePng({ seed: 42, width: 32, height: 24 });
  const png = addTextChunks(bare, [
    textChunk('parameters', 'a red fox\nSteps: 20'),
    ...Array.from({ length: 200 }, (_, i) =>
      chunk('zTXt', Buffer.concat([Buffer.from(`z${i}`, 'latin1'), Buffer.of(0, 0), body])),
    ),
  ]);
  return { png, bare };
}

/** What sharp was given while `f` ran (buffers only: raw pixel inputs are Buffers too, with no PNG text). */
async function sharpInputs(f: () => Promise<unknown>): Promise<Uint8Array[]> {
  given.length = 0;
  await f();
  return [...given];
}

describe('what sharp is given for a model image', () => {
  it('CLIP preprocessing (embed-image): a PNG without its text chunks, the same pixels', async () => {
    const { png, bare } = await manyTextChunks();
    expect(textKeywords(png)).toHaveLength(201);
    let px!: Float32Array;
    const inputs = await sharpInputs(async () => (px = await clipPixels(png, 24, 'many.png')));
    expect(inputs.length).toBeGreaterThanOrEqual(2); // the header read and the decode
    for (const b of inputs) expect(textKeywords(b)).toEqual([]);
    expect(Array.from(px)).toEqual(Array.from(await clipPixels(bare, 24)));

    const batch = await sharpInputs(() => clipPixelBatch([png, png], 24));
    expect(batch.length).toBeGreaterThanOrEqual(4);
    for (const b of batch) expect(textKeywords(b)).toEqual([]);
  });

  it('the VQGAN reader: a PNG without its text chunks, the same pixels', async () => {
    const { png, bare } = await manyTextChunks();
    let img!: Awaited<ReturnType<typeof readVqganImage>>;
    const inputs = await sharpInputs(async () => (img = await readVqganImage(png, 'many.png', { multiple: 8 })));
    expect(inputs.length).toBeGreaterThanOrEqual(2);
    for (const b of inputs) expect(textKeywords(b)).toEqual([]);
    const want = await readVqganImage(bare, 'bare.png', { multiple: 8 });
    expect(Array.from(img.data)).toEqual(Array.from(want.data));
  });
});
