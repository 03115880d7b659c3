// `npm run bench -- text` (or `node --import tsx bench/text.ts`): Prompt Lab's and Classify's model work at
// real size, the studio (through StudioCompute and the compute worker, as the app runs it) against the same
// work in PyTorch (bench/_text_torch.py: our own minimal GPT-2 and CLIP vision tower, Debian's python3-torch,
// fp32, the same thread count), measured in this one run.
//
// Models (bench/_text-models.ts): a GPT-2-small-sized (124M) random causal LM written by the studio's writer
// (transformers.js folder, and model.safetensors with the same weights, which PyTorch loads), and CLIP ViT-B/32
// with random weights (model.safetensors, loaded by both sides). Cases:
//   score     label scoring, rows/s: N few-shot prompts of about 60 tokens, two single-token labels ("single")
//             and two multi-token labels ("multi": a second pass over the prompts' caches), in Prompt Lab's calls
//             of SCORE_BATCH prompts; PyTorch takes the studio's batches (read from its progress) and does the
//             same passes (all positions' logits, as the ONNX graph and Hugging Face's GPT2LMHeadModel give)
//   generate  greedy generation, tokens/s: 64 new tokens after a prompt of about 32 tokens, batch 1, KV cache
//   classify  zero-shot classification, images/s: PNG files in the classify page's batches of 16 (decode,
//             CLIP's preprocessing, vision tower, scores against 10 label weights embedded once, untimed)
// Per case, `rounds` times, a studio child process then a PyTorch one (load from other processes weighs on
// both); each runs the case once as a warm-up, then --reps timed runs. Reported: the best run and the median,
// the rate, the time ratio studio / PyTorch (<= 1: no slower), CPU time per run, each side's peak RSS (the
// studio child's covers its compute worker thread), and a cross-check that both computed the same thing (log-prob
// difference, the generated tokens, probability difference). Prints a table and writes bench-results/text.json
// (and docs/benchmarks/text.json with --write-docs).
//
// PyTorch runs with OMP_WAIT_POLICY=PASSIVE: Debian's torch uses OpenMP for its own kernels and OpenBLAS's
// pthread build (own threads) for matmuls, and with OpenMP's default spin-waiting the two pools fight over the
// cores; measured on a quiet 2-core machine, a GPT-2-small decoding step took 108 ms with the default and 63 ms
// with PASSIVE, and a 16x64-token pass 1.64 s and 1.45 s. --torch-default-env leaves the variable as it is.
//
// Options: --quick (16 prompts, 16 new tokens, 16 images, 1 round, 1 rep: a smoke test), --rounds N (default 2),
// --reps N (timed runs per child, default 2), --no-torch, --torch-default-env, --keep (keep the temp folder),
// --write-docs.
import { printReport, runReportingChild } from './_child.js';
import { machine, machineLine } from './_machine.js';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensembleWeight, scoreImage } from '../src/main/engine/classify/zeroshot.js';
import { TEMPLATE_SETS, fillTemplate } from '../src/main/engine/classify/templates.js';
import { ortVersion } from '../src/main/engine/runtime/ort.js';
import { RunnerSet } from '../src/main/engine/runtime/runner.js';
import { readLogitScale } from '../src/main/studio/classify/clip-model.js';
import { BATCH as CLASSIFY_BATCH } from '../src/main/studio/classify/service.js';
import { SCORE_BATCH } from '../src/main/studio/prompt/scoring.js';
import { StudioCompute } from '../src/main/studio/compute.js';
import { clipPixels, stackPixels } from '../src/main/studio/images-clip.js';
import { ModelManager } from '../src/main/studio/models/manager.js';
import {
  CLASS_LABELS,
  GENERATION_PROMPT,
  LABEL_SETS,
  scoringPrompts,
  writeBenchImages,
  writeBenchModels,
} from './_text-models.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = (f: string) => argv.includes(f);
const opt = (f: string) => (argv.includes(f) ? argv[argv.indexOf(f) + 1] : undefined);
const quick = flag('--quick');
const rounds = Number(opt('--rounds') ?? (quick ? 1 : 2));
const reps = Number(opt('--reps') ?? (quick ? 1 : 2));
const N_PROMPTS = quick ? 16 : 64;
const NEW_TOKENS = quick ? 16 : 64;
const N_IMAGES = quick ? 16 : 64;
const THREADS = os.cpus().length;
const PYTHON = '/usr/bin/python3';
const TORCH_SIDE = path.join(root, 'bench/_text_torch.py');
/** See the header: OpenMP's spin-waiting against OpenBLAS's own threads. */
const TORCH_ENV: Record<string, string> = flag('--torch-default-env') ? {} : { OMP_WAIT_POLICY: 'PASSIVE' };
const CASES = ['score', 'generate', 'classify'] as const;
type Case = (typeof CASES)[number];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// ------------------------------------------------------------------------------------------------ studio child

