// An import worker's entry (bundled as import-worker.js): decodes the files ImportDecoder sends it,
// one message each, and answers with what decodeForImport found or the error as data.
import { parentPort } from 'node:worker_threads';
import { StudioError } from '../../shared/api.js';
import { decodeForImport } from './import-decode.js';

if (!parentPort) throw new Error('import-worker.ts is a worker_threads entry; use ImportDecoder');
const port = parentPort;
port.on('message', (m: { id: number; name: string; data: Uint8Array }) => {
  decodeForImport(m.data, m.name).then(
    (value) => port.postMessage({ id: m.id, ok: true, value }, [value.thumb.buffer as ArrayBuffer]),
    (e: unknown) =>
      port.postMessage({
        id: m.id,
        ok: false,
        error:
          e instanceof StudioError
            ? { name: e.code, message: e.message, studio: true }
            : { name: 'Error', message: e instanceof Error ? e.message : String(e), studio: false },
      }),
  );
});
