// Loading a taming-transformers VQGAN: the checkpoint (Lightning `last.ckpt`, or its safetensors copy
// in the model cache) and its `model.yaml`. Every checkpoint name and shape is asserted against
// expectedStateDict before any weight is read, so a wrong file fails in milliseconds, not after 1 GB.
//
// Public API
//   findVqganFiles(pathOrDir) -> { checkpoint, config | null }   where a model folder or file keeps its parts
//   loadVqgan(pathOrDir, opts) -> { config, weights, files, configFrom }
//   readVqganModelInfo(pathOrDir, opts) -> { config, files, configFrom }   the same without reading weights
//   inferVqganConfig(shapes)                                    the config a checkpoint's shapes imply (no yaml)
import { existsSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { type HostTensor } from '../graph/ir.js';
import { openCached, openCheckpoint } from '../weights/load.js';
import { assertStateDict } from '../weights/state-dict.js';
import { type WeightSource, toFloat32 } from '../weights/tensor.js';
import {
  type VqganConfig,
  type VqganWeights,
  checkConfig,
  expectedStateDict,
  isTrainingOnly,
  vqganConfigFromYaml,
} from './vqgan.js';

export interface VqganFiles {
  checkpoint: string;
  /** The model.yaml found beside the checkpoint, or null. */
  config: string | null;
}

const CHECKPOINTS = ['last.ckpt', 'model.ckpt', 'checkpoints/last.ckpt', 'ckpts/last.ckpt', 'model.safetensors'];
const CONFIGS = ['model.yaml', 'configs/model.yaml', 'config.yaml'];

/**
 * A folder: the first of last.ckpt, model.ckpt, checkpoints/last.ckpt, ckpts/last.ckpt, model.safetensors, else
 * its only *.ckpt / *.safetensors; a file: that file. The config: model.yaml (or configs/model.yaml,
 * config.yaml) in the folder, else `<checkpoint stem>.yaml` beside the file, else ../configs/model.yaml.
 */
export async function findVqganFiles(pathOrDir: string): Promise<VqganFiles> {
  if (!existsSync(pathOrDir)) throw new Error(`${pathOrDir}: no such file or folder`);
  if (statSync(pathOrDir).isDirectory()) {
    const dir = pathOrDir;
    let checkpoint = CHECKPOINTS.map((f) => path.join(dir, f)).find((p) => existsSync(p));
    if (!checkpoint) {
      const found = (await readdir(dir)).filter((f) => /\.(ckpt|safetensors|pt|bin)$/.test(f));
      if (found.length !== 1) {
        throw new Error(
          found.length === 0
            ? `${dir}: no VQGAN checkpoint (looked for ${CHECKPOINTS.join(', ')} and any *.ckpt / *.safetensors)`
            : `${dir}: several checkpoints (${found.join(', ')}): name the file`,
        );
      }
      checkpoint = path.join(dir, found[0]!);
    }
    const config = CONFIGS.map((f) => path.join(dir, f)).find((p) => existsSync(p)) ?? null;
    return { checkpoint, config };
  }
  const dir = path.dirname(pathOrDir);
  const stem = path.basename(pathOrDir).replace(/\.[^.]+$/, '');
  const candidates = [
    path.join(dir, `${stem}.yaml`),
    ...CONFIGS.map((f) => path.join(dir, f)),
    path.join(dir, '..', 'configs', 'model.yaml'),
  ];
  return { checkpoint: pathOrDir, config: candidates.find((p) => existsSync(p)) ?? null };
}

/**
 * The config a checkpoint's shapes imply, for a checkpoint without its model.yaml. Everything but the
 * training resolution is in the shapes; the resolution only places attention, so it is taken as 16 latent
 * cells (taming's f16 configs: 256) and the attention levels are read from which `attn` blocks exist.
 */
export function inferVqganConfig(shapes: ReadonlyMap<string, readonly number[]>): VqganConfig {
  const need = (name: string) => {
    const s = shapes.get(name);
    if (!s) throw new Error(`cannot infer the VQGAN config: the checkpoint has no '${name}' (is it a taming VQGAN?)`);
    return s;
  };
  const [nEmbed, embedDim] = need('quantize.embedding.weight') as [number, number];
  const [ch, inChannels] = need('encoder.conv_in.weight') as [number, number];
  const zChannels = need('encoder.conv_out.weight')[0]!;
  const outCh = need('decoder.conv_out.weight')[0]!;
  const chMult: number[] = [];
  while (shapes.has(`encoder.down.${chMult.length}.block.0.conv1.weight`)) {
    chMult.push(need(`encoder.down.${chMult.length}.block.0.conv1.weight`)[0]! / ch);
  }
  let numResBlocks = 0;
  while (shapes.has(`encoder.down.0.block.${numResBlocks}.conv1.weight`)) numResBlocks++;
  if (chMult.length === 0 || numResBlocks === 0) need('encoder.down.0.block.0.conv1.weight');
  const f = 2 ** (chMult.length - 1);
  const resolution = 16 * f;
  const attnResolutions = chMult
    .map((_, i) => (shapes.has(`encoder.down.${i}.attn.0.q.weight`) ? resolution / 2 ** i : -1))
    .filter((r) => r > 0);
  return checkConfig({
    embedDim,
    nEmbed,
    zChannels,
    resolution,
    inChannels,
    outCh,
    ch,
    chMult,
    numResBlocks,
    attnResolutions,
    doubleZ: false,
  });
}

export interface LoadVqganOptions {
  /** Use this config instead of the model.yaml beside the checkpoint. */
  config?: VqganConfig;
  /** For torch checkpoints: the safetensors cache file to convert into on first load and read after. */
  cacheFile?: string;
}

export interface LoadedVqgan {
  config: VqganConfig;
  weights: VqganWeights;
  files: VqganFiles;
  /** Where the config came from: 'option', the yaml's path, or 'inferred from the checkpoint shapes'. */
  configFrom: string;
  /** True when the weights were read from the safetensors cache. */
  fromCache: boolean;
}

/** Where a model's config comes from: the option, its model.yaml, else the checkpoint's shapes. */
async function chooseConfig(
  files: VqganFiles,
  shapes: () => Promise<ReadonlyMap<string, readonly number[]>>,
  opts: LoadVqganOptions,
): Promise<{ config: VqganConfig; configFrom: string }> {
  if (opts.config) return { config: checkConfig(opts.config), configFrom: 'option' };
  if (files.config) {
    return {
      config: vqganConfigFromYaml(await readFile(files.config, 'utf8'), files.config),
      configFrom: files.config,
    };
  }
  return { config: inferVqganConfig(await shapes()), configFrom: 'inferred from the checkpoint shapes' };
}

async function openSource(
  checkpoint: string,
  cacheFile?: string,
): Promise<{ source: WeightSource; fromCache: boolean }> {
  if (cacheFile) return openCached(checkpoint, cacheFile);
  return { source: await openCheckpoint(checkpoint), fromCache: false };
}

const shapesOf = (source: WeightSource) => new Map(source.names().map((n) => [n, source.info(n).shape] as const));

/**
 * A model's files and config without reading its weights: the checkpoint is opened (names and shapes only)
 * only when there is neither opts.config nor a model.yaml. For callers that may not need the weights (a
 * cached graph holds them); loadVqgan(pathOrDir, { config }) reads them when they are needed.
 */
export async function readVqganModelInfo(
  pathOrDir: string,
  opts: LoadVqganOptions = {},
): Promise<{ config: VqganConfig; files: VqganFiles; configFrom: string }> {
  const files = await findVqganFiles(pathOrDir);
  const chosen = await chooseConfig(
    files,
    async () => {
      const { source } = await openSource(files.checkpoint, opts.cacheFile);
      try {
        return shapesOf(source);
      } finally {
        await source.close();
      }
    },
    opts,
  );
  return { ...chosen, files };
}

/** Loads a VQGAN from a model folder or checkpoint file (see findVqganFiles), asserting every name and shape. */
export async function loadVqgan(pathOrDir: string, opts: LoadVqganOptions = {}): Promise<LoadedVqgan> {
  const files = await findVqganFiles(pathOrDir);
  const { source, fromCache } = await openSource(files.checkpoint, opts.cacheFile);
  try {
    const shapes = shapesOf(source);
    const { config, configFrom } = await chooseConfig(files, async () => shapes, opts);
    const expected = expectedStateDict(config);
    const what = files.config ? `${files.checkpoint} (with ${files.config})` : files.checkpoint;
    assertStateDict(expected, shapes, { ignore: isTrainingOnly, what });
    const weights = new Map<string, HostTensor>();
    for (const [name, shape] of expected) {
      weights.set(name, { dtype: 'float32', dims: shape, data: toFloat32(await source.read(name)) });
    }
    return { config, weights, files, configFrom, fromCache };
  } finally {
    await source.close();
  }
}