interface Spec {
  case: Case;
  dir: string;
  gpt2Dir: string;
  clipDir: string;
  /** The work (the child takes it from here: options reach the parent only). */
  prompts: string[];
  generationPrompt: string;
  newTokens: number;
  images: string[];
  reps: number;
}

interface Timed {
  firstMs: number;
  ms: number[];
  cpuMs: number[];
}

interface ChildReport {
  case: Case;
  /** Per measured set (score: 'single', 'multi'; else the case's name). */
  runs: Record<string, Timed>;
  maxRssBytes: number;
  /** score: logprobs per set and the batches the studio made; generate: tokens and text; classify: probs. */
  results: Record<string, unknown>;
}

/** fn once (the warm-up, with any load or graph build), then `n` timed runs: wall and process CPU time. */
async function timed<T>(fn: () => Promise<T>, n: number): Promise<Timed & { result: T }> {
  let t = performance.now();
  let result = await fn();
  const firstMs = performance.now() - t;
  const ms: number[] = [];
  const cpuMs: number[] = [];
  for (let k = 0; k < n; k++) {
    const c = process.cpuUsage();
    t = performance.now();
    result = await fn();
    ms.push(performance.now() - t);
    const d = process.cpuUsage(c);
    cpuMs.push((d.user + d.system) / 1000);
  }
  return { firstMs, ms, cpuMs, result };
}

/**
 * As Prompt Lab scores (PromptScorer.classify): calls of SCORE_BATCH prompts into the compute worker, which
 * batches each call's prompts as TextLm does; the batches it made are read from its progress.
 */
async function studioScore(compute: StudioCompute, spec: Spec): Promise<Omit<ChildReport, 'maxRssBytes'>> {
  const runs: Record<string, Timed> = {};
  const results: Record<string, unknown> = {};
  for (const [name, continuations] of Object.entries(LABEL_SETS)) {
    let batches: number[] = [];
    const { result, ...t } = await timed(async () => {
      batches = [];
      const logprobs: number[][] = [];
      for (let at = 0; at < spec.prompts.length; at += SCORE_BATCH) {
        const done: number[] = [];
        const r = await compute.textScore({
          model: spec.gpt2Dir,
          provider: 'cpu',
          prompts: spec.prompts.slice(at, at + SCORE_BATCH),
          continuations,
          onProgress: (n) => done.push(n),
        });
        batches.push(...done.map((d, k) => d - (done[k - 1] ?? 0)));
        logprobs.push(...r.result.logprobs);
      }
      return logprobs;
    }, spec.reps);
    runs[name] = t;
    results[name] = { logprobs: result, batches };
  }
  return { case: 'score', runs, results };
}

