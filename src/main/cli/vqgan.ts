// `fstudio vqgan encode | decode`: a taming VQGAN used directly. encode turns an image into its token
// grid (JSON); decode turns a token grid back into a PNG. The model is a catalog id (installed with
// `fstudio models pull`), a model folder (last.ckpt + model.yaml) or a checkpoint file.
//
// Registration (main.ts): registerVqganCommands(program, dataDir)
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { type Command, Option } from 'commander';
import { z } from 'zod';
import { Builder, emitModel } from '../engine/graph/index.js';
import { type ProviderName, createSession } from '../engine/graph/runtime.js';
import { cachedGraph, fileIdentity } from '../engine/graph/runtime-cache.js';
import { loadVqgan, readVqganModelInfo } from '../engine/nets/vqgan-load.js';
import { StateDictMismatchError } from '../engine/weights/state-dict.js';
import {
  type VqganConfig,
  type VqganWeights,
  decode,
  downsampleFactor,
  embedCode,
  encode,
  quantize,
  vqganParams,
} from '../engine/nets/vqgan.js';
import { CliError, checkOutputFile, providerLine, writeOutputFile } from './output.js';

const examples = (lines: string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;

const PROVIDERS = ['auto', 'cpu', 'webgpu', 'cuda', 'dml', 'coreml'] as const;

/** The token-grid file: what `encode` writes and `decode` reads. */
export const VqganTokens = z.object({
  format: z.literal('fstudio-vqgan-tokens'),
  version: z.literal(1),
  /** The --model it was made with (catalog id, or an absolute path). */
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

export interface VqganCliOptions {
  model?: string;
  provider?: ProviderName;
  /** Console for progress lines (stderr). */
  log?: (line: string) => void;
}

interface ResolvedModel {
  /** What goes into the tokens file: the catalog id, or the absolute path. */
  ref: string;
  /** The folder or file loadVqgan reads. */
  location: string;
}

/** --model: an existing file or folder, else a catalog id that must be installed; default the catalog's default VQGAN. */
export async function resolveVqganModel(dataDir: string, model: string | undefined): Promise<ResolvedModel> {
  if (model && existsSync(model)) {
    const abs = path.resolve(model);
    return { ref: abs, location: abs };
  }
  const { builtinCatalog, defaultModel, findModel } = await import('../studio/models/catalog.js');
  const catalog = builtinCatalog();
  const vqgans = catalog.models.filter((m) => m.kind === 'vqgan').map((m) => m.id);
  const entry = model ? findModel(catalog, model) : defaultModel(catalog, 'vqgan');
  if (!entry || entry.kind !== 'vqgan') {
    throw new CliError(`--model ${model}: not a file, a folder, or a VQGAN in the catalog (${vqgans.join(', ')}).`);
  }
  const { ModelManager } = await import('../studio/models/manager.js');
  const manager = new ModelManager(dataDir);
  try {
    const info = await manager.info(entry.id);
    if (info.state !== 'installed') {
      throw new CliError(
        `VQGAN "${entry.id}" is not installed (${info.state}). Download it with \`fstudio models pull ${entry.id}\`, ` +
          `or pass --model <folder or last.ckpt>.`,
      );
    }
    return { ref: entry.id, location: manager.modelDir(entry.id) };
  } finally {
    await manager.close();
  }
}

interface PreparedModel {
  config: VqganConfig;
  /** The checkpoint file, whose identity keys the graph cache. */
  checkpoint: string;
  /** The weights, read (every name and shape checked) only when a graph is not in the cache. */
  weights: () => Promise<VqganWeights>;
}

/**
 * The config now; the weights through the safetensors cache under the data folder (converted on first load,
 * reused while the source is unchanged) when a graph must be built.
 */
async function prepare(dataDir: string, m: ResolvedModel, log: (l: string) => void): Promise<PreparedModel> {
  const key = createHash('sha256').update(path.resolve(m.location)).digest('hex').slice(0, 16);
  const cacheDir = path.join(dataDir, 'cache', 'weights');
  await mkdir(cacheDir, { recursive: true });
  const cacheFile = path.join(cacheDir, `vqgan-${key}.safetensors`);
  // The whole list of missing / unexpected / mis-shaped tensors is the useful part: print all of it.
  const mismatch = (e: unknown) => (e instanceof StateDictMismatchError ? new CliError(e.message) : e);
  const info = await readVqganModelInfo(m.location, { cacheFile }).catch((e: unknown) => {
    throw mismatch(e);
  });
  const c = info.config;
  log(`VQGAN ${m.ref}: f${downsampleFactor(c)}, ${c.nEmbed} codes x ${c.embedDim}, config ${info.configFrom}`);
  let loaded: Promise<VqganWeights> | null = null;
  const weights = () =>
    (loaded ??= (async () => {
      const t0 = performance.now();
      try {
        const l = await loadVqgan(m.location, { config: c, cacheFile });
        log(`weights loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        return l.weights;
      } catch (e) {
        throw mismatch(e);
      }
    })());
  return { config: c, checkpoint: info.files.checkpoint, weights };
}

/** Bumped when the encode / decode graphs below change for the same inputs (also see GRAPH_CODE_VERSION). */
const GRAPHS = { encode: 'vqgan-encode v1', decode: 'vqgan-decode v1' } as const;

/** The graph from <dataDir>/cache/graphs when it was built before for this model, config and shape, else built and stored. */
async function graphFor(
  dataDir: string,
  model: PreparedModel,
  kind: keyof typeof GRAPHS,
  shapes: Record<string, readonly number[]>,
  build: (weights: VqganWeights) => Uint8Array,
  log: (l: string) => void,
): Promise<Uint8Array> {
  const t0 = performance.now();
  const { bytes, hit } = await cachedGraph(
    path.join(dataDir, 'cache', 'graphs'),
    { graph: GRAPHS[kind], weights: fileIdentity(model.checkpoint), shapes, options: { config: model.config } },
    async () => build(await model.weights()),
  );
  const s = ((performance.now() - t0) / 1000).toFixed(1);
  log(hit ? `${kind} graph read from the cache in ${s} s` : `${kind} graph built in ${s} s`);
  return bytes;
}

export interface EncodeOptions extends VqganCliOptions {
  size?: { width: number; height: number };
  maxSide?: number;
}

/** Image file -> token grid. */
export async function vqganEncode(dataDir: string, image: string, opts: EncodeOptions = {}): Promise<VqganTokens> {
  const log = opts.log ?? (() => {});
  const model = await resolveVqganModel(dataDir, opts.model);
  const prepared = await prepare(dataDir, model, log);
  const { config } = prepared;
  const f = downsampleFactor(config);
  const { readVqganImage } = await import('../studio/images-vqgan.js');
  const img = await readVqganImage(await readImage(image), image, {
    multiple: f,
    size: opts.size,
    maxSide: opts.maxSide,
  });
  if (img.width !== img.sourceWidth || img.height !== img.sourceHeight) {
    log(`resized ${img.sourceWidth}x${img.sourceHeight} to ${img.width}x${img.height} (multiples of ${f})`);
  }
  const xShape = [1, config.inChannels, img.height, img.width];
  const graph = await graphFor(
    dataDir,
    prepared,
    'encode',
    { x: xShape },
    (weights) => {
      const b = new Builder('vqgan_encode');
      const p = vqganParams(b, config, weights);
      const { indices } = quantize(b, p, encode(b, p, b.input('x', xShape)));
      return emitModel(b.graph, { outputs: { indices } });
    },
    log,
  );
  const session = await createSession(graph, { provider: opts.provider ?? 'auto' });
  try {
    log(providerLine(session.choice));
    const out = await session.run({ x: { dtype: 'float32', dims: xShape, data: img.data } });
    const ids = out.indices!.data as BigInt64Array;
    const [, h, w] = out.indices!.dims as [number, number, number];
    const tokens = Array.from({ length: h }, (_, r) => Array.from(ids.subarray(r * w, (r + 1) * w), Number));
    return {
      format: 'fstudio-vqgan-tokens',
      version: 1,
      model: model.ref,
      nEmbed: config.nEmbed,
      factor: f,
      width: w,
      height: h,
      tokens,
    };
  } finally {
    await session.release();
  }
}

/** Token grid -> PNG bytes (and the image size). */
export async function vqganDecode(
  dataDir: string,
  tokens: VqganTokens,
  opts: VqganCliOptions = {},
): Promise<{ png: Buffer; width: number; height: number }> {
  const log = opts.log ?? (() => {});
  const { height: h, width: w } = tokens;
  if (tokens.tokens.length !== h || tokens.tokens.some((row) => row.length !== w)) {
    throw new CliError(`the token grid is not ${h} rows of ${w} tokens`);
  }
  const model = await resolveVqganModel(dataDir, opts.model ?? tokens.model);
  const prepared = await prepare(dataDir, model, log);
  const { config } = prepared;
  const bad = tokens.tokens.flat().find((t) => t >= config.nEmbed);
  if (bad !== undefined) {
    throw new CliError(`token ${bad} is outside this VQGAN's codebook (${config.nEmbed} codes): wrong --model?`);
  }
  const graph = await graphFor(
    dataDir,
    prepared,
    'decode',
    { tokens: [1, h, w] },
    (weights) => {
      const b = new Builder('vqgan_decode');
      const p = vqganParams(b, config, weights);
      const rec = decode(b, p, embedCode(b, p, b.input('tokens', [1, h, w], 'int64')));
      return emitModel(b.graph, { outputs: { rec } });
    },
    log,
  );
  const session = await createSession(graph, { provider: opts.provider ?? 'auto' });
  try {
    log(providerLine(session.choice));
    const data = BigInt64Array.from(tokens.tokens.flat(), BigInt);
    const out = await session.run({ tokens: { dtype: 'int64', dims: [1, h, w], data } });
    const [, , H, W] = out.rec!.dims as [number, number, number, number];
    const { vqganTensorToPng } = await import('../studio/images-vqgan.js');
    return { png: await vqganTensorToPng(out.rec!.data as Float32Array, W, H), width: W, height: H };
  } finally {
    await session.release();
  }
}

async function readImage(file: string): Promise<Uint8Array> {
  try {
    return await readFile(file);
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export async function readTokensFile(file: string): Promise<VqganTokens> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as Error).message}`);
  }
  const r = VqganTokens.safeParse(json);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new CliError(`${file} is not a token grid from \`fstudio vqgan encode\` (${issues})`);
  }
  return r.data;
}

/** "512x384" -> size; "512" -> square. */
export function parseSize(v: string): { width: number; height: number } {
  const m = /^(\d+)(?:x(\d+))?$/.exec(v.trim());
  if (!m) throw new CliError(`--size ${v}: expected WIDTHxHEIGHT (like 512x384) or one number for a square`);
  const width = Number(m[1]);
  return { width, height: m[2] ? Number(m[2]) : width };
}

function parseMaxSide(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`--max-side ${v}: expected a positive number of pixels`);
  return n;
}

const compactGrid = (t: VqganTokens) =>
  JSON.stringify(t, null, 2).replace(/\[\s+([\d,\s]+?)\s+\]/g, (_, row: string) => `[${row.replace(/\s+/g, ' ')}]`);

export function registerVqganCommands(program: Command, getDataDir: (cmd: Command) => string): void {
  const vqgan = program
    .command('vqgan')
    .description('Use a VQGAN directly: image -> token grid (encode), token grid -> image (decode).');
  const common = (c: Command) =>
    c
      .option('--model <id|folder|file>', 'catalog id, model folder (last.ckpt + model.yaml) or checkpoint')
      .addOption(
        new Option('--provider <name>', 'execution provider (auto: the best this machine has, named on stderr)')
          .choices(PROVIDERS)
          .default('auto'),
      )
      .option('-q, --quiet', 'no progress lines on stderr');
  const logger = (quiet?: boolean) => (quiet ? () => {} : (l: string) => process.stderr.write(`${l}\n`));

  common(vqgan.command('encode').description('Encode an image to its VQGAN token grid (JSON).'))
    .argument('<image>', 'PNG, JPEG, WebP or GIF')
    .option('-o, --output <file>', 'write the token grid here (default: stdout)')
    .option('--force', 'replace an existing -o file')
    .option('--size <WxH>', 'resize to this size (multiples of the downsampling factor)', parseSize)
    .option('--max-side <n>', 'without --size: shrink so the longer side is at most this', parseMaxSide, 512)
    .addHelpText(
      'after',
      examples([
        'fstudio vqgan encode photo.jpg -o photo.tokens.json',
        'fstudio vqgan encode photo.jpg --model ~/models/wikiart_16384 --size 256x256 --provider cpu',
      ]),
    )
    .action(
      async (
        image: string,
        o: {
          model?: string;
          provider: ProviderName;
          quiet?: boolean;
          output?: string;
          force?: boolean;
          size?: { width: number; height: number };
          maxSide: number;
        },
        cmd: Command,
      ) => {
        if (o.output) checkOutputFile(o.output, o.force); // before the model is loaded
        const t = await vqganEncode(getDataDir(cmd), image, { ...o, log: logger(o.quiet) });
        if (o.output) {
          await writeOutputFile(o.output, `${compactGrid(t)}\n`, o.force);
          logger(o.quiet)(`wrote ${t.width}x${t.height} tokens to ${o.output}`);
        } else process.stdout.write(`${compactGrid(t)}\n`);
      },
    );

  common(vqgan.command('decode').description('Decode a token grid (from `vqgan encode`) to a PNG.'))
    .argument('<tokens>', 'token grid JSON')
    .requiredOption('-o, --output <file>', 'PNG to write')
    .option('--force', 'replace an existing -o file')
    .addHelpText(
      'after',
      examples([
        'fstudio vqgan decode photo.tokens.json -o reconstruction.png',
        'fstudio vqgan decode grid.json -o out.png --model vqgan_imagenet_f16_1024',
      ]),
    )
    .action(
      async (
        file: string,
        o: { model?: string; provider: ProviderName; quiet?: boolean; output: string; force?: boolean },
        cmd: Command,
      ) => {
        checkOutputFile(o.output, o.force); // before the model is loaded
        const tokens = await readTokensFile(file);
        const r = await vqganDecode(getDataDir(cmd), tokens, { ...o, log: logger(o.quiet) });
        await writeOutputFile(o.output, r.png, o.force);
        logger(o.quiet)(`wrote ${r.width}x${r.height} image to ${o.output}`);
      },
    );
}
