// `fstudio generate`: a VQGAN+CLIP run from the command line, with the option names users of
// nerdyrodent/VQGAN-CLIP know (`-p`, `-ip`, `-ii`, `-iw`, `-s W H`, `-i`, `-se`, `-lr`, `-cuts`, `-cutp`,
// `-sd`, `-opt`, and their long names). The run is the studio's (studio/jobs/generation.ts): it lands in
// the history like one started from the app. A progress bar on a terminal, `--json` events for scripts,
// `-i 0` writes the starting image. This file parses and prints.
//
// Registration (main.ts): registerGenerateCommand(program, dataDir); normalizeGenerateArgs(argv) first.
import { readFile } from 'node:fs/promises';
import { type Command, Option } from 'commander';
import {
  GenerateSettings,
  PROVIDER_CHOICES,
  type GenerateSettingsResolved,
  type ImageInput,
  type JobFrame,
  type JobStatus,
  type Provider,
} from '../../shared/api.js';
import { CliError, checkOutputFile, printJson, ProgressBar, writeOutputFile } from './output.js';
import { withStudio } from './studio-session.js';

/**
 * nerdyrodent's short options are several letters (`-ip`, `-cutp`); commander's are one. Before parsing,
 * the multi-letter ones become their long names (`-ip` -> `--image_prompts`), only after `generate`.
 */
const MULTI_LETTER: Record<string, string> = {
  '-ip': '--image_prompts',
  '-ii': '--init_image',
  '-in': '--init_noise',
  '-iw': '--init_weight',
  '-se': '--save_every',
  '-lr': '--learning_rate',
  '-cuts': '--cutn',
  '-cutp': '--cut_pow',
  '-sd': '--seed',
  '-opt': '--optimiser',
  '-conf': '--vqgan_config',
  '-ckpt': '--vqgan',
};

export function normalizeGenerateArgs(argv: readonly string[]): string[] {
  const at = argv.indexOf('generate');
  if (at < 0) return [...argv];
  return argv.map((a, i) => (i > at && MULTI_LETTER[a] ? MULTI_LETTER[a]! : a));
}

interface GenerateOptions {
  prompts?: string;
  image_prompts?: string[];
  init_image?: string;
  init_noise?: 'pixels' | 'gradient';
  init_weight?: number;
  size?: string[];
  iterations: number;
  save_every: number;
  learning_rate: number;
  cutn: number;
  cut_pow: number;
  cut_method: 'original' | 'pooled';
  seed?: number;
  optimiser: 'adam' | 'adamw' | 'sgd';
  clip?: string;
  vqgan?: string;
  provider?: Provider;
  output: string;
  force?: boolean;
  json?: boolean;
}

const num =
  (what: string, integer = false) =>
  (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || (integer && !Number.isInteger(n)))
      throw new CliError(`${what} ${v}: expected ${integer ? 'a whole number' : 'a number'}`, 2);
    return n;
  };

/** `-s 512 384`, `-s 512x384` or `-s 512` (a square). */
export function parseSizeArgs(values: readonly string[] | undefined): { width: number; height: number } | null {
  if (!values || values.length === 0) return null;
  const parts = values.flatMap((v) => v.split(/[x,]/i)).filter(Boolean);
  const [w, h = w] = parts.map(Number);
  if (parts.length > 2 || !Number.isInteger(w) || !Number.isInteger(h) || w! < 16 || h! < 16)
    throw new CliError(`--size ${values.join(' ')}: expected a width and a height in pixels, like -s 512 384`, 2);
  return { width: w!, height: h! };
}

/** `path`, `path:weight` or `path:weight:stop` (the weight and stop must be numbers; a path may hold colons). */
function splitWeighted(spec: string): { path: string; weight: number; stop?: number } {
  const parts = spec.split(':');
  const nums: number[] = [];
  while (parts.length > 1 && nums.length < 2 && parts.at(-1)!.trim() !== '' && Number.isFinite(Number(parts.at(-1))))
    nums.unshift(Number(parts.pop()));
  return { path: parts.join(':'), weight: nums[0] ?? 1, ...(nums.length > 1 ? { stop: nums[1] } : {}) };
}

