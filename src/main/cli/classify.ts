// `fstudio classify`: CLIP zero-shot classification of a folder of images from a terminal. Labels joined by
// `|`, a template set (imagenet7, imagenet80, plain) or a template file (one template a line, {} for the
// label), a model by catalog id or folder. The run is the studio's (studio/classify): it lands in the history
// like one started from the app. A progress bar on a terminal; --json prints each image's path and the
// probability of every label, --csv the results table; --copy-to DIR copies the images into DIR/<label>/.
//
// Registration (main.ts): registerClassifyCommand(program, dataDir, setExit).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type Command, Option } from 'commander';
import {
  PROVIDER_CHOICES,
  type ClassifyStartArgs,
  type JobStatus,
  type Provider,
  type TemplateChoice,
} from '../../shared/api.js';
import { isTemplateSetId, parseTemplateText, TEMPLATE_SETS } from '../engine/classify/templates.js';
import { CliError, printJson, ProgressBar } from './output.js';
import { withStudio } from './studio-session.js';

interface ClassifyOptions {
  labels: string;
  templates: string;
  model?: string;
  provider?: Provider;
  json?: boolean;
  csv?: boolean;
  threshold?: number;
  unsure?: number;
  copyTo?: string;
}

/** "a|b|c" -> the labels, trimmed; fewer than two is refused with what to write. */
export function parseLabels(s: string): string[] {
  const labels = s.split('|').map((l) => l.trim());
  if (labels.length < 2 || labels.some((l) => !l)) {
    throw new CliError(
      `--labels needs at least two labels joined by | (like --labels "is photoshopped|is not photoshopped"); got "${s}".`,
      2,
    );
  }
  return labels;
}

/** A set's name or a template file's templates (read and checked here, so its errors name the file). */
export async function templateChoice(v: string): Promise<TemplateChoice> {
  if (isTemplateSetId(v)) return { set: v };
  let text: string;
  try {
    text = await readFile(v, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(
      `--templates ${v}: ${code === 'ENOENT' ? 'no such file' : `cannot read it (${code})`}. ` +
        `Give ${Object.keys(TEMPLATE_SETS).join(', ')} or a file with one template a line.`,
      2,
    );
  }
  try {
    return { custom: parseTemplateText(text, v) };
  } catch (e) {
    throw new CliError((e as Error).message, 2);
  }
}

const fraction = (name: string) => (v: string) => {
  const n = Number(v);
  if (!(n >= 0 && n <= 1)) throw new CliError(`${name} is a number from 0 to 1 (got "${v}").`, 2);
  return n;
};

export async function classifyCommand(dataDir: string, dir: string, o: ClassifyOptions): Promise<number> {
  if (o.json && o.csv) throw new CliError('Choose one of --json and --csv.', 2);
  const args: ClassifyStartArgs = {
    labels: parseLabels(o.labels),
    templates: await templateChoice(o.templates),
    source: { folder: path.resolve(dir) },
    ...(o.model ? { model: o.model } : {}),
    ...(o.provider ? { provider: o.provider } : {}),
  };
  return withStudio(dataDir, async (studio) => {
    const svc = studio.classify;
    const { runId, jobId, images } = await svc.start(args, { allowPaths: true });
    const bar = new ProgressBar(images);
    const off = studio.on('jobProgress', (s: JobStatus) => {
      if (s.jobId === jobId && s.state === 'running' && s.total) bar.update(s.step, s.message);
    });
    const onSigint = () => void studio.handlers.jobCancel({ jobId }).catch(() => {});
    process.once('SIGINT', onSigint);
    try {
      const run = await svc.done(runId);
      bar.finish();
      for (const s of run.skipped)
        process.stderr.write(`skipped: ${s.error.includes(s.path) ? s.error : `${s.path}: ${s.error}`}\n`);
      if (run.state !== 'done') throw new CliError(run.error ?? `the run ended ${run.state}`);
      const decision = { threshold: o.threshold ?? null, unsureBand: o.unsure ?? 0 };
      const rows = svc.rows(runId, { offset: 0, limit: -1 }).rows;
      if (o.json) {
        printJson({
          runId,
          labels: run.labels,
          templates: run.templates.length,
          logitScale: run.logitScale,
          logitScaleSource: run.logitScaleSource,
          results: rows.map((r) => ({
            path: r.path,
            label: run.labels[r.top],
            margin: r.margin,
            probs: Object.fromEntries(run.labels.map((l, i) => [l, r.probs[i]])),
          })),
          skipped: run.skipped,
        });
      } else if (o.csv) {
        process.stdout.write(new TextDecoder().decode(svc.exportCsv(runId, decision).data));
      } else {
        for (const r of rows) {
          const p = r.probs.map((x, i) => `${run.labels[i]} ${(x * 100).toFixed(1)}%`).join(', ');
          process.stdout.write(`${r.path}\t${run.labels[r.top]}\t${p}\n`);
        }
      }
      if (o.copyTo) {
        const c = await svc.copy(runId, decision, path.resolve(o.copyTo));
        const per = Object.entries(c.perLabel).map(([l, n]) => `${n} ${l}`);
        process.stderr.write(`copied ${c.copied} images into ${c.folder} (${per.join(', ')})\n`);
      }
      process.stderr.write(
        `run ${runId}: ${run.images} images classified, ${run.skipped.length} skipped (logit scale ${run.logitScale?.toFixed(2)}, ${run.logitScaleSource === 'model' ? "the model's" : 'the default'})\n`,
      );
      return 0;
    } finally {
      off();
      process.off('SIGINT', onSigint);
    }
  });
}

export function registerClassifyCommand(
  program: Command,
  getDataDir: (cmd: Command) => string,
  setExit: (code: number) => void,
): void {
  program
    .command('classify')
    .description(
      'Classify a folder of images (recursively) with CLIP zero-shot against labels; the run goes in the history.',
    )
    .argument('<dir>', 'folder of images (PNG, JPEG, WebP, GIF; sub-folders too)')
    .requiredOption('--labels <a|b>', 'two or more labels joined by |, like "is photoshopped|is not photoshopped"')
    .option(
      '--templates <set|file>',
      'imagenet7 (default), imagenet80, plain, or a file with one template a line ({} is the label)',
      'imagenet7',
    )
    .option('--model <id|dir>', 'catalog model id or a CLIP folder (default: the catalog default)')
    .addOption(new Option('--provider <name>', 'execution provider').choices(PROVIDER_CHOICES))
    .option('--json', "print each image's path and the probability of every label as JSON")
    .option('--csv', 'print the results as CSV')
    .option(
      '--threshold <p>',
      'two labels: the first label when its probability is at least p',
      fraction('--threshold'),
    )
    .option(
      '--unsure <margin>',
      'results whose margin is below this are "unsure" (CSV, --copy-to)',
      fraction('--unsure'),
    )
    .option('--copy-to <dir>', 'copy the images into <dir>/<label>/ (unsure ones into <dir>/unsure/)')
    .addHelpText(
      'after',
      '\nExamples:\n' +
        '  $ fstudio classify --labels "is photoshopped|is not photoshopped" ~/Pictures/batch\n' +
        '  $ fstudio classify --labels "cat|dog" --templates imagenet80 --json ./pets > results.json\n' +
        '  $ fstudio classify --labels "day|night" --templates my-templates.txt --csv --copy-to ./sorted ./photos\n',
    )
    .action(async (dir: string, opts: ClassifyOptions, cmd: Command) => {
      setExit(await classifyCommand(getDataDir(cmd), dir, opts));
    });
}
