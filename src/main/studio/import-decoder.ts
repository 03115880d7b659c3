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
  | { id: number; ok: true; value: DecodedImport | null }
  | { id: number; ok: false; error: { name: string; message: string; studio: boolean } }
  | { id: number; sha256: string };

interface Pending {
  resolve(v: DecodedImport | null): void;
  reject(e: Error): void;
  name: string;
  /** hashAndDecode: told the hash, says whether to decode. */
  onHash?: (sha256: string) => boolean;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

/** Bytes handed to a worker per turn of the event loop: each handoff is a copy on the main thread. */
const SLICE_BYTES = 1 << 20;

export class ImportDecoder {
  readonly #slots: (Slot | null)[];
  #next = 1;
  #closed = false;

  /**
   * `size` workers (default: one per core, at least two, at most four). The main thread waits on
   * I/O while they decode, so on two cores both decode: that is what an import's throughput is.
   */
  constructor(readonly size = Math.max(2, Math.min(4, availableParallelism()))) {
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
      if ('sha256' in r) {
        let go = false;
        try {
          go = p.onHash?.(r.sha256) ?? true;
        } finally {
          worker.postMessage({ id: r.id, go });
        }
        return;
      }
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

  #leastBusy(): Slot {
    let best = 0;
    for (let i = 1; i < this.size; i++)
      if ((this.#slots[i]?.pending.size ?? 0) < (this.#slots[best]?.pending.size ?? 0)) best = i;
    return this.#slots[best] ?? this.#spawn(best);
  }

  /** Decodes one file in the least busy worker (the bytes are copied; the caller keeps them). */
  decode(data: Uint8Array, name: string): Promise<DecodedImport> {
    if (this.#closed) return Promise.reject(new StudioError('Closed', 'The studio has been closed.'));
    const slot = this.#leastBusy();
    const id = this.#next++;
    return new Promise<DecodedImport | null>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject, name });
      slot.worker.ref();
      slot.worker.postMessage({ id, name, data });
    }) as Promise<DecodedImport>;
  }

  /**
   * Hashes (SHA-256) and decodes one file in the least busy worker. The bytes go over in slices of
   * SLICE_BYTES, one a turn of the event loop, so a large file never holds this thread for the whole
   * copy; the worker hashes them and `shouldDecode(sha256)` (a file already in the gallery: false)
   * says whether it is decoded. The caller keeps its bytes.
   */
  async hashAndDecode(
    data: Uint8Array,
    name: string,
    shouldDecode: (sha256: string) => boolean,
  ): Promise<{ sha256: string; decoded: DecodedImport | null }> {
    if (this.#closed) throw new StudioError('Closed', 'The studio has been closed.');
    const slot = this.#leastBusy();
    const id = this.#next++;
    let sha256 = '';
    const done = new Promise<DecodedImport | null>((resolve, reject) => {
      slot.pending.set(id, {
        resolve,
        reject,
        name,
        onHash: (sha) => shouldDecode((sha256 = sha)),
      });
    });
    slot.worker.ref();
    slot.worker.postMessage({ id, name, begin: data.byteLength });
    for (let off = 0; off < data.byteLength || off === 0; off += SLICE_BYTES) {
      if (off > 0) await new Promise<void>((r) => setImmediate(r));
      if (this.#slots.indexOf(slot) < 0) break; // the worker died: `done` says so
      // A copy of the slice alone, handed over: cloning a view would copy its whole buffer, and a
      // Buffer's slice() is a view of the caller's memory, not a copy.
      const part = new Uint8Array(data.subarray(off, off + SLICE_BYTES));
      slot.worker.postMessage({ id, part }, [part.buffer]);
      if (data.byteLength === 0) break;
    }
    const decoded = await done;
    return { sha256, decoded };
  }

  async close(): Promise<void> {
    this.#closed = true;
    const slots = this.#slots.splice(0).filter((s): s is Slot => s !== null);
    for (const s of slots)
      for (const p of s.pending.values()) p.reject(new StudioError('Closed', 'The studio has been closed.'));
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}
