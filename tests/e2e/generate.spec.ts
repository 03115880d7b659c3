// The Generate page end to end through `fstudio serve`: the first run without models (one button that
// downloads them, with progress and the free space), then runs of the tiny test models (tests/fixtures,
// installed as folders of the user's own and chosen in the advanced panel): start, the preview changing
// across steps, pause, resume, the queue, cancel, a fork from a snapshot, the runs in the Gallery with
// their parameters, and a remix back into the form. Screenshots in both themes at 1280x800 and 800x600.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Locator, Page } from '@playwright/test';
import { makePng } from '../fixtures/images.js';
import { expect, installTinyModels, test } from './fixtures.js';
import { StudioApp } from './studio-app.js';

const mod = process.platform === 'darwin' ? 'Meta' : 'Control';

async function openGenerate(page: Page): Promise<void> {
  await page.keyboard.press(`${mod}+1`);
  await expect(page.getByRole('heading', { name: 'Generate', level: 1 })).toBeVisible();
}

// ---------- the first run: no models ----------

/** A model mirror that answers the small files and trickles the weights at their catalog size, never ending. */
async function startTrickleMirror(): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (!path.endsWith('.ckpt') && !path.endsWith('.bin')) {
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('{}\n');
      return;
    }
    const size = path.endsWith('.ckpt') ? 980_000_000 : 605_000_000;
    res.writeHead(200, { 'Content-Length': String(size) });
    const timer = setInterval(() => res.write(Buffer.alloc(64 * 1024)), 50);
    res.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((ok) => server.close(ok));
    },
  };
}

const firstRunTest = test.extend<{ mirror: { url: string; close(): Promise<void> } }>({
  // eslint-disable-next-line no-empty-pattern -- Playwright reads the fixture list from this pattern
  mirror: async ({}, use) => {
    const mirror = await startTrickleMirror();
    await use(mirror);
    await mirror.close();
  },
  // Only the local mirror: the catalog's real URLs are never tried from a test.
  serverEnv: async ({ mirror }, use) => use({ FSTUDIO_MODEL_MIRROR: mirror.url, FSTUDIO_MODEL_MIRROR_ONLY: '1' }),
});

firstRunTest(
  'first run: the page says which models are missing and downloads them with one button',
  async ({ studioPage: page }) => {
    const app = new StudioApp(page);
    await openGenerate(page);
    const firstRun = page.getByRole('region', { name: 'Download the models to start' });
    await expect(firstRun).toContainText('CLIP ViT-B/32');
    await expect(firstRun).toContainText(/VQGAN ImageNet f16 16384/i);
    const download = firstRun.getByRole('button', { name: /^Download the default models \(about 1\.\d GB\)$/ });
    await expect(download).toBeVisible();
    await expect(firstRun).toContainText(/\d+(\.\d)? [KMGT]?B free in /);
    // Generate says what to do instead of failing later.
    await page.getByRole('textbox', { name: 'Prompt 1' }).fill('a cosmic room of seismic surprises');
    await app.screenshotAll('generate-first-run');
    await page.keyboard.press(`${mod}+Enter`);
    await expect(app.errors).toContainText('download them above, or choose installed ones under Advanced');

    // The prompt as one line of text (the format of the tools users know) and back to rows.
    await page.getByRole('button', { name: 'Edit as text' }).click();
    await page.getByRole('textbox', { name: 'Prompts as text' }).fill('a cosmic room:1.5|seismic surprises:-0.5:-0.1');
    await page.getByRole('button', { name: 'Edit as rows' }).click();
    await expect(page.getByRole('textbox', { name: 'Prompt 2' })).toHaveValue('seismic surprises');
    await expect(page.getByRole('spinbutton', { name: 'Weight of prompt 1' })).toHaveValue('1.5');
    await expect(page.getByRole('spinbutton', { name: 'Stop of prompt 2' })).toHaveValue('-0.1');
    await page.getByRole('button', { name: 'Remove prompt 2' }).click();

    // Pictures: an image prompt with its weight, and an init image (dropped: it stays out of the gallery).
    const png = await makePng({ seed: 7 });
    await page.locator('#image-prompts').setInputFiles({ name: 'steer.png', mimeType: 'image/png', buffer: png });
    await expect(page.getByRole('img', { name: 'steer.png' })).toBeVisible();
    await expect(page.getByRole('spinbutton', { name: 'Weight of steer.png' })).toHaveValue('1');
    const initZone = page.getByRole('group', { name: 'Init image' }).locator('[data-dropzone]');
    const drop = await page.evaluateHandle(
      (bytes) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], 'start.png', { type: 'image/png' }));
        return dt;
      },
      [...png],
    );
    await initZone.dispatchEvent('dragenter', { dataTransfer: drop });
    await initZone.dispatchEvent('drop', { dataTransfer: drop });
    await expect(page.getByRole('img', { name: 'start.png' })).toBeVisible();
    await expect(page.getByRole('combobox', { name: 'Start from' })).toHaveValue('image');
    await app.screenshot('generate-pictures');
    await page.getByRole('button', { name: 'Remove start.png' }).click();
    await expect(page.getByRole('combobox', { name: 'Start from' })).toHaveValue('random');
    await page.getByRole('button', { name: 'Remove steer.png' }).click();

    await download.click();
    const bar = firstRun.getByRole('progressbar', { name: 'Download progress' });
    await expect(bar).toBeVisible();
    await expect(firstRun.getByRole('status')).toContainText(/[1-9][\d.]* [KM]B of 1\.\d GB/);
    await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('button', { name: /^Models/ })).toContainText(
      'downloading',
    );
    await app.screenshot('generate-first-run-downloading');

    // Choosing other models (here: folders of the user's own) lifts the requirement.
    await firstRun.getByRole('button', { name: 'Choose them' }).click();
    await expect(page.getByLabel('CLIP model')).toBeFocused();
    await page.getByLabel('CLIP model').fill('my-clip');
    await page.getByLabel('VQGAN model').fill('my-vqgan');
    await expect(firstRun).toHaveCount(0);
  },
);

