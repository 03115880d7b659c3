// Megabyte-long adversarial metadata, for every reader: each parse must finish (the per-test
// timeout fails a parse that is quadratic in the text: at 1 MB one takes minutes) and give a
// result within the documented bounds, with what was cut said in the NOTE_KEY parameter.
import { describe, expect, it } from 'vitest';
import type { ImageMetadata } from '../../../src/shared/api.js';
import { exifUserComment, MAX_COMMENT_BYTES } from '../../../src/main/studio/exifmeta.js';
import { inspectImage } from '../../../src/main/studio/images.js';
import {
  MAX_PARAMETER_CHARS,
  MAX_PARAMETERS,
  MAX_PROMPT_CHARS,
  NOTE_KEY,
} from '../../../src/main/studio/metadata/common.js';
import { MAX_GRAPH_NODES, MAX_WALK_DEPTH } from '../../../src/main/studio/metadata/comfyui.js';
import { parseMetadata, readExifMetadata, readImageMetadata } from '../../../src/main/studio/metadata/index.js';
import {
  addTextChunks,
  exifWithUserComment,
  itxtChunk,
  makeJpegWithExif,
  makePng,
  textChunk,
  ztxtChunk,
} from '../../fixtures/images.js';

const MB = 1 << 20;
/** Generous: a linear parse of these takes milliseconds, a quadratic one minutes. */
const T = 10_000;

const note = (m: ImageMetadata) => m.parameters[NOTE_KEY] ?? '';
const promptCut = (chars: number) => `prompt: ${chars} characters, kept the first ${MAX_PROMPT_CHARS}`;

// ---------- AUTOMATIC1111, in every kind of text chunk ----------
interface A1111Case {
  name: string;
  text: string;
  check: (m: ImageMetadata) => void;
}

const manyParams = Array.from({ length: 80_000 }, (_, i) => `k${i}: ${i}`).join(', ');

/** A text that is all prompt: no parameters, only the note that the prompt was cut. */
const allPrompt = (name: string, text: string): A1111Case => ({
  name,
  text,
  check: (m) => {
    expect(m.prompt).toBe(text.slice(0, MAX_PROMPT_CHARS));
    expect(m.parameters).toEqual({ [NOTE_KEY]: promptCut(text.length) });
  },
});

