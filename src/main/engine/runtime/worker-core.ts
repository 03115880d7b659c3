// The compute worker's side of a DeviceRunner: it owns the ORT sessions of one device and the tensors
// kept between calls, and answers the calls of protocol.ts. Calls run concurrently, but everything that
// touches ORT (create, run, release, probe) takes the device lock in turn, so runs on the device are
// serialised (concurrent WebGPU runs can segfault) while a long loop or task lets short calls in between
// its steps. session.run() blocks only this thread.
//
// Tasks are named jobs that run entirely in the worker (build a model's graphs, run them, stream
// progress): the worker's entry (engine/compute-worker.ts) passes their table to serveDevice().
//
// Public API
//   serveDevice(port, tasks, epoch)          answer calls on a worker's parentPort
//   inThreadDevice()                         a Device in this thread, for tests of task code
//   Device, TaskContext, Task, TaskTable, transferring(value, buffers)
import type { MessagePort } from 'node:worker_threads';
import type { HostTensor } from '../graph/ir.js';
import {
  createSession,
  DeviceTensor,
  probeProviders,
  readDevice,
  type Feed,
  type ModelSource,
  type RuntimeSession,
  type SessionOptions,
} from './ort.js';
import {
  CancelledError,
  buffersOf,
  isTensorRef,
  toWireError,
  type Call,
  type FromWorker,
  type LoadedSession,
  type LoopArgs,
  type LoopResult,
  type LoopStep,
  type RunResult,
  type TensorRef,
  type ToWorker,
} from './protocol.js';

/** A FIFO lock: the device runs one ORT operation at a time. */
export class DeviceLock {
  #tail: Promise<void> = Promise.resolve();

  /** Runs fn when every earlier holder is done; a signal aborted while waiting skips it with CancelledError. */
  async with<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const prev = this.#tail;
    let release!: () => void;
    this.#tail = new Promise<void>((r) => (release = r));
    try {
      await prev;
      if (signal?.aborted) throw new CancelledError();
      return await fn();
    } finally {
      release();
    }
  }
}

/** The device as task code sees it: sessions whose runs take the device lock. */
export interface Device {
  load(source: ModelSource, opts?: SessionOptions): Promise<RuntimeSession>;
  /** A kept device tensor copied to the host (under the lock). */
  read(t: Feed, provider: RuntimeSession['provider']): Promise<HostTensor>;
  /**
   * Runs fn holding the device lock: for sessions this module did not create (transformers.js' own), whose
   * runs must take their turn on the device like everyone else's.
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
}

function lockedSession(s: RuntimeSession, lock: DeviceLock): RuntimeSession {
  return {
    provider: s.provider,
    choice: s.choice,
    inputNames: s.inputNames,
    outputNames: s.outputNames,
    run: (feeds) => lock.with(() => s.run(feeds)),
    runMixed: (feeds) => lock.with(() => s.runMixed(feeds)),
    endProfiling: () => lock.with(() => s.endProfiling()),
    release: () => lock.with(() => s.release()),
  };
}

function deviceOn(lock: DeviceLock): Device {
  return {
    load: async (source, opts) => lockedSession(await lock.with(() => createSession(source, opts)), lock),
    read: (t, provider) =>
      lock.with(async () => (t instanceof DeviceTensor ? readDevice(t, provider) : (t as HostTensor))),
    exclusive: (fn) => lock.with(fn),
  };
}

/** A Device in the calling thread (tests of task code; the app only ever uses the worker's). */
export function inThreadDevice(): Device {
  return deviceOn(new DeviceLock());
}

/** A value a task returns (or streams) with the ArrayBuffers to transfer instead of copy. */
export class Transferring<T> {
  constructor(
    readonly value: T,
    readonly buffers: ArrayBuffer[],
  ) {}
}
export const transferring = <T>(value: T, buffers: ArrayBuffer[]) => new Transferring(value, buffers);

export interface TaskContext {
  /** Aborted when the caller cancels: stop at the next step (checkpoint() throws CancelledError). */
  readonly signal: AbortSignal;
  readonly device: Device;
  /** Sends one stream message to the caller (progress, a step's values, a frame). */
  emit(value: unknown): void;
  /** Lets other calls and cancel messages in; throws CancelledError when the caller cancelled. */
  checkpoint(): Promise<void>;
  /**
   * A value kept in the worker across calls under `key` (an opened model with its sessions), created once;
   * the least recently used idle entries are disposed when more than MEMO_MAX are kept.
   */
  memo<T>(key: string, create: () => Promise<T>, dispose: (value: T) => Promise<void>): Promise<T>;
}

export type Task = (args: never, ctx: TaskContext) => Promise<unknown>;
export type TaskTable = Readonly<Record<string, Task>>;

/** Opened models and paused runs' states kept at once (paused states are small; sessions are not). */
const MEMO_MAX = 16;

interface MemoEntry {
  value: Promise<unknown>;
  dispose: (v: unknown) => Promise<void>;
  users: number;
  lastUse: number;
}

const tick = () => new Promise<void>((r) => setImmediate(r));

class DeviceServer {
  readonly #lock = new DeviceLock();
  readonly #device: Device = this.#closable(deviceOn(this.#lock));
  readonly #sessions = new Map<number, RuntimeSession>();
  readonly #kept = new Map<number, { value: Feed; provider: RuntimeSession['provider'] }>();
  readonly #calls = new Map<number, AbortController>();
  readonly #memo = new Map<string, MemoEntry>();
  #nextId = 1;
  /** Set by 'close': the thread is about to be terminated, so nothing new may start a run. */
  #closing = false;

