// Files into the gallery, in batches: hashed in parallel in the import workers (the bytes handed over
// a slice a turn, so a large file never holds the main thread), refused early when their bytes are
// already in the gallery (never decoded), decoded in parallel in the same workers
// (checks, thumbnail, metadata), then, one chunk at a time under the studio's mutex, written to the
// content-addressed folders (each file to a temp name, fsynced, renamed; each folder fsynced once
// per chunk) and recorded in one transaction. The next two chunks decode while this one is written.
// Crash safety as before: a chunk's files are durable before its rows commit, so a kill leaves at
// worst orphan files (moved aside by the background check), never a row without its file, and a
// chunk's rows appear all at once or not at all.
import type { GalleryItem } from '../../shared/api.js';
import { StudioError } from '../../shared/api.js';
import { appVersion } from '../base/app-version.js';
import type { StudioContext } from './context.js';
import { cardOf } from './gallery-rows.js';
import { MAX_CREATED_AT } from './history.js';
import type { DecodedImport } from './import-decode.js';

/** The last path segment of whatever name a transport passed (a browser gives a bare name, the CLI a path). */
export const baseName = (name: string) => name.split(/[\\/]/).filter(Boolean).at(-1) ?? name;

/** Files decoded ahead and committed together: enough to keep every worker busy, few enough to keep memory flat. */
export const IMPORT_CHUNK = 32;
/** How long one transaction of an import's rows may hold the main thread before the next begins. */
const ROWS_SLICE_MS = 8;
/** A file's modification time further ahead than this is not believed: it is imported as made now. */
const FUTURE_SLACK_MS = 24 * 3600 * 1000;

export interface ImportInput {
  name: string;
  data: Uint8Array;
  /** When the file was last modified (ms): the item's date. Now when absent. */
  modifiedAt?: number;
}

export type ImportOutcome =
  | { ok: true; item: GalleryItem; duplicate: boolean; sha256: string }
  | { ok: false; error: string; sha256: string | null };

interface Prepared {
  input: ImportInput;
  index: number;
  fileName: string;
  sha256: string | null;
  decoded: DecodedImport | null;
  /** Set when the outcome is known before the commit (a failed decode, a duplicate). */
  outcome: ImportOutcome | null;
}

const message = (name: string, e: unknown) =>
  e instanceof StudioError ? e.message : `${name}: ${(e as Error).message ?? String(e)}`;

async function prepare(ctx: StudioContext, inputs: ImportInput[], first: number): Promise<Prepared[]> {
  const out = inputs.map((input, k): Prepared => ({
    input,
    index: first + k,
    fileName: baseName(input.name),
    sha256: null,
    decoded: null,
    outcome: null,
  }));
  await Promise.all(
    out.map(async (p) => {
      try {
        // Hashed in the worker; a file already in the gallery is never decoded (the commit says which item it is).
        const r = await ctx.decoder.hashAndDecode(
          p.input.data,
          p.fileName,
          (sha) => ctx.history.liveImageIdBySha(sha) === null,
        );
        p.sha256 = r.sha256;
        p.decoded = r.decoded;
      } catch (e) {
        p.outcome = { ok: false, error: message(p.fileName, e), sha256: p.sha256 };
      }
    }),
  );
  return out;
}