async function readImageArg(file: string, what: string): Promise<ImageInput> {
  try {
    return { name: file, data: new Uint8Array(await readFile(file)) };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new CliError(`${what} ${file}: ${code === 'ENOENT' ? 'no such file' : (code ?? (e as Error).message)}`);
  }
}

async function settingsFrom(o: GenerateOptions): Promise<GenerateSettingsResolved> {
  const size = parseSizeArgs(o.size);
  const imagePrompts = await Promise.all(
    (o.image_prompts ?? [])
      .flatMap((s) => s.split('|'))
      .filter((s) => s.trim())
      .map(async (s) => {
        const w = splitWeighted(s.trim());
        return { image: await readImageArg(w.path, '--image_prompts'), weight: w.weight, stop: w.stop };
      }),
  );
  const init = o.init_image
    ? { kind: 'image' as const, image: await readImageArg(o.init_image, '--init_image') }
    : o.init_noise
      ? { kind: 'noise' as const, style: o.init_noise }
      : { kind: 'random' as const };
  const parsed = GenerateSettings.safeParse({
    prompts: o.prompts ?? '',
    imagePrompts,
    init,
    initWeight: o.init_weight ?? 0,
    ...(size ?? {}),
    steps: o.iterations,
    snapshotEvery: o.save_every,
    lr: o.learning_rate,
    cuts: o.cutn,
    cutPow: o.cut_pow,
    cutMethod: o.cut_method,
    seed: o.seed,
    optimizer: o.optimiser,
    provider: o.provider,
  });
  if (!parsed.success)
    throw new CliError(parsed.error.issues.map((i) => `${i.path.join('.') || 'settings'}: ${i.message}`).join('; '), 2);
  // Models may be paths on the command line (the API takes installed models only).
  return { ...parsed.data, ...(o.clip ? { clip: o.clip } : {}), ...(o.vqgan ? { vqgan: o.vqgan } : {}) };
}

const seconds = (s: number) => (s >= 90 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`);

export async function generateCommand(dataDir: string, o: GenerateOptions): Promise<number> {
  checkOutputFile(o.output, o.force); // before anything is computed
  const settings = await settingsFrom(o);
  return withStudio(dataDir, async (studio) => {
    const log = (line: string) => process.stderr.write(`${line}\n`);
    const gen = studio.generation;
    const { runId, jobId, notes } = await gen.enqueue(settings, { allowPaths: true, claim: true });
    for (const n of notes) log(n);
    const bar = new ProgressBar(settings.steps);
    let lastStatus = '';
    const off = [
      studio.on('jobProgress', (s: JobStatus) => {
        if (s.jobId !== jobId) return;
        if (o.json)
          printJson({
            event: 'progress',
            runId,
            state: s.state,
            step: s.step,
            total: s.total,
            values: s.values,
            message: s.message,
          });
        else if (s.values.loss !== undefined) {
          const eta = s.values.etaSeconds !== undefined ? `, ${seconds(s.values.etaSeconds)} left` : '';
          bar.update(s.step, `loss ${s.values.loss.toFixed(4)}, ${s.values.itPerSecond?.toFixed(2) ?? '?'} it/s${eta}`);
        } else if (s.message && s.message !== lastStatus && s.state === 'running') {
          lastStatus = s.message;
          bar.log(s.message);
        }
      }),
      studio.on('jobFrame', (f: JobFrame) => {
        if (o.json && f.jobId === jobId)
          printJson({ event: 'frame', runId, step: f.step, width: f.width, height: f.height });
      }),
    ];
    // Ctrl+C pauses the run (it stays in the history, to resume from the app); a second one quits.
    let interrupted = false;
    const onSigint = () => {
      if (interrupted) process.exit(130);
      interrupted = true;
      bar.log('Stopping after this step… (Ctrl+C again to quit at once)');
      void gen.pause(runId).catch(() => {});
    };
    process.on('SIGINT', onSigint);
    try {
      const done = await gen.run(runId);
      bar.finish();
      if (done.state === 'paused') {
        log(`Paused at step ${done.step} of ${done.steps} (run ${runId}): resume it on the Generate page.`);
        return 130;
      }
      if (done.state !== 'done' || done.imageId === null) {
        throw new CliError(done.error ?? `the run ended ${done.state}`);
      }
      const item = await studio.handlers.getItem({ id: done.imageId });
      const file = await studio.assetFile(item.item.sha256, 'file');
      if (!file) throw new CliError(`the run's image is missing from the data folder`);
      await writeOutputFile(o.output, await readFile(file.path), o.force);
      if (o.json)
        printJson({ event: 'done', runId, imageId: done.imageId, output: o.output, seed: done.seed, steps: done.step });
      else
        log(
          `Wrote ${done.width}x${done.height} to ${o.output} (run ${runId}, seed ${done.seed}; in the Gallery as item ${done.imageId}).`,
        );
      return 0;
    } finally {
      process.off('SIGINT', onSigint);
      for (const f of off) f();
    }
  });
}

