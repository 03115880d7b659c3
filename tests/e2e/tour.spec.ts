// A look at every screen as a new user meets it: the gallery (empty, with AUTOMATIC1111, ComfyUI and
// InvokeAI images and a corrupt file, with the detail panel and a single search result), Generate,
// Settings, System, Models, the page a browser without the token gets, and the banner while the server
// is away. Each in both themes at 1280x800 and 800x600, as `tour-<screen>-<width>-<theme>.png`.
import type { Locator, Page } from '@playwright/test';
import { A1111_SAMPLE, COMFY_PROMPT, COMFY_WORKFLOW, INVOKE_METADATA, makePng, truncate } from '../fixtures/images.js';
import { expect, test } from './fixtures.js';
import { type FileToImport, StudioApp } from './studio-app.js';

const mod = process.platform === 'darwin' ? 'Meta' : 'Control';

async function shootAll(page: Page, app: StudioApp, name: string, show?: Locator): Promise<void> {
  for (const [w, h] of [
    [1280, 800],
    [800, 600],
  ] as const) {
    await page.setViewportSize({ width: w, height: h });
    await show?.scrollIntoViewIfNeeded();
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      await app.screenshot(`tour-${name}-${w}-${scheme}`);
    }
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.emulateMedia({ colorScheme: 'light' });
}

async function toolImages(): Promise<FileToImport[]> {
  const png = (name: string, seed: number, text: Record<string, string>) =>
    makePng({ seed, width: 96, height: 128, text }).then((buffer) => ({ name, mimeType: 'image/png', buffer }));
  return Promise.all([
    png('00012-1234567890.png', 1, { parameters: A1111_SAMPLE }),
    png('ComfyUI_00007_.png', 2, { prompt: COMFY_PROMPT, workflow: COMFY_WORKFLOW }),
    png('invokeai-cabin.png', 3, { invokeai_metadata: INVOKE_METADATA }),
    png('plain.png', 4, {}),
  ]);
}

test('every screen, both themes, desktop and small window', async ({ studioPage: page, server }) => {
  test.setTimeout(240_000);
  const app = new StudioApp(page);
  await expect(page.getByRole('heading', { name: 'Your gallery is empty' })).toBeVisible();
  await shootAll(page, app, 'gallery-empty');

  const broken = { name: 'broken.png', mimeType: 'image/png', buffer: truncate(await makePng({ seed: 9 }), 0.3) };
  // A PNG signature, then nothing a PNG has: its header cannot be read.
  const header = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), Buffer.alloc(40, 0xff)]);
  const corrupt = { name: 'corrupt-header.png', mimeType: 'image/png', buffer: header };
  await app.importFiles([...(await toolImages()), broken, corrupt]);
  await app.expectCount(4);
  await shootAll(page, app, 'gallery-import-error');
  for (const close of await page.getByRole('button', { name: 'Dismiss' }).all()) await close.click();

  await shootAll(page, app, 'gallery');
  await app.option(/^a castle on a hill/).click();
  await expect(app.detail.getByRole('heading', { name: /a castle on a hill/ })).toBeVisible();
  await shootAll(page, app, 'detail-a1111');
  await app.option(/^beautiful scenery/).click();
  await shootAll(page, app, 'detail-comfyui');
  if (await app.detail.getByRole('button', { name: /full screen/ }).count()) {
    await app.detail.getByRole('button', { name: /full screen/ }).click();
    await shootAll(page, app, 'viewer');
    await page.keyboard.press('Escape');
  }

  await app.searchFor('cabin');
  await app.expectCount(1);
  await app.option(/cabin/).click();
  await shootAll(page, app, 'detail-single-result');
  await page.keyboard.press('Escape');
  await app.searchFor('');

  await page.keyboard.press(`${mod}+1`);
  await expect(page.getByRole('heading', { name: 'Generate', level: 1 })).toBeVisible();
  await shootAll(page, app, 'generate');

  await page.keyboard.press(`${mod}+3`);
  await expect(page.getByRole('heading', { name: 'Settings', level: 1 })).toBeVisible();
  // The choices carry what the System page found: each provider tried for real.
  const found = page.getByRole('list', { name: 'Providers on this machine' });
  await expect(found).toContainText('CPU: available', { timeout: 60_000 });
  await expect(page.getByRole('option', { name: /^CUDA — unavailable/ })).toBeDisabled();
  await shootAll(page, app, 'settings');

  await page.keyboard.press(`${mod}+4`);
  const providers = page.getByRole('table', { name: 'Execution providers' });
  await expect(providers.getByRole('row', { name: /cpu/ })).toContainText('available', { timeout: 60_000 });
  await shootAll(page, app, 'system');

  await page.keyboard.press(`${mod}+5`);
  await expect(page.getByRole('heading', { name: 'Models', level: 1 })).toBeVisible();
  await shootAll(page, app, 'models');
  // The cards: with and without the Recommended badge, laid out alike.
  await shootAll(page, app, 'models-cards', page.getByRole('article', { name: 'CLIP ViT-B/16' }));

  // A browser that has not got the token.
  const bare = await page.context().browser()!.newContext();
  const stranger = await bare.newPage();
  await stranger.goto(new URL(server.url).origin + '/');
  await shootAll(stranger, new StudioApp(stranger), 'no-token');
  await bare.close();

  await page.keyboard.press(`${mod}+2`);
  await server.stop();
  await expect(page.getByRole('alert').filter({ hasText: /connection/i })).toBeVisible();
  await shootAll(page, app, 'server-gone');
  // A new search while it is away: said in words where the images were, not grey tiles.
  await app.searchFor('castle');
  await expect(page.getByText(/Loading the gallery failed/)).toBeVisible();
  await shootAll(page, app, 'gallery-server-down');
});
