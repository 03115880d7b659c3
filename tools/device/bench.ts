// The device run's Node side (tools/device/run.sh runs it, bundled by pack.sh into bench.js; from a checkout
// `node --import tsx tools/device/bench.ts ...` works too). Modes:
//
//   bench.js bench --provider P --sizes 64,128 --cuts 4 [--steps 3] [--rounds 1] --json FILE
//     Writes random models with the real architectures (ViT-B/32 CLIP, f16-16384 VQGAN, as bench/generate.ts
//     does) once, then per size, each in a child process:
//       build      the studio's `vqclip.generate` task once with a cold graph cache (graph built and cached)
//       placement  the cached step graph in an ORT session of its own with profiling, fed zeros of the graph's
//                  own input shapes, run twice with z/m/v carried as the session leaves them (GPU buffers on
//                  webgpu): every node's provider from ORT's profile (nodes not on the EP named), Memcpy
//                  nodes with their bytes, kernel time per op type, and the bytes fed and read per step
//       measure    the task again (warm cache) in a DeviceRunner's worker, as the studio runs it: ms per step
//                  (the first step, a warm-up, left out) and the matmul peak of that provider through ORT
//     and writes one JSON (FLOP per step from engine/graph/flops.ts over the step graph).
//   bench.js adapter --json FILE
//     The WebGPU adapter as Dawn reports it (vendor, architecture, device, description, features, limits),
//     through dawn.node from the `webgpu` npm package when the pack carries it (ORT's binding does not expose
//     the adapter it picks; both use Dawn's default high-performance adapter over the same Vulkan driver).
//   bench.js combine --out FILE part.json...
//     Merges the parts run.sh collected into the one report, with the studio/PyTorch table.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadOrt, ortVersion, type ProviderName } from '../../src/main/engine/runtime/ort.js';
import { resolveProvider } from '../../src/main/engine/runtime/providers.js';
import { DeviceRunner } from '../../src/main/engine/runtime/runner.js';
import { runTask } from '../../src/main/engine/task-client.js';
import { type GenerateStream, type GenerateTaskArgs } from '../../src/main/engine/vqclip/index.js';
import {
  benchTaskArgs,
  matmulPeak,
  stepFlops,
  writeClip,
  writeClipWeights,
  writeVqgan,
} from '../../bench/_generate-models.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const mode = argv[0] ?? 'bench';
const opt = (f: string) => (argv.includes(f) ? argv[argv.indexOf(f) + 1] : undefined);
const provider = (opt('--provider') ?? 'webgpu') as ProviderName;
const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]! : null);
const round = (x: number | null, d = 3) => (x === null || !Number.isFinite(x) ? null : Number(x.toFixed(d)));

/** Step outputs the task keeps on the device (generate.ts: preferredOutputLocation) and feeds back. */
const RESIDENT: Record<string, string> = { z_next: 'z', m_next: 'm', v_next: 'v' };

// ------------------------------------------------------------------------------------------ random models
// As bench/generate.ts writes them (random weights with a trained layer's spread, HF and Lightning layouts).

/** The small byte-level BPE tokenizer of the test fixtures (its ids are valid for the real vocabulary). */
function tokenizerFile(): string {
  const candidates = [
    path.join(here, 'tokenizer.json'),
    path.resolve(here, '../../tests/fixtures/clip/tiny/tokenizer.json'),
  ];
  const f = candidates.find((c) => existsSync(c));
  if (!f) throw new Error(`tokenizer.json not found (looked at ${candidates.join(', ')})`);
  return f;
}

async function writeModels(dir: string): Promise<void> {
  writeClip(path.join(dir, 'clip'), tokenizerFile());
  await writeClipWeights(path.join(dir, 'clip'));
  writeVqgan(path.join(dir, 'vqgan'));
}

// ------------------------------------------------------------------------------------------ children

interface ChildSpec {
  mode: 'measure' | 'placement';
  dir: string;
  size: number;
  cuts: number;
  steps: number;
  /** MatMul sizes for the provider's matmul rate after the steps (none: not measured). */
  peakSizes: number[];
}

