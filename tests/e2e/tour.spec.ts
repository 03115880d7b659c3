// A look at every screen as a new user meets it: the gallery (empty, with AUTOMATIC1111, ComfyUI and
// InvokeAI images and a corrupt file, with the detail panel and a single search result), Generate,
// Settings, System, Models, the page a browser without the token gets, and the banner while the server
// is away. Each in both themes at 1280x800 and 800x600, as `tour-<screen>-<width>-<theme>.png`.
import { A1111_SAMPLE, COMFY_PROMPT, COMFY_WORKFLOW, INVOKE_METADATA, makePng, truncate } from '../fixtures/images.js';
import { expect, test } from './fixtures.js';
import { type FileToImport, StudioApp } from './studio-app.js';

const mod = process.platform === 'darwin' ? 'Meta' : 'Control';

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
  await app.screenshotAll('tour-gallery-empty');

  const broken = { name: 'broken.png', mimeType: 'image/png', buffer: truncate(await makePng({ seed: 9 }), 0.3) };
  // A PNG signature, then nothing a PNG has: its header cannot be read.
  const header = Buffer.concat([Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'), Buffer.alloc(40, 0xff)]);
  const corrupt = { name: 'corrupt-header.png', mimeType: 'image/png', buffer: header };
  await app.importFiles([...(await toolImages()), broken, corrupt]);
  await app.expectCount(4);
  await app.screenshotAll('tour-gallery-import-error');
  for (const close of await page.getByRole('button', { name: 'Dismiss' }).all()) await close.click();

  await app.screenshotAll('tour-gallery');
  await app.option(/^a castle on a hill/).click();
  await expect(app.detail.getByRole('heading', { name: /a castle on a hill/ })).toBeVisible();
  await app.screenshotAll('tour-detail-a1111');
  await app.option(/^beautiful scenery/).click();
  await app.screenshotAll('tour-detail-comfyui');
  if (await app.detail.getByRole('button', { name: /full screen/ }).count()) {
    await app.detail.getByRole('button', { name: /full screen/ }).click();
    await app.screenshotAll('tour-viewer');
    await page.keyboard.press('Escape');
  }

  await app.searchFor('cabin');
  await app.expectCount(1);
  await app.option(/cabin/).click();
  await app.screenshotAll('tour-detail-single-result');
  await page.keyboard.press('Escape');
  await app.searchFor('');

  await page.keyboard.press(`${mod}+1`);
  await expect(page.getByRole('heading', { name: 'Generate', level: 1 })).toBeVisible();
  await app.screenshotAll('tour-generate');

  await page.keyboard.press(`${mod}+6`);
  await expect(page.getByRole('heading', { name: 'Settings', level: 1 })).toBeVisible();
  // The choices carry what the System page found: each provider tried for real.
  const found = page.getByRole('list', { name: 'Providers on this machine' });
  await expect(found).toContainText('CPU: available', { timeout: 60_000 });
  await expect(page.getByRole('option', { name: /^CUDA — unavailable/ })).toBeDisabled();
  await app.screenshotAll('tour-settings');

  await page.keyboard.press(`${mod}+7`);
  const providers = page.getByRole('table', { name: 'Execution providers' });
  await expect(providers.getByRole('row', { name: /cpu/ })).toContainText('available', { timeout: 60_000 });
  await app.screenshotAll('tour-system');

  await page.keyboard.press(`${mod}+8`);
  await expect(page.getByRole('heading', { name: 'Models', level: 1 })).toBeVisible();
  await app.screenshotAll('tour-models');
  // The cards: with and without the Recommended badge, laid out alike.
  await app.screenshotAll('tour-models-cards', page.getByRole('article', { name: 'CLIP ViT-B/16' }));

  // A browser that has not got the token.
  const bare = await page.context().browser()!.newContext();
  const stranger = await bare.newPage();
  await stranger.goto(new URL(server.url).origin + '/');
  await new StudioApp(stranger).screenshotAll('tour-no-token');
  await bare.close();

  await page.keyboard.press(`${mod}+4`);
  await server.stop();
  await expect(page.getByRole('alert').filter({ hasText: /connection/i })).toBeVisible();
  await app.screenshotAll('tour-server-gone');
  // A new search while it is away: said in words where the images were, not grey tiles.
  await app.searchFor('castle');
  await expect(page.getByText(/Loading the gallery failed/)).toBeVisible();
  await app.screenshotAll('tour-gallery-server-down');
});