async function studioGenerate(compute: StudioCompute, spec: Spec): Promise<Omit<ChildReport, 'maxRssBytes'>> {
  const { result, ...t } = await timed(
    async () =>
      (
        await compute.textGenerate({
          model: spec.gpt2Dir,
          provider: 'cpu',
          prompt: spec.generationPrompt,
          maxTokens: spec.newTokens,
          temperature: 0,
          topP: 1,
          stop: [],
          seed: 0,
        })
      ).result,
    spec.reps,
  );
  return {
    case: 'generate',
    runs: { generate: t },
    results: { tokens: result.tokens, text: result.text, finish: result.finish },
  };
}

/** As the classify page: files decoded one by one (sharp), one compute-worker call per batch, scored here. */
async function studioClassify(
  compute: StudioCompute,
  models: ModelManager,
  spec: Spec,
): Promise<Omit<ChildReport, 'maxRssBytes'>> {
  const model = await models.resolve('clip', spec.clipDir);
  const scale = (await readLogitScale(model)).value;
  const template = TEMPLATE_SETS.plain.templates[0];
  const texts = CLASS_LABELS.map((l) => fillTemplate(template, l));
  const text = (await compute.embedTexts({ model: model.ref, provider: 'cpu', texts })).result;
  const weights = text.embeds.map((e) => ensembleWeight([e]));
  const S = 224;
  const { result, ...t } = await timed(async () => {
    const probs: number[][] = [];
    for (let i = 0; i < spec.images.length; i += CLASSIFY_BATCH) {
      const files = spec.images.slice(i, i + CLASSIFY_BATCH);
      const pixels = stackPixels(await Promise.all(files.map((f) => clipPixels(f, S))), S);
      const r = (await compute.embedPixels({ model: model.ref, provider: 'cpu', pixels })).result;
      for (const e of r.embeds) probs.push(scoreImage(e, weights, scale).probs);
    }
    return probs;
  }, spec.reps);
  return {
    case: 'classify',
    runs: { classify: t },
    results: { probs: result, weights: weights.map((w) => Array.from(w)), scale },
  };
}

async function child(spec: Spec): Promise<void> {
  const runners = new RunnerSet();
  const models = new ModelManager(path.join(spec.dir, 'data'));
  const compute = new StudioCompute(models, runners);
  try {
    const r =
      spec.case === 'score'
        ? await studioScore(compute, spec)
        : spec.case === 'generate'
          ? await studioGenerate(compute, spec)
          : await studioClassify(compute, models, spec);
    const report: ChildReport = { ...r, maxRssBytes: process.resourceUsage().maxRSS * 1024 };
    printReport(report);
  } finally {
    await runners.close();
  }
}

function runChild(spec: Spec): Promise<ChildReport> {
  return runReportingChild<ChildReport>(
    fileURLToPath(import.meta.url),
    ['--child', JSON.stringify(spec)],
    `studio child ${spec.case}`,
  );
}

// ------------------------------------------------------------------------------------------------ PyTorch

interface TorchReport {
  ms: Record<string, number[]>;
  cpu_ms: Record<string, number[]>;
  results: Record<string, unknown>;
  max_rss_kb: number;
  load_ms: number;
  threads: number;
  torch: string;
}

function runTorch(specFile: string, spec: object): TorchReport | { error: string } {
  writeFileSync(specFile, JSON.stringify(spec));
  const r = spawnSync(PYTHON, [TORCH_SIDE, specFile], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    env: { ...process.env, ...TORCH_ENV },
  });
  const line = r.stdout?.split('\n').find((l) => l.startsWith('{'));
  if (r.status !== 0 || !line) {
    return { error: (r.stderr || r.error?.message || 'no output').trim().split('\n').slice(-3).join(' ') };
  }
  return JSON.parse(line) as TorchReport;
}

// ------------------------------------------------------------------------------------------------ main

type Tokenize = (s: string) => number[];

async function tokenizerOf(dir: string): Promise<{ encode: Tokenize; decode: (ids: number[]) => string }> {
  const tf = await import('@huggingface/transformers');
  tf.env.allowRemoteModels = false;
  tf.env.localModelPath = path.dirname(dir) + path.sep;
  const tok = await tf.AutoTokenizer.from_pretrained(path.basename(dir), { local_files_only: true });
  return {
    encode: (s) => tok.encode(s, { add_special_tokens: false }),
    decode: (ids) => tok.decode(ids, { skip_special_tokens: true }),
  };
}

