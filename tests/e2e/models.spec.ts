// The Models page end to end: a real `fstudio serve` downloads from a mirror served by this test
// on 127.0.0.1 (FSTUDIO_MODEL_MIRROR, tried before the catalog's URLs as <mirror>/<id>/<file>).
// The bytes are not a real model. The mirror sends an X-Linked-Etag for the weights as Hugging Face
// does, but an extra mirror is not Hugging Face: the header is not believed, and every file is
// "recorded, not verified". The download is of CLIP ViT-B/16 from a copy of the catalog without the size
// of its weights (FSTUDIO_MODEL_CATALOG): a 3 MiB body where about 600 MB is expected would be refused as
// not the file.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Locator, Page } from '@playwright/test';
import { expect, test } from './fixtures.js';
import { StudioApp } from './studio-app.js';

const MiB = 1024 * 1024;
const mod = process.platform === 'darwin' ? 'Meta' : 'Control';

interface MirrorFile {
  body: Buffer;
  /** Sent as X-Linked-Etag (what Hugging Face sends for LFS files). */
  linkedEtag?: boolean;
  /** The first full request trickles this many bytes (64 KiB every 40 ms), then waits for release(). */
  holdAfter?: number;
}

interface Mirror {
  url: string;
  /** Every request as "<path> <Range header or 'full'>". */
  requests: string[];
  release(): void;
  close(): Promise<void>;
}

/** A minimal model mirror: GET with Range and If-Range, 404 for anything it does not hold. */
async function startMirror(files: Record<string, MirrorFile>): Promise<Mirror> {
  const requests: string[] = [];
  let release!: () => void;
  const released = new Promise<void>((ok) => (release = ok));
  const held = new Set<string>();
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(`${path} ${req.headers.range ?? 'full'}`);
    const file = files[path];
    if (!file) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not here');
      return;
    }
    const sha = createHash('sha256').update(file.body).digest('hex');
    const etag = `"${sha.slice(0, 16)}"`;
    const headers: Record<string, string> = { ETag: etag, 'Accept-Ranges': 'bytes' };
    if (file.linkedEtag) headers['X-Linked-Etag'] = `"${sha}"`;
    const start = rangeStart(req.headers, etag);
    if (start !== null && start > 0) {
      res.writeHead(206, {
        ...headers,
        'Content-Length': String(file.body.length - start),
        'Content-Range': `bytes ${start}-${file.body.length - 1}/${file.body.length}`,
      });
      res.end(file.body.subarray(start));
      return;
    }
    res.writeHead(200, { ...headers, 'Content-Length': String(file.body.length) });
    if (file.holdAfter !== undefined && !held.has(path)) {
      held.add(path);
      const hold = file.holdAfter;
      void (async () => {
        // In steps, so the studio's progress events (at most one per 250 ms) see bytes moving.
        for (let at = 0; at < hold; at += 64 * 1024) {
          res.write(file.body.subarray(at, Math.min(hold, at + 64 * 1024)));
          await new Promise((ok) => setTimeout(ok, 40));
        }
        await released;
        res.end(file.body.subarray(hold));
      })();
      return;
    }
    res.end(file.body);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    release,
    close: async () => {
      release();
      server.closeAllConnections();
      await new Promise((ok) => server.close(ok));
    },
  };
}

function rangeStart(h: IncomingHttpHeaders, etag: string): number | null {
  const m = /^bytes=(\d+)-$/.exec(h.range ?? '');
  if (!m) return null;
  // If-Range with another validator means "the file changed": send it whole.
  if (h['if-range'] && h['if-range'] !== etag) return null;
  return Number(m[1]);
}

const clip = 'clip-vit-base-patch16';
const weights = randomBytes(3 * MiB);

/** The built-in catalog less the size of CLIP ViT-B/16's weights, written to a temporary file. */
async function catalogWithoutB16Size(): Promise<{ file: string; dispose(): Promise<void> }> {
  const catalog = JSON.parse(await readFile(join(import.meta.dirname, '../../models/catalog.json'), 'utf8')) as {
    models: { id: string; files: { name: string; size?: unknown }[] }[];
  };
  delete catalog.models.find((m) => m.id === clip)!.files.find((f) => f.name === 'pytorch_model.bin')!.size;
  const dir = await mkdtemp(join(tmpdir(), 'fstudio-catalog-'));
  const file = join(dir, 'catalog.json');
  await writeFile(file, JSON.stringify(catalog));
  return { file, dispose: () => rm(dir, { recursive: true, force: true }) };
}

