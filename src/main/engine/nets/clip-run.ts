// Running CLIP's towers for embeddings, in the compute worker: the tower is built for the batch size,
// emitted and run on the worker's device. Used by the `clip.embed` task (embed-text / embed-image,
// zero-shot classification); the generation loop builds its own graphs (with gradients) from clip.ts.
//
// Public API
//   buildEmbedGraph(loaded, tower, batch, external?) -> Uint8Array  ONNX model: input `pixels` [B,3,S,S] or
//                                                           `input_ids` [B,T] int64; outputs `features` and
//                                                           `embeds` (L2-normalised)
//   ClipEmbedder.open(device, modelDir, opts)                config and tokenizer read once, one session per
//     .embedTexts(texts) / .embedImages(pixels) / .close()   (tower, batch size), kept until close(); with
//                                                           opts.graphCacheDir each (tower, batch) graph is
//                                                           built once and read from disk afterwards, all of
//                                                           them sharing one weights file of the model
//   clipTasks                                                the worker's 'clip.embed' task (ClipEmbedArgs)
//   EmbedResult: { provider, choice, dim, embeds: Float32Array[] (unit length), features: Float32Array[], ids? }
import { statSync } from 'node:fs';
import path from 'node:path';
import { Builder } from '../graph/builder.js';
import { type HostTensor } from '../graph/ir.js';
import { type ExternalWeights, emitModel } from '../graph/onnx-proto.js';
import { type ModelSource, type ProviderName, type RuntimeSession } from '../runtime/ort.js';
import { cachedGraph, fileIdentity } from '../runtime/graph-cache.js';
import { type ProviderChoice } from '../runtime/providers.js';
import type { Device, TaskContext } from '../runtime/worker-core.js';
import { type ClipConfig, buildTextTower, buildVisionTower, paramsFrom } from './clip.js';
import { type ClipTower, type LoadedClip, findClipWeights, loadClip, readClipConfig } from './clip-load.js';
import { ClipTokenizer } from './clip-tokenizer.js';

export interface EmbedOptions {
  /** Execution provider (default 'cpu'); 'auto' picks the best this machine has (EmbedResult.choice says why). */
  provider?: ProviderName;
  /** Safetensors cache for torch checkpoints (see loadClip). */
  cacheFile?: string;
  /** Towers to load (default both). */
  towers?: readonly ClipTower[];
  /**
   * Folder of built graphs (runtime/graph-cache.ts; the studio passes <dataDir>/cache/graphs). A tower built
   * once for a batch size is read from here afterwards, and the weights are then not read at all. Without
   * it every open builds its graphs again, with the weights inline, and nothing is written.
   */
  graphCacheDir?: string;
}

export interface EmbedResult {
  /** The provider that ran the graph. */
  provider: string;
  /** How the provider was chosen (with 'auto': why the better ones were not taken). */
  choice: ProviderChoice;
  dim: number;
  /** L2-normalised embeddings, one per input. */
  embeds: Float32Array[];
  /** The projections before normalisation (HF's get_*_features). */
  features: Float32Array[];
  /** Token ids per text (text embeddings only). */
  ids?: number[][];
}

/** Bumped when buildEmbedGraph's output changes for the same inputs (also see GRAPH_CODE_VERSION). */
const EMBED_GRAPH = 'clip-embed v1';

export function buildEmbedGraph(
  loaded: LoadedClip,
  tower: ClipTower,
  batch: number,
  externalData?: ExternalWeights,
): Uint8Array {
  const { config } = loaded;
  const b = new Builder(`clip-${tower}`);
  const p = paramsFrom(b, loaded.weights);
  const S = config.vision.imageSize;
  const features =
    tower === 'vision'
      ? buildVisionTower(b, config, p, b.input('pixels', [batch, 3, S, S], 'float32'))
      : buildTextTower(b, config, p, b.input('input_ids', [batch, config.text.maxPositions], 'int64'));
  return emitModel(b.graph, {
    outputs: { features, embeds: b.l2Normalize(features, -1) },
    sharedWeights: externalData,
  });
}

function rows(t: HostTensor): Float32Array[] {
  const [n, d] = t.dims as [number, number];
  const data = t.data as Float32Array;
  return Array.from({ length: n }, (_, i) => data.slice(i * d, (i + 1) * d));
}

export class ClipEmbedder {
  readonly #sessions = new Map<string, Promise<RuntimeSession>>();
  #loaded: Promise<LoadedClip> | null = null;
  /** Graphs built here, and graphs read from the graph cache instead. */
  readonly graphs = { built: 0, cached: 0 };

  private constructor(
    private readonly device: Device,
    readonly config: ClipConfig,
    readonly tokenizer: ClipTokenizer | null,
    readonly provider: ProviderName,
    readonly towers: readonly ClipTower[],
    readonly weightsFile: string,
    private readonly opts: { modelDir: string; cacheFile?: string; graphCacheDir?: string },
  ) {}

  /**
   * Reads the config and tokenizer. The weights are read (every name and shape checked) here when there is
   * no graph cache, else on the first graph the cache does not hold.
   */
  static async open(device: Device, modelDir: string, opts: EmbedOptions = {}): Promise<ClipEmbedder> {
    const towers = opts.towers ?? ['vision', 'text'];
    const config = await readClipConfig(modelDir);
    const weightsFile = findClipWeights(modelDir);
    const tokenizer = towers.includes('text') ? await ClipTokenizer.fromDir(modelDir, config.text.maxPositions) : null;
    const e = new ClipEmbedder(device, config, tokenizer, opts.provider ?? 'cpu', towers, weightsFile, {
      modelDir,
      ...(opts.cacheFile ? { cacheFile: opts.cacheFile } : {}),
      ...(opts.graphCacheDir ? { graphCacheDir: opts.graphCacheDir } : {}),
    });
    if (!opts.graphCacheDir) await e.load();
    return e;
  }

