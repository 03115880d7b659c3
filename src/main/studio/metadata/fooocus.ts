// Fooocus writes its metadata in the `parameters` chunk, in the scheme its `fooocus_scheme` chunk
// names: `fooocus`, a JSON object with sorted lower-case keys (prompt, negative_prompt,
// prompt_expansion, styles, performance, steps, resolution "(w, h)", guidance_scale, sharpness,
// adm_guidance, base_model, base_model_hash, refiner_model, refiner_switch, sampler, scheduler, vae,
// seed, lora_combined_N, loras [[name, weight, hash]], full_prompt and full_negative_prompt (lists,
// the prompts after styles and expansion), metadata_scheme, version "Fooocus v2.x"); or `a1111`,
// AUTOMATIC1111's infotext with Fooocus's extra keys (Raw prompt, Raw negative prompt, Sharpness,
// Version: Fooocus v...). Older logs and forks use the labels as keys ("Prompt", "Negative Prompt",
// "Fooocus V2 Expansion", "Base Model", ...): read too. A JPEG's EXIF UserComment carries the same
// text (its scheme, in MakerNote, is not read: the text says which it is).
//
// Public API: fooocusReader.
import { parseA1111 } from './a1111.js';
import {
  collector,
  firstNonSpace,
  has,
  isObj,
  nonEmpty,
  str,
  tryJson,
  type MetadataReader,
  type Parsed,
} from './common.js';

type Json = unknown;

/** Keys only Fooocus's JSON scheme writes (any one is enough, with a `{` first). */
const FOOOCUS_MARKERS = ['"full_prompt"', '"metadata_scheme"', '"prompt_expansion"', '"Fooocus V2 Expansion"'];

/** "(1152, 896)" (Python's str of a tuple) as "1152x896"; anything else as written. */
function size(v: Json): string | null {
  const s = str(v);
  if (s === null) return null;
  const parts = s.replace(/^\(|\)$/g, '').split(',');
  if (parts.length !== 2) return s;
  const [w, h] = parts.map((p) => p.trim().replace(/^'|'$/g, '')) as [string, string];
  return /^\d+$/.test(w) && /^\d+$/.test(h) ? `${w}x${h}` : s;
}

/** A list of strings (full_prompt) joined as Fooocus's own A1111 scheme joins it. */
const joined = (v: Json): string | null =>
  Array.isArray(v)
    ? v
        .map((x) => str(x) ?? '')
        .filter((x) => x !== '')
        .join(', ') || null
    : str(v);

/** [[name, weight, hash], ...] as "name: weight, ..." (the hashes under their own key). */
function loras(v: Json): { weights: string; hashes: string } | null {
  if (!Array.isArray(v) || v.length === 0) return null;
  const weights: string[] = [];
  const hashes: string[] = [];
  for (const l of v) {
    if (!Array.isArray(l)) continue;
    const [name, weight, hash] = l.map(str);
    if (!name) continue;
    weights.push(`${name}: ${weight ?? ''}`);
    if (hash) hashes.push(`${name}: ${hash}`);
  }
  return weights.length ? { weights: weights.join(', '), hashes: hashes.join(', ') } : null;
}

