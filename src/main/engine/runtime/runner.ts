// The main thread's side of the compute worker: every model run in the app goes through a DeviceRunner,
// so session.run() never blocks the thread serving the UI. One runner per device (RunnerSet): its worker
// owns the device's sessions and kept tensors and serialises their runs (worker-core.ts).
//
// Long jobs: `loop` runs a graph step after step in the worker, carrying outputs back as inputs (z and
// the optimiser state stay there) and streaming chosen outputs; `task` runs a named job of the worker's
// task table (engine/compute-worker.ts) that streams progress. Any call takes an AbortSignal: a queued
// call never starts, a loop or task stops at its next step. When the worker dies mid-call (a crash, the
// OOM killer) every pending call fails with WorkerDied and says so; the next call starts a new worker,
// and handles of the old one are refused by name instead of reaching the wrong worker.
//
// Public API
//   RunnerSet: .for(device) -> DeviceRunner     one runner per device key ('cpu', 'gpu'); deviceFor(provider)
//   runnerFor(device), closeRunners()          a process-wide RunnerSet (tests, scripts)
//   DeviceRunner: load, run, loop, upload, read, dispose, release, endProfiling, probeProviders, task, close
import { Worker } from 'node:worker_threads';
import { workerEntry } from '../../base/worker-entry.js';
import type { ProviderReport } from '../../../shared/providers.js';
import type { HostTensor } from '../graph/ir.js';
import type { OutputLocation, ProfiledNode, ProviderName, SessionOptions } from './ort.js';
import {
  CancelledError,
  buffersOf,
  fromWireError,
  isTensorRef,
  type Call,
  type FromWorker,
  type LoadedSession,
  type LoopResult,
  type LoopStep,
  type ResultOf,
  type RunResult,
  type TensorRef,
  type ToWorker,
} from './protocol.js';

export type { LoadedSession, LoopResult, LoopStep, RunResult, TensorRef } from './protocol.js';
export { CancelledError, isCancelled, isTensorRef } from './protocol.js';

export interface RunnerOptions {
  /**
   * The worker script (a URL, or code to eval as base/worker-entry.ts makes it); by default
   * engine/compute-worker.ts (from source) or the bundle's compute-worker.js.
   */
  entry?: string | URL;
  /** Extra node flags for the worker. */
  execArgv?: string[];
}

export interface CallOptions {
  /** Abort the call: a queued call never starts, a loop or task stops at its next step. */
  signal?: AbortSignal;
}

export interface RunOptions extends CallOptions {
  /**
   * Per output: 'cpu' returns it to the caller; 'gpu-buffer' keeps it in the worker as a TensorRef
   * (on the GPU where the session put it there). Outputs the session left on the GPU are always kept.
   */
  outputLocations?: Record<string, OutputLocation>;
  /** Transfer the feeds' ArrayBuffers instead of copying them (the caller's arrays become unusable). */
  transferFeeds?: boolean;
}

export interface LoopOptions extends CallOptions {
  feeds: Record<string, HostTensor | TensorRef>;
  /** output name -> input name, fed back after every step. */
  carry: Record<string, string>;
  steps: number;
  /** Outputs copied to onStep every `every` steps (default 1) and after the last. */
  stream?: string[];
  every?: number;
  onStep?: (step: LoopStep) => void;
}

export interface TaskOptions<S> extends CallOptions {
  onStream?: (value: S) => void;
  /** ArrayBuffers in args to transfer instead of copy. */
  transfer?: ArrayBuffer[];
}

/** The error of every call pending when the worker died. */
export class WorkerDiedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerDied';
  }
}

interface Pending {
  op: Call['op'];
  resolve(v: unknown): void;
  reject(e: Error): void;
  onStream?: (v: unknown) => void;
}

export class DeviceRunner {
  #worker: Worker | null = null;
  #epoch = 0;
  #closed = false;
  /** Why the last worker stopped, for the message of a stale handle. */
  #lastExit = '';
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;

  constructor(
    readonly device: string,
    private readonly opts: RunnerOptions = {},
  ) {}

  /** The current worker's number (1 for the first; a new worker after a death gets the next). */
  get epoch(): number {
    return this.#epoch;
  }

  /** True once close() ran. */
  get closed(): boolean {
    return this.#closed;
  }