/** What the PyTorch side of a case needs from the studio's first run (its batches, its label weights). */
function torchSpec(c: Case, spec: Spec, first: ChildReport, tok: Tokenize, eosId: number): object {
  const base = { case: c, threads: THREADS, reps: spec.reps, gpt2_dir: spec.gpt2Dir, clip_dir: spec.clipDir };
  if (c === 'score') {
    const sets = first.results as Record<string, { batches: number[] }>;
    const batches = sets.single!.batches;
    for (const [name, s] of Object.entries(sets)) {
      if (s.batches.join() !== batches.join()) throw new Error(`the studio batched set ${name} differently`);
    }
    const labelSets = Object.fromEntries(Object.entries(LABEL_SETS).map(([name, ls]) => [name, ls.map(tok)]));
    return { ...base, score: { prompts: spec.prompts.map(tok), batches, pad: eosId, label_sets: labelSets } };
  }
  if (c === 'generate') {
    return { ...base, generate: { prompt: tok(spec.generationPrompt), new_tokens: spec.newTokens, eos: eosId } };
  }
  const r = first.results as { weights: number[][]; scale: number };
  return { ...base, classify: { images: spec.images, weights: r.weights, scale: r.scale, batch: CLASSIFY_BATCH } };
}

/** The largest |a - b| over two tables of the same shape. */
const maxDiff = (a: number[][], b: number[][]) =>
  Math.max(...a.flatMap((r, i) => r.map((x, j) => Math.abs(x - b[i]![j]!))));

/**
 * How far apart the two sides' answers are (the same weights on the same inputs), and whether that is within
 * float32 noise: log-probs within 1e-3, the same greedy tokens (their text), the same top class.
 */
function crossCheck(
  c: Case,
  set: string,
  studio: ChildReport,
  torch: TorchReport,
  decode: (ids: number[]) => string,
): Row['check'] {
  if (c === 'score') {
    const d = maxDiff((studio.results[set] as { logprobs: number[][] }).logprobs, torch.results[set] as number[][]);
    return { maxLogprobDiff: d, agrees: d < 1e-3 };
  }
  if (c === 'generate') {
    const ids = torch.results.generate as number[];
    const r = studio.results as { tokens: number; text: string };
    return {
      studioTokens: r.tokens,
      torchTokens: ids.length,
      agrees: r.tokens === ids.length && decode(ids) === r.text,
    };
  }
  const a = (studio.results as { probs: number[][] }).probs;
  const b = torch.results.classify as number[][];
  const top = (p: number[]) => p.indexOf(Math.max(...p));
  return { maxProbDiff: maxDiff(a, b), agrees: a.every((r, i) => top(r) === top(b[i]!)) && maxDiff(a, b) < 1e-3 };
}

interface Row {
  case: string;
  unit: string;
  /** Units of work per timed run (rows, new tokens, images). */
  work: number;
  studioMs: number;
  studioMedianMs: number;
  studioRunsMs: number[];
  studioRate: number;
  studioCpuMs: number;
  studioFirstRunMs: number;
  studioPeakRssGB: number;
  torchMs: number;
  torchMedianMs: number;
  torchRunsMs: number[] | null;
  torchRate: number;
  torchCpuMs: number;
  torchPeakRssGB: number;
  torch: string;
  /** Best studio run / best PyTorch run (<= 1: the studio is no slower). */
  ratioToTorch: number;
  check: Record<string, number | string | boolean>;
}