function taskArgs(spec: ChildSpec): GenerateTaskArgs {
  return benchTaskArgs(spec.dir, { size: spec.size, cuts: spec.cuts, steps: spec.steps, provider });
}

/** The matmul rate of this provider through ORT (N³ MatMuls, host feeds and outputs, best run), GFLOP/s. */

async function childTask(spec: ChildSpec): Promise<Record<string, unknown>> {
  const runner = new DeviceRunner('device-bench');
  try {
    const stepMs: number[] = [];
    const statuses: string[] = [];
    const t0 = performance.now();
    let setupMs = 0;
    await runTask<'vqclip.generate', GenerateStream>(runner, 'vqclip.generate', taskArgs(spec), {
      onStream: (m) => {
        if (m.type === 'status') statuses.push(m.message);
        if (m.type === 'step') {
          if (m.step === 0) setupMs = performance.now() - t0 - m.ms;
          stepMs.push(m.ms);
        }
      },
    });
    const matmulGflops = spec.peakSizes.length ? await matmulPeak(runner, provider, spec.peakSizes) : null;
    return {
      stepMs,
      setupMs,
      totalMs: performance.now() - t0,
      statuses,
      matmulGflops,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
    };
  } finally {
    await runner.close();
  }
}

/** The newest step graph in the cache: the graphs of several models (CLIP + VQGAN) live in m-<id>/ folders. */
function stepGraphFile(cacheDir: string): string | null {
  const files: { f: string; t: number }[] = [];
  for (const d of existsSync(cacheDir) ? readdirSync(cacheDir) : []) {
    if (!d.startsWith('m-')) continue;
    for (const f of readdirSync(path.join(cacheDir, d)))
      if (f.endsWith('.onnx')) {
        const p = path.join(cacheDir, d, f);
        files.push({ f: p, t: statSync(p).mtimeMs });
      }
  }
  files.sort((a, b) => b.t - a.t);
  return files[0]?.f ?? null;
}

const BYTES: Record<string, number> = { float32: 4, float16: 2, int64: 8, int32: 4, bool: 1, uint8: 1, float64: 8 };

/**
 * The step graph in a session of its own (the options generate.ts gives it, plus profiling), fed zeros of its
 * own input shapes, run twice with z/m/v carried as the session leaves them: placement and copies per step.
 */
