// The app shell end to end: keyboard navigation between pages, the shortcuts sheet, the
// Settings page (provider and theme persisted by the server), and the System page.
import { makePng } from '../fixtures/images.js';
import { expect, test } from './fixtures.js';
import { StudioApp } from './studio-app.js';

test('keyboard: pages, search focus, grid moves, shortcuts sheet', async ({ studioPage: page }) => {
  const app = new StudioApp(page);
  await app.expectCount(0);
  const mod = process.platform === 'darwin' ? 'Meta' : 'Control';

  await page.keyboard.press(`${mod}+6`);
  await expect(page.getByRole('heading', { name: 'Settings', level: 1 })).toBeVisible();
  await expect(app.nav('Settings')).toHaveAttribute('aria-current', 'page');
  await page.keyboard.press(`${mod}+7`);
  await expect(page.getByRole('heading', { name: 'System', level: 1 })).toBeVisible();
  await page.keyboard.press(`${mod}+1`);
  await expect(page.getByRole('heading', { name: 'Generate', level: 1 })).toBeVisible();
  await page.keyboard.press(`${mod}+4`);
  await expect(app.nav('Gallery')).toHaveAttribute('aria-current', 'page');

  // `/` from another page comes back to the gallery with the search box focused.
  await page.keyboard.press(`${mod}+6`);
  await page.keyboard.press('/');
  await expect(app.search).toBeFocused();
  await app.search.blur();

  await page.keyboard.press('?');
  const sheet = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
  await expect(sheet).toBeVisible();
  await expect(sheet).toContainText('Toggle favourite');
  await app.screenshot('shortcuts');
  await page.keyboard.press('Escape');
  await expect(sheet).toBeHidden();

  // Arrow keys move the selection in the grid; Enter opens the panel, Esc closes it.
  const files = await Promise.all(
    [0, 1, 2, 3].map(async (i) => ({
      name: `k-${i}.png`,
      mimeType: 'image/png',
      buffer: await makePng({ seed: 500 + i }),
    })),
  );
  await app.importFiles(files);
  await app.expectCount(4);
  await app.grid.focus();
  const first = app.grid.getByRole('option').first();
  await expect(first).toHaveAttribute('aria-selected', 'true');
  await page.keyboard.press('ArrowRight');
  const second = app.grid.getByRole('option').nth(1);
  await expect(second).toHaveAttribute('aria-selected', 'true');
  const secondName = await second.getAttribute('aria-label');
  await page.keyboard.press('Enter');
  await expect(app.detail.getByRole('heading', { name: secondName! })).toBeVisible();
  await page.keyboard.press('Escape');
  await expect(app.detail).toHaveCount(0);
  await expect(app.grid).toBeFocused();

  // Delete, then Ctrl/Cmd+Z brings it back.
  await page.keyboard.press('Delete');
  await app.expectCount(3);
  await page.keyboard.press(`${mod}+z`);
  await app.expectCount(4);

  // Filters: kind and date range; an empty result offers to clear them.
  const kind = page.getByRole('combobox', { name: 'Kind' });
  await kind.selectOption({ label: 'Generated' });
  await expect(page.getByRole('heading', { name: 'No images match' })).toBeVisible();
  await kind.selectOption({ label: 'Imported' });
  await app.expectCount(4);
  const day = (offset: number) => {
    const d = new Date(Date.now() + offset * 86_400_000);
    return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  };
  await page.getByLabel('From', { exact: true }).fill(day(1));
  await app.expectCount(0);
  await page.getByLabel('From', { exact: true }).fill(day(-1));
  await page.getByLabel('To', { exact: true }).fill(day(1));
  await app.expectCount(4);
  await page.getByLabel('To', { exact: true }).fill(day(-1));
  await app.expectCount(0);
  await page.getByRole('button', { name: 'Clear search and filters' }).click();
  await app.expectCount(4);
  await expect(kind).toHaveValue('');

  // The selection stays on its image when an import puts a newer one before it.
  await app.option(secondName!).click();
  await expect(app.detail.getByRole('heading', { name: secondName! })).toBeVisible();
  await app.importFiles([{ name: 'k-new.png', mimeType: 'image/png', buffer: await makePng({ seed: 599 }) }]);
  await app.expectCount(5);
  await expect(app.grid.getByRole('option').first()).toHaveAccessibleName('k-new.png');
  await expect(app.option(secondName!)).toHaveAttribute('aria-selected', 'true');
  await expect(app.detail.getByRole('heading', { name: secondName! })).toBeVisible();
});