  constructor(
    private readonly port: MessagePort,
    private readonly tasks: TaskTable,
    private readonly epoch: number,
  ) {}

  onMessage(msg: ToWorker): void {
    if (msg.kind === 'cancel') {
      this.#calls.get(msg.id)?.abort();
      return;
    }
    const ac = new AbortController();
    this.#calls.set(msg.id, ac);
    const post = (m: FromWorker, transfer: ArrayBuffer[] = []) => this.port.postMessage(m, transfer);
    const stream = (value: unknown) =>
      value instanceof Transferring
        ? post({ kind: 'stream', id: msg.id, value: value.value }, value.buffers)
        : post({ kind: 'stream', id: msg.id, value });
    void (async () => {
      try {
        if (msg.epoch !== this.epoch)
          throw new Error(`call for compute worker #${msg.epoch} reached worker #${this.epoch}`);
        if (ac.signal.aborted) throw new CancelledError();
        if (this.#closing) throw new Error('the compute worker is closing');
        const r = await this.#handle(msg.call, ac.signal, stream);
        if (r instanceof Transferring) post({ kind: 'done', id: msg.id, value: r.value }, r.buffers);
        else post({ kind: 'done', id: msg.id, value: r });
      } catch (e) {
        post({ kind: 'error', id: msg.id, error: toWireError(e) });
      } finally {
        this.#calls.delete(msg.id);
      }
    })();
  }

  /** The device for tasks, refusing new sessions once 'close' has begun. */
  #closable(d: Device): Device {
    return {
      ...d,
      load: (source, opts) =>
        this.#closing ? Promise.reject(new Error('the compute worker is closing')) : d.load(source, opts),
    };
  }

  #session(handle: number): RuntimeSession {
    const s = this.#sessions.get(handle);
    if (!s) throw new Error(`no session with handle ${handle} (released?)`);
    return s;
  }