const modelTest = test.extend<{ mirror: Mirror; catalogFile: string }>({
  // eslint-disable-next-line no-empty-pattern -- Playwright reads the fixture list from this pattern
  catalogFile: async ({}, use) => {
    const c = await catalogWithoutB16Size();
    await use(c.file);
    await c.dispose();
  },
  // eslint-disable-next-line no-empty-pattern -- Playwright reads the fixture list from this pattern
  mirror: async ({}, use) => {
    const mirror = await startMirror({
      [`/${clip}/config.json`]: { body: Buffer.from('{"model_type": "clip"}\n') },
      [`/${clip}/tokenizer.json`]: { body: Buffer.from('{"version": "1.0"}\n') },
      [`/${clip}/pytorch_model.bin`]: { body: weights, linkedEtag: true, holdAfter: MiB },
      // Anything else (wikiart_16384's files among them) answers 404.
    });
    await use(mirror);
    await mirror.close();
  },
  // Only the local mirror: the catalog's real URLs must never be tried from a test, whatever the machine.
  serverEnv: async ({ mirror, catalogFile }, use) =>
    use({ FSTUDIO_MODEL_MIRROR: mirror.url, FSTUDIO_MODEL_MIRROR_ONLY: '1', FSTUDIO_MODEL_CATALOG: catalogFile }),
});

async function openModels(page: Page): Promise<void> {
  await page.keyboard.press(`${mod}+8`);
  await expect(page.getByRole('heading', { name: 'Models', level: 1 })).toBeVisible();
}

const card = (page: Page, title: string): Locator => page.getByRole('article', { name: title });
const badge = (c: Locator, text: string): Locator => c.locator('header').getByText(text, { exact: true });

modelTest(
  'download with live progress, a stall reported, cancel and resume, verify, delete',
  async ({ studioPage: page, mirror, server }) => {
    const app = new StudioApp(page);
    await openModels(page);
    await expect(app.page.getByRole('heading', { name: 'CLIP', level: 2 })).toBeVisible();
    await expect(page.getByRole('heading', { name: 'VQGAN', level: 2 })).toBeVisible();
    await expect(page.getByRole('heading', { name: 'Text LMs', level: 2 })).toBeVisible();

    const b32 = card(page, 'CLIP ViT-B/32');
    await expect(badge(b32, 'Recommended')).toBeVisible();
    await expect(badge(b32, 'Not installed')).toBeVisible();
    // Every file has a size in the catalog (approximate), so the model has one.
    await expect(b32).toContainText('about 607 MB');
    await expect(b32).toContainText('MIT (OpenAI CLIP)');
    // Which servers, in the order tried; only the test's own mirror is used here (FSTUDIO_MODEL_MIRROR_ONLY).
    await expect(b32).toContainText(
      '127.0.0.1 (your mirror); not huggingface.co, hf-mirror.com (only your mirror is used)',
    );

    const c = card(page, 'CLIP ViT-B/16');
    await expect(badge(c, 'Not installed')).toBeVisible();

    await c.getByRole('button', { name: 'Download' }).click();
    const pull = c.getByRole('group', { name: 'Download of CLIP ViT-B/16' });
    const fileBar = pull.getByRole('progressbar', { name: 'pytorch_model.bin progress' });
    // The mirror trickles the first MiB of the weights, then holds: the bars move, then stop part-way.
    await expect(pull.getByRole('progressbar', { name: 'Total progress' })).toBeVisible();
    await expect(fileBar).toHaveJSProperty('max', weights.length);
    await expect.poll(() => fileBar.evaluate((e) => (e as HTMLProgressElement).value)).toBeGreaterThan(0);
    await expect(pull.getByRole('listitem').filter({ hasText: 'config.json' })).toContainText('Done');
    await expect(
      page.getByRole('navigation', { name: 'Main' }).getByRole('button', { name: /^Models\s*1 downloading/ }),
    ).toBeVisible();
    await app.screenshot('models-downloading');

    // No bytes for 10 s: the server's stall detector says so, and the page shows it.
    await expect(pull.getByText(/^Stalled — no data is arriving/)).toBeVisible({ timeout: 30_000 });
    await expect(pull.getByRole('listitem').filter({ hasText: 'pytorch_model.bin' })).toContainText('Stalled');
    await expect(fileBar).toHaveJSProperty('value', MiB);
    await expect(pull).toContainText('1.0 MB of 3.1 MB');
    await app.screenshot('models-stalled');

    // Cancel keeps the .part file; Resume asks the mirror for the rest with a Range request.
    await c.getByRole('button', { name: 'Cancel' }).click();
    await expect(pull.getByRole('status')).toContainText('Download stopped');
    await expect(badge(c, 'Partly downloaded')).toBeVisible();
    await c.getByRole('button', { name: 'Resume' }).click();
    await expect(badge(c, 'Installed')).toBeVisible();
    await expect(pull.getByRole('status')).toContainText('Downloaded 1 file');
    expect(mirror.requests).toContain(`/${clip}/pytorch_model.bin bytes=${MiB}-`);

    const files = c.getByRole('table', { name: 'Files of CLIP ViT-B/16' });
    // The extra mirror's X-Linked-Etag is not Hugging Face's word: recorded, not verified.
    await expect(files.getByRole('row', { name: /pytorch_model\.bin/ })).toContainText('recorded, not verified');
    await expect(files.getByRole('row', { name: /config\.json/ })).toContainText('recorded, not verified');
    await expect(files.getByRole('row', { name: /tokenizer\.json/ })).toContainText('recorded, not verified');

    await c.getByRole('button', { name: 'Verify' }).click();
    await expect(c.getByRole('status').filter({ hasText: 'Verify:' })).toHaveText(
      'Verify: all 3 files match (3 against the hash recorded when installed).',
    );
    await expect(files.getByRole('row', { name: /pytorch_model\.bin/ })).toContainText(
      'matches the hash recorded when it was installed',
    );
    await app.screenshot('models-installed');

    // The confirmation opens on its safe choice; Esc keeps the model.
    await c.getByRole('button', { name: 'Delete…' }).click();
    const confirm = page.getByRole('alertdialog', { name: 'Delete CLIP ViT-B/16?' });
    await expect(confirm).toContainText('3.1 MB');
    await expect(confirm.getByRole('button', { name: 'Keep it' })).toBeFocused();
    await app.screenshot('models-delete-confirm');
    await page.keyboard.press('Escape');
    await expect(confirm).toBeHidden();
    await expect(badge(c, 'Installed')).toBeVisible();
    await c.getByRole('button', { name: 'Delete…' }).click();
    await confirm.getByRole('button', { name: 'Delete' }).click();
    await expect(confirm).toBeHidden();
    await expect(badge(c, 'Not installed')).toBeVisible();
    await expect(app.notifications).toContainText('Deleted CLIP ViT-B/16');
    expect(existsSync(join(server.dataDir, 'models', clip))).toBe(false);
  },
);

