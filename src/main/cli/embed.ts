// `fstudio embed-text` / `fstudio embed-image`: CLIP embeddings (L2-normalised) as JSON vectors, from a
// model folder in Hugging Face's layout or an installed catalog model (<dataDir>/models/<id>/).
// Registered by main.ts: registerEmbedCommands(program, dataDir).
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { type Command, Option } from 'commander';
import { type EmbedResult, embedImage, embedText } from '../engine/nets/clip-run.js';
import { type ProviderName } from '../engine/graph/runtime.js';
import { clipPixelBatch } from '../studio/images-clip.js';
import { readClipConfig } from '../engine/nets/clip-load.js';
import { CliError, printJson, providerLine } from './output.js';

export const DEFAULT_CLIP_MODEL = 'clip-vit-base-patch32';
const MODEL_ID = /^[a-z0-9][a-z0-9._-]*$/;
const PROVIDERS = ['auto', 'cpu', 'webgpu', 'cuda', 'dml', 'coreml'] as const;

export interface ResolvedModel {
  /** What the user named: the catalog id, or the folder as given. */
  id: string;
  dir: string;
  /** Where a torch checkpoint's safetensors conversion is kept. */
  cacheFile: string;
}

/** A folder path as given, else a catalog id under <dataDir>/models/<id>/. */
export function resolveModel(model: string, dataDir: string): ResolvedModel {
  const cacheDir = path.join(dataDir, 'cache', 'weights');
  if (existsSync(model) && statSync(model).isDirectory()) {
    const dir = path.resolve(model);
    const key = createHash('sha256').update(dir).digest('hex').slice(0, 16);
    return { id: model, dir, cacheFile: path.join(cacheDir, `folder-${key}.safetensors`) };
  }
  const dir = path.join(dataDir, 'models', model);
  if (MODEL_ID.test(model) && existsSync(path.join(dir, 'config.json'))) {
    return { id: model, dir, cacheFile: path.join(cacheDir, `${model}.safetensors`) };
  }
  throw new CliError(
    MODEL_ID.test(model)
      ? `model "${model}" is not installed (no ${path.join(dir, 'config.json')}); run \`fstudio models pull ${model}\` or pass a model folder`
      : `no model folder "${model}"`,
  );
}

interface EmbedOpts {
  model: string;
  provider: ProviderName;
  json?: boolean;
}

function print(
  model: ResolvedModel,
  r: EmbedResult,
  inputs: { key: 'text' | 'image'; values: string[] },
  json?: boolean,
) {
  const rows = r.embeds.map((v, i) => ({ [inputs.key]: inputs.values[i]!, embedding: Array.from(v) }));
  process.stderr.write(`${providerLine(r.choice)}\n`); // with the default --provider auto: what it chose and why
  if (json) {
    printJson({
      model: model.id,
      modelDir: model.dir,
      provider: r.provider,
      dim: r.dim,
      normalized: true,
      results: rows,
    });
    return;
  }
  process.stderr.write(`${model.id} on ${r.provider}: ${r.embeds.length} x ${r.dim}-d unit vectors\n`);
  for (const row of rows) {
    const v = row.embedding;
    const head = v.slice(0, 4).map((x) => x.toFixed(4));
    process.stdout.write(`${JSON.stringify(row[inputs.key])}\t[${head.join(', ')}${v.length > 4 ? ', ...' : ''}]\n`);
  }
}

/** Built CLIP graphs (runtime-cache.ts): the second embed of a batch size skips reading weights and building. */
const graphCacheDir = (dataDir: string) => path.join(dataDir, 'cache', 'graphs');

async function ensureCacheDir(model: ResolvedModel) {
  await mkdir(path.dirname(model.cacheFile), { recursive: true });
}

export function registerEmbedCommands(program: Command, getDataDir: (cmd: Command) => string): void {
  const common = (c: Command) =>
    c
      .option(
        '--model <id|dir>',
        'catalog model id or a CLIP folder (config.json, weights, tokenizer.json)',
        DEFAULT_CLIP_MODEL,
      )
      .addOption(
        new Option('--provider <name>', 'execution provider (auto: the best this machine has, named on stderr)')
          .choices(PROVIDERS)
          .default('auto'),
      )
      .option('--json', 'print the vectors as JSON');

  common(
    program
      .command('embed-text')
      .description("CLIP text embeddings (L2-normalised) of each text, from the model's text tower.")
      .argument('<text...>', 'texts to embed'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  $ fstudio embed-text "a photo of a cat" "a photo of a dog" --json\n  $ fstudio embed-text "a lighthouse" --model ./clip-vit-base-patch16\n',
    )
    .action(async (texts: string[], opts: EmbedOpts, cmd: Command) => {
      const model = resolveModel(opts.model, getDataDir(cmd));
      await ensureCacheDir(model);
      const r = await embedText(model.dir, texts, {
        provider: opts.provider,
        cacheFile: model.cacheFile,
        graphCacheDir: graphCacheDir(getDataDir(cmd)),
      });
      print(model, r, { key: 'text', values: texts }, opts.json);
    });

  common(
    program
      .command('embed-image')
      .description(
        'CLIP image embeddings (L2-normalised): each image resized, center-cropped and normalised as CLIP expects.',
      )
      .argument('<image...>', 'image files (PNG, JPEG, WebP or GIF, up to 100 megapixels)'),
  )
    .addHelpText('after', '\nExamples:\n  $ fstudio embed-image cat.jpg dog.png --json > vectors.json\n')
    .action(async (images: string[], opts: EmbedOpts, cmd: Command) => {
      const model = resolveModel(opts.model, getDataDir(cmd));
      for (const f of images) if (!existsSync(f)) throw new CliError(`${f}: no such file. Check the path.`);
      await ensureCacheDir(model);
      const size = (await readClipConfig(model.dir)).vision.imageSize;
      const pixels = await clipPixelBatch(images, size);
      const r = await embedImage(model.dir, pixels, {
        provider: opts.provider,
        cacheFile: model.cacheFile,
        graphCacheDir: graphCacheDir(getDataDir(cmd)),
      });
      print(model, r, { key: 'image', values: images }, opts.json);
    });
}
