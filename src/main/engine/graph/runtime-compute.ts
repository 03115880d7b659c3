// The main thread's side of the compute worker: ORT sessions live in a worker thread so that
// session.run() never blocks the thread serving the UI (RUNTIME.md). One ComputeWorker per
// device; the worker handles its requests one at a time, so runs on a device are serialised.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ProviderReport } from '../../../shared/api.js';
import type { HostTensor, OutputLocation, ProfiledNode, SessionOptions } from './runtime.js';
import {
  buffersOf,
  fromWireError,
  isTensorRef,
  type Envelope,
  type LoadedSession,
  type Reply,
  type Request,
  type ResultOf,
  type RunResult,
  type TensorRef,
} from './runtime-protocol.js';

export type { LoadedSession, RunResult, TensorRef } from './runtime-protocol.js';
export { isTensorRef } from './runtime-protocol.js';

export interface ComputeWorkerOptions {
  /** The worker script; by default runtime-worker.ts beside this file (from source) or the bundle's compute-worker.js. */
  workerUrl?: URL;
  /** Extra node flags for the worker. */
  execArgv?: string[];
}

export interface RunOptions {
  /**
   * Per output: 'cpu' returns it to the caller; 'gpu-buffer' keeps it in the worker as a TensorRef
   * (on the GPU where the session put it there). Outputs the session left on the GPU are always kept.
   */
  outputLocations?: Record<string, OutputLocation>;
  /** Transfer the feeds' ArrayBuffers instead of copying them (the caller's arrays become unusable). */
  transferFeeds?: boolean;
}

/** The worker script, or (from source) a bootstrap that registers tsx and then imports runtime-worker.ts. */
function defaultWorker(): string | URL {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    // Node 20 applies neither `--import tsx` from a worker's execArgv nor tsx's side-effect loader
    // inside a worker, so the entry is an eval'd bootstrap calling tsx's ESM register() API first
    // (its ESM build: the CommonJS one resolves its hooks file wrongly).
    const pkgFile = createRequire(here).resolve('tsx/package.json');
    const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as {
      exports: Record<string, { import: { default: string } }>;
    };
    const api = pathToFileURL(path.join(path.dirname(pkgFile), pkg.exports['./esm/api']!.import.default)).href;
    const entry = new URL('./runtime-worker.ts', here).href;
    return `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  }
  // Bundled (electron-vite names the entry compute-worker); this code may sit in a chunk one level down.
  for (const rel of ['./compute-worker.js', '../compute-worker.js']) {
    const url = new URL(rel, here);
    if (existsSync(fileURLToPath(url))) return url;
  }
  throw new Error(`compute-worker.js was not found next to ${fileURLToPath(here)}`);
}

export class ComputeWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #dead: Error | null = null;

  constructor(opts: ComputeWorkerOptions = {}) {
    const entry = opts.workerUrl ?? defaultWorker();
    this.#worker = new Worker(entry, { eval: typeof entry === 'string', execArgv: opts.execArgv ?? [] });
    this.#worker.unref(); // an idle worker does not keep the process alive
    this.#worker.on('message', (r: Reply) => {
      const p = this.#pending.get(r.id);
      if (!p) return;
      this.#pending.delete(r.id);
      if (!this.#pending.size) this.#worker.unref();
      if (r.ok) p.resolve(r.value);
      else p.reject(fromWireError(r.error));
    });
    const fail = (e: Error) => {
      this.#dead = e;
      for (const p of this.#pending.values()) p.reject(e);
      this.#pending.clear();
    };
    this.#worker.on('error', (e) => fail(new Error(`compute worker crashed: ${e.message}`, { cause: e })));
    this.#worker.on('exit', (code) => fail(new Error(`compute worker exited (code ${code})`)));
  }

  #call<R extends Request>(req: R, transfer: ArrayBuffer[] = []): Promise<ResultOf<R>> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    return new Promise<ResultOf<R>>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#worker.ref();
      this.#worker.postMessage({ id, req } satisfies Envelope, transfer);
    });
  }

  /** Creates a session in the worker; the model bytes are copied (the caller keeps them). */
  load(model: Uint8Array, opts: SessionOptions = {}): Promise<LoadedSession> {
    return this.#call({ op: 'load', model, opts });
  }

  /** Runs a session; feeds may be host tensors or refs kept by earlier runs. */
  run(
    handle: number | LoadedSession,
    feeds: Record<string, HostTensor | TensorRef>,
    opts: RunOptions = {},
  ): Promise<RunResult> {
    const h = typeof handle === 'number' ? handle : handle.handle;
    const keep = Object.entries(opts.outputLocations ?? {})
      .filter(([, loc]) => loc === 'gpu-buffer')
      .map(([name]) => name);
    const hosts = Object.values(feeds).filter((f): f is HostTensor => !isTensorRef(f));
    return this.#call({ op: 'run', handle: h, feeds, keep }, opts.transferFeeds ? buffersOf(hosts) : []);
  }

  /** Copies a kept tensor to the caller (a GPU one through a graph whose output is on the CPU). */
  read(ref: TensorRef): Promise<HostTensor> {
    return this.#call({ op: 'read', ref: ref.ref });
  }

  dispose(...refs: TensorRef[]): Promise<null> {
    return this.#call({ op: 'dispose', refs: refs.map((r) => r.ref) });
  }

  endProfiling(handle: number | LoadedSession): Promise<ProfiledNode[]> {
    return this.#call({ op: 'endProfiling', handle: typeof handle === 'number' ? handle : handle.handle });
  }

  release(handle: number | LoadedSession): Promise<null> {
    return this.#call({ op: 'release', handle: typeof handle === 'number' ? handle : handle.handle });
  }

  /**
   * probeProviders() inside the worker: in the app, probe here rather than on the main thread, so a
   * WebGPU probe never runs beside the worker's WebGPU sessions (concurrent runs can segfault).
   */
  probeProviders(): Promise<ProviderReport[]> {
    return this.#call({ op: 'probe' });
  }

  /** True once close() ran or the worker died. */
  get closed(): boolean {
    return this.#dead !== null;
  }

  /** Releases every session and tensor, then stops the thread. */
  async close(): Promise<void> {
    if (this.#dead) return;
    try {
      await this.#call({ op: 'close' });
    } finally {
      this.#dead = new Error('compute worker closed');
      await this.#worker.terminate();
    }
  }
}

const shared = new Map<string, ComputeWorker>();

/**
 * The one worker for a device (key: 'cpu', 'webgpu:0', ...), so every caller's runs on it go
 * through one queue. Closed workers are replaced on the next call.
 */
export function computeWorkerFor(device: string, opts?: ComputeWorkerOptions): ComputeWorker {
  let w = shared.get(device);
  if (!w || w.closed) {
    w = new ComputeWorker(opts);
    shared.set(device, w);
  }
  return w;
}
