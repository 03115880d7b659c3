// SHA-256 of files, off the main thread: a checkpoint is about a gigabyte, and hashing it where
// IPC is served would freeze the app for seconds. The worker is plain CommonJS given as source
// text, so it runs the same from src/ (tsx, vitest), out/ (electron-vite) and a packaged app.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { createReadStream } = require('node:fs');
const h = createHash('sha256');
let bytes = 0;
createReadStream(workerData.path, { highWaterMark: 1 << 20 })
  .on('data', (c) => { h.update(c); bytes += c.length; })
  .on('error', (e) => parentPort.postMessage({ error: e.message, code: e.code }))
  .on('end', () => parentPort.postMessage({ sha256: h.digest('hex'), bytes }));
`;

export interface FileHash {
  sha256: string;
  bytes: number;
}

/** Hashes a whole file in a worker thread. Rejects with the signal's reason when aborted. */
export function hashFile(path: string, signal?: AbortSignal): Promise<FileHash> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { path } });
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      fn();
    };
    const onAbort = () => finish(() => reject(signal?.reason as Error));
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (m: { sha256?: string; bytes?: number; error?: string; code?: string }) => {
      if (m.error !== undefined) {
        const e = new Error(`Cannot read ${path} to hash it: ${m.error}`) as NodeJS.ErrnoException;
        if (m.code) e.code = m.code;
        finish(() => reject(e));
      } else finish(() => resolve({ sha256: m.sha256!, bytes: m.bytes! }));
    });
    worker.once('error', (e) => finish(() => reject(e)));
    worker.once('exit', (code) => finish(() => reject(new Error(`The hashing worker exited early (code ${code}).`))));
  });
}

/**
 * Feeds the first `length` bytes of a file into `hash`, a chunk at a time (the main thread is
 * never held for more than one chunk). Used to restore the running hash of a resumed download,
 * whose state cannot cross to a worker.
 */
export async function hashPrefixInto(hash: Hash, path: string, length: number, signal?: AbortSignal): Promise<number> {
  if (length <= 0) return 0;
  let n = 0;
  const stream = createReadStream(path, { start: 0, end: length - 1, highWaterMark: 1 << 20, signal });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    n += chunk.length;
  }
  return n;
}

export const sha256Hex = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex');
