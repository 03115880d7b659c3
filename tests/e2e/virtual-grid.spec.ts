// The gallery grid stays virtual at 10,000, 100,000 and 1,000,000 items. Importing that many real
// images would make these tests about the importer, so the gallery calls are answered by Playwright
// (page.route) with a synthetic catalogue that seeks as the studio does; everything else is the real
// app behind the real server. What is checked: the DOM holds only the rows in view, pages of 100 are
// fetched as they come into view (not all the pages between), by cursor next to a loaded page, and
// keyboard, scrollbar, wheel and a date reach where they should.
import type { Page } from '@playwright/test';
import { makePng } from '../fixtures/images.js';
import { expect, test } from './fixtures.js';
import { StudioApp } from './studio-app.js';

const total = 10_000;

test('10,000 items: only visible rows are rendered, pages load as they scroll in', async ({ page, server }) => {
  const asked = await fakeCatalogue(page, total, 1_700_000_000_000);
  // The positions asked for (a page fetched by cursor still says where it goes).
  const offsets = {
    get all() {
      return asked.map((a) => a.offset);
    },
  };
  await page.goto(server.url);
  const app = new StudioApp(page);
  await app.expectCount(total);
  await expect(app.option('item 0')).toBeVisible();
  const options = app.grid.getByRole('option');
  const rendered = await options.count();
  // 1280x800 shows about 5 columns by 4 rows; with 3 rows of overscan each side that is ~55.
  expect(rendered).toBeGreaterThan(10);
  expect(rendered).toBeLessThan(150);
  await expect(options.first()).toHaveAttribute('aria-setsize', String(total));
  expect(new Set(offsets.all)).toEqual(new Set([0]));

  // End jumps to the last item: only the pages in view are fetched, not the 98 between.
  await app.grid.focus();
  await page.keyboard.press('End');
  await expect(app.option(`item ${total - 1}`)).toBeVisible();
  await expect(app.option(`item ${total - 1}`)).toHaveAttribute('aria-selected', 'true');
  expect(await options.count()).toBeLessThan(150);
  expect(offsets.all).toContain(9900);
  expect(new Set(offsets.all).size).toBeLessThanOrEqual(4);

  // Scrolling to the middle loads the page there; the cells show titles, not placeholders.
  await app.grid.evaluate((el) => (el.scrollTop = el.scrollHeight / 2));
  await expect(options.filter({ hasText: /item 5\d\d\d/ }).first()).toBeVisible();
  await expect(app.grid.getByRole('option', { name: 'Loading' })).toHaveCount(0);
  expect(offsets.all.filter((o) => o >= 4500 && o <= 5500).length).toBeGreaterThan(0);
  expect(await options.count()).toBeLessThan(150);
  expect(new Set(offsets.all).size).toBeLessThan(10);
  await app.screenshot('gallery-10000');
});

/**
 * A synthetic catalogue for page.route: item i made `i` minutes before `newest`, answering seeks as
 * the studio does (after / before a cursor, at a date, at a position). Returns the offsets asked for.
 */
async function fakeCatalogue(page: Page, total: number, newest: number) {
  const asked: { offset: number; after?: string; before?: string; at?: number }[] = [];
  const sha = (i: number) => i.toString(16).padStart(64, '0');
  const created = (i: number) => newest - i * 60_000;
  await page.route('**/api/galleryQuery', async (route) => {
    const { args } = route.request().postDataJSON() as {
      args: { offset?: number; limit?: number; after?: string; before?: string; at?: number };
    };
    asked.push({ offset: args.offset ?? 0, after: args.after, before: args.before, at: args.at });
    const limit = args.limit ?? 100;
    let start = args.offset ?? 0;
    if (args.after !== undefined) start = Number(args.after) + 1;
    else if (args.before !== undefined) start = Math.max(0, Number(args.before) - limit);
    else if (args.at !== undefined) start = Math.min(total, Math.max(0, Math.ceil((newest - args.at) / 60_000)));
    const items = [];
    for (let i = start; i < Math.min(total, start + limit); i++)
      items.push({
        id: i + 1,
        runId: i + 1,
        kind: 'import',
        sha256: sha(i),
        title: `item ${i}`,
        width: 64,
        height: 48,
        favourite: false,
        createdAt: created(i),
      });
    const cursors = items.length
      ? { next: String(start + items.length - 1), prev: String(start) }
      : { next: null, prev: null };
    await route.fulfill({ json: { ok: true, result: { total, totalExact: true, offset: start, items, ...cursors } } });
  });
  const thumb = await makePng({ seed: 7 });
  await page.route('**/asset/thumb/*', (route) => route.fulfill({ body: thumb, contentType: 'image/png' }));
  return asked;
}

