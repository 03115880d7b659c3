// Execution-provider selection: which providers this platform can have, a real probe session
// for each, and the 'auto' choice with a reason for every provider it did not take.
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as OrtTypes from 'onnxruntime-node';
import { EXPLICIT_PROVIDERS, type ExplicitProvider, type ProviderReport } from '../../../shared/providers.js';
import { addModel } from './tiny-model.js';

export type { ExplicitProvider };

export interface ProviderChoice {
  /** What runs the session. */
  provider: ExplicitProvider;
  /** What was asked for. */
  requested: ExplicitProvider | 'auto';
  /** Every provider considered, in order of preference, with why it was or was not used. */
  considered: ProviderReport[];
}

/** Providers in order of preference for 'auto', per platform (what onnxruntime-node's npm package bundles). */
export function platformProviders(
  platform: string = process.platform,
  arch: string = process.arch,
): ExplicitProvider[] {
  if (platform === 'linux' && arch === 'x64') return ['cuda', 'webgpu', 'cpu'];
  if (platform === 'win32') return ['cuda', 'dml', 'webgpu', 'cpu'];
  if (platform === 'darwin' && arch === 'arm64') return ['coreml', 'webgpu', 'cpu'];
  return ['cpu'];
}

const INSTALL_HINT: Record<ExplicitProvider, string> = {
  cpu: 'reinstall onnxruntime-node@1.30',
  cuda: 'install CUDA 12 and cuDNN 9, then run `node scripts/postinstall.js` in the studio folder with network access to fetch the CUDA provider files',
  webgpu:
    process.platform === 'linux'
      ? 'install a Vulkan driver and loader (Debian: `apt install libvulkan1 mesa-vulkan-drivers`, Mesa 25 or newer; or the NVIDIA driver)'
      : 'update the graphics driver (WebGPU needs D3D12 on Windows, Metal on macOS)',
  dml: 'DirectML needs Windows 10 1903 or newer with a DirectX 12 GPU',
  coreml: 'CoreML needs macOS on Apple silicon',
};

function ortBinDir(): string | null {
  try {
    const req = createRequire(import.meta.url);
    const pkg = path.dirname(req.resolve('onnxruntime-node/package.json'));
    return path.join(pkg, 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return null;
  }
}

/** A reason the provider cannot work here, found without creating a session (some failures are noisy or fatal). */
function precheck(p: ExplicitProvider): string | null {
  if (!platformProviders().includes(p))
    return `${p} is not available for ${process.platform}/${process.arch} in onnxruntime-node 1.30`;
  if (p === 'cuda') {
    const dir = ortBinDir();
    const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
    if (!dir || !existsSync(path.join(dir, lib)))
      return `the CUDA provider files are not installed (${lib} is missing)`;
  }
  if (p === 'webgpu' && process.platform === 'linux') {
    const loader = [
      '/usr/lib/x86_64-linux-gnu/libvulkan.so.1',
      '/lib/x86_64-linux-gnu/libvulkan.so.1',
      '/usr/lib64/libvulkan.so.1',
      '/usr/lib/libvulkan.so.1',
    ];
    if (!process.env.LD_LIBRARY_PATH && !loader.some((f) => existsSync(f)))
      return 'no Vulkan loader (libvulkan.so.1) was found';
    const icdDirs = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];
    const icds = icdDirs.flatMap((d) => (existsSync(d) ? readdirSync(d) : []));
    if (!icds.length && !process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES)
      return 'no Vulkan driver (ICD) is installed';
  }
  return null;
}

/**
 * True where WebGPU could only run on a software Vulkan device (Mesa lavapipe): no DRM render node
 * and no NVIDIA device. 'auto' then prefers the CPU provider, which is faster than lavapipe.
 */
export function softwareVulkanOnly(): boolean {
  if (process.platform !== 'linux') return false;
  const dri = existsSync('/dev/dri') ? readdirSync('/dev/dri').some((f) => f.startsWith('renderD')) : false;
  return !dri && !existsSync('/dev/nvidia0');
}

/** ORT's first line without its source location ("/onnxruntime_src/...cc:136 fn() <lambda()> cond was false. "). */
function ortMessage(e: unknown): string {
  const line = ((e as Error).message ?? String(e)).split('\n')[0]!;
  return line.replace(/^\/onnxruntime_src\/\S+:\d+ .*? was false\. /, '').replace(/^\/onnxruntime_src\/\S+:\d+ /, '');
}