const A1111_CASES: A1111Case[] = [
  allPrompt('one word, no `:` on the last line', 'a'.repeat(MB)),
  allPrompt('commas only', ','.repeat(MB)),
  allPrompt('a word before every comma', 'a,'.repeat(MB / 2)),
  allPrompt('quotes only', '"'.repeat(MB)),
  allPrompt('backslashes only', '\\'.repeat(MB)),
  allPrompt('brackets only', '['.repeat(MB)),
  {
    name: 'words and spaces, no `:`',
    text: 'ab '.repeat(MB / 4),
    check: (m) => {
      expect(m.prompt).toHaveLength(MAX_PROMPT_CHARS);
      expect(note(m)).toBe(promptCut((3 * MB) / 4 - 1)); // the trailing space is trimmed
    },
  },
  {
    name: 'a megabyte of tabs inside the last line',
    text: `x${'\t'.repeat(MB)}!`,
    check: (m) => {
      expect(m.prompt!.startsWith('x\t\t')).toBe(true);
      expect(note(m)).toBe(promptCut(MB + 2));
    },
  },
  {
    name: 'a quoted value that never closes',
    text: `Steps: 1, Seed: 2, Note: "${'x'.repeat(MB)}`,
    check: (m) => {
      expect(m.prompt).toBe('');
      expect(m.parameters.Steps).toBe('1');
      expect(m.parameters.Seed).toBe('2');
      // Not a closed quoted value: everything to the end of the line, cut.
      expect(m.parameters.Note).toBe(`"${'x'.repeat(MAX_PARAMETER_CHARS - 1)}`);
      expect(note(m)).toBe(`1 parameter value(s) cut to ${MAX_PARAMETER_CHARS} characters (Note)`);
    },
  },
  {
    name: 'quoted values whose closing quote is the next one’s opening',
    text: 'aa: "x, '.repeat(MB / 8),
    check: (m) => {
      expect(m.prompt).toBe('');
      expect(m.parameters).toEqual({ aa: '"x' });
    },
  },
  {
    name: 'a line per character',
    text: 'a\n'.repeat(MB / 2),
    check: (m) => {
      expect(m.prompt!.startsWith('a\na\na')).toBe(true);
      expect(note(m)).toBe(promptCut(MB - 1));
    },
  },
  {
    name: '80,000 parameters',
    text: `p\n${manyParams}`,
    check: (m) => {
      expect(m.prompt).toBe('p');
      expect(m.parameters.k0).toBe('0');
      expect(m.parameters[`k${MAX_PARAMETERS - 1}`]).toBe(String(MAX_PARAMETERS - 1));
      expect(m.parameters[`k${MAX_PARAMETERS}`]).toBeUndefined();
      expect(Object.keys(m.parameters)).toHaveLength(MAX_PARAMETERS + 1);
      expect(note(m)).toBe(`80000 parameters, kept the first ${MAX_PARAMETERS}`);
    },
  },
  {
    name: 'a megabyte-long parameter name',
    text: `p\n${'n'.repeat(MB)}: 1, Steps: 2, Seed: 3, Size: 4x4`,
    check: (m) => {
      expect(m.parameters).toEqual({
        Steps: '2',
        Seed: '3',
        Size: '4x4',
        [NOTE_KEY]: '1 parameter(s) with a name over 128 characters skipped',
      });
    },
  },
  {
    name: 'a megabyte-long negative prompt',
    text: `p\nNegative prompt: ${'n'.repeat(MB)}\nSteps: 1, Seed: 2, Size: 3x3`,
    check: (m) => {
      expect(m.prompt).toBe('p');
      expect(m.negativePrompt).toBe('n'.repeat(MAX_PROMPT_CHARS));
      expect(m.parameters).toMatchObject({ Steps: '1', Seed: '2', Size: '3x3' });
      expect(note(m)).toBe(`negative prompt: ${MB} characters, kept the first ${MAX_PROMPT_CHARS}`);
    },
  },
];

const KINDS = [
  { kind: 'tEXt', make: (t: string) => textChunk('parameters', t) },
  { kind: 'zTXt', make: (t: string) => ztxtChunk('parameters', t) },
  { kind: 'iTXt', make: (t: string) => itxtChunk('parameters', t) },
  { kind: 'iTXt compressed', make: (t: string) => itxtChunk('parameters', t, true) },
];

describe('AUTOMATIC1111 parameters, a megabyte of adversarial text', () => {
  const png = makePng({ seed: 60, width: 8, height: 8 });
  describe.each(KINDS)('in a $kind chunk', ({ make }) => {
    it.each(A1111_CASES)(
      '$name',
      async ({ text, check }) => {
        const m = readImageMetadata(addTextChunks(await png, [make(text)]));
        expect(m.source).toBe('automatic1111');
        expect(m.raw.parameters).toBe(text); // the raw text is kept whole (within the chunk bounds)
        check(m);
      },
      T,
    );
  });
});

// ---------- ComfyUI ----------
type Graph = Record<string, { class_type: string; inputs: Record<string, unknown> }>;

/**
 * A sampler whose negative is an encoder and whose positive conditioning reaches an encoder
 * `depth` links upstream, through a chain of concat nodes: `depth` + 2 nodes in all.
 */
function chainGraph(depth: number): Graph {
  const g: Graph = {
    '0': { class_type: 'KSampler', inputs: { steps: 20, positive: ['2', 0], negative: ['1', 0] } },
    '1': { class_type: 'CLIPTextEncode', inputs: { text: 'near' } },
  };
  // The node `d` links upstream is node d + 1.
  for (let d = 1; d < depth; d++)
    g[String(d + 1)] = { class_type: 'ConditioningConcat', inputs: { conditioning_to: [String(d + 2), 0] } };
  g[String(depth + 1)] = { class_type: 'CLIPTextEncode', inputs: { text: 'far away' } };
  return g;
}

