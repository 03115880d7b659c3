// Other tools' files through the studio, the way a user brings them in: imported (the title is the
// prompt), shown (the detail's metadata says which tool made it, with the prompts and settings),
// found by search, and exported with an AUTOMATIC1111 `parameters` chunk that A1111's PNG Info
// reads back with the prompts intact (checked with this project's reader and with an independent
// reading of A1111's algorithm), the tool's own text kept.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { apiCalls, type ImageMetadata } from '../../../src/shared/api.js';
import { ORIGINAL_PARAMETERS_KEY } from '../../../src/main/studio/gallery-export.js';
import { openStudio, type StudioService } from '../../../src/main/studio/index.js';
import { parseA1111 } from '../../../src/main/studio/metadata/a1111.js';
import { NOTE_KEY } from '../../../src/main/studio/metadata/common.js';
import { readTextChunks } from '../../../src/main/studio/png-chunks.js';
import { addTextChunks, itxtChunk, makePng, textChunk } from '../../fixtures/images.js';
import {
  a1111Reference,
  COMFY_CHAIN_PROMPT,
  COMFY_REROUTE_WORKFLOW,
  FOOOCUS_A1111,
  FOOOCUS_JSON,
  FOOOCUS_NEGATIVE,
  FOOOCUS_PROMPT,
  NOVELAI_NEGATIVE,
  NOVELAI_PROMPT,
  novelaiChunks,
  novelaiStealthJson,
  stealthPng,
  SWARM_JSON,
  SWARM_PROMPT,
} from '../../fixtures/tool-images.js';