async function childPlacement(spec: ChildSpec): Promise<Record<string, unknown>> {
  const file = stepGraphFile(path.join(spec.dir, 'graphs'));
  if (!file) throw new Error('no step graph in the cache (did the build child run?)');
  const ort = loadOrt();
  const choice = await resolveProvider(provider);
  const profDir = mkdtempSync(path.join(os.tmpdir(), 'fstudio-device-profile-'));
  const opts: Parameters<typeof ort.InferenceSession.create>[1] = {
    executionProviders: [choice.provider],
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    enableMemPattern: false,
    enableProfiling: true,
    profileFilePrefix: path.join(profDir, 'profile'),
  };
  if (choice.provider === 'webgpu')
    opts.preferredOutputLocation = Object.fromEntries(Object.keys(RESIDENT).map((k) => [k, 'gpu-buffer' as const]));
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(file, opts);
  const createMs = performance.now() - t0;
  try {
    const inputs: { name: string; type: string; shape: number[]; bytes: number }[] = [];
    for (const m of session.inputMetadata) {
      if (!m.isTensor) throw new Error(`input ${m.name} is not a tensor`);
      const shape = m.shape.map((d) => (typeof d === 'number' ? d : 1));
      inputs.push({
        name: m.name,
        type: m.type,
        shape,
        bytes: shape.reduce((a, b) => a * b, 1) * (BYTES[m.type] ?? 4),
      });
    }
    const outputs: { name: string; type: string; shape: (number | string)[]; bytes: number | null }[] = [];
    for (const m of session.outputMetadata) {
      if (!m.isTensor) continue;
      const known = m.shape.every((d) => typeof d === 'number');
      outputs.push({
        name: m.name,
        type: m.type,
        shape: [...m.shape],
        bytes: known ? (m.shape as number[]).reduce((a, b) => a * b, 1) * (BYTES[m.type] ?? 4) : null,
      });
    }
    const zeros = (x: (typeof inputs)[number]) => {
      const n = x.shape.reduce((a, b) => a * b, 1);
      const data =
        x.type === 'int64'
          ? new BigInt64Array(n)
          : x.type === 'int32'
            ? new Int32Array(n)
            : x.type === 'bool' || x.type === 'uint8'
              ? new Uint8Array(n)
              : new Float32Array(n);
      return new ort.Tensor(x.type as 'float32', data as Float32Array, x.shape);
    };
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {};
    for (const x of inputs) feeds[x.name] = zeros(x);
    const runMs: number[] = [];
    const locations: Record<string, string> = {};
    let carried: InstanceType<typeof ort.Tensor>[] = [];
    for (let r = 0; r < 2; r++) {
      const t = performance.now();
      const out = await session.run(feeds);
      runMs.push(performance.now() - t);
      for (const c of carried) if (c.location === 'gpu-buffer') c.dispose();
      carried = [];
      for (const [name, value] of Object.entries(out)) {
        locations[name] = value.location;
        const into = RESIDENT[name];
        if (into && name in out && into in feeds) {
          feeds[into] = value;
          carried.push(value);
        } else if (value.location === 'gpu-buffer') value.dispose();
      }
    }
    for (const c of carried) if (c.location === 'gpu-buffer') c.dispose();
    session.endProfiling();
    const { nodes, gpu: gpuEvents } = readProfile(profDir);
    // Each run profiles every node once: the second run's records are the last half (GPU programs likewise).
    const last = nodes.slice(nodes.length / 2);
    const lastGpu = gpuEvents.slice(Math.floor(gpuEvents.length / 2));
    const gpuMsByOp: Record<string, number> = {};
    for (const g of lastGpu) gpuMsByOp[g.op] = (gpuMsByOp[g.op] ?? 0) + g.durUs / 1000;
    const byProvider: Record<string, number> = {};
    const msByOp: Record<string, number> = {};
    for (const n of last) {
      byProvider[n.provider] = (byProvider[n.provider] ?? 0) + 1;
      msByOp[n.op] = (msByOp[n.op] ?? 0) + n.durUs / 1000;
    }
    const ep = choice.provider === 'webgpu' ? 'WebGpuExecutionProvider' : 'CPUExecutionProvider';
    const offEp = last.filter((n) => n.provider !== ep).map((n) => ({ name: n.name, op: n.op, provider: n.provider }));
    const memcpy = last
      .filter((n) => n.op.startsWith('Memcpy'))
      .map((n) => ({ name: n.name, op: n.op, provider: n.provider, bytes: n.outputBytes }));
    const resident = Object.entries(RESIDENT)
      .filter(([o]) => locations[o] !== undefined)
      .map(([o, i]) => ({ output: o, feedsInput: i, location: locations[o] }));
    const residentInputs = new Set(resident.filter((r) => r.location === 'gpu-buffer').map((r) => r.feedsInput));
    const gpu = choice.provider !== 'cpu';
    const hostToDevice = gpu ? inputs.filter((x) => !residentInputs.has(x.name)) : [];
    const deviceToHost = gpu ? outputs.filter((o) => locations[o.name] === 'cpu') : [];
    const sum = (xs: { bytes: number | null }[]) => xs.reduce((a, x) => a + (x.bytes ?? 0), 0);
    return {
      graphFile: path.basename(file),
      graphBytes: statSync(file).size,
      sessionCreateMs: createMs,
      runMs,
      nodesProfiled: last.length,
      nodesByProvider: byProvider,
      nodesNotOnEp: offEp,
      memcpyNodes: memcpy,
      // Host-side time per node: on WebGPU a node's record is its dispatch, and the GPU's wait lands on the
      // node that reads back (MemcpyToHost); the GPU's own times are gpuKernelMsByOp.
      hostMsByOp: Object.fromEntries(Object.entries(msByOp).sort((a, b) => b[1] - a[1])),
      hostMsTotal: last.reduce((a, n) => a + n.durUs / 1000, 0),
      gpuKernelMsByOp: lastGpu.length
        ? Object.fromEntries(Object.entries(gpuMsByOp).sort((a, b) => b[1] - a[1]))
        : null,
      gpuKernelMsTotal: lastGpu.length ? lastGpu.reduce((a, g) => a + g.durUs / 1000, 0) : null,
      gpuPrograms: lastGpu.length,
      gpuKernelNote: lastGpu.length
        ? "WebGPU EP timestamp-query times of the second (warm) run, from ORT's profile ('Api' events)"
        : 'no GPU program times in the profile (CPU provider, or no timestamp-query on this adapter)',
      outputLocations: locations,
      residentState: resident,
      copies: {
        hostToDeviceBytesPerStep: gpu ? sum(hostToDevice) : 0,
        deviceToHostBytesPerStep: gpu ? sum(deviceToHost) : 0,
        memcpyNodeBytesPerStep: sum(memcpy),
        hostToDevice: hostToDevice.map((x) => ({ name: x.name, bytes: x.bytes })),
        deviceToHost: deviceToHost.map((x) => ({ name: x.name, bytes: x.bytes })),
        basis: gpu
          ? 'graph inputs fed from the host each step (all but the GPU-resident z/m/v) and outputs ORT placed on the CPU, ' +
            'from the step graph session (its input/output shapes and the output locations observed here, with the ' +
            "options generate.ts uses); plus ORT's Memcpy nodes inside the graph. Computed from shapes, not a driver counter."
          : 'cpu provider: no host/device copies',
      },
    };
  } finally {
    await session.release();
    rmSync(profDir, { recursive: true, force: true });
  }
}

