// What other tools write, read from files built the way those tools write them
// (tests/fixtures/tool-images.ts): NovelAI, Fooocus (both schemes), SwarmUI, ComfyUI graphs whose
// conditioning goes through other nodes, and "stealth pnginfo" hidden in the pixels (through the
// import's own decode, sharp included). The adversarial cases of these formats, each bounded and
// keeping the rest of the metadata, are at the end.
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ImageMetadata } from '../../../src/shared/api.js';
import { decodeForImport } from '../../../src/main/studio/import-decode.js';
import { NOTE_KEY } from '../../../src/main/studio/metadata/common.js';
import {
  MAX_GRAPH_NODES,
  MAX_SAMPLERS,
  MAX_WALK_DEPTH,
  MAX_WALK_STEPS,
} from '../../../src/main/studio/metadata/comfyui.js';
import { parseMetadata, readExifMetadata, readImageMetadata } from '../../../src/main/studio/metadata/index.js';
import { decodeStealthPayload, MAX_STEALTH_BYTES } from '../../../src/main/studio/metadata/stealth.js';
import { MAX_INFLATED_TEXT } from '../../../src/main/studio/png-chunks.js';
import {
  A1111_SAMPLE,
  addTextChunks,
  exifWithUserComment,
  itxtChunk,
  makePng,
  textChunk,
} from '../../fixtures/images.js';
import {
  COMFY_CHAIN_PROMPT,
  COMFY_REROUTE_WORKFLOW,
  FOOOCUS_A1111,
  FOOOCUS_JSON,
  FOOOCUS_NEGATIVE,
  FOOOCUS_PROMPT,
  hideStealth,
  NOVELAI_COMMENT,
  NOVELAI_NEGATIVE,
  NOVELAI_PROMPT,
  NOVELAI_SOURCE,
  novelaiChunks,
  novelaiStealthJson,
  picture,
  pngFromPixels,
  stealthPayload,
  stealthPng,
  SWARM_JSON,
  SWARM_PROMPT,
  type StealthSignature,
} from '../../fixtures/tool-images.js';

/** Generous: everything here takes milliseconds; a quadratic reader would take minutes. */
const T = 20_000;
const MB = 1 << 20;
const note = (m: ImageMetadata) => m.parameters[NOTE_KEY] ?? '';
const valid = (m: ImageMetadata) => {
  expect(ImageMetadata.safeParse(m).success).toBe(true);
  return m;
};
const png = (chunks: Buffer[], seed = 1) =>
  makePng({ seed, width: 16, height: 12 }).then((p) => addTextChunks(p, chunks));
const decode = async (file: Uint8Array, name = 'file.png') => valid((await decodeForImport(file, name)).metadata);

// ---------- NovelAI ----------
describe('NovelAI', () => {
  it('a NovelAI PNG: the prompt from Description, the negative from the Comment’s uc, the settings', async () => {
    const m = valid(readImageMetadata(await png(novelaiChunks())));
    expect(m).toMatchObject({ source: 'novelai', prompt: NOVELAI_PROMPT, negativePrompt: NOVELAI_NEGATIVE });
    expect(m.parameters).toEqual({
      Steps: '28',
      Sampler: 'k_euler_ancestral',
      'CFG scale': '5',
      Seed: '2706368471',
      Size: '832x1216',
      Strength: '0.7',
      Noise: '0',
      'CFG rescale': '0',
      'Uncond scale': '1',
      'Noise schedule': 'native',
      SMEA: 'true',
      'SMEA DYN': 'false',
      'Dynamic thresholding': 'false',
      'Request type': 'PromptGenerateRequest',
      Model: NOVELAI_SOURCE,
      'Generation time': '6.013352386999759',
    });
    expect(m.raw.Comment).toBe(NOVELAI_COMMENT);
  });

  it('V4: the character captions, and the prompt from the Comment when there is no Description', () => {
    const comment = JSON.stringify({
      prompt: 'two knights, castle courtyard',
      steps: 23,
      scale: 6,
      seed: 42,
      sampler: 'k_euler_ancestral',
      v4_prompt: {
        caption: {
          base_caption: 'two knights, castle courtyard',
          char_captions: [
            { char_caption: 'knight, red cape', centers: [{ x: 0.3, y: 0.5 }] },
            { char_caption: 'knight, blue shield', centers: [{ x: 0.7, y: 0.5 }] },
          ],
        },
        use_coords: true,
        use_order: true,
      },
      v4_negative_prompt: { caption: { base_caption: 'blurry', char_captions: [{ char_caption: 'helmet' }] } },
    });
    const m = valid(
      parseMetadata({
        Title: 'AI generated image',
        Software: 'NovelAI',
        Source: 'NovelAI Diffusion V4 F6302A9D',
        Comment: comment,
      }),
    );
    expect(m).toMatchObject({ source: 'novelai', prompt: 'two knights, castle courtyard', negativePrompt: 'blurry' });
    expect(m.parameters).toMatchObject({
      'Character prompts': 'knight, red cape\nknight, blue shield',
      'Character negative prompts': 'helmet',
      Model: 'NovelAI Diffusion V4 F6302A9D',
    });
  });

  it.each([
    ['not JSON', 'steps=28 scale=5'],
    ['a JSON list', '[1, 2]'],
    ['a megabyte of `{`', '{'.repeat(MB)],
  ])(
    'a Comment that is %s: the prompt and the other chunks kept, the settings said lost',
    async (_, comment) => {
      const m = valid(readImageMetadata(await png(novelaiChunks(comment))));
      expect(m).toMatchObject({ source: 'novelai', prompt: NOVELAI_PROMPT, negativePrompt: null });
      expect(m.parameters).toEqual({
        Model: NOVELAI_SOURCE,
        'Generation time': '6.013352386999759',
        [NOTE_KEY]: 'the NovelAI Comment is not a JSON object: its settings were not read (its text is kept as found)',
      });
      expect(m.raw.Comment).toBe(comment);
      expect(m.raw.Title).toBe('NovelAI generated image');
    },
    T,
  );
});

