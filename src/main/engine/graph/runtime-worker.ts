// The compute worker's entry (bundled as compute-worker.js; from source, ComputeWorker starts it through a tsx bootstrap).
// It owns the ORT sessions of one device and handles requests strictly one at a time, so runs
// on the device are serialised (concurrent WebGPU runs can segfault, RUNTIME.md), and its
// session.run() blocks only this thread.
import { parentPort } from 'node:worker_threads';
import {
  createSession,
  DeviceTensor,
  probeProviders,
  readDevice,
  type Feed,
  type HostTensor,
  type RuntimeSession,
} from './runtime.js';
import {
  buffersOf,
  isTensorRef,
  toWireError,
  type Envelope,
  type LoadedSession,
  type Reply,
  type Request,
  type RunResult,
  type TensorRef,
} from './runtime-protocol.js';

const sessions = new Map<number, RuntimeSession>();
const kept = new Map<number, { value: Feed; provider: RuntimeSession['provider'] }>();
let nextId = 1;

function session(handle: number): RuntimeSession {
  const s = sessions.get(handle);
  if (!s) throw new Error(`no session with handle ${handle} (released?)`);
  return s;
}

function keep(value: Feed, provider: RuntimeSession['provider']): TensorRef {
  const ref = nextId++;
  kept.set(ref, { value, provider });
  const location = value instanceof DeviceTensor ? value.location : 'cpu';
  return { ref, dtype: value.dtype, dims: [...value.dims], location };
}

function dispose(ref: number): void {
  const k = kept.get(ref);
  if (k?.value instanceof DeviceTensor) k.value.dispose();
  kept.delete(ref);
}

async function handle(req: Request): Promise<{ value: unknown; transfer: ArrayBuffer[] }> {
  switch (req.op) {
    case 'load': {
      const s = await createSession(req.model, req.opts);
      const handle = nextId++;
      sessions.set(handle, s);
      const value: LoadedSession = {
        handle,
        provider: s.provider,
        choice: s.choice,
        inputNames: [...s.inputNames],
        outputNames: [...s.outputNames],
      };
      return { value, transfer: [] };
    }
    case 'run': {
      const s = session(req.handle);
      const feeds: Record<string, Feed> = {};
      for (const [name, f] of Object.entries(req.feeds)) {
        if (!isTensorRef(f)) {
          feeds[name] = f;
          continue;
        }
        const k = kept.get(f.ref);
        if (!k) throw new Error(`feed '${name}': tensor ref ${f.ref} was disposed or never existed`);
        feeds[name] = k.value;
      }
      const { host, device } = await s.runMixed(feeds);
      const value: RunResult = { outputs: {}, refs: {} };
      for (const [name, t] of Object.entries(device)) value.refs[name] = keep(t, s.provider);
      for (const [name, t] of Object.entries(host)) {
        if (req.keep.includes(name)) value.refs[name] = keep(t, s.provider);
        else value.outputs[name] = t;
      }
      return { value, transfer: buffersOf(Object.values(value.outputs)) };
    }
    case 'read': {
      const k = kept.get(req.ref);
      if (!k) throw new Error(`tensor ref ${req.ref} was disposed or never existed`);
      const t: HostTensor = k.value instanceof DeviceTensor ? await readDevice(k.value, k.provider) : k.value;
      // Host-kept tensors stay usable in the worker, so the caller gets a copy.
      const copy = { dtype: t.dtype, dims: [...t.dims], data: t.data.slice() } as HostTensor;
      return { value: copy, transfer: buffersOf([copy]) };
    }
    case 'dispose':
      for (const r of req.refs) dispose(r);
      return { value: null, transfer: [] };
    case 'release': {
      const s = sessions.get(req.handle);
      sessions.delete(req.handle);
      if (s) await s.release();
      return { value: null, transfer: [] };
    }
    case 'endProfiling':
      return { value: await session(req.handle).endProfiling(), transfer: [] };
    case 'probe':
      return { value: await probeProviders(), transfer: [] };
    case 'close': {
      for (const r of [...kept.keys()]) dispose(r);
      for (const s of sessions.values()) await s.release();
      sessions.clear();
      return { value: null, transfer: [] };
    }
  }
}

if (!parentPort) throw new Error('runtime-worker.ts is a worker_threads entry; use ComputeWorker');
const port = parentPort;
let queue: Promise<void> = Promise.resolve();
port.on('message', ({ id, req }: Envelope) => {
  queue = queue.then(async () => {
    let reply: Reply;
    let transfer: ArrayBuffer[] = [];
    try {
      const r = await handle(req);
      reply = { id, ok: true, value: r.value };
      transfer = r.transfer;
    } catch (e) {
      reply = { id, ok: false, error: toWireError(e) };
    }
    port.postMessage(reply, transfer);
  });
});