modelTest(
  'a mirror that answers 404 ends in a failure that names every mirror',
  async ({ studioPage: page, mirror }) => {
    const app = new StudioApp(page);
    await page.emulateMedia({ colorScheme: 'dark' }); // the theme follows the system: check the dark one too
    await openModels(page);
    const c = card(page, 'VQGAN WikiArt f16 16384');
    await c.getByRole('button', { name: 'Download' }).click();
    // The local mirror, the only one (FSTUDIO_MODEL_MIRROR_ONLY), says 404.
    const failure = c.getByRole('alert');
    await expect(failure).toContainText('Could not download VQGAN WikiArt f16 16384', { timeout: 60_000 });
    await expect(failure).toContainText('every mirror failed');
    await expect(failure).toContainText(`${mirror.url}/wikiart_16384/last.ckpt — HTTP 404`);
    // One piece of advice, in a user's words: no commands, no "pull".
    await expect(failure).toContainText('Try again later: what has arrived is kept');
    await expect(failure).not.toContainText('pull');
    await expect(c.getByText('"Import files…" below adds them')).toBeVisible();
    await expect(badge(c, 'Not installed')).toBeVisible();
    await expect(c.getByRole('button', { name: 'Download' })).toBeEnabled();
    await failure.scrollIntoViewIfNeeded();
    await app.screenshot('models-failed');
  },
);

test('import from the imports folder of the data folder', async ({ studioPage: page, server }) => {
  const imports = join(server.dataDir, 'imports');
  const src = join(imports, 'vqgan');
  // A file outside the data folder, to show the page cannot reach it.
  const outside = await mkdtemp(join(tmpdir(), 'fstudio-outside-'));
  try {
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'last.ckpt'), randomBytes(4096));
    await writeFile(join(src, 'model.yaml'), 'model:\n  params:\n    embed_dim: 256\n');
    await writeFile(join(outside, 'last.ckpt'), randomBytes(4096));
    const app = new StudioApp(page);
    await openModels(page);
    const c = card(page, 'VQGAN ImageNet f16 1024');
    await c.getByText('Import files…').click();
    // The form says where to put the files.
    await expect(c.locator('form')).toContainText(`Put the files in ${imports}`);
    const name = c.getByRole('textbox', { name: 'Name in the imports folder' });

    await name.fill('nothing-here');
    await c.getByRole('button', { name: 'Import' }).click();
    await expect(c.getByRole('alert')).toContainText('Nothing named "nothing-here" in the imports folder');

    // Paths outside the imports folder are refused, whether or not something is there.
    for (const p of [join(outside, 'last.ckpt'), '/etc/passwd', '../vqgan']) {
      await name.fill(p);
      await c.getByRole('button', { name: 'Import' }).click();
      await expect(c.getByRole('alert')).toContainText('is not a name inside the imports folder');
    }
    await expect(badge(c, 'Not installed')).toBeVisible();

    await name.fill('vqgan');
    await c.getByRole('button', { name: 'Import' }).click();
    await expect(app.notifications).toContainText('Imported 2 files into VQGAN ImageNet f16 1024');
    await expect(badge(c, 'Installed')).toBeVisible();
    await expect(c.getByRole('table', { name: 'Files of VQGAN ImageNet f16 1024' })).toContainText(
      'recorded, not verified',
    );
    await app.screenshot('models-imported');
  } finally {
    await rm(outside, { recursive: true, force: true });
  }
});
