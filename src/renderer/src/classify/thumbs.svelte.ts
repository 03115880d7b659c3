// Thumbnails of a classify run's images: gallery items through the asset route, folder images as small WebPs
// the studio makes (classifyThumb), kept as blob URLs for the run shown and released when another is shown.
// A few requests at a time.
//
// Public API
//   thumbs.urls, requestThumb(run, row), releaseThumbs()
import { SvelteMap } from 'svelte/reactivity';
import type { ClassifyRow } from '../../../shared/api.js';
import { getStudio } from '../lib/studio-client.js';

export const thumbs = { urls: new SvelteMap<string, string>() };
const queue: (() => Promise<void>)[] = [];
let active = 0;
let generation = 0;

const key = (runId: number, idx: number) => `${runId}:${idx}`;

function pump(): void {
  while (active < 4 && queue.length) {
    const job = queue.shift()!;
    active++;
    void job().finally(() => {
      active--;
      pump();
    });
  }
}

export function thumbUrl(runId: number, row: ClassifyRow): string | undefined {
  if (row.sha256) return getStudio().assetUrl(row.sha256, 'thumb');
  return thumbs.urls.get(key(runId, row.idx));
}

export function requestThumb(runId: number, row: ClassifyRow): void {
  const k = key(runId, row.idx);
  if (row.sha256 || thumbs.urls.has(k)) return;
  thumbs.urls.set(k, '');
  const gen = generation;
  queue.push(async () => {
    if (gen !== generation) return;
    try {
      const t = await getStudio().classifyThumb({ runId, idx: row.idx });
      if (gen !== generation) return;
      thumbs.urls.set(k, URL.createObjectURL(new Blob([t.data.slice()], { type: t.mime })));
    } catch {
      /* the file may be gone: the card shows its name instead */
    }
  });
  pump();
}

export function releaseThumbs(): void {
  generation++;
  queue.length = 0;
  for (const u of thumbs.urls.values()) if (u) URL.revokeObjectURL(u);
  thumbs.urls.clear();
}
