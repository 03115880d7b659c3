// Imports files chosen by the picker or dropped on the window: reads them as bytes,
// sends them in small batches (each batch is one API call, kept under a few MB so the
// server transport's base64 JSON stays small), tracks progress, then toasts a summary.
import { MAX_IMPORT_FILE_BYTES, type ImportReport } from '../../../shared/api.js';
import { describeError } from './errors.js';
import { getStudio } from './studio-client.js';
import { showToast } from './toasts.svelte.js';

export const importState = $state({
  running: false,
  done: 0,
  total: 0,
  current: '',
  rate: 0,
  etaMs: null as number | null,
});

const batchFiles = 16;
const batchBytes = 8 * 1024 * 1024;

function batches(files: File[]): File[][] {
  const out: File[][] = [];
  let cur: File[] = [];
  let bytes = 0;
  for (const f of files) {
    if (cur.length > 0 && (cur.length >= batchFiles || bytes + f.size > batchBytes)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(f);
    bytes += f.size;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

export async function importFiles(files: File[]): Promise<ImportReport | null> {
  if (files.length === 0) return null;
  if (importState.running) {
    showToast('info', 'An import is already running. Wait for it to finish, then add these files again.');
    return null;
  }
  const studio = getStudio();
  const total: ImportReport = { imported: [], duplicates: [], failed: [] };
  Object.assign(importState, { running: true, done: 0, total: files.length, current: '', rate: 0, etaMs: null });
  const started = Date.now();
  let batchStart = 0;
  const stop = studio.onImportProgress((p) => {
    importState.done = Math.min(importState.total, batchStart + p.done);
    // Over the whole import, not the batch: images a second, and the time left at that rate.
    const secs = (Date.now() - started) / 1000;
    importState.rate = secs > 0 ? importState.done / secs : 0;
    importState.etaMs =
      importState.rate > 0 ? ((importState.total - importState.done) / importState.rate) * 1000 : null;
    importState.current = p.name;
  });
  try {
    for (const batch of batches(files)) {
      const send: { name: string; data: Uint8Array<ArrayBuffer>; modifiedAt: number }[] = [];
      for (const f of batch) {
        if (f.size > MAX_IMPORT_FILE_BYTES) {
          total.failed.push({ name: f.name, error: `larger than ${MAX_IMPORT_FILE_BYTES / 1024 / 1024} MB` });
          continue;
        }
        try {
          send.push({ name: f.name, data: new Uint8Array(await f.arrayBuffer()), modifiedAt: f.lastModified });
        } catch (e) {
          total.failed.push({ name: f.name, error: `could not be read (${(e as Error).message})` });
        }
      }
      if (send.length > 0) {
        try {
          const r = await studio.importImages({ files: send });
          total.imported.push(...r.imported);
          total.duplicates.push(...r.duplicates);
          total.failed.push(...r.failed);
        } catch (e) {
          for (const f of send) total.failed.push({ name: f.name, error: describeError(e, 'Import') });
        }
      }
      batchStart += batch.length;
      importState.done = batchStart;
      importState.current = '';
    }
  } finally {
    stop();
    importState.running = false;
  }
  summarise(total);
  return total;
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function summarise(r: ImportReport): void {
  const parts = [`Imported ${plural(r.imported.length, 'image')}`];
  if (r.duplicates.length > 0) parts.push(`${plural(r.duplicates.length, 'duplicate')} already in the gallery`);
  if (r.failed.length === 0) {
    showToast('success', `${parts.join('; ')}.`);
    return;
  }
  parts.push(`${plural(r.failed.length, 'file')} could not be imported`);
  showToast(
    'error',
    `${parts.join('; ')}. Check that the files below are complete PNG, JPEG, WebP or GIF images, then import them again.`,
    // The services usually name the file in their message; do not say it twice.
    { details: r.failed.map((f) => (f.error.includes(f.name) ? f.error : `${f.name}: ${f.error}`)) },
  );
}
