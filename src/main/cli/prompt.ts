// `fstudio prompt`: Prompt Lab from a terminal. `prompt run` runs a few-shot prompt (a template file with
// {input}, or a saved prompt model) over a file of inputs and prints each result as it comes (CSV or JSONL, on
// stdout or --out); `prompt explore` runs the uncertainty explorer and prints a readable report (--json for
// all of it); `prompt models` lists, shows, saves, exports, imports and deletes saved prompt models; `prompt
// history` lists past runs. Every run lands in the history like one started from the app. Results on stdout,
// progress (on a terminal) and the summary on stderr.
//
// Public API
//   registerPromptCommands(program, getDataDir, setExit)
//   promptRunCommand / promptExploreCommand / promptModelsCommand (dataDir, options, io?)   for tests
//   parseSavedRef("name@2") -> { name, version? }
import { createWriteStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import { once } from 'node:events';
import { type Command, Option } from 'commander';
import {
  PROVIDER_CHOICES,
  type ExploreStats,
  type JobStatus,
  type PromptExploreResult,
  type PromptRow,
  type PromptRunDetail,
} from '../../shared/api.js';
import { formatBytes, formatDuration } from '../../shared/format.js';
import type { PromptModelInput } from '../../shared/prompt-model.js';
import { TEMPLATE_MAX_BYTES } from '../../shared/prompt-render.js';
import type { StudioService } from '../studio/index.js';
import { CliError, checkOutputFile, printJson, writeOutputFile } from './output.js';
import { openCliStudio } from './studio-session.js';

const examples = (lines: string[]) => `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`;

/** Where a command writes and how it opens the studio (tests give their own). */
export interface PromptIo {
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WriteStream | NodeJS.WritableStream;
  open?: (dataDir: string) => Promise<StudioService>;
}

interface ModelOptions {
  model?: string;
  provider?: string;
  template?: string;
  promptModel?: string;
  labels?: string;
  calibrate?: boolean;
  maxTokens?: number;
  temperature?: number;
  seed?: number;
}

interface InputOptions {
  inputs: string;
  inputFormat?: 'txt' | 'csv' | 'tsv' | 'jsonl';
  column?: string;
  gold?: string;
}

export interface RunOptions extends ModelOptions, InputOptions {
  limit?: number;
  format: 'csv' | 'jsonl';
  out?: string;
  force?: boolean;
}

export interface ExploreOptions extends ModelOptions, InputOptions {
  permutations: number;
  leaveOneOut?: boolean;
  wordings?: boolean;
  limit: number;
  json?: boolean;
}

const whole =
  (what: string, min: number, max: number) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new CliError(
        `${what} must be a whole number from ${min} to ${max.toLocaleString('en-US')}, not "${v}".`,
        2,
      );
    return n;
  };

const decimal =
  (what: string, min: number, max: number) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max)
      throw new CliError(`${what} must be a number from ${min} to ${max}, not "${v}".`, 2);
    return n;
  };

/** "Sentiment@2" -> { name: 'Sentiment', version: 2 }; "Sentiment" -> the latest. */
export function parseSavedRef(text: string): { name: string; version?: number } {
  const at = text.lastIndexOf('@');
  if (at > 0 && /^\d+$/.test(text.slice(at + 1)))
    return { name: text.slice(0, at), version: Number(text.slice(at + 1)) };
  return { name: text };
}

/** "Positive|Negative" -> the label names (trimmed, empty ones dropped). */
function splitLabels(text: string | undefined): string[] {
  return (text ?? '')
    .split('|')
    .map((s) => s.trim())
    .filter(Boolean);
}

async function readTemplate(file: string): Promise<string> {
  const s = await stat(file).catch(() => null);
  if (!s) throw new CliError(`--template ${file}: no such file.`, 2);
  if (!s.isFile()) throw new CliError(`--template ${file}: not a file.`, 2);
  if (s.size > TEMPLATE_MAX_BYTES)
    throw new CliError(
      `--template ${file} is ${formatBytes(s.size)}; a template is at most ${formatBytes(TEMPLATE_MAX_BYTES)}. ` +
        'Put the inputs in --inputs instead.',
      2,
    );
  return readFile(file, 'utf8');
}