// ---------- Fooocus ----------
describe('Fooocus', () => {
  const fooocusChunks = (parameters: string, scheme: string) => [
    textChunk('parameters', parameters),
    textChunk('fooocus_scheme', scheme),
  ];

  it('the fooocus scheme: JSON in `parameters`, the prompt as typed, the styled ones beside it', async () => {
    const m = valid(readImageMetadata(await png(fooocusChunks(FOOOCUS_JSON, 'fooocus'))));
    expect(m).toMatchObject({ source: 'fooocus', prompt: FOOOCUS_PROMPT, negativePrompt: FOOOCUS_NEGATIVE });
    expect(m.parameters).toMatchObject({
      'Prompt expansion':
        'a lighthouse on a basalt cliff at dawn, gulls, intricate, elegant, highly detailed, sharp focus, cinematic light',
      Styles: "['Fooocus V2', 'Fooocus Enhance', 'Fooocus Sharp']",
      Performance: 'Speed',
      Steps: '30',
      'CFG scale': '4',
      Sharpness: '2',
      'ADM guidance': '(1.5, 0.8, 0.3)',
      Model: 'juggernautXL_v8Rundiffusion',
      'Model hash': 'aeb7e9e6897a1e58b10494bd989d001e3d4bc9b634633cd7b559838f612c2867',
      Refiner: 'None',
      'Refiner switch': '0.5',
      Sampler: 'dpmpp_2m_sde_gpu',
      Scheduler: 'karras',
      VAE: 'Default (model)',
      Seed: '7340526398742871052',
      Version: 'Fooocus v2.5.5',
      Size: '1152x896',
      'Lora weights': 'sd_xl_offset_example-lora_1.0: 0.1',
      'LoRA 1': 'sd_xl_offset_example-lora_1.0 : 0.1',
    });
    expect(m.parameters['Full prompt']).toMatch(
      /^a lighthouse on a basalt cliff at dawn, gulls, a lighthouse .* kodak$/,
    );
    expect(m.parameters['Full negative prompt']).toMatch(/^people, boats, \(worst quality, .*bad art:1\.4\)$/);
    expect(m.raw.parameters).toBe(FOOOCUS_JSON);
  });

  it('an empty typed negative prompt: the styles’ negative prompt is the negative', () => {
    const j = JSON.parse(FOOOCUS_JSON) as Record<string, unknown>;
    j.negative_prompt = '';
    j.full_negative_prompt = ['(worst quality, low quality:1.4)'];
    const m = parseMetadata({ parameters: JSON.stringify(j), fooocus_scheme: 'fooocus' });
    expect(m.negativePrompt).toBe('(worst quality, low quality:1.4)');
    expect(m.parameters['Full negative prompt']).toBeUndefined();
  });

  it('the a1111 scheme: A1111 text beside fooocus_scheme, the prompt as typed from Raw prompt', async () => {
    const m = valid(readImageMetadata(await png(fooocusChunks(FOOOCUS_A1111, 'a1111'))));
    expect(m).toMatchObject({ source: 'fooocus', prompt: FOOOCUS_PROMPT, negativePrompt: FOOOCUS_NEGATIVE });
    expect(m.parameters).toMatchObject({
      'Full prompt': FOOOCUS_A1111.split('\n')[0],
      'Full negative prompt': 'people, boats, (worst quality, low quality:1.4)',
      Steps: '30',
      Seed: '7340526398742871052',
      Size: '1152x896',
      Version: 'Fooocus v2.5.5',
    });
  });

  it('a JPEG from Fooocus (JSON in the EXIF UserComment, no scheme chunk)', () => {
    const m = valid(readExifMetadata(exifWithUserComment(FOOOCUS_JSON)));
    expect(m).toMatchObject({ source: 'fooocus', prompt: FOOOCUS_PROMPT, negativePrompt: FOOOCUS_NEGATIVE });
  });

  it('older labels as keys ("Prompt", "Negative Prompt", "Fooocus V2 Expansion", ...)', () => {
    const text = JSON.stringify({
      Prompt: 'a tin robot',
      'Negative Prompt': 'rust',
      'Fooocus V2 Expansion': 'a tin robot, shiny',
      Styles: "['Fooocus V2']",
      Performance: 'Quality',
      Resolution: '(1024, 1024)',
      'Guidance Scale': 7,
      'Base Model': 'sd_xl_base_1.0_0.9vae.safetensors',
      Seed: 12,
      Version: 'v2.1.0',
    });
    const m = valid(parseMetadata({ parameters: text }));
    expect(m).toMatchObject({ source: 'fooocus', prompt: 'a tin robot', negativePrompt: 'rust' });
    expect(m.parameters).toMatchObject({
      'Prompt expansion': 'a tin robot, shiny',
      Size: '1024x1024',
      'CFG scale': '7',
      Model: 'sd_xl_base_1.0_0.9vae.safetensors',
      Seed: '12',
    });
  });
});