interface ProfNode {
  name: string;
  op: string;
  provider: string;
  durUs: number;
  outputBytes: number | null;
}

/**
 * ORT's profile: per node (cat 'Node': provider, host-side time, output bytes) and, on WebGPU, per GPU
 * program (cat 'Api', pid -1: the EP's timestamp-query times, "node&op&program"), each in run order.
 */
function readProfile(dir: string): { nodes: ProfNode[]; gpu: { node: string; op: string; durUs: number }[] } {
  const nodes: ProfNode[] = [];
  const gpu: { node: string; op: string; durUs: number }[] = [];
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.json'))) {
    const events = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as {
      cat?: string;
      name?: string;
      dur?: number;
      args?: { op_name?: string; provider?: string; output_size?: string };
    }[];
    for (const e of events) {
      if (e.cat === 'Api' && e.name) {
        const [node, op] = e.name.split('&');
        gpu.push({ node: node ?? e.name, op: op ?? '?', durUs: e.dur ?? 0 });
      }
      if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time')) continue;
      nodes.push({
        name: e.name.slice(0, -'_kernel_time'.length),
        op: e.args?.op_name ?? '?',
        provider: e.args?.provider ?? '?',
        durUs: e.dur ?? 0,
        outputBytes: e.args?.output_size !== undefined ? Number(e.args.output_size) : null,
      });
    }
  }
  return { nodes, gpu };
}

function runChild(spec: ChildSpec, timeoutS: number): Promise<Record<string, unknown>> {
  const self = fileURLToPath(import.meta.url);
  const loader = self.endsWith('.ts') ? ['--import', 'tsx'] : [];
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [...loader, self, 'child', JSON.stringify(spec), '--provider', provider], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => {
      const s = d.toString();
      err += s;
      // Dawn's lowered-limit warnings are noise (cli/native-noise.ts); the rest goes to the log.
      for (const line of s.split('\n'))
        if (line.trim() && !/^Warning: \w+ artificially reduced/.test(line))
          process.stderr.write(`  [${spec.mode} ${spec.size}] ${line}\n`);
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutS * 1000);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('REPORT '));
      if (code === 0 && line) resolve(JSON.parse(line.slice(7)) as Record<string, unknown>);
      else
        resolve({
          error: `child ${spec.mode} ${spec.size}/${spec.cuts} failed (${signal ? `killed by ${signal}${signal === 'SIGKILL' ? `, over ${timeoutS} s` : ''}` : `exit ${code}`}): ${(err + out).trim().split('\n').slice(-4).join(' | ')}`,
        });
    });
  });
}