/** Each known key (either spelling) -> the name shown. */
const KNOWN: readonly [string, string, string][] = [
  ['prompt_expansion', 'Fooocus V2 Expansion', 'Prompt expansion'],
  ['styles', 'Styles', 'Styles'],
  ['performance', 'Performance', 'Performance'],
  ['steps', 'Steps', 'Steps'],
  ['guidance_scale', 'Guidance Scale', 'CFG scale'],
  ['sharpness', 'Sharpness', 'Sharpness'],
  ['adm_guidance', 'ADM Guidance', 'ADM guidance'],
  ['base_model', 'Base Model', 'Model'],
  ['base_model_hash', 'Base Model Hash', 'Model hash'],
  ['refiner_model', 'Refiner Model', 'Refiner'],
  ['refiner_model_hash', 'Refiner Model Hash', 'Refiner hash'],
  ['refiner_switch', 'Refiner Switch', 'Refiner switch'],
  ['sampler', 'Sampler', 'Sampler'],
  ['scheduler', 'Scheduler', 'Scheduler'],
  ['vae', 'VAE', 'VAE'],
  ['seed', 'Seed', 'Seed'],
  ['clip_skip', 'CLIP Skip', 'Clip skip'],
  ['created_by', 'Created By', 'User'],
  ['version', 'Version', 'Version'],
];
/** Read above, or shown otherwise: not repeated among the remaining keys. */
const HANDLED = new Set([
  ...KNOWN.flatMap(([a, b]) => [a, b]),
  'prompt',
  'Prompt',
  'negative_prompt',
  'Negative Prompt',
  'full_prompt',
  'full_negative_prompt',
  'resolution',
  'Resolution',
  'loras',
  'metadata_scheme',
  'Metadata Scheme',
]);

function parseFooocusJson(j: Record<string, Json>): Parsed {
  const [parameters, put] = collector();
  const fullPrompt = joined(j.full_prompt);
  const fullNegative = joined(j.full_negative_prompt);
  // The prompt as typed; the styled, expanded one when nothing was typed (styles alone).
  const prompt = nonEmpty(j.prompt) ?? nonEmpty(j.Prompt) ?? fullPrompt ?? '';
  const negative = nonEmpty(j.negative_prompt) ?? nonEmpty(j['Negative Prompt']) ?? fullNegative;
  for (const [lower, label, shown] of KNOWN) put(shown, j[lower] ?? j[label]);
  put('Size', size(j.resolution ?? j.Resolution));
  if (fullPrompt !== null && fullPrompt !== prompt) put('Full prompt', fullPrompt);
  if (fullNegative !== null && fullNegative !== negative) put('Full negative prompt', fullNegative);
  const l = loras(j.loras);
  if (l) {
    put('Lora weights', l.weights);
    put('Lora hashes', l.hashes);
  }
  // lora_combined_1 / "LoRA 1" and whatever newer versions add, under their own names.
  for (const [k, v] of Object.entries(j)) {
    if (HANDLED.has(k)) continue;
    const m = /^lora_combined_(\d+)$/.exec(k);
    put(m ? `LoRA ${m[1]}` : k, v);
  }
  return { prompt, negativePrompt: negative, parameters };
}

/** The `a1111` scheme: A1111's infotext; the prompt as typed is the "Raw prompt" parameter. */
function parseFooocusA1111(text: string): Parsed {
  const p = parseA1111(text);
  const { 'Raw prompt': raw, 'Raw negative prompt': rawNegative, ...parameters } = p.parameters;
  if (raw && raw !== p.prompt) parameters['Full prompt'] = p.prompt;
  if (rawNegative && rawNegative !== p.negativePrompt && p.negativePrompt !== null)
    parameters['Full negative prompt'] = p.negativePrompt;
  return { prompt: raw || p.prompt, negativePrompt: rawNegative || p.negativePrompt, parameters };
}

export const fooocusReader: MetadataReader = {
  name: 'Fooocus',
  source: 'fooocus',
  detect: (raw) =>
    has(raw, 'fooocus_scheme') ||
    (has(raw, 'parameters') &&
      ((firstNonSpace(raw.parameters!) === '{' && FOOOCUS_MARKERS.some((m) => raw.parameters!.includes(m))) ||
        raw.parameters!.includes('Version: Fooocus v'))),
  parse: (raw) => {
    if (!has(raw, 'parameters')) return null;
    const text = raw.parameters!;
    const j = firstNonSpace(text) === '{' ? tryJson(text) : undefined;
    if (isObj(j)) return parseFooocusJson(j);
    // Not JSON: A1111's text, when the scheme chunk or the text's own Version says Fooocus wrote it
    // (else the AUTOMATIC1111 row reads it).
    const p = parseFooocusA1111(text);
    return has(raw, 'fooocus_scheme') || (p.parameters.Version ?? '').startsWith('Fooocus') ? p : null;
  },
};