// ---------- SwarmUI ----------
describe('SwarmUI', () => {
  const swarmParameters = {
    Steps: '28',
    Sampler: 'dpmpp_2m',
    Scheduler: 'karras',
    'CFG scale': '6.5',
    Seed: '1618033988',
    Model: 'OfficialStableDiffusion/sd_xl_base_1.0',
    LoRAs: 'fox-detail-v2',
    'LoRA weights': '0.8',
    'Aspect ratio': '3:2',
    'SwarmUI version': '0.9.3.1',
    Size: '1216x832',
    automaticvae: 'true',
    date: '2024-11-13',
    generation_time: '0.41 (prep) and 6.02 (gen) seconds',
    Models: 'OfficialStableDiffusion/sd_xl_base_1.0.safetensors',
  };

  it('sui_image_params in an iTXt `parameters` chunk', async () => {
    const m = valid(readImageMetadata(await png([itxtChunk('parameters', SWARM_JSON)])));
    expect(m).toMatchObject({ source: 'swarmui', prompt: SWARM_PROMPT, negativePrompt: 'blurry, cartoon' });
    expect(m.parameters).toEqual(swarmParameters);
  });

  it('a JPEG from SwarmUI (the same JSON in the EXIF UserComment)', () => {
    const m = valid(readExifMetadata(exifWithUserComment(SWARM_JSON)));
    expect(m).toMatchObject({ source: 'swarmui', prompt: SWARM_PROMPT });
    expect(m.parameters).toEqual(swarmParameters);
  });

  it('the example of SwarmUI’s documentation, comma before the closing brace and all', () => {
    const doc = `{
  "sui_image_params": {
    "prompt": "a photo of a cat",
    "model": "OfficialStableDiffusion/sd_xl_base_1.0",
    "seed": 1,
    "steps": 20,
    "cfgscale": 7.0,
    "aspectratio": "1:1",
    "width": 1024,
    "height": 1024,
    "automaticvae": true,
    "negativeprompt": "",
    "swarm_version": "0.9.3.1"
  },
  "sui_extra_data": {
    "date": "2024-11-13",
    "generation_time": "6.11 (prep) and 4.84 (gen) seconds"
  },
}`;
    const m = valid(parseMetadata({ parameters: doc }));
    expect(m).toMatchObject({ source: 'swarmui', prompt: 'a photo of a cat', negativePrompt: null });
    expect(m.parameters).toMatchObject({ Seed: '1', Steps: '20', 'CFG scale': '7', Size: '1024x1024' });
  });

  it('a `parameters` chunk that only mentions sui_image_params is A1111 text', () => {
    const m = parseMetadata({ parameters: 'the word "sui_image_params" in a prompt\nSteps: 1, Seed: 2, Size: 3x3' });
    expect(m).toMatchObject({ source: 'automatic1111', prompt: 'the word "sui_image_params" in a prompt' });
  });
});

