// Running a taming VQGAN directly, in the compute worker: image -> token grid (encode) and token grid ->
// image (decode). Each graph is built per input shape and, with a graph cache folder, read from disk
// afterwards, every size sharing the model's one weights file; the weights are read only when a graph
// must be built. Used by the `vqgan.*` tasks (`fstudio vqgan encode | decode`, init images).
//
// Public API
//   VqganCoder.open(device, model, log?) -> coder   config read (from model.yaml, or the checkpoint's shapes)
//     .info / .encode(x, provider) / .decode(tokens, provider) / .close()
//   vqganTasks                                     'vqgan.info', 'vqgan.encode', 'vqgan.decode' (stream { log })
//   VqganModelRef, VqganModelInfo
import { Builder } from '../graph/builder.js';
import { type HostTensor } from '../graph/ir.js';
import { type ExternalWeights, emitModel } from '../graph/onnx-proto.js';
import { type ModelSource, type ProviderName, type RuntimeSession } from '../runtime/ort.js';
import { cachedGraph, fileIdentity } from '../runtime/graph-cache.js';
import { type ProviderChoice } from '../runtime/providers.js';
import type { Device, TaskContext } from '../runtime/worker-core.js';
import { loadVqgan, readVqganModelInfo } from './vqgan-load.js';
import {
  type VqganConfig,
  type VqganWeights,
  decode,
  downsampleFactor,
  embedCode,
  encode,
  quantize,
  vqganParams,
} from './vqgan.js';

/** A VQGAN as the studio's model manager resolves it. */
export interface VqganModelRef {
  /** The model folder (last.ckpt + model.yaml) or checkpoint file. */
  location: string;
  /** What to call it in messages: the catalog id or the path. */
  name: string;
  /** Safetensors conversion of the torch checkpoint (converted on first load, read after). */
  cacheFile?: string;
  /** Built graphs and the model's shared weights file. */
  graphCacheDir?: string;
}

export interface VqganModelInfo {
  config: VqganConfig;
  /** Pixels per token along each side. */
  factor: number;
  /** Where the config came from (a model.yaml, or inferred from the checkpoint). */
  configFrom: string;
  checkpoint: string;
}

/** Bumped when the encode / decode graphs below change for the same inputs (also see GRAPH_CODE_VERSION). */
const GRAPHS = { encode: 'vqgan-encode v1', decode: 'vqgan-decode v1' } as const;

type Log = (line: string) => void;
const seconds = (t0: number) => ((performance.now() - t0) / 1000).toFixed(1);

export class VqganCoder {
  #weights: Promise<VqganWeights> | null = null;
  readonly #sessions: RuntimeSession[] = [];

  private constructor(
    private readonly device: Device,
    private readonly model: VqganModelRef,
    readonly info: VqganModelInfo,
    private readonly log: Log,
  ) {}

  /** Reads the config (the checkpoint is opened for its shapes only when there is no model.yaml). */
  static async open(device: Device, model: VqganModelRef, log: Log = () => {}): Promise<VqganCoder> {
    const opts = model.cacheFile ? { cacheFile: model.cacheFile } : {};
    const r = await readVqganModelInfo(model.location, opts);
    const c = r.config;
    const info = { config: c, factor: downsampleFactor(c), configFrom: r.configFrom, checkpoint: r.files.checkpoint };
    return new VqganCoder(device, model, info, log);
  }

