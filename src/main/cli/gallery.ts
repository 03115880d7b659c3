// `fstudio gallery list | search | show | export`.
import path from 'node:path';
import {
  type GalleryItem,
  type GalleryQuery,
  type ItemDetail,
  RunKind,
  StudioError,
  TOOL_NAMES,
} from '../../shared/api.js';
import { listWords } from '../../shared/format.js';
import { CliError, checkOutputFile, formatBytes, printJson, writeOutputFile } from './output.js';
import { callStudio, withStudio } from './studio-session.js';

/** A missing item, said the CLI's way: where the ids are. */
function withIdHint(e: unknown): never {
  if (e instanceof StudioError && e.code === 'NotFound')
    throw new CliError(`${e.message.replace(/\.?$/, '.')} \`fstudio gallery list\` shows the ids there are.`);
  throw e;
}

/** What kind of item it is, in a user's words. */
const KIND_WORDS: Record<GalleryItem['kind'], string> = {
  import: 'Imported',
  generate: 'Generated',
  prompt: 'Prompt run',
  classify: 'Classification',
};

const SOURCE_WORDS: Record<ItemDetail['metadata']['source'], string> = {
  ...TOOL_NAMES,
  unknown: 'an unrecognised tool',
  none: 'no metadata',
};

/** An item with its prompt and every parameter, for `fstudio gallery show`. */
export function formatItem(d: ItemDetail): string {
  const { item, metadata: m } = d;
  const rows: [string, string][] = [
    ['ID', String(item.id)],
    ['Title', item.title],
    ['Kind', KIND_WORDS[item.kind]],
    ['Added', new Date(item.createdAt).toISOString().slice(0, 19).replace('T', ' ')],
    ['Size', `${item.width} x ${item.height} px, ${formatBytes(d.bytes)} (${d.mime})`],
  ];
  if (d.fileName) rows.push(['File', d.fileName]);
  rows.push(['Favourite', item.favourite ? 'yes' : 'no']);
  if (d.tags.length) rows.push(['Tags', d.tags.join(', ')]);
  if (m.source !== 'none') rows.push(['Made with', SOURCE_WORDS[m.source]]);
  const w = Math.max(...rows.map(([k]) => k.length), ...Object.keys(m.parameters).map((k) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`);
  if (m.prompt) lines.push('', 'Prompt', `  ${m.prompt.replace(/\n/g, '\n  ')}`);
  if (m.negativePrompt) lines.push('', 'Negative prompt', `  ${m.negativePrompt.replace(/\n/g, '\n  ')}`);
  const params = Object.entries(m.parameters);
  if (params.length) {
    lines.push('', 'Parameters');
    for (const [k, v] of params) lines.push(`  ${k.padEnd(w)}  ${v}`);
  }
  if (d.note.trim()) lines.push('', 'Note', `  ${d.note.replace(/\n/g, '\n  ')}`);
  if (m.source === 'none') lines.push('', 'No prompt or parameters were found in this file.');
  return lines.join('\n');
}

export async function galleryShow(dataDir: string, id: number, opts: { json?: boolean }): Promise<number> {
  const detail = await withStudio(dataDir, (studio) => callStudio(studio, 'getItem', { id })).catch(withIdHint);
  if (opts.json) printJson(detail);
  else process.stdout.write(`${formatItem(detail)}\n`);
  return 0;
}

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
  opts: { output?: string; force?: boolean; noteAndTags?: boolean },
): Promise<number> {
  // A named -o is checked before the studio is opened: no export work for a file that cannot be written.
  if (opts.output !== undefined && opts.output !== '-') checkOutputFile(path.resolve(opts.output), opts.force);
  const file = await withStudio(dataDir, (studio) =>
    callStudio(studio, 'exportItem', {
      id,
      ...(opts.noteAndTags !== undefined ? { noteAndTags: opts.noteAndTags } : {}),
    }),
  ).catch(withIdHint);
  const carries = `It carries ${file.carries.length ? listWords(file.carries) : 'no metadata'}.`;
  const leftOut = file.leftOut.length
    ? ` Left out: ${listWords(file.leftOut)} (add --with-note-and-tags to include them).`
    : '';
  if (opts.output === '-') {
    process.stdout.write(file.data);
    process.stderr.write(`${carries}${leftOut}\n`);
    return 0;
  }
  const target = path.resolve(opts.output ?? file.name);
  await writeOutputFile(target, file.data, opts.force);
  process.stdout.write(
    `Exported item ${id} to ${target} (${file.mime}, ${file.data.byteLength} bytes). ${carries}${leftOut}\n`,
  );
  return 0;
}