// ---------- ComfyUI ----------
describe('ComfyUI, conditioning through other nodes', () => {
  it('an API graph: every encoder each sampler’s conditioning reaches, each output of ControlNetApplyAdvanced apart', async () => {
    const m = valid(readImageMetadata(await png([textChunk('prompt', COMFY_CHAIN_PROMPT)])));
    expect(m.source).toBe('comfyui');
    // Base sampler: SetArea <- SDXL encoder, unCLIP <- Concat <- two encoders; then the refiner's.
    expect(m.prompt).toBe(
      'a glass greenhouse full of orchids\nmorning mist\nvolumetric light\norchids, refined petals',
    );
    expect(m.negativePrompt).toBe('blurry, watermark\njpeg artifacts');
    expect(m.parameters).toEqual({
      Steps: '25',
      Sampler: 'dpmpp_2m',
      Scheduler: 'karras',
      'CFG scale': '6.5',
      Seed: '820948213',
      Denoise: '1',
      Size: '1024x1024',
      Model: 'sd_xl_base_1.0.safetensors',
    });
  });

  it('a UI graph alone: through Reroute nodes and a combine', async () => {
    const m = valid(readImageMetadata(await png([textChunk('workflow', COMFY_REROUTE_WORKFLOW)])));
    expect(m).toMatchObject({
      source: 'comfyui',
      prompt: 'an old stone bridge over a stream\nautumn leaves',
      negativePrompt: 'low quality',
    });
    expect(m.parameters).toEqual({
      Seed: '5551212',
      Steps: '24',
      'CFG scale': '7',
      Sampler: 'euler_ancestral',
      Scheduler: 'normal',
    });
  });

  it('a UI graph with its links as objects (newer frontends)', () => {
    const wf = JSON.parse(COMFY_REROUTE_WORKFLOW) as { links: unknown[][] };
    const links = wf.links.map(([id, from, slot, to, toSlot, type]) => ({
      id,
      origin_id: from,
      origin_slot: slot,
      target_id: to,
      target_slot: toSlot,
      type,
    }));
    const m = parseMetadata({ workflow: JSON.stringify({ ...wf, links }) });
    expect(m).toMatchObject({
      prompt: 'an old stone bridge over a stream\nautumn leaves',
      negativePrompt: 'low quality',
    });
  });

  it('a Flux graph: SamplerCustomAdvanced <- BasicGuider <- FluxGuidance <- CLIPTextEncodeFlux', () => {
    const g = {
      '13': {
        class_type: 'SamplerCustomAdvanced',
        inputs: { noise: ['25', 0], guider: ['22', 0], sampler: ['16', 0], sigmas: ['17', 0], latent_image: ['5', 0] },
      },
      '22': { class_type: 'BasicGuider', inputs: { model: ['12', 0], conditioning: ['60', 0] } },
      '60': { class_type: 'FluxGuidance', inputs: { guidance: 3.5, conditioning: ['6', 0] } },
      '6': {
        class_type: 'CLIPTextEncodeFlux',
        inputs: { clip_l: '', t5xxl: 'a neon sign reading OPEN in the rain', guidance: 3.5, clip: ['11', 0] },
      },
      '25': { class_type: 'RandomNoise', inputs: { noise_seed: 31337 } },
    };
    const m = parseMetadata({ prompt: JSON.stringify(g) });
    expect(m).toMatchObject({
      source: 'comfyui',
      prompt: 'a neon sign reading OPEN in the rain',
      negativePrompt: null,
    });
  });
});

