// The gallery end to end, through `fstudio serve` in Chromium: import 30 images with the
// file picker, search, favourite, delete with and without undo, reload, and find it all as
// it was; the A1111 parameters in the detail panel; a bad file in a batch.
import { readFile } from 'node:fs/promises';
import { addTextChunks, makeJpeg, makePng, makeWebp, truncate } from '../fixtures/images.js';
import {
  NOVELAI_NEGATIVE,
  NOVELAI_PROMPT,
  novelaiChunks,
  novelaiStealthJson,
  stealthPng,
} from '../fixtures/tool-images.js';
import { expect, test } from './fixtures.js';
import { type FileToImport, StudioApp } from './studio-app.js';

/** 20 PNGs carrying AUTOMATIC1111 parameters (6 with the word "zephyrine"), 5 JPEG, 5 WebP. */
async function thirtyImages(): Promise<FileToImport[]> {
  const files: FileToImport[] = [];
  for (let i = 0; i < 20; i++) {
    const prompt = i < 6 ? `zephyrine lighthouse ${i}, oil painting` : `quiet forest ${i}, watercolor`;
    const parameters = [
      prompt,
      'Negative prompt: blurry, lowres',
      `Steps: ${20 + i}, Sampler: Euler a, CFG scale: 7, Seed: ${1000 + i}, Size: 96x64, Model: dreamshaper_8`,
    ].join('\n');
    const buffer = await makePng({ seed: i + 1, width: 96, height: 64, text: { parameters } });
    files.push({ name: `a1111-${i}.png`, mimeType: 'image/png', buffer });
  }
  for (let i = 0; i < 5; i++)
    files.push({
      name: `photo-${i}.jpg`,
      mimeType: 'image/jpeg',
      buffer: await makeJpeg({ seed: 100 + i, width: 80 }),
    });
  for (let i = 0; i < 5; i++)
    files.push({
      name: `sketch-${i}.webp`,
      mimeType: 'image/webp',
      buffer: await makeWebp({ seed: 200 + i, width: 72 }),
    });
  return files;
}