  #spawn(): Worker {
    const entry = this.opts.entry ?? workerEntry(import.meta.url, '../compute-worker.ts', 'compute-worker');
    const epoch = ++this.#epoch;
    const w = new Worker(entry, {
      eval: typeof entry === 'string',
      execArgv: this.opts.execArgv ?? [],
      workerData: { epoch, device: this.device },
    });
    w.unref(); // an idle worker does not keep the process alive
    w.on('message', (m: FromWorker) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      if (m.kind === 'stream') {
        p.onStream?.(m.value);
        return;
      }
      this.#pending.delete(m.id);
      if (!this.#pending.size) w.unref();
      if (m.kind === 'done') p.resolve(m.value);
      else p.reject(fromWireError(m.error));
    });
    const died = (why: string) => {
      if (this.#worker !== w) return;
      this.#worker = null;
      this.#lastExit = why;
      const pending = [...this.#pending.values()];
      this.#pending.clear();
      for (const p of pending)
        p.reject(
          new WorkerDiedError(
            `The compute worker for ${this.device} stopped while running '${p.op}' (${why}). The sessions and ` +
              'tensors it held are gone; the next call starts a new worker.',
          ),
        );
    };
    w.on('error', (e) => died(`it crashed: ${e.message}`));
    w.on('exit', (code) => died(`exit code ${code}`));
    this.#worker = w;
    return w;
  }

  /** Refuses a handle of a worker that is gone (the call would otherwise reach a new worker's state). */
  #checkEpoch(what: string, epoch: number): void {
    if (epoch === this.#epoch && this.#worker) return;
    throw new Error(
      `${what} belonged to compute worker #${epoch} for ${this.device}, which stopped` +
        `${this.#lastExit ? ` (${this.#lastExit})` : ''}: load the model again.`,
    );
  }

  #call<C extends Call>(
    call: C,
    o: { signal?: AbortSignal; onStream?: (v: unknown) => void; transfer?: ArrayBuffer[] } = {},
  ): Promise<ResultOf<C>> {
    if (this.#closed && call.op !== 'close') return Promise.reject(new Error(`the ${this.device} runner is closed`));
    if (o.signal?.aborted) return Promise.reject(new CancelledError(`'${call.op}'`));
    const w = this.#worker ?? this.#spawn();
    const id = this.#nextId++;
    return new Promise<ResultOf<C>>((resolve, reject) => {
      const onAbort = () => w.postMessage({ kind: 'cancel', id } satisfies ToWorker);
      o.signal?.addEventListener('abort', onAbort, { once: true });
      const settle =
        <T>(fn: (v: T) => void) =>
        (v: T) => {
          o.signal?.removeEventListener('abort', onAbort);
          fn(v);
        };
      this.#pending.set(id, {
        op: call.op,
        resolve: settle(resolve as (v: unknown) => void),
        reject: settle(reject),
        onStream: o.onStream,
      });
      w.ref();
      w.postMessage({ kind: 'call', id, epoch: this.#epoch, call } satisfies ToWorker, o.transfer ?? []);
    });
  }

  /** Creates a session in the worker from model bytes (copied) or a model file (read by the worker). */
  async load(model: Uint8Array | { file: string }, opts: SessionOptions = {}, o: CallOptions = {}) {
    const source = model instanceof Uint8Array ? { bytes: model } : { file: model.file };
    const s = await this.#call({ op: 'load', source, opts }, o);
    return { ...s, epoch: this.#epoch } satisfies LoadedSession;
  }

  #feeds(feeds: Record<string, HostTensor | TensorRef>): void {
    for (const [name, f] of Object.entries(feeds)) if (isTensorRef(f)) this.#checkEpoch(`feed '${name}'`, f.epoch);
  }

  /** Runs a session once; feeds may be host tensors or refs kept by earlier calls. */
  async run(
    session: LoadedSession,
    feeds: Record<string, HostTensor | TensorRef>,
    opts: RunOptions = {},
  ): Promise<RunResult> {
    this.#checkEpoch(`session ${session.handle}`, session.epoch);
    this.#feeds(feeds);
    const keep = Object.entries(opts.outputLocations ?? {})
      .filter(([, loc]) => loc === 'gpu-buffer')
      .map(([name]) => name);
    const hosts = Object.values(feeds).filter((f): f is HostTensor => !isTensorRef(f));
    const transfer = opts.transferFeeds ? buffersOf(hosts) : [];
    return this.#call({ op: 'run', handle: session.handle, feeds, keep }, { signal: opts.signal, transfer });
  }

  /**
   * Runs a session `steps` times in the worker, carrying outputs back into inputs, streaming `stream` outputs
   * to onStep. A cancel ends it after the current step with `stopped: true` and the carried state kept.
   */
  async loop(session: LoadedSession, o: LoopOptions): Promise<LoopResult> {
    this.#checkEpoch(`session ${session.handle}`, session.epoch);
    this.#feeds(o.feeds);
    const { feeds, carry, steps } = o;
    return this.#call(
      { op: 'loop', handle: session.handle, feeds, carry, steps, stream: o.stream ?? [], every: o.every ?? 1 },
      { signal: o.signal, onStream: o.onStep as (v: unknown) => void },
    );
  }

  /** Keeps a host tensor in the worker (e.g. a job's starting z) for later runs to feed by reference. */
  async upload(tensor: HostTensor, o: CallOptions & { transfer?: boolean } = {}): Promise<TensorRef> {
    return this.#call({ op: 'upload', tensor }, { signal: o.signal, transfer: o.transfer ? buffersOf([tensor]) : [] });
  }

  /** Copies a kept tensor to the caller (a GPU one through a graph whose output is on the CPU). */
  async read(ref: TensorRef): Promise<HostTensor> {
    this.#checkEpoch(`tensor ref ${ref.ref}`, ref.epoch);
    return this.#call({ op: 'read', ref: ref.ref });
  }

  /** Frees kept tensors; refs of a worker that is gone are already free. */
  async dispose(...refs: TensorRef[]): Promise<void> {
    const live = refs.filter((r) => r.epoch === this.#epoch && this.#worker);
    if (live.length) await this.#call({ op: 'dispose', refs: live.map((r) => r.ref) });
  }

  async endProfiling(session: LoadedSession): Promise<ProfiledNode[]> {
    this.#checkEpoch(`session ${session.handle}`, session.epoch);
    return this.#call({ op: 'endProfiling', handle: session.handle });
  }

  /** Releases a session; one of a worker that is gone is already released. */
  async release(session: LoadedSession): Promise<void> {
    if (session.epoch !== this.#epoch || !this.#worker) return;
    await this.#call({ op: 'release', handle: session.handle });
  }

  /**
   * probeProviders() inside the worker, so a WebGPU probe never runs beside the worker's WebGPU sessions
   * (concurrent runs can segfault) and never blocks the main thread.
   */
  probeProviders(o: CallOptions = {}): Promise<ProviderReport[]> {
    return this.#call({ op: 'probe' }, o);
  }

  /** Runs a named task of the worker's table; its stream messages reach onStream. */
  task<R, S = unknown>(name: string, args: unknown, o: TaskOptions<S> = {}): Promise<R> {
    return this.#call(
      { op: 'task', name, args },
      { signal: o.signal, onStream: o.onStream as (v: unknown) => void, transfer: o.transfer },
    ) as Promise<R>;
  }

  /**
   * Releases every session and tensor, then stops the thread; later calls are refused. (A worker is never
   * terminated in the middle of a run: onnxruntime's binding aborts the whole process when its thread is
   * torn down under it. close() asks the worker first, and cancel only ever stops between steps.)
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const w = this.#worker;
    if (!w) return;
    try {
      await this.#call({ op: 'close' });
    } catch {
      /* dying anyway */
    } finally {
      this.#worker = null;
      await w.terminate();
    }
  }
}

/** The runner's device key for a provider: the CPU has its own worker, every GPU provider shares one. */
export function deviceFor(provider: ProviderName | undefined): 'cpu' | 'gpu' {
  return provider === 'cpu' ? 'cpu' : 'gpu';
}

/** One runner per device key, made on first use: what an open studio (or one CLI command) owns. */
export class RunnerSet {
  readonly #runners = new Map<string, DeviceRunner>();

  constructor(private readonly opts?: RunnerOptions) {}

  /** The runner for a device key ('cpu', 'gpu'), so every caller's runs on it go through one worker. */
  for(device: string): DeviceRunner {
    let r = this.#runners.get(device);
    if (!r || r.closed) {
      r = new DeviceRunner(device, this.opts);
      this.#runners.set(device, r);
    }
    return r;
  }

  /** Closes every runner (a closed set still makes new ones on demand). */
  async close(): Promise<void> {
    const all = [...this.#runners.values()];
    this.#runners.clear();
    await Promise.all(all.map((r) => r.close()));
  }
}

const shared = new RunnerSet();

/** A runner of the process-wide set, for tests and scripts (the app's services own their RunnerSet). */
export function runnerFor(device: string): DeviceRunner {
  return shared.for(device);
}

/** Closes the process-wide set's runners (tests' afterAll). */
export function closeRunners(): Promise<void> {
  return shared.close();
}
