// Running CLIP's towers for embeddings: build the tower for the batch, emit it, run it on the chosen
// provider. Used by `fstudio embed-text` / `embed-image` and by tests; the generation loop builds its own
// graphs (with gradients) from clip.ts.
//
// Public API
//   buildEmbedGraph(loaded, tower, batch) -> Uint8Array     ONNX model: input `pixels` [B,3,S,S] or `input_ids`
//                                                           [B,T] int64; outputs `features` and `embeds` (L2-normalised)
//   embedText(modelDir, texts, opts) -> EmbedResult
//   embedImage(modelDir, pixels, opts) -> EmbedResult      pixels: float32 [B, 3, S, S], already preprocessed
//   EmbedResult: { provider, dim, embeds: Float32Array[] (unit length), features: Float32Array[], ids? }
import { Builder } from '../graph/builder.js';
import { type HostTensor } from '../graph/ir.js';
import { emitModel } from '../graph/onnx-proto.js';
import { type ProviderName, createSession } from '../graph/runtime.js';
import { buildTextTower, buildVisionTower, paramsFrom } from './clip.js';
import { type ClipTower, type LoadedClip, loadClip } from './clip-load.js';
import { ClipTokenizer } from './clip-tokenizer.js';

export interface EmbedOptions {
  /** Execution provider (default 'cpu'); 'auto' picks the best this machine has. */
  provider?: ProviderName;
  /** Safetensors cache for torch checkpoints (see loadClip). */
  cacheFile?: string;
}

export interface EmbedResult {
  /** The provider that ran the graph. */
  provider: string;
  dim: number;
  /** L2-normalised embeddings, one per input. */
  embeds: Float32Array[];
  /** The projections before normalisation (HF's get_*_features). */
  features: Float32Array[];
  /** Token ids per text (embedText only). */
  ids?: number[][];
}

export function buildEmbedGraph(loaded: LoadedClip, tower: ClipTower, batch: number): Uint8Array {
  const { config } = loaded;
  const b = new Builder(`clip-${tower}`);
  const p = paramsFrom(b, loaded.weights);
  const features =
    tower === 'vision'
      ? buildVisionTower(
          b,
          config,
          p,
          b.input('pixels', [batch, 3, config.vision.imageSize, config.vision.imageSize], 'float32'),
        )
      : buildTextTower(b, config, p, b.input('input_ids', [batch, config.text.maxPositions], 'int64'));
  return emitModel(b.graph, { outputs: { features, embeds: b.l2Normalize(features, -1) } });
}

function rows(t: HostTensor): Float32Array[] {
  const [n, d] = t.dims as [number, number];
  const data = t.data as Float32Array;
  return Array.from({ length: n }, (_, i) => data.slice(i * d, (i + 1) * d));
}

async function run(
  loaded: LoadedClip,
  tower: ClipTower,
  name: string,
  input: HostTensor,
  opts: EmbedOptions,
): Promise<EmbedResult> {
  const model = buildEmbedGraph(loaded, tower, input.dims[0]!);
  const session = await createSession(model, { provider: opts.provider ?? 'cpu' });
  try {
    const out = await session.run({ [name]: input });
    return {
      provider: session.provider,
      dim: loaded.config.projectionDim,
      embeds: rows(out.embeds!),
      features: rows(out.features!),
    };
  } finally {
    await session.release();
  }
}

export async function embedText(modelDir: string, texts: readonly string[], opts: EmbedOptions = {}) {
  if (texts.length === 0) throw new Error('embedText: no texts');
  const loaded = await loadClip(modelDir, { towers: ['text'], ...(opts.cacheFile ? { cacheFile: opts.cacheFile } : {}) });
  const tok = await ClipTokenizer.fromDir(modelDir, loaded.config.text.maxPositions);
  const ids = tok.encodeBatch(texts);
  const T = tok.contextLength;
  const result = await run(loaded, 'text', 'input_ids', ids, opts);
  const all = Array.from(ids.data as BigInt64Array, Number);
  result.ids = texts.map((_, i) => all.slice(i * T, (i + 1) * T));
  return result;
}

export async function embedImage(modelDir: string, pixels: HostTensor, opts: EmbedOptions = {}) {
  const loaded = await loadClip(modelDir, {
    towers: ['vision'],
    ...(opts.cacheFile ? { cacheFile: opts.cacheFile } : {}),
  });
  const S = loaded.config.vision.imageSize;
  const [B, C, H, W] = pixels.dims;
  if (pixels.dtype !== 'float32' || pixels.dims.length !== 4 || !B || C !== 3 || H !== S || W !== S) {
    throw new Error(`embedImage: pixels must be float32 [B, 3, ${S}, ${S}], got ${pixels.dtype} [${pixels.dims.join(', ')}]`);
  }
  return run(loaded, 'vision', 'pixels', pixels, opts);
}
