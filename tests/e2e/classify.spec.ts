// The Classify page end to end through `fstudio serve` with the tiny test CLIP: a folder of small PNGs (in a
// sub-folder too, and one corrupt file that is skipped and named) classified with two labels; the threshold
// set by number and then fitted to images marked A / B; the unsure band; the CSV exported and read back; the
// run found again by its folder's name in the page's past runs and on the History page, whose Open brings it
// back. Screenshots in both themes at 1280x800 and 800x600.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { expect, installTinyModels, test } from './fixtures.js';
import { StudioApp } from './studio-app.js';

const mod = process.platform === 'darwin' ? 'Meta' : 'Control';

async function makeFolder(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fstudio-e2e-beach-shots-'));
  await mkdir(join(dir, 'day two'));
  const colours: [string, [number, number, number]][] = [
    ['red-1.png', [230, 30, 30]],
    ['red-2.png', [200, 60, 40]],
    ['green-1.png', [30, 210, 40]],
    ['day two/green-2.png', [60, 180, 60]],
    ['day two/blue.png', [30, 40, 220]],
    ['grey.png', [128, 128, 128]],
  ];
  for (const [name, [r, g, b]] of colours) {
    await sharp({ create: { width: 32, height: 32, channels: 3, background: { r, g, b } } })
      .png()
      .toFile(join(dir, name));
  }
  const whole = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#444' } })
    .png()
    .toBuffer();
  await writeFile(join(dir, 'corrupt.png'), whole.subarray(0, 60));
  return dir;
}

