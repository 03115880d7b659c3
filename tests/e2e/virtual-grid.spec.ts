// The gallery grid stays virtual at 10,000 items. Importing 10,000 real images would make this
// test about the importer, so the gallery calls are answered by Playwright (page.route) with a
// synthetic catalogue of that size; everything else is the real app behind the real server.
// What is checked: the DOM holds only the rows in view, pages of 100 are fetched by offset as
// they come into view (not all 100 pages), and keyboard and scroll reach the far end.
import { makePng } from '../fixtures/images.js';
import { expect, test } from './fixtures.js';
import { StudioApp } from './studio-app.js';

const total = 10_000;

test('10,000 items: only visible rows are rendered, pages load as they scroll in', async ({ page, server }) => {
  const offsets: number[] = [];
  const sha = (i: number) => i.toString(16).padStart(64, '0');
  await page.route('**/api/galleryQuery', async (route) => {
    const { args } = route.request().postDataJSON() as { args: { offset?: number; limit?: number } };
    const offset = args.offset ?? 0;
    const limit = args.limit ?? 100;
    offsets.push(offset);
    const items = [];
    for (let i = offset; i < Math.min(total, offset + limit); i++)
      items.push({
        id: i + 1,
        runId: i + 1,
        kind: 'import',
        sha256: sha(i),
        title: `item ${i}`,
        width: 64,
        height: 48,
        favourite: false,
        createdAt: 1_700_000_000_000 - i * 1000,
      });
    await route.fulfill({ json: { ok: true, result: { total, offset, items } } });
  });
  const thumb = await makePng({ seed: 42 });
  await page.route('**/asset/thumb/*', (route) => route.fulfill({ body: thumb, contentType: 'image/png' }));

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
  expect(new Set(offsets)).toEqual(new Set([0]));

  // End jumps to the last item: only the pages in view are fetched, not the 98 between.
  await app.grid.focus();
  await page.keyboard.press('End');
  await expect(app.option(`item ${total - 1}`)).toBeVisible();
  await expect(app.option(`item ${total - 1}`)).toHaveAttribute('aria-selected', 'true');
  expect(await options.count()).toBeLessThan(150);
  expect(offsets).toContain(9900);
  expect(new Set(offsets).size).toBeLessThanOrEqual(4);

  // Scrolling to the middle loads the page there; the cells show titles, not placeholders.
  await app.grid.evaluate((el) => (el.scrollTop = el.scrollHeight / 2));
  await expect(options.filter({ hasText: /item 5\d\d\d/ }).first()).toBeVisible();
  await expect(app.grid.getByRole('option', { name: 'Loading' })).toHaveCount(0);
  expect(offsets.filter((o) => o >= 4500 && o <= 5500).length).toBeGreaterThan(0);
  expect(await options.count()).toBeLessThan(150);
  expect(new Set(offsets).size).toBeLessThan(10);
  await app.screenshot('gallery-10000');
});
