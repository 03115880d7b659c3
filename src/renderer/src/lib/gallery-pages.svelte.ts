// The gallery's data for a virtualised grid: `total` from galleryQuery sizes the scroll
// area, and pages of 100 items are fetched as they scroll into view: by cursor when a
// neighbouring page is loaded (the page after one's `next`, before one's `prev`: a seek in the
// index), by position otherwise (a jump: the scrollbar, End, a date), which the studio also
// answers by seeking. A small cache keeps the 30 pages nearest the last one loaded, so memory
// does not grow with the library; a refresh (after galleryChanged) keeps showing the old pages
// until their replacements arrive, so the grid never blinks. A count past 10,000 text matches
// comes back as "at least"; the exact count is then asked for once (galleryCount).
import { untrack } from 'svelte';
import { SvelteMap } from 'svelte/reactivity';
import type { GalleryItem, GalleryPage, GalleryQuery } from '../../../shared/api.js';

export const pageSize = 100;
/** 30 pages = 3,000 items: several screens either side of the view at any scroll speed. */
const maxPages = 30;

export type GalleryFilter = Omit<GalleryQuery, 'offset' | 'limit' | 'after' | 'before' | 'at'>;

interface Loaded {
  items: GalleryItem[];
  next: string | null;
  prev: string | null;
}

export class GalleryPages {
  /** Items matching the filter, from the last page received. */
  total = $state(0);
  /** False while `total` is only a lower bound (a large text search being counted). */
  totalExact = $state(true);
  /** False until the first page for the current filter has arrived. */
  ready = $state(false);
  error = $state<unknown>(null);
  /** Bumped by every refresh so views re-request what they show. */
  epoch = $state(0);

  /** Page number -> its items and cursors; reactive per key, so a page arriving redraws only its cells. */
  readonly #pages = new SvelteMap<number, Loaded>();
  // Bookkeeping only, never rendered: plain collections on purpose.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  readonly #stale = new Set<number>();
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  readonly #inflight = new Set<number>();
  #generation = 0;
  #counting = -1;
  #exact: { generation: number; total: number } | null = null;
  #filter: GalleryFilter = {};
  readonly #fetch: (q: GalleryQuery) => Promise<GalleryPage>;
  readonly #count: ((f: GalleryFilter) => Promise<{ total: number }>) | null;

  constructor(
    fetch: (q: GalleryQuery) => Promise<GalleryPage>,
    count: ((f: GalleryFilter) => Promise<{ total: number }>) | null = null,
  ) {
    this.#fetch = fetch;
    this.#count = count;
  }

  /** A new filter: different items, so the old pages go at once. */
  setFilter(filter: GalleryFilter): void {
    this.#filter = filter;
    this.#generation++;
    this.#pages.clear();
    this.#stale.clear();
    this.#inflight.clear();
    this.ready = false;
    this.totalExact = true;
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
    return this.#pages.get(Math.floor(index / pageSize))?.items[index % pageSize];
  }

  /** The position of the first item created at or before `ms` (oldest first: at or after), for a jump to a date. */
  async positionOf(ms: number): Promise<number> {
    return (await this.idsAt(ms, 1)).offset;
  }

  /** The ids of up to `limit` items from the one positionOf(ms) finds, and that one's position. */
  async idsAt(ms: number, limit: number): Promise<{ offset: number; ids: number[] }> {
    const page = await this.#fetch({ ...this.#filter, at: ms, limit });
    return { offset: page.offset, ids: page.items.map((i) => i.id) };
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
    for (const [p, { items }] of this.#pages) {
      const i = items.findIndex((it) => it.id === id);
      if (i >= 0) return p * pageSize + i;
    }
    return -1;
  }

  /** Replace one loaded item in place (e.g. a favourite toggled from the detail panel). */
  patch(item: GalleryItem): void {
    for (const [p, page] of this.#pages) {
      const i = page.items.findIndex((it) => it.id === item.id);
      if (i < 0) continue;
      this.#pages.set(p, { ...page, items: page.items.with(i, item) });
      return;
    }
  }

  async #countAll(generation: number): Promise<void> {
    if (!this.#count || this.#counting === generation) return;
    this.#counting = generation;
    try {
      const { total } = await this.#count(this.#filter);
      if (generation !== this.#generation) return;
      this.#exact = { generation, total };
      this.total = total;
      this.totalExact = true;
    } catch {
      /* the lower bound stays */
    }
  }

  async #load(p: number): Promise<void> {
    const generation = this.#generation;
    this.#inflight.add(p);
    try {
      // A fresh, full neighbour gives a cursor: the page is a seek from it. Otherwise by position.
      const fresh = (k: number) => {
        const page = this.#pages.get(k);
        return page && !this.#stale.has(k) && page.items.length === pageSize ? page : undefined;
      };
      const after = fresh(p - 1)?.next ?? undefined;
      const before = after === undefined ? (fresh(p + 1)?.prev ?? undefined) : undefined;
      const q: GalleryQuery = { ...this.#filter, offset: p * pageSize, limit: pageSize };
      if (after !== undefined) q.after = after;
      else if (before !== undefined) q.before = before;
      const page = await this.#fetch(q);
      if (generation !== this.#generation) return;
      const pages = this.#pages;
      pages.set(p, { items: page.items, next: page.next ?? null, prev: page.prev ?? null });
      this.#stale.delete(p);
      // A changed total can leave pages past the end (an "at least" total says nothing of the end);
      // drop them with the farthest ones.
      const known =
        (page.totalExact ?? true) ? page.total : this.#exact?.generation === generation ? this.#exact.total : Infinity;
      const lastPage = Math.max(0, Math.ceil(known / pageSize) - 1);
      for (const key of [...pages.keys()]) if (key > lastPage) pages.delete(key);
      while (pages.size > maxPages) {
        let far = p;
        for (const key of pages.keys()) if (Math.abs(key - p) > Math.abs(far - p)) far = key;
        pages.delete(far);
      }
      // An "at least" count stands until the exact one arrives (asked for once per generation).
      if (page.totalExact ?? true) {
        this.total = page.total;
        this.totalExact = true;
      } else if (this.#exact?.generation === generation) {
        this.total = this.#exact.total;
        this.totalExact = true;
      } else {
        this.total = page.total;
        this.totalExact = false;
        void this.#countAll(generation);
      }
      this.ready = true;
      this.error = null;
    } catch (e) {
      if (generation === this.#generation) this.error = e;
    } finally {
      if (generation === this.#generation) this.#inflight.delete(p);
    }
  }
}