// ------------------------------------------------------------------------------------------ modes

async function bench(): Promise<void> {
  const sizes = (opt('--sizes') ?? '64').split(',').map(Number);
  const cuts = Number(opt('--cuts') ?? 4);
  const steps = Number(opt('--steps') ?? 3);
  const rounds = Number(opt('--rounds') ?? 1);
  const childTimeout = Number(opt('--child-timeout') ?? 300);
  const peakSizes = (opt('--peak-sizes') ?? '1024,2048')
    .split(',')
    .filter(Boolean)
    .map(Number)
    .filter((n) => n > 0);
  const jsonFile = opt('--json');
  const keep = argv.includes('--keep');
  const dir = mkdtempSync(path.join(opt('--work') ?? os.tmpdir(), 'fstudio-device-bench-'));
  const report: Record<string, unknown> = {
    provider,
    ort: ortVersion(),
    node: process.version,
    cuts,
    steps,
    rounds,
    rows: [] as unknown[],
  };
  const save = () => jsonFile && writeFileSync(jsonFile, JSON.stringify(report, null, 1));
  try {
    let t0 = performance.now();
    await writeModels(dir);
    report.modelsWrittenS = (performance.now() - t0) / 1000;
    console.log(`random ViT-B/32 CLIP + f16-16384 VQGAN written in ${(report.modelsWrittenS as number).toFixed(1)} s`);
    for (const size of sizes) {
      const flops = stepFlops(size, cuts);
      const row: Record<string, unknown> = {
        size,
        cuts,
        gflopPerStep: flops.total / 1e9,
        gflopByOp: Object.fromEntries(Object.entries(flops.byOp).map(([k, v]) => [k, v / 1e9])),
      };
      (report.rows as unknown[]).push(row);
      // Round 1 starts with a cold graph cache (the graph is built: the studio's first run), later rounds warm.
      const runs: Record<string, unknown>[] = [];
      for (let r = 0; r < rounds; r++) {
        t0 = performance.now();
        const x = await runChild({ mode: 'measure', dir, size, cuts, steps: 1 + steps, peakSizes }, childTimeout);
        runs.push({ ...x, wallS: (performance.now() - t0) / 1000 });
        console.log(
          `${size}² ${cuts} cuts, round ${r + 1}${r === 0 ? ' (cold cache)' : ''}: ${(runs[r]!.wallS as number).toFixed(1)} s` +
            (x.error
              ? ` ${String(x.error)}`
              : `, steps ${(x.stepMs as number[]).map((m) => m.toFixed(0)).join(', ')} ms`),
        );
      }
      row.runs = runs;
      save();
      const placement = await runChild({ mode: 'placement', dir, size, cuts, steps: 2, peakSizes: [] }, childTimeout);
      row.placement = placement;
      if (!placement.error) {
        const p = placement as {
          nodesByProvider: Record<string, number>;
          nodesNotOnEp: { op: string }[];
          copies: Record<string, number>;
          gpuKernelMsTotal: number | null;
        };
        console.log(
          `  placement: ${JSON.stringify(p.nodesByProvider)}, ${p.nodesNotOnEp.length} node(s) off the EP (${p.nodesNotOnEp.map((n) => n.op).join(', ')}); ` +
            `host->device ${p.copies.hostToDeviceBytesPerStep} B/step, device->host ${p.copies.deviceToHostBytesPerStep} B/step, ` +
            `GPU kernels ${p.gpuKernelMsTotal?.toFixed(1) ?? '-'} ms/step`,
        );
      } else console.log(`  placement: ${String(placement.error)}`);
      save();
      const ok = runs.filter((x) => !x.error) as {
        stepMs: number[];
        matmulGflops: number;
        setupMs: number;
        maxRssBytes: number;
      }[];
      const measured = ok.flatMap((x) => x.stepMs.slice(1));
      const ms = measured.length ? Math.min(...measured) : null;
      const peak = ok.length && peakSizes.length ? Math.max(...ok.map((x) => x.matmulGflops)) : null;
      Object.assign(row, {
        msPerStep: round(ms),
        medianMsPerStep: round(median(measured)),
        stepsMs: measured.map((x) => round(x)),
        tflops: ms ? round(flops.total / (ms / 1000) / 1e12, 4) : null,
        ortMatmulPeakTflops: peak ? round(peak / 1000, 4) : null,
        fractionOfOrtMatmulPeak: ms && peak ? round(flops.total / (ms / 1000) / 1e9 / peak, 4) : null,
        firstRunSetupS: runs[0] && !runs[0].error ? round((runs[0].setupMs as number) / 1000) : null,
        warmSetupS: ok.length > 1 ? round(median(ok.slice(1).map((x) => x.setupMs))! / 1000) : null,
        peakRssGB: ok.length ? round(Math.max(...ok.map((x) => x.maxRssBytes)) / 1e9) : null,
        measureErrors: runs.filter((x) => x.error).map((x) => x.error),
      });
      console.log(
        `  measure: ${row.msPerStep ?? '-'} ms/step (median ${row.medianMsPerStep ?? '-'}), ${row.tflops ?? '-'} TFLOP/s, ` +
          `ORT matmul peak ${row.ortMatmulPeakTflops ?? '-'} TFLOP/s${runs.some((x) => x.error) ? ` errors: ${runs.map((x) => x.error).join('; ')}` : ''}`,
      );
      save();
    }
  } finally {
    save();
    if (keep) console.log(`kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

async function adapter(): Promise<void> {
  const jsonFile = opt('--json');
  const out: Record<string, unknown> = {};
  const candidates = [
    path.join(here, 'node_modules/webgpu/dist', `${process.platform}-${process.arch}`, 'dawn.node'),
    path.join(here, '../node_modules/webgpu/dist', `${process.platform}-${process.arch}`, 'dawn.node'),
  ];
  const file = candidates.find((c) => existsSync(c));
  if (!file) {
    out.adapter = null;
    out.reason = `dawn.node (npm package webgpu) is not in the pack (looked at ${candidates.join(', ')})`;
  } else {
    try {
      const dawn = createRequire(import.meta.url)(file) as {
        create(flags: string[]): { requestAdapter(o: object): Promise<AdapterLike | null> };
      };
      interface AdapterLike {
        info: Record<string, unknown>;
        features: Iterable<string>;
        limits: Record<string, number>;
      }
      const gpu = dawn.create([]);
      const a = await gpu.requestAdapter({ powerPreference: 'high-performance' });
      if (!a) {
        out.adapter = null;
        out.reason = 'Dawn found no WebGPU adapter';
      } else {
        const info: Record<string, unknown> = {};
        for (const k of ['vendor', 'architecture', 'device', 'description', 'subgroupMinSize', 'subgroupMaxSize'])
          info[k] = a.info[k];
        const limits: Record<string, number> = {};
        for (const k in a.limits) limits[k] = a.limits[k]!;
        out.adapter = { ...info, features: [...a.features].sort(), limits };
        out.source = `dawn.node (npm webgpu) ${path.relative(here, file)}: Dawn's default high-performance adapter`;
      }
    } catch (e) {
      out.adapter = null;
      out.reason = `dawn.node failed: ${(e as Error).message}`;
    }
  }
  const line = JSON.stringify(out);
  if (jsonFile) writeFileSync(jsonFile, line);
  console.log(line.slice(0, 600));
}

