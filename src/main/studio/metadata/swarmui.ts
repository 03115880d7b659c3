// SwarmUI's `parameters` chunk (iTXt, UTF-8; a JPEG's EXIF UserComment holds the same text): a
// JSON object `{"sui_image_params": {prompt, negativeprompt, model, seed, steps, cfgscale, width,
// height, sampler, scheduler, aspectratio, vae, loras, loraweights, swarm_version, ...},
// "sui_extra_data": {date, generation_time, original_prompt, ...}, "sui_models": [{name, param,
// hash}]}`. Values may be numbers or the same as strings, lists as JSON lists or comma-separated
// text; no key is guaranteed. SwarmUI's own documentation shows the object with a comma before its
// closing brace, so one such trailing comma is tolerated.
//
// Public API: swarmuiReader.
import { collector, has, isObj, isSpace, str, tryJson, type MetadataReader, type Parsed } from './common.js';

type Json = unknown;

/** JSON.parse, or JSON.parse without one comma right before the final `}` (linear either way). */
function jsonLenient(text: string): Json {
  const j = tryJson(text);
  if (j !== undefined) return j;
  let end = text.length;
  while (end > 0 && isSpace(text.charCodeAt(end - 1))) end--;
  if (text.charAt(end - 1) !== '}') return undefined;
  let c = end - 1;
  while (c > 0 && isSpace(text.charCodeAt(c - 1))) c--;
  return text.charAt(c - 1) === ',' ? tryJson(text.slice(0, c - 1) + text.slice(c)) : undefined;
}

/** A scalar, or a list of scalars as "a, b". */
function listOrScalar(v: Json): string | null {
  if (!Array.isArray(v)) return str(v);
  const items = v.map((x) => (isObj(x) ? str(x.name) : str(x))).filter((x): x is string => x !== null && x !== '');
  return items.length ? items.join(', ') : null;
}

/** Each known parameter id -> the name shown. */
const KNOWN: readonly [string, string][] = [
  ['steps', 'Steps'],
  ['sampler', 'Sampler'],
  ['scheduler', 'Scheduler'],
  ['cfgscale', 'CFG scale'],
  ['seed', 'Seed'],
  ['model', 'Model'],
  ['vae', 'VAE'],
  ['loras', 'LoRAs'],
  ['loraweights', 'LoRA weights'],
  ['aspectratio', 'Aspect ratio'],
  ['swarm_version', 'SwarmUI version'],
];
const HANDLED = new Set([...KNOWN.map(([k]) => k), 'prompt', 'negativeprompt', 'width', 'height']);

function parseSwarm(j: Record<string, Json>): Parsed | null {
  const p = j.sui_image_params;
  if (!isObj(p)) return null;
  const [parameters, put] = collector();
  for (const [k, shown] of KNOWN) put(shown, listOrScalar(p[k]));
  if (p.width !== undefined && p.height !== undefined) put('Size', `${str(p.width)}x${str(p.height)}`);
  // Every other parameter and the extra data, under SwarmUI's own ids.
  for (const [k, v] of Object.entries(p)) if (!HANDLED.has(k)) put(k, listOrScalar(v));
  if (isObj(j.sui_extra_data)) for (const [k, v] of Object.entries(j.sui_extra_data)) put(k, listOrScalar(v));
  put('Models', listOrScalar(j.sui_models));
  const negative = str(p.negativeprompt);
  return { prompt: str(p.prompt) ?? '', negativePrompt: negative || null, parameters };
}

export const swarmuiReader: MetadataReader = {
  name: 'SwarmUI',
  source: 'swarmui',
  detect: (raw) => has(raw, 'parameters') && raw.parameters!.includes('"sui_image_params"'),
  parse: (raw) => {
    const j = jsonLenient(raw.parameters!);
    return isObj(j) ? parseSwarm(j) : null;
  },
};
