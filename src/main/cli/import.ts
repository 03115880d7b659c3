// `fstudio import <files...>`: files sent in batches (up to IMPORT_BATCH files or IMPORT_BATCH_BYTES
// a call; the next batch is read while the studio imports this one, which hashes and decodes its
// files in parallel and commits them together), continuing past bad files, a progress bar with the
// rate and the time left on a terminal, a summary at the end, exit code 1 when any file failed.
// Each file's modification time is its date in the gallery.
import { isUtf8 } from 'node:buffer';
import { constants, type Dirent, type Stats } from 'node:fs';
import { lstat, open, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { IMAGE_EXTENSIONS, MAX_IMPORT_FILE_BYTES, type ImportReport } from '../../shared/api.js';
import { formatDuration } from '../../shared/format.js';
import { ProgressBar, printJson } from './output.js';
import { callStudio, withStudio } from './studio-session.js';

/** Image files a folder walk skips, and says so: the studio does not import these formats. */
const UNSUPPORTED_EXT = new Set(['.avif', '.tif', '.tiff', '.bmp', '.heic', '.heif', '.jxl', '.svg']);

/**
 * A path for the fs calls: a string, or the raw bytes of a path found in a folder whose name is not
 * valid UTF-8 (as a string it would name another file, and opening it would fail with ENOENT).
 */
type FsPath = string | Buffer;

/** The path for messages and for the gallery: bytes that are not UTF-8 show as U+FFFD. */
function shown(p: FsPath): string {
  return typeof p === 'string' ? p : p.toString('utf8');
}

function childPath(dir: FsPath, name: Buffer): FsPath {
  if (typeof dir === 'string' && isUtf8(name)) return path.join(dir, name.toString('utf8'));
  const prefix =
    typeof dir === 'string' ? Buffer.from(path.join(dir, path.sep)) : Buffer.concat([dir, Buffer.from(path.sep)]);
  return Buffer.concat([prefix, name]);
}

/** True when the name says it is an image the studio imports (a folder walk reports only those when they fail). */
function imageNamed(p: FsPath): boolean {
  return IMAGE_EXTENSIONS.has(path.extname(shown(p)).toLowerCase());
}

/** What a file system entry is when it is not a regular file ("a FIFO"); null for a regular file. */
function notRegular(entry: Stats | Dirent<Buffer>): string | null {
  if (entry.isFile()) return null;
  if (entry.isDirectory()) return 'a folder';
  if (entry.isFIFO()) return 'a FIFO (named pipe)';
  if (entry.isCharacterDevice()) return 'a character device';
  if (entry.isBlockDevice()) return 'a block device';
  if (entry.isSocket()) return 'a socket';
  return 'something other than a file';
}

function notRegularError(kind: string, viaLink: boolean): string {
  return `${viaLink ? `a symbolic link to ${kind}` : kind}, not a regular file: skipped. Name image files or folders of them.`;
}

const MiB = 1024 * 1024;
/** Files per importImages call, and bytes: enough for the studio to keep its decoders busy. */
const IMPORT_BATCH = 64;
const IMPORT_BATCH_BYTES = 96 * MiB;

function tooLargeError(size: number): string {
  return (
    `${(size / MiB).toFixed(1)} MiB, over the ${MAX_IMPORT_FILE_BYTES / MiB} MiB one image may have: skipped. ` +
    'Save it smaller (as JPEG or WebP, say) to import it.'
  );
}

/**
 * The bytes of a regular file of at most MAX_IMPORT_FILE_BYTES; anything else is refused by what it
 * is. The checks are made on the open descriptor, so a FIFO or device swapped in after the folder
 * walk is refused too, and O_NONBLOCK keeps the open of a FIFO from waiting for a writer.
 */
async function readImageFile(file: FsPath): Promise<{ data: Uint8Array<ArrayBuffer>; mtimeMs: number }> {
  const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  try {
    const st = await handle.stat();
    const kind = notRegular(st);
    if (kind) throw new Error(notRegularError(kind, false));
    if (st.size > MAX_IMPORT_FILE_BYTES) throw new Error(tooLargeError(st.size));
    // Never more than the size checked: a file that grows while it is read is cut there.
    const data = new Uint8Array(st.size);
    let filled = 0;
    while (filled < data.length) {
      const { bytesRead } = await handle.read(data, filled, data.length - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return { data: filled === data.length ? data : data.slice(0, filled), mtimeMs: Math.round(st.mtimeMs) };
  } finally {
    await handle.close();
  }
}

interface Expanded {
  files: FsPath[];
  /** Images of unsupported types skipped in folders, by extension. */
  unsupported: Map<string, number>;
  /** Folders that gave no image file at all. */
  emptyFolders: string[];
  /** Paths named on the command line that do not exist. */
  missing: string[];
}

/** Why a path named on the command line cannot be imported, or null when it is a file or folder. */
async function inputError(input: string, st: Stats | NodeJS.ErrnoException): Promise<string | null> {
  if (st instanceof Error) {
    if (st.code !== 'ENOENT') return st.message;
    // The command line reaches Node as UTF-8, so the bytes of such a name are lost before we see them.
    if (input.includes('\uFFFD'))
      return (
        'no such file; its name has bytes that are not valid UTF-8 (shown as \uFFFD), which a name given ' +
        'on the command line cannot carry. Name the folder that holds it instead.'
      );
    return 'no such file';
  }
  if (st.isDirectory()) return null;
  const kind = notRegular(st);
  if (!kind) return null;
  const link = await lstat(input).catch(() => null);
  return notRegularError(kind, link?.isSymbolicLink() ?? false);
}

/**
 * Files as given; folders are walked for image files (by extension), in name order. Symbolic
 * links to files are followed; links to folders are not (a link loop would never end) and are
 * reported as skipped, as are FIFOs, devices and sockets with an image's name.
 */
async function expand(inputs: string[], failed: ImportReport['failed']): Promise<Expanded> {
  const out: Expanded = { files: [], unsupported: new Map(), emptyFolders: [], missing: [] };
  const consider = (p: FsPath) => {
    const ext = path.extname(shown(p)).toLowerCase();
    if (IMAGE_EXTENSIONS.has(ext)) out.files.push(p);
    else if (UNSUPPORTED_EXT.has(ext)) out.unsupported.set(ext, (out.unsupported.get(ext) ?? 0) + 1);
  };
  const walk = async (dir: FsPath) => {
    // Names as bytes: one that is not UTF-8 can only be opened by its bytes.
    const entries = await readdir(dir, { withFileTypes: true, encoding: 'buffer' });
    const named = entries.map((entry) => ({ entry, name: entry.name.toString('utf8') }));
    named.sort((a, b) => a.name.localeCompare(b.name));
    for (const { entry: e } of named) {
      const p = childPath(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) consider(p);
      else if (e.isSymbolicLink()) {
        const st = await stat(p).catch(() => null);
        if (!st) {
          if (imageNamed(p))
            failed.push({ name: shown(p), error: 'broken symbolic link (what it points to does not exist)' });
        } else if (st.isFile()) consider(p);
        else if (st.isDirectory())
          failed.push({
            name: shown(p),
            error: 'symbolic link to a folder, not followed: pass the folder it points to to import it',
          });
        else if (imageNamed(p)) failed.push({ name: shown(p), error: notRegularError(notRegular(st)!, true) });
      } else if (imageNamed(p)) failed.push({ name: shown(p), error: notRegularError(notRegular(e)!, false) });
    }
  };
  for (const input of inputs) {
    const st = await stat(input).catch((e: NodeJS.ErrnoException) => e);
    const error = await inputError(input, st);
    if (st instanceof Error && st.code === 'ENOENT' && !input.includes('\uFFFD')) {
      out.missing.push(input);
    } else if (error !== null) {
      failed.push({ name: input, error });
    } else if (!(st instanceof Error) && st.isDirectory()) {
      const before = out.files.length + failed.length;
      await walk(input);
      if (out.files.length + failed.length === before) out.emptyFolders.push(input);
    } else {
      out.files.push(input);
    }
  }
  return out;
}

/** "skipped 3 files of unsupported types (.tif, .bmp)", or null. */
export function unsupportedLine(unsupported: Map<string, number>): string | null {
  const n = [...unsupported.values()].reduce((a, b) => a + b, 0);
  if (n === 0) return null;
  return (
    `Skipped ${n} file${n === 1 ? '' : 's'} of unsupported type${unsupported.size === 1 ? '' : 's'} ` +
    `(${[...unsupported.keys()].join(', ')}): the studio imports PNG, JPEG, WebP and GIF. Convert them to PNG to import them.`
  );
}

export function summaryLine(r: ImportReport, total: number): string {
  const parts = [`${r.imported.length} imported`];
  if (r.duplicates.length) parts.push(`${r.duplicates.length} already in the gallery`);
  parts.push(`${r.failed.length} failed`);
  return `Import finished: ${parts.join(', ')} (${total} file${total === 1 ? '' : 's'}).`;
}

/** "Not found: a.png, b/ (no such file or folder): check the paths." */
export function missingLine(missing: readonly string[]): string {
  return `Not found: ${missing.join(', ')} (no such file or folder): check the path${missing.length === 1 ? '' : 's'}.`;
}

export async function importCommand(dataDir: string, inputs: string[], opts: { json?: boolean }): Promise<number> {
  const report: ImportReport = { imported: [], duplicates: [], failed: [] };
  const { files, unsupported, emptyFolders, missing } = await expand(inputs, report.failed);
  const total = files.length + report.failed.length;
  const out = opts.json ? process.stderr : process.stdout;
  const skipped = unsupportedLine(unsupported);
  // A path that is not there is not a file that failed to import: said as such, and first.
  if (missing.length > 0) process.stderr.write(`${missingLine(missing)}\n`);
  const withMissing = () => {
    for (const name of missing) report.failed.push({ name, error: 'no such file or folder' });
  };
  if (total === 0 && missing.length > 0 && emptyFolders.length === 0 && !skipped) {
    withMissing();
    if (opts.json) printJson(report);
    return 1;
  }
  if (total === 0) {
    if (skipped) out.write(`${skipped}\n`);
    process.stderr.write(
      `Nothing to import: no PNG, JPEG, WebP or GIF files in ${emptyFolders.join(', ') || inputs.join(', ')}.\n`,
    );
    withMissing();
    if (opts.json) printJson(report);
    return 1;
  }
  const bar = new ProgressBar(total);
  for (const f of report.failed) bar.log(`failed: ${f.name}: ${f.error}`);

  const fail = (name: string, error: string) => {
    report.failed.push({ name, error });
    bar.log(`failed: ${name}: ${error}`);
  };
  if (files.length > 0) {
    await withStudio(dataDir, async (studio) => {
      let done = report.failed.length;
      const start = Date.now();
      const status = (name: string) => {
        const secs = (Date.now() - start) / 1000;
        const rate = secs > 0 ? done / secs : 0;
        const etaMs = rate > 0 ? ((total - done) / rate) * 1000 : null;
        const eta = etaMs === null ? '' : `, ${formatDuration(etaMs / 1000)} left`;
        return `${rate.toFixed(0)}/s${eta} ${name}`;
      };
      /** Reads the next batch: up to IMPORT_BATCH files or IMPORT_BATCH_BYTES. */
      let next = 0;
      const readBatch = async () => {
        const batch: { label: string; name: string; data: Uint8Array<ArrayBuffer>; modifiedAt: number }[] = [];
        let bytes = 0;
        while (next < files.length && batch.length < IMPORT_BATCH && bytes < IMPORT_BATCH_BYTES) {
          const file = files[next++]!;
          const label = shown(file);
          const name = path.basename(label);
          if (typeof file !== 'string')
            bar.log(
              `note: ${label}: this path is not valid UTF-8 (shown with \uFFFD in place of the bytes that are not); ` +
                `it is imported as "${name}".`,
            );
          try {
            const { data, mtimeMs } = await readImageFile(file);
            batch.push({ label, name, data, modifiedAt: mtimeMs });
            bytes += data.byteLength;
          } catch (e) {
            fail(label, (e as Error).message);
            done++;
          }
        }
        return batch;
      };
      type Batch = Awaited<ReturnType<typeof readBatch>>;
      const send = (batch: Batch) =>
        callStudio(studio, 'importImages', {
          files: batch.map(({ name, data, modifiedAt }) => ({ name, data, modifiedAt })),
        }).then(
          (r) => ({ r, e: null }),
          (e: unknown) => ({ r: null, e: e as Error }),
        );
      const settle = async (batch: Batch, call: ReturnType<typeof send>) => {
        const { r, e } = await call;
        if (r) {
          report.imported.push(...r.imported);
          report.duplicates.push(...r.duplicates);
          // Failures come back by name; the labels (full paths) say which file.
          const byName = new Map(batch.map((b) => [b.name, b.label]));
          for (const f of r.failed) fail(byName.get(f.name) ?? f.name, f.error);
        } else for (const b of batch) fail(b.label, e!.message);
        done += batch.length;
        bar.update(done, status(''));
      };
      // Two calls in flight: the studio decodes the next batch while it writes this one.
      let inFlight: { batch: Batch; call: ReturnType<typeof send> } | null = null;
      for (;;) {
        const batch = await readBatch();
        if (batch.length === 0 && next >= files.length) break;
        if (batch.length === 0) continue;
        bar.update(done, status(batch[0]!.name));
        const call = send(batch);
        if (inFlight) await settle(inFlight.batch, inFlight.call);
        inFlight = { batch, call };
      }
      if (inFlight) await settle(inFlight.batch, inFlight.call);
      bar.update(done, '');
    });
  }
  bar.finish();
  const summary = summaryLine(report, total);
  withMissing();
  // With --json, stdout is the report alone; the summary goes to stderr.
  if (opts.json) printJson(report);
  if (skipped) out.write(`${skipped}\n`);
  for (const dir of emptyFolders) process.stderr.write(`No image files in ${dir}.\n`);
  const notFound = missing.length
    ? ` ${missing.length} path${missing.length === 1 ? '' : 's'} not found (see above).`
    : '';
  out.write(`${summary}${notFound}\n`);
  return report.failed.length > 0 ? 1 : 0;
}
