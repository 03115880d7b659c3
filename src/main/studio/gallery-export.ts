// An item as a PNG that carries its metadata: the original PNG kept chunk for chunk (re-encoded only
// when its chunks are damaged, and any other format converted), plus our JSON chunk and, when the file
// has no AUTOMATIC1111 `parameters` chunk, one written from the metadata so other tools read the
// prompt too. A `parameters` chunk that is not A1111's text (Fooocus and SwarmUI put JSON there,
// which A1111's PNG Info would show as the prompt) is kept under ORIGINAL_PARAMETERS_KEY, bytes
// unchanged, and A1111's text takes its place.
import { readFile } from 'node:fs/promises';
import { StudioError, TOOL_NAMES, type ImageMetadata } from '../../shared/api.js';
import { appVersion } from '../base/app-version.js';
import type { StudioContext } from './context.js';
import { liveImage, metadataOf, notFound } from './gallery-rows.js';
import { convertToPng } from './images.js';
import { formatA1111 } from './metadata/a1111.js';
import { firstNonSpace } from './metadata/common.js';
import { OUR_KEYWORD, ourChunkText } from './metadata/ours.js';
import {
  decodeTextChunk,
  insertTextChunks,
  isPng,
  readChunks,
  textChunkKeyword,
  writeChunks,
  type PngChunk,
} from './png-chunks.js';

/** Where a `parameters` chunk that is not A1111's text is kept on export. */
export const ORIGINAL_PARAMETERS_KEY = 'parameters (original)';

const toBytes = (b: Buffer | Uint8Array): Uint8Array<ArrayBuffer> =>
  new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.byteLength);

function chunksReadable(png: Uint8Array): boolean {
  try {
    readChunks(png);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether A1111's PNG Info reads this `parameters` text as infotext: anything but a JSON object
 * (an undecodable chunk, null here, is not).
 */
function isA1111Text(text: string | null): boolean {
  if (text === null) return false;
  if (firstNonSpace(text) !== '{') return true;
  try {
    const j: unknown = JSON.parse(text);
    return !(typeof j === 'object' && j !== null && !Array.isArray(j));
  } catch {
    return true;
  }
}

/**
 * The PNG's chunks, with every `parameters` text chunk renamed ORIGINAL_PARAMETERS_KEY (the
 * keyword is the chunk's first bytes in all three text formats: the rest is kept as it was) when
 * the first is not A1111's text; `keep` says whether it was.
 */
function setAsideParameters(png: Uint8Array): { chunks: PngChunk[]; keep: boolean; found: boolean } {
  const chunks = readChunks(png);
  const first = chunks.find((c) => textChunkKeyword(c) === 'parameters');
  if (!first) return { chunks, keep: false, found: false };
  if (isA1111Text(decodeTextChunk(first)?.text ?? null)) return { chunks, keep: true, found: true };
  const renamed = Buffer.from(ORIGINAL_PARAMETERS_KEY, 'latin1');
  const moved = chunks.map((c) =>
    textChunkKeyword(c) === 'parameters'
      ? { type: c.type, data: Buffer.concat([renamed, c.data.subarray('parameters'.length)]) }
      : c,
  );
  return { chunks: moved, keep: false, found: true };
}

/** The metadata an export carries and what it leaves out, in words (the toast and the CLI say them). */
function describeCarried(
  meta: ImageMetadata,
  hasRunSettings: boolean,
  note: string,
  tags: readonly string[],
  withNoteAndTags: boolean,
): { carries: string[]; leftOut: string[] } {
  const carries: string[] = [];
  if (meta.prompt) carries.push('the prompt');
  if (meta.negativePrompt) carries.push('the negative prompt');
  if (Object.keys(meta.parameters).length > 0) carries.push('the generation parameters');
  if (hasRunSettings) carries.push('the run settings');
  const mine = [...(note.trim() ? ['your note'] : []), ...(tags.length > 0 ? ['your tags'] : [])];
  if (withNoteAndTags) carries.push(...mine);
  return { carries, leftOut: withNoteAndTags ? [] : mine };
}

export async function exportItem(ctx: StudioContext, id: number, opts: { noteAndTags?: boolean } = {}) {
  const { history, files } = ctx;
  const row = liveImage(history, id);
  const abs = files.abs(row.path);
  if (!abs) throw notFound(id);
  const original = await readFile(abs).catch(() => {
    throw new StudioError(
      'FileMissing',
      `The file of item ${id} (${row.path}) is missing from the data folder ${ctx.dataDir}. ` +
        'Put it back from a backup, or delete the item and import the image again.',
    );
  });
  const label = row.fileName ?? `item ${id}`;
  // A PNG is kept as it is, chunks and all, unless its chunk structure is damaged
  // (libpng tolerates a bad ancillary CRC; our writer does not): then it is re-encoded.
  const asPng =
    isPng(original) && chunksReadable(original) ? toBytes(original) : toBytes(await convertToPng(original, label));
  // A1111's own `parameters` is kept; another tool's is set aside and A1111's text written.
  const aside = setAsideParameters(asPng);
  const png = aside.found && !aside.keep ? writeChunks(aside.chunks) : asPng;
  const meta = metadataOf(row);
  // The note and tags are the user's own words: they leave with the file only when asked for.
  const withNoteAndTags = opts.noteAndTags ?? ctx.settings.get().exportNoteAndTags;
  const tags = history.tagsOf(id);
  const ours = ourChunkText({
    prompt: meta.prompt,
    negativePrompt: meta.negativePrompt,
    parameters: meta.parameters,
    source: meta.source,
    app: { name: 'foundation-studio', version: appVersion() },
    run: { id: row.runId, kind: row.kind, createdAt: row.createdAt, spec: row.spec, provenance: row.provenance },
    image: { sha256: row.sha256, fileName: row.fileName, width: row.width, height: row.height },
    ...(withNoteAndTags ? { note: row.note, tags } : {}),
  });
  const texts = [{ keyword: OUR_KEYWORD, text: ours, kind: 'iTXt' as const, compressed: true }];
  // Keep an A1111 chunk the original already has; otherwise write one so other tools can read ours.
  // Its last line must hold 3 parameters for A1111 to read it as such: the size, the tool and
  // this export fill it when the metadata has fewer.
  if (!aside.keep && (meta.prompt || Object.keys(meta.parameters).length > 0)) {
    const fill: [string, string][] = [['Size', `${row.width}x${row.height}`]];
    const tool = meta.source in TOOL_NAMES ? TOOL_NAMES[meta.source as keyof typeof TOOL_NAMES] : undefined;
    if (tool) fill.push(['Made with', tool]);
    fill.push(['Exported by', `Foundation Studio ${appVersion()}`]);
    texts.push({
      keyword: 'parameters',
      text: formatA1111(
        { prompt: meta.prompt ?? '', negativePrompt: meta.negativePrompt, parameters: meta.parameters },
        fill,
      ),
      kind: 'iTXt',
      compressed: false,
    });
  }
  const out = insertTextChunks(png, texts, [OUR_KEYWORD]);
  const stem = (row.fileName ?? '')
    .replace(/\.[^.]*$/, '')
    .replace(/[^\p{L}\p{N}._ -]+/gu, '_')
    .slice(0, 100);
  const hasRunSettings =
    row.kind !== 'import' && typeof row.spec === 'object' && row.spec !== null && Object.keys(row.spec).length > 0;
  return {
    name: `${stem || `foundation-studio-${id}`}.png`,
    mime: 'image/png',
    data: out,
    ...describeCarried(meta, hasRunSettings, row.note, tags, withNoteAndTags),
  };
}