  #keep(value: Feed, provider: RuntimeSession['provider']): TensorRef {
    const ref = this.#nextId++;
    this.#kept.set(ref, { value, provider });
    const location = value instanceof DeviceTensor ? value.location : 'cpu';
    return { ref, epoch: this.epoch, dtype: value.dtype, dims: [...value.dims], location };
  }

  #dispose(ref: number): void {
    const k = this.#kept.get(ref);
    if (k?.value instanceof DeviceTensor) k.value.dispose();
    this.#kept.delete(ref);
  }

  #feeds(feeds: Record<string, HostTensor | TensorRef>): Record<string, Feed> {
    const out: Record<string, Feed> = {};
    for (const [name, f] of Object.entries(feeds)) {
      if (!isTensorRef(f)) {
        out[name] = f;
        continue;
      }
      const k = this.#kept.get(f.ref);
      if (!k) throw new Error(`feed '${name}': tensor ref ${f.ref} was disposed or never existed`);
      out[name] = k.value;
    }
    return out;
  }

  async #handle(call: Call, signal: AbortSignal, stream: (v: unknown) => void): Promise<unknown> {
    switch (call.op) {
      case 'load': {
        const source = 'bytes' in call.source ? call.source.bytes : { file: call.source.file };
        const s = await this.#lock.with(() => createSession(source, call.opts), signal);
        const handle = this.#nextId++;
        this.#sessions.set(handle, s); // raw: every use below takes the lock itself
        const value: Omit<LoadedSession, 'epoch'> = {
          handle,
          provider: s.provider,
          choice: s.choice,
          inputNames: [...s.inputNames],
          outputNames: [...s.outputNames],
        };
        return value;
      }
      case 'run': {
        const s = this.#session(call.handle);
        const feeds = this.#feeds(call.feeds);
        const { host, device } = await this.#lock.with(() => s.runMixed(feeds), signal);
        if (signal.aborted) {
          for (const d of Object.values(device)) d.dispose();
          throw new CancelledError();
        }
        const value: RunResult = { outputs: {}, refs: {} };
        for (const [name, t] of Object.entries(device)) value.refs[name] = this.#keep(t, s.provider);
        for (const [name, t] of Object.entries(host)) {
          if (call.keep.includes(name)) value.refs[name] = this.#keep(t, s.provider);
          else value.outputs[name] = t;
        }
        return transferring(value, buffersOf(Object.values(value.outputs)));
      }
      case 'loop':
        return this.#loop(call, signal, stream);
      case 'upload':
        return this.#keep(call.tensor, 'cpu');
      case 'read': {
        const k = this.#kept.get(call.ref);
        if (!k) throw new Error(`tensor ref ${call.ref} was disposed or never existed`);
        const t = await this.#device.read(k.value, k.provider);
        // Host-kept tensors stay usable in the worker, so the caller gets a copy.
        const copy = { dtype: t.dtype, dims: [...t.dims], data: t.data.slice() } as HostTensor;
        return transferring(copy, buffersOf([copy]));
      }
      case 'dispose':
        for (const r of call.refs) this.#dispose(r);
        return null;
      case 'release': {
        const s = this.#sessions.get(call.handle);
        this.#sessions.delete(call.handle);
        if (s) await this.#lock.with(() => s.release());
        return null;
      }
      case 'endProfiling': {
        const s = this.#session(call.handle);
        return this.#lock.with(() => s.endProfiling());
      }
      case 'probe':
        return this.#lock.with(() => probeProviders(), signal);
      case 'task':
        return this.#task(call.name, call.args, signal, stream);
      case 'close':
        this.#closing = true;
        for (const r of [...this.#kept.keys()]) this.#dispose(r);
        for (const s of this.#sessions.values()) await this.#lock.with(() => s.release());
        this.#sessions.clear();
        for (const [key, e] of this.#memo) {
          this.#memo.delete(key);
          await e.value.then(e.dispose).catch(() => undefined);
        }
        return null;
    }
  }

  /** Runs a session `steps` times, feeding carried outputs back as inputs; see protocol.ts LoopArgs. */
  async #loop(a: LoopArgs, signal: AbortSignal, stream: (v: unknown) => void): Promise<LoopResult> {
    const s = this.#session(a.handle);
    for (const [out, input] of Object.entries(a.carry)) {
      if (!s.outputNames.includes(out)) throw new Error(`loop: carry from '${out}', which is not an output`);
      if (!s.inputNames.includes(input)) throw new Error(`loop: carry into '${input}', which is not an input`);
    }
    for (const name of a.stream)
      if (!s.outputNames.includes(name)) throw new Error(`loop: stream '${name}', which is not an output`);
    if (!Number.isInteger(a.steps) || a.steps < 1) throw new Error(`loop: steps must be at least 1, not ${a.steps}`);
    const every = Math.max(1, Math.floor(a.every));
    const feeds = this.#feeds(a.feeds);
    /** Tensors this loop made (carried outputs): disposed when replaced; the caller's feeds never are. */
    const owned = new Set<Feed>();
    const drop = (t: Feed | undefined) => {
      if (t && owned.delete(t) && t instanceof DeviceTensor) t.dispose();
    };
    let step = 0;
    try {
      while (step < a.steps && !signal.aborted) {
        const { host, device } = await this.#lock.with(() => s.runMixed(feeds));
        step++;
        const outputs: Record<string, Feed> = { ...host, ...device };
        if (step % every === 0 || step === a.steps) {
          const msg: LoopStep = { step, outputs: {} };
          for (const name of a.stream) {
            const t = await this.#device.read(outputs[name]!, s.provider);
            // A streamed output that is also carried stays in use here: send a copy.
            msg.outputs[name] = name in a.carry ? ({ ...t, data: t.data.slice() } as HostTensor) : t;
          }
          stream(transferring(msg, buffersOf(Object.values(msg.outputs))));
        }
        for (const [out, input] of Object.entries(a.carry)) {
          drop(feeds[input]);
          feeds[input] = outputs[out]!;
          owned.add(outputs[out]!);
        }
        for (const t of Object.values(device)) if (!owned.has(t)) t.dispose();
        await tick(); // cancel messages and other calls get in between steps
      }
    } catch (e) {
      for (const t of [...owned]) drop(t);
      throw e;
    }
    const refs: Record<string, TensorRef> = {};
    for (const [out, input] of Object.entries(a.carry)) {
      owned.delete(feeds[input]!);
      refs[out] = this.#keep(feeds[input]!, s.provider);
    }
    return { steps: step, refs, stopped: step < a.steps };
  }

  async #task(name: string, args: unknown, signal: AbortSignal, stream: (v: unknown) => void): Promise<unknown> {
    const task = Object.prototype.hasOwnProperty.call(this.tasks, name) ? this.tasks[name] : undefined;
    if (!task) throw new Error(`no task named '${name}' (known: ${Object.keys(this.tasks).join(', ') || 'none'})`);
    const used = new Set<MemoEntry>();
    const ctx: TaskContext = {
      signal,
      device: this.#device,
      emit: stream,
      checkpoint: async () => {
        await tick();
        if (signal.aborted) throw new CancelledError(`task '${name}'`);
      },
      memo: async <T>(key: string, create: () => Promise<T>, dispose: (v: T) => Promise<void>) => {
        let e = this.#memo.get(key);
        if (!e) {
          e = { value: create(), dispose: dispose as (v: unknown) => Promise<void>, users: 0, lastUse: 0 };
          this.#memo.set(key, e);
          const entry = e;
          entry.value.catch(() => this.#memo.get(key) === entry && this.#memo.delete(key));
          await this.#evictMemo();
        }
        e.lastUse = performance.now();
        if (!used.has(e)) {
          used.add(e);
          e.users++;
        }
        return e.value as Promise<T>;
      },
    };
    try {
      return await (task as (a: unknown, c: TaskContext) => Promise<unknown>)(args, ctx);
    } finally {
      for (const e of used) e.users--;
    }
  }

  async #evictMemo(): Promise<void> {
    const idle = [...this.#memo].filter(([, e]) => e.users === 0).sort((a, b) => a[1].lastUse - b[1].lastUse);
    while (this.#memo.size > MEMO_MAX && idle.length) {
      const [key, e] = idle.shift()!;
      this.#memo.delete(key);
      await e.value.then(e.dispose).catch(() => undefined);
    }
  }
}

/** Answers DeviceRunner calls on `port` (a worker's parentPort) with the given tasks. */
export function serveDevice(port: MessagePort, tasks: TaskTable, epoch: number): void {
  const server = new DeviceServer(port, tasks, epoch);
  port.on('message', (msg: ToWorker) => server.onMessage(msg));
}
