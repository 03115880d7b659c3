// ComfyUI's `prompt` chunk (the API graph: id -> {class_type, inputs}) and `workflow` chunk (the
// UI graph: nodes[] and links[]): the text of the encoders feeding each sampler, the first
// sampler's settings and the model. Conditioning is followed upstream through whatever sits between
// the sampler and the encoders (unCLIPConditioning, ConditioningCombine/Concat/SetArea/Average,
// ControlNetApply and its Advanced form, guiders, reroutes, custom nodes): a node's conditioning
// inputs when it names some (a node with both `positive` and `negative` inputs passes on the one
// its output slot carries), every linked input otherwise; never through another sampler.
//
// Bounds: at most MAX_GRAPH_NODES nodes are read (the first ones, in the file's order) and
// MAX_SAMPLERS samplers; a walk goes at most MAX_WALK_DEPTH links upstream, and all the walks of a
// graph together take at most MAX_WALK_STEPS steps (a node passed through, a link followed); each
// node is visited once per walk, so cycles end. Nothing recurses. What was left out is said in the
// result's notes.
//
// Public API: MAX_GRAPH_NODES, MAX_WALK_DEPTH, MAX_SAMPLERS, MAX_WALK_STEPS, comfyuiReader.
import { collector, has, isObj, str, tryJson, type MetadataReader, type Parsed } from './common.js';

type Json = unknown;

/** A graph is read up to this many nodes; the others are not looked at (and said so). */
export const MAX_GRAPH_NODES = 10_000;
/** Conditioning is followed at most this many links upstream of the sampler (and said so). */
export const MAX_WALK_DEPTH = 64;
/** The prompts of at most this many samplers are read (and the rest said so). */
export const MAX_SAMPLERS = 64;
/** All the conditioning walks of one graph together take at most this many steps (and say so). */
export const MAX_WALK_STEPS = 100_000;

const SAMPLERS = ['KSampler', 'KSamplerAdvanced', 'SamplerCustom', 'SamplerCustomAdvanced'];
/** CLIPTextEncode, CLIPTextEncodeSDXL, CLIPTextEncodeFlux, BNK_CLIPTextEncodeAdvanced, TextEncodeQwen..., ... */
const isTextEncoder = (classType: string) => classType.includes('TextEncode');
/** Where encoders keep their text, in the order tried (SDXL: text_g, text_l; Flux and SD3: clip_l, t5xxl). */
const TEXT_INPUTS = ['text', 'text_g', 'text_l', 'clip_l', 'clip_g', 't5xxl', 'prompt', 'populated_text'];
/** Input names under which a primitive node (seed generator, string node) holds its value. */
const PRIMITIVE_INPUTS = ['value', 'seed', 'noise_seed', 'text', 'string', 'int', 'float'];
/** A conditioning input, by its name: conditioning, conditioning_1, conditioning_to, positive, ... */
const isConditioningName = (name: string) =>
  name.startsWith('conditioning') || name === 'positive' || name === 'negative' || name === 'cond';
/** Known samplers, and custom ones ("KSampler (Efficient)", ...) that take conditioning or a guider. */
const isSampler = (type: string, hasInput: (name: string) => boolean) =>
  SAMPLERS.includes(type) || (/sampler/i.test(type) && (hasInput('positive') || hasInput('guider')));

/** One node as the walk sees it, whichever format it came from. */
interface WalkNode {
  encoder: boolean;
  sampler: boolean;
  /** Has linked `positive` and `negative` inputs (then output slot 1 carries the negative). */
  split: boolean;
  /** The node's text when it is an encoder (null: no text, or not an encoder). */
  text(): string | null;
  /** Linked inputs, in order. */
  links: WalkLink[];
}
/** A linked input: its name, the upstream node's id and output slot, whether it carries conditioning. */
type WalkLink = [name: string, from: string, slot: number, conditioning: boolean];

function walkNode(type: string, links: WalkLink[], text: () => string | null): WalkNode {
  const names = new Set(links.map(([name]) => name));
  return {
    encoder: isTextEncoder(type),
    sampler: isSampler(type, (name) => names.has(name)),
    split: names.has('positive') && names.has('negative'),
    text,
    links,
  };
}

/** The shared budget and what the walks left out. */
interface WalkState {
  /** Nodes visited plus links followed, left for all the walks of the graph. */
  steps: number;
  tooDeep: boolean;
  outOfSteps: boolean;
}

