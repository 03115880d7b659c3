// `fstudio embed-text` / `fstudio embed-image`: CLIP embeddings (L2-normalised) as JSON vectors, from a
// model folder in Hugging Face's layout or an installed catalog model (<dataDir>/models/<id>/).
// Registered by main.ts: registerEmbedCommands(program, dataDir).
import { existsSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { PROVIDER_CHOICES, type Provider } from '../../shared/providers.js';
import type { EmbedResult } from '../engine/nets/clip-run.js';
import type { ResolvedModel } from '../studio/models/manager.js';
import { withCompute } from './compute-session.js';
import { CliError, printJson, providerLine } from './output.js';

export const DEFAULT_CLIP_MODEL = 'clip-vit-base-patch32';

interface EmbedOpts {
  model: string;
  provider: Provider;
  json?: boolean;
}

function print(
  given: string,
  model: ResolvedModel,
  r: EmbedResult,
  inputs: { key: 'text' | 'image'; values: string[] },
  json?: boolean,
) {
  const rows = r.embeds.map((v, i) => ({ [inputs.key]: inputs.values[i]!, embedding: Array.from(v) }));
  process.stderr.write(`${providerLine(r.choice)}\n`); // with the default --provider auto: what it chose and why
  if (json) {
    printJson({
      model: given,
      modelDir: model.location,
      provider: r.provider,
      dim: r.dim,
      normalized: true,
      results: rows,
    });
    return;
  }
  process.stderr.write(`${given} on ${r.provider}: ${r.embeds.length} x ${r.dim}-d unit vectors\n`);
  for (const row of rows) {
    const v = row.embedding;
    const head = v.slice(0, 4).map((x) => x.toFixed(4));
    process.stdout.write(`${JSON.stringify(row[inputs.key])}\t[${head.join(', ')}${v.length > 4 ? ', ...' : ''}]\n`);
  }
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
          .choices(PROVIDER_CHOICES)
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
      const { model, result } = await withCompute(getDataDir(cmd), (c) =>
        c.embedTexts({ model: opts.model, provider: opts.provider, texts }),
      );
      print(opts.model, model, result, { key: 'text', values: texts }, opts.json);
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
      for (const f of images) if (!existsSync(f)) throw new CliError(`${f}: no such file. Check the path.`);
      const { model, result } = await withCompute(getDataDir(cmd), (c) =>
        c.embedImages({ model: opts.model, provider: opts.provider, images }),
      );
      print(opts.model, model, result, { key: 'image', values: images }, opts.json);
    });
}
