// `fstudio import <files...>`: one file per call, continuing past bad files, a progress bar
// on a terminal, a summary at the end, exit code 1 when any file failed.
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ImportReport } from '../../shared/api.js';
import { ProgressBar, printJson } from './output.js';
import { callStudio, withStudio } from './studio-session.js';

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.avif', '.tif', '.tiff', '.bmp']);

/** Files as given; folders are walked for image files (by extension), in name order. */
async function expand(inputs: string[], failed: ImportReport['failed']): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    const entries = await readdir(dir, { withFileTypes: true });
    entries.sort((a, b) => a.name.localeCompare(b.name));
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && IMAGE_EXT.has(path.extname(e.name).toLowerCase())) out.push(p);
    }
  };
  for (const input of inputs) {
    const st = await stat(input).catch((e: NodeJS.ErrnoException) => e);
    if (st instanceof Error) {
      failed.push({ name: input, error: st.code === 'ENOENT' ? 'no such file' : st.message });
    } else if (st.isDirectory()) {
      await walk(input);
    } else {
      out.push(input);
    }
  }
  return out;
}

export function summaryLine(r: ImportReport, total: number): string {
  const parts = [`${r.imported.length} imported`];
  if (r.duplicates.length) parts.push(`${r.duplicates.length} already in the gallery`);
  parts.push(`${r.failed.length} failed`);
  return `Import finished: ${parts.join(', ')} (${total} file${total === 1 ? '' : 's'}).`;
}

export async function importCommand(dataDir: string, inputs: string[], opts: { json?: boolean }): Promise<number> {
  const report: ImportReport = { imported: [], duplicates: [], failed: [] };
  const files = await expand(inputs, report.failed);
  const total = files.length + report.failed.length;
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
  (opts.json ? process.stderr : process.stdout).write(`${summaryLine(report, total)}\n`);
  return report.failed.length > 0 ? 1 : 0;
}