const examples = (lines: string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;

export function registerGenerateCommand(
  program: Command,
  getDataDir: (cmd: Command) => string,
  setExit: (code: number) => void,
): void {
  program
    .command('generate')
    .description('Make a picture from text with VQGAN+CLIP (the run lands in the history and the Gallery).')
    .option('-p, --prompts <text>', 'text:weight:stop, several joined by |, story phrases by ^')
    .option('--image_prompts <files...>', 'pictures as targets: file[:weight[:stop]], several joined by | (also -ip)')
    .option('--init_image <file>', 'start from this picture instead of random tokens (also -ii)')
    .addOption(new Option('--init_noise <kind>', 'start from noise (also -in)').choices(['pixels', 'gradient']))
    .option('--init_weight <x>', 'pull z toward its start (also -iw)', num('--init_weight'))
    .option('-s, --size <W H...>', 'width and height, multiples of the VQGAN factor (default 256 256)')
    .option('-i, --iterations <n>', 'steps; 0 writes the starting image', num('--iterations', true), 300)
    .option('--save_every <n>', 'keep a snapshot every n steps, to fork from (also -se)', num('--save_every', true), 10)
    .option('--learning_rate <x>', 'step size (also -lr)', num('--learning_rate'), 0.1)
    .option('--cutn <n>', 'cutouts per step (also -cuts)', num('--cutn', true), 32)
    .option('--cut_pow <x>', 'cutout size power (also -cutp)', num('--cut_pow'), 1)
    .addOption(new Option('--cut_method <m>', 'cutout style').choices(['original', 'pooled']).default('original'))
    .option('--seed <n>', 'random seed (default: a random one, printed) (also -sd)', num('--seed', true))
    .addOption(
      new Option('--optimiser <name>', 'optimiser (also -opt)').choices(['adam', 'adamw', 'sgd']).default('adam'),
    )
    .option('--clip <id|dir>', 'CLIP model: catalog id or folder (default clip-vit-base-patch32)')
    .option(
      '--vqgan <id|dir|ckpt>',
      'VQGAN: catalog id, folder or checkpoint (default vqgan_imagenet_f16_16384) (also -ckpt)',
    )
    .addOption(
      new Option('--provider <name>', 'execution provider (default: the one in Settings)').choices(PROVIDER_CHOICES),
    )
    .option('-o, --output <file>', 'PNG to write', 'output.png')
    .option('--force', 'replace an existing -o file')
    .option('--json', 'one JSON object per event on stdout, for scripts')
    .addHelpText(
      'after',
      examples([
        'fstudio generate -p "a cosmic room of seismic surprises" -o room.png',
        'fstudio generate -p "a lighthouse at dusk:1 | fog:-0.5" -s 384 256 -i 200 -sd 42',
        'fstudio generate -p "an oil painting" -ii photo.jpg -iw 0.5 -i 150 -o painted.png',
        'fstudio generate -p "a forest ^ a city ^ the sea" -i 300 --json > events.jsonl',
      ]),
    )
    .action(async (o: GenerateOptions, cmd: Command) => {
      setExit(await generateCommand(getDataDir(cmd), o));
    });
}
