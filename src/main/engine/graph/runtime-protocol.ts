// Messages between ComputeWorker (runtime-compute.ts) and the compute worker (runtime-worker.ts).
// Plain data only: tensors cross as HostTensor (ArrayBuffers transferred where the sender owns
// them), device-resident tensors as TensorRef handles, errors as {name, message, stack}.
import type { DType, HostTensor, OutputLocation, ProfiledNode, SessionOptions } from './runtime.js';
import type { ProviderReport } from '../../../shared/api.js';
import type { ExplicitProvider, ProviderChoice } from './runtime-providers.js';

/** A tensor kept in the worker (on the GPU for webgpu sessions): feed it to a run, read it, dispose it. */
export interface TensorRef {
  readonly ref: number;
  readonly dtype: DType;
  readonly dims: readonly number[];
  /** Where the worker holds it. */
  readonly location: OutputLocation;
}

export interface LoadedSession {
  handle: number;
  provider: ExplicitProvider;
  choice: ProviderChoice;
  inputNames: string[];
  outputNames: string[];
}

export interface RunResult {
  /** Outputs copied to the caller. */
  outputs: Record<string, HostTensor>;
  /** Outputs kept in the worker. */
  refs: Record<string, TensorRef>;
}

export type Request =
  | { op: 'load'; model: Uint8Array; opts: SessionOptions }
  | { op: 'run'; handle: number; feeds: Record<string, HostTensor | TensorRef>; keep: string[] }
  | { op: 'read'; ref: number }
  | { op: 'dispose'; refs: number[] }
  | { op: 'release'; handle: number }
  | { op: 'endProfiling'; handle: number }
  | { op: 'probe' }
  | { op: 'close' };

export type ResultOf<R extends Request> = R extends { op: 'load' }
  ? LoadedSession
  : R extends { op: 'run' }
    ? RunResult
    : R extends { op: 'read' }
      ? HostTensor
      : R extends { op: 'endProfiling' }
        ? ProfiledNode[]
        : R extends { op: 'probe' }
          ? ProviderReport[]
          : null;

export interface WireError {
  name: string;
  message: string;
  stack?: string;
}

export type Envelope = { id: number; req: Request };
export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: WireError };

export function isTensorRef(x: unknown): x is TensorRef {
  return typeof x === 'object' && x !== null && 'ref' in x && !('data' in x);
}

export function toWireError(e: unknown): WireError {
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: 'Error', message: String(e) };
}

export function fromWireError(w: WireError): Error {
  const e = new Error(w.message);
  e.name = w.name;
  if (w.stack) e.stack = `${w.stack}\n    at (compute worker)`;
  return e;
}

/** The distinct ArrayBuffers under a set of host tensors, for a postMessage transfer list. */
export function buffersOf(tensors: Iterable<HostTensor>): ArrayBuffer[] {
  const seen = new Set<ArrayBuffer>();
  for (const t of tensors) if (t.data.buffer instanceof ArrayBuffer) seen.add(t.data.buffer);
  return [...seen];
}
