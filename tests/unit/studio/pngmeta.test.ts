import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { ImageMetadata } from '../../../src/shared/api.js';
import { formatA1111, parseA1111 } from '../../../src/main/studio/metadata/a1111.js';
import { IGNORED_TEXT_KEY, parseMetadata, readImageMetadata } from '../../../src/main/studio/metadata/index.js';
import { OUR_KEYWORD, ourChunkText } from '../../../src/main/studio/metadata/ours.js';
import {
  crc32,
  decodeTextChunk,
  encodeTextChunk,
  insertTextChunks,
  MAX_TEXT_CHUNKS,
  MAX_TEXT_TOTAL,
  readChunks,
  readTextChunks,
  readTextChunksLimited,
  textKeywords,
  writeChunks,
  type TextChunk,
} from '../../../src/main/studio/png-chunks.js';
import {
  A1111_SAMPLE,
  addTextChunks,
  chunk,
  COMFY_PROMPT,
  COMFY_WORKFLOW,
  INVOKE_DREAM,
  INVOKE_METADATA,
  INVOKE_SD_METADATA,
  itxtChunk,
  makePng,
  referenceCrc32,
  textChunk,
  ztxtChunk,
} from '../../fixtures/images.js';

const JAPANESE = '富士山の夕焼け、桜 🌸🗻 — «café» naïve';

