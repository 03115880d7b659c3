// `npm run bench -- generate` (or `node --import tsx bench/generate.ts`): one VQGAN+CLIP step at real size,
// the studio's `vqclip.generate` task against the same step in PyTorch, measured in this one run.
//
// Writes random models with the real architectures and file formats into a temp folder (CLIP ViT-B/32 in
// Hugging Face's layout: config.json + model.safetensors + a tokenizer.json; the f16 16384 VQGAN as a
// Lightning last.ckpt torch zip + model.yaml), then per configuration (128² with 8 cutouts, 256² with 32):
//   build    a child process runs the task once with a cold graph cache (graph built, weights files written)
//   measure  a child process (warm cache, as the studio's second run) runs the task in a DeviceRunner's worker:
//            ms per step, the main thread's event-loop lag p99 while it runs,
//            the process's peak RSS (the worker's: the main thread only waits), and the matmul peak of the
//            same worker (1024³ and 2048³ MatMuls, the best run) for achieved GFLOP/s as a fraction of it
//   profile  (--profile) the same with ORT's per-node profile: time per op type
//   pytorch  Debian's PyTorch (/usr/bin/python3, OpenBLAS) runs tests/fixtures/vqclip/vqclip_torch.py's step
//            (the same decoder + ViT + cutouts + loss + Adam, fp32, the same threads): ms per step, peak RSS
// measure and pytorch run in turn, --rounds times (default 2), so that load from other processes weighs on
// both; the time per step is the best measured step of each side (each run's first step, a warm-up, left
// out), the median beside it. The ratio is studio / PyTorch.
// FLOP per step from engine/graph/flops.ts over the step graph. Prints a table and writes
// bench-results/generate.json.
//
// Options: --quick (128² with 4 cutouts only, 2 measured steps, 1 round: a smoke test), --steps N (measured
// steps per run, default 3), --rounds N, --profile, --keep (keep the temp folder), --no-torch, --provider P.
import { printReport, runReportingChild } from './_child.js';
import { machine, machineLine } from './_machine.js';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ortVersion, type ProviderName } from '../src/main/engine/runtime/ort.js';
import { DeviceRunner } from '../src/main/engine/runtime/runner.js';
import { runTask } from '../src/main/engine/task-client.js';
import { type GenerateStream, type GenerateTaskArgs } from '../src/main/engine/vqclip/index.js';
import { benchTaskArgs, matmulPeak, stepFlops, writeClip, writeClipWeights, writeVqgan } from './_generate-models.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const flag = (f: string) => argv.includes(f);
const opt = (f: string) => (argv.includes(f) ? argv[argv.indexOf(f) + 1] : undefined);
const quick = flag('--quick');
const provider = (opt('--provider') ?? 'cpu') as ProviderName;
const measured = Number(opt('--steps') ?? (quick ? 2 : 3));
const rounds = Number(opt('--rounds') ?? (quick ? 1 : 2));
const CONFIGS = quick
  ? [{ size: 128, cuts: 4 }]
  : [
      { size: 128, cuts: 8 },
      { size: 256, cuts: 32 },
    ];
const PYTHON = '/usr/bin/python3';
const TORCH_STEP = path.join(root, 'tests/fixtures/vqclip/vqclip_torch.py');

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

// ------------------------------------------------------------------------------------------------ children

interface ChildReport {
  mode: 'build' | 'measure' | 'profile';
  stepMs: number[];
  /** The process's CPU time (all threads) between step messages. */
  stepCpuMs: number[];
  setupMs: number;
  statuses: string[];
  maxRssBytes: number;
  lagP99Ms: number;
  lagMaxMs: number;
  matmulGflops?: number;
  profile?: Record<string, number>;
}

