// An item as a PNG that carries its metadata: the original PNG kept chunk for chunk (re-encoded only
// when its chunks are damaged, and any other format converted), plus our JSON chunk and, when the file
// has none, an AUTOMATIC1111 `parameters` chunk so other tools read the prompt too.
import { readFile } from 'node:fs/promises';
import { StudioError } from '../../shared/api.js';
import { appVersion } from '../base/app-version.js';
import type { StudioContext } from './context.js';
import { liveImage, metadataOf, notFound } from './gallery-rows.js';
import { convertToPng } from './images.js';
import { formatA1111 } from './metadata/a1111.js';
import { OUR_KEYWORD, ourChunkText } from './metadata/ours.js';
import { insertTextChunks, isPng, readChunks, textKeywords } from './png-chunks.js';

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

export async function exportItem(ctx: StudioContext, id: number) {
  const { history, files } = ctx;
  const row = liveImage(history, id);
  const abs = files.abs(row.path);
  if (!abs) throw notFound(id);
  const original = await readFile(abs).catch(() => {
    throw new StudioError(
      'FileMissing',
      `The file of item ${id} (${row.path}) is missing from the data folder ${ctx.dataDir}. ` +
        'Put it back from a backup, or import the same image again; `fstudio doctor` lists missing files.',
    );
  });
  const label = row.fileName ?? `item ${id}`;
  // A PNG is kept as it is, chunks and all, unless its chunk structure is damaged
  // (libpng tolerates a bad ancillary CRC; our writer does not): then it is re-encoded.
  const png =
    isPng(original) && chunksReadable(original) ? toBytes(original) : toBytes(await convertToPng(original, label));
  const meta = metadataOf(row);
  const ours = ourChunkText({
    prompt: meta.prompt,
    negativePrompt: meta.negativePrompt,
    parameters: meta.parameters,
    source: meta.source,
    app: { name: 'foundation-studio', version: appVersion() },
    run: { id: row.runId, kind: row.kind, createdAt: row.createdAt, spec: row.spec, provenance: row.provenance },
    image: { sha256: row.sha256, fileName: row.fileName, width: row.width, height: row.height },
    note: row.note,
    tags: history.tagsOf(id),
  });
  const texts = [{ keyword: OUR_KEYWORD, text: ours, kind: 'iTXt' as const, compressed: true }];
  // Keep an A1111 chunk the original already has; otherwise write one so other tools can read ours.
  const hasParameters = textKeywords(png).includes('parameters');
  if (!hasParameters && (meta.prompt || Object.keys(meta.parameters).length > 0))
    texts.push({
      keyword: 'parameters',
      text: formatA1111({
        prompt: meta.prompt ?? '',
        negativePrompt: meta.negativePrompt,
        parameters: meta.parameters,
      }),
      kind: 'iTXt',
      compressed: false,
    });
  const out = insertTextChunks(png, texts, [OUR_KEYWORD]);
  const stem = (row.fileName ?? '')
    .replace(/\.[^.]*$/, '')
    .replace(/[^\p{L}\p{N}._ -]+/gu, '_')
    .slice(0, 100);
  return { name: `${stem || `foundation-studio-${id}`}.png`, mime: 'image/png', data: out };
}
