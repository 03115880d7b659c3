// `npm run bench -- weights` (or `node --import tsx bench/weights.ts`): loading real-sized checkpoints.
// Writes two random checkpoints in torch's zip format (with the same layout torch.save uses; see
// tests/fixtures/weights/torch-zip-writer.ts) into a temp folder:
//   clip-vit-b32: Hugging Face `openai/clip-vit-base-patch32` names and shapes (~151M float32 params),
//                 flat state dict as in pytorch_model.bin;
//   vqgan-f16-16384: taming-transformers VQModel names and shapes (~72M params) under `state_dict`
//                 as in a Lightning last.ckpt.
// Then, each in a fresh child process (so peak memory is the load's own): load the whole state dict
// from the .ckpt, convert .ckpt -> safetensors (streamed), load from the safetensors; and, when
// Debian's /usr/bin/python3 has torch, torch.load of the same .ckpt as a reference.
// Reports ratios measured in this run: safetensors / ckpt load time, torch.load / ours, and peak RSS
// above a bare child's, per byte of file. Options: --quick (small models; a smoke test), --keep.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertToSafetensors, loadCheckpoint } from '../src/main/engine/weights/load.js';
import { type WeightDType, WEIGHT_DTYPE_SIZE } from '../src/main/engine/weights/tensor.js';
import { pickleStateDict, type TensorView, writeTorchZip } from '../tests/fixtures/weights/torch-zip-writer.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);

type Spec = [name: string, shape: number[], dtype?: WeightDType];

// ---- model layouts -----------------------------------------------------------------------------

function clipSpecs(cfg: {
  vw: number;
  vl: number;
  patch: number;
  tokens: number;
  tw: number;
  tl: number;
  vocab: number;
  embed: number;
}): Spec[] {
  const s: Spec[] = [];
  const layers = (prefix: string, w: number, n: number) => {
    for (let i = 0; i < n; i++) {
      const p = `${prefix}.encoder.layers.${i}`;
      for (const proj of ['k', 'v', 'q', 'out'])
        s.push([`${p}.self_attn.${proj}_proj.weight`, [w, w]], [`${p}.self_attn.${proj}_proj.bias`, [w]]);
      s.push([`${p}.layer_norm1.weight`, [w]], [`${p}.layer_norm1.bias`, [w]]);
      s.push([`${p}.mlp.fc1.weight`, [4 * w, w]], [`${p}.mlp.fc1.bias`, [4 * w]]);
      s.push([`${p}.mlp.fc2.weight`, [w, 4 * w]], [`${p}.mlp.fc2.bias`, [w]]);
      s.push([`${p}.layer_norm2.weight`, [w]], [`${p}.layer_norm2.bias`, [w]]);
    }
  };
  s.push(['text_model.embeddings.token_embedding.weight', [cfg.vocab, cfg.tw]]);
  s.push(['text_model.embeddings.position_embedding.weight', [77, cfg.tw]]);
  s.push(['text_model.embeddings.position_ids', [1, 77], 'I64']);
  layers('text_model', cfg.tw, cfg.tl);
  s.push(['text_model.final_layer_norm.weight', [cfg.tw]], ['text_model.final_layer_norm.bias', [cfg.tw]]);
  s.push(['vision_model.embeddings.class_embedding', [cfg.vw]]);
  s.push(['vision_model.embeddings.patch_embedding.weight', [cfg.vw, 3, cfg.patch, cfg.patch]]);
  s.push(['vision_model.embeddings.position_embedding.weight', [cfg.tokens, cfg.vw]]);
  s.push(['vision_model.embeddings.position_ids', [1, cfg.tokens], 'I64']);
  s.push(['vision_model.pre_layrnorm.weight', [cfg.vw]], ['vision_model.pre_layrnorm.bias', [cfg.vw]]);
  layers('vision_model', cfg.vw, cfg.vl);
  s.push(['vision_model.post_layernorm.weight', [cfg.vw]], ['vision_model.post_layernorm.bias', [cfg.vw]]);
  s.push(
    ['visual_projection.weight', [cfg.embed, cfg.vw]],
    ['text_projection.weight', [cfg.embed, cfg.tw]],
    ['logit_scale', []],
  );
  return s;
}