/** The node's view, made once per node however many walks pass by. */
function memo(make: (id: string) => WalkNode | null): (id: string) => WalkNode | null {
  const cache = new Map<string, WalkNode | null>();
  return (id) => {
    let n = cache.get(id);
    if (n === undefined) cache.set(id, (n = make(id)));
    return n;
  };
}

/**
 * The texts of every encoder upstream of `start` (a node id and its output slot), depth first in
 * input order, each node once (per slot, for nodes with positive and negative outputs).
 */
function walkTexts(start: [string, number] | null, node: (id: string) => WalkNode | null, w: WalkState): string[] {
  const out: string[] = [];
  if (!start) return out;
  const seen = new Set<string>();
  // depth: links between the sampler and the node (1 for the node the sampler reads).
  const stack: { id: string; slot: number; depth: number }[] = [{ id: start[0], slot: start[1], depth: 1 }];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const n = node(top.id);
    if (!n) continue;
    const key = n.split ? `${top.id}:${top.slot === 1 ? 1 : 0}` : top.id;
    if (seen.has(key)) continue;
    seen.add(key);
    if (n.encoder) {
      const t = n.text();
      if (t !== null) out.push(t);
      continue;
    }
    if (n.sampler) continue; // another sampler's output: not this one's prompt
    let next = n.links;
    if (n.split) next = next.filter(([name]) => name === (top.slot === 1 ? 'negative' : 'positive'));
    else if (next.some((l) => l[3])) next = next.filter((l) => l[3]);
    if (top.depth >= MAX_WALK_DEPTH) {
      w.tooDeep ||= next.length > 0;
      continue;
    }
    if (w.steps < next.length + 1) {
      w.outOfSteps = true;
      break;
    }
    w.steps -= next.length + 1;
    for (let i = next.length - 1; i >= 0; i--) stack.push({ id: next[i]![1], slot: next[i]![2], depth: top.depth + 1 });
  }
  return out;
}

/** Every sampler's positive and negative texts, each text once, and the notes on what was left out. */
function samplerTexts(
  samplers: readonly { positive: [string, number] | null; negative: [string, number] | null }[],
  node: (id: string) => WalkNode | null,
  notes: string[],
  what: string,
): { positive: string[]; negative: string[] } {
  const w: WalkState = { steps: MAX_WALK_STEPS, tooDeep: false, outOfSteps: false };
  const positive = new Set<string>();
  const negative = new Set<string>();
  if (samplers.length > MAX_SAMPLERS)
    notes.push(`${what}: ${samplers.length} samplers, read the prompts of the first ${MAX_SAMPLERS}`);
  for (const s of samplers.slice(0, MAX_SAMPLERS)) {
    for (const t of walkTexts(s.positive, node, w)) positive.add(t);
    for (const t of walkTexts(s.negative, node, w)) negative.add(t);
  }
  if (w.tooDeep) notes.push(`${what}: conditioning more than ${MAX_WALK_DEPTH} links upstream was not followed`);
  if (w.outOfSteps) notes.push(`${what}: conditioning was followed through ${MAX_WALK_STEPS} steps, not further`);
  return { positive: [...positive], negative: [...negative] };
}

interface ApiNode {
  class_type: string;
  inputs: Record<string, Json>;
}

const isLink = (v: Json): v is [string | number, number] =>
  Array.isArray(v) && v.length === 2 && typeof v[1] === 'number';