  /**
   * The weights (read once, on first call): of the opened towers, or with a graph cache of both, since the
   * model's one shared weights file serves every tower's graphs.
   */
  load(): Promise<LoadedClip> {
    if (!this.#loaded) {
      const { modelDir, cacheFile, graphCacheDir } = this.opts;
      const towers = graphCacheDir ? (['vision', 'text'] as const) : this.towers;
      this.#loaded = loadClip(modelDir, { towers, ...(cacheFile ? { cacheFile } : {}) });
      this.#loaded.catch(() => (this.#loaded = null));
    }
    return this.#loaded;
  }

  /** Whether the weights have been read (false while every graph came from the cache). */
  get weightsLoaded(): boolean {
    return this.#loaded !== null;
  }

  async #graph(tower: ClipTower, batch: number): Promise<ModelSource> {
    const S = this.config.vision.imageSize;
    const { bytes, hit, file, external } = await cachedGraph(
      this.opts.graphCacheDir,
      {
        graph: `${EMBED_GRAPH} ${tower}`,
        weights: fileIdentity(this.weightsFile),
        shapes:
          tower === 'vision' ? { pixels: [batch, 3, S, S] } : { input_ids: [batch, this.config.text.maxPositions] },
        options: { config: this.config },
      },
      async (ext) => buildEmbedGraph(await this.load(), tower, batch, ext),
      {
        weights: {
          id: fileIdentity(this.weightsFile),
          load: async () => (await this.load()).weights,
        },
      },
    );
    this.graphs[hit ? 'cached' : 'built']++;
    return external && file ? { file } : bytes;
  }

  async #run(tower: ClipTower, input: HostTensor): Promise<EmbedResult> {
    const batch = input.dims[0]!;
    const key = `${tower}:${batch}`;
    let session = this.#sessions.get(key);
    if (!session) {
      session = this.#graph(tower, batch).then((model) => this.device.load(model, { provider: this.provider }));
      this.#sessions.set(key, session);
      session.catch(() => this.#sessions.delete(key));
    }
    const s = await session;
    const out = await s.run({ [tower === 'vision' ? 'pixels' : 'input_ids']: input });
    return {
      provider: s.provider,
      choice: s.choice,
      dim: this.config.projectionDim,
      embeds: rows(out.embeds!),
      features: rows(out.features!),
    };
  }

  async embedTexts(texts: readonly string[]): Promise<EmbedResult> {
    if (!this.tokenizer) throw new Error('ClipEmbedder: opened without the text tower');
    if (texts.length === 0) throw new Error('embed texts: no texts');
    const ids = this.tokenizer.encodeBatch(texts);
    const T = this.tokenizer.contextLength;
    const result = await this.#run('text', ids);
    const all = Array.from(ids.data as BigInt64Array, Number);
    result.ids = texts.map((_, i) => all.slice(i * T, (i + 1) * T));
    return result;
  }

  async embedImages(pixels: HostTensor): Promise<EmbedResult> {
    if (!this.towers.includes('vision')) {
      throw new Error('ClipEmbedder: opened without the vision tower');
    }
    const S = this.config.vision.imageSize;
    const [B, C, H, W] = pixels.dims;
    if (pixels.dtype !== 'float32' || pixels.dims.length !== 4 || !B || C !== 3 || H !== S || W !== S) {
      throw new Error(
        `embed images: pixels must be float32 [B, 3, ${S}, ${S}], got ${pixels.dtype} [${pixels.dims.join(', ')}]`,
      );
    }
    return this.#run('vision', pixels);
  }

  async close(): Promise<void> {
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    await Promise.all(sessions.map((s) => s.then((x) => x.release()).catch(() => undefined)));
  }
}

/** A CLIP model folder as the studio's model manager resolves it (or a bare folder, in tests). */
export interface ClipModelRef {
  /** config.json, the weights and tokenizer.json. */
  dir: string;
  /** Safetensors conversion of a torch checkpoint (see loadClip). */
  cacheFile?: string;
  /** Built graphs and the model's shared weights file. */
  graphCacheDir?: string;
}

export type ClipEmbedArgs = { model: ClipModelRef; provider?: ProviderName } & (
  { texts: string[] } | { pixels: HostTensor }
);

/** What changes when a model folder is replaced or edited: the config's and the weights' file identities. */
function folderIdentity(dir: string): string {
  const config = statSync(path.join(dir, 'config.json'));
  return `${fileIdentity(findClipWeights(dir))}|${config.size}:${config.mtimeMs}:${config.ctimeMs}`;
}

/** The worker's CLIP tasks: one embedder per (model, provider) kept between calls. */
export const clipTasks = {
  async 'clip.embed'(a: ClipEmbedArgs, ctx: TaskContext): Promise<EmbedResult> {
    const provider = a.provider ?? 'cpu';
    const key = `clip:${provider}:${JSON.stringify(a.model)}:${folderIdentity(a.model.dir)}`;
    const e = await ctx.memo(
      key,
      () =>
        ClipEmbedder.open(ctx.device, a.model.dir, {
          provider,
          cacheFile: a.model.cacheFile,
          graphCacheDir: a.model.graphCacheDir,
        }),
      (x) => x.close(),
    );
    return 'texts' in a ? e.embedTexts(a.texts) : e.embedImages(a.pixels);
  },
};
