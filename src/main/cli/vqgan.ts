// `fstudio vqgan encode | decode`: a taming VQGAN used directly. encode turns an image into its token
// grid (JSON); decode turns a token grid back into a PNG. The model is a catalog id (installed with
// `fstudio models pull`), a model folder (last.ckpt + model.yaml) or a checkpoint file. The runs are
// StudioCompute's (studio/compute.ts): this file parses arguments and prints.
//
// Registration (main.ts): registerVqganCommands(program, dataDir)
import { readFile } from 'node:fs/promises';
import { type Command, Option } from 'commander';
import { PROVIDER_CHOICES, type Provider } from '../../shared/providers.js';
import { VqganTokens } from '../studio/compute.js';
import { withCompute } from './compute-session.js';
import { CliError, checkOutputFile, providerLine, writeOutputFile } from './output.js';

export { VqganTokens };

const examples = (lines: string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;

export interface VqganCliOptions {
  model?: string;
  provider?: Provider;
  /** Console for progress lines (stderr). */
  log?: (line: string) => void;
}

export interface EncodeOptions extends VqganCliOptions {
  size?: { width: number; height: number };
  maxSide?: number;
}

/** Image file -> token grid. */
export async function vqganEncode(dataDir: string, image: string, opts: EncodeOptions = {}): Promise<VqganTokens> {
  const log = opts.log ?? (() => {});
  const bytes = await readImage(image);
  const { tokens, choice } = await withCompute(dataDir, (c) => c.vqganEncode({ ...opts, image: bytes, name: image }));
  log(providerLine(choice));
  return tokens;
}

/** Token grid -> PNG bytes (and the image size). */
export async function vqganDecode(
  dataDir: string,
  tokens: VqganTokens,
  opts: VqganCliOptions = {},
): Promise<{ png: Buffer; width: number; height: number }> {
  const { choice, ...out } = await withCompute(dataDir, (c) => c.vqganDecode({ ...opts, tokens }));
  (opts.log ?? (() => {}))(providerLine(choice));
  return out;
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
          .choices(PROVIDER_CHOICES)
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
          provider: Provider;
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
        o: { model?: string; provider: Provider; quiet?: boolean; output: string; force?: boolean },
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