test('settings persist, themes apply, and the system page reports providers', async ({ studioPage: page, server }) => {
  const app = new StudioApp(page);
  await page.emulateMedia({ colorScheme: 'light' });
  await app.nav('Settings').click();
  await expect(page.getByText(server.dataDir)).toBeVisible();
  await expect(page.getByText('FSTUDIO_DATA_DIR')).toBeVisible();

  const provider = page.getByRole('combobox', { name: 'Preferred execution provider' });
  await expect(provider).toHaveValue('auto');
  await provider.selectOption('cpu');
  await page.getByRole('radio', { name: 'Dark' }).check();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  await app.screenshot('settings-dark');

  await page.reload();
  await expect(page.getByRole('combobox', { name: 'Preferred execution provider' })).toHaveValue('cpu');
  await expect(page.getByRole('radio', { name: 'Dark' })).toBeChecked();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'dark');
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  const dark = await background();

  await page.getByRole('radio', { name: 'Light' }).check();
  await expect(page.locator('html')).toHaveAttribute('data-theme', 'light');
  const light = await background();
  expect(light).not.toBe(dark);
  await app.screenshot('settings-light');

  // "Follow the system" tracks prefers-color-scheme.
  await page.getByRole('radio', { name: 'Follow the system' }).check();
  await page.emulateMedia({ colorScheme: 'dark' });
  expect(await background()).toBe(dark);
  await page.emulateMedia({ colorScheme: 'light' });
  expect(await background()).toBe(light);

  await page.keyboard.press(process.platform === 'darwin' ? 'Meta+7' : 'Control+7');
  const providers = page.getByRole('table', { name: 'Execution providers' });
  // The CPU provider always works; the probe runs a real tiny ONNX session.
  await expect(providers.getByRole('row', { name: /cpu/ })).toContainText('available', { timeout: 60_000 });
  for (const name of ['webgpu', 'cuda', 'dml', 'coreml'])
    await expect(providers.getByRole('row', { name: new RegExp(`^${name}\\b`) })).toBeVisible();
  const versions = page.getByRole('table', { name: 'Versions' });
  await expect(versions.getByRole('row', { name: /Node\.js/ })).toContainText(process.versions.node.split('.')[0]!);
  await expect(versions.getByRole('row', { name: /ONNX Runtime/ })).toContainText('1.');
  await app.screenshot('system-light');

  // "Copy report" puts a plain-text report on the clipboard.
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write']);
  await page.getByRole('button', { name: 'Copy report' }).click();
  await expect(app.notifications).toContainText('System report copied');
  const report = await page.evaluate(() => navigator.clipboard.readText());
  expect(report).toContain('Foundation Studio system report');
  expect(report).toMatch(/cpu: available/);
  expect(report).toContain(server.dataDir);
  await page.emulateMedia({ colorScheme: 'dark' });
  await app.screenshot('system-dark');
});

test('when the server goes away the page says so, and calls fail with what to do', async ({
  studioPage: page,
  server,
}) => {
  const app = new StudioApp(page);
  await app.expectCount(0);
  await server.stop();
  await expect(page.getByRole('alert').filter({ hasText: 'Lost the connection to the studio server' })).toBeVisible();
  await app.searchFor('anything');
  await expect(page.getByText(/Loading the gallery failed/)).toContainText(
    'Check that the studio server is still running',
  );
  await app.screenshot('server-gone');
  await app.nav('System').click();
  await expect(page.getByRole('alert').filter({ hasText: 'Checking the system failed' })).toContainText(
    'Check that the studio server is still running',
  );
});

test('the gradient check runs as a job: progress per case, cancel, and the verdict', async ({ studioPage: page }) => {
  const app = new StudioApp(page);
  await page.keyboard.press(process.platform === 'darwin' ? 'Meta+7' : 'Control+7');
  const section = page.getByRole('region', { name: 'Gradient check' });
  const provider = section.getByRole('combobox', { name: 'Provider' });
  await expect(provider.locator('option', { hasText: 'cpu' })).toHaveCount(1, { timeout: 60_000 });
  await provider.selectOption('cpu');
  await section.getByRole('button', { name: 'Check gradients' }).click();
  // A cancel stops it part-way and says so.
  await section.getByRole('button', { name: 'Cancel' }).click();
  await expect(section.getByRole('status')).toHaveText('Cancelled.');
  // Run to the end: the verdict names every op.
  await section.getByRole('button', { name: 'Check gradients' }).click();
  await expect(section.getByRole('status')).toContainText(/All \d+ ops agree with finite differences on cpu/, {
    timeout: 60_000,
  });
  await app.screenshot('system-gradient-check');
});
