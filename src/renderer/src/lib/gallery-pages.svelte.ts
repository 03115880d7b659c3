// The gallery's data for a virtualised grid: `total` from galleryQuery sizes the scroll
// area, and pages of 100 items are fetched by offset as they scroll into view. A small
// cache keeps the 30 pages nearest the last one loaded; a refresh (after galleryChanged)
// keeps showing the old pages until their replacements arrive, so the grid never blinks.
import { untrack } from 'svelte';
import { SvelteMap } from 'svelte/reactivity';
import type { GalleryItem, GalleryPage, GalleryQuery } from '../../../shared/api.js';

export const pageSize = 100;
/** 30 pages = 3,000 items: several screens either side of the view at any scroll speed. */
const maxPages = 30;

export type GalleryFilter = Omit<GalleryQuery, 'offset' | 'limit'>;

export class GalleryPages {
  /** Items matching the filter, from the last page received. */
  total = $state(0);
  /** False until the first page for the current filter has arrived. */
  ready = $state(false);
  error = $state<unknown>(null);
  /** Bumped by every refresh so views re-request what they show. */
  epoch = $state(0);

  /** Page number -> its items; reactive per key, so a page arriving redraws only its cells. */
  readonly #pages = new SvelteMap<number, GalleryItem[]>();
  // Bookkeeping only, never rendered: plain collections on purpose.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  readonly #stale = new Set<number>();
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  readonly #inflight = new Set<number>();
  #generation = 0;
  #filter: GalleryFilter = {};
  readonly #fetch: (q: GalleryQuery) => Promise<GalleryPage>;

  constructor(fetch: (q: GalleryQuery) => Promise<GalleryPage>) {
    this.#fetch = fetch;
  }

  /** A new filter: different items, so the old pages go at once. */
  setFilter(filter: GalleryFilter): void {
    this.#filter = filter;
    this.#generation++;
    this.#pages.clear();
    this.#stale.clear();
    this.#inflight.clear();
    this.ready = false;
    this.error = null;
    this.#bump();
  }

  /** Same filter, data changed: re-fetch pages as they are shown. */
  refresh(): void {
    this.#generation++;
    for (const p of this.#pages.keys()) this.#stale.add(p);
    this.#inflight.clear();
    this.#bump();
  }

  // Called from effects: bumping must not make the caller depend on the epoch.
  #bump(): void {
    this.epoch = untrack(() => this.epoch) + 1;
  }

  item(index: number): GalleryItem | undefined {
    return this.#pages.get(Math.floor(index / pageSize))?.[index % pageSize];
  }

  /** Items [start, end) are on screen (with overscan): load the pages they need. */
  ensure(start: number, end: number): void {
    void this.epoch; // a dependency for the calling effect
    const first = Math.floor(Math.max(0, start) / pageSize);
    // Before the first answer the total is unknown: ask for page 0 only.
    const last = this.ready ? Math.floor(Math.max(start, Math.min(end, this.total) - 1) / pageSize) : 0;
    for (let p = first; p <= last; p++) {
      if ((this.#pages.has(p) && !this.#stale.has(p)) || this.#inflight.has(p)) continue;
      void this.#load(p);
    }
  }

  /** Position of an item in the current view, if its page is loaded. */
  indexOf(id: number): number {
    for (const [p, items] of this.#pages) {
      const i = items.findIndex((it) => it.id === id);
      if (i >= 0) return p * pageSize + i;
    }
    return -1;
  }

  /** Replace one loaded item in place (e.g. a favourite toggled from the detail panel). */
  patch(item: GalleryItem): void {
    for (const [p, items] of this.#pages) {
      const i = items.findIndex((it) => it.id === item.id);
      if (i < 0) continue;
      this.#pages.set(p, items.with(i, item));
      return;
    }
  }

  async #load(p: number): Promise<void> {
    const generation = this.#generation;
    this.#inflight.add(p);
    try {
      const page = await this.#fetch({ ...this.#filter, offset: p * pageSize, limit: pageSize });
      if (generation !== this.#generation) return;
      const pages = this.#pages;
      pages.set(p, page.items);
      this.#stale.delete(p);
      // A changed total can leave pages past the end; drop them with the farthest ones.
      const lastPage = Math.max(0, Math.ceil(page.total / pageSize) - 1);
      for (const key of [...pages.keys()]) if (key > lastPage) pages.delete(key);
      while (pages.size > maxPages) {
        let far = p;
        for (const key of pages.keys()) if (Math.abs(key - p) > Math.abs(far - p)) far = key;
        pages.delete(far);
      }
      this.total = page.total;
      this.ready = true;
      this.error = null;
    } catch (e) {
      if (generation === this.#generation) this.error = e;
    } finally {
      if (generation === this.#generation) this.#inflight.delete(p);
    }
  }
}