describe('CRC-32', () => {
  it('matches known vectors', () => {
    // The IEND chunk's CRC in every PNG, and the standard check value of CRC-32/ISO-HDLC.
    expect(crc32(Buffer.from('IEND', 'latin1'))).toBe(0xae426082);
    expect(crc32(Buffer.from('123456789', 'latin1'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
  });

  it('agrees with a bitwise reference on random data, and continues across calls', () => {
    const data = new Uint8Array(4099);
    let s = 12345;
    for (let i = 0; i < data.length; i++) data[i] = (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
    expect(crc32(data)).toBe(referenceCrc32(data));
    expect(crc32(data.subarray(1000), crc32(data.subarray(0, 1000)))).toBe(referenceCrc32(data));
  });

  it('validates every chunk of a PNG written by sharp (libpng)', async () => {
    const png = await makePng({ width: 40, height: 30, seed: 7 });
    const chunks = readChunks(png); // strict: throws on any CRC mismatch
    expect(chunks[0]!.type).toBe('IHDR');
    expect(chunks.at(-1)!.type).toBe('IEND');
    expect(Buffer.compare(Buffer.from(writeChunks(chunks)), png)).toBe(0);
  });

  it('rejects a PNG whose chunk CRC was damaged', async () => {
    const png = Buffer.from(await makePng({ seed: 8 }));
    png.writeUInt8(png.readUInt8(20) ^ 0xff, 20); // inside IHDR's data
    expect(() => readChunks(png)).toThrow(/CRC mismatch in chunk IHDR/);
  });
});

describe('text chunks', () => {
  const cases: TextChunk[] = [
    { keyword: 'Comment', text: 'plain Latin-1: café, ½, ©', kind: 'tEXt' },
    { keyword: 'Description', text: 'compressed ' + 'zz '.repeat(200), kind: 'zTXt' },
    {
      keyword: 'Title',
      text: JAPANESE,
      kind: 'iTXt',
      compressed: false,
      languageTag: 'ja',
      translatedKeyword: 'タイトル',
    },
    { keyword: 'Software', text: JAPANESE.repeat(20), kind: 'iTXt', compressed: true },
  ];

  it.each(cases)('round-trips $kind ($keyword)', async (t) => {
    const png = await makePng({ seed: 9 });
    const out = insertTextChunks(png, [t]);
    const back = readTextChunks(out);
    expect(back).toHaveLength(1);
    expect(back[0]!.keyword).toBe(t.keyword);
    expect(back[0]!.text).toBe(t.text);
    expect(back[0]!.kind).toBe(t.kind);
    if (t.kind === 'iTXt') {
      expect(back[0]!.languageTag).toBe(t.languageTag ?? '');
      expect(back[0]!.translatedKeyword).toBe(t.translatedKeyword ?? '');
    }
    // The file is still a valid PNG for libpng, with the same pixels.
    const [a, b] = await Promise.all([sharp(png).raw().toBuffer(), sharp(Buffer.from(out)).raw().toBuffer()]);
    expect(Buffer.compare(a, b)).toBe(0);
  });

  it('writes non-Latin text as iTXt even when tEXt was asked for', () => {
    const c = encodeTextChunk({ keyword: 'parameters', text: JAPANESE, kind: 'tEXt' });
    expect(c.type).toBe('iTXt');
    expect(decodeTextChunk(c)!.text).toBe(JAPANESE);
  });

  it('reads chunks written by an independent writer (tEXt, zTXt, iTXt plain and compressed)', async () => {
    const png = addTextChunks(await makePng({ seed: 10 }), [
      textChunk('a', 'Latin-1 ÿ'),
      ztxtChunk('b', 'deflated text'),
      itxtChunk('c', JAPANESE),
      itxtChunk('d', JAPANESE, true),
    ]);
    expect(readTextChunks(png).map((t) => [t.keyword, t.text])).toEqual([
      ['a', 'Latin-1 ÿ'],
      ['b', 'deflated text'],
      ['c', JAPANESE],
      ['d', JAPANESE],
    ]);
  });

  it('puts new chunks before the first IDAT and replaces only the named keywords', async () => {
    const png = addTextChunks(await makePng({ seed: 11 }), [
      textChunk(OUR_KEYWORD, '{}'),
      textChunk('parameters', 'keep me'),
    ]);
    const out = insertTextChunks(png, [{ keyword: OUR_KEYWORD, text: '{"new":1}', kind: 'iTXt' }], [OUR_KEYWORD]);
    const types = readChunks(out).map((c) => c.type);
    expect(types.lastIndexOf('iTXt')).toBeLessThan(types.indexOf('IDAT'));
    expect(readTextChunks(out).map((t) => [t.keyword, t.text])).toEqual([
      ['parameters', 'keep me'],
      [OUR_KEYWORD, '{"new":1}'],
    ]);
  });

  it('refuses invalid keywords', () => {
    expect(() => encodeTextChunk({ keyword: '', text: 'x', kind: 'tEXt' })).toThrow(/keyword/);
    expect(() => encodeTextChunk({ keyword: 'x'.repeat(80), text: 'x', kind: 'tEXt' })).toThrow(/keyword/);
    expect(() => encodeTextChunk({ keyword: 'キー', text: 'x', kind: 'iTXt' })).toThrow(/keyword/);
  });

  it('reports a truncated PNG clearly', async () => {
    const png = await makePng({ seed: 12 });
    expect(() => readChunks(png.subarray(0, png.length - 20))).toThrow(/truncated/);
    expect(() => readChunks(Buffer.from('GIF89a....'))).toThrow(/not a PNG/);
  });
});

describe('AUTOMATIC1111 parameters', () => {
  it('parses prompt, negative prompt and parameters, honouring quoted values with commas', () => {
    const p = parseA1111(A1111_SAMPLE);
    expect(p.prompt).toBe('a castle on a hill, (masterpiece:1.2), golden hour');
    expect(p.negativePrompt).toBe('blurry, lowres');
    expect(p.parameters).toEqual({
      Steps: '20',
      Sampler: 'DPM++ 2M Karras',
      'CFG scale': '7',
      Seed: '1234567890',
      Size: '512x768',
      'Model hash': '6ce0161689',
      Model: 'v1-5-pruned-emaonly',
      'Lora hashes': 'detail: 1a2b3c, style: 4d5e6f',
      Version: 'v1.6.0',
    });
  });

  it('keeps multi-line prompts and negative prompts; a last line with <3 pairs is prompt text', () => {
    const p = parseA1111('line one\nline two: not params\nNegative prompt: bad\nworse\nSteps: 5, Seed: 1, Size: 64x64');
    expect(p.prompt).toBe('line one\nline two: not params');
    expect(p.negativePrompt).toBe('bad\nworse');
    expect(p.parameters).toEqual({ Steps: '5', Seed: '1', Size: '64x64' });
    const q = parseA1111('just a prompt: with a colon');
    expect(q).toEqual({ prompt: 'just a prompt: with a colon', negativePrompt: null, parameters: {} });
  });

  it('writes the format A1111 writes, and reads it back', () => {
    const p = {
      prompt: 'a cat, 猫',
      negativePrompt: 'dog',
      parameters: {
        Steps: '20',
        Sampler: 'Euler a',
        Seed: '42',
        Size: '512x512',
        'Model hash': 'abc',
        Note: 'a, "b": c',
      },
    };
    const text = formatA1111(p);
    expect(text).toBe(
      'a cat, 猫\nNegative prompt: dog\nSteps: 20, Sampler: Euler a, Seed: 42, Size: 512x512, Model hash: abc, Note: "a, \\"b\\": c"',
    );
    expect(parseA1111(text)).toEqual(p);
  });

  it('fills the parameter line to the 3 pairs A1111 needs, only when it has fewer', () => {
    const fill = [
      ['Size', '8x8'],
      ['Seed', '9'],
      ['bad name!', 'x'],
      ['Made with', 'X'],
      ['Exported by', 'Y'],
    ] as const;
    const p = { prompt: 'p\na: 1, b: 2, c: 3', negativePrompt: null, parameters: { Seed: '1' } };
    const text = formatA1111(p, fill);
    expect(text).toBe('p\na: 1, b: 2, c: 3\nSeed: 1, Size: 8x8, Made with: X');
    expect(parseA1111(text)).toEqual({ ...p, parameters: { Seed: '1', Size: '8x8', 'Made with': 'X' } });
    const full = { prompt: 'q', negativePrompt: null, parameters: { Steps: '1', Seed: '2', Size: '3x3' } };
    expect(formatA1111(full, fill)).toBe(formatA1111(full));
  });
});

describe('metadata recognition', () => {
  const meta = (raw: Record<string, string>) => {
    const m = parseMetadata(raw);
    expect(ImageMetadata.safeParse(m).success).toBe(true);
    return m;
  };

  it('ComfyUI prompt graph: text from the encoders feeding the sampler, sampler settings, model', () => {
    const m = meta({ prompt: COMFY_PROMPT, workflow: COMFY_WORKFLOW });
    expect(m.source).toBe('comfyui');
    expect(m.prompt).toBe('beautiful scenery nature glass bottle landscape, purple galaxy bottle');
    expect(m.negativePrompt).toBe('text, watermark');
    expect(m.parameters).toMatchObject({
      Seed: '156680208700286',
      Steps: '20',
      'CFG scale': '8',
      Sampler: 'euler',
      Scheduler: 'normal',
      Size: '512x512',
      Model: 'v1-5-pruned-emaonly.safetensors',
    });
  });

  it('ComfyUI workflow alone (UI graph) still gives prompts and seed', () => {
    const m = meta({ workflow: COMFY_WORKFLOW });
    expect(m.source).toBe('comfyui');
    expect(m.prompt).toBe('beautiful scenery nature glass bottle landscape, purple galaxy bottle');
    expect(m.negativePrompt).toBe('text, watermark');
    expect(m.parameters).toMatchObject({ Seed: '156680208700286', Steps: '20', 'CFG scale': '8', Sampler: 'euler' });
  });

  it('ComfyUI: conditioning through a combine node and a seed from a primitive node', () => {
    const graph = {
      '1': { class_type: 'KSampler', inputs: { seed: ['9', 0], steps: 4, positive: ['2', 0], negative: ['5', 0] } },
      '2': { class_type: 'ConditioningCombine', inputs: { conditioning_1: ['3', 0], conditioning_2: ['4', 0] } },
      '3': { class_type: 'CLIPTextEncode', inputs: { text: 'red' } },
      '4': { class_type: 'CLIPTextEncode', inputs: { text: 'blue' } },
      '5': { class_type: 'CLIPTextEncode', inputs: { text: 'green' } },
      '9': { class_type: 'PrimitiveNode', inputs: { value: 77 } },
    };
    const m = meta({ prompt: JSON.stringify(graph) });
    expect(m.prompt).toBe('red\nblue');
    expect(m.negativePrompt).toBe('green');
    expect(m.parameters).toMatchObject({ Seed: '77', Steps: '4' });
  });

  it('InvokeAI 3/4 invokeai_metadata', () => {
    const m = meta({ invokeai_metadata: INVOKE_METADATA, invokeai_graph: '{}' });
    expect(m.source).toBe('invokeai');
    expect(m.prompt).toBe('a cozy cabin in the snowy woods, warm light');
    expect(m.negativePrompt).toBe('people, cars');
    expect(m.parameters).toMatchObject({
      Seed: '3025171486',
      Steps: '30',
      'CFG scale': '7.5',
      Scheduler: 'dpmpp_2m_k',
      Size: '768x512',
      Model: 'Juggernaut XL v9',
    });
  });

  it('InvokeAI 2.x sd-metadata and 1.x Dream (negative in brackets)', () => {
    const a = meta({ 'sd-metadata': INVOKE_SD_METADATA });
    expect(a).toMatchObject({
      source: 'invokeai',
      prompt: 'a red fox in tall grass',
      negativePrompt: 'blurry, cartoon',
    });
    expect(a.parameters).toMatchObject({
      Seed: '42',
      Steps: '50',
      'CFG scale': '7.5',
      Sampler: 'k_lms',
      Size: '512x512',
    });
    const b = meta({ Dream: INVOKE_DREAM });
    expect(b).toMatchObject({ source: 'invokeai', prompt: 'a lighthouse at dusk', negativePrompt: 'fog' });
    expect(b.parameters).toEqual({
      Steps: '50',
      Seed: '2938474',
      'CFG scale': '7.5',
      Sampler: 'k_lms',
      Size: '512x512',
    });
  });

  it('our own chunk wins over the others it travels with, and unknown/none are told apart', () => {
    const ours = ourChunkText({ prompt: '星空', negativePrompt: null, parameters: { Seed: '1' } });
    expect(meta({ [OUR_KEYWORD]: ours, parameters: A1111_SAMPLE })).toMatchObject({
      source: 'foundation-studio',
      prompt: '星空',
      parameters: { Seed: '1' },
    });
    expect(meta({ Software: 'GIMP' })).toMatchObject({ source: 'unknown', prompt: null, raw: { Software: 'GIMP' } });
    expect(meta({})).toMatchObject({ source: 'none', raw: {} });
    // Broken JSON in a known keyword is not an error: it falls through to what else is there.
    expect(meta({ invokeai_metadata: '{broken', parameters: 'p\nSteps: 1, Seed: 2, Size: 3x3' }).source).toBe(
      'automatic1111',
    );
  });

  it('reads metadata straight from an A1111-style PNG, with repeated keywords kept', async () => {
    const png = addTextChunks(await makePng({ seed: 13 }), [
      textChunk('parameters', A1111_SAMPLE),
      textChunk('Comment', 'x'),
      textChunk('Comment', 'y'),
    ]);
    const m = readImageMetadata(png);
    expect(m.source).toBe('automatic1111');
    expect(m.raw).toEqual({ parameters: A1111_SAMPLE, Comment: 'x', 'Comment#2': 'y' });
  });

  it('survives a zTXt bomb (inflates past the cap) by skipping that chunk', async () => {
    const { deflateSync } = await import('node:zlib');
    const bomb = Buffer.concat([
      Buffer.from('Comment\0\0', 'latin1'),
      deflateSync(Buffer.alloc(20 * 1024 * 1024, 0x41)),
    ]);
    const c = decodeTextChunk({ type: 'zTXt', data: bomb });
    expect(c).toBeNull();
  });

  it('reads at most MAX_TEXT_TOTAL of text from many compressed chunks, and says the rest was ignored', async () => {
    const { deflateSync } = await import('node:zlib');
    // 40 zTXt chunks of 1 MB each (under the per-chunk cap; ~1 KB each on disk): 40 MB if all were read.
    const body = deflateSync(Buffer.alloc(1024 * 1024, 0x41));
    const many = Array.from({ length: 40 }, (_, i) =>
      chunk('zTXt', Buffer.concat([Buffer.from(`c${i}`, 'latin1'), Buffer.of(0, 0), body])),
    );
    const png = addTextChunks(await makePng({ seed: 14 }), [textChunk('parameters', A1111_SAMPLE), ...many]);
    const { chunks, ignored } = readTextChunksLimited(png);
    const total = chunks.reduce((n, c) => n + c.keyword.length + c.text.length, 0);
    expect(total).toBeLessThanOrEqual(MAX_TEXT_TOTAL);
    expect(chunks.length).toBe(1 + 15); // the first chunks that fit in 16 MB
    expect(ignored).toBe(41 - chunks.length);
    const m = readImageMetadata(png);
    expect(m.source).toBe('automatic1111'); // what was read still counts
    expect(m.raw[IGNORED_TEXT_KEY]).toMatch(/^25 text chunk\(s\) were not read/);
    expect(Object.values(m.raw).reduce((n, t) => n + t.length, 0)).toBeLessThan(MAX_TEXT_TOTAL + 1000);
    // Keywords alone are read without inflating anything.
    expect(textKeywords(png)).toHaveLength(41);
  });

  it('reads at most MAX_TEXT_CHUNKS text chunks', async () => {
    const png = addTextChunks(
      await makePng({ seed: 15 }),
      Array.from({ length: MAX_TEXT_CHUNKS + 44 }, (_, i) => textChunk(`k${i}`, 'v')),
    );
    const { chunks, ignored } = readTextChunksLimited(png);
    expect(chunks).toHaveLength(MAX_TEXT_CHUNKS);
    expect(ignored).toBe(44);
    expect(readImageMetadata(png).raw[IGNORED_TEXT_KEY]).toMatch(/^44 text chunk/);
    // A file within the limits says nothing of the kind.
    expect(readImageMetadata(await makePng({ seed: 15, text: { a: 'b' } })).raw).toEqual({ a: 'b' });
  });
});
