// The main thread's side of the history worker (history-worker.ts): one thread, started on first
// use, with its own read-only connection. A task that fails rejects with its message; a worker that
// dies fails what it had and is started again for the next task.
//
// Public API
//   new HistoryReader(dbFile, dataDir) .quickCheck() .count(query) .scanShard(shard) .close()
import { Worker } from 'node:worker_threads';
import { StudioError } from '../../shared/api.js';
import { workerEntry } from '../base/worker-entry.js';
import type { History } from './history.js';
import type { HistoryTask, ShardScan } from './history-worker.js';

type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: { message: string } };

export class HistoryReader {
  #worker: Worker | null = null;
  #pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  #next = 1;
  #closed = false;

  constructor(
    readonly dbFile: string,
    readonly dataDir: string,
  ) {}

  #spawn(): Worker {
    const entry = workerEntry(import.meta.url, './history-worker.ts', 'history-worker');
    const worker = new Worker(entry, {
      eval: typeof entry === 'string',
      workerData: { file: this.dbFile, root: this.dataDir },
    });
    worker.unref();
    worker.on('message', (r: Reply) => {
      const p = this.#pending.get(r.id);
      if (!p) return;
      this.#pending.delete(r.id);
      if (this.#pending.size === 0) worker.unref();
      if (r.ok) p.resolve(r.value);
      else p.reject(new Error(r.error.message));
    });
    const died = (why: string) => {
      if (this.#worker !== worker) return;
      this.#worker = null;
      for (const p of this.#pending.values())
        p.reject(new StudioError('WorkerDied', `The history worker stopped (${why}).`));
      this.#pending.clear();
    };
    worker.on('error', (e) => died(e.message));
    worker.on('exit', (code) => died(`exit code ${code}`));
    this.#worker = worker;
    return worker;
  }

  #call<T>(task: HistoryTask): Promise<T> {
    if (this.#closed) return Promise.reject(new StudioError('Closed', 'The studio has been closed.'));
    const worker = this.#worker ?? this.#spawn();
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.ref();
      worker.postMessage({ id, task });
    });
  }

  /** PRAGMA quick_check: 'ok', or what it found. */
  quickCheck(): Promise<string> {
    return this.#call({ op: 'quickCheck' });
  }

  /** The exact number of items a gallery filter matches. */
  count(query: Parameters<History['countExact']>[0]): Promise<number> {
    return this.#call({ op: 'count', query });
  }

  /** Files against rows in one shard (two hex digits) of assets/ and thumbs/. */
  scanShard(shard: string): Promise<ShardScan> {
    return this.#call({ op: 'scanShard', shard });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const w = this.#worker;
    this.#worker = null;
    for (const p of this.#pending.values()) p.reject(new StudioError('Closed', 'The studio has been closed.'));
    this.#pending.clear();
    if (w) await w.terminate();
  }
}
