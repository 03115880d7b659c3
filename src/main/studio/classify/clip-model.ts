// The CLIP side of a classify run: the model's logit scale (its `logit_scale` weight, read alone from the
// weights file; 100, CLIP's clamp, when the file has none), text embeddings cached per text within a run, and
// image embeddings of images decoded one by one first (in sharp's threads), so one unreadable file is skipped
// and named while the others of its batch go on. The embeddings are computed in the compute worker.
//
// Public API
//   readLogitScale(model) -> { value, source: 'model' | 'default' }
//   new ClipRunner(ctx, { model?, provider?, signal })
//     .open() -> ResolvedModel                 resolves the model and reads its image size
//     .texts(texts) -> Float32Array[]           cached per text; in chunks
//     .decode(file | bytes, name) -> Float32Array | Error   CLIP's pixels, or why it cannot be read
//     .images(pixels[]) -> Float32Array[]       one worker call for the batch
import { existsSync } from 'node:fs';
import type { Provider } from '../../../shared/providers.js';
import { DEFAULT_LOGIT_SCALE, logitScaleFrom } from '../../engine/classify/zeroshot.js';
import { findClipWeights, readClipConfig } from '../../engine/nets/clip-load.js';
import { openCheckpoint } from '../../engine/weights/load.js';
import type { StudioContext } from '../context.js';
import { clipPixels, stackPixels } from '../images-clip.js';
import type { ResolvedModel } from '../models/manager.js';

const TEXT_CHUNK = 256;

export async function readLogitScale(model: ResolvedModel): Promise<{ value: number; source: 'model' | 'default' }> {
  const fallback = { value: DEFAULT_LOGIT_SCALE, source: 'default' as const };
  let file: string;
  try {
    file = findClipWeights(model.location);
  } catch {
    file = model.location;
  }
  // A torch checkpoint's safetensors conversion, once made, is the cheaper read.
  if (existsSync(model.weightsCacheFile)) file = model.weightsCacheFile;
  let src;
  try {
    src = await openCheckpoint(file);
  } catch {
    return fallback;
  }
  try {
    if (!src.has('logit_scale')) return fallback;
    const t = await src.read('logit_scale', { float32: true });
    return { value: logitScaleFrom(new Float32Array(t.data.slice().buffer)[0]!), source: 'model' };
  } catch {
    return fallback;
  } finally {
    await src.close();
  }
}

export class ClipRunner {
  readonly #cache = new Map<string, Float32Array>();
  #model: ResolvedModel | null = null;
  #size = 224;

  constructor(
    private readonly ctx: StudioContext,
    private readonly o: { model?: string; provider?: Provider; signal: AbortSignal },
  ) {}

  async open(): Promise<ResolvedModel> {
    this.#model = await this.ctx.models.resolve('clip', this.o.model);
    this.#size = (await readClipConfig(this.#model.location)).vision.imageSize;
    return this.#model;
  }

  async texts(texts: readonly string[]): Promise<Float32Array[]> {
    const missing = [...new Set(texts.filter((t) => !this.#cache.has(t)))];
    for (let i = 0; i < missing.length; i += TEXT_CHUNK) {
      this.o.signal.throwIfAborted();
      const chunk = missing.slice(i, i + TEXT_CHUNK);
      const { result } = await this.ctx.compute.embedTexts({
        model: this.o.model,
        provider: this.o.provider,
        texts: chunk,
        signal: this.o.signal,
      });
      chunk.forEach((t, k) => this.#cache.set(t, result.embeds[k]!));
    }
    return texts.map((t) => this.#cache.get(t)!);
  }

  /** CLIP's pixels for one image, or the error that says why it cannot be used. */
  async decode(image: string | Uint8Array, name: string): Promise<Float32Array | Error> {
    try {
      return await clipPixels(image, this.#size, name);
    } catch (e) {
      return e instanceof Error ? e : new Error(String(e));
    }
  }

  /**
   * Embeddings of decoded images in one call of the compute worker (StudioCompute.embedImages decodes the files
   * itself and fails the whole batch for one bad file; here they were decoded, and checked, one by one).
   */
  async images(pixels: readonly Float32Array[]): Promise<Float32Array[]> {
    if (!this.#model) throw new Error('ClipRunner.open() first');
    const { result } = await this.ctx.compute.embedPixels({
      model: this.#model.ref,
      provider: this.o.provider,
      pixels: stackPixels(pixels, this.#size),
      signal: this.o.signal,
    });
    return result.embeds;
  }
}