function parseComfyApi(graph: Record<string, Json>): Parsed | null {
  const notes: string[] = [];
  const ids = Object.keys(graph);
  if (ids.length > MAX_GRAPH_NODES) notes.push(`ComfyUI graph: ${ids.length} nodes, read the first ${MAX_GRAPH_NODES}`);
  const nodes = new Map<string, ApiNode>();
  for (const id of ids.slice(0, MAX_GRAPH_NODES)) {
    const n = graph[id];
    if (isObj(n) && typeof n.class_type === 'string')
      nodes.set(id, { class_type: n.class_type, inputs: isObj(n.inputs) ? n.inputs : {} });
  }
  const node = (id: Json): ApiNode | null => nodes.get(String(id)) ?? null;

  // A widget value may be a link to a primitive node: follow a few hops.
  const value = (v: Json): string | null => {
    for (let hops = 0; isLink(v); hops++) {
      const n = node(v[0]);
      const k = PRIMITIVE_INPUTS.find((key) => n !== null && key in n.inputs);
      if (!n || hops > 4 || k === undefined) return null;
      v = n.inputs[k];
    }
    return str(v);
  };
  const text = (n: ApiNode) => {
    for (const k of TEXT_INPUTS) {
      const t = k in n.inputs ? value(n.inputs[k]) : null;
      if (t) return t;
    }
    return null;
  };
  const viewOf = memo((id) => {
    const n = nodes.get(id);
    if (!n) return null;
    const links: WalkLink[] = [];
    for (const [name, v] of Object.entries(n.inputs))
      if (isLink(v)) links.push([name, String(v[0]), v[1], isConditioningName(name)]);
    return walkNode(n.class_type, links, () => text(n));
  });
  // The model loader's setting, through model/samples links (LoRA loaders, patches, ...).
  const upstream = (v: Json, key: string): Json => {
    for (let depth = 0; isLink(v) && depth <= 16; depth++) {
      const n = node(v[0]);
      if (!n) return undefined;
      if (key in n.inputs && !isLink(n.inputs[key])) return n.inputs[key];
      v = n.inputs.model ?? n.inputs.samples;
    }
    return undefined;
  };

  const samplerIds = [...nodes.keys()].filter((id) => {
    const n = nodes.get(id)!;
    return isSampler(n.class_type, (name) => isLink(n.inputs[name]));
  });
  if (samplerIds.length === 0) {
    // No sampler we know: still show the text of any encoder.
    const all: string[] = [];
    for (const n of nodes.values()) {
      const t = isTextEncoder(n.class_type) ? text(n) : null;
      if (t !== null) all.push(t);
    }
    // A graph cut short may have had its sampler further on: say so rather than fall through.
    return all.length || notes.length ? { prompt: all.join('\n'), negativePrompt: null, parameters: {}, notes } : null;
  }
  const guiderOf = (s: ApiNode) => (isLink(s.inputs.guider) ? node(s.inputs.guider[0]) : null);
  const start = (v: Json): [string, number] | null => (isLink(v) ? [String(v[0]), v[1]] : null);
  const { positive, negative } = samplerTexts(
    samplerIds.map((id) => {
      const s = nodes.get(id)!;
      const g = guiderOf(s);
      return {
        positive: start(s.inputs.positive ?? g?.inputs.positive ?? g?.inputs.conditioning),
        negative: start(s.inputs.negative ?? g?.inputs.negative),
      };
    }),
    viewOf,
    notes,
    'ComfyUI graph',
  );
  // The settings are the first sampler's (in the file's order).
  const s = nodes.get(samplerIds[0]!)!;
  const guider = guiderOf(s);
  const [parameters, put] = collector();
  put('Steps', value(s.inputs.steps));
  put('Sampler', value(s.inputs.sampler_name));
  put('Scheduler', value(s.inputs.scheduler));
  put('CFG scale', value(s.inputs.cfg ?? guider?.inputs.cfg));
  put('Seed', value(s.inputs.seed ?? s.inputs.noise_seed));
  put('Denoise', value(s.inputs.denoise));
  const latent = isLink(s.inputs.latent_image) ? node(s.inputs.latent_image[0]) : null;
  if (latent && 'width' in latent.inputs) put('Size', `${value(latent.inputs.width)}x${value(latent.inputs.height)}`);
  put('Model', str(upstream(s.inputs.model, 'ckpt_name') ?? upstream(s.inputs.model, 'unet_name')));
  return {
    prompt: positive.join('\n'),
    negativePrompt: negative.length ? negative.join('\n') : null,
    parameters,
    notes,
  };
}