function summarize(
  c: Case,
  set: string,
  studio: ChildReport[],
  torch: TorchReport[],
  torchError: string,
  check: Row['check'],
): Row {
  const ms = studio.flatMap((r) => r.runs[set]!.ms);
  const tms = torch.flatMap((r) => r.ms[set]!);
  const results = studio[0]!.results;
  const work = c === 'score' ? N_PROMPTS : c === 'generate' ? (results as { tokens: number }).tokens : N_IMAGES;
  const best = Math.min(...ms);
  const tBest = tms.length ? Math.min(...tms) : NaN;
  return {
    case:
      c === 'score'
        ? `label scoring, ${set === 'single' ? 'single-token' : 'multi-token'} labels`
        : c === 'generate'
          ? 'greedy generation'
          : 'CLIP classification',
    unit: c === 'score' ? 'rows/s' : c === 'generate' ? 'tokens/s' : 'images/s',
    work,
    studioMs: best,
    studioMedianMs: median(ms),
    studioRunsMs: ms,
    studioRate: work / (best / 1000),
    studioCpuMs: median(studio.flatMap((r) => r.runs[set]!.cpuMs)),
    studioFirstRunMs: studio[0]!.runs[set]!.firstMs,
    studioPeakRssGB: Math.max(...studio.map((r) => r.maxRssBytes)) / 1e9,
    torchMs: tBest,
    torchMedianMs: tms.length ? median(tms) : NaN,
    torchRunsMs: tms.length ? tms : null,
    torchRate: work / (tBest / 1000),
    torchCpuMs: tms.length ? median(torch.flatMap((r) => r.cpu_ms[set]!)) : NaN,
    torchPeakRssGB: torch.length ? (Math.max(...torch.map((r) => r.max_rss_kb)) * 1024) / 1e9 : NaN,
    torch: torch.length ? `${torch[0]!.torch}, ${torch[0]!.threads} threads` : torchError,
    ratioToTorch: best / tBest,
    check,
  };
}

async function runCase(
  c: Case,
  spec: Spec,
  tok: Awaited<ReturnType<typeof tokenizerOf>>,
  eosId: number,
): Promise<Row[]> {
  const studio: ChildReport[] = [];
  const torch: TorchReport[] = [];
  let torchError = flag('--no-torch') ? 'skipped (--no-torch)' : '';
  for (let r = 0; r < rounds; r++) {
    studio.push(await runChild(spec));
    if (torchError) continue;
    const t = runTorch(path.join(spec.dir, `torch-${c}.json`), torchSpec(c, spec, studio[0]!, tok.encode, eosId));
    if ('ms' in t) torch.push(t);
    else {
      torchError = t.error;
      console.log(`PyTorch ${c} failed: ${t.error}`);
    }
  }
  const sets = Object.keys(studio[0]!.runs);
  return sets.map((set) => {
    const check = torch.length ? crossCheck(c, set, studio[0]!, torch[0]!, tok.decode) : {};
    if (check.agrees === false)
      console.log(`WARNING: the studio and PyTorch disagree on ${c} ${set}: ${JSON.stringify(check)}`);
    return summarize(c, set, studio, torch, torchError, check);
  });
}

const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '-');

function table(rows: Row[]): string {
  return [
    '| case | studio (median) | PyTorch (median) | time ratio studio / PyTorch | peak RSS studio / PyTorch | same answers |',
    '|---|---|---|---|---|---|',
    ...rows.map(
      (x) =>
        `| ${x.case} (${x.work} per run) | ${fmt(x.studioRate)} ${x.unit} (${fmt((x.work / x.studioMedianMs) * 1000)}) | ` +
        `${fmt(x.torchRate)} ${x.unit} (${fmt((x.work / x.torchMedianMs) * 1000)}) | ${fmt(x.ratioToTorch, 2)}x | ` +
        `${fmt(x.studioPeakRssGB, 2)} / ${fmt(x.torchPeakRssGB, 2)} GB | ${Object.entries(x.check)
          .map(([k, v]) => `${k} ${typeof v === 'number' && !Number.isInteger(v) ? v.toExponential(1) : String(v)}`)
          .join(', ')} |`,
    ),
  ].join('\n');
}

