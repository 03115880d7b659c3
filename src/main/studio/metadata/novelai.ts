// NovelAI's PNG text chunks: `Title` ("NovelAI generated image", later "AI generated image"),
// `Description` (the prompt), `Software` ("NovelAI"), `Source` (the model, "Stable Diffusion XL
// C1E1DE52", "NovelAI Diffusion V4.5 ..."), `Generation time`, and `Comment`: JSON with the settings
// (steps, scale, seed, sampler, width, height, strength, noise, uc = the negative prompt, ...; V4
// adds v4_prompt / v4_negative_prompt with a base caption and per-character captions). The same
// keys, as one gzip-compressed JSON object, are what NovelAI hides in the alpha channel
// (stealth.ts reads that and hands the keys here).
//
// A Comment that is not JSON loses only the settings: the prompt is in Description, the rest of the
// text is kept raw, and the note says so.
//
// Public API: NOVELAI_TITLES, novelaiReader.
import { collector, has, isObj, nonEmpty, str, tryJson, type MetadataReader, type Parsed } from './common.js';

type Json = unknown;

/** The Title NovelAI writes (older images, newer images). */
export const NOVELAI_TITLES: readonly string[] = ['NovelAI generated image', 'AI generated image'];

/** The captions of a V4 prompt object: `{caption: {base_caption, char_captions: [{char_caption}]}}`. */
function v4Captions(v: Json): { base: string | null; characters: string[] } {
  const caption = isObj(v) && isObj(v.caption) ? v.caption : null;
  const chars = caption && Array.isArray(caption.char_captions) ? caption.char_captions : [];
  const characters: string[] = [];
  for (const c of chars) {
    const t = isObj(c) ? str(c.char_caption) : null;
    if (t) characters.push(t);
  }
  return { base: caption ? str(caption.base_caption) : null, characters };
}

function parseNovelAI(raw: Readonly<Record<string, string>>): Parsed {
  const notes: string[] = [];
  const j = tryJson(raw.Comment);
  const c = isObj(j) ? j : null;
  if (has(raw, 'Comment') && !c)
    notes.push('the NovelAI Comment is not a JSON object: its settings were not read (its text is kept as found)');
  const v4 = v4Captions(c?.v4_prompt);
  const v4neg = v4Captions(c?.v4_negative_prompt);
  const prompt = (has(raw, 'Description') ? raw.Description : null) ?? str(c?.prompt) ?? v4.base ?? '';
  const negative = nonEmpty(c?.uc) ?? nonEmpty(v4neg.base);
  const [parameters, put] = collector();
  if (c) {
    put('Steps', c.steps);
    put('Sampler', c.sampler);
    put('CFG scale', c.scale);
    put('Seed', c.seed);
    if (c.width !== undefined && c.height !== undefined) put('Size', `${str(c.width)}x${str(c.height)}`);
    put('Strength', c.strength);
    put('Noise', c.noise);
    put('CFG rescale', c.cfg_rescale);
    put('Uncond scale', c.uncond_scale);
    put('Noise schedule', c.noise_schedule);
    put('SMEA', c.sm);
    put('SMEA DYN', c.sm_dyn);
    put('Dynamic thresholding', c.dynamic_thresholding);
    put('Request type', c.request_type);
    if (v4.characters.length) put('Character prompts', v4.characters.join('\n'));
    if (v4neg.characters.length) put('Character negative prompts', v4neg.characters.join('\n'));
  }
  if (has(raw, 'Source')) put('Model', raw.Source);
  if (has(raw, 'Generation time')) put('Generation time', raw['Generation time']);
  return { prompt, negativePrompt: negative, parameters, notes };
}

export const novelaiReader: MetadataReader = {
  name: 'NovelAI',
  source: 'novelai',
  detect: (raw) =>
    (has(raw, 'Software') && raw.Software === 'NovelAI') ||
    (has(raw, 'Comment') && has(raw, 'Title') && NOVELAI_TITLES.includes(raw.Title!)),
  parse: parseNovelAI,
};