async function commit(ctx: StudioContext, chunk: Prepared[]): Promise<void> {
  const { history, files } = ctx;
  ctx.live(); // the studio may have been closed while earlier chunks were imported
  // Files first: the assets not already in place, and every thumbnail, made durable together.
  const writes = new Map<string, Uint8Array>();
  for (const p of chunk) {
    if (p.outcome || !p.sha256) continue;
    const existing = history.liveImageIdBySha(p.sha256);
    if (existing !== null) {
      // Its file went missing (see openReport.missingFiles): these are the same bytes, put them back.
      const a = history.getAsset(p.sha256);
      if (a && files.abs(a.path) && !(await files.has(a.path))) writes.set(a.path, p.input.data);
      continue;
    }
    if (!p.decoded) continue;
    const assetRel = files.assetRel(p.sha256, p.decoded.ext);
    if (!(await files.has(assetRel))) writes.set(assetRel, p.input.data);
    else await files.touch(assetRel); // a file left by a crash, now claimed: newer than any check under way
    writes.set(files.thumbRel(p.sha256), p.decoded.thumb);
  }
  try {
    await files.writeMany([...writes].map(([rel, data]) => ({ rel, data })));
  } catch (e) {
    for (const p of chunk) if (!p.outcome) p.outcome = { ok: false, error: message(p.fileName, e), sha256: p.sha256 };
    return;
  }
  const now = Date.now();
  // Rows in as few transactions as keep this thread responsive: a transaction closes once it has
  // run for ROWS_SLICE_MS (a chunk of small files is one; a file with megabytes of metadata is
  // alone), and the event loop turns before the next. Each row set is whole either way.
  const todo = chunk.filter((p) => !p.outcome && p.sha256);
  for (let next = 0; next < todo.length;) {
    if (next > 0) await new Promise<void>((r) => setImmediate(r));
    const started = performance.now();
    next = history.transaction(() => {
      let k = next;
      while (k < todo.length && (k === next || performance.now() - started < ROWS_SLICE_MS)) insertRows(todo[k++]!);
      return k;
    });
  }
  function insertRows(p: Prepared): void {
    if (p.outcome || !p.sha256) return;
    {
      const again = history.liveImageIdBySha(p.sha256);
      if (again !== null) {
        p.outcome = { ok: true, item: cardOf(history, again), duplicate: true, sha256: p.sha256 };
        return;
      }
      if (!p.decoded) return;
      const { decoded: img, sha256, fileName } = p;
      const { metadata } = img;
      const m = p.input.modifiedAt;
      const createdAt = m !== undefined && m <= now + FUTURE_SLACK_MS && m <= MAX_CREATED_AT ? m : now;
      history.upsertAsset({
        sha256,
        path: files.assetRel(sha256, img.ext),
        mime: img.mime,
        bytes: p.input.data.byteLength,
        width: img.width,
        height: img.height,
        thumbPath: files.thumbRel(sha256),
      });
      const firstLine = (metadata.prompt ?? '').split('\n')[0]!.trim();
      const { raw: _raw, ...parsed } = metadata;
      const runId = history.insertRun({
        kind: 'import',
        title: (firstLine || fileName).slice(0, 200),
        spec: { fileName, metadata: parsed },
        provenance: {
          appVersion: appVersion(),
          node: process.versions.node,
          importedFrom: fileName,
          source: metadata.source,
        },
        createdAt,
        startedAt: now,
        finishedAt: now,
      });
      const id = history.insertImage(runId, { sha256, fileName, metadata, createdAt });
      p.outcome = { ok: true, item: cardOf(history, id), duplicate: false, sha256 };
    }
  }
}

/**
 * Imports files in order-preserving batches; `onEach` is told each file's outcome as it is known
 * (files of a chunk once its rows are committed). One file's failure never stops the others.
 */
export async function importBatch(
  ctx: StudioContext,
  inputs: readonly ImportInput[],
  onEach?: (outcome: ImportOutcome, input: ImportInput, index: number) => void,
): Promise<ImportOutcome[]> {
  const results: ImportOutcome[] = new Array<ImportOutcome>(inputs.length);
  const chunks: ImportInput[][] = [];
  for (let i = 0; i < inputs.length; i += IMPORT_CHUNK) chunks.push(inputs.slice(i, i + IMPORT_CHUNK));
  // Two chunks are hashed and decoded ahead while one is written and committed: the decoders never wait on the disk.
  const ahead: Promise<Prepared[]>[] = [];
  const start = (c: number) => {
    if (c < chunks.length) ahead.push(prepare(ctx, chunks[c]!, c * IMPORT_CHUNK));
  };
  start(0);
  start(1);
  for (let c = 0; c < chunks.length; c++) {
    const chunk = await ahead.shift()!;
    start(c + 2);
    try {
      await ctx.mutex.run(() => commit(ctx, chunk));
    } catch (e) {
      for (const p of chunk) if (!p.outcome) p.outcome = { ok: false, error: message(p.fileName, e), sha256: p.sha256 };
    }
    for (const p of chunk) {
      const outcome = p.outcome ?? { ok: false, error: `${p.fileName}: not imported`, sha256: p.sha256 };
      results[p.index] = outcome;
      onEach?.(outcome, p.input, p.index);
    }
  }
  return results;
}

/** Images a second and the time left at that rate, from a start time and counts. */
export function importRate(
  startMs: number,
  done: number,
  total: number,
  now = Date.now(),
): { rate: number; etaMs: number | null } {
  const secs = (now - startMs) / 1000;
  const rate = secs > 0 ? done / secs : 0;
  return { rate, etaMs: rate > 0 ? ((total - done) / rate) * 1000 : null };
}
