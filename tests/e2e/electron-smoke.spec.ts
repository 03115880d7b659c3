// The real desktop app under Playwright's Electron support: the built app starts, its window shows
// the gallery with window.studio and no Node, one image imported through the file picker appears
// with its thumbnail (served over studio-asset:), and quitting closes the studio cleanly.
// It needs the Electron binary and the native modules built for Electron's ABI
// (`npx electron-builder install-app-deps`), as in the release workflow
// (.github/workflows/release.yml); elsewhere it says that it skipped and why, and with
// FSTUDIO_REQUIRE_ELECTRON_BINARY=1 a missing prerequisite is a failure instead.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { _electron as electron, expect, test } from '@playwright/test';
import { makePng } from '../fixtures/images.js';
import { StudioApp } from './studio-app.js';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const require = createRequire(import.meta.url);

/** The electron package exports its binary's path, and throws when the download failed. */
function electronBinary(): string | null {
  try {
    const p: unknown = require('electron');
    return typeof p === 'string' && existsSync(p) ? p : null;
  } catch {
    return null;
  }
}

/** Why the real app cannot run here, or null when it can. */
function missing(): string | null {
  const binary = electronBinary();
  if (!binary)
    return (
      'the Electron binary is not installed on this machine (npm could not download it). ' +
      'Run `npm install` with the internet to get it.'
    );
  // better-sqlite3 is built for one ABI: Node's after `npm install`, Electron's after install-app-deps.
  const probe = spawnSync(binary, ['-e', "new (require('better-sqlite3'))(':memory:').close()"], {
    cwd: repo,
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    encoding: 'utf8',
  });
  if (probe.status !== 0)
    return (
      "the native modules are built for Node, not for Electron's ABI " +
      `(${(probe.stderr || probe.error?.message || '').split('\n').find((l) => /NODE_MODULE_VERSION|Error/.test(l)) ?? 'better-sqlite3 did not load'}). ` +
      'Run `npx electron-builder install-app-deps` first, and `npm rebuild better-sqlite3` afterwards for the Node tests.'
    );
  return null;
}

test('the desktop app: launch, gallery, import one image, quit', async () => {
  const why = missing();
  if (why) {
    if (process.env.FSTUDIO_REQUIRE_ELECTRON_BINARY === '1') throw new Error(`Electron smoke test cannot run: ${why}`);
    console.log(`SKIPPED: Electron smoke test (tests/e2e/electron-smoke.spec.ts): ${why}`);
  }
  test.skip(why !== null, `Electron smoke test skipped: ${why}`);
  test.setTimeout(240_000);

  // `npm run test:e2e` builds only the web UI; the app needs main, preload and renderer in out/.
  const build = spawnSync(
    process.execPath,
    [path.join(repo, 'node_modules/electron-vite/bin/electron-vite.js'), 'build'],
    {
      cwd: repo,
      encoding: 'utf8',
    },
  );
  expect(build.status, `electron-vite build failed:\n${build.stderr}`).toBe(0);

  const dataDir = mkdtempSync(path.join(tmpdir(), 'fstudio-electron-'));
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'ELECTRON_RUN_AS_NODE') env[k] = v;
  env.FSTUDIO_DATA_DIR = dataDir;
  // Playwright starts the installed electron package's binary with the app folder (package.json's main).
  const app = await electron.launch({ args: [repo], cwd: repo, env });
  const proc = app.process();
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  try {
    const win = await app.firstWindow();
    await expect(win).toHaveTitle(/Foundation Studio/);
    // Context isolation and no Node integration: window.studio, and none of Node's globals.
    const api = await win.evaluate(() => {
      const s = (window as unknown as { studio?: Record<string, unknown> }).studio;
      return s ? Object.keys(s) : null;
    });
    expect(api, 'window.studio is missing: the preload did not run').toEqual(
      expect.arrayContaining(['galleryQuery', 'importImages', 'onGalleryChanged']),
    );
    expect(await win.evaluate(() => typeof (globalThis as { require?: unknown }).require)).toBe('undefined');
    expect(await win.evaluate(() => typeof (globalThis as { process?: unknown }).process)).toBe('undefined');

    const studio = new StudioApp(win);
    await expect(win.getByRole('heading', { name: 'Your gallery is empty' })).toBeVisible();
    await studio.importFiles([{ name: 'smoke.png', mimeType: 'image/png', buffer: await makePng({ seed: 11 }) }]);
    await studio.expectCount(1);
    const thumb = studio.option('smoke.png').locator('img');
    await expect(thumb).toBeVisible();
    // The thumbnail came through the studio-asset: protocol and decoded.
    await expect.poll(() => thumb.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth > 0)).toBe(true);
    await studio.screenshot('electron-gallery');

    // Quit as the menu does; the studio closes its database and workers before the process ends.
    await app.evaluate(({ app: electronApp }) => {
      setTimeout(() => electronApp.quit(), 0);
    });
    expect(await exited).toBe(0);
    expect(existsSync(path.join(dataDir, 'history.db-wal')), 'the database was not closed').toBe(false);
    expect(existsSync(path.join(dataDir, 'locks', `${proc.pid}.pid`)), 'the studio was not closed').toBe(false);
  } finally {
    if (proc.exitCode === null) await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