function vqganSpecs(cfg: {
  ch: number;
  chMult: number[];
  nRes: number;
  attnRes: number[];
  resolution: number;
  z: number;
  embedDim: number;
  nEmbed: number;
}): Spec[] {
  const s: Spec[] = [];
  const conv = (p: string, o: number, i: number, k: number) =>
    s.push([`${p}.weight`, [o, i, k, k]], [`${p}.bias`, [o]]);
  const norm = (p: string, c: number) => s.push([`${p}.weight`, [c]], [`${p}.bias`, [c]]);
  const resnet = (p: string, i: number, o: number) => {
    norm(`${p}.norm1`, i);
    conv(`${p}.conv1`, o, i, 3);
    norm(`${p}.norm2`, o);
    conv(`${p}.conv2`, o, o, 3);
    if (i !== o) conv(`${p}.nin_shortcut`, o, i, 1);
  };
  const attn = (p: string, c: number) => {
    norm(`${p}.norm`, c);
    for (const q of ['q', 'k', 'v', 'proj_out']) conv(`${p}.${q}`, c, c, 1);
  };
  const levels = cfg.chMult.length;
  // encoder
  conv('encoder.conv_in', cfg.ch, 3, 3);
  let res = cfg.resolution;
  let blockIn = cfg.ch;
  for (let i = 0; i < levels; i++) {
    blockIn = cfg.ch * (i === 0 ? 1 : cfg.chMult[i - 1]!);
    const blockOut = cfg.ch * cfg.chMult[i]!;
    for (let b = 0; b < cfg.nRes; b++) {
      resnet(`encoder.down.${i}.block.${b}`, blockIn, blockOut);
      blockIn = blockOut;
      if (cfg.attnRes.includes(res)) attn(`encoder.down.${i}.attn.${b}`, blockIn);
    }
    if (i !== levels - 1) {
      conv(`encoder.down.${i}.downsample.conv`, blockIn, blockIn, 3);
      res /= 2;
    }
  }
  resnet('encoder.mid.block_1', blockIn, blockIn);
  attn('encoder.mid.attn_1', blockIn);
  resnet('encoder.mid.block_2', blockIn, blockIn);
  norm('encoder.norm_out', blockIn);
  conv('encoder.conv_out', cfg.z, blockIn, 3);
  // decoder
  blockIn = cfg.ch * cfg.chMult[levels - 1]!;
  res = cfg.resolution / 2 ** (levels - 1);
  conv('decoder.conv_in', blockIn, cfg.z, 3);
  resnet('decoder.mid.block_1', blockIn, blockIn);
  attn('decoder.mid.attn_1', blockIn);
  resnet('decoder.mid.block_2', blockIn, blockIn);
  for (let i = levels - 1; i >= 0; i--) {
    const blockOut = cfg.ch * cfg.chMult[i]!;
    for (let b = 0; b <= cfg.nRes; b++) {
      resnet(`decoder.up.${i}.block.${b}`, blockIn, blockOut);
      blockIn = blockOut;
      if (cfg.attnRes.includes(res)) attn(`decoder.up.${i}.attn.${b}`, blockIn);
    }
    if (i !== 0) {
      conv(`decoder.up.${i}.upsample.conv`, blockIn, blockIn, 3);
      res *= 2;
    }
  }
  norm('decoder.norm_out', blockIn);
  conv('decoder.conv_out', 3, blockIn, 3);
  conv('quant_conv', cfg.embedDim, cfg.z, 1);
  conv('post_quant_conv', cfg.z, cfg.embedDim, 1);
  s.push(['quantize.embedding.weight', [cfg.nEmbed, cfg.embedDim]]);
  return s;
}

// ---- writing -----------------------------------------------------------------------------------

