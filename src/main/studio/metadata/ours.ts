// Our own `foundation-studio` iTXt chunk (JSON, UTF-8), written on export: the prompts and
// parameters as shown, plus the run, the image, its note and tags. It wins over every other
// format it travels with (it is what the user saw here).
//
// Public API: OUR_KEYWORD, OurChunk, ourChunkText, oursReader.
import { has, isObj, str, tryJson, type MetadataReader } from './common.js';

/** Keyword of our own iTXt chunk (JSON, UTF-8). */
export const OUR_KEYWORD = 'foundation-studio';

/** The JSON we write into the `foundation-studio` iTXt chunk. */
export interface OurChunk {
  format: 'foundation-studio/1';
  prompt: string | null;
  negativePrompt: string | null;
  parameters: Record<string, string>;
  [extra: string]: unknown;
}

export function ourChunkText(c: Omit<OurChunk, 'format'>): string {
  return JSON.stringify({ format: 'foundation-studio/1', ...c });
}

export const oursReader: MetadataReader = {
  name: 'Foundation Studio',
  source: 'foundation-studio',
  detect: (raw) => has(raw, OUR_KEYWORD),
  parse: (raw) => {
    const j = tryJson(raw[OUR_KEYWORD]);
    if (!isObj(j)) return null;
    const parameters: Record<string, string> = {};
    if (isObj(j.parameters))
      for (const [k, v] of Object.entries(j.parameters)) {
        const s = str(v);
        if (s !== null) parameters[k] = s;
      }
    return { prompt: str(j.prompt) ?? '', negativePrompt: str(j.negativePrompt), parameters };
  },
};