async function child(spec: { mode: ChildReport['mode']; dir: string; size: number; cuts: number; steps: number }) {
  const runner = new DeviceRunner('bench-generate');
  try {
    let matmulGflops: number | undefined;
    if (spec.mode === 'measure') {
      // The matmul peak of this worker: 1024³ and 2048³ MatMuls, the best run of either.
      matmulGflops = await matmulPeak(runner, provider, [1024, 2048]);
    }
    const a: GenerateTaskArgs = {
      ...benchTaskArgs(spec.dir, { size: spec.size, cuts: spec.cuts, steps: spec.steps, provider }),
      ...(spec.mode === 'profile' ? { profile: true } : {}),
    };
    const stepMs: number[] = [];
    const stepCpuMs: number[] = [];
    let cpuAt = process.cpuUsage();
    const statuses: string[] = [];
    const lags: number[] = [];
    let measuring = false;
    const period = 5;
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      if (measuring) lags.push(Math.max(0, now - last - period));
      last = now;
    }, period);
    const t0 = performance.now();
    let setupMs = 0;
    const result = await runTask<'vqclip.generate', GenerateStream>(runner, 'vqclip.generate', a, {
      onStream: (m) => {
        if (m.type === 'status') statuses.push(m.message);
        if (m.type === 'step') {
          if (m.step === 0) setupMs = performance.now() - t0 - m.ms;
          stepMs.push(m.ms);
          const c = process.cpuUsage(cpuAt);
          cpuAt = process.cpuUsage();
          stepCpuMs.push((c.user + c.system) / 1000);
          measuring = true; // lag is measured from the first step on (setup reads files in the worker too)
        }
      },
    });
    clearInterval(timer);
    const report: ChildReport = {
      mode: spec.mode,
      stepMs,
      stepCpuMs,
      setupMs,
      statuses,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      lagP99Ms: lags.length ? quantile(lags, 0.99) : NaN,
      lagMaxMs: lags.length ? Math.max(...lags) : NaN,
      ...(matmulGflops !== undefined ? { matmulGflops } : {}),
      ...(result.profile ? { profile: result.profile } : {}),
    };
    printReport(report);
  } finally {
    await runner.close();
  }
}

function runChild(spec: Parameters<typeof child>[0]): Promise<ChildReport> {
  return runReportingChild<ChildReport>(
    fileURLToPath(import.meta.url),
    ['--child', JSON.stringify(spec), '--provider', provider],
    `child ${spec.mode} ${spec.size}/${spec.cuts}`,
  );
}

interface TorchReport {
  ms: number[];
  cpu_ms: number[];
  max_rss_kb: number;
  threads: number;
  torch: string;
}