describe('ComfyUI graphs, large and deep', () => {
  it(
    'a 200,000-node chain: no stack overflow, the first nodes read and the rest said so',
    () => {
      const m = parseMetadata({ prompt: JSON.stringify(chainGraph(200_000)) });
      expect(m.source).toBe('comfyui');
      expect(m.negativePrompt).toBe('near');
      expect(m.parameters.Steps).toBe('20');
      expect(note(m)).toContain(`ComfyUI graph: 200002 nodes, read the first ${MAX_GRAPH_NODES}`);
      expect(note(m)).toContain(`conditioning more than ${MAX_WALK_DEPTH} links upstream was not followed`);
    },
    T,
  );

  it(
    'the same through a PNG: the metadata is not dropped',
    async () => {
      const text = JSON.stringify(chainGraph(50_000));
      const png = addTextChunks(await makePng({ seed: 61, width: 8, height: 8 }), [itxtChunk('prompt', text, true)]);
      const m = readImageMetadata(png);
      expect(m).toMatchObject({ source: 'comfyui', negativePrompt: 'near', raw: { prompt: text } });
      expect(note(m)).toContain(`ComfyUI graph: 50002 nodes, read the first ${MAX_GRAPH_NODES}`);
    },
    T,
  );

  it('follows conditioning exactly MAX_WALK_DEPTH links upstream, and says when it stopped', () => {
    // chainGraph(d): the encoder is d links upstream of the sampler.
    const near = parseMetadata({ prompt: JSON.stringify(chainGraph(MAX_WALK_DEPTH)) });
    expect(near.prompt).toBe('far away');
    expect(near.parameters[NOTE_KEY]).toBeUndefined();
    const far = parseMetadata({ prompt: JSON.stringify(chainGraph(MAX_WALK_DEPTH + 1)) });
    expect(far.prompt).toBe('');
    expect(note(far)).toBe(`ComfyUI graph: conditioning more than ${MAX_WALK_DEPTH} links upstream was not followed`);
  });

  it(
    'a combine node of 5,000 encoders: every text, in input order',
    () => {
      const g: Graph = {
        s: { class_type: 'KSampler', inputs: { positive: ['c', 0] } },
        c: { class_type: 'ConditioningCombineMany', inputs: {} },
      };
      const want: string[] = [];
      for (let i = 0; i < 5000; i++) {
        g.c!.inputs[`c${i}`] = [`t${i}`, 0];
        g[`t${i}`] = { class_type: 'CLIPTextEncode', inputs: { text: `word ${i}` } };
        want.push(`word ${i}`);
      }
      const m = parseMetadata({ prompt: JSON.stringify(g) });
      expect(m.prompt).toBe(want.join('\n'));
      expect(m.parameters[NOTE_KEY]).toBeUndefined();
    },
    T,
  );

  it(
    'no sampler among 20,000 encoders: the text of the first ones, and the rest said so',
    () => {
      const g: Graph = {};
      for (let i = 0; i < 20_000; i++) g[`e${i}`] = { class_type: 'CLIPTextEncode', inputs: { text: `${i}` } };
      const m = parseMetadata({ prompt: JSON.stringify(g) });
      expect(m.source).toBe('comfyui');
      expect(m.prompt!.split('\n')).toHaveLength(MAX_GRAPH_NODES);
      expect(m.prompt!.endsWith(`\n${MAX_GRAPH_NODES - 1}`)).toBe(true);
      expect(note(m)).toBe(`ComfyUI graph: 20000 nodes, read the first ${MAX_GRAPH_NODES}`);
    },
    T,
  );

  it(
    'a megabyte of text in an encoder and in a sampler setting',
    () => {
      const g = {
        '1': { class_type: 'KSampler', inputs: { sampler_name: ','.repeat(MB), positive: ['2', 0] } },
        '2': { class_type: 'CLIPTextEncode', inputs: { text: '['.repeat(MB) } },
      };
      const m = parseMetadata({ prompt: JSON.stringify(g) });
      expect(m.prompt).toBe('['.repeat(MAX_PROMPT_CHARS));
      expect(m.parameters.Sampler).toHaveLength(MAX_PARAMETER_CHARS);
      expect(note(m)).toBe(`${promptCut(MB)}; 1 parameter value(s) cut to ${MAX_PARAMETER_CHARS} characters (Sampler)`);
    },
    T,
  );

  it(
    'a workflow (UI graph) of 30,000 nodes with megabyte widgets',
    () => {
      const nodes: unknown[] = [
        {
          id: 1,
          type: 'KSampler',
          inputs: [{ name: 'positive', link: 7 }],
          widgets_values: [1, 'x', 2, 'c'.repeat(MB)],
        },
        { id: 2, type: 'CLIPTextEncode', widgets_values: ['"'.repeat(MB)] },
      ];
      for (let i = 3; i <= 30_000; i++) nodes.push({ id: i, type: 'Note', widgets_values: ['n'] });
      const m = parseMetadata({ workflow: JSON.stringify({ nodes, links: [[7, 2, 0, 1, 0, 'CONDITIONING']] }) });
      expect(m.source).toBe('comfyui');
      expect(m.prompt).toBe('"'.repeat(MAX_PROMPT_CHARS));
      expect(m.parameters).toMatchObject({ Seed: '1', Steps: '2', 'CFG scale': 'c'.repeat(MAX_PARAMETER_CHARS) });
      expect(note(m)).toBe(
        `ComfyUI workflow: 30000 nodes, read the first ${MAX_GRAPH_NODES}; ${promptCut(MB)}; ` +
          `1 parameter value(s) cut to ${MAX_PARAMETER_CHARS} characters (CFG scale)`,
      );
    },
    T,
  );

  it.each([
    ['unbalanced braces', '{'.repeat(MB)],
    ['deeply nested arrays', `${'['.repeat(MB / 2)}${']'.repeat(MB / 2)}`],
    ['deeply nested objects', `${'{"a":'.repeat(MB / 8)}1${'}'.repeat(MB / 8)}`],
  ])(
    'prompt and workflow chunks of %s: not ComfyUI after all, nothing thrown',
    (_, text) => {
      const m = parseMetadata({ prompt: text, workflow: text });
      expect(m.source).toBe('unknown');
      expect(m.raw).toEqual({ prompt: text, workflow: text });
    },
    T,
  );
});

