// The gallery's page cache without a browser: which pages are fetched for a range, that a
// refresh keeps old pages until new ones arrive, that answers to an old filter are dropped,
// and that the cache stays bounded while scrolling through 10,000 items.
import { describe, expect, it } from 'vitest';
import type { GalleryItem, GalleryPage, GalleryQuery } from '../../../shared/api.js';
import { GalleryPages, pageSize } from './gallery-pages.svelte.js';

function item(i: number, title = `item ${i}`): GalleryItem {
  return {
    id: i + 1,
    runId: i + 1,
    kind: 'import',
    sha256: i.toString(16).padStart(64, '0'),
    title,
    width: 1,
    height: 1,
    favourite: false,
    createdAt: i,
  };
}

/** A fake galleryQuery over `total` items whose answers the test releases by hand. */
function fakeBackend(total: number) {
  const calls: GalleryQuery[] = [];
  const pending: (() => void)[] = [];
  let title = (i: number) => `item ${i}`;
  const fetch = (q: GalleryQuery): Promise<GalleryPage> => {
    calls.push(q);
    // Cursors are item indices here: the page after one starts past it, the page before one ends at it.
    const limit = q.limit ?? 100;
    const offset =
      q.after !== undefined ? Number(q.after) + 1 : q.before !== undefined ? Number(q.before) - limit : (q.offset ?? 0);
    const n = Math.max(0, Math.min(limit, backend.total - offset));
    const items = Array.from({ length: n }, (_, k) => item(offset + k, title(offset + k)));
    const cursors = { next: n ? String(offset + n - 1) : null, prev: n ? String(offset) : null };
    const exact = backend.total <= backend.cap;
    const total = exact ? backend.total : backend.cap;
    return new Promise((ok) => pending.push(() => ok({ total, totalExact: exact, offset, items, ...cursors })));
  };
  const backend = {
    total,
    /** Past this many, a page says "at least" (as a large text search does). */
    cap: Infinity,
    calls,
    fetch,
    setTitles: (f: (i: number) => string) => (title = f),
    /** Answers every call made so far, then lets their continuations run. */
    async flush() {
      for (const release of pending.splice(0)) release();
      await new Promise((r) => setTimeout(r, 0));
    },
  };
  return backend;
}

// Runes ($state) only exist once the Svelte plugin compiles this module; without it in
// vitest.config.ts the class cannot even be constructed. Say so rather than fail obscurely.
const runesCompiled = (() => {
  try {
    new GalleryPages(() => Promise.reject(new Error('unused')));
    return true;
  } catch {
    return false;
  }
})();
if (!runesCompiled)
  console.warn(
    'SKIPPED gallery-pages tests: vitest.config.ts needs `plugins: [svelte()]` to compile .svelte.ts runes.',
  );

