// ComfyUI's `prompt` chunk (the API graph: id -> {class_type, inputs}) and `workflow` chunk (the
// UI graph: nodes[] and links[]): the text of the encoders feeding the sampler, its settings and
// the model. The graph is walked without recursion, over at most MAX_GRAPH_NODES nodes (the first
// ones, in the file's order) and at most MAX_WALK_DEPTH links upstream of the sampler; what was
// left out is said in the result's notes.
//
// Public API: MAX_GRAPH_NODES, MAX_WALK_DEPTH, comfyuiReader.
import { collector, has, isObj, str, tryJson, type MetadataReader, type Parsed } from './common.js';

type Json = unknown;

/** A graph is read up to this many nodes; the others are not looked at (and said so). */
export const MAX_GRAPH_NODES = 10_000;
/** Conditioning is followed at most this many links upstream of the sampler (and said so). */
export const MAX_WALK_DEPTH = 64;

const SAMPLERS = ['KSampler', 'KSamplerAdvanced', 'SamplerCustom', 'SamplerCustomAdvanced'];
const isTextEncoder = (classType: string) => classType.startsWith('CLIPTextEncode');
/** Input names under which a primitive node (seed generator, string node) holds its value. */
const PRIMITIVE_INPUTS = ['value', 'seed', 'noise_seed', 'text', 'string', 'int', 'float'];

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
  // Conditioning may pass through combine/concat/controlnet nodes: every text encoder upstream,
  // depth first in input order, each node once.
  let tooDeep = false;
  const texts = (start: Json): string[] => {
    const out: string[] = [];
    const seen = new Set<string>();
    // depth: links between the sampler and the node (1 for the node the sampler reads).
    const stack: { link: Json; depth: number }[] = [{ link: start, depth: 1 }];
    for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
      const { link, depth } = top;
      if (!isLink(link) || seen.has(String(link[0]))) continue;
      seen.add(String(link[0]));
      const n = node(link[0]);
      if (!n) continue;
      if (isTextEncoder(n.class_type)) {
        const t = value(n.inputs.text ?? n.inputs.text_g ?? n.inputs.text_l);
        if (t !== null) out.push(t);
      } else {
        const ins = Object.values(n.inputs).filter(isLink);
        if (depth >= MAX_WALK_DEPTH) tooDeep ||= ins.length > 0;
        else for (let i = ins.length - 1; i >= 0; i--) stack.push({ link: ins[i], depth: depth + 1 });
      }
    }
    return out;
  };
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

  const samplerId = [...nodes.keys()].find((id) => SAMPLERS.includes(nodes.get(id)!.class_type));
  if (samplerId === undefined) {
    // No sampler we know: still show the text of any encoder.
    const all: string[] = [];
    for (const n of nodes.values()) {
      const t = isTextEncoder(n.class_type) ? str(n.inputs.text) : null;
      if (t !== null) all.push(t);
    }
    // A graph cut short may have had its sampler further on: say so rather than fall through.
    return all.length || notes.length ? { prompt: all.join('\n'), negativePrompt: null, parameters: {}, notes } : null;
  }
  const s = node(samplerId)!;
  const guider = isLink(s.inputs.guider) ? node(s.inputs.guider[0]) : null;
  const positive = texts(s.inputs.positive ?? guider?.inputs.positive ?? guider?.inputs.conditioning);
  const negative = texts(s.inputs.negative ?? guider?.inputs.negative);
  if (tooDeep) notes.push(`ComfyUI graph: conditioning more than ${MAX_WALK_DEPTH} links upstream was not followed`);
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
  // UI format: nodes[] with {id, type, inputs: [{name, link}], widgets_values}, links[] as
  // [id, from_node, from_slot, to_node, to_slot, type].
  const notes: string[] = [];
  const allNodes = Array.isArray(wf.nodes) ? wf.nodes : [];
  if (allNodes.length > MAX_GRAPH_NODES)
    notes.push(`ComfyUI workflow: ${allNodes.length} nodes, read the first ${MAX_GRAPH_NODES}`);
  const nodes = allNodes.slice(0, MAX_GRAPH_NODES).filter(isObj);
  const links = Array.isArray(wf.links) ? wf.links : [];
  const byId = new Map(nodes.map((n) => [String(n.id), n]));
  const from = (linkId: Json) => {
    const l = links.find((x): x is Json[] => Array.isArray(x) && x[0] === linkId);
    return l ? byId.get(String(l[1])) : undefined;
  };
  const widgets = (n: Record<string, Json> | undefined) =>
    n && Array.isArray(n.widgets_values) ? n.widgets_values : [];
  const inputLink = (n: Record<string, Json>, name: string): Json => {
    const ins = Array.isArray(n.inputs) ? n.inputs : [];
    return ins.find((i): i is Record<string, Json> => isObj(i) && i.name === name)?.link;
  };
  const sampler = nodes.find((n) => n.type === 'KSampler' || n.type === 'KSamplerAdvanced');
  if (!sampler) return null;
  const textOf = (name: string) => {
    const n = from(inputLink(sampler, name));
    return n && typeof n.type === 'string' && isTextEncoder(n.type) ? str(widgets(n)[0]) : null;
  };
  const w = widgets(sampler);
  const [parameters, put] = collector();
  // KSampler widgets: seed, control_after_generate, steps, cfg, sampler_name, scheduler, denoise.
  // KSamplerAdvanced: add_noise, noise_seed, control, steps, cfg, sampler_name, scheduler, ...
  const o = sampler.type === 'KSampler' ? 0 : 1;
  put('Seed', w[o]);
  put('Steps', w[o + 2]);
  put('CFG scale', w[o + 3]);
  put('Sampler', w[o + 4]);
  put('Scheduler', w[o + 5]);
  return { prompt: textOf('positive') ?? '', negativePrompt: textOf('negative'), parameters, notes };
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
