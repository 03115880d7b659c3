// Model runs for the app, the server and the CLI alike: resolve the model (ModelManager: catalog id or
// path, its weights cache and the graph cache), prepare the inputs here (image decoding in sharp's own
// threads), and hand the run to the compute worker of the chosen device (engine tasks through the
// RunnerSet the caller owns). Nothing here runs a model on the calling thread.
//
// Public API
//   new StudioCompute(models, runners)
//     .embedTexts({ model?, texts, provider? })          -> { model, result: EmbedResult }
//     .embedImages({ model?, images, provider? })         images: file paths or encoded bytes
//     .embedPixels({ model?, pixels, provider? })         images already in CLIP's pixels, as one batch
//     .vqganEncode({ model?, image, name, size?, maxSide?, provider?, log? }) -> { tokens, choice }
//     .vqganDecode({ tokens, model?, provider?, log? })   -> { png, width, height, choice }
//     .gradcheck({ provider, onProgress? })               -> GradcheckReport
//   VqganTokens (zod): the token-grid file `vqgan encode` writes and `vqgan decode` reads
import { z } from 'zod';
import { StudioError } from '../../shared/api.js';
import type { Provider } from '../../shared/providers.js';
import type { HostTensor } from '../engine/graph/ir.js';
import type { GradcheckProgress, GradcheckReport } from '../engine/graph/gradcheck.js';
import type { DeviceSpeed } from '../engine/graph/speed.js';
import type { EmbedResult } from '../engine/nets/clip-run.js';
import type { ProviderChoice } from '../engine/runtime/providers.js';
import { readClipConfig } from '../engine/nets/clip-load.js';
import type { VqganLog } from '../engine/nets/vqgan-run.js';
import type {
  GenerateArgs,
  GenerateResult,
  GenerateStreamMessage,
  ScoreResult,
  TextModelInfo,
  TextModelRef,
} from '../engine/text/types.js';
import type { GenerateStream } from '../engine/vqclip/index.js';
import { runTask, type TaskArgs, type TaskName, type TaskResult } from '../engine/task-client.js';
import { deviceFor, type RunnerSet } from '../engine/runtime/runner.js';
import { clipPixelBatch } from './images-clip.js';
import { readVqganImage, vqganTensorToPng } from './images-vqgan.js';
import type { ModelManager, ResolvedModel } from './models/manager.js';

/** The token-grid file: what `vqgan encode` writes and `vqgan decode` reads. */
export const VqganTokens = z.object({
  format: z.literal('fstudio-vqgan-tokens'),
  version: z.literal(1),
  /** The model it was made with (catalog id, or an absolute path). */
  model: z.string(),
  nEmbed: z.number().int().positive(),
  /** Pixels per token along each side. */
  factor: z.number().int().positive(),
  /** Grid size in tokens; tokens[row][col]. */
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  tokens: z.array(z.array(z.number().int().nonnegative())),
});
export type VqganTokens = z.infer<typeof VqganTokens>;

interface RunOptions {
  /** Catalog id, folder or checkpoint; default the catalog's default model of the kind. */
  model?: string;
  /** Default 'auto': the best this machine has (the result's choice says why). */
  provider?: Provider;
  signal?: AbortSignal;
}

interface LoggedRun extends RunOptions {
  /** Progress lines (the CLI prints them on stderr). */
  log?: (line: string) => void;
}

/** An engine failure a user can act on, as a StudioError with the whole message (every mismatched tensor). */
function studioErrorOf(e: unknown): unknown {
  if (!(e instanceof Error) || e instanceof StudioError) return e;
  if (e.name === 'StateDictMismatchError') return new StudioError('ModelMismatch', e.message);
  return e;
}

export class StudioCompute {
  constructor(
    private readonly models: ModelManager,
    readonly runners: RunnerSet,
  ) {}

