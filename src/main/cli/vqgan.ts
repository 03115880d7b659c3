// `fstudio vqgan encode | decode`: a taming VQGAN used directly. encode turns an image into its token
// grid (JSON); decode turns a token grid back into a PNG. The model is a catalog id (installed with
// `fstudio models pull`), a model folder (last.ckpt + model.yaml) or a checkpoint file.
//
// Registration (main.ts): registerVqganCommands(program, dataDir)
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type Command, Option } from 'commander';
import { z } from 'zod';
import { Builder, emitModel } from '../engine/graph/index.js';
import { type ProviderName, type RuntimeSession, createSession } from '../engine/graph/runtime.js';
import { type LoadedVqgan, loadVqgan } from '../engine/nets/vqgan-load.js';
import { StateDictMismatchError } from '../engine/weights/state-dict.js';
import { decode, downsampleFactor, embedCode, encode, quantize, vqganParams } from '../engine/nets/vqgan.js';
import { CliError } from './output.js';

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

/** Weights through the safetensors cache under the data folder (converted on first load, reused while the source is unchanged). */
async function load(dataDir: string, m: ResolvedModel, log: (l: string) => void): Promise<LoadedVqgan> {
  const key = createHash('sha256').update(path.resolve(m.location)).digest('hex').slice(0, 16);
  const cacheDir = path.join(dataDir, 'cache', 'weights');
  await mkdir(cacheDir, { recursive: true });
  const t0 = performance.now();
  let loaded: LoadedVqgan;
  try {
    loaded = await loadVqgan(m.location, { cacheFile: path.join(cacheDir, `vqgan-${key}.safetensors`) });
  } catch (e) {
    // The whole list of missing / unexpected / mis-shaped tensors is the useful part: print all of it.
    if (e instanceof StateDictMismatchError) throw new CliError(e.message);
    throw e;
  }
  const c = loaded.config;
  log(
    `VQGAN ${m.ref}: f${downsampleFactor(c)}, ${c.nEmbed} codes x ${c.embedDim}, config ${loaded.configFrom}; ` +
      `loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  return loaded;
}

export interface EncodeOptions extends VqganCliOptions {
  size?: { width: number; height: number };
  maxSide?: number;
}

/** Image file -> token grid. */
export async function vqganEncode(dataDir: string, image: string, opts: EncodeOptions = {}): Promise<VqganTokens> {
  const log = opts.log ?? (() => {});
  const model = await resolveVqganModel(dataDir, opts.model);
  const { config, weights } = await load(dataDir, model, log);
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
  const b = new Builder('vqgan_encode');
  const p = vqganParams(b, config, weights);
  const x = b.input('x', [1, config.inChannels, img.height, img.width]);
  const { indices } = quantize(b, p, encode(b, p, x));
  const session = await createSession(emitModel(b.graph, { outputs: { indices } }), {
    provider: opts.provider ?? 'auto',
  });
  try {
    log(providerLine(session));
    const out = await session.run({ x: { dtype: 'float32', dims: x.shape, data: img.data } });
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
  const { config, weights } = await load(dataDir, model, log);
  const bad = tokens.tokens.flat().find((t) => t >= config.nEmbed);
  if (bad !== undefined) {
    throw new CliError(`token ${bad} is outside this VQGAN's codebook (${config.nEmbed} codes): wrong --model?`);
  }
  const b = new Builder('vqgan_decode');
  const p = vqganParams(b, config, weights);
  const grid = b.input('tokens', [1, h, w], 'int64');
  const rec = decode(b, p, embedCode(b, p, grid));
  const session = await createSession(emitModel(b.graph, { outputs: { rec } }), { provider: opts.provider ?? 'auto' });
  try {
    log(providerLine(session));
    const data = BigInt64Array.from(tokens.tokens.flat(), BigInt);
    const out = await session.run({ tokens: { dtype: 'int64', dims: [1, h, w], data } });
    const [, , H, W] = out.rec!.dims as [number, number, number, number];
    const { vqganTensorToPng } = await import('../studio/images-vqgan.js');
    return { png: await vqganTensorToPng(out.rec!.data as Float32Array, W, H), width: W, height: H };
  } finally {
    await session.release();
  }
}

/** "provider: cpu (auto; webgpu: <why not>)": what ran, and for auto why the better ones did not. */
function providerLine(session: RuntimeSession): string {
  const { choice } = session;
  if (choice.requested !== 'auto') return `provider: ${session.provider}`;
  const skipped = choice.considered.filter((r) => r.name !== session.provider && !r.available);
  const why = skipped.map((r) => `${r.name}: ${r.reason}`).join('; ');
  return `provider: ${session.provider} (auto${why ? `; ${why}` : ''})`;
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
      .addOption(new Option('--provider <name>', 'execution provider').choices(PROVIDERS).default('auto'))
      .option('-q, --quiet', 'no progress lines on stderr');
  const logger = (quiet?: boolean) => (quiet ? () => {} : (l: string) => process.stderr.write(`${l}\n`));

  common(vqgan.command('encode').description('Encode an image to its VQGAN token grid (JSON).'))
    .argument('<image>', 'PNG, JPEG, WebP or GIF')
    .option('-o, --output <file>', 'write the token grid here (default: stdout)')
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
          size?: { width: number; height: number };
          maxSide: number;
        },
        cmd: Command,
      ) => {
        const t = await vqganEncode(getDataDir(cmd), image, { ...o, log: logger(o.quiet) });
        if (o.output) {
          await writeFile(o.output, `${compactGrid(t)}\n`);
          logger(o.quiet)(`wrote ${t.width}x${t.height} tokens to ${o.output}`);
        } else process.stdout.write(`${compactGrid(t)}\n`);
      },
    );

  common(vqgan.command('decode').description('Decode a token grid (from `vqgan encode`) to a PNG.'))
    .argument('<tokens>', 'token grid JSON')
    .requiredOption('-o, --output <file>', 'PNG to write')
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
        o: { model?: string; provider: ProviderName; quiet?: boolean; output: string },
        cmd: Command,
      ) => {
        const tokens = await readTokensFile(file);
        const r = await vqganDecode(getDataDir(cmd), tokens, { ...o, log: logger(o.quiet) });
        await writeFile(o.output, r.png);
        logger(o.quiet)(`wrote ${r.width}x${r.height} image to ${o.output}`);
      },
    );
}