test('classify a folder, fix the threshold, export the CSV, find the run in the history', async ({
  studioPage: page,
  server,
}) => {
  test.setTimeout(240_000);
  const app = new StudioApp(page);
  const models = await installTinyModels(server.dataDir);
  const folder = await makeFolder();
  try {
    await page.keyboard.press(`${mod}+3`);
    await expect(page.getByRole('heading', { name: 'Classify', level: 1 })).toBeVisible();
    await expect(page.getByRole('heading', { name: 'Sort images by what they show' })).toBeVisible();
    await expect(page.getByText('No classify runs yet')).toBeVisible();
    await app.screenshotAll('classify-empty');

    // One label is refused before anything runs, saying what to do.
    await page.getByRole('button', { name: 'Remove “is not photoshopped”' }).click();
    await page.getByLabel('Folder of images').fill(folder);
    await page.keyboard.press(`${mod}+Enter`);
    await expect(page.getByRole('form', { name: 'Classify settings' }).getByRole('alert')).toContainText(
      'Add at least two labels',
    );

    // The labels as chips: remove the other default, paste two joined by |.
    await page.getByRole('button', { name: 'Remove “is photoshopped”' }).click();
    const input = page.getByLabel('Add a label');
    await input.focus();
    await page.evaluate(() => {
      const dt = new DataTransfer();
      dt.setData('text', 'a red picture|a green picture');
      document.activeElement!.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true }));
    });
    await expect(page.getByRole('button', { name: 'Remove “a red picture”' })).toBeVisible();
    await expect(page.getByRole('button', { name: 'Remove “a green picture”' })).toBeVisible();
    await page.locator('summary', { hasText: 'Model and wordings' }).click();
    await page.getByLabel('CLIP model').fill(models.clip);
    await page.getByLabel('Other wordings').fill('something red|something green');

    // Ctrl/Cmd+Enter runs it; the corrupt file is skipped and named, the others classified.
    await page.keyboard.press(`${mod}+Enter`);
    await expect(page.getByRole('heading', { name: 'Classify: a red picture | a green picture' })).toBeVisible({
      timeout: 120_000,
    });
    await expect(page.getByText('1 file skipped (unreadable)')).toBeVisible({ timeout: 120_000 });
    await page.getByText('1 file skipped (unreadable)').click();
    await expect(page.getByText(/corrupt\.png.*truncated or corrupt/)).toBeVisible();
    await expect(page.getByTestId('result-card')).toHaveCount(6);
    await app.screenshotAll('classify-results', page.getByRole('region', { name: 'Decision' }));

    // The threshold by number: 0 calls every image the first label.
    const tally = page.locator('.tally');
    await page.getByRole('spinbutton', { name: 'Threshold on p(a red picture)' }).fill('0');
    await page.getByRole('spinbutton', { name: 'Threshold on p(a red picture)' }).press('Enter');
    await expect(tally).toContainText('6 a red picture');
    await expect(tally).toContainText('0 a green picture');

    // Fitted to marks: the red ones are A, the green ones B; the fitted threshold gets all four right.
    for (const [name, mark] of [
      ['red-1.png', 'A'],
      ['red-2.png', 'A'],
      ['green-1.png', 'B'],
      ['green-2.png', 'B'],
    ] as const) {
      await page
        .getByRole('group', { name: `Mark ${name}` })
        .getByRole('button', { name: mark })
        .click();
    }
    await page.getByRole('button', { name: 'Fit threshold to my marks (4)' }).click();
    await expect(page.getByText(/Threshold 0\.\d+: \d of 4 marked images right/)).toBeVisible();
    const fitted = Number(await page.getByRole('spinbutton', { name: 'Threshold on p(a red picture)' }).inputValue());
    expect(fitted).toBeGreaterThan(0);
    expect(fitted).toBeLessThan(1);
    await app.screenshotAll('classify-calibrated', page.getByRole('region', { name: 'Decision' }));

    // The unsure band: a margin below 1 is every image.
    await page.getByLabel('Unsure band').fill('1');
    await expect(tally).toContainText('6 unsure');
    await app.screenshot('classify-unsure-1280-light');
    await page.getByLabel('Unsure band').fill('0');
    await expect(tally).toContainText('0 unsure');

    // The table, sortable; the explorer.
    await page.getByRole('tab', { name: 'Table' }).click();
    await page.getByRole('button', { name: /^Margin/ }).click();
    await expect(page.getByRole('columnheader', { name: /Margin/ })).toHaveAttribute('aria-sort', 'descending');
    await app.screenshot('classify-table-1280-light');
    await page.getByRole('tab', { name: 'Wording & order' }).click();
    await expect(page.getByRole('img', { name: 'Share of each label per variant' })).toBeVisible();
    await expect(page.getByText('order reversed')).toBeVisible();
    await app.screenshotAll('classify-explorer', page.getByRole('region', { name: 'Wording and order explorer' }));

    // Export the CSV with the fitted threshold.
    const download = page.waitForEvent('download');
    await page.getByRole('button', { name: 'Export CSV' }).click();
    const file = await (await download).path();
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\r\n');
    expect(lines[0]).toBe('path,label,unsure,margin,p(a red picture),p(a green picture)');
    expect(lines).toHaveLength(7);
    for (const l of lines.slice(1)) {
      const [path, label, , , p0] = l.split(',');
      expect(path).toContain(folder);
      expect(label).toBe(Number(p0) >= fitted - 5e-4 ? 'a red picture' : 'a green picture');
    }

    // The run is in the history: after a reload, found by the folder's name.
    await page.reload();
    await page.keyboard.press(`${mod}+3`);
    const past = page.getByRole('region', { name: 'Past classify runs' });
    await past.getByLabel('Search past classify runs').fill('beach shots');
    const entry = past.getByRole('button', { name: /a red picture \| a green picture/ });
    await expect(entry).toHaveCount(1);
    await past.getByLabel('Search past classify runs').fill('zebra');
    await expect(past.getByText('No run matches.')).toBeVisible();
    await past.getByLabel('Search past classify runs').fill('beach');
    await entry.click();
    await expect(page.getByTestId('result-card')).toHaveCount(6);

    // And on the History page (after a reload, nothing shown here), whose Open brings it back to this page.
    await page.reload();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('button', { name: 'History' }).click();
    await page.getByRole('searchbox').first().fill('beach shots');
    const open = page.getByRole('button', { name: /^Open run \d+$/ });
    await expect(open).toHaveCount(1);
    await app.screenshot('classify-in-history-1280-light');
    await open.click();
    await expect(page.getByRole('heading', { name: 'Classify', level: 1 })).toBeVisible();
    await expect(page.getByRole('heading', { name: 'Classify: a red picture | a green picture' })).toBeVisible();
    await expect(page.getByTestId('result-card')).toHaveCount(6);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
});