function parseComfyWorkflow(wf: Record<string, Json>): Parsed | null {
  // UI format: nodes[] with {id, type, inputs: [{name, type, link}], widgets_values}; links[] as
  // [id, from_node, from_slot, to_node, to_slot, type] (or, in newer files, objects with id,
  // origin_id, origin_slot, ...). Reroute nodes stay in this format: the walk goes through them.
  const notes: string[] = [];
  const allNodes = Array.isArray(wf.nodes) ? wf.nodes : [];
  if (allNodes.length > MAX_GRAPH_NODES)
    notes.push(`ComfyUI workflow: ${allNodes.length} nodes, read the first ${MAX_GRAPH_NODES}`);
  const nodes = allNodes.slice(0, MAX_GRAPH_NODES).filter(isObj);
  const byId = new Map(nodes.map((n) => [String(n.id), n]));
  const inputsOf = (n: Record<string, Json>) => (Array.isArray(n.inputs) ? n.inputs.filter(isObj) : []);
  // Only the links some kept node's input uses are indexed: link id -> [from node, from slot].
  const wanted = new Set<string>();
  for (const n of nodes)
    for (const i of inputsOf(n)) if (i.link !== null && i.link !== undefined) wanted.add(String(i.link));
  const origin = new Map<string, [string, number]>();
  for (const l of Array.isArray(wf.links) ? wf.links : []) {
    const [id, from, slot] = Array.isArray(l) ? l : isObj(l) ? [l.id, l.origin_id, l.origin_slot] : [];
    if (id !== undefined && wanted.has(String(id)) && from !== undefined)
      origin.set(String(id), [String(from), typeof slot === 'number' ? slot : 0]);
  }
  const linked = (link: Json) => (link === null || link === undefined ? null : (origin.get(String(link)) ?? null));
  const widgets = (n: Record<string, Json>) => (Array.isArray(n.widgets_values) ? n.widgets_values : []);
  const inputLink = (n: Record<string, Json>, name: string) => linked(inputsOf(n).find((i) => i.name === name)?.link);
  const typeOf = (n: Record<string, Json>) => (typeof n.type === 'string' ? n.type : '');
  // An encoder's text is its first text widget (CLIPTextEncode: the only one; SDXL: text_g).
  const text = (n: Record<string, Json>) => {
    if (isObj(n.widgets_values)) return str(n.widgets_values.text);
    for (const v of widgets(n)) if (typeof v === 'string' && v !== '') return v;
    return null;
  };
  const viewOf = memo((id) => {
    const n = byId.get(id);
    if (!n) return null;
    const links: WalkLink[] = [];
    for (const i of inputsOf(n)) {
      const from = linked(i.link);
      const name = typeof i.name === 'string' ? i.name : '';
      if (from) links.push([name, from[0], from[1], i.type === 'CONDITIONING' || isConditioningName(name)]);
    }
    return walkNode(typeOf(n), links, () => text(n));
  });
  const samplers = nodes.filter((n) => isSampler(typeOf(n), (name) => inputLink(n, name) !== null));
  if (samplers.length === 0) return null;
  const guiderOf = (n: Record<string, Json>) => {
    const g = inputLink(n, 'guider');
    return g ? byId.get(g[0]) : undefined;
  };
  const { positive, negative } = samplerTexts(
    samplers.map((n) => {
      const g = guiderOf(n);
      return {
        positive: inputLink(n, 'positive') ?? (g ? (inputLink(g, 'positive') ?? inputLink(g, 'conditioning')) : null),
        negative: inputLink(n, 'negative') ?? (g ? inputLink(g, 'negative') : null),
      };
    }),
    viewOf,
    notes,
    'ComfyUI workflow',
  );
  const [parameters, put] = collector();
  const sampler = samplers.find((n) => n.type === 'KSampler' || n.type === 'KSamplerAdvanced');
  if (sampler) {
    const w = widgets(sampler);
    // KSampler widgets: seed, control_after_generate, steps, cfg, sampler_name, scheduler, denoise.
    // KSamplerAdvanced: add_noise, noise_seed, control, steps, cfg, sampler_name, scheduler, ...
    const o = sampler.type === 'KSampler' ? 0 : 1;
    put('Seed', w[o]);
    put('Steps', w[o + 2]);
    put('CFG scale', w[o + 3]);
    put('Sampler', w[o + 4]);
    put('Scheduler', w[o + 5]);
  }
  return {
    prompt: positive.join('\n'),
    negativePrompt: negative.length ? negative.join('\n') : null,
    parameters,
    notes,
  };
}

export const comfyuiReader: MetadataReader = {
  name: 'ComfyUI',
  source: 'comfyui',
  detect: (raw) => has(raw, 'prompt') || has(raw, 'workflow'),
  // The API graph says more (it has the links resolved); the UI graph is the fallback.
  parse: (raw) => {
    const api = tryJson(raw.prompt);
    const r = isObj(api) ? parseComfyApi(api) : null;
    if (r) return r;
    const wf = tryJson(raw.workflow);
    return isObj(wf) ? parseComfyWorkflow(wf) : null;
  },
};