async function main() {
  const load = os.loadavg().map((l) => l.toFixed(2));
  console.log(
    `machine: ${machineLine()}, ` +
      `onnxruntime-node ${ortVersion()}${quick ? ', --quick' : ''}; load average ${load.join(' ')}`,
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fstudio-bench-text-'));
  const rows: Row[] = [];
  try {
    const t0 = performance.now();
    const { gpt2Dir, clipDir, eosId } = await writeBenchModels(dir);
    const images = await writeBenchImages(path.join(dir, 'images'), N_IMAGES);
    mkdirSync(path.join(dir, 'data'), { recursive: true });
    console.log(
      `random GPT-2 small (124M) and CLIP ViT-B/32 and ${N_IMAGES} images written in ${((performance.now() - t0) / 1000).toFixed(1)} s (${dir})`,
    );
    const tok = await tokenizerOf(gpt2Dir);
    const prompts = scoringPrompts(N_PROMPTS);
    const lengths = prompts.map((p) => tok.encode(p).length);
    console.log(
      `scoring: ${N_PROMPTS} prompts of ${Math.min(...lengths)}-${Math.max(...lengths)} tokens; labels ${Object.entries(
        LABEL_SETS,
      )
        .map(([n, ls]) => `${n}: ${ls.map((l) => `"${l}" (${tok.encode(l).length})`).join(', ')}`)
        .join('; ')}; generation: ${NEW_TOKENS} tokens after ${tok.encode(GENERATION_PROMPT).length}; ` +
        `${rounds} round(s) of ${reps} timed run(s) per side, PyTorch with ${THREADS} threads, env ${JSON.stringify(TORCH_ENV)}\n`,
    );
    for (const c of CASES) {
      const spec: Spec = {
        case: c,
        dir,
        gpt2Dir,
        clipDir,
        prompts,
        generationPrompt: GENERATION_PROMPT,
        newTokens: NEW_TOKENS,
        images,
        reps,
      };
      const caseRows = await runCase(c, spec, tok, eosId);
      for (const x of caseRows) {
        console.log(
          `${x.case}: studio ${fmt(x.studioRate)} ${x.unit} (best of ${x.studioRunsMs.length} ${fmt(x.studioMs, 0)} ms, median ${fmt(x.studioMedianMs, 0)}), ` +
            `PyTorch ${fmt(x.torchRate)} ${x.unit} (${fmt(x.torchMs, 0)} ms, median ${fmt(x.torchMedianMs, 0)}), ratio ${fmt(x.ratioToTorch, 2)}; ` +
            `CPU ms/run ${fmt(x.studioCpuMs, 0)} / ${fmt(x.torchCpuMs, 0)}; peak RSS ${fmt(x.studioPeakRssGB, 2)} / ${fmt(x.torchPeakRssGB, 2)} GB; ` +
            `first studio run ${fmt(x.studioFirstRunMs / 1000)} s; ${JSON.stringify(x.check)}`,
        );
      }
      rows.push(...caseRows);
    }
    const t = table(rows);
    console.log(`\n${t}\n`);
    const json = JSON.stringify(
      {
        date: new Date().toISOString(),
        machine: machine(),
        loadAverageAtStart: load.map(Number),
        node: process.version,
        ort: ortVersion(),
        quick,
        rounds,
        reps,
        threads: THREADS,
        torchEnv: TORCH_ENV,
        rows,
        table: t,
      },
      null,
      1,
    );
    const outs = [path.join(root, 'bench-results', 'text.json')];
    if (flag('--write-docs')) outs.push(path.join(root, 'docs', 'benchmarks', 'text.json'));
    for (const out of outs) {
      mkdirSync(path.dirname(out), { recursive: true });
      writeFileSync(out, json);
      console.log(`written ${path.relative(root, out)}`);
    }
  } finally {
    if (flag('--keep')) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

if (flag('--child')) {
  await child(JSON.parse(opt('--child')!) as Spec);
} else {
  await main();
}