/** The model choice of a command: a saved prompt model (its LM overridden by --model), or a template. */
async function modelChoice(
  studio: StudioService,
  o: ModelOptions,
): Promise<{ saved: { name: string; version?: number } } | { spec: PromptModelInput }> {
  const decoding =
    o.maxTokens !== undefined || o.temperature !== undefined || o.seed !== undefined
      ? {
          ...(o.maxTokens !== undefined ? { maxTokens: o.maxTokens } : {}),
          ...(o.temperature !== undefined ? { temperature: o.temperature } : {}),
          ...(o.seed !== undefined ? { seed: o.seed } : {}),
        }
      : undefined;
  if (o.promptModel) {
    if (o.template) throw new CliError('Give --template or --prompt-model, not both.', 2);
    const ref = parseSavedRef(o.promptModel);
    if (!o.model && !o.labels && !o.calibrate && !decoding) return { saved: ref };
    const { spec } = studio.prompt.library.get(ref);
    const labels = splitLabels(o.labels);
    return {
      spec: {
        ...spec,
        ...(o.model ? { model: { id: o.model, files: [] } } : {}),
        ...(labels.length
          ? { labels: labels.map((name) => ({ name, paraphrases: [] })), task: 'classify' as const }
          : {}),
        ...(o.calibrate ? { calibrate: true } : {}),
        ...(decoding ? { decoding: { ...spec.decoding, ...decoding } } : {}),
      },
    };
  }
  if (!o.template) throw new CliError('Give the prompt: --template FILE (with {input}) or --prompt-model NAME.', 2);
  if (!o.model)
    throw new CliError('Give the language model with --model (a catalog id like gpt2, or a model folder).', 2);
  const text = await readTemplate(o.template);
  const name = basename(o.template, extname(o.template));
  const { specFromTemplate } = await import('../studio/prompt/library.js');
  const labels = splitLabels(o.labels);
  try {
    return { spec: specFromTemplate(text, { name, model: o.model, labels, calibrate: o.calibrate, decoding }) };
  } catch (e) {
    throw new CliError(`--template ${o.template}: ${(e as Error).message}`, 2);
  }
}

function inputSource(o: InputOptions) {
  return {
    path: o.inputs,
    ...(o.inputFormat ? { format: o.inputFormat } : {}),
    ...(o.column ? { column: o.column } : {}),
    ...(o.gold ? { goldColumn: o.gold } : {}),
  };
}

