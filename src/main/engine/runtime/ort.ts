// The only module (with providers.ts) that imports onnxruntime-node: everything
// else sees HostTensor, RuntimeSession and opaque DeviceTensor handles, never an ORT tensor.
//
// Facts that shape it (docs/architecture.md, "The runtime"): session.run blocks the calling thread,
// so the app creates and runs sessions only in the compute worker (worker-core.ts, driven from the
// main thread by runner.ts) and this in-thread API is for that worker and for tests; a GPU-located
// output is never read with getData (it crashed the process): it is either fed to another run or
// read through a graph output that lives on the CPU (readDevice).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type * as OrtTypes from 'onnxruntime-node';
import type { Provider, ProviderReport } from '../../../shared/providers.js';
import { resolveProvider, probeAll, type ExplicitProvider, type ProviderChoice } from './providers.js';
import type { DType, HostTensor, TensorData } from '../graph/ir.js';
import { tinyModel } from './tiny-model.js';

// The graph IR's host tensor is what crosses this module's API (one definition, in ir.ts).
export type { DType, HostTensor };
export type HostData = TensorData;
/** A provider or 'auto' (the API's Provider). */
export type ProviderName = Provider;
export type OutputLocation = 'cpu' | 'gpu-buffer';
export interface SessionOptions {
  /** Default 'cpu' (deterministic, supports float64); 'auto' picks the best this machine has. */
  provider?: ProviderName;
  optimization?: 'all' | 'basic' | 'disabled';
  /** Per output; 'gpu-buffer' only takes effect on GPU providers (webgpu), elsewhere the output stays on the CPU. */
  preferredOutputLocation?: Record<string, OutputLocation>;
  /** Record per-node timings and placement; read them with RuntimeSession.endProfiling(). */
  profile?: boolean;
  /** Intra-op threads for the CPU provider (ORT's default: one per core). */
  threads?: number;
  /**
   * ORT's memory pattern (default on): it plans one block for a run's intermediates from the first run. For
   * one big graph run many times (the generation step) it allocates a second block on the second run; off,
   * the arena serves the buffers and the peak stays lower.
   */
  memoryPattern?: boolean;
}

/** One node's record from ORT's profile: which provider ran it and for how long. */
export interface ProfiledNode {
  name: string;
  op: string;
  provider: string;
  durUs: number;
}

