// The metadata other tools leave in an image, recognised by a table of readers (one row per
// tool's format: detect + parse, tried in order, the most specific first), with every field
// bounded (common.ts: boundFields) and what was cut or left out said in the result.
//
// Public API: READERS, IGNORED_TEXT_KEY, NO_METADATA, textChunkMap, parseMetadata,
// readImageMetadata (PNG text chunks), readExifMetadata (the EXIF UserComment of a JPEG/WebP).
import type { ImageMetadata } from '../../../shared/api.js';
import { MAX_COMMENT_BYTES, readUserComment } from '../exifmeta.js';
import { isPng, MAX_TEXT_CHUNKS, MAX_TEXT_TOTAL, readTextChunksLimited, type TextChunk } from '../png-chunks.js';
import { a1111Reader } from './a1111.js';
import { boundFields, type MetadataReader, type Parsed } from './common.js';
import { comfyuiReader } from './comfyui.js';
import { fooocusReader } from './fooocus.js';
import { invokeaiLegacyReader, invokeaiReader } from './invokeai.js';
import { novelaiReader } from './novelai.js';
import { oursReader } from './ours.js';
import { swarmuiReader } from './swarmui.js';

/** The readers, in the order they are tried: the first whose detect and parse both succeed wins. */
export const READERS: readonly MetadataReader[] = [
  oursReader, // foundation-studio: what was shown here wins over what it travels with
  invokeaiReader, // invokeai_metadata (InvokeAI 3.x+)
  novelaiReader, // Software "NovelAI": Description (prompt) and Comment (JSON settings)
  swarmuiReader, // parameters holding {"sui_image_params": ...}
  comfyuiReader, // prompt (API graph), else workflow (UI graph)
  fooocusReader, // parameters as JSON (fooocus scheme) or A1111 text, beside fooocus_scheme
  a1111Reader, // parameters
  invokeaiLegacyReader, // sd-metadata, else Dream (InvokeAI 1.x/2.x)
];

/** The raw-map key that says text chunks were ignored (not a valid PNG keyword: it starts with a space). */
export const IGNORED_TEXT_KEY = ' ignored text chunks';

export const NO_METADATA: ImageMetadata = {
  source: 'none',
  prompt: null,
  negativePrompt: null,
  parameters: {},
  raw: {},
};

/** The raw keyword -> text map; a repeated keyword gets `#2`, `#3`... so nothing is lost. */
export function textChunkMap(chunks: readonly TextChunk[]): Record<string, string> {
  const raw: Record<string, string> = {};
  for (const c of chunks) {
    let k = c.keyword;
    for (let i = 2; k in raw; i++) k = `${c.keyword}#${i}`;
    raw[k] = c.text;
  }
  return raw;
}

/**
 * Recognises the tool that wrote these texts (READERS, in order) and parses its format, fields
 * bounded. `notes` (what the container left out) join the reader's in the NOTE_KEY parameter.
 * A reader that throws is passed over, and said so, rather than losing the rest.
 */
export function parseMetadata(raw: Record<string, string>, notes: readonly string[] = []): ImageMetadata {
  const failed: string[] = [];
  for (const reader of READERS) {
    if (!reader.detect(raw)) continue;
    let p: Parsed | null;
    try {
      p = reader.parse(raw);
    } catch (e) {
      failed.push(`the ${reader.name} metadata could not be read (${e instanceof Error ? e.message : String(e)})`);
      continue;
    }
    if (p) return { source: reader.source, ...boundFields(p, [...notes, ...failed]), raw };
  }
  const source = Object.keys(raw).length ? 'unknown' : 'none';
  const all = [...notes, ...failed];
  const parameters = all.length
    ? boundFields({ prompt: '', negativePrompt: null, parameters: {} }, all).parameters
    : {};
  return { source, prompt: null, negativePrompt: null, parameters, raw };
}

/** Metadata of any image file: PNG text chunks are read; other formats report `none`. */
export function readImageMetadata(file: Uint8Array): ImageMetadata {
  if (!isPng(file)) return parseMetadata({});
  let raw: Record<string, string>;
  try {
    const { chunks, ignored } = readTextChunksLimited(file);
    raw = textChunkMap(chunks);
    if (ignored > 0)
      raw[IGNORED_TEXT_KEY] =
        `${ignored} text chunk(s) were not read: a file's text metadata is read up to ${MAX_TEXT_CHUNKS} chunks ` +
        `and ${MAX_TEXT_TOTAL / (1024 * 1024)} MB in all. The image itself was imported whole.`;
  } catch {
    return parseMetadata({});
  }
  return parseMetadata(raw);
}

/**
 * Metadata of a JPEG/WebP from its EXIF block: AUTOMATIC1111 keeps its infotext in the
 * UserComment. A comment over MAX_COMMENT_BYTES is read that far, and the note says so.
 */
export function readExifMetadata(exif: Uint8Array | null): ImageMetadata {
  const c = exif ? readUserComment(exif) : null;
  if (!c?.text) return NO_METADATA;
  const notes = c.truncated ? [`EXIF UserComment: ${c.bytes} bytes, read the first ${MAX_COMMENT_BYTES}`] : [];
  return { ...parseMetadata({ parameters: c.text }, notes), raw: { 'EXIF UserComment': c.text } };
}