/** A one-line status redrawn in place on a terminal; nothing on a pipe. */
class StatusLine {
  readonly #tty: boolean;
  constructor(private readonly stream: NodeJS.WriteStream | NodeJS.WritableStream) {
    this.#tty = Boolean((stream as NodeJS.WriteStream).isTTY);
  }
  show(s: JobStatus): void {
    if (!this.#tty) return;
    const pct = s.total ? ` · ${Math.floor((100 * s.step) / Math.max(1, s.total))}%` : '';
    const eta = s.values.etaSeconds !== undefined ? `, ${formatDuration(s.values.etaSeconds)} left` : '';
    this.stream.write(`\r${s.message}${pct}${eta}\x1b[K`);
  }
  clear(): void {
    if (this.#tty) this.stream.write('\r\x1b[K');
  }
}

async function withPromptStudio<T>(dataDir: string, io: PromptIo, fn: (s: StudioService) => Promise<T>): Promise<T> {
  const studio = await (io.open ?? openCliStudio)(dataDir);
  try {
    return await fn(studio);
  } finally {
    await studio.close();
  }
}

/**
 * Runs until the run ends, with Ctrl+C cancelling it (it stays in the history with its rows); a second
 * Ctrl+C quits at once.
 */
async function follow(studio: StudioService, runId: number, jobId: string, err: StatusLine): Promise<void> {
  const off = studio.on('jobProgress', (s) => s.jobId === jobId && s.state === 'running' && err.show(s));
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    void studio.handlers.jobCancel({ jobId });
  };
  process.on('SIGINT', onSigint);
  try {
    await studio.prompt.wait(runId);
  } finally {
    process.off('SIGINT', onSigint);
    off();
    err.clear();
  }
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

function runSummary(d: PromptRunDetail): string {
  const rate = d.rowsPerSecond ? ` (${d.rowsPerSecond.toFixed(1)} rows/s)` : '';
  const lines = [`${d.rows.toLocaleString('en-US')} rows${rate}; run ${d.runId} is in the history.`];
  const a = d.accuracy;
  if (a) {
    const raw = a.rawAccuracy !== null ? `; without calibration ${pct(a.rawAccuracy)}` : '';
    lines.push(`Accuracy ${pct(a.accuracy)} (${a.correct} of ${a.rows} rows with a gold answer)${raw}.`);
  }
  return lines.join('\n');
}

export async function promptRunCommand(dataDir: string, o: RunOptions, io: PromptIo = {}): Promise<number> {
  if (o.out) checkOutputFile(o.out, o.force); // before anything is computed
  const stderr = io.stderr ?? process.stderr;
  return withPromptStudio(dataDir, io, async (studio) => {
    const model = await modelChoice(studio, o);
    const out = o.out ? createWriteStream(o.out, { flags: o.force ? 'w' : 'wx' }) : (io.stdout ?? process.stdout);
    const { csvHeader, csvLine, jsonlLine } = await import('../studio/prompt/views.js');
    let header: string | null = null;
    let written = 0;
    const write = (rows: PromptRow[], spec: Parameters<typeof csvHeader>[0]) => {
      if (o.format === 'csv' && header === null) out.write((header = csvHeader(spec)));
      for (const r of rows) out.write(o.format === 'csv' ? csvLine(spec, r) : jsonlLine(r));
      written += rows.length;
    };
    let runSpec: Parameters<typeof csvHeader>[0] | null = null;
    const pending: PromptRow[][] = [];
    const run = await studio.prompt.run(
      { model, input: inputSource(o), ...(o.limit ? { limit: o.limit } : {}) },
      {
        allowPaths: true,
        provider: o.provider,
        onRows: (rows) => (runSpec ? write(rows, runSpec) : pending.push(rows)),
      },
    );
    // A reader that went away (`| head`) or a full disk stops the run; what was computed stays in the history.
    let outError: NodeJS.ErrnoException | null = null;
    (out as NodeJS.EventEmitter).on('error', (e: NodeJS.ErrnoException) => {
      if (outError) return;
      outError = e;
      studio.handlers.jobCancel({ jobId: run.jobId }).catch(() => {}); // over already: nothing to stop
    });
    runSpec = studio.prompt.get(run.runId).spec;
    for (const rows of pending.splice(0)) write(rows, runSpec);
    await follow(studio, run.runId, run.jobId, new StatusLine(stderr));
    const d = studio.prompt.get(run.runId);
    if (outError) {
      const e: NodeJS.ErrnoException = outError;
      if (e.code === 'EPIPE') return 0;
      throw new CliError(
        `cannot write ${o.out ?? 'the output'}: ${e.message} (run ${d.runId} keeps its ${d.rows} rows)`,
      );
    }
    if (o.format === 'csv' && header === null) out.write(csvHeader(d.spec));
    if (o.out) {
      (out as NodeJS.WritableStream).end();
      await once(out, 'finish');
    }
    const where = o.out ? ` to ${o.out}` : '';
    if (d.state === 'done') {
      stderr.write(`Done: ${runSummary(d)}${o.out ? `\nWrote ${written} rows${where}.` : ''}\n`);
      return 0;
    }
    if (d.state === 'cancelled') {
      stderr.write(`Cancelled: ${runSummary(d)} (its ${written} rows were written${where}.)\n`);
      return 130;
    }
    throw new CliError(`the run failed after ${written} rows (written${where}; run ${d.runId} keeps them): ${d.error}`);
  });
}

// ---------- explore ----------

function table(rows: string[][], indent = '  '): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map(
      (r) =>
        indent +
        r
          .map((cell, c) => cell.padEnd(widths[c]!))
          .join('  ')
          .trimEnd(),
    )
    .join('\n');
}

function quote(text: string, max = 48): string {
  const flat = text.replace(/\s+/g, ' ');
  return `"${flat.length > max ? `${flat.slice(0, max - 1)}…` : flat}"`;
}

/** The explorer's result for a reader: accuracy across variants, the least stable inputs, each variant. */
export function exploreReport(r: PromptExploreResult, top = 10): string {
  const s = r.stats;
  const out: string[] = [
    `${r.run.title}: ${r.variants.length} variants x ${r.inputs.length} inputs (run ${r.run.runId}).`,
  ];
  if (!s)
    return [...out, `No statistics: the exploration ended ${r.run.state} before every variant was scored.`].join('\n');
  const kinds: [string, ExploreStats][] = [
    ['raw', s.raw],
    ...(s.calibrated ? [['calibrated', s.calibrated] as [string, ExploreStats]] : []),
  ];
  out.push('', 'How stable the answers are (flip rate: share of variants that disagree with the majority)');
  out.push(
    table([
      ['', 'mean flip rate', 'mean entropy'],
      ...kinds.map(([k, x]) => [k, pct(x.meanFlipRate), `${x.meanEntropyBits.toFixed(2)} bits`]),
    ]),
  );
  if (s.raw.accuracy) {
    const graded = r.inputs.filter((x) => x.gold !== null).length;
    out.push('', `Accuracy across variants (${graded} inputs with a gold answer; sd over variants)`);
    out.push(
      table([
        ['', 'mean', 'sd', 'min', 'max'],
        ...kinds.map(([k, x]) => [
          k,
          pct(x.accuracy!.mean),
          pct(x.accuracy!.sd),
          pct(x.accuracy!.min),
          pct(x.accuracy!.max),
        ]),
      ]),
    );
  }
  const order = s.raw.perInput
    .map((x, i) => ({ x, i }))
    .sort((a, b) => b.x.flipRate - a.x.flipRate || b.x.entropyBits - a.x.entropyBits)
    .slice(0, top);
  out.push('', `Least stable inputs (raw${s.calibrated ? ', then calibrated' : ''})`);
  out.push(
    table([
      ['input', 'flip rate', 'entropy', 'majority', ...(s.calibrated ? ['calibrated: flip', 'majority'] : []), 'gold'],
      ...order.map(({ x, i }) => {
        const c = s.calibrated?.perInput[i];
        return [
          quote(r.inputs[i]!.text),
          pct(x.flipRate),
          `${x.entropyBits.toFixed(2)} bits`,
          x.majority,
          ...(c ? [pct(c.flipRate), c.majority] : []),
          r.inputs[i]!.gold ?? '-',
        ];
      }),
    ]),
  );
  const shareCols = r.labels.map((l) => `${l} share`);
  out.push('', `Per variant (accuracy${s.calibrated ? ' raw and calibrated' : ''}; class shares of the raw answers)`);
  out.push(
    table([
      ['variant', 'accuracy', ...(s.calibrated ? ['calibrated'] : []), ...shareCols],
      ...r.variants.map((v, i) => {
        const x = s.raw.perVariant[i]!;
        const c = s.calibrated?.perVariant[i];
        return [
          v.description,
          x.accuracy === null ? '-' : pct(x.accuracy),
          ...(c ? [c.accuracy === null ? '-' : pct(c.accuracy)] : []),
          ...x.shares.map(pct),
        ];
      }),
      ...(s.raw.dataShares
        ? [['(gold answers)', '', ...(s.calibrated ? [''] : []), ...s.raw.dataShares.map(pct)]]
        : []),
    ]),
  );
  return out.join('\n');
}

export async function promptExploreCommand(dataDir: string, o: ExploreOptions, io: PromptIo = {}): Promise<number> {
  const stderr = io.stderr ?? process.stderr;
  const stdout = io.stdout ?? process.stdout;
  return withPromptStudio(dataDir, io, async (studio) => {
    const model = await modelChoice(studio, o);
    const run = await studio.prompt.explore(
      {
        model,
        input: inputSource(o),
        variants: {
          permutations: o.permutations,
          leaveOneOut: !!o.leaveOneOut,
          wordings: !!o.wordings,
          seed: o.seed ?? 0,
        },
        limit: o.limit,
      },
      { allowPaths: true, provider: o.provider },
    );
    await follow(studio, run.runId, run.jobId, new StatusLine(stderr));
    const r = studio.prompt.exploreGet(run.runId);
    if (o.json) printJsonTo(stdout, r);
    else stdout.write(`${exploreReport(r)}\n`);
    if (r.run.state === 'failed') throw new CliError(`the exploration failed: ${r.run.error}`);
    return r.run.state === 'done' ? 0 : 130;
  });
}

function printJsonTo(stream: NodeJS.WritableStream, value: unknown): void {
  if (stream === process.stdout) printJson(value);
  else stream.write(`${JSON.stringify(value, null, 2)}\n`);
}

// ---------- models and history ----------

export async function promptModelsCommand(
  dataDir: string,
  action: 'list' | 'show' | 'export' | 'import' | 'delete' | 'save',
  arg: string | undefined,
  o: ModelOptions & { json?: boolean; output?: string; force?: boolean; name?: string; description?: string },
  io: PromptIo = {},
): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  const stderr = io.stderr ?? process.stderr;
  const need = (what: string) => {
    if (!arg) throw new CliError(`Give the ${what}.`, 2);
    return arg;
  };
  return withPromptStudio(dataDir, io, async (studio) => {
    const lib = studio.prompt.library;
    switch (action) {
      case 'list': {
        const list = lib.list();
        if (o.json) printJsonTo(stdout, list);
        else if (list.length === 0)
          stdout.write(
            'No saved prompt models yet. Save one: fstudio prompt models save --template t.txt --model gpt2 --name NAME\n',
          );
        else
          stdout.write(
            `${table(
              [
                ['name', 'version', 'task', 'model', 'labels', 'examples'],
                ...list.map((m) => [
                  m.name,
                  `v${m.version}`,
                  m.task,
                  m.lm,
                  m.labels.join('|') || '-',
                  String(m.examples),
                ]),
              ],
              '',
            )}\n`,
          );
        return 0;
      }
      case 'show': {
        const got = lib.get(parseSavedRef(need('model name (NAME or NAME@VERSION)')));
        if (o.json) printJsonTo(stdout, got);
        else {
          const s = got.spec;
          const { renderPrompt } = await import('../../shared/prompt-render.js');
          stdout.write(
            [
              `${s.name} v${s.version} (${s.task}; versions ${got.versions.map((v) => v.version).join(', ')})`,
              `Model     ${s.model.id}`,
              ...(s.task === 'classify'
                ? [`Labels    ${s.labels.map((l) => l.name).join(' | ')}${s.calibrate ? ' (calibrated)' : ''}`]
                : []),
              `Examples  ${s.examples.length}`,
              '',
              'The prompt for an input "…":',
              renderPrompt(s, '…'),
            ].join('\n') + '\n',
          );
        }
        return 0;
      }
      case 'export': {
        const f = lib.exportFile(parseSavedRef(need('model name (NAME or NAME@VERSION)')));
        const file = o.output ?? f.fileName;
        if (file === '-') stdout.write(new TextDecoder().decode(f.data));
        else {
          checkOutputFile(file, o.force);
          await writeOutputFile(file, f.data, o.force);
          stderr.write(`Wrote ${file}.\n`);
        }
        return 0;
      }
      case 'import': {
        const file = need('file to import');
        const bytes = await readFile(file).catch((e: NodeJS.ErrnoException) => {
          throw new CliError(`${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
        });
        if (bytes.byteLength > 4 * 1024 * 1024)
          throw new CliError(`${file} is ${formatBytes(bytes.byteLength)}: a prompt model file is at most 4 MB.`);
        const r = await lib.importFile(new Uint8Array(bytes), o.name);
        stdout.write(`Imported ${r.name} as version ${r.version}.\n`);
        return 0;
      }
      case 'delete': {
        const name = need('model name');
        const r = lib.remove(name);
        stdout.write(`Deleted ${name} (${r.deleted} version${r.deleted === 1 ? '' : 's'}).\n`);
        return 0;
      }
      case 'save': {
        if (!o.name) throw new CliError('Give the name to save it under with --name.', 2);
        const choice = await modelChoice(studio, o);
        const spec = 'spec' in choice ? choice.spec : lib.get(choice.saved).spec;
        const r = await lib.save(
          { ...spec, name: o.name, ...(o.description ? { description: o.description } : {}) },
          { allowPaths: true },
        );
        stdout.write(`Saved ${r.name} as version ${r.version}.\n`);
        return 0;
      }
    }
  });
}

export async function promptHistoryCommand(
  dataDir: string,
  text: string | undefined,
  o: { json?: boolean; limit: number },
  io: PromptIo = {},
): Promise<number> {
  const stdout = io.stdout ?? process.stdout;
  return withPromptStudio(dataDir, io, async (studio) => {
    const runs = studio.prompt.runs({ text, offset: 0, limit: o.limit });
    if (o.json) printJsonTo(stdout, runs);
    else if (runs.length === 0) stdout.write(text ? `No prompt runs match "${text}".\n` : 'No prompt runs yet.\n');
    else
      stdout.write(
        `${table(
          [
            ['run', 'state', 'kind', 'title', 'rows', 'accuracy', 'when'],
            ...runs.map((r) => [
              String(r.runId),
              r.state,
              r.kind,
              r.title,
              String(r.rows),
              r.accuracy ? pct(r.accuracy.accuracy) : '-',
              new Date(r.createdAt).toISOString().replace('T', ' ').slice(0, 16),
            ]),
          ],
          '',
        )}\n`,
      );
    return 0;
  });
}

// ---------- registration ----------

function modelOptions(c: Command): Command {
  return c
    .option('--model <id|dir>', 'language model: a catalog id (gpt2, distilgpt2, …) or a model folder')
    .option('--template <file>', 'the few-shot prompt, with {input} where each input goes')
    .option('--prompt-model <name[@version]>', 'a saved prompt model instead of --template')
    .option('--labels <a|b|…>', 'classify with these labels, joined by | (without: generate text)')
    .option('--calibrate', 'contextual calibration (divide by what the prompt gives "N/A", "[MASK]" and "")')
    .option('--max-tokens <n>', 'generation: new tokens at most', whole('--max-tokens', 1, 4096))
    .option('--temperature <x>', 'generation: 0 is greedy', decimal('--temperature', 0, 5))
    .option('--seed <n>', 'generation: seed of the first row (row i gets seed + i)', whole('--seed', 0, 2 ** 31 - 1))
    .addOption(
      new Option('--provider <name>', 'execution provider (default: the one in Settings)').choices(PROVIDER_CHOICES),
    );
}

function inputOptions(c: Command): Command {
  return c
    .requiredOption('--inputs <file>', 'inputs: a .txt (one a line), .csv/.tsv (a column) or .jsonl (a field)')
    .addOption(
      new Option('--input-format <fmt>', 'the inputs file format (default: from its extension)').choices([
        'txt',
        'csv',
        'tsv',
        'jsonl',
      ]),
    )
    .option('--column <name>', 'the CSV column or JSONL field holding the input')
    .option('--gold <name>', 'the column or field holding the right answer (for accuracy)');
}

function guard(fn: () => Promise<number>, setExit: (code: number) => void): Promise<void> {
  return fn().then(setExit);
}

export function registerPromptCommands(
  program: Command,
  getDataDir: (cmd: Command) => string,
  setExit: (code: number) => void,
): void {
  const prompt = program
    .command('prompt')
    .description('Prompt Lab: few-shot prompts on a language model as classifiers and question answerers.')
    .addHelpText(
      'after',
      examples([
        'fstudio prompt run --model gpt2 --template capitals.txt --inputs countries.txt',
        'fstudio prompt run --model gpt2 --template sentiment.txt --labels "Positive|Negative" --inputs reviews.csv --column text --gold label --calibrate --out results.csv',
        'fstudio prompt explore --prompt-model Sentiment --inputs reviews.csv --gold label --permutations 5 --leave-one-out',
        'fstudio prompt models list',
      ]),
    );

  inputOptions(
    modelOptions(
      prompt.command('run').description('Run a prompt over a file of inputs; print a row per input as it comes.'),
    ),
  )
    .option('--limit <n>', 'only the first n inputs', whole('--limit', 1, 10_000_000))
    .addOption(new Option('--format <fmt>', 'output format').choices(['csv', 'jsonl']).default('csv'))
    .option('--out <file>', 'write the rows to this file instead of stdout')
    .option('--force', 'replace an existing --out file')
    .addHelpText(
      'after',
      examples([
        'fstudio prompt run --model gpt2 --template capitals.txt --inputs countries.txt',
        'fstudio prompt run --model gpt2 --template sentiment.txt --labels "Positive|Negative" --inputs reviews.csv --column text --gold label --calibrate --out results.csv',
        'fstudio prompt run --prompt-model Sentiment@2 --inputs reviews.jsonl --format jsonl > results.jsonl',
      ]) +
        '\nA template is the prompt as you would write it; the last block holds {input}:\n' +
        '  Q: Capital of India?\n  A: Delhi\n\n  Q: {input}\n  A:\n',
    )
    .action((o: RunOptions, cmd: Command) => guard(() => promptRunCommand(getDataDir(cmd), o), setExit));

  inputOptions(
    modelOptions(
      prompt
        .command('explore')
        .description(
          'How uncertain a prompt is: the answers under other example orders, without each example, and other label words.',
        ),
    ),
  )
    .option('--permutations <n>', 'orderings of the examples besides the original', whole('--permutations', 0, 100), 5)
    .option('--leave-one-out', 'also each example left out')
    .option('--wordings', "also each label's paraphrases (saved models' labels)")
    .option('--limit <n>', 'inputs to explore', whole('--limit', 1, 1000), 50)
    .option('--json', 'print everything as JSON')
    .addHelpText(
      'after',
      examples([
        'fstudio prompt explore --model gpt2 --template sentiment.txt --labels "Positive|Negative" --inputs reviews.csv --gold label',
        'fstudio prompt explore --prompt-model Sentiment --inputs reviews.csv --gold label --permutations 10 --leave-one-out --json',
      ]),
    )
    .action((o: ExploreOptions, cmd: Command) => guard(() => promptExploreCommand(getDataDir(cmd), o), setExit));

  const models = prompt
    .command('models')
    .description('Saved prompt models: list, show, save, export, import, delete.')
    .argument('[action]', 'list (default), show, save, export, import or delete', 'list')
    .argument('[name|file]', 'NAME or NAME@VERSION (a file for import)')
    .option('--json', 'print as JSON (list, show)')
    .option('-o, --output <file>', 'export: file to write, - for stdout (default: the name and version)')
    .option('--force', 'export: replace an existing file')
    .option('--name <name>', 'save: the name; import: save under this name')
    .option('--description <text>', 'save: what it is for');
  modelOptions(models)
    .addHelpText(
      'after',
      examples([
        'fstudio prompt models',
        'fstudio prompt models save --name Sentiment --model gpt2 --template sentiment.txt --labels "Positive|Negative"',
        'fstudio prompt models show Sentiment@2',
        'fstudio prompt models export Sentiment -o sentiment.json',
        'fstudio prompt models import sentiment.json',
        'fstudio prompt models delete Sentiment',
      ]),
    )
    .action((action: string, arg: string | undefined, o: Parameters<typeof promptModelsCommand>[3], cmd: Command) => {
      const actions = ['list', 'show', 'save', 'export', 'import', 'delete'] as const;
      const a = actions.find((x) => x === action);
      if (!a) throw new CliError(`Unknown action "${action}": use ${actions.join(', ')}.`, 2);
      return guard(() => promptModelsCommand(getDataDir(cmd), a, arg, o), setExit);
    });

  prompt
    .command('history')
    .description('Past prompt runs and explorations, newest first; words search their model, labels and file.')
    .argument('[text]', 'words to find')
    .option('--limit <n>', 'runs to list', whole('--limit', 1, 500), 20)
    .option('--json', 'print as JSON')
    .addHelpText('after', examples(['fstudio prompt history', 'fstudio prompt history reviews --json']))
    .action((text: string | undefined, o: { json?: boolean; limit: number }, cmd: Command) =>
      guard(() => promptHistoryCommand(getDataDir(cmd), text, o), setExit),
    );
}