test('100,000 items: scrolls to the bottom by seeks, jumps to a date, DOM stays small', async ({ page, server }) => {
  const total = 100_000;
  // Newest at noon UTC on 2026-01-01; item i a minute older each: 1,440 a day.
  const newest = Date.UTC(2026, 0, 1, 12);
  const asked = await fakeCatalogue(page, total, newest);
  await page.goto(server.url);
  const app = new StudioApp(page);
  await app.expectCount(total);
  const options = app.grid.getByRole('option');

  // To the bottom with the scrollbar: the last item shows; the pages between were never fetched.
  await app.grid.evaluate((el) => (el.scrollTop = el.scrollHeight));
  await expect(app.option(`item ${total - 1}`)).toBeVisible();
  await expect(app.grid.getByRole('option', { name: 'Loading' })).toHaveCount(0);
  expect(await options.count()).toBeLessThan(150);
  expect(asked.length).toBeLessThan(8);
  await app.screenshot('gallery-100000-bottom');

  // Scrolling up a little from there fetches the page before by cursor, not by position.
  // (Polled: the scroll event, the render and the request come after this call returns.)
  await app.grid.evaluate((el) => (el.scrollTop = el.scrollTop - 2500));
  await expect.poll(() => asked.some((a) => a.before !== undefined)).toBe(true);
  await expect(app.grid.getByRole('option', { name: 'Loading' })).toHaveCount(0);

  // Jump to a date: 2025-12-15. Newest first, the first item shown is the last one made that day.
  await page.getByLabel('Jump to date').fill('2025-12-15');
  await page.getByRole('button', { name: 'Go to date' }).click();
  const endOfDay = new Date('2025-12-15T23:59:59.999').getTime();
  const first = Math.ceil((newest - endOfDay) / 60_000);
  await expect(app.option(`item ${first}`)).toBeVisible();
  await expect(app.option(`item ${first}`)).toHaveAttribute('aria-selected', 'true');
  expect(asked.some((a) => a.at === endOfDay)).toBe(true);
  expect(await options.count()).toBeLessThan(150);
  await app.screenshot('gallery-100000-date');
});

test('1,000,000 items: the scrollbar maps to the whole library, the wheel moves by its own distance', async ({
  page,
  server,
}) => {
  const total = 1_000_000;
  await fakeCatalogue(page, total, Date.UTC(2026, 0, 1, 12));
  await page.goto(server.url);
  const app = new StudioApp(page);
  await app.expectCount(total);
  // The scroll area is capped (a browser cannot lay out ~35 million px), yet its end is the last item.
  const height = await app.grid.evaluate((el) => el.scrollHeight);
  expect(height).toBeLessThanOrEqual(8_000_000 + 1000);
  await app.grid.evaluate((el) => (el.scrollTop = el.scrollHeight));
  await expect(app.option(`item ${total - 1}`)).toBeVisible();
  // Half way down the scrollbar is half way through the library.
  await app.grid.evaluate((el) => (el.scrollTop = (el.scrollHeight - el.clientHeight) / 2));
  await expect(app.grid.getByRole('option', { name: /item 49\d\d\d\d|item 50\d\d\d\d/ }).first()).toBeVisible();
  // The wheel moves the content by the wheel's distance, not the scale's multiple of it.
  const before = await app.grid.getByRole('option').first().getAttribute('aria-posinset');
  await app.grid.hover();
  await page.mouse.wheel(0, 178 * 10);
  await expect
    .poll(async () => Number(await app.grid.getByRole('option').first().getAttribute('aria-posinset')) - Number(before))
    .toBeGreaterThan(0);
  const moved = Number(await app.grid.getByRole('option').first().getAttribute('aria-posinset')) - Number(before);
  const columns = await app.grid.evaluate((el) => Math.floor((el.clientWidth - 32 + 10) / 178));
  expect(moved).toBeLessThanOrEqual(columns * 12); // about 10 rows, not ~9 times that
  expect(await app.grid.getByRole('option').count()).toBeLessThan(150);
  await app.screenshot('gallery-1000000-middle');
});
