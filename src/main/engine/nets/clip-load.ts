// Loading a CLIP model folder in Hugging Face's layout (config.json, model.safetensors or
// pytorch_model.bin, tokenizer.json): the config, then every checkpoint name and shape asserted against
// expectedStateDict before any weight is read, then only the weights the asked-for towers use.
//
// Public API
//   loadClip(dir, opts) -> { config, weights, file }   weights: HF name -> float32 HostTensor
//   assertClipStateDict(config, shapes, what)          throws weights' StateDictMismatchError (missing /
//                                                      unexpected / wrong shape, each listed)
//   readClipConfig(dir)                                config.json -> ClipConfig
//   findClipWeights(dir)                               the weight file a folder holds
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type HostTensor } from '../graph/ir.js';
import { openCached, openCheckpoint } from '../weights/load.js';
import { assertStateDict } from '../weights/state-dict.js';
import { type StateDict, type WeightSource, type WeightTensor, toFloat32 } from '../weights/tensor.js';
import { type ClipConfig, clipConfigFromHf, expectedStateDict, isOptionalBuffer } from './clip.js';
import { isOpenAiClip, openAiToHf } from './clip-names.js';

export type ClipTower = 'vision' | 'text';

export interface LoadClipOptions {
  /** Towers whose weights are read (default both); every name is still checked. */
  towers?: readonly ClipTower[];
  /** For torch checkpoints: the safetensors cache file to convert into on first load and read after. */
  cacheFile?: string;
}

export interface LoadedClip {
  config: ClipConfig;
  weights: Map<string, HostTensor>;
  /** The weight file read. */
  file: string;
}

const WEIGHT_FILES = ['model.safetensors', 'pytorch_model.bin'];

export function findClipWeights(dir: string): string {
  for (const f of WEIGHT_FILES) {
    const p = path.join(dir, f);
    if (existsSync(p)) return p;
  }
  throw new Error(`${dir}: no CLIP weights (looked for ${WEIGHT_FILES.join(', ')})`);
}

export function assertClipStateDict(
  config: ClipConfig,
  shapes: ReadonlyMap<string, readonly number[]>,
  what = 'CLIP checkpoint',
): void {
  assertStateDict(expectedStateDict(config), shapes, { ignore: isOptionalBuffer, what });
}

function towerOf(name: string): ClipTower | 'both' {
  if (name.startsWith('vision_model.') || name === 'visual_projection.weight') return 'vision';
  if (name.startsWith('text_model.') || name === 'text_projection.weight') return 'text';
  return 'both';
}

function hostTensor(t: WeightTensor): HostTensor {
  return { dtype: 'float32', dims: [...t.shape], data: toFloat32(t) };
}

/** The folder's config.json as a ClipConfig. */
export async function readClipConfig(dir: string): Promise<ClipConfig> {
  const configPath = path.join(dir, 'config.json');
  let json: unknown;
  try {
    json = JSON.parse(await readFile(configPath, 'utf8'));
  } catch (e) {
    throw new Error(`${configPath}: ${(e as Error).message}`, { cause: e });
  }
  return clipConfigFromHf(json);
}

export async function loadClip(dir: string, opts: LoadClipOptions = {}): Promise<LoadedClip> {
  const config = await readClipConfig(dir);
  const file = findClipWeights(dir);
  const towers = new Set(opts.towers ?? ['vision', 'text']);
  const wanted = (name: string) => {
    const t = towerOf(name);
    return t === 'both' || towers.has(t);
  };
  const expected = expectedStateDict(config);

  let source: WeightSource;
  if (opts.cacheFile) source = (await openCached(file, opts.cacheFile)).source;
  else source = await openCheckpoint(file);
  const weights = new Map<string, HostTensor>();
  try {
    const names = source.names();
    if (isOpenAiClip(names)) {
      // OpenAI's names need tensor surgery (split in_proj, transpose projections): read all, then check.
      const sd: StateDict = new Map();
      for (const n of names) sd.set(n, await source.read(n));
      const hf = openAiToHf(sd);
      assertClipStateDict(config, new Map([...hf].map(([n, t]) => [n, t.shape])), file);
      for (const [n, t] of hf) if (expected.has(n) && wanted(n)) weights.set(n, hostTensor(t));
    } else {
      assertClipStateDict(config, new Map(names.map((n) => [n, source.info(n).shape])), file);
      for (const n of names) {
        if (expected.has(n) && wanted(n)) weights.set(n, hostTensor(await source.read(n, { float32: true })));
      }
    }
  } finally {
    await source.close();
  }
  return { config, weights, file };
}