const root = mkdtempSync(join(tmpdir(), 'fs-tools-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Calls a handler the way a transport does: arguments and result through the zod schemas. */
async function call<K extends keyof typeof apiCalls>(s: StudioService, name: K, args: unknown) {
  const parsed = apiCalls[name].args.parse(args);
  const result = await (s.handlers[name] as (a: unknown) => Promise<unknown>)(parsed);
  return apiCalls[name].result.parse(result) as Awaited<ReturnType<StudioService['handlers'][K]>>;
}

const STEALTH_A1111 =
  'a paper boat on a rain puddle, macro\nNegative prompt: hands\nSteps: 18, Sampler: DPM++ 2M, CFG scale: 5, Seed: 314, Size: 80x60';

interface Case {
  file: string;
  data: () => Promise<Uint8Array>;
  source: ImageMetadata['source'];
  prompt: string;
  negative: string | null;
  parameters: Record<string, string>;
  /** A word of the prompt that no other file has. */
  word: string;
  /** What A1111 reads from the exported chunk, when it is not the prompts above (a chunk kept as it was). */
  a1111?: { prompt: string; negative: string };
}

const withChunks = (seed: number, chunks: Buffer[]) =>
  makePng({ seed, width: 40, height: 30 }).then((p) => addTextChunks(p, chunks));

const CASES: Case[] = [
  {
    file: 'nai-2706368471.png',
    data: () => withChunks(501, novelaiChunks()),
    source: 'novelai',
    prompt: NOVELAI_PROMPT,
    negative: NOVELAI_NEGATIVE,
    parameters: { Steps: '28', Sampler: 'k_euler_ancestral', 'CFG scale': '5', Seed: '2706368471' },
    word: 'hanami',
  },
  {
    file: 'nai-stripped.png',
    data: async () => {
      // NovelAI's hidden copy alone, the prompt changed so the two files differ in what they say.
      const json = novelaiStealthJson().replaceAll('hanami festival', 'tsukimi night');
      return stealthPng('stealth_pngcomp', json, { width: 96, height: 72, seed: 502 });
    },
    source: 'novelai',
    prompt: NOVELAI_PROMPT.replace('hanami festival', 'tsukimi night'),
    negative: NOVELAI_NEGATIVE,
    parameters: {
      Seed: '2706368471',
      [NOTE_KEY]: 'hidden in the alpha channel (stealth pnginfo: stealth_pngcomp, gzip)',
    },
    word: 'tsukimi',
  },
  {
    file: 'fooocus_2024-05-01_12-00-00_1234.png',
    data: () => withChunks(503, [textChunk('parameters', FOOOCUS_JSON), textChunk('fooocus_scheme', 'fooocus')]),
    source: 'fooocus',
    prompt: FOOOCUS_PROMPT,
    negative: FOOOCUS_NEGATIVE,
    parameters: { Steps: '30', Seed: '7340526398742871052', Model: 'juggernautXL_v8Rundiffusion', Size: '1152x896' },
    word: 'gulls',
  },
  {
    file: 'fooocus-a1111.png',
    data: () =>
      withChunks(504, [
        textChunk('parameters', FOOOCUS_A1111.replace(/gulls/g, 'terns')),
        textChunk('fooocus_scheme', 'a1111'),
      ]),
    source: 'fooocus',
    prompt: FOOOCUS_PROMPT.replace('gulls', 'terns'),
    negative: FOOOCUS_NEGATIVE,
    parameters: { Steps: '30', Version: 'Fooocus v2.5.5' },
    word: 'terns',
    // Fooocus's own A1111 text is kept: A1111 reads the styled prompt it holds.
    a1111: {
      prompt: FOOOCUS_A1111.split('\n')[0]!.replace(/gulls/g, 'terns'),
      negative: 'people, boats, (worst quality, low quality:1.4)',
    },
  },
  {
    file: 'swarm-fox.png',
    data: () => withChunks(505, [itxtChunk('parameters', SWARM_JSON)]),
    source: 'swarmui',
    prompt: SWARM_PROMPT,
    negative: 'blurry, cartoon',
    parameters: {
      Steps: '28',
      Seed: '1618033988',
      'CFG scale': '6.5',
      Model: 'OfficialStableDiffusion/sd_xl_base_1.0',
    },
    word: 'telephoto',
  },
  {
    file: 'boat-rgb-stealth.png',
    data: async () => stealthPng('stealth_rgbcomp', STEALTH_A1111, { width: 80, height: 60, seed: 506 }),
    source: 'automatic1111',
    prompt: 'a paper boat on a rain puddle, macro',
    negative: 'hands',
    parameters: {
      Steps: '18',
      Seed: '314',
      [NOTE_KEY]: 'hidden in the red, green and blue channels (stealth pnginfo: stealth_rgbcomp, gzip)',
    },
    word: 'puddle',
  },
  {
    file: 'ComfyUI_00042_.png',
    data: () =>
      withChunks(507, [textChunk('prompt', COMFY_CHAIN_PROMPT), textChunk('workflow', COMFY_REROUTE_WORKFLOW)]),
    source: 'comfyui',
    prompt: 'a glass greenhouse full of orchids\nmorning mist\nvolumetric light\norchids, refined petals',
    negative: 'blurry, watermark\njpeg artifacts',
    parameters: { Steps: '25', Seed: '820948213', Model: 'sd_xl_base_1.0.safetensors' },
    word: 'greenhouse',
  },
  {
    file: 'ComfyUI_00043_.png',
    data: () => withChunks(508, [textChunk('workflow', COMFY_REROUTE_WORKFLOW)]),
    source: 'comfyui',
    prompt: 'an old stone bridge over a stream\nautumn leaves',
    negative: 'low quality',
    parameters: { Seed: '5551212', Steps: '24' },
    word: 'bridge',
  },
  {
    // Encoders and no sampler: a prompt without settings, whose last line looks like A1111's
    // parameter line. The export adds settings until A1111 cannot take that line for them.
    file: 'ComfyUI_00044_.png',
    data: () =>
      withChunks(509, [
        textChunk(
          'prompt',
          JSON.stringify({
            '1': {
              class_type: 'CLIPTextEncode',
              inputs: { text: 'a keep at night\nmood: calm, light: dim, palette: blue' },
            },
          }),
        ),
      ]),
    source: 'comfyui',
    prompt: 'a keep at night\nmood: calm, light: dim, palette: blue',
    negative: null,
    parameters: {},
    word: 'palette',
  },
];

describe('other tools’ files in the gallery', () => {
  let s: StudioService;
  const ids = new Map<string, number>();

  it('imports each with its prompt as the title, its tool, prompts and settings in the detail', async () => {
    s = await openStudio({ dataDir: join(root, 'gallery') });
    const files = await Promise.all(CASES.map(async (c) => ({ name: c.file, data: await c.data() })));
    const r = await call(s, 'importImages', { files });
    expect(r.failed).toEqual([]);
    expect(r.imported.map((i) => i.title)).toEqual(CASES.map((c) => c.prompt.split('\n')[0]));
    for (const [i, c] of CASES.entries()) {
      ids.set(c.file, r.imported[i]!.id);
      const d = await call(s, 'getItem', { id: r.imported[i]!.id });
      expect(d.metadata, c.file).toMatchObject({ source: c.source, prompt: c.prompt, negativePrompt: c.negative });
      expect(d.metadata.parameters, c.file).toMatchObject(c.parameters);
      expect(d.provenance.source, c.file).toBe(c.source);
    }
  }, 60_000);

  it('finds each by a word of its prompt, and by the tool that made it', async () => {
    const found = async (text: string) => (await call(s, 'galleryQuery', { text })).items.map((i) => i.id).sort();
    for (const c of CASES) expect(await found(c.word), c.word).toEqual([ids.get(c.file)]);
    const of = (source: string) =>
      CASES.filter((c) => c.source === source)
        .map((c) => ids.get(c.file)!)
        .sort();
    expect(await found('novelai')).toEqual(of('novelai'));
    expect(await found('fooocus')).toEqual(of('fooocus'));
    expect(await found('swarmui')).toEqual(of('swarmui'));
    expect(await found('kirschblüte')).toEqual(of('novelai')); // a non-ASCII word of the NovelAI prompts
  });

  it.each(CASES.map((c) => [c.file, c] as const))(
    '%s exports with A1111 text that A1111’s PNG Info reads back, prompts intact',
    async (_, c) => {
      const id = ids.get(c.file)!;
      const before = (await call(s, 'getItem', { id })).metadata;
      const ex = await call(s, 'exportItem', { id });
      const chunks = readTextChunks(ex.data);
      const parameters = chunks.filter((t) => t.keyword === 'parameters');
      expect(parameters).toHaveLength(1);
      const text = parameters[0]!.text;
      // A1111's reading, independently of this project's code.
      const want = c.a1111 ?? { prompt: c.prompt, negative: c.negative ?? '' };
      const a1111 = a1111Reference(text);
      expect(a1111.prompt).toBe(want.prompt);
      expect(a1111.negativePrompt).toBe(want.negative);
      expect(Object.keys(a1111.parameters).length).toBeGreaterThanOrEqual(3);
      if (Object.keys(c.parameters).length === 0)
        expect(a1111.parameters).toEqual({
          Size: '40x30',
          'Made with': 'ComfyUI',
          'Exported by': expect.stringMatching(/^Foundation Studio /),
        });
      for (const [k, v] of Object.entries(c.parameters)) if (k !== NOTE_KEY) expect(a1111.parameters[k], k).toBe(v);
      // This project's reader agrees.
      const ours = parseA1111(text);
      expect([ours.prompt, ours.negativePrompt ?? '']).toEqual([want.prompt, want.negative]);
      expect(ours.parameters).toEqual(a1111.parameters);
      // The tool's own text travels on; a `parameters` chunk that was not A1111's is kept aside, whole.
      const original = before.raw.parameters;
      if (original !== undefined && original.trimStart().startsWith('{')) {
        expect(chunks.find((t) => t.keyword === ORIGINAL_PARAMETERS_KEY)?.text).toBe(original);
      } else if (original !== undefined) expect(text).toBe(original);
      for (const [k, v] of Object.entries(before.raw))
        if (!k.startsWith(' ') && k !== 'parameters') expect(chunks.find((t) => t.keyword === k)?.text, k).toBe(v);
      // Same pixels (the hidden bits included).
      const [p0, p1] = await Promise.all([
        sharp(await c.data())
          .raw()
          .toBuffer(),
        sharp(Buffer.from(ex.data)).raw().toBuffer(),
      ]);
      expect(p0.equals(p1)).toBe(true);
    },
  );

  it('a re-import of an export reads as ours, with the same prompts', async () => {
    const id = ids.get('swarm-fox.png')!;
    const ex = await call(s, 'exportItem', { id });
    const r = await call(s, 'importImages', { files: [{ name: 'again.png', data: ex.data }] });
    const d = await call(s, 'getItem', { id: r.imported[0]!.id });
    expect(d.metadata).toMatchObject({
      source: 'foundation-studio',
      prompt: SWARM_PROMPT,
      negativePrompt: 'blurry, cartoon',
    });
    await s.close();
  });
});
