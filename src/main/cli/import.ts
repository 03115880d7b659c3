// `fstudio import <files...>`: one file per call, continuing past bad files, a progress bar
// on a terminal, a summary at the end, exit code 1 when any file failed.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ImportReport } from '../../shared/api.js';
import { ProgressBar, printJson } from './output.js';
import { callStudio, withStudio } from './studio-session.js';

/** What the studio imports (by extension, for walking folders; the content decides in the end). */
const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif']);
/** Image files a folder walk skips, and says so: the studio does not import these formats. */
const UNSUPPORTED_EXT = new Set(['.avif', '.tif', '.tiff', '.bmp', '.heic', '.heif', '.jxl', '.svg']);

interface Expanded {
  files: string[];
  /** Images of unsupported types skipped in folders, by extension. */
  unsupported: Map<string, number>;
  /** Folders that gave no image file at all. */
  emptyFolders: string[];
}

/**
 * Files as given; folders are walked for image files (by extension), in name order. Symbolic
 * links to files are followed; links to folders are not (a link loop would never end) and are
 * reported as skipped.
 */
async function expand(inputs: string[], failed: ImportReport['failed']): Promise<Expanded> {
  const out: Expanded = { files: [], unsupported: new Map(), emptyFolders: [] };
  const consider = (p: string) => {
    const ext = path.extname(p).toLowerCase();
    if (IMAGE_EXT.has(ext)) out.files.push(p);
    else if (UNSUPPORTED_EXT.has(ext)) out.unsupported.set(ext, (out.unsupported.get(ext) ?? 0) + 1);
  };
  const walk = async (dir: string) => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) consider(p);
      else if (e.isSymbolicLink()) {
        const st = await stat(p).catch(() => null);
        if (!st) {
          if (IMAGE_EXT.has(path.extname(p).toLowerCase()))
            failed.push({ name: p, error: 'broken symbolic link (what it points to does not exist)' });
        } else if (st.isFile()) consider(p);
        else if (st.isDirectory())
          failed.push({
            name: p,
            error: 'symbolic link to a folder, not followed: pass the folder it points to to import it',
          });
      }
    }
  };
  for (const input of inputs) {
    const st = await stat(input).catch((e: NodeJS.ErrnoException) => e);
    if (st instanceof Error) {
      failed.push({ name: input, error: st.code === 'ENOENT' ? 'no such file' : st.message });
    } else if (st.isDirectory()) {
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

export async function importCommand(dataDir: string, inputs: string[], opts: { json?: boolean }): Promise<number> {
  const report: ImportReport = { imported: [], duplicates: [], failed: [] };
  const { files, unsupported, emptyFolders } = await expand(inputs, report.failed);
  const total = files.length + report.failed.length;
  const out = opts.json ? process.stderr : process.stdout;
  const skipped = unsupportedLine(unsupported);
  if (total === 0) {
    if (skipped) out.write(`${skipped}\n`);
    process.stderr.write(
      `Nothing to import: no PNG, JPEG, WebP or GIF files in ${emptyFolders.join(', ') || inputs.join(', ')}.\n`,
    );
    if (opts.json) printJson(report);
    return 1;
  }
  const bar = new ProgressBar(total);
  for (const f of report.failed) bar.log(`failed: ${f.name}: ${f.error}`);

  if (files.length > 0) {
    await withStudio(dataDir, async (studio) => {
      let done = report.failed.length;
      for (const file of files) {
        bar.update(done, path.basename(file));
        const name = path.basename(file);
        let data: Uint8Array<ArrayBuffer>;
        try {
          const buf = await readFile(file);
          data = new Uint8Array(buf.buffer as ArrayBuffer, buf.byteOffset, buf.byteLength);
        } catch (e) {
          report.failed.push({ name: file, error: (e as Error).message });
          bar.log(`failed: ${file}: ${(e as Error).message}`);
          done++;
          continue;
        }
        try {
          const r = await callStudio(studio, 'importImages', { files: [{ name, data }] });
          report.imported.push(...r.imported);
          report.duplicates.push(...r.duplicates);
          for (const f of r.failed) {
            report.failed.push({ name: file, error: f.error });
            bar.log(`failed: ${file}: ${f.error}`);
          }
        } catch (e) {
          report.failed.push({ name: file, error: (e as Error).message });
          bar.log(`failed: ${file}: ${(e as Error).message}`);
        }
        done++;
      }
      bar.update(done, '');
    });
  }
  bar.finish();
  // With --json, stdout is the report alone; the summary goes to stderr.
  if (opts.json) printJson(report);
  if (skipped) out.write(`${skipped}\n`);
  for (const dir of emptyFolders) process.stderr.write(`No image files in ${dir}.\n`);
  out.write(`${summaryLine(report, total)}\n`);
  return report.failed.length > 0 ? 1 : 0;
}