  /** The weights, read (every name and shape checked) once, only when a graph is not in the cache. */
  weights(): Promise<VqganWeights> {
    return (this.#weights ??= (async () => {
      const t0 = performance.now();
      const opts = { config: this.info.config, ...(this.model.cacheFile ? { cacheFile: this.model.cacheFile } : {}) };
      const l = await loadVqgan(this.model.location, opts);
      this.log(`weights loaded in ${seconds(t0)} s`);
      return l.weights;
    })());
  }

  async #session(
    kind: keyof typeof GRAPHS,
    shapes: Record<string, readonly number[]>,
    build: (w: VqganWeights, ext?: ExternalWeights) => Uint8Array,
    provider: ProviderName,
  ): Promise<RuntimeSession> {
    const t0 = performance.now();
    const id = fileIdentity(this.info.checkpoint);
    const { bytes, hit, file, external } = await cachedGraph(
      this.model.graphCacheDir,
      { graph: GRAPHS[kind], weights: id, shapes, options: { config: this.info.config } },
      async (ext) => build(await this.weights(), ext),
      { weights: { id, load: () => this.weights() } },
    );
    this.log(hit ? `${kind} graph read from the cache in ${seconds(t0)} s` : `${kind} graph built in ${seconds(t0)} s`);
    const source: ModelSource = external && file ? { file } : bytes;
    const s = await this.device.load(source, { provider });
    this.#sessions.push(s);
    return s;
  }

  /** x: float32 [1, C, H, W] in [-1, 1], H and W multiples of the factor -> token ids int64 [1, h, w]. */
  async encode(x: HostTensor, provider: ProviderName): Promise<{ indices: HostTensor; choice: ProviderChoice }> {
    const { config } = this.info;
    const s = await this.#session(
      'encode',
      { x: x.dims },
      (weights, ext) => {
        const b = new Builder('vqgan_encode');
        const p = vqganParams(b, config, weights);
        const { indices } = quantize(b, p, encode(b, p, b.input('x', x.dims)));
        return emitModel(b.graph, { outputs: { indices }, sharedWeights: ext });
      },
      provider,
    );
    const out = await s.run({ x });
    return { indices: out.indices!, choice: s.choice };
  }

  /** tokens: int64 [1, h, w], each below nEmbed -> image float32 [1, 3, H, W] in about [-1, 1]. */
  async decode(tokens: HostTensor, provider: ProviderName): Promise<{ rec: HostTensor; choice: ProviderChoice }> {
    const { config } = this.info;
    const ids = tokens.data as BigInt64Array;
    for (const t of ids)
      if (t < 0n || t >= BigInt(config.nEmbed))
        throw new Error(`token ${t} is outside this VQGAN's codebook (${config.nEmbed} codes): wrong model?`);
    const s = await this.#session(
      'decode',
      { tokens: tokens.dims },
      (weights, ext) => {
        const b = new Builder('vqgan_decode');
        const p = vqganParams(b, config, weights);
        const rec = decode(b, p, embedCode(b, p, b.input('tokens', tokens.dims, 'int64')));
        return emitModel(b.graph, { outputs: { rec }, sharedWeights: ext });
      },
      provider,
    );
    const out = await s.run({ tokens });
    return { rec: out.rec!, choice: s.choice };
  }

  async close(): Promise<void> {
    await Promise.all(this.#sessions.splice(0).map((s) => s.release().catch(() => undefined)));
  }
}

export interface VqganTaskArgs {
  model: VqganModelRef;
  provider?: ProviderName;
}

/** A stream message of the vqgan tasks: a progress line for the console. */
export interface VqganLog {
  log: string;
}

/** Opens a coder for one call (the CLI is one call per process; the graph cache makes a reopen cheap). */
async function withCoder<T>(a: VqganTaskArgs, ctx: TaskContext, fn: (c: VqganCoder) => Promise<T>): Promise<T> {
  const coder = await VqganCoder.open(ctx.device, a.model, (log) => ctx.emit({ log } satisfies VqganLog));
  try {
    return await fn(coder);
  } finally {
    await coder.close();
  }
}

/** The worker's VQGAN tasks. */
export const vqganTasks = {
  /** The config, announced as a log line (encode and decode callers ask for it first). */
  'vqgan.info': (a: VqganTaskArgs, ctx: TaskContext): Promise<VqganModelInfo> =>
    withCoder(a, ctx, async ({ info: { config: c, factor, configFrom }, info }) => {
      ctx.emit({ log: `VQGAN ${a.model.name}: f${factor}, ${c.nEmbed} codes x ${c.embedDim}, config ${configFrom}` });
      return info;
    }),
  'vqgan.encode': (a: VqganTaskArgs & { x: HostTensor }, ctx: TaskContext) =>
    withCoder(a, ctx, (c) => c.encode(a.x, a.provider ?? 'auto')),
  'vqgan.decode': (a: VqganTaskArgs & { tokens: HostTensor }, ctx: TaskContext) =>
    withCoder(a, ctx, (c) => c.decode(a.tokens, a.provider ?? 'auto')),
};
