// The detail panel as a user of AUTOMATIC1111 or ComfyUI expects it: plain words ("Imported"), the
// prompt copied, "use these settings" filling Generate, a full-screen viewer (arrows, zoom, Esc) in
// place of a new tab, an export that says what it carries and leaves the note and tags out, and one
// toast per action (a note saved by blur and click, a delete and its undo).
import { readFile } from 'node:fs/promises';
import { A1111_SAMPLE, COMFY_PROMPT, COMFY_WORKFLOW, makePng } from '../fixtures/images.js';
import { expect, test } from './fixtures.js';
import { StudioApp } from './studio-app.js';

const mod = process.platform === 'darwin' ? 'Meta' : 'Control';

test('copy prompt, use these settings, the viewer, export and one toast per action', async ({ studioPage: page }) => {
  const app = new StudioApp(page);
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
  await app.importFiles([
    {
      name: '00012-1234567890.png',
      mimeType: 'image/png',
      buffer: await makePng({ seed: 1, width: 96, height: 128, text: { parameters: A1111_SAMPLE } }),
    },
    {
      name: 'ComfyUI_00007_.png',
      mimeType: 'image/png',
      buffer: await makePng({
        seed: 2,
        width: 64,
        height: 64,
        text: { prompt: COMFY_PROMPT, workflow: COMFY_WORKFLOW },
      }),
    },
    { name: 'plain.png', mimeType: 'image/png', buffer: await makePng({ seed: 3 }) },
  ]);
  await app.expectCount(3);

  const castle = /^a castle on a hill/;
  await app.option(castle).click();
  const detail = app.detail;
  await expect(detail.getByRole('heading', { name: castle })).toBeVisible();
  // Plain words: how it got here, not "Kind: import (done)".
  await expect(detail.getByText('Imported', { exact: true })).toBeVisible();
  await expect(detail).not.toContainText('import (done)');

  // Copy prompt.
  await detail.getByRole('button', { name: 'Copy prompt' }).click();
  await expect(app.notifications).toContainText('Prompt copied.');
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(
    'a castle on a hill, (masterpiece:1.2), golden hour',
  );

  // The note: leaving the field and clicking "Save note" save it once, and say so once.
  await detail.getByRole('textbox', { name: 'Note' }).fill('for the poster');
  await detail.getByRole('button', { name: 'Save note' }).click();
  await expect(app.notifications.getByText('Note saved.')).toHaveCount(1);
  await detail.getByRole('textbox', { name: 'Note' }).fill('for the poster, v2');
  await detail.getByRole('textbox', { name: 'Add tag' }).click();
  await expect(app.notifications.getByText('Note saved.')).toHaveCount(1);
  await detail.getByRole('textbox', { name: 'Add tag' }).fill('poster');
  await detail.getByRole('textbox', { name: 'Add tag' }).press('Enter');

  // Export: the note and tags stay out by default, and the toast says what the file carries.
  const download = page.waitForEvent('download');
  await detail.getByRole('button', { name: 'Export PNG' }).click();
  const bytes = (await readFile(await (await download).path())).toString('latin1');
  expect(bytes).toContain('a castle on a hill');
  expect(bytes).not.toContain('for the poster');
  await expect(app.notifications).toContainText(
    'with the prompt, the negative prompt and the generation parameters. Left out: your note and your tags',
  );
  await app.screenshot('detail-export-toast');

  // The full-screen viewer, in place of a new browser tab.
  const pages = page.context().pages().length;
  await detail.getByRole('button', { name: /full screen$/ }).click();
  const viewer = page.getByRole('dialog', { name: /full screen$/ });
  await expect(viewer).toBeVisible();
  expect(page.context().pages()).toHaveLength(pages);
  const zoom = viewer.getByRole('status', { name: 'Zoom level' });
  const fit = await zoom.textContent();
  await viewer.getByRole('button', { name: 'Zoom in' }).click();
  await expect(zoom).not.toHaveText(fit!);
  await page.keyboard.press('1');
  await expect(zoom).toHaveText('100%');
  await page.keyboard.press('0');
  await expect(zoom).toHaveText(fit!);
  const at = Number(/(\d) of 3/.exec((await viewer.textContent()) ?? '')![1]);
  const [there, back] = at < 3 ? (['ArrowRight', 'ArrowLeft'] as const) : (['ArrowLeft', 'ArrowRight'] as const);
  const before = await viewer.locator('.title').textContent();
  await page.keyboard.press(there);
  await expect(viewer.locator('.title')).not.toHaveText(before!);
  await expect(viewer).toContainText(`${at < 3 ? at + 1 : at - 1} of 3`);
  await app.screenshot('detail-viewer');
  await page.keyboard.press(back);
  await expect(viewer.locator('.title')).toHaveText(before!);
  // Esc closes the viewer only; the panel stays.
  await page.keyboard.press('Escape');
  await expect(viewer).toBeHidden();
  await expect(detail.getByRole('heading', { name: castle })).toBeVisible();

  // Use these settings: the prompt, size and seed fill Generate.
  await detail.getByRole('button', { name: 'Use these settings' }).click();
  await expect(page.getByRole('heading', { name: 'Generate', level: 1 })).toBeVisible();
  await expect(page.getByText('Using the settings of “a castle on a hill')).toBeVisible();
  await expect(page.getByRole('textbox', { name: 'Prompt 1' })).toHaveValue(
    'a castle on a hill, (masterpiece:1.2), golden hour',
  );
  await expect(page.getByRole('textbox', { name: 'Prompt 2' })).toHaveValue('blurry, lowres');
  await expect(page.getByLabel('Seed', { exact: true })).toHaveValue('1234567890');
  await expect(page.getByLabel('Width')).toHaveValue('512');
  await expect(page.getByLabel('Height')).toHaveValue('768');
  await expect(app.notifications).toContainText('Not carried over: the 20 sampler steps');
  await app.screenshot('detail-use-settings');

  // Delete, then Ctrl+Z: "Restored" takes the place of "Deleted … Undo".
  await page.keyboard.press(`${mod}+4`);
  await app.option('plain.png').click();
  await page.keyboard.press('Delete');
  await app.expectCount(2);
  await expect(app.notifications.getByRole('button', { name: 'Undo' })).toBeVisible();
  await app.grid.focus();
  await page.keyboard.press(`${mod}+z`);
  await app.expectCount(3);
  await expect(app.notifications).toContainText('Restored 1 image.');
  await expect(app.notifications.getByRole('button', { name: 'Undo' })).toHaveCount(0);
  await expect(app.notifications).not.toContainText('Deleted');
});