// ---------- runs of the tiny models ----------

const settingsForm = (page: Page): Locator => page.getByRole('form', { name: 'Run settings' });

/** The run view: the region that holds the run's progress bar. */
const runView = (page: Page): Locator =>
  page.getByRole('region').filter({ has: page.getByRole('progressbar', { name: 'Run progress' }) });

async function runStep(page: Page): Promise<number> {
  const text = (await runView(page).getByRole('status').textContent()) ?? '';
  return Number(/Step (\d+) of/i.exec(text)?.[1] ?? /at step (\d+)/.exec(text)?.[1] ?? NaN);
}

async function fillForm(page: Page, o: { prompt: string; steps: number }): Promise<void> {
  await page.getByRole('textbox', { name: 'Prompt 1' }).fill(o.prompt);
  await page.getByLabel('Steps', { exact: true }).fill(String(o.steps));
}

test('a run end to end: preview, pause, resume, queue, cancel, fork, gallery, remix', async ({
  studioPage: page,
  server,
}) => {
  test.setTimeout(480_000);
  const app = new StudioApp(page);
  const models = await installTinyModels(server.dataDir);
  await openGenerate(page);

  // The tiny models: CLIP sees 24 px, the VQGAN's factor is 2, so 32x32 with few cutouts.
  await fillForm(page, { prompt: 'a cosmic room of seismic surprises', steps: 50_000 });
  await page.getByLabel('Width').fill('32');
  await page.getByLabel('Height').fill('32');
  await page.getByLabel('Cutouts').fill('4');
  await page.locator('summary', { hasText: 'Advanced' }).click();
  await page.getByLabel('CLIP model').fill(models.clip);
  await page.getByLabel('VQGAN model').fill(models.vqgan);
  await page.getByRole('combobox', { name: 'Provider' }).selectOption('cpu');
  await page.getByLabel('Snapshot every').fill('5');
  await expect(page.getByRole('region', { name: 'Download the models to start' })).toHaveCount(0);
  await page.getByRole('button', { name: 'Lock the seed' }).click();
  await page.getByLabel('Seed', { exact: true }).fill('1234');

  // Ctrl/Cmd+Enter starts it; the preview changes as it runs.
  await page.getByRole('textbox', { name: 'Prompt 1' }).focus();
  await page.keyboard.press(`${mod}+Enter`);
  const run = runView(page);
  await expect(run.getByRole('heading', { name: 'a cosmic room of seismic surprises' })).toBeVisible();
  await expect(run.getByText('Running', { exact: true })).toBeVisible({ timeout: 120_000 });
  await expect(run.getByRole('img', { name: /^Preview at step \d+$/ })).toBeVisible({ timeout: 120_000 });
  // The step and the picture read together (the preview may move on between two separate reads).
  const shown = () =>
    run
      .getByRole('img', { name: /^Preview at step/ })
      .evaluate((img: HTMLImageElement) => ({ step: Number(/(\d+)$/.exec(img.alt)?.[1]), src: img.src }));
  const first = await shown();
  await expect.poll(async () => (await shown()).step, { timeout: 60_000 }).toBeGreaterThan(first.step);
  expect((await shown()).src).not.toBe(first.src);
  await expect(run.getByRole('status')).toContainText(/Step \d+ of 50000 · [\d.]+ (it\/s|s\/it)/);
  await expect(run.getByRole('img', { name: /^Loss at step \d+: total/ })).toBeVisible();
  await app.screenshotAll('generate-running', run.getByRole('progressbar', { name: 'Run progress' }));

  // Pause: the steps stop; resume: they go on.
  await run.getByRole('button', { name: 'Pause' }).click();
  await expect(run.getByText('Paused', { exact: true })).toBeVisible();
  const pausedAt = await runStep(page);
  await page.waitForTimeout(1500);
  expect(await runStep(page)).toBe(pausedAt);
  await app.screenshot('generate-paused');
  await run.getByRole('button', { name: 'Resume' }).click();
  await expect(run.getByText('Running', { exact: true })).toBeVisible();
  await expect.poll(() => runStep(page), { timeout: 60_000 }).toBeGreaterThan(pausedAt);

  // Three more wait in the queue; the last moves up with Alt+Up.
  for (const prompt of ['a quiet garden of loud flowers', 'a map of the old town', 'a lighthouse at dawn']) {
    await fillForm(page, { prompt, steps: 20 });
    await settingsForm(page).getByRole('button', { name: 'Generate', exact: true }).click();
    await expect(app.notifications).toContainText(`Queued “${prompt}”.`);
  }
  const queue = page.getByRole('list', { name: 'Queued runs' });
  await expect(queue.getByRole('listitem')).toHaveCount(4);
  const lighthouse = queue.getByRole('button', { name: /^a lighthouse at dawn/ });
  await lighthouse.focus();
  await page.keyboard.press('Alt+ArrowUp');
  await expect(queue.getByRole('listitem').nth(2)).toContainText('a lighthouse at dawn');
  await expect(queue.getByRole('button', { name: /^a lighthouse at dawn/ })).toBeFocused();
  await queue.getByRole('button', { name: 'Move “a quiet garden of loud flowers” down' }).click();
  await expect(queue.getByRole('listitem').nth(1)).toContainText('a lighthouse at dawn');
  await expect(queue.getByRole('listitem').nth(2)).toContainText('a quiet garden of loud flowers');
  await app.screenshotAll('generate-queue', queue);

  // Cancel the long run: it ends, the queue goes on.
  await queue.getByRole('button', { name: /^a cosmic room/ }).click();
  await run.getByRole('button', { name: 'Cancel' }).click();
  await expect(run.getByText('Cancelled', { exact: true })).toBeVisible();
  const cancelledAt = await runStep(page);
  const finished = page.getByRole('list', { name: 'Finished' });
  await expect(finished.getByRole('button', { name: /^a cosmic room/ })).toBeVisible();

  // Fork it from an early snapshot with a new prompt: the fork's first frame is that snapshot.
  await finished.getByRole('button', { name: /^a cosmic room/ }).click();
  const slider = run.getByRole('slider', { name: 'Trajectory' });
  await slider.focus();
  await page.keyboard.press('Home');
  await page.keyboard.press('ArrowRight');
  await page.keyboard.press('ArrowRight');
  await expect(slider).toHaveAttribute('aria-valuetext', /^Snapshot at step \d+$/);
  const snapshotStep = Number(/step (\d+)/.exec((await slider.getAttribute('aria-valuetext'))!)![1]);
  expect(snapshotStep).toBeLessThan(cancelledAt);
  await expect(run.getByRole('img', { name: `Preview at step ${snapshotStep}` })).toBeVisible();
  await app.screenshot('generate-scrubbed');
  await run.getByRole('button', { name: `Fork from step ${snapshotStep}` }).click();
  const forking = page.getByText(`Forking “a cosmic room of seismic surprises” at step ${snapshotStep}.`);
  await expect(forking).toBeVisible();
  await expect(page.getByRole('textbox', { name: 'Prompt 1' })).toBeFocused();
  await expect(page.getByLabel('Width')).toBeDisabled();
  await fillForm(page, { prompt: 'a cosmic room of tidal whispers', steps: 20 });
  await app.screenshotAll('generate-fork-form', forking);
  await settingsForm(page)
    .getByRole('button', { name: `Generate from step ${snapshotStep}` })
    .click();
  await expect(app.notifications).toContainText(`Forked “a cosmic room of seismic surprises” at step ${snapshotStep}`);
  await page.getByRole('button', { name: 'Stop forking' }).click();

  // Everything queued finishes; the fork says where it came from.
  await expect(queue).toHaveCount(0, { timeout: 240_000 });
  await finished.getByRole('button', { name: /^a cosmic room of tidal whispers/ }).click();
  await expect(run.getByText('Done', { exact: true })).toBeVisible();
  await expect(run).toContainText(`forked from #`);
  await expect(run).toContainText(`at step ${snapshotStep}`);
  await expect(run.getByRole('img', { name: /^Final image at step \d+$/ })).toBeVisible();
  await app.screenshotAll('generate-done', run.getByRole('slider', { name: 'Trajectory' }));

  // Its trajectory exports as an animation; "continue" adds steps as a new run from its last step.
  const download = page.waitForEvent('download');
  await run.getByRole('button', { name: 'Export', exact: true }).click();
  expect((await download).suggestedFilename()).toMatch(/\.webp$/);
  // Or as numbered PNG frames in a ZIP.
  await run.getByRole('combobox', { name: 'Export format' }).selectOption('png-frames');
  const frames = page.waitForEvent('download');
  await run.getByRole('button', { name: 'Export', exact: true }).click();
  expect((await frames).suggestedFilename()).toMatch(/^run-\d+-trajectory\.zip$/);
  await run.getByRole('spinbutton', { name: 'Steps to add' }).fill('10');
  await run.getByRole('button', { name: 'Continue' }).click();
  await expect(app.notifications).toContainText('Queued 10 more steps of “a cosmic room of tidal whispers”.');
  await expect(run.getByText('Done', { exact: true })).toBeVisible({ timeout: 60_000 });
  await expect(run).toContainText(/forked from #\d+ at step \d+/);
  await expect(run.getByRole('status')).toHaveText(/^Done · \d+ steps$/);

  // The Gallery has every finished run, with its parameters; a remix fills the form again.
  await run.getByRole('button', { name: 'Open in Gallery' }).click();
  await expect(page.getByRole('heading', { name: 'Gallery', level: 1 })).toBeVisible();
  // The run's image is selected, its detail panel open.
  await expect(app.detail.getByRole('heading', { name: 'a cosmic room of tidal whispers' })).toBeVisible();
  await page.getByRole('combobox', { name: 'Kind' }).selectOption({ label: 'Generated' });
  for (const title of ['a quiet garden of loud flowers', 'a map of the old town', 'a lighthouse at dawn'])
    await expect(app.option(title)).toBeVisible();
  await expect(app.option('a cosmic room of tidal whispers')).toHaveCount(2); // the fork, and its continuation
  await app.option('a map of the old town').click();
  await expect(app.detail.getByRole('heading', { name: 'a map of the old town' })).toBeVisible();
  await expect(app.detail).toContainText('Foundation Studio');
  await expect(app.detail.getByRole('table', { name: 'Generation parameters' })).toContainText('1234');
  await app.screenshotAll('generate-gallery-detail', app.detail.getByRole('table', { name: 'Generation parameters' }));
  await app.detail.getByRole('button', { name: 'Remix' }).click();
  await expect(page.getByRole('heading', { name: 'Generate', level: 1 })).toBeVisible();
  await expect(page.getByText('Remixing “a map of the old town”')).toBeVisible();
  await expect(page.getByRole('textbox', { name: 'Prompt 1' })).toHaveValue('a map of the old town');
  await expect(page.getByLabel('Seed', { exact: true })).toHaveValue('1234');
  await expect(page.getByLabel('Width')).toHaveValue('32');
  await expect(page.getByLabel('Steps', { exact: true })).toHaveValue('20');
  await app.screenshotAll('generate-remix');
});