/** A tensor that stays where the session left it (GPU memory on webgpu). Feed it to another run, read it with readDevice. */
export class DeviceTensor {
  #tensor: OrtTypes.Tensor | null;
  readonly dtype: DType;
  readonly dims: readonly number[];
  readonly location: OutputLocation;
  /** @internal */
  constructor(tensor: OrtTypes.Tensor) {
    this.#tensor = tensor;
    this.dtype = tensor.type as DType;
    this.dims = [...tensor.dims];
    this.location = tensor.location === 'gpu-buffer' ? 'gpu-buffer' : 'cpu';
  }
  get disposed(): boolean {
    return this.#tensor === null;
  }
  /** @internal */
  ortTensor(): OrtTypes.Tensor {
    if (!this.#tensor) throw new Error('DeviceTensor used after dispose()');
    return this.#tensor;
  }
  dispose(): void {
    if (this.#tensor?.location === 'gpu-buffer') this.#tensor.dispose();
    this.#tensor = null;
  }
}

export type Feed = HostTensor | DeviceTensor;

export interface RuntimeSession {
  /** The provider that runs it ('cpu', 'webgpu', ...), after resolving 'auto'. */
  readonly provider: ExplicitProvider;
  /** How 'auto' chose (or the explicit choice with its check), for reports. */
  readonly choice: ProviderChoice;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Runs with host outputs only; fails when an output is GPU-located (use runMixed). */
  run(feeds: Record<string, Feed>): Promise<Record<string, HostTensor>>;
  /** Runs and splits outputs into host copies and device-resident handles (the caller disposes those). */
  runMixed(
    feeds: Record<string, Feed>,
  ): Promise<{ host: Record<string, HostTensor>; device: Record<string, DeviceTensor> }>;
  /** Ends profiling (profile: true) and returns the per-node records. */
  endProfiling(): Promise<ProfiledNode[]>;
  release(): Promise<void>;
}

type Ort = typeof OrtTypes;
let ortModule: Ort | undefined;
let ortLoadError: Error | undefined;

/** Loads onnxruntime-node on first use, so a broken native install is a reported error, not a crash at import. */
export function loadOrt(): Ort {
  if (ortModule) return ortModule;
  if (ortLoadError) throw ortLoadError;
  try {
    // createRequire: the package is CommonJS with a native binding, and bundlers must leave it external.
    ortModule = createRequire(import.meta.url)('onnxruntime-node') as Ort;
    return ortModule;
  } catch (e) {
    ortLoadError = new Error(
      `onnxruntime-node could not be loaded (${(e as Error).message}). Reinstall it with \`npm install onnxruntime-node@1.30\`.`,
    );
    throw ortLoadError;
  }
}

/** onnxruntime-node's version, or null when it cannot be loaded. */
export function ortVersion(): string | null {
  try {
    const ort = loadOrt();
    return (ort.env.versions as Record<string, string | undefined>).node ?? ort.env.versions.common ?? null;
  } catch {
    return null;
  }
}

/** Tries each execution provider this platform can have with a tiny real session. */
export async function probeProviders(): Promise<ProviderReport[]> {
  return probeAll();
}

const TYPED: Record<DType, (n: number) => HostData> = {
  float32: (n) => new Float32Array(n),
  float64: (n) => new Float64Array(n),
  int64: (n) => new BigInt64Array(n),
  int32: (n) => new Int32Array(n),
  bool: (n) => new Uint8Array(n),
  uint8: (n) => new Uint8Array(n),
};

/** An all-zero host tensor. */
export function zeros(dtype: DType, dims: readonly number[]): HostTensor {
  return { dtype, dims: [...dims], data: TYPED[dtype](dims.reduce((a, b) => a * b, 1)) };
}

function toOrt(ort: Ort, name: string, t: Feed): OrtTypes.Tensor {
  if (t instanceof DeviceTensor) return t.ortTensor();
  const n = t.dims.reduce((a, b) => a * b, 1);
  if (t.data.length !== n)
    throw new Error(`feed '${name}': ${t.data.length} values for dims [${t.dims.join(', ')}] (${n})`);
  return new ort.Tensor(t.dtype, t.data as never, [...t.dims]);
}

function fromOrt(t: OrtTypes.Tensor): HostTensor {
  const dtype = (t.type === 'bool' ? 'bool' : t.type) as DType;
  if (!(dtype in TYPED)) throw new Error(`output dtype ${t.type} is not supported by the runtime`);
  // bool arrives as Uint8Array already; keep the typed array ORT allocated for us (no copy).
  return { dtype, dims: [...t.dims], data: t.data as HostData };
}

function ortSessionOptions(provider: ExplicitProvider, opts: SessionOptions, profileDir: string | null) {
  const o: OrtTypes.InferenceSession.SessionOptions = {
    executionProviders: [provider],
    graphOptimizationLevel: opts.optimization ?? 'all',
    logSeverityLevel: 3,
  };
  if (opts.threads) o.intraOpNumThreads = opts.threads;
  if (opts.memoryPattern === false) o.enableMemPattern = false;
  if (provider === 'webgpu' && opts.preferredOutputLocation)
    o.preferredOutputLocation = { ...opts.preferredOutputLocation };
  if (profileDir) {
    o.enableProfiling = true;
    o.profileFilePrefix = path.join(profileDir, 'profile');
  }
  return o;
}

function readProfile(dir: string): ProfiledNode[] {
  const nodes: ProfiledNode[] = [];
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const events = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as {
      cat?: string;
      name?: string;
      dur?: number;
      args?: { op_name?: string; provider?: string };
    }[];
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name?.endsWith('_kernel_time')) continue;
      nodes.push({
        name: e.name.slice(0, -'_kernel_time'.length),
        op: e.args?.op_name ?? '?',
        provider: e.args?.provider ?? '?',
        durUs: e.dur ?? 0,
      });
    }
  }
  return nodes;
}