// ---------- InvokeAI ----------
describe('InvokeAI, a megabyte of adversarial text', () => {
  it(
    'invokeai_metadata with megabyte prompts and settings',
    () => {
      const j = {
        positive_prompt: '['.repeat(MB),
        negative_prompt: ','.repeat(MB),
        scheduler: '"'.repeat(MB),
        seed: 1,
      };
      const m = parseMetadata({ invokeai_metadata: JSON.stringify(j) });
      expect(m).toMatchObject({ source: 'invokeai', prompt: '['.repeat(MAX_PROMPT_CHARS) });
      expect(m.negativePrompt).toHaveLength(MAX_PROMPT_CHARS);
      expect(m.parameters.Seed).toBe('1');
      expect(m.parameters.Scheduler).toHaveLength(MAX_PARAMETER_CHARS);
      expect(note(m)).toBe(
        `${promptCut(MB)}; negative prompt: ${MB} characters, kept the first ${MAX_PROMPT_CHARS}; ` +
          `1 parameter value(s) cut to ${MAX_PARAMETER_CHARS} characters (Scheduler)`,
      );
    },
    T,
  );

  it.each([
    ['a megabyte of `[`', '['.repeat(MB), '['.repeat(MAX_PROMPT_CHARS), null, promptCut(MB)],
    ['a megabyte of `[]`', '[]'.repeat(MB / 2), '', ', '.repeat(MB / 2 - 1), null],
    ['`[a]` repeated', '[a]'.repeat(MB / 4), '', 'a, '.repeat(MB / 4 - 1) + 'a', null],
    ['one `[` then a megabyte', `p [${'x'.repeat(MB)}]`, 'p', 'x'.repeat(MB), null],
  ])(
    'sd-metadata with %s',
    (_, prompt, wantPrompt, wantNegative, wantNote) => {
      const m = parseMetadata({ 'sd-metadata': JSON.stringify({ image: { prompt, seed: 5 } }) });
      expect(m.source).toBe('invokeai');
      expect(m.prompt).toBe(wantPrompt);
      expect(m.negativePrompt).toBe(wantNegative === null ? null : wantNegative.slice(0, MAX_PROMPT_CHARS));
      expect(m.parameters.Seed).toBe('5');
      const negativeCut =
        wantNegative !== null && wantNegative.length > MAX_PROMPT_CHARS
          ? `negative prompt: ${wantNegative.length} characters, kept the first ${MAX_PROMPT_CHARS}`
          : null;
      expect(note(m)).toBe([wantNote, negativeCut].filter((x) => x !== null).join('; '));
    },
    T,
  );

  it(
    'sd-metadata with a prompt array of 100,000 parts',
    () => {
      const prompt = Array.from({ length: 100_000 }, () => ({ prompt: 'w', weight: 1 }));
      const m = parseMetadata({ 'sd-metadata': JSON.stringify({ image: { prompt } }) });
      expect(m.prompt).toBe('w '.repeat(MAX_PROMPT_CHARS / 2));
      expect(note(m)).toBe(promptCut(2 * 100_000 - 1));
    },
    T,
  );

  it.each([
    ['200,000 `[` (the 337-byte PNG of the report, inflated)', `"${'['.repeat(200_000)}" -s 5`, 200_000],
    ['a megabyte of `[`', `"${'['.repeat(MB)}" -s 5`, MB],
  ])(
    'Dream with %s',
    (_, text, chars) => {
      const m = parseMetadata({ Dream: text });
      expect(m.source).toBe('invokeai');
      expect(m.prompt).toBe('['.repeat(MAX_PROMPT_CHARS));
      expect(m.negativePrompt).toBeNull();
      expect(m.parameters).toEqual({ Steps: '5', [NOTE_KEY]: promptCut(chars) });
    },
    T,
  );

  it(
    'the 337-byte PNG: a zTXt Dream chunk of 200,000 `[`',
    async () => {
      const png = addTextChunks(await makePng({ seed: 62, width: 1, height: 1 }), [
        ztxtChunk('Dream', `"${'['.repeat(200_000)}"`),
      ]);
      expect(png.length).toBeLessThan(1000);
      const m = readImageMetadata(png);
      expect(m).toMatchObject({ source: 'invokeai', negativePrompt: null });
      expect(note(m)).toBe(promptCut(200_000));
    },
    T,
  );

  it.each([
    ['a negative of a megabyte', `"p [${'n'.repeat(MB)}]" -S 7`, { prompt: 'p', Seed: '7' }],
    ['a megabyte of flags', `"p" ${'-s 1 -x '.repeat(MB / 8)}`, { prompt: 'p', Steps: '1' }],
    ['a megabyte of escapes and no closing quote', `"${'\\"'.repeat(MB / 2)}`, null],
    ['a megabyte of spaces before the prompt', `${' '.repeat(MB)}"p" -s 2`, { prompt: 'p', Steps: '2' }],
  ])(
    'Dream with %s',
    (_, text, want) => {
      const m = parseMetadata({ Dream: text });
      if (want === null) {
        expect(m.source).toBe('unknown'); // not a Dream command line
        return;
      }
      const { prompt, ...params } = want;
      expect(m).toMatchObject({ source: 'invokeai', prompt });
      expect(m.parameters).toMatchObject(params);
    },
    T,
  );
});