function randomBytes(n: number, dtype: WeightDType, seed: number): Uint8Array {
  const size = WEIGHT_DTYPE_SIZE[dtype];
  const bytes = new Uint8Array(n * size);
  if (dtype === 'F32') {
    const f = new Float32Array(bytes.buffer);
    let s = seed >>> 0;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      f[i] = (s / 2 ** 32 - 0.5) * 0.04;
    }
  } else if (dtype === 'I64') {
    const v = new BigInt64Array(bytes.buffer);
    for (let i = 0; i < n; i++) v[i] = BigInt(i);
  }
  return bytes;
}

function writeModel(file: string, specs: Spec[], layout: 'flat' | 'lightning'): { params: number; bytes: number } {
  const views: TensorView[] = specs.map(([name, shape, dtype = 'F32'], i) => ({
    name,
    dtype,
    key: String(i),
    storageNumel: shape.reduce((a, b) => a * b, 1),
    shape,
  }));
  function* storages(): Generator<[string, Uint8Array]> {
    for (const v of views) yield [v.key, randomBytes(v.storageNumel, v.dtype, 7919 * Number(v.key) + 1)];
  }
  writeTorchZip(file, path.basename(file).replace(/\..*$/, ''), pickleStateDict(views, layout), storages());
  return { params: views.reduce((a, v) => a + v.storageNumel, 0), bytes: statSync(file).size };
}

// ---- measuring (in a child process) -------------------------------------------------------------

interface Measure {
  ms: number;
  maxRssBytes: number;
  peakExternalBytes: number;
  peakArrayBuffersBytes: number;
  tensors: number;
}

async function child(mode: string, file: string, dst?: string): Promise<void> {
  let peakExternal = 0;
  let peakArrayBuffers = 0;
  const sample = () => {
    const m = process.memoryUsage();
    peakExternal = Math.max(peakExternal, m.external);
    peakArrayBuffers = Math.max(peakArrayBuffers, m.arrayBuffers);
  };
  const timer = setInterval(sample, 2);
  const t0 = performance.now();
  let tensors = 0;
  if (mode === 'load') {
    const sd = await loadCheckpoint(file);
    tensors = sd.size;
    sample();
  } else if (mode === 'convert') {
    tensors = (await convertToSafetensors(file, dst!)).tensors;
  }
  const ms = performance.now() - t0;
  clearInterval(timer);
  sample();
  const out: Measure = {
    ms,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    peakExternalBytes: peakExternal,
    peakArrayBuffersBytes: peakArrayBuffers,
    tensors,
  };
  process.stdout.write(JSON.stringify(out));
}