  async #task<K extends TaskName>(
    name: K,
    args: TaskArgs<K>,
    o: { provider?: Provider; signal?: AbortSignal; log?: (l: string) => void; onStream?: (m: never) => void },
  ): Promise<TaskResult<K>> {
    try {
      return await runTask(this.runners.for(deviceFor(o.provider ?? 'auto')), name, args, {
        signal: o.signal,
        onStream:
          o.onStream ??
          ((m: VqganLog | unknown) => {
            if (o.log && typeof m === 'object' && m !== null && 'log' in m) o.log(String((m as VqganLog).log));
          }),
      });
    } catch (e) {
      throw studioErrorOf(e);
    }
  }

  #clipModel(m: ResolvedModel) {
    return { dir: m.location, cacheFile: m.weightsCacheFile, graphCacheDir: m.graphCacheDir };
  }

  #vqganModel(m: ResolvedModel) {
    return { location: m.location, name: m.ref, cacheFile: m.weightsCacheFile, graphCacheDir: m.graphCacheDir };
  }

  /** CLIP text embeddings (L2-normalised) of each text. */
  async embedTexts(o: RunOptions & { texts: string[] }): Promise<{ model: ResolvedModel; result: EmbedResult }> {
    const model = await this.models.resolve('clip', o.model);
    const provider = o.provider ?? 'auto';
    const result = await this.#task('clip.embed', { model: this.#clipModel(model), provider, texts: o.texts }, o);
    return { model, result };
  }

  /** CLIP image embeddings: each image resized, center-cropped and normalised as CLIP expects. */
  async embedImages(
    o: RunOptions & { images: readonly (string | Uint8Array)[] },
  ): Promise<{ model: ResolvedModel; result: EmbedResult }> {
    const model = await this.models.resolve('clip', o.model);
    const size = (await readClipConfig(model.location)).vision.imageSize;
    return this.embedPixels({ ...o, model: model.ref, pixels: await clipPixelBatch(o.images, size) });
  }

  /**
   * CLIP image embeddings of images already decoded to CLIP's pixels (clipPixels / stackPixels): for callers that
   * decode one by one, so that one unreadable file does not fail the batch (Classify).
   */
  async embedPixels(o: RunOptions & { pixels: HostTensor }): Promise<{ model: ResolvedModel; result: EmbedResult }> {
    const model = await this.models.resolve('clip', o.model);
    const provider = o.provider ?? 'auto';
    const result = await this.#task('clip.embed', { model: this.#clipModel(model), provider, pixels: o.pixels }, o);
    return { model, result };
  }

  /** An image's bytes -> its token grid. */
  async vqganEncode(
    o: LoggedRun & {
      image: Uint8Array;
      name: string;
      size?: { width: number; height: number };
      maxSide?: number;
    },
  ): Promise<{ tokens: VqganTokens; choice: ProviderChoice }> {
    const model = await this.models.resolve('vqgan', o.model);
    const ref = this.#vqganModel(model);
    const info = await this.#task('vqgan.info', { model: ref }, o);
    const img = await readVqganImage(o.image, o.name, { multiple: info.factor, size: o.size, maxSide: o.maxSide });
    if (img.width !== img.sourceWidth || img.height !== img.sourceHeight) {
      o.log?.(
        `resized ${img.sourceWidth}x${img.sourceHeight} to ${img.width}x${img.height} (multiples of ${info.factor})`,
      );
    }
    const x: HostTensor = {
      dtype: 'float32',
      dims: [1, info.config.inChannels, img.height, img.width],
      data: img.data,
    };
    const { indices, choice } = await this.#task('vqgan.encode', { model: ref, provider: o.provider ?? 'auto', x }, o);
    const ids = indices.data as BigInt64Array;
    const [, h, w] = indices.dims as [number, number, number];
    const tokens: VqganTokens = {
      format: 'fstudio-vqgan-tokens',
      version: 1,
      model: model.ref,
      nEmbed: info.config.nEmbed,
      factor: info.factor,
      width: w,
      height: h,
      tokens: Array.from({ length: h }, (_, r) => Array.from(ids.subarray(r * w, (r + 1) * w), Number)),
    };
    return { tokens, choice };
  }

  /** A token grid -> PNG bytes (and the image size). The model defaults to the one the grid names. */
  async vqganDecode(
    o: LoggedRun & { tokens: VqganTokens },
  ): Promise<{ png: Buffer; width: number; height: number; choice: ProviderChoice }> {
    const { height: h, width: w, tokens } = o.tokens;
    if (tokens.length !== h || tokens.some((row) => row.length !== w)) {
      throw new StudioError('InvalidArgument', `the token grid is not ${h} rows of ${w} tokens`);
    }
    const model = await this.models.resolve('vqgan', o.model ?? o.tokens.model);
    const ref = this.#vqganModel(model);
    const info = await this.#task('vqgan.info', { model: ref }, o);
    const bad = tokens.flat().find((t) => t >= info.config.nEmbed);
    if (bad !== undefined) {
      throw new StudioError(
        'InvalidArgument',
        `token ${bad} is outside this VQGAN's codebook (${info.config.nEmbed} codes): wrong model?`,
      );
    }
    const ids: HostTensor = { dtype: 'int64', dims: [1, h, w], data: BigInt64Array.from(tokens.flat(), BigInt) };
    const { rec, choice } = await this.#task(
      'vqgan.decode',
      { model: ref, provider: o.provider ?? 'auto', tokens: ids },
      o,
    );
    const [, , H, W] = rec.dims as [number, number, number, number];
    return { png: await vqganTensorToPng(rec.data as Float32Array, W, H), width: W, height: H, choice };
  }

  /** A VQGAN's config and downsampling factor (from its model.yaml, or its checkpoint's shapes). */
  async vqganInfo(model: TaskArgs<'vqgan.info'>['model']) {
    return this.#task('vqgan.info', { model }, {});
  }

  #textModel(m: ResolvedModel): TextModelRef {
    const dtype = m.entry?.runtime?.dtype;
    return { dir: m.location, ...(dtype ? { dtype: dtype as TextModelRef['dtype'] } : {}) };
  }

  /** A causal LM's type, vocabulary, context length and the ONNX file it runs. */
  async textInfo(o: RunOptions = {}): Promise<{ model: ResolvedModel; info: TextModelInfo }> {
    const model = await this.models.resolve('text-lm', o.model);
    const info = await this.#task('text.info', { model: this.#textModel(model) }, o);
    return { model, info };
  }

  /**
   * Log-likelihoods of each continuation after each prompt (label scoring), batched in the compute worker.
   * onProgress gets the prompts done so far.
   */
  async textScore(
    o: RunOptions & { prompts: string[]; continuations: string[]; onProgress?: (done: number) => void },
  ): Promise<{ model: ResolvedModel; result: ScoreResult }> {
    const model = await this.models.resolve('text-lm', o.model);
    const args = {
      model: this.#textModel(model),
      provider: o.provider ?? 'auto',
      prompts: o.prompts,
      continuations: o.continuations,
    };
    const result = await this.#task('text.score', args, {
      ...o,
      onStream: (m: { done: number }) => o.onProgress?.(m.done),
    });
    return { model, result };
  }

  /** Free generation with streaming (onDelta gets each piece of text as it comes). */
  async textGenerate(
    o: RunOptions & Omit<GenerateArgs, 'model' | 'provider'> & { onDelta?: (m: GenerateStreamMessage) => void },
  ): Promise<{ model: ResolvedModel; result: GenerateResult }> {
    const model = await this.models.resolve('text-lm', o.model);
    const { prompt, maxTokens, temperature, topP, stop, seed } = o;
    const args = {
      model: this.#textModel(model),
      provider: o.provider ?? 'auto',
      prompt,
      maxTokens,
      temperature,
      topP,
      stop,
      seed,
    };
    const result = await this.#task('text.generate', args, {
      ...o,
      onStream: (m: GenerateStreamMessage) => o.onDelta?.(m),
    });
    return { model, result };
  }

  /** The device's matmul speed (GFLOP/s), for estimates of time per step. */
  deviceSpeed(provider: Provider): Promise<DeviceSpeed> {
    return this.#task('device.speed', { provider }, { provider });
  }

  /**
   * A VQGAN+CLIP generation run in the compute worker (engine/vqclip): steps, frames and snapshots arrive
   * at onStream; a cancel stops it after the current step (it resolves with stopped: true).
   */
  generate(
    args: TaskArgs<'vqclip.generate'>,
    o: { signal?: AbortSignal; onStream: (m: GenerateStream) => void },
  ): Promise<TaskResult<'vqclip.generate'>> {
    return runTask(this.runners.for(deviceFor(args.provider ?? 'auto')), 'vqclip.generate', args, o);
  }

  /** Every gradient rule against finite differences on a provider (`fstudio doctor --gradcheck`). */
  gradcheck(o: {
    provider: Exclude<Provider, 'auto'>;
    signal?: AbortSignal;
    onProgress?: (p: GradcheckProgress) => void;
  }): Promise<GradcheckReport> {
    return runTask(
      this.runners.for(deviceFor(o.provider)),
      'gradcheck',
      { provider: o.provider },
      { signal: o.signal, onStream: o.onProgress },
    );
  }
}