// ---------- EXIF UserComment (JPEG and WebP) ----------
/** A WebP (VP8X + the image + an EXIF chunk) around `exif`: libvips hands any size back. */
async function webpWithExif(exif: Buffer): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  const simple = await sharp({ create: { width: 8, height: 6, channels: 3, background: 'red' } })
    .webp()
    .toBuffer();
  const riff = (type: string, data: Buffer) => {
    const h = Buffer.alloc(8);
    h.write(type, 0, 'latin1');
    h.writeUInt32LE(data.length, 4);
    return Buffer.concat([h, data, Buffer.alloc(data.length % 2)]);
  };
  const vp8x = Buffer.alloc(10);
  vp8x[0] = 0x08; // EXIF present
  vp8x.writeUIntLE(8 - 1, 4, 3);
  vp8x.writeUIntLE(6 - 1, 7, 3);
  const body = Buffer.concat([Buffer.from('WEBP'), riff('VP8X', vp8x), simple.subarray(12), riff('EXIF', exif)]);
  const head = Buffer.alloc(8);
  head.write('RIFF', 0);
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body]);
}

describe('EXIF UserComment, a megabyte of adversarial text', () => {
  // "UNICODE\0" + UTF-16: 499,996 characters make a comment of exactly 1,000,000 bytes.
  const FITS = 499_996;
  const cases = [
    ['no `:`', 'a'.repeat(FITS)],
    ['commas', ','.repeat(FITS)],
    ['quotes', '"'.repeat(FITS)],
    ['NULs before the last character', `${'\0'.repeat(FITS - 1)}x`],
  ];

  it.each(cases)(
    'a 1 MB comment of %s, in the EXIF block of a JPEG APP1 segment and of a WebP',
    (_, text) => {
      const tiff = exifWithUserComment(text);
      expect(tiff.length).toBe(44 + 1_000_000);
      for (const block of [Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]), tiff]) {
        const m = readExifMetadata(block);
        expect(m.source).toBe('automatic1111');
        expect(m.raw['EXIF UserComment']).toBe(text);
        expect(m.prompt).toBe(text.slice(0, MAX_PROMPT_CHARS));
        expect(note(m)).toBe(promptCut(FITS));
        // What index.ts does with it: the same text, parsed the same way.
        expect(exifUserComment(block)).toBe(text);
        expect(parseMetadata({ parameters: text }).parameters).toEqual(m.parameters);
      }
    },
    T,
  );

  it(
    'a 2 MB comment is read up to MAX_COMMENT_BYTES, and the note says so',
    () => {
      const m = readExifMetadata(exifWithUserComment('a'.repeat(MB)));
      const kept = (MAX_COMMENT_BYTES - 8) / 2; // UTF-16 after the 8-byte prefix
      expect(m.raw['EXIF UserComment']).toBe('a'.repeat(kept));
      expect(note(m)).toBe(
        `EXIF UserComment: ${2 * MB + 8} bytes, read the first ${MAX_COMMENT_BYTES}; ${promptCut(kept)}`,
      );
    },
    T,
  );

  it(
    'a real WebP file with a 1 MB comment, through sharp',
    async () => {
      const text = `p\n${'kk: v, '.repeat(FITS / 7)}`;
      const webp = await webpWithExif(exifWithUserComment(text));
      const img = await inspectImage(webp, 'big-exif.webp');
      expect(img.exif?.length).toBe(44 + 8 + 2 * text.length);
      const m = readExifMetadata(img.exif);
      expect(m).toMatchObject({ source: 'automatic1111', prompt: 'p' });
      expect(m.parameters).toEqual({ kk: 'v' });
    },
    T,
  );

  it(
    'a real JPEG file with the longest comment an APP1 segment holds (64 KiB)',
    async () => {
      const text = 'a '.repeat(16_000); // 32,000 characters: 64,008 bytes in UTF-16
      const jpeg = await makeJpegWithExif(exifWithUserComment(text), { seed: 63 });
      const img = await inspectImage(jpeg, 'big-exif.jpg');
      const m = readExifMetadata(img.exif);
      expect(m).toMatchObject({ source: 'automatic1111', prompt: text.trim() });
      expect(m.parameters).toEqual({});
    },
    T,
  );
});