function runChild(mode: string, file: string, dst?: string): Measure {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', mode, file, ...(dst ? [dst] : [])],
    {
      cwd: root,
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    },
  );
  if (r.status !== 0) throw new Error(`child ${mode} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Measure;
}

const TORCH_LOAD = `
import json, resource, sys, time
import torch
t = time.perf_counter()
obj = torch.load(sys.argv[1], map_location='cpu')
ms = (time.perf_counter() - t) * 1000
sd = obj.get('state_dict', obj)
print(json.dumps({'ms': ms, 'maxRssBytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, 'tensors': len(sd)}))
`;

function torchAvailable(): string | null {
  try {
    return execFileSync('/usr/bin/python3', ['-c', 'import torch; print(torch.__version__)'], {
      encoding: 'utf8',
    }).trim();
  } catch {
    return null;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function summarize(runs: Measure[]): Measure & { minMs: number } {
  return {
    ms: median(runs.map((r) => r.ms)),
    minMs: Math.min(...runs.map((r) => r.ms)),
    maxRssBytes: Math.max(...runs.map((r) => r.maxRssBytes)),
    peakExternalBytes: Math.max(...runs.map((r) => r.peakExternalBytes)),
    peakArrayBuffersBytes: Math.max(...runs.map((r) => r.peakArrayBuffersBytes)),
    tensors: runs[0]!.tensors,
  };
}

function repeat(n: number, f: () => Measure): Measure & { minMs: number } {
  return summarize(Array.from({ length: n }, f));
}

function torchLoadOnce(ckpt: string): Measure {
  const r = JSON.parse(execFileSync('/usr/bin/python3', ['-c', TORCH_LOAD, ckpt], { encoding: 'utf8' })) as {
    ms: number;
    maxRssBytes: number;
    tensors: number;
  };
  return { ...r, peakExternalBytes: 0, peakArrayBuffersBytes: 0 };
}

async function main(): Promise<void> {
  const quick = args.includes('--quick');
  const reps = quick ? 1 : 5;
  const models = quick
    ? [
        {
          id: 'clip-tiny',
          layout: 'flat' as const,
          specs: clipSpecs({ vw: 64, vl: 2, patch: 32, tokens: 50, tw: 64, tl: 2, vocab: 1000, embed: 32 }),
        },
        {
          id: 'vqgan-tiny',
          layout: 'lightning' as const,
          specs: vqganSpecs({
            ch: 32,
            chMult: [1, 2],
            nRes: 1,
            attnRes: [16],
            resolution: 32,
            z: 16,
            embedDim: 16,
            nEmbed: 64,
          }),
        },
      ]
    : [
        {
          id: 'clip-vit-b32',
          layout: 'flat' as const,
          specs: clipSpecs({ vw: 768, vl: 12, patch: 32, tokens: 50, tw: 512, tl: 12, vocab: 49408, embed: 512 }),
        },
        {
          id: 'vqgan-f16-16384',
          layout: 'lightning' as const,
          specs: vqganSpecs({
            ch: 128,
            chMult: [1, 1, 2, 2, 4],
            nRes: 2,
            attnRes: [16],
            resolution: 256,
            z: 256,
            embedDim: 256,
            nEmbed: 16384,
          }),
        },
      ];
  const torch = torchAvailable();
  if (!torch) console.log('torch.load reference: skipped (/usr/bin/python3 has no torch; apt install python3-torch)');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fstudio-bench-weights-'));
  const results: Record<string, unknown>[] = [];
  try {
    const bare = repeat(reps, () => runChild('none', ''));
    console.log(`bare child process: max RSS ${(bare.maxRssBytes / 2 ** 20).toFixed(0)} MiB (subtracted below)`);
    console.log(
      `load average: ${os
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')} on ${os.cpus().length} CPUs (timings are noisy when high)`,
    );
    for (const m of models) {
      const ckpt = path.join(dir, `${m.id}.ckpt`);
      const st = path.join(dir, `${m.id}.safetensors`);
      const t0 = performance.now();
      const { params, bytes } = writeModel(ckpt, m.specs, m.layout);
      console.log(
        `\n${m.id}: ${(params / 1e6).toFixed(2)}M params, ${m.specs.length} tensors, ckpt ${(bytes / 2 ** 20).toFixed(0)} MiB (written in ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
      );
      // Convert first (it writes the safetensors), then interleave the loads (ckpt, safetensors,
      // torch.load, ckpt, ...) so that load from other processes on the machine hits each alike.
      const convert = repeat(1, () => runChild('convert', ckpt, st));
      const runs: { ckpt: Measure[]; st: Measure[]; torch: Measure[] } = { ckpt: [], st: [], torch: [] };
      for (let r = 0; r < reps; r++) {
        runs.ckpt.push(runChild('load', ckpt));
        runs.st.push(runChild('load', st));
        if (torch) runs.torch.push(torchLoadOnce(ckpt));
      }
      const loadCkpt = summarize(runs.ckpt);
      const loadSt = summarize(runs.st);
      const torchLoad = torch ? summarize(runs.torch) : null;
      const stBytes = statSync(st).size;
      for (const r of [loadCkpt, convert, loadSt]) {
        if (r.tensors !== m.specs.length)
          throw new Error(`${m.id}: loaded ${r.tensors} tensors, expected ${m.specs.length}`);
      }
      const extra = (r: Measure) => (r.maxRssBytes - bare.maxRssBytes) / bytes;
      const row = {
        model: m.id,
        params,
        tensors: m.specs.length,
        ckptBytes: bytes,
        safetensorsBytes: stBytes,
        ms: {
          loadCkpt: loadCkpt.ms,
          convert: convert.ms,
          loadSafetensors: loadSt.ms,
          torchLoad: torchLoad?.ms ?? null,
        },
        maxRssBytes: {
          bare: bare.maxRssBytes,
          loadCkpt: loadCkpt.maxRssBytes,
          convert: convert.maxRssBytes,
          loadSafetensors: loadSt.maxRssBytes,
          torchLoad: torchLoad?.maxRssBytes ?? null,
        },
        peakExternalBytes: {
          loadCkpt: loadCkpt.peakExternalBytes,
          convert: convert.peakExternalBytes,
          loadSafetensors: loadSt.peakExternalBytes,
        },
        ratios: {
          safetensorsOverCkptLoadTime: loadSt.ms / loadCkpt.ms,
          convertOverCkptLoadTime: convert.ms / loadCkpt.ms,
          torchLoadOverOursCkpt: torchLoad ? torchLoad.ms / loadCkpt.ms : null,
          ckptLoadGBps: bytes / 1e9 / (loadCkpt.ms / 1000),
          safetensorsLoadGBps: stBytes / 1e9 / (loadSt.ms / 1000),
          peakRssOverFile: {
            loadCkpt: extra(loadCkpt),
            convert: extra(convert),
            loadSafetensors: extra(loadSt),
            torchLoad: torchLoad ? extra(torchLoad) : null,
          },
        },
      };
      results.push(row);
      const f = (x: number) => x.toFixed(2);
      const line = (label: string, r: Measure & { minMs: number }, fileBytes: number, rss: number) =>
        console.log(
          `  ${label.padEnd(18)} ${r.ms.toFixed(0).padStart(7)} ${r.minMs.toFixed(0).padStart(7)} ` +
            `${f(fileBytes / 1e9 / (r.ms / 1000)).padStart(6)} ${f(rss).padStart(10)}`,
        );
      console.log(
        `  ${'step'.padEnd(18)} ${'med ms'.padStart(7)} ${'min ms'.padStart(7)} ${'GB/s'.padStart(6)} ${'RSS/file'.padStart(10)}`,
      );
      line('load .ckpt', loadCkpt, bytes, extra(loadCkpt));
      line('convert -> st', convert, bytes, extra(convert));
      line('load .safetensors', loadSt, stBytes, extra(loadSt));
      if (torchLoad) line('torch.load (ref)', torchLoad, bytes, torchLoad.maxRssBytes / bytes);
      console.log(
        `  ratios: safetensors/ckpt load time ${f(row.ratios.safetensorsOverCkptLoadTime)} (min ${f(loadSt.minMs / loadCkpt.minMs)}), ` +
          `convert/ckpt load ${f(row.ratios.convertOverCkptLoadTime)}` +
          (torchLoad
            ? `, torch.load/ours ${f(row.ratios.torchLoadOverOursCkpt!)} (min ${f(torchLoad.minMs / loadCkpt.minMs)})`
            : ''),
      );
      console.log('  (RSS/file: peak RSS above a bare child per byte of file; for torch.load, the whole python RSS)');
    }
  } finally {
    if (!args.includes('--keep')) rmSync(dir, { recursive: true, force: true });
    else console.log(`kept ${dir}`);
  }
  const out = {
    bench: 'weights',
    date: new Date().toISOString(),
    quick,
    machine: {
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model ?? '',
      totalMemBytes: os.totalmem(),
      node: process.version,
    },
    torch,
    repetitions: reps,
    loadAverage: os.loadavg(),
    note:
      'ms are medians (minMs minima) over repetitions, each in a fresh child process, loads interleaved, files in the page cache; ' +
      'peak RSS is the child\'s max RSS; "above bare" subtracts a child that loads nothing',
    results,
  };
  mkdirSync(path.join(root, 'bench-results'), { recursive: true });
  writeFileSync(
    path.join(root, 'bench-results', quick ? 'weights-quick.json' : 'weights.json'),
    JSON.stringify(out, null, 2) + '\n',
  );
  console.log(`\nwrote bench-results/${quick ? 'weights-quick.json' : 'weights.json'}`);
}

if (args[0] === '--child') {
  await child(args[1]!, args[2]!, args[3]);
} else {
  await main();
}
