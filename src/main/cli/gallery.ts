// `fstudio gallery list | search | export`.
import path from 'node:path';
import { type GalleryItem, type GalleryQuery, RunKind } from '../../shared/api.js';
import { CliError, checkOutputFile, printJson, writeOutputFile } from './output.js';
import { callStudio, withStudio } from './studio-session.js';

export function parseLimit(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 500)
    throw new CliError(`--limit must be a whole number from 1 to 500, not "${value}".`);
  return n;
}

export function parseOffset(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new CliError(`--offset must be a whole number of 0 or more, not "${value}".`);
  return n;
}

export function parseKind(value: string): GalleryQuery['kind'] {
  const r = RunKind.safeParse(value);
  if (!r.success) throw new CliError(`--kind must be one of ${RunKind.options.join(', ')}, not "${value}".`);
  return r.data;
}

export function parseId(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new CliError(`An item id is a whole number of 1 or more (see \`fstudio gallery list\`), not "${value}".`);
  return n;
}

function table(items: GalleryItem[], total: number, offset: number): string {
  if (items.length === 0) return total === 0 ? 'No items.' : `No items from offset ${offset} (there are ${total}).`;
  const idw = Math.max(2, ...items.map((i) => String(i.id).length));
  const lines = [`${'ID'.padStart(idw)}  KIND      CREATED           SIZE        ★  TITLE`];
  for (const i of items) {
    const created = new Date(i.createdAt).toISOString().slice(0, 16).replace('T', ' ');
    const size = `${i.width}x${i.height}`;
    lines.push(
      `${String(i.id).padStart(idw)}  ${i.kind.padEnd(8)}  ${created}  ${size.padEnd(10)}  ${i.favourite ? '★' : ' '}  ${i.title}`,
    );
  }
  const last = offset + items.length;
  lines.push(`${offset + 1}-${last} of ${total}${last < total ? ` (next page: --offset ${last})` : ''}`);
  return lines.join('\n');
}

export interface ListOptions {
  limit?: number;
  offset?: number;
  kind?: GalleryQuery['kind'];
  favourites?: boolean;
  json?: boolean;
}

export async function galleryList(dataDir: string, opts: ListOptions, text?: string): Promise<number> {
  const query: GalleryQuery = {
    limit: opts.limit ?? 50,
    offset: opts.offset ?? 0,
    ...(opts.kind ? { kind: opts.kind } : {}),
    ...(opts.favourites ? { favourite: true } : {}),
    ...(text !== undefined ? { text } : {}),
  };
  const page = await withStudio(dataDir, (studio) => callStudio(studio, 'galleryQuery', query));
  if (opts.json) printJson(page);
  else process.stdout.write(`${table(page.items, page.total, page.offset)}\n`);
  return 0;
}

export async function galleryExport(
  dataDir: string,
  id: number,
  opts: { output?: string; force?: boolean },
): Promise<number> {
  // A named -o is checked before the studio is opened: no export work for a file that cannot be written.
  if (opts.output !== undefined && opts.output !== '-') checkOutputFile(path.resolve(opts.output), opts.force);
  const file = await withStudio(dataDir, (studio) => callStudio(studio, 'exportItem', { id }));
  if (opts.output === '-') {
    process.stdout.write(file.data);
    return 0;
  }
  const target = path.resolve(opts.output ?? file.name);
  await writeOutputFile(target, file.data, opts.force);
  process.stdout.write(`Exported item ${id} to ${target} (${file.mime}, ${file.data.byteLength} bytes).\n`);
  return 0;
}
