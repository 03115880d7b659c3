// An import worker's entry (bundled as import-worker.js): decodes the files ImportDecoder sends it
// and answers with what decodeForImport found or the error as data. A file comes whole in one message
// (decode), or in slices (hashAndDecode): then it is hashed here, the main thread answers whether to
// decode it, and it is decoded or dropped.
import { createHash } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { StudioError } from '../../shared/api.js';
import { decodeForImport } from './import-decode.js';

if (!parentPort) throw new Error('import-worker.ts is a worker_threads entry; use ImportDecoder');
const port = parentPort;

// Decoding is throughput work; the main thread serves the UI and must never wait for a core. On Linux
// each thread has its own nice value, inherited by the threads it starts (libvips' pool): this one
// and its helpers yield to the main thread whenever both want a core. Elsewhere it stays as it is.
if (process.platform === 'linux') {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, 10);
  } catch {
    /* not allowed, or no /proc: the default priority */
  }
}
const fail = (id: number, e: unknown) =>
  port.postMessage({
    id,
    ok: false,
    error:
      e instanceof StudioError
        ? { name: e.code, message: e.message, studio: true }
        : { name: 'Error', message: e instanceof Error ? e.message : String(e), studio: false },
  });

const decode = (id: number, data: Uint8Array, name: string) =>
  decodeForImport(data, name).then(
    (value) => port.postMessage({ id, ok: true, value }, [value.thumb.buffer as ArrayBuffer]),
    (e: unknown) => fail(id, e),
  );

/** Files sent in slices (ImportDecoder.hashAndDecode), being put together; then hashed, waiting for go. */
const incoming = new Map<number, { name: string; data: Uint8Array; filled: number }>();

type Message =
  | { id: number; name: string; data: Uint8Array }
  | { id: number; name: string; begin: number }
  | { id: number; part: Uint8Array }
  | { id: number; go: boolean };

port.on('message', (m: Message) => {
  if ('data' in m) return void decode(m.id, m.data, m.name);
  if ('begin' in m) return void incoming.set(m.id, { name: m.name, data: new Uint8Array(m.begin), filled: 0 });
  const f = incoming.get(m.id);
  if (!f) return;
  if ('part' in m) {
    f.data.set(m.part, f.filled);
    f.filled += m.part.byteLength;
    // Whole: hashed here, off the main thread, which says whether to decode (not when already in the gallery).
    if (f.filled === f.data.byteLength)
      port.postMessage({ id: m.id, sha256: createHash('sha256').update(f.data).digest('hex') });
    return;
  }
  incoming.delete(m.id);
  if (m.go) void decode(m.id, f.data, f.name);
  else port.postMessage({ id: m.id, ok: true, value: null });
});