class OrtRuntimeSession implements RuntimeSession {
  #session: OrtTypes.InferenceSession | null;
  #profileDir: string | null;
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  constructor(
    private readonly ort: Ort,
    session: OrtTypes.InferenceSession,
    readonly provider: ExplicitProvider,
    readonly choice: ProviderChoice,
    profileDir: string | null,
  ) {
    this.#session = session;
    this.#profileDir = profileDir;
    this.inputNames = [...session.inputNames];
    this.outputNames = [...session.outputNames];
  }

  #live(): OrtTypes.InferenceSession {
    if (!this.#session) throw new Error('session used after release()');
    return this.#session;
  }

  async runMixed(feeds: Record<string, Feed>) {
    const session = this.#live();
    const missing = this.inputNames.filter((n) => !(n in feeds));
    if (missing.length) throw new Error(`missing feeds: ${missing.join(', ')}`);
    const ortFeeds: Record<string, OrtTypes.Tensor> = {};
    for (const n of this.inputNames) ortFeeds[n] = toOrt(this.ort, n, feeds[n]!);
    const out = await session.run(ortFeeds);
    const host: Record<string, HostTensor> = {};
    const device: Record<string, DeviceTensor> = {};
    for (const [name, value] of Object.entries(out)) {
      const t = value as OrtTypes.Tensor;
      if (t.location === 'gpu-buffer') device[name] = new DeviceTensor(t);
      else host[name] = fromOrt(t);
    }
    return { host, device };
  }

  async run(feeds: Record<string, Feed>) {
    const { host, device } = await this.runMixed(feeds);
    const onGpu = Object.keys(device);
    if (onGpu.length) {
      for (const d of Object.values(device)) d.dispose();
      throw new Error(`outputs ${onGpu.join(', ')} are GPU-located: use runMixed() and readDevice()`);
    }
    return host;
  }

  async endProfiling() {
    if (!this.#profileDir) throw new Error('session was created without profile: true');
    this.#live().endProfiling();
    return readProfile(this.#profileDir);
  }

  async release() {
    const s = this.#session;
    this.#session = null;
    if (s) await s.release();
    if (this.#profileDir) rmSync(this.#profileDir, { recursive: true, force: true });
    this.#profileDir = null;
  }
}

/** A model to load: its ONNX bytes, or the path of a model file (one with external data must be loaded by path). */
export type ModelSource = Uint8Array | { file: string };

/**
 * Creates an inference session in this thread. Only the compute worker (worker-core.ts) calls this in the
 * app (a lint rule keeps it so); tests use it directly.
 */
export async function createSession(model: ModelSource, opts: SessionOptions = {}): Promise<RuntimeSession> {
  const ort = loadOrt();
  const choice = await resolveProvider(opts.provider ?? 'cpu');
  const profileDir = opts.profile ? mkdtempSync(path.join(tmpdir(), 'fstudio-ort-profile-')) : null;
  try {
    const o = ortSessionOptions(choice.provider, opts, profileDir);
    const session = await (model instanceof Uint8Array
      ? ort.InferenceSession.create(model, o)
      : ort.InferenceSession.create(model.file, o));
    return new OrtRuntimeSession(ort, session, choice.provider, choice, profileDir);
  } catch (e) {
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
    throw new Error(`${choice.provider}: could not create the session: ${(e as Error).message}`, { cause: e });
  }
}

const readers = new Map<string, Promise<RuntimeSession>>();

/**
 * Copies a device tensor to the host through an Identity graph whose output lives on the CPU
 * (never getData on a GPU buffer). The tensor stays valid.
 */
export async function readDevice(t: DeviceTensor, provider: ExplicitProvider = 'webgpu'): Promise<HostTensor> {
  if (t.location === 'cpu') return fromOrt(t.ortTensor());
  const key = `${provider}:${t.dtype}:${t.dims.join('x')}`;
  let reader = readers.get(key);
  if (!reader) {
    const v = (name: string) => ({ name, dtype: t.dtype, dims: t.dims });
    const model = tinyModel({
      nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }],
      inputs: [v('x')],
      outputs: [v('y')],
    });
    reader = createSession(model, { provider, preferredOutputLocation: { y: 'cpu' } });
    readers.set(key, reader);
    reader.catch(() => readers.delete(key));
  }
  const out = await (await reader).run({ x: t });
  return out.y!;
}
