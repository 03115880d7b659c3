// Messages between a DeviceRunner (runner.ts, main thread) and its compute worker (worker-core.ts).
// Plain data only: tensors cross as HostTensor (ArrayBuffers transferred where the sender owns them),
// tensors kept in the worker as TensorRef handles, errors as WireError.
//
//   main -> worker   { kind: 'call', id, call }      one operation (below)
//                    { kind: 'cancel', id }          abort call `id`: a queued call never starts, a loop
//                                                     or task stops at its next step
//   worker -> main   { kind: 'stream', id, value }   zero or more per call (loop steps, task progress)
//                    { kind: 'done', id, value }     exactly one of these two ends every call
//                    { kind: 'error', id, error }
import type { WireError } from '../../../shared/api.js';
import type { ExplicitProvider, ProviderReport } from '../../../shared/providers.js';
import type { DType, HostTensor } from '../graph/ir.js';
import type { OutputLocation, ProfiledNode, SessionOptions } from './ort.js';
import type { ProviderChoice } from './providers.js';

export type { WireError };

/** A tensor kept in the worker (on the GPU for webgpu sessions): feed it to a run, read it, dispose it. */
export interface TensorRef {
  readonly ref: number;
  /** The worker that holds it (a ref outlives neither its worker nor a restart). */
  readonly epoch: number;
  readonly dtype: DType;
  readonly dims: readonly number[];
  /** Where the worker holds it. */
  readonly location: OutputLocation;
}

export interface LoadedSession {
  handle: number;
  /** The worker that holds it. */
  epoch: number;
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

/** A model for `load`: its bytes (copied to the worker) or a file the worker reads (needed for external data). */
export type ModelSourceArg = { bytes: Uint8Array } | { file: string };

export interface LoopArgs {
  handle: number;
  /** Inputs of the first step: host tensors or refs. Inputs not carried stay the same every step. */
  feeds: Record<string, HostTensor | TensorRef>;
  /** output name -> input name: after each step the output replaces that input (it stays in the worker). */
  carry: Record<string, string>;
  steps: number;
  /** Outputs copied to the caller as a stream message after every `every`-th step (and the last). */
  stream: string[];
  every: number;
}

/** One streamed message of a loop. */
export interface LoopStep {
  step: number;
  outputs: Record<string, HostTensor>;
}

export interface LoopResult {
  /** Steps completed. */
  steps: number;
  /** The carried tensors after the last step, kept in the worker. */
  refs: Record<string, TensorRef>;
  /**
   * True when a cancel stopped the loop before `steps`: a loop ends early without an error, keeping its state,
   * so a job can pause and go on from `refs` (every other call rejects with CancelledError).
   */
  stopped: boolean;
}

export type Call =
  | { op: 'load'; source: ModelSourceArg; opts: SessionOptions }
  | { op: 'run'; handle: number; feeds: Record<string, HostTensor | TensorRef>; keep: string[] }
  | ({ op: 'loop' } & LoopArgs)
  | { op: 'upload'; tensor: HostTensor }
  | { op: 'read'; ref: number }
  | { op: 'dispose'; refs: number[] }
  | { op: 'release'; handle: number }
  | { op: 'endProfiling'; handle: number }
  | { op: 'probe' }
  | { op: 'task'; name: string; args: unknown }
  | { op: 'close' };

export type Op = Call['op'];

/** What a call answers (a task answers whatever its table entry returns). */
export type ResultOf<C extends Call> = C extends { op: 'load' }
  ? Omit<LoadedSession, 'epoch'>
  : C extends { op: 'run' }
    ? RunResult
    : C extends { op: 'loop' }
      ? LoopResult
      : C extends { op: 'upload' }
        ? TensorRef
        : C extends { op: 'read' }
          ? HostTensor
          : C extends { op: 'endProfiling' }
            ? ProfiledNode[]
            : C extends { op: 'probe' }
              ? ProviderReport[]
              : C extends { op: 'task' }
                ? unknown
                : null;

export type ToWorker = { kind: 'call'; id: number; epoch: number; call: Call } | { kind: 'cancel'; id: number };
export type FromWorker =
  | { kind: 'stream'; id: number; value: unknown }
  | { kind: 'done'; id: number; value: unknown }
  | { kind: 'error'; id: number; error: WireError };

/** The name a cancelled call's error carries, on both sides. */
export const CANCELLED = 'Cancelled';

export class CancelledError extends Error {
  constructor(what = 'the call') {
    super(`${what} was cancelled`);
    this.name = CANCELLED;
  }
}

export function isCancelled(e: unknown): boolean {
  return e instanceof Error && e.name === CANCELLED;
}

export function isTensorRef(x: unknown): x is TensorRef {
  return typeof x === 'object' && x !== null && 'ref' in x && !('data' in x);
}

/** An error as data, with its stack (between threads of one process only: the API never sends stacks). */
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
