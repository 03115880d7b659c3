// Gallery rows as the API shows them: a card per image, the metadata to display, and the errors
// for an item that is gone.
import { StudioError, type GalleryItem, type ImageMetadata } from '../../shared/api.js';
import type { CardRow, History, ImageRow } from './history.js';
import { NO_METADATA } from './metadata/index.js';

export function card(r: CardRow): GalleryItem {
  return {
    id: r.id,
    runId: r.runId,
    kind: r.kind,
    sha256: r.sha256,
    title: r.title,
    width: r.width,
    height: r.height,
    favourite: r.favourite === 1,
    createdAt: r.createdAt,
  };
}

export function notFound(id: number): StudioError {
  return new StudioError('NotFound', `No gallery item with id ${id}: it may have been deleted.`);
}

export function cardOf(history: History, id: number): GalleryItem {
  const r = history.getCard(id);
  if (!r) throw notFound(id);
  return card(r);
}

/** An image that is in the gallery (not in the trash), or NotFound. */
export function liveImage(history: History, id: number): ImageRow {
  const r = history.getImage(id);
  if (!r || r.trashToken !== null) throw notFound(id);
  return r;
}

/** The metadata to show for an image: parsed from its file, else what its run's spec says. */
export function metadataOf(row: ImageRow): ImageMetadata {
  if (row.metadata && row.metadata.source !== 'none') return row.metadata;
  const spec = (row.spec ?? {}) as Record<string, unknown>;
  if (typeof spec.prompt === 'string') {
    const parameters: Record<string, string> = {};
    for (const [k, v] of Object.entries(spec))
      if (k !== 'prompt' && k !== 'negativePrompt' && (typeof v === 'string' || typeof v === 'number'))
        parameters[k] = String(v);
    return {
      source: 'foundation-studio',
      prompt: spec.prompt,
      negativePrompt: typeof spec.negativePrompt === 'string' ? spec.negativePrompt : null,
      parameters,
      raw: row.metadata?.raw ?? {},
    };
  }
  return row.metadata ?? NO_METADATA;
}
