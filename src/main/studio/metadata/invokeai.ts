// InvokeAI's metadata: 3.x and later write an `invokeai_metadata` JSON chunk; 2.x wrote an
// `sd-metadata` JSON chunk and 1.x a `Dream` command line (`"a prompt [neg]" -s 50 -S 42 ...`),
// both with the negative prompt in [brackets]. Two rows of the reader table, because the old
// formats are tried after AUTOMATIC1111's. The command line and the brackets are scanned by hand
// in one pass (a bracket regex is quadratic on a text of many `[`).
//
// Public API: invokeaiReader (3.x+), invokeaiLegacyReader (1.x/2.x).
import { collector, has, isObj, isSpace, str, tryJson, type MetadataReader, type Parsed } from './common.js';

type Json = unknown;

function parseInvokeMetadata(m: Record<string, Json>): Parsed {
  const [parameters, put] = collector();
  put('Seed', m.seed);
  put('Steps', m.steps);
  put('CFG scale', m.cfg_scale);
  put('Scheduler', m.scheduler);
  if (m.width !== undefined && m.height !== undefined) put('Size', `${str(m.width)}x${str(m.height)}`);
  const model = isObj(m.model) ? (m.model.model_name ?? m.model.name) : m.model;
  put('Model', model);
  if (isObj(m.model)) put('Model base', m.model.base_model ?? m.model.base);
  put('Mode', m.generation_mode);
  put('Strength', m.strength);
  return { prompt: str(m.positive_prompt) ?? '', negativePrompt: str(m.negative_prompt), parameters };
}

/**
 * InvokeAI 2.x: prompt text may carry the negative in [brackets]. Each `[` pairs with the next
 * `]` (as `/\[([^\]]*)\]/g` pairs them); a `[` with no `]` after it is prompt text.
 */
function splitBracketNegative(p: string): { prompt: string; negative: string | null } {
  const neg: string[] = [];
  const kept: string[] = [];
  let pos = 0;
  for (let open = p.indexOf('['); open >= 0; open = p.indexOf('[', pos)) {
    const close = p.indexOf(']', open + 1);
    if (close < 0) break; // no `]` after this `[`, so none after any later one either
    neg.push(p.slice(open + 1, close).trim());
    kept.push(p.slice(pos, open));
    pos = close + 1;
  }
  if (neg.length === 0) return { prompt: p.trim(), negative: null };
  kept.push(p.slice(pos));
  return {
    prompt: kept.join('').replace(/\s+/g, ' ').trim(),
    negative: neg.join(', '),
  };
}

function parseSdMetadata(m: Record<string, Json>): Parsed | null {
  const img = isObj(m.image) ? m.image : null;
  if (!img) return null;
  const rawPrompt = Array.isArray(img.prompt)
    ? img.prompt
        .filter(isObj)
        .map((p) => str(p.prompt) ?? '')
        .join(' ')
    : (str(img.prompt) ?? '');
  const { prompt, negative } = splitBracketNegative(rawPrompt);
  const [parameters, put] = collector();
  put('Seed', img.seed);
  put('Steps', img.steps);
  put('CFG scale', img.cfg_scale);
  put('Sampler', img.sampler);
  if (img.width !== undefined) put('Size', `${str(img.width)}x${str(img.height)}`);
  put('Model', m.model_weights);
  put('Model hash', m.model_hash);
  put('Version', m.app_version);
  return { prompt, negativePrompt: negative, parameters };
}

const DREAM_FLAGS: Record<string, string> = {
  s: 'Steps',
  S: 'Seed',
  W: 'Width',
  H: 'Height',
  C: 'CFG scale',
  A: 'Sampler',
};

/**
 * InvokeAI 1.x/2.x "Dream" chunk: `"a prompt [neg]" -s 50 -S 42 -W 512 -H 512 -C 7.5 -A k_lms`:
 * what `/^\s*"((?:\\.|[^"\\])*)"\s*(.*)$/s` matches, scanned by hand. Null when the text does
 * not start with a closed quoted prompt.
 */
function parseDream(text: string): Parsed | null {
  let i = 0;
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  if (text[i] !== '"') return null;
  let end = i + 1;
  for (; end < text.length && text[end] !== '"'; end++) if (text[end] === '\\') end++;
  if (end >= text.length) return null;
  const { prompt, negative } = splitBracketNegative(text.slice(i + 1, end).replace(/\\"/g, '"'));
  const parameters: Record<string, string> = {};
  // `\s*` and `[^\s-]` share no character: no backtracking.
  for (const f of text.slice(end + 1).matchAll(/-([A-Za-z])\s*([^\s-][^\s]*)/g)) {
    const k = DREAM_FLAGS[f[1]!];
    if (k) parameters[k] = f[2]!;
  }
  if (parameters.Width && parameters.Height) {
    parameters.Size = `${parameters.Width}x${parameters.Height}`;
    delete parameters.Width;
    delete parameters.Height;
  }
  return { prompt, negativePrompt: negative, parameters };
}

export const invokeaiReader: MetadataReader = {
  name: 'InvokeAI',
  source: 'invokeai',
  detect: (raw) => has(raw, 'invokeai_metadata'),
  parse: (raw) => {
    const j = tryJson(raw.invokeai_metadata);
    return isObj(j) ? parseInvokeMetadata(j) : null;
  },
};

export const invokeaiLegacyReader: MetadataReader = {
  name: 'InvokeAI 1.x/2.x',
  source: 'invokeai',
  detect: (raw) => has(raw, 'sd-metadata') || has(raw, 'Dream'),
  parse: (raw) => {
    const j = tryJson(raw['sd-metadata']);
    const r = isObj(j) ? parseSdMetadata(j) : null;
    return r ?? (has(raw, 'Dream') ? parseDream(raw.Dream!) : null);
  },
};