describe.skipIf(!runesCompiled)('GalleryPages (skipped unless vitest compiles Svelte runes)', () => {
  it('fetches page 0 first, then the pages a range covers, each once', async () => {
    const be = fakeBackend(1000);
    const pages = new GalleryPages(be.fetch);
    pages.setFilter({});
    pages.ensure(0, 350);
    expect(be.calls.map((c) => c.offset)).toEqual([0]); // total unknown yet
    await be.flush();
    expect(pages.ready).toBe(true);
    expect(pages.total).toBe(1000);
    pages.ensure(0, 350);
    pages.ensure(0, 350);
    expect(be.calls.map((c) => c.offset)).toEqual([0, 100, 200, 300]);
    expect(be.calls.every((c) => c.limit === pageSize)).toBe(true);
    await be.flush();
    expect(pages.item(349)?.title).toBe('item 349');
    expect(pages.item(400)).toBeUndefined(); // page 4 was never asked for
  });

  it('a refresh keeps showing the old page until the new one arrives', async () => {
    const be = fakeBackend(150);
    const pages = new GalleryPages(be.fetch);
    pages.setFilter({});
    pages.ensure(0, 1);
    await be.flush();
    be.setTitles((i) => `renamed ${i}`);
    pages.refresh();
    pages.ensure(0, 1);
    expect(pages.item(0)?.title).toBe('item 0');
    await be.flush();
    expect(pages.item(0)?.title).toBe('renamed 0');
  });

  it('drops answers that belong to a previous filter', async () => {
    const be = fakeBackend(500);
    const pages = new GalleryPages(be.fetch);
    pages.setFilter({ text: 'old' });
    pages.ensure(0, 1);
    pages.setFilter({ text: 'new' });
    be.total = 3;
    pages.ensure(0, 1);
    await be.flush();
    expect(be.calls.map((c) => c.text)).toEqual(['old', 'new']);
    expect(pages.total).toBe(3);
    expect(pages.item(3)).toBeUndefined();
  });

  it('shrinking totals drop pages past the end', async () => {
    const be = fakeBackend(250);
    const pages = new GalleryPages(be.fetch);
    pages.setFilter({});
    pages.ensure(0, 1);
    await be.flush();
    pages.ensure(0, 250);
    await be.flush();
    expect(pages.item(220)).toBeDefined();
    be.total = 150;
    pages.refresh();
    pages.ensure(0, 1);
    await be.flush();
    expect(pages.total).toBe(150);
    expect(pages.item(220)).toBeUndefined();
  });

  it('keeps at most 30 pages while scrolling through 10,000 items, the nearest ones', async () => {
    const be = fakeBackend(10_000);
    const pages = new GalleryPages(be.fetch);
    pages.setFilter({});
    pages.ensure(0, 1);
    await be.flush();
    for (let start = 0; start < 10_000; start += 100) {
      pages.ensure(start, start + 60);
      await be.flush();
    }
    const loaded = Array.from({ length: 100 }, (_, p) => pages.item(p * pageSize) !== undefined);
    expect(loaded.filter(Boolean).length).toBe(30);
    expect(loaded.slice(70).every(Boolean)).toBe(true);
    expect(pages.item(9999)?.title).toBe('item 9999');
    expect(pages.indexOf(10_000)).toBe(9999);
    expect(pages.indexOf(1)).toBe(-1); // evicted
  });

  it('patch replaces one loaded item in place', async () => {
    const be = fakeBackend(10);
    const pages = new GalleryPages(be.fetch);
    pages.setFilter({});
    pages.ensure(0, 10);
    await be.flush();
    pages.patch({ ...item(4), favourite: true });
    expect(pages.item(4)?.favourite).toBe(true);
    expect(pages.item(5)?.favourite).toBe(false);
  });

  it('fetches a neighbour of a loaded page by cursor, a jump by position, and counts "at least" exactly once', async () => {
    const be = fakeBackend(50_000);
    be.cap = 10_000;
    const counts: unknown[] = [];
    const pages = new GalleryPages(be.fetch, async (f) => {
      counts.push(f);
      return { total: be.total };
    });
    pages.setFilter({ text: 'cat' });
    pages.ensure(0, 1);
    await be.flush();
    expect(pages.total).toBe(50_000); // the lower bound, then the exact count
    expect(pages.totalExact).toBe(true);
    expect(counts).toEqual([{ text: 'cat' }]);
    pages.ensure(100, 150); // page 1, next to page 0: a seek from its last item
    await be.flush();
    expect(be.calls.at(-1)).toMatchObject({ after: '99', offset: 100 });
    expect(pages.item(120)?.title).toBe('item 120');
    pages.ensure(30_000, 30_050); // a jump: by position
    await be.flush();
    expect(be.calls.at(-1)).toMatchObject({ offset: 30_000 });
    expect(be.calls.at(-1)!.after).toBeUndefined();
    pages.ensure(29_900, 29_950); // the page before a loaded one: a seek back from its first item
    await be.flush();
    expect(be.calls.at(-1)).toMatchObject({ before: '30000' });
    expect(pages.item(29_950)?.title).toBe('item 29950');
    expect(counts).toHaveLength(1);
  });
});