test('import, search, favourite, delete and undo survive a reload', async ({ studioPage: page }) => {
  const app = new StudioApp(page);
  await expect(page.getByRole('heading', { name: 'Your gallery is empty' })).toBeVisible();
  await app.screenshot('gallery-empty');

  await app.importFiles(await thirtyImages());
  await expect(app.notifications).toContainText('Imported 30 images.');
  await app.expectCount(30);
  await expect(app.grid.getByRole('option')).toHaveCount(30);

  // Full-text search over the prompts read from the PNG chunks.
  await app.searchFor('zephyrine');
  await app.expectCount(6);
  await expect(app.grid.getByRole('option')).toHaveCount(6);
  await expect(app.option(/^zephyrine lighthouse 3/)).toBeVisible();
  // FTS syntax typed by a user is tolerated: no match, no error.
  await app.searchFor('"unbalanced AND (');
  await app.expectCount(0);
  await expect(page.getByRole('heading', { name: 'No images match' })).toBeVisible();
  await expect(page.getByText(/Loading the gallery failed/)).toHaveCount(0);
  await app.searchFor('');
  await app.expectCount(30);

  // Favourite one from the detail panel, one with the keyboard.
  await app.option(/^zephyrine lighthouse 0/).click();
  await expect(app.detail.getByRole('heading', { name: /zephyrine lighthouse 0/ })).toBeVisible();
  await app.detail.getByRole('button', { name: 'Favourite' }).click();
  await expect(app.detail.getByRole('button', { name: 'Favourite' })).toHaveAttribute('aria-pressed', 'true');
  await app.option('photo-2.jpg').click();
  await expect(app.detail.getByRole('heading', { name: 'photo-2.jpg' })).toBeVisible();
  await page.keyboard.press('f');
  await expect(app.option('photo-2.jpg, favourite')).toBeVisible();
  await expect(app.option(/^zephyrine lighthouse 0.*, favourite$/)).toBeVisible();

  await app.favouritesOnly.check();
  await app.expectCount(2);
  await app.favouritesOnly.uncheck();
  await app.expectCount(30);

  // Delete with the keyboard, then undo from the toast.
  await app.option(/^quiet forest 7/).click();
  await page.keyboard.press('Delete');
  await app.expectCount(29);
  await expect(app.option(/^quiet forest 7/)).toHaveCount(0);
  await app.notifications.getByRole('button', { name: 'Undo' }).click();
  await expect(app.notifications).toContainText('Restored 1 image.');
  await app.expectCount(30);
  await expect(app.option(/^quiet forest 7/)).toBeVisible();

  // Delete another from the detail panel, and keep it deleted.
  await app.option('sketch-1.webp').click();
  await expect(app.detail.getByRole('heading', { name: 'sketch-1.webp' })).toBeVisible();
  await app.detail.getByRole('button', { name: 'Delete' }).click();
  await app.expectCount(29);
  await app.screenshot('gallery-detail-after-delete');

  // A note and a tag, both searchable.
  await app.option('photo-0.jpg').click();
  await app.detail.getByRole('textbox', { name: 'Note' }).fill('taken on the pier at dawn');
  await app.detail.getByRole('textbox', { name: 'Add tag' }).click(); // leaving the note saves it
  await expect(app.notifications).toContainText('Note saved.');
  await app.detail.getByRole('textbox', { name: 'Add tag' }).fill('seaside');
  await app.detail.getByRole('textbox', { name: 'Add tag' }).press('Enter');
  await expect(app.detail.getByRole('list', { name: 'Tags' })).toContainText('seaside');

  // Everything as it was after a reload: the server holds the state, not the page.
  await page.reload();
  await app.expectCount(29);
  await expect(app.option('sketch-1.webp')).toHaveCount(0);
  await expect(app.option(/^quiet forest 7/)).toBeVisible();
  await app.favouritesOnly.check();
  await app.expectCount(2);
  await expect(app.option('photo-2.jpg, favourite')).toBeVisible();
  await app.favouritesOnly.uncheck();
  await app.searchFor('zephyrine');
  await app.expectCount(6);
  await app.searchFor('sketch');
  await app.expectCount(4);
  await app.searchFor('seaside');
  await app.expectCount(1);
  await app.searchFor('pier');
  await app.expectCount(1);
  await app.option('photo-0.jpg').click();
  await expect(app.detail.getByRole('textbox', { name: 'Note' })).toHaveValue('taken on the pier at dawn');
  await expect(app.detail.getByRole('list', { name: 'Tags' })).toContainText('seaside');
  await page.keyboard.press('Escape');
  await app.searchFor('');
  await app.expectCount(29);
  await app.screenshot('gallery');

  // The detail panel shows what AUTOMATIC1111 wrote.
  await app.option(/^zephyrine lighthouse 3/).click();
  const detail = app.detail;
  const metadata = detail.getByRole('region', { name: 'Parameters' });
  await expect(metadata.getByText('AUTOMATIC1111', { exact: true })).toBeVisible();
  await expect(metadata.getByText('zephyrine lighthouse 3, oil painting', { exact: true })).toBeVisible();
  await expect(metadata.getByText('blurry, lowres', { exact: true })).toBeVisible();
  const params = metadata.getByRole('table', { name: 'Generation parameters' });
  await expect(params.getByRole('row', { name: /Sampler/ })).toContainText('Euler a');
  await expect(params.getByRole('row', { name: /Seed/ })).toContainText('1003');
  await expect(detail.getByText(/96 × 64 px/)).toBeVisible();
  await app.screenshot('detail-panel-top');
  await metadata.getByText(/Raw text chunks/).click();
  await expect(metadata.getByText(/^Steps: 23, Sampler: Euler a/m)).toBeVisible();
  await app.screenshot('detail-panel');

  // Export downloads the PNG with its metadata.
  const download = page.waitForEvent('download');
  await detail.getByRole('button', { name: 'Export PNG' }).click();
  const file = await download;
  expect(file.suggestedFilename()).toMatch(/\.png$/);
  const bytes = await readFile(await file.path());
  expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
  expect(bytes.toString('latin1')).toContain('zephyrine lighthouse 3, oil painting');

  await page.keyboard.press('Escape');
  await expect(app.detail).toHaveCount(0);
  await page.emulateMedia({ colorScheme: 'dark' });
  await app.screenshot('gallery-dark');

  // A narrow window: the panel floats over the grid instead of squeezing it.
  await page.setViewportSize({ width: 860, height: 700 });
  await app.option(/^zephyrine lighthouse 3/).click();
  await expect(detail.getByRole('heading', { name: /zephyrine lighthouse 3/ })).toBeVisible();
  await app.screenshot('detail-narrow-dark');
});