function runTorch(size: number, cuts: number, steps: number): TorchReport | { error: string } {
  const r = spawnSync(
    PYTHON,
    [
      TORCH_STEP,
      'bench',
      '--size',
      String(size),
      '--cuts',
      String(cuts),
      '--steps',
      String(steps),
      '--threads',
      String(os.cpus().length),
    ],
    { cwd: root, encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  const line = r.stdout?.split('\n').find((l) => l.startsWith('{'));
  if (r.status !== 0 || !line)
    return { error: (r.stderr || r.error?.message || 'no output').trim().split('\n').slice(-3).join(' ') };
  return JSON.parse(line) as TorchReport;
}

// ------------------------------------------------------------------------------------------------ main

interface Row {
  config: string;
  /** Best measured step (see main); the median beside it. */
  msPerStep: number;
  medianMsPerStep: number;
  torchMedianMsPerStep: number;
  stepsMs: number[];
  gflopPerStep: number;
  gflops: number;
  matmulPeakGflops: number;
  fractionOfPeak: number;
  peakRssGB: number;
  buildPeakRssGB: number;
  firstRunSeconds: number;
  warmSetupSeconds: number;
  lagP99Ms: number;
  lagMaxMs: number;
  torchMsPerStep: number;
  torchStepsMs: number[] | null;
  cpuMsPerStep: number;
  torchCpuMsPerStep: number;
  cpuRatioToTorch: number;
  torchPeakRssGB: number;
  torch: string;
  ratioToTorch: number;
  flopsByOp: Record<string, number>;
  profileMsByOp?: Record<string, number>;
  profileSteps?: number;
}

async function main() {
  console.log(`machine: ${machineLine()}`);
  console.log(
    `onnxruntime-node ${ortVersion()}, provider ${provider}${quick ? ', --quick' : ''}; load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fstudio-bench-generate-'));
  const rows: Row[] = [];
  try {
    let t0 = performance.now();
    writeClip(path.join(dir, 'clip'), path.join(root, 'tests/fixtures/clip/tiny/tokenizer.json'));
    await writeClipWeights(path.join(dir, 'clip'));
    writeVqgan(path.join(dir, 'vqgan'));
    console.log(
      `random ViT-B/32 CLIP and f16-16384 VQGAN written in ${((performance.now() - t0) / 1000).toFixed(1)} s (${dir})\n`,
    );
    for (const { size, cuts } of CONFIGS) {
      const flops = stepFlops(size, cuts);
      t0 = performance.now();
      const build = await runChild({ mode: 'build', dir, size, cuts, steps: 1 });
      const buildS = (performance.now() - t0) / 1000;
      // Studio and PyTorch in turn, `rounds` times, so load from elsewhere on the machine weighs on both;
      // a step's time is the best of the measured steps (each run's first step is a warm-up, left out).
      const runs: ChildReport[] = [];
      const torchRuns: TorchReport[] = [];
      let torchError = flag('--no-torch') ? 'skipped (--no-torch)' : '';
      for (let r = 0; r < rounds; r++) {
        runs.push(await runChild({ mode: 'measure', dir, size, cuts, steps: 1 + measured }));
        if (torchError) continue;
        const t = runTorch(size, cuts, 1 + measured);
        if ('ms' in t) torchRuns.push(t);
        else torchError = t.error;
      }
      const prof = flag('--profile') ? await runChild({ mode: 'profile', dir, size, cuts, steps: 2 }) : null;
      const steps = runs.flatMap((x) => x.stepMs.slice(1));
      const torchSteps = torchRuns.flatMap((x) => x.ms.slice(1));
      const m = {
        matmulGflops: Math.max(...runs.map((x) => x.matmulGflops ?? 0)),
        maxRssBytes: Math.max(...runs.map((x) => x.maxRssBytes)),
        lagP99Ms: Math.max(...runs.map((x) => x.lagP99Ms)),
        lagMaxMs: Math.max(...runs.map((x) => x.lagMaxMs)),
        setupMs: median(runs.map((x) => x.setupMs)),
        stepCpuMs: runs.flatMap((x) => x.stepCpuMs.slice(1)),
      };
      const torch: TorchReport | { error: string } = torchRuns.length
        ? {
            ms: torchSteps,
            cpu_ms: torchRuns.flatMap((x) => x.cpu_ms.slice(1)),
            max_rss_kb: Math.max(...torchRuns.map((x) => x.max_rss_kb)),
            torch: torchRuns[0]!.torch,
            threads: torchRuns[0]!.threads,
          }
        : { error: torchError };
      const ms = Math.min(...steps);
      const gflops = flops.total / (ms / 1000) / 1e9;
      const torchMs = 'ms' in torch ? Math.min(...torch.ms) : NaN;
      const row: Row = {
        config: `${size}x${size}, ${cuts} cuts`,
        msPerStep: ms,
        medianMsPerStep: median(steps),
        stepsMs: steps,
        gflopPerStep: flops.total / 1e9,
        gflops,
        matmulPeakGflops: m.matmulGflops ?? NaN,
        fractionOfPeak: m.matmulGflops ? gflops / m.matmulGflops : NaN,
        peakRssGB: m.maxRssBytes / 1e9,
        buildPeakRssGB: build.maxRssBytes / 1e9,
        firstRunSeconds: buildS,
        warmSetupSeconds: m.setupMs / 1000,
        lagP99Ms: m.lagP99Ms,
        lagMaxMs: m.lagMaxMs,
        torchMsPerStep: torchMs,
        torchMedianMsPerStep: 'ms' in torch ? median(torch.ms) : NaN,
        torchStepsMs: 'ms' in torch ? torch.ms : null,
        cpuMsPerStep: median(m.stepCpuMs),
        torchCpuMsPerStep: 'ms' in torch ? median(torch.cpu_ms) : NaN,
        cpuRatioToTorch: median(m.stepCpuMs) / ('ms' in torch ? median(torch.cpu_ms) : NaN),
        torchPeakRssGB: 'ms' in torch ? (torch.max_rss_kb * 1024) / 1e9 : NaN,
        torch: 'ms' in torch ? `${torch.torch}, ${torch.threads} threads` : torch.error,
        ratioToTorch: ms / torchMs,
        flopsByOp: Object.fromEntries(Object.entries(flops.byOp).map(([k, v]) => [k, v / 1e9])),
        ...(prof?.profile ? { profileMsByOp: prof.profile, profileSteps: prof.stepMs.length } : {}),
      };
      rows.push(row);
      console.log(
        `${row.config}: ${ms.toFixed(0)} ms/step, best of ${steps.length} (median ${row.medianMsPerStep.toFixed(0)}); ` +
          `PyTorch ${torchMs.toFixed(0)} (median ${row.torchMedianMsPerStep.toFixed(0)}), ratio ${row.ratioToTorch.toFixed(2)}; ` +
          `${row.gflopPerStep.toFixed(0)} GFLOP/step, ${gflops.toFixed(0)} GFLOP/s = ${(row.fractionOfPeak * 100).toFixed(0)}% of the ` +
          `${m.matmulGflops?.toFixed(0)} GFLOP/s matmul peak, peak RSS ${row.peakRssGB.toFixed(2)} GB (PyTorch ${row.torchPeakRssGB.toFixed(2)}), ` +
          `lag p99 ${m.lagP99Ms.toFixed(1)} ms; CPU time per step ${row.cpuMsPerStep.toFixed(0)} ms (PyTorch ${row.torchCpuMsPerStep.toFixed(0)}, ratio ${row.cpuRatioToTorch.toFixed(2)})`,
      );
      if (prof?.profile) {
        const total = Object.values(prof.profile).reduce((a, b) => a + b, 0);
        const top = Object.entries(prof.profile)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 14);
        console.log(`  profile over ${prof.stepMs.length} steps (${total.toFixed(0)} ms of kernels):`);
        for (const [op, t] of top)
          console.log(
            `    ${op.padEnd(24)} ${(t / prof.stepMs.length).toFixed(0).padStart(7)} ms/step  ${((t / total) * 100).toFixed(1)}%`,
          );
      }
    }
    const table = [
      '| config | studio ms/step (median) | PyTorch ms/step (median) | ratio | GFLOP/step | GFLOP/s (of matmul peak) | peak RSS studio / PyTorch | lag p99 |',
      '|---|---|---|---|---|---|---|---|',
      ...rows.map((x) => {
        return `| ${x.config} | ${x.msPerStep.toFixed(0)} (${x.medianMsPerStep.toFixed(0)}) | ${x.torchMsPerStep.toFixed(0)} (${x.torchMedianMsPerStep.toFixed(0)}) | ${x.ratioToTorch.toFixed(2)}x | ${x.gflopPerStep.toFixed(0)} | ${x.gflops.toFixed(0)} (${(x.fractionOfPeak * 100).toFixed(0)}% of ${x.matmulPeakGflops.toFixed(0)}) | ${x.peakRssGB.toFixed(2)} / ${x.torchPeakRssGB.toFixed(2)} GB | ${x.lagP99Ms.toFixed(1)} ms |`;
      }),
    ].join('\n');
    console.log(`\n${table}\n`);
    mkdirSync(path.join(root, 'bench-results'), { recursive: true });
    const out = path.join(root, 'bench-results', 'generate.json');
    writeFileSync(
      out,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          machine: machine(),
          node: process.version,
          ort: ortVersion(),
          provider,
          quick,
          rows,
          table,
        },
        null,
        1,
      ),
    );
    console.log(`written ${path.relative(root, out)}`);
  } finally {
    if (flag('--keep')) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

if (flag('--child')) {
  await child(JSON.parse(opt('--child')!) as Parameters<typeof child>[0]);
} else {
  await main();
}