// ---------- stealth pnginfo ----------
describe('stealth pnginfo, through the import’s decode', () => {
  const A1111_TEXT =
    'a lantern-lit alley after rain, 夜\nNegative prompt: crowds\nSteps: 24, Sampler: Euler a, CFG scale: 6, Seed: 99, Size: 64x48';

  const ALPHA = 'the alpha channel';
  const RGB = 'the red, green and blue channels';
  it.each<[StealthSignature, string, string]>([
    ['stealth_pnginfo', ALPHA, ''],
    ['stealth_pngcomp', ALPHA, ', gzip'],
    ['stealth_rgbinfo', RGB, ''],
    ['stealth_rgbcomp', RGB, ', gzip'],
  ])(
    '%s: A1111’s infotext from the pixels, and where it was found',
    async (signature, place, gzip) => {
      const m = await decode(stealthPng(signature, A1111_TEXT, { seed: 7 }));
      expect(m).toMatchObject({
        source: 'automatic1111',
        prompt: 'a lantern-lit alley after rain, 夜',
        negativePrompt: 'crowds',
      });
      expect(m.parameters).toEqual({
        Steps: '24',
        Sampler: 'Euler a',
        'CFG scale': '6',
        Seed: '99',
        Size: '64x48',
        [NOTE_KEY]: `hidden in ${place} (stealth pnginfo: ${signature}${gzip})`,
      });
      expect(m.raw).toEqual({ [` ${signature} (${place})`]: A1111_TEXT });
    },
    T,
  );

  it('NovelAI’s alpha channel: its text chunks as gzip JSON, read as NovelAI', async () => {
    const m = await decode(stealthPng('stealth_pngcomp', novelaiStealthJson(), { width: 96, height: 80 }));
    expect(m).toMatchObject({ source: 'novelai', prompt: NOVELAI_PROMPT, negativePrompt: NOVELAI_NEGATIVE });
    expect(m.parameters).toMatchObject({ Steps: '28', Seed: '2706368471', Model: NOVELAI_SOURCE });
    expect(note(m)).toBe('hidden in the alpha channel (stealth pnginfo: stealth_pngcomp, gzip)');
  });

  it(
    'the bits across many columns of a short image, and down one column of a tall one',
    async () => {
      for (const [width, height] of [
        [900, 3],
        [1, 4000],
      ] as const) {
        const m = await decode(stealthPng('stealth_pnginfo', A1111_TEXT, { width, height }));
        expect(m.prompt).toBe('a lantern-lit alley after rain, 夜');
      }
    },
    T,
  );

  it('text chunks with a prompt win: the pixels are not read', async () => {
    const file = stealthPng('stealth_pnginfo', 'hidden prompt\nSteps: 1, Seed: 2, Size: 3x3', {
      chunks: [textChunk('parameters', A1111_SAMPLE)],
    });
    const m = await decode(file);
    expect(m.prompt).toBe('a castle on a hill, (masterpiece:1.2), golden hour');
    expect(Object.keys(m.raw)).toEqual(['parameters']);
  });

  it('text chunks without a prompt are kept beside what the pixels say', async () => {
    const file = stealthPng('stealth_pngcomp', A1111_TEXT, { chunks: [textChunk('Software', 'Photoshop')] });
    const m = await decode(file);
    expect(m).toMatchObject({ source: 'automatic1111', prompt: 'a lantern-lit alley after rain, 夜' });
    expect(m.raw.Software).toBe('Photoshop');
  });

  it('no signature: nothing found, nothing said', async () => {
    const w = 40;
    const h = 30;
    const m = await decode(pngFromPixels(w, h, 4, picture(w, h, 4, 3)));
    expect(m).toMatchObject({ source: 'none', prompt: null, parameters: {}, raw: {} });
  });
});

