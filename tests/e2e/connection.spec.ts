// The server's connection as a user meets it: `fstudio serve` restarted under an open page (the same
// port and the token kept in the data folder: the page reconnects by itself and refreshes, without a
// reload), a new token (the page says how to get back in, and does once the new link is opened), a
// browser without the token (a page in words, never JSON), and the gallery following another process's
// writes (`fstudio import` while the page is open).
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Page } from '@playwright/test';
import { makePng } from '../fixtures/images.js';
import { expect, startServer, stop, test } from './fixtures.js';
import { StudioApp } from './studio-app.js';

const root = resolve(import.meta.dirname, '../..');

/** A port nobody listens on now (the kernel's pick), for a server that must come back on the same one. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as { port: number };
  await new Promise((ok) => server.close(ok));
  return port;
}

/** Runs the `fstudio` CLI; resolves with its exit code and output. */
function fstudio(...args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, ['bin/fstudio.js', ...args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FSTUDIO_DATA_DIR: undefined },
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    child.once('error', fail);
    child.once('exit', (code) => ok({ code, out }));
  });
}

async function pngFiles(dir: string, names: string[], seed: number): Promise<string[]> {
  return Promise.all(
    names.map(async (name, i) => {
      const file = join(dir, name);
      await writeFile(file, await makePng({ seed: seed + i }));
      return file;
    }),
  );
}

/** Marks the page, so a test can tell that it was never reloaded. */
const mark = (page: Page) => page.evaluate(() => ((window as { fstudioMark?: number }).fstudioMark = 42));
const marked = (page: Page) => page.evaluate(() => (window as { fstudioMark?: number }).fstudioMark);

const connectionTest = test.extend<{ dataDir: string }>({
  // eslint-disable-next-line no-empty-pattern -- Playwright reads the fixture list from this pattern
  dataDir: async ({}, use) => {
    const dir = await mkdtemp(join(tmpdir(), 'fstudio-e2e-restart-'));
    await use(dir);
    await rm(dir, { recursive: true, force: true });
  },
});

connectionTest(
  'a restarted server keeps its port and token, and the open page carries on without a reload',
  async ({ page, dataDir }) => {
    const port = String(await freePort());
    let server = await startServer(dataDir, {}, ['--port', port]);
    try {
      // The token is kept in the data folder, readable by its owner only.
      const tokenFile = await stat(join(dataDir, 'server-token'));
      if (process.platform !== 'win32') expect(tokenFile.mode & 0o777).toBe(0o600);

      const app = new StudioApp(page);
      await page.goto(server.url);
      await app.expectCount(0);
      await mark(page);

      await stop(server.child);
      const banner = page.getByRole('alert').filter({ hasText: 'Lost the connection to the studio server' });
      await expect(banner).toBeVisible();
      await expect(banner).toContainText('carries on by itself');
      // While it is away, another process adds to the same data folder.
      const files = await mkdtemp(join(tmpdir(), 'fstudio-e2e-files-'));
      const imported = await fstudio(
        '--data-dir',
        dataDir,
        'import',
        ...(await pngFiles(files, ['while-away.png'], 40)),
      );
      expect(imported.code, imported.out).toBe(0);
      await rm(files, { recursive: true, force: true });

      const first = server.url;
      server = await startServer(dataDir, {}, ['--port', port]);
      expect(server.url).toBe(first); // the same link: same port, same token
      await expect(banner).toBeHidden({ timeout: 20_000 });
      // Reconnected: the views refreshed what changed meanwhile, and the page was never reloaded.
      await app.expectCount(1);
      await expect(app.option('while-away.png')).toBeVisible();
      expect(await marked(page)).toBe(42);
      // And the calls work again.
      await app.importFiles([{ name: 'after.png', mimeType: 'image/png', buffer: await makePng({ seed: 41 }) }]);
      await app.expectCount(2);
      expect(await marked(page)).toBe(42);
    } finally {
      await stop(server.child);
    }
  },
);

connectionTest(
  'a new token: the open page says how to get back in, and carries on once the new link is opened',
  async ({ page, dataDir }) => {
    const port = String(await freePort());
    let server = await startServer(dataDir, {}, ['--port', port]);
    try {
      const app = new StudioApp(page);
      await page.goto(server.url);
      await app.expectCount(0);
      await mark(page);
      await stop(server.child);
      server = await startServer(dataDir, {}, ['--port', port, '--new-token']);
      const log = server.log;
      await expect.poll(log).toContain('New token written to');

      const refused = page.getByRole('alert').filter({ hasText: 'no longer accepts this page’s access token' });
      await expect(refused).toBeVisible({ timeout: 20_000 });
      await app.screenshot('connection-new-token');

      // The new link, opened in another tab of the same browser, lets this page back in.
      const other = await page.context().newPage();
      await other.goto(server.url);
      await expect(new StudioApp(other).count).toBeVisible();
      await other.close();
      await expect(refused).toBeHidden({ timeout: 20_000 });
      expect(await marked(page)).toBe(42);

      // A browser with an out-of-date token that reloads gets a page in words.
      const stale = await page.context().browser()!.newContext();
      await stale.addCookies([
        {
          name: `fstudio_token_${port}`,
          value: 'an-old-token-of-43-characters-xxxxxxxxxxxxx',
          url: new URL(server.url).origin,
        },
      ]);
      const p = await stale.newPage();
      const res = await p.goto(new URL(server.url).origin + '/');
      expect(res?.status()).toBe(401);
      await expect(p.getByRole('heading', { name: 'This access link is out of date' })).toBeVisible();
      await stale.close();
    } finally {
      await stop(server.child);
    }
  },
);

test('a browser without the token gets a page that says how to get in, never JSON', async ({ browser, server }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const origin = new URL(server.url).origin;
  for (const path of ['/', '/index.html', '/?token=wrong-token-0123456789']) {
    const res = await page.goto(origin + path);
    expect(res?.status(), path).toBe(401);
    expect(res?.headers()['content-type'], path).toMatch(/^text\/html/);
    expect(await page.content()).not.toContain('"ok":false');
  }
  await page.goto(origin + '/');
  await expect(page.getByRole('heading', { name: 'Open the studio with its access link' })).toBeVisible();
  await expect(page.getByText(/printed a link ending in \?token=…/)).toBeVisible();
  await expect(page.getByText(/kept in the file server-token/)).toBeVisible();
  await new StudioApp(page).screenshot('connection-no-token');
  // The app's own calls still get JSON they can read.
  const api = await page.request.post(`${origin}/api/getSettings`, { data: { args: {} } });
  expect(api.status()).toBe(401);
  expect(((await api.json()) as { error: { name: string } }).error.name).toBe('Unauthorized');
  await context.close();
});

test('images imported by the CLI while the page is open appear in the gallery', async ({
  studioPage: page,
  server,
}) => {
  const app = new StudioApp(page);
  await app.expectCount(0);
  await mark(page);
  const files = await mkdtemp(join(tmpdir(), 'fstudio-e2e-files-'));
  try {
    const paths = await pngFiles(files, ['from-cli-1.png', 'from-cli-2.png'], 60);
    const r = await fstudio('--data-dir', server.dataDir, 'import', ...paths);
    expect(r.code, r.out).toBe(0);
    await app.expectCount(2);
    await expect(app.option('from-cli-1.png')).toBeVisible();
    await expect(app.option('from-cli-2.png')).toBeVisible();
    expect(await marked(page)).toBe(42);
  } finally {
    await rm(files, { recursive: true, force: true });
  }
});