type Ort = typeof OrtTypes;
const probes = new Map<ExplicitProvider, Promise<ProviderReport>>();

async function probeOne(ort: Ort, p: ExplicitProvider): Promise<ProviderReport> {
  const pre = precheck(p);
  if (pre) return { name: p, available: false, reason: `${pre}: ${INSTALL_HINT[p]}`, ms: null };
  const t0 = performance.now();
  try {
    // logSeverityLevel 4: a provider that fails to load logs an error of its own; the report carries it.
    const s = await ort.InferenceSession.create(addModel(4), { executionProviders: [p], logSeverityLevel: 4 });
    const x = new ort.Tensor('float32', new Float32Array([1, 2, 3, 4]), [4]);
    const out = (await s.run({ x, y: x })).z as OrtTypes.Tensor;
    await s.release();
    const ms = performance.now() - t0;
    const got = Array.from(out.data as Float32Array);
    if (got.join() !== '2,4,6,8')
      return { name: p, available: false, reason: `probe graph computed ${got.join(', ')} instead of 2, 4, 6, 8`, ms };
    const software = p === 'webgpu' && softwareVulkanOnly();
    const how = software ? ' (software Vulkan: Mesa lavapipe; no GPU device found)' : '';
    return { name: p, available: true, reason: `probe session ran${how}`, ms, ...(software ? { software } : {}) };
  } catch (e) {
    return {
      name: p,
      available: false,
      reason: `${ortMessage(e)}: ${INSTALL_HINT[p]}`,
      ms: performance.now() - t0,
    };
  }
}

/** Probes a provider once per process (a tiny Add graph); later calls reuse the answer. */
export function probe(p: ExplicitProvider): Promise<ProviderReport> {
  let r = probes.get(p);
  if (!r) {
    r = (async () => {
      let ort: Ort;
      try {
        ort = createRequire(import.meta.url)('onnxruntime-node') as Ort;
      } catch (e) {
        return {
          name: p,
          available: false,
          reason: `onnxruntime-node could not be loaded: ${(e as Error).message}`,
          ms: null,
        };
      }
      return probeOne(ort, p);
    })();
    probes.set(p, r);
  }
  return r;
}

/** One report per provider the API knows, this platform's candidates probed in turn (never concurrently). */
export async function probeAll(): Promise<ProviderReport[]> {
  const reports: ProviderReport[] = [];
  for (const p of EXPLICIT_PROVIDERS) reports.push(await probe(p));
  return reports;
}

/**
 * Resolves a requested provider. 'auto' takes the first available of platformProviders(), except
 * that WebGPU on a software-only Vulkan device is passed over (set FSTUDIO_WEBGPU_SOFTWARE=1 to
 * allow it). An explicit provider that is unavailable fails with what to install.
 */
export async function resolveProvider(requested: ExplicitProvider | 'auto'): Promise<ProviderChoice> {
  if (requested !== 'auto') {
    const r =
      requested === 'cpu'
        ? { name: 'cpu' as const, available: true, reason: 'requested', ms: null }
        : await probe(requested);
    if (!r.available) throw new Error(`Execution provider '${requested}' is not available: ${r.reason}`);
    return { provider: requested, requested, considered: [r] };
  }
  const considered: ProviderReport[] = [];
  let chosen: ExplicitProvider | null = null;
  for (const p of platformProviders()) {
    if (chosen) {
      considered.push({ name: p, available: false, reason: `not tried: ${chosen} comes first`, ms: null });
      continue;
    }
    const r = await probe(p);
    if (r.available && p === 'webgpu' && softwareVulkanOnly() && process.env.FSTUDIO_WEBGPU_SOFTWARE !== '1') {
      considered.push({
        ...r,
        reason:
          'passed over: the only Vulkan device is software (Mesa lavapipe), slower than the CPU provider; set FSTUDIO_WEBGPU_SOFTWARE=1 to use it',
      });
      continue;
    }
    considered.push(r);
    if (r.available) chosen = p;
  }
  if (!chosen)
    throw new Error(
      `No execution provider is available: ${considered.map((r) => `${r.name}: ${r.reason}`).join('; ')}`,
    );
  return { provider: chosen, requested, considered };
}

/** One line per provider, for logs and `fstudio doctor`. */
export function describeChoice(c: ProviderChoice): string {
  return [
    `using ${c.provider} (asked: ${c.requested})`,
    ...c.considered.filter((r) => r.name !== c.provider).map((r) => `  ${r.name}: ${r.reason}`),
  ].join('\n');
}