// ---------- bad input ----------
describe('bad input, bounded, the rest kept', () => {
  /** An RGBA PNG of `width` x `height` whose alpha holds `payload` under `signature`, with a `length` written. */
  const crafted = (signature: StealthSignature, payload: Uint8Array, length: number, width = 64, height = 48) => {
    const channels = signature.startsWith('stealth_png') ? 4 : 3;
    const px = hideStealth(width, height, picture(width, height, channels), signature, payload, length);
    return pngFromPixels(width, height, channels, px, [textChunk('Software', 'an image editor')]);
  };
  const problem = async (file: Uint8Array) => {
    const m = await decode(file);
    expect(m.source).toBe('unknown');
    expect(m.prompt).toBeNull();
    expect(m.raw).toEqual({ Software: 'an image editor' });
    return note(m);
  };

  it('a length past the end of the image (a truncated payload)', async () => {
    // 64 x 48 = 3072 alpha bits; 152 of them are the header.
    const text = stealthPayload('stealth_pnginfo', 'x'.repeat(1000));
    expect(await problem(crafted('stealth_pnginfo', text, text.length * 8))).toBe(
      'stealth pnginfo (stealth_pnginfo) in the alpha channel not read: its length (8000 bits) runs past the end of ' +
        'the image (2920 bits left)',
    );
  });

  it('an absurd length (2^32 - 1 bits), in alpha and in rgb', async () => {
    expect(await problem(crafted('stealth_pngcomp', Buffer.from('x'), 0xffffffff))).toMatch(
      /^stealth pnginfo \(stealth_pngcomp\) in the alpha channel not read: its length \(4294967295 bits\) runs past/,
    );
    expect(await problem(crafted('stealth_rgbinfo', Buffer.from('x'), 0xffffffff))).toMatch(
      /^stealth pnginfo \(stealth_rgbinfo\) in the red, green and blue channels not read: its length \(4294967295 bits\)/,
    );
  });

  it('a length of 0, and an image that ends inside the length', async () => {
    expect(await problem(crafted('stealth_pnginfo', Buffer.alloc(0), 0))).toMatch(/not read: its length is 0$/);
    // 10 x 13 = 130 pixels: the signature's 120 bits fit, the length's 32 do not.
    expect(await problem(crafted('stealth_pnginfo', Buffer.alloc(0), 0, 10, 13))).toMatch(
      /not read: the image ends before the payload’s length$/,
    );
  });

  it(
    'a length the image holds but over MAX_STEALTH_BYTES: not read',
    async () => {
      const side = 1500; // 2,250,000 alpha bits
      const bits = MAX_STEALTH_BYTES * 8 + 8;
      expect(bits).toBeLessThan(side * side - 152);
      const px = hideStealth(side, side, new Uint8Array(side * side * 4), 'stealth_pnginfo', Buffer.from('abc'), bits);
      const m = await decode(pngFromPixels(side, side, 4, px));
      expect(note(m)).toBe(
        `stealth pnginfo (stealth_pnginfo) in the alpha channel not read: its length (${MAX_STEALTH_BYTES + 1} bytes) ` +
          `is over the limit of ${MAX_STEALTH_BYTES} bytes`,
      );
    },
    T,
  );

  it(
    'a gzip bomb in stealth_pngcomp: 64 MiB of zeros inflate no further than MAX_INFLATED_TEXT',
    async () => {
      const bomb = gzipSync(Buffer.alloc(64 * MB));
      expect(bomb.length).toBeLessThan(MAX_STEALTH_BYTES);
      const side = Math.ceil(Math.sqrt(bomb.length * 8 + 152));
      expect(await problem(crafted('stealth_pngcomp', bomb, bomb.length * 8, side, side))).toBe(
        `stealth pnginfo (stealth_pngcomp) in the alpha channel not read: its gzip payload inflates past ${MAX_INFLATED_TEXT / MB} MiB`,
      );
      // The decoder alone, too: the limit is zlib's maxOutputLength, the output is never all made.
      const before = process.memoryUsage().arrayBuffers;
      const r = decodeStealthPayload(bomb, { signature: 'stealth_pngcomp', mode: 'alpha', compressed: true, bits: 0 });
      expect(r).toMatchObject({ problem: `its gzip payload inflates past ${MAX_INFLATED_TEXT / MB} MiB` });
      expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(32 * MB);
    },
    T,
  );

  it('a corrupt gzip payload, and one that is not UTF-8', async () => {
    const junk = Buffer.from('this is not gzip at all');
    expect(await problem(crafted('stealth_pngcomp', junk, junk.length * 8))).toMatch(/its gzip payload is corrupt$/);
    const latin1 = gzipSync(Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    expect(await problem(crafted('stealth_pngcomp', latin1, latin1.length * 8))).toMatch(
      /its payload is not UTF-8 text$/,
    );
  });

  // ComfyUI: cycles end, 200,000 nodes are cut to the first MAX_GRAPH_NODES, the walks share a budget.
  it('an API graph with cycles through conditioning nodes', () => {
    const g = {
      s: { class_type: 'KSampler', inputs: { positive: ['a', 0], negative: ['n', 0], steps: 3 } },
      a: { class_type: 'ConditioningCombine', inputs: { conditioning_1: ['b', 0], conditioning_2: ['t', 0] } },
      b: { class_type: 'ConditioningConcat', inputs: { conditioning_to: ['a', 0], conditioning_from: ['b', 0] } },
      t: { class_type: 'CLIPTextEncode', inputs: { text: ['p', 0] } },
      p: { class_type: 'PrimitiveNode', inputs: { value: ['p', 0] } }, // a primitive linked to itself
      n: { class_type: 'ControlNetApplyAdvanced', inputs: { positive: ['n', 1], negative: ['n', 0] } },
    };
    const m = valid(parseMetadata({ prompt: JSON.stringify(g) }));
    expect(m).toMatchObject({ source: 'comfyui', prompt: '', negativePrompt: null });
    expect(m.parameters).toEqual({ Steps: '3' });
  });

  it('a UI graph whose reroutes form a cycle', () => {
    const wf = JSON.parse(COMFY_REROUTE_WORKFLOW) as {
      nodes: { id: number; inputs?: { link: number }[] }[];
      links: unknown[][];
    };
    // Reroute 12 (the negative) now reads Reroute 11, which reads 12 back instead of the combine.
    wf.nodes.find((n) => n.id === 12)!.inputs![0]!.link = 20;
    wf.nodes.find((n) => n.id === 11)!.inputs![0]!.link = 21;
    wf.links.push([20, 11, 0, 12, 0, '*'], [21, 12, 0, 11, 0, '*']);
    const m = valid(parseMetadata({ workflow: JSON.stringify(wf) }));
    expect(m).toMatchObject({ source: 'comfyui', prompt: '', negativePrompt: null });
    expect(m.parameters.Seed).toBe('5551212');
  });

  it(
    'a UI graph of 200,000 reroutes between the sampler and its encoder',
    () => {
      const n = 200_000;
      const nodes: unknown[] = [
        { id: 0, type: 'KSampler', inputs: [{ name: 'positive', type: 'CONDITIONING', link: 1 }], widgets_values: [7] },
      ];
      const links: unknown[] = [];
      for (let i = 1; i <= n; i++) {
        nodes.push({ id: i, type: 'Reroute', inputs: [{ name: '', type: '*', link: i + 1 }] });
        links.push([i, i, 0, i - 1, 0, '*']);
      }
      nodes.push({ id: n + 1, type: 'CLIPTextEncode', widgets_values: ['far away'] });
      links.push([n + 1, n + 1, 0, n, 0, 'CONDITIONING']);
      const m = valid(parseMetadata({ workflow: JSON.stringify({ nodes, links }) }));
      expect(m).toMatchObject({ source: 'comfyui', prompt: '' });
      expect(m.parameters.Seed).toBe('7');
      expect(note(m)).toBe(
        `ComfyUI workflow: ${n + 2} nodes, read the first ${MAX_GRAPH_NODES}; ` +
          `ComfyUI workflow: conditioning more than ${MAX_WALK_DEPTH} links upstream was not followed`,
      );
    },
    T,
  );

  it(
    'thousands of samplers over a wide graph: the first MAX_SAMPLERS read, the walks within MAX_WALK_STEPS',
    () => {
      const g: Record<string, { class_type: string; inputs: Record<string, unknown> }> = {};
      const wide = 4000;
      g.c = { class_type: 'ConditioningCombineMany', inputs: {} };
      for (let i = 0; i < wide; i++) {
        g.c.inputs[`c${i}`] = [`t${i}`, 0];
        g[`t${i}`] = { class_type: 'CLIPTextEncode', inputs: { text: `word ${i}` } };
      }
      for (let i = 0; i < 5000; i++) g[`s${i}`] = { class_type: 'KSampler', inputs: { positive: ['c', 0], seed: i } };
      const started = Date.now();
      const m = valid(parseMetadata({ prompt: JSON.stringify(g) }));
      expect(Date.now() - started).toBeLessThan(T / 2);
      expect(m.prompt!.split('\n')).toHaveLength(wide); // the first walks read them all; the rest add nothing new
      expect(m.parameters.Seed).toBe('0');
      expect(note(m)).toBe(
        `ComfyUI graph: 5000 samplers, read the prompts of the first ${MAX_SAMPLERS}; ` +
          `ComfyUI graph: conditioning was followed through ${MAX_WALK_STEPS} steps, not further`,
      );
    },
    T,
  );
});
