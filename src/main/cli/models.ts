// `fstudio models list | pull | import | verify | rm`: the model manager from a terminal.
// Results on stdout (JSON with --json); the progress bar and errors on stderr. On a terminal the
// bar is one line redrawn in place; on a pipe only state changes are printed, one line each.
import type { Command } from 'commander';
import {
  sourceLabel,
  unusedSourcesWords,
  urlHost,
  urlSourceLabel,
  type ModelInfo,
  type ModelProgress,
  type ModelSource,
} from '../../shared/models.js';
import type { ModelManager, ModelManagerOptions } from '../studio/models/manager.js';
import { formatDuration } from '../../shared/format.js';
import { CliError, formatBytes, printJson } from './output.js';

const examples = (lines: string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;

export interface ModelsCliOptions {
  /** Builds the manager (tests pass a catalog and fast timings). */
  manager?: (dataDir: string, opts: ModelManagerOptions) => Promise<ModelManager> | ModelManager;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WriteStream | NodeJS.WritableStream;
  /** Receives the exit code (main.ts's setExit). */
  setExit?: (code: number) => void;
}

/** The studio's "third-party mirrors" setting (settings.json in the data folder); on when none is saved. */
async function thirdPartySetting(dataDir: string): Promise<boolean> {
  const { SettingsStore } = await import('../studio/settings.js');
  return (await SettingsStore.load(dataDir)).get().thirdPartyMirrors;
}

async function defaultManager(dataDir: string, opts: ModelManagerOptions): Promise<ModelManager> {
  // Loaded on demand so `fstudio --help` stays fast.
  const { ModelManager } = await import('../studio/models/manager.js');
  return new ModelManager(dataDir, opts);
}

/** FSTUDIO_MODEL_MIRROR / --mirror: base URLs tried first, as <base>/<id>/<file>. */
export function mirrorsFrom(flag: string[] | undefined, env: NodeJS.ProcessEnv = process.env): string[] {
  const fromEnv = (env.FSTUDIO_MODEL_MIRROR ?? '')
    .split(/[,\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);
  const all = [...(flag ?? []), ...fromEnv];
  for (const u of all)
    if (!/^https?:\/\//.test(u))
      throw new CliError(
        `A model mirror is an http(s) base URL (like https://models.example.org/fstudio), not "${u}".`,
      );
  return all;
}

const VERIFY_LABEL = {
  sha256: 'verified (sha256)',
  'hf-linked-etag': 'verified (HF etag)',
  recorded: 'recorded, not verified',
};

function verificationLabel(m: ModelInfo): string {
  if (m.verification) return VERIFY_LABEL[m.verification];
  return m.files.some((f) => f.state === 'present') ? 'unchecked (run verify)' : '-';
}

function sizeLabel(m: ModelInfo): string {
  const expected =
    m.expectedBytes === null
      ? '?'
      : `${m.expectedApproximate ? '~' : ''}${formatBytes(m.expectedBytes)}${m.expectedUnknownFiles ? '+' : ''}`;
  if (m.state === 'installed') return formatBytes(m.bytesOnDisk);
  if (m.state === 'partial') return `${formatBytes(m.bytesOnDisk)} of ${expected}`;
  return expected;
}

export function modelsTable(models: ModelInfo[]): string {
  const rows = models.map((m) => [
    `${m.id}${m.default ? ' *' : ''}`,
    m.kind,
    m.downloading ? 'downloading' : m.state,
    sizeLabel(m),
    verificationLabel(m),
    m.title,
  ]);
  const head = ['ID', 'KIND', 'STATE', 'SIZE', 'VERIFICATION', 'TITLE'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line), '* default of its kind'].join('\n');
}

/** "from huggingface.co (Hugging Face); if that fails, hf-mirror.com (third-party mirror)", and what is turned off. */
export function sourcesLine(sources: readonly ModelSource[]): string {
  const on = sources.filter((s) => s.enabled);
  const [first, ...rest] = on;
  const tried = first
    ? `from ${sourceLabel(first)}${rest.length ? `; if that fails, ${rest.map(sourceLabel).join(', then ')}` : ''}`
    : '';
  const unused = unusedSourcesWords(sources);
  const skipped = unused ? ` Not used: ${unused}.` : '';
  return `${tried}.${skipped}`;
}

/** The one-line bar: percent, bytes, speed, ETA, and what is wrong when something is. */
export function progressLine(p: ModelProgress, width = 100, sources: readonly ModelSource[] = []): string {
  const pct = p.total ? Math.min(100, (p.bytes / p.total) * 100) : null;
  const barW = 20;
  const filled = pct === null ? 0 : Math.round((pct / 100) * barW);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(barW - filled)}]`;
  const amount = p.total ? `${formatBytes(p.bytes)} / ${formatBytes(p.total)}` : formatBytes(p.bytes);
  const trouble = p.files.find((f) => f.state === 'stalled' || f.state === 'retrying');
  const active = p.files.filter((f) => ['connecting', 'downloading', 'verifying'].includes(f.state));
  let tail: string;
  if (trouble) {
    tail =
      trouble.state === 'stalled'
        ? `${trouble.name}: stalled (${trouble.message ?? 'no data'}) — waiting, will retry`
        : `${trouble.name}: ${trouble.message ?? 'retrying'}`;
  } else if (active.some((f) => f.state === 'verifying')) tail = `verifying ${active.map((f) => f.name).join(', ')}`;
  else tail = `${formatBytes(p.speed)}/s  ETA ${formatDuration(p.etaSeconds)}  ${active.map((f) => f.name).join(', ')}`;
  // Say whose server it is once the download has moved past the first one (or is on a third party's).
  const on = active.find((f) => f.url !== null)?.url ?? null;
  if (on !== null && sources.length > 0) {
    const src = sources.find((x) => x.host === urlHost(on));
    if (!src || src.thirdParty || sources.indexOf(src) > 0) tail += ` from ${urlSourceLabel(on, sources)}`;
  }
  const line = `${p.modelId} ${bar} ${pct === null ? '  ?%' : `${pct.toFixed(0).padStart(3)}%`}  ${amount}  ${tail}`;
  return line.length > width ? `${line.slice(0, width - 1)}…` : line;
}

/**
 * Lines worth printing on a pipe: each file's state changes (not every byte); retries once per file and
 * mirror, not once per attempt.
 */
function stateChanges(prev: Map<string, string>, p: ModelProgress): string[] {
  const out: string[] = [];
  for (const f of p.files) {
    const key = f.state === 'retrying' ? `retrying|${f.mirror}` : `${f.state}|${f.message ?? ''}`;
    if (prev.get(f.name) === key) continue;
    prev.set(f.name, key);
    if (['queued', 'connecting', 'downloading', 'verifying'].includes(f.state)) continue;
    out.push(`${p.modelId}/${f.name}: ${f.state}${f.message ? ` — ${f.message}` : ''}`);
  }
  return out;
}

export function registerModelsCommands(
  program: Command,
  getDataDir: () => string,
  cli: ModelsCliOptions = {},
): Command {
  const out = cli.stdout ?? process.stdout;
  const err = cli.stderr ?? process.stderr;
  const setExit = cli.setExit ?? ((c: number) => (process.exitCode = c));
  const open = (opts: ModelManagerOptions = {}) => (cli.manager ?? defaultManager)(getDataDir(), opts);
  const print = (json: boolean | undefined, value: unknown, text: string) => {
    if (json) {
      if (out === process.stdout) printJson(value);
      else out.write(`${JSON.stringify(value, null, 2)}\n`);
    } else out.write(`${text}\n`);
  };

  const models = program
    .command('models')
    .description('List, download, import, verify and delete the models the studio runs (CLIP, VQGAN, text LMs).')
    .addHelpText(
      'after',
      examples([
        'fstudio models list',
        'fstudio models pull clip-vit-base-patch32',
        'fstudio models import vqgan_imagenet_f16_16384 ~/Downloads/vqgan_imagenet_f16_16384/',
        'fstudio models verify clip-vit-base-patch32',
        'fstudio models rm wikiart_16384',
      ]),
    );

  models
    .command('list')
    .description(
      'Show every catalog model: installed, partial (resumable) or missing, and how its files were verified.',
    )
    .option('--json', 'print the models as JSON')
    .addHelpText('after', examples(['fstudio models list', 'fstudio models list --json | jq ".[] | {id, state}"']))
    .action(async (opts: { json?: boolean }) => {
      const m = await open();
      const list = await m.list();
      print(opts.json, list, modelsTable(list));
      setExit(0);
    });

  models
    .command('pull')
    .description(
      'Download a model (resumes .part files, retries, moves to the next mirror; Ctrl-C keeps what has arrived).',
    )
    .argument('<id>', 'catalog id (see `fstudio models list`)')
    .option('--json', 'print the installed model as JSON when done')
    .option('--mirror <url...>', 'base URL(s) tried first, as <url>/<id>/<file> (also $FSTUDIO_MODEL_MIRROR)')
    .option('--third-party-mirrors', "also use mirrors not run by the model's publisher (hf-mirror.com, ...)")
    .option('--no-third-party-mirrors', "only the publisher's own servers (default: the studio's setting)")
    .addHelpText(
      'after',
      examples([
        'fstudio models pull clip-vit-base-patch32',
        'fstudio models pull vqgan_imagenet_f16_16384 --json > installed.json',
        'FSTUDIO_MODEL_MIRROR=https://models.example.org/fstudio fstudio models pull smollm2-135m-instruct',
      ]),
    )
    .action(async (id: string, opts: { json?: boolean; mirror?: string[]; thirdPartyMirrors?: boolean }) => {
      const thirdParty = opts.thirdPartyMirrors ?? (await thirdPartySetting(getDataDir()));
      const m = await open({
        extraMirrors: mirrorsFrom(opts.mirror),
        mirrorsOnly: process.env.FSTUDIO_MODEL_MIRROR_ONLY === '1',
        thirdPartyMirrors: () => thirdParty,
      });
      const entry = m.entry(id); // unknown ids fail before anything is printed
      const { sources } = await m.info(id);
      err.write(`Downloading ${entry.title} ${sourcesLine(sources)}\n`);
      const tty = Boolean((err as NodeJS.WriteStream).isTTY);
      const cols = () => (err as NodeJS.WriteStream).columns ?? 100;
      const seen = new Map<string, string>();
      let drawn = false;
      const off = m.on('progress', (p) => {
        if (tty) {
          // Retries and stalls show on the bar itself, redrawn in place; only outcomes get a line of their own.
          for (const l of stateChanges(seen, p).filter((x) => /: (failed|skipped)\b/.test(x)))
            err.write(`\r\x1b[K${l}\n`);
          err.write(`\r${progressLine(p, cols() - 1, sources)}\x1b[K`);
          drawn = true;
        } else for (const l of stateChanges(seen, p)) err.write(`${l}\n`);
      });
      let interrupted = false;
      const onSigint = () => {
        interrupted = true;
        m.cancel(id);
      };
      process.once('SIGINT', onSigint);
      try {
        const info = await m.pull(id).done;
        if (drawn) err.write('\r\x1b[K');
        print(
          opts.json,
          info,
          `${info.id}: ${info.state}, ${formatBytes(info.bytesOnDisk)} in ${info.dir} (${verificationLabel(info)})`,
        );
        setExit(info.state === 'installed' ? 0 : 1);
      } catch (e) {
        if (drawn) err.write('\r\x1b[K\n');
        if (interrupted) {
          err.write(`Interrupted; what has arrived is kept. Run \`fstudio models pull ${id}\` again to resume.\n`);
          setExit(130);
          return;
        }
        if (e instanceof Error && e.name === 'DownloadFailed')
          throw new CliError(
            `${e.message} (fstudio models pull ${id} resumes it; files you got another way: fstudio models import ${id} <file or folder>)`,
          );
        throw e;
      } finally {
        off();
        process.removeListener('SIGINT', onSigint);
      }
    });

  models
    .command('import')
    .description("Copy a model's files from a local file or folder (hashed, and checked where a hash is published).")
    .argument('<id>', 'catalog id')
    .argument('<path>', 'a file, or a folder holding the files under their catalog names')
    .option('--as <file>', "which of the model's files a single file is (when its name does not say)")
    .option('--json', 'print the import report as JSON')
    .addHelpText(
      'after',
      examples([
        'fstudio models import vqgan_imagenet_f16_16384 ~/ckpts/vqgan_imagenet_f16_16384/',
        'fstudio models import vqgan_imagenet_f16_16384 ~/Downloads/16384.ckpt',
        'fstudio models import vqgan_imagenet_f16_16384 ~/Downloads/vqgan.yml --as model.yaml',
        'fstudio models import clip-vit-base-patch32 ~/.cache/huggingface/hub/models--openai--clip-vit-base-patch32/snapshots/<rev>/',
      ]),
    )
    .action(async (id: string, path: string, opts: { as?: string; json?: boolean }) => {
      const m = await open();
      const r = await m.importLocal(id, path, opts.as);
      const lines = r.imported.map(
        (i) => `imported ${i.name} from ${i.from} (${VERIFY_LABEL[i.verification]}, sha256 ${i.sha256})`,
      );
      if (r.missing.length) lines.push(`still missing: ${r.missing.join(', ')} (import them too, or pull)`);
      lines.push(`${r.id}: ${r.model.state}`);
      print(opts.json, r, lines.join('\n'));
      setExit(0);
    });

  models
    .command('verify')
    .description("Re-hash a model's files against the published SHA-256, else the hash recorded at install.")
    .argument('<id>', 'catalog id')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      examples(['fstudio models verify clip-vit-base-patch32', 'fstudio models verify gpt2 --json']),
    )
    .action(async (id: string, opts: { json?: boolean }) => {
      const m = await open();
      const r = await m.verify(id);
      const lines = r.files.map((f) => `${f.result.padEnd(8)}  ${f.name}: ${f.message}`);
      lines.push(
        r.ok
          ? `${id}: ok`
          : `${id}: problems found. Delete it (fstudio models rm ${id}) and download it again (fstudio models pull ${id}).`,
      );
      print(opts.json, r, lines.join('\n'));
      setExit(r.ok ? 0 : 1);
    });

  models
    .command('rm')
    .description("Delete a model's folder (its files, partial downloads and recorded hashes).")
    .argument('<id>', 'catalog id')
    .option('--json', 'print what was removed as JSON')
    .addHelpText('after', examples(['fstudio models rm wikiart_16384']))
    .action(async (id: string, opts: { json?: boolean }) => {
      const m = await open();
      const r = await m.remove(id);
      print(opts.json, { id, ...r }, `removed ${id} (${formatBytes(r.removedBytes)})`);
      setExit(0);
    });

  return models;
}