/** Merges run.sh's parts into the one report, with the side-by-side table. */
function combine(): void {
  const outFile = opt('--out');
  if (!outFile) throw new Error('combine needs --out FILE');
  const parts: Record<string, unknown> = {};
  for (const a of argv.slice(1)) {
    const m = /^([\w-]+)=(.*)$/.exec(a);
    if (!m) continue;
    const [, key, file] = m;
    if (!existsSync(file!)) {
      parts[key!] = { error: 'not measured: the phase wrote nothing (see the log and run.phases)' };
      continue;
    }
    const text = readFileSync(file!, 'utf8');
    try {
      parts[key!] = JSON.parse(text) as unknown;
    } catch {
      // Plain text (nvidia-smi's CSV) or a phase that died half-way: kept as text.
      parts[key!] = text.trim() ? { text: text.trim().slice(0, 20000) } : { error: 'not measured: empty output' };
    }
  }
  type Row = { size: number; cuts: number; msPerStep: number | null; tflops: number | null; gflopPerStep: number };
  type TorchRow = {
    size: number;
    cuts: number;
    eager?: { ms_per_step?: number | null };
    compiled?: { ms_per_step?: number | null; error?: string };
  };
  const rows = ((parts.bench as { rows?: Row[] })?.rows ?? []) as Row[];
  const torchRows = ((parts.torch as { rows?: TorchRow[] })?.rows ?? []) as TorchRow[];
  const peak = (parts.torch as { fp32_peak_tflops?: { value: number | null } })?.fp32_peak_tflops?.value ?? null;
  const f = (x: number | null | undefined, d = 1) =>
    x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d);
  const side = rows.map((r) => {
    const t = torchRows.find((x) => x.size === r.size && x.cuts === r.cuts);
    const eager = t?.eager?.ms_per_step ?? null;
    const compiled = t?.compiled?.ms_per_step ?? null;
    const tf = (ms: number | null) => (ms ? r.gflopPerStep / 1000 / (ms / 1000) : null);
    return {
      size: r.size,
      cuts: r.cuts,
      studioMsPerStep: r.msPerStep,
      torchEagerMsPerStep: eager,
      torchCompiledMsPerStep: compiled,
      ratioStudioToEager: r.msPerStep && eager ? r.msPerStep / eager : null,
      ratioStudioToCompiled: r.msPerStep && compiled ? r.msPerStep / compiled : null,
      studioTflops: tf(r.msPerStep),
      torchEagerTflops: tf(eager),
      torchCompiledTflops: tf(compiled),
      studioFractionOfFp32Peak: peak && r.msPerStep ? tf(r.msPerStep)! / peak : null,
      torchEagerFractionOfFp32Peak: peak && eager ? tf(eager)! / peak : null,
      torchCompiledFractionOfFp32Peak: peak && compiled ? tf(compiled)! / peak : null,
    };
  });
  const table = [
    '| size | cuts | studio WebGPU ms/step | PyTorch eager ms/step | PyTorch compiled ms/step | studio / eager | studio TFLOP/s (of fp32 peak) | eager TFLOP/s (of peak) |',
    '|---|---|---|---|---|---|---|---|',
    ...side.map(
      (s) =>
        `| ${s.size}² | ${s.cuts} | ${f(s.studioMsPerStep)} | ${f(s.torchEagerMsPerStep)} | ${f(s.torchCompiledMsPerStep)} | ${f(s.ratioStudioToEager, 2)} | ` +
        `${f(s.studioTflops, 3)} (${s.studioFractionOfFp32Peak === null ? '-' : `${(s.studioFractionOfFp32Peak * 100).toFixed(1)}%`}) | ` +
        `${f(s.torchEagerTflops, 3)} (${s.torchEagerFractionOfFp32Peak === null ? '-' : `${(s.torchEagerFractionOfFp32Peak * 100).toFixed(1)}%`}) |`,
    ),
  ].join('\n');
  const cpu = os.cpus();
  const report = {
    date: new Date().toISOString(),
    machine: {
      cpu: cpu[0]?.model ?? null,
      cores: cpu.length,
      memGB: os.totalmem() / 1e9,
      platform: `${os.platform()} ${os.arch()}`,
      hostname: os.hostname(),
    },
    ...parts,
    sideBySide: side,
    table,
  };
  writeFileSync(outFile, JSON.stringify(report, null, 1));
  console.log(table);
}

if (mode === 'child') {
  const spec = JSON.parse(argv[1]!) as ChildSpec;
  const r = spec.mode === 'placement' ? await childPlacement(spec) : await childTask(spec);
  process.stdout.write(`\nREPORT ${JSON.stringify(r)}\n`);
} else if (mode === 'adapter') await adapter();
else if (mode === 'combine') combine();
else if (mode === 'bench') await bench();
else {
  console.error(`unknown mode ${mode}: bench | adapter | combine`);
  process.exitCode = 2;
}