// ---------- NovelAI, Fooocus, SwarmUI ----------
describe('NovelAI, Fooocus and SwarmUI, a megabyte of adversarial text', () => {
  it(
    'NovelAI: a megabyte Description and uc, 100,000 character captions',
    () => {
      const comment = JSON.stringify({
        uc: '['.repeat(MB),
        steps: 28,
        v4_prompt: { caption: { char_captions: Array.from({ length: 100_000 }, () => ({ char_caption: 'c' })) } },
      });
      const m = parseMetadata({ Software: 'NovelAI', Description: ','.repeat(MB), Comment: comment });
      expect(m).toMatchObject({ source: 'novelai', prompt: ','.repeat(MAX_PROMPT_CHARS) });
      expect(m.negativePrompt).toHaveLength(MAX_PROMPT_CHARS);
      expect(m.parameters.Steps).toBe('28');
      expect(m.parameters['Character prompts']).toHaveLength(MAX_PARAMETER_CHARS);
      expect(note(m)).toBe(
        `${promptCut(MB)}; negative prompt: ${MB} characters, kept the first ${MAX_PROMPT_CHARS}; ` +
          `1 parameter value(s) cut to ${MAX_PARAMETER_CHARS} characters (Character prompts)`,
      );
    },
    T,
  );

  it.each([
    ['a megabyte of `{`', '{'.repeat(MB)],
    ['a megabyte of `{"full_prompt"`', '{"full_prompt"'.repeat(MB / 14)],
    ['a megabyte of `Version: Fooocus v`', 'Version: Fooocus v, '.repeat(MB / 20)],
  ])(
    'Fooocus: %s in `parameters` beside fooocus_scheme: read as text, nothing thrown',
    (_, text) => {
      const m = parseMetadata({ parameters: text, fooocus_scheme: 'fooocus' });
      expect(m.source).toBe('fooocus');
      expect(m.raw.parameters).toBe(text);
      expect((m.prompt ?? '').length).toBeLessThanOrEqual(MAX_PROMPT_CHARS);
    },
    T,
  );

  it(
    'Fooocus: a megabyte resolution, 100,000 full prompts and LoRAs',
    () => {
      const j = {
        prompt: 'p',
        resolution: `(${','.repeat(MB)})`,
        full_prompt: Array.from({ length: 100_000 }, () => 'f'),
        loras: Array.from({ length: 100_000 }, (_, i) => [`l${i}`, 0.5, 'h']),
        metadata_scheme: 'fooocus',
      };
      const m = parseMetadata({ parameters: JSON.stringify(j) });
      expect(m).toMatchObject({ source: 'fooocus', prompt: 'p' });
      expect(m.parameters.Size).toHaveLength(MAX_PARAMETER_CHARS);
      expect(m.parameters['Full prompt']).toHaveLength(MAX_PARAMETER_CHARS);
      expect(m.parameters['Lora weights']!.startsWith('l0: 0.5, l1: 0.5')).toBe(true);
      expect(note(m)).toMatch(
        /^4 parameter value\(s\) cut to 16384 characters \(Size, Full prompt, Lora weights, Lora hashes\)$/,
      );
    },
    T,
  );

  it.each([
    ['a megabyte of "sui_image_params"', '"sui_image_params"'.repeat(MB / 18), 'automatic1111'],
    ['sui_image_params that is a list', '{"sui_image_params": [1, 2]}', 'automatic1111'],
    ['a megabyte of spaces before a last `,}`', `{"sui_image_params": {"prompt": "p"}${' '.repeat(MB)},}`, 'swarmui'],
  ])(
    'SwarmUI: %s: read as %s, nothing thrown',
    (_, text, source) => {
      const m = parseMetadata({ parameters: text });
      expect(m.source).toBe(source);
      expect(m.raw.parameters).toBe(text);
    },
    T,
  );

  it(
    'SwarmUI: 100,000 LoRAs and a megabyte prompt',
    () => {
      const j = {
        sui_image_params: { prompt: '"'.repeat(MB), loras: Array.from({ length: 100_000 }, (_, i) => `l${i}`) },
      };
      const m = parseMetadata({ parameters: JSON.stringify(j) });
      expect(m).toMatchObject({ source: 'swarmui', prompt: '"'.repeat(MAX_PROMPT_CHARS) });
      expect(m.parameters.LoRAs).toHaveLength(MAX_PARAMETER_CHARS);
      expect(note(m)).toBe(`${promptCut(MB)}; 1 parameter value(s) cut to ${MAX_PARAMETER_CHARS} characters (LoRAs)`);
    },
    T,
  );
});