test('drag and drop onto the window imports the files', async ({ studioPage: page }) => {
  const app = new StudioApp(page);
  await app.nav('System').click(); // dropping anywhere works, and brings the gallery back
  const files = await Promise.all(
    [1, 2].map(async (i) => ({ name: `dropped-${i}.png`, b64: (await makePng({ seed: 700 + i })).toString('base64') })),
  );
  const dataTransfer = await page.evaluateHandle((list) => {
    const dt = new DataTransfer();
    for (const f of list)
      dt.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name, { type: 'image/png' }));
    return dt;
  }, files);
  await page.dispatchEvent('body', 'dragenter', { dataTransfer });
  await expect(page.getByText('Drop images to import them into the gallery')).toBeVisible();
  await page.dispatchEvent('body', 'drop', { dataTransfer });
  await expect(page.getByText('Drop images to import them into the gallery')).toBeHidden();
  await expect(app.notifications).toContainText('Imported 2 images.');
  await app.expectCount(2);
  await expect(app.option('dropped-2.png')).toBeVisible();
});

test('a corrupt file in a batch gets a clear error while the rest import', async ({ studioPage: page }) => {
  const app = new StudioApp(page);
  const good = await Promise.all([1, 2, 3].map((seed) => makePng({ seed: 300 + seed })));
  await app.importFiles([
    ...good.map((buffer, i) => ({ name: `good-${i}.png`, mimeType: 'image/png', buffer })),
    { name: 'broken.png', mimeType: 'image/png', buffer: truncate(await makePng({ seed: 399, width: 200 }), 0.4) },
    { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not an image at all\n') },
  ]);
  await expect(app.errors).toContainText('Imported 3 images');
  await expect(app.errors).toContainText('2 files could not be imported');
  await expect(app.errors.getByRole('listitem').filter({ hasText: 'broken.png' })).toBeVisible();
  await expect(app.errors.getByRole('listitem').filter({ hasText: 'notes.txt' })).toBeVisible();
  await app.expectCount(3);
  await app.screenshot('import-errors');
});

test('a large import shows its progress batch by batch', async ({ studioPage: page }) => {
  const app = new StudioApp(page);
  const files = await Promise.all(
    Array.from({ length: 20 }, async (_, i) => ({
      name: `batch-${i}.png`,
      mimeType: 'image/png',
      buffer: await makePng({ seed: 800 + i }),
    })),
  );
  // Hold the second batch at the network until the progress bar has been seen.
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let calls = 0;
  await page.route('**/api/importImages', async (route) => {
    if (++calls === 2) await gate;
    await route.continue();
  });
  await app.importFiles(files);
  const progress = page.getByRole('progressbar', { name: /Importing/ });
  await expect(progress).toBeVisible();
  await expect(progress).toHaveAttribute('value', '16');
  await expect(progress).toHaveAttribute('max', '20');
  await expect(page.getByRole('button', { name: 'Import images…' })).toBeDisabled();
  await app.screenshot('import-progress');
  release();
  await expect(app.notifications).toContainText('Imported 20 images.');
  await expect(progress).toBeHidden();
  await app.expectCount(20);
  expect(calls).toBe(2);
});

test('the detail panel says which tool made an image: NovelAI, from its chunks or from its pixels', async ({
  studioPage: page,
}) => {
  const app = new StudioApp(page);
  const chunks = addTextChunks(await makePng({ seed: 801, width: 96, height: 64 }), novelaiChunks());
  const stripped = stealthPng('stealth_pngcomp', novelaiStealthJson().replaceAll('hanami festival', 'tsukimi night'), {
    width: 128,
    height: 96,
    seed: 802,
  });
  await app.importFiles([
    { name: 'nai.png', mimeType: 'image/png', buffer: chunks },
    { name: 'nai-stripped.png', mimeType: 'image/png', buffer: stripped },
  ]);
  await expect(app.notifications).toContainText('Imported 2 images.');
  for (const [word, prompt] of [
    ['hanami', NOVELAI_PROMPT],
    ['tsukimi', NOVELAI_PROMPT.replace('hanami festival', 'tsukimi night')],
  ] as const) {
    await app.searchFor(word);
    await app.expectCount(1);
    await app.option(new RegExp(`^${prompt.slice(0, 20)}`)).click();
    const metadata = app.detail.getByRole('region', { name: 'Parameters' });
    // The tool, the prompt and the negative prompt, in that order.
    await expect(metadata.getByRole('paragraph')).toHaveText(['Made with: NovelAI', prompt, NOVELAI_NEGATIVE]);
    const params = metadata.getByRole('table', { name: 'Generation parameters' });
    await expect(params.getByRole('row', { name: /^Sampler/ })).toContainText('k_euler_ancestral');
    await expect(params.getByRole('row', { name: /^Seed/ })).toContainText('2706368471');
  }
  await expect(
    app.detail.getByRole('table', { name: 'Generation parameters' }).getByRole('row', { name: /^Metadata note/ }),
  ).toContainText('hidden in the alpha channel (stealth pnginfo: stealth_pngcomp, gzip)');
  await app.screenshot('detail-novelai-stealth');
});
