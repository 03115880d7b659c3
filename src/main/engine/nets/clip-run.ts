// Running CLIP's towers for embeddings: the tower is built for the batch size, emitted and run on the
// chosen provider. Used by `fstudio embed-text` / `embed-image`, zero-shot classification and tests; the
// generation loop builds its own graphs (with gradients) from clip.ts.
//
// Public API
//   buildEmbedGraph(loaded, tower, batch) -> Uint8Array     ONNX model: input `pixels` [B,3,S,S] or `input_ids`
//                                                           [B,T] int64; outputs `features` and `embeds` (L2-normalised)
//   ClipEmbedder.open(modelDir, opts)                        weights and tokenizer loaded once, one session per
//     .embedTexts(texts) / .embedImages(pixels) / .close()   (tower, batch size), kept until close()
//   embedText(modelDir, texts, opts) -> EmbedResult          one-shot wrappers (open, embed, close)
//   embedImage(modelDir, pixels, opts) -> EmbedResult        pixels: float32 [B, 3, S, S], already preprocessed
//   EmbedResult: { provider, dim, embeds: Float32Array[] (unit length), features: Float32Array[], ids? }
import { Builder } from '../graph/builder.js';
import { type HostTensor } from '../graph/ir.js';
import { emitModel } from '../graph/onnx-proto.js';
import { type ProviderName, type RuntimeSession, createSession } from '../graph/runtime.js';
import { type ClipConfig, buildTextTower, buildVisionTower, paramsFrom } from './clip.js';
import { type ClipTower, type LoadedClip, loadClip } from './clip-load.js';
import { ClipTokenizer } from './clip-tokenizer.js';

export interface EmbedOptions {
  /** Execution provider (default 'cpu'); 'auto' picks the best this machine has. */
  provider?: ProviderName;
  /** Safetensors cache for torch checkpoints (see loadClip). */
  cacheFile?: string;
  /** Towers to load (default both). */
  towers?: readonly ClipTower[];
}

export interface EmbedResult {
  /** The provider that ran the graph. */
  provider: string;
  dim: number;
  /** L2-normalised embeddings, one per input. */
  embeds: Float32Array[];
  /** The projections before normalisation (HF's get_*_features). */
  features: Float32Array[];
  /** Token ids per text (text embeddings only). */
  ids?: number[][];
}

export function buildEmbedGraph(loaded: LoadedClip, tower: ClipTower, batch: number): Uint8Array {
  const { config } = loaded;
  const b = new Builder(`clip-${tower}`);
  const p = paramsFrom(b, loaded.weights);
  const S = config.vision.imageSize;
  const features =
    tower === 'vision'
      ? buildVisionTower(b, config, p, b.input('pixels', [batch, 3, S, S], 'float32'))
      : buildTextTower(b, config, p, b.input('input_ids', [batch, config.text.maxPositions], 'int64'));
  return emitModel(b.graph, { outputs: { features, embeds: b.l2Normalize(features, -1) } });
}

function rows(t: HostTensor): Float32Array[] {
  const [n, d] = t.dims as [number, number];
  const data = t.data as Float32Array;
  return Array.from({ length: n }, (_, i) => data.slice(i * d, (i + 1) * d));
}

export class ClipEmbedder {
  readonly #sessions = new Map<string, Promise<RuntimeSession>>();

  private constructor(
    readonly loaded: LoadedClip,
    readonly tokenizer: ClipTokenizer | null,
    readonly provider: ProviderName,
  ) {}

  static async open(modelDir: string, opts: EmbedOptions = {}): Promise<ClipEmbedder> {
    const towers = opts.towers ?? ['vision', 'text'];
    const loaded = await loadClip(modelDir, { towers, ...(opts.cacheFile ? { cacheFile: opts.cacheFile } : {}) });
    const tokenizer = towers.includes('text')
      ? await ClipTokenizer.fromDir(modelDir, loaded.config.text.maxPositions)
      : null;
    return new ClipEmbedder(loaded, tokenizer, opts.provider ?? 'cpu');
  }

  get config(): ClipConfig {
    return this.loaded.config;
  }

  async #run(tower: ClipTower, input: HostTensor): Promise<EmbedResult> {
    const batch = input.dims[0]!;
    const key = `${tower}:${batch}`;
    let session = this.#sessions.get(key);
    if (!session) {
      session = createSession(buildEmbedGraph(this.loaded, tower, batch), { provider: this.provider });
      this.#sessions.set(key, session);
      session.catch(() => this.#sessions.delete(key));
    }
    const s = await session;
    const out = await s.run({ [tower === 'vision' ? 'pixels' : 'input_ids']: input });
    return {
      provider: s.provider,
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
    if (!this.loaded.weights.has('visual_projection.weight')) {
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

export async function embedText(modelDir: string, texts: readonly string[], opts: EmbedOptions = {}) {
  const e = await ClipEmbedder.open(modelDir, { ...opts, towers: ['text'] });
  try {
    return await e.embedTexts(texts);
  } finally {
    await e.close();
  }
}

export async function embedImage(modelDir: string, pixels: HostTensor, opts: EmbedOptions = {}) {
  const e = await ClipEmbedder.open(modelDir, { ...opts, towers: ['vision'] });
  try {
    return await e.embedImages(pixels);
  } finally {
    await e.close();
  }
}
