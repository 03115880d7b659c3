// The main thread's side of the import workers: a small pool that decodes files for import
// (import-decode.ts) off the thread serving the UI. A worker that dies fails its file with a
// message that says so and is replaced for the next one.
//
// Public API
//   new ImportDecoder(size?) .decode(data, name) -> DecodedImport   .close()
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { StudioError } from '../../shared/api.js';
import { workerEntry } from '../base/worker-entry.js';
import type { DecodedImport } from './import-decode.js';

type Reply =
  | { id: number; ok: true; value: DecodedImport }
  | { id: number; ok: false; error: { name: string; message: string; studio: boolean } };

interface Slot {
  worker: Worker;
  pending: Map<number, { resolve(v: DecodedImport): void; reject(e: Error): void; name: string }>;
}

export class ImportDecoder {
  readonly #slots: (Slot | null)[];
  #next = 1;
  #closed = false;

  /** `size` workers (default: one per core but one, at least one, at most four). */
  constructor(readonly size = Math.max(1, Math.min(4, availableParallelism() - 1))) {
    this.#slots = Array.from({ length: size }, () => null);
  }

  #spawn(i: number): Slot {
    const entry = workerEntry(import.meta.url, './import-worker.ts', 'import-worker');
    const worker = new Worker(entry, { eval: typeof entry === 'string' });
    worker.unref();
    const slot: Slot = { worker, pending: new Map() };
    worker.on('message', (r: Reply) => {
      const p = slot.pending.get(r.id);
      if (!p) return;
      slot.pending.delete(r.id);
      if (!slot.pending.size) worker.unref();
      if (r.ok) p.resolve(r.value);
      else if (r.error.studio) p.reject(new StudioError(r.error.name, r.error.message));
      else p.reject(new Error(r.error.message));
    });
    const died = (why: string) => {
      if (this.#slots[i] !== slot) return;
      this.#slots[i] = null;
      for (const p of slot.pending.values())
        p.reject(new StudioError('ImportWorkerDied', `${p.name}: the import worker stopped (${why}). Try again.`));
      slot.pending.clear();
    };
    worker.on('error', (e) => died(e.message));
    worker.on('exit', (code) => died(`exit code ${code}`));
    this.#slots[i] = slot;
    return slot;
  }

  /** Decodes one file in the least busy worker (the bytes are copied; the caller keeps them). */
  decode(data: Uint8Array, name: string): Promise<DecodedImport> {
    if (this.#closed) return Promise.reject(new StudioError('Closed', 'The studio has been closed.'));
    let best = 0;
    for (let i = 1; i < this.size; i++)
      if ((this.#slots[i]?.pending.size ?? 0) < (this.#slots[best]?.pending.size ?? 0)) best = i;
    const slot = this.#slots[best] ?? this.#spawn(best);
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject, name });
      slot.worker.ref();
      slot.worker.postMessage({ id, name, data });
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const slots = this.#slots.splice(0).filter((s): s is Slot => s !== null);
    for (const s of slots)
      for (const p of s.pending.values()) p.reject(new StudioError('Closed', 'The studio has been closed.'));
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}
