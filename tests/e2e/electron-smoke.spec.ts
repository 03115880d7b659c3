// Electron smoke test: the built desktop app opens its window, the preload exposes the
// StudioApi, a call goes through IPC to the studio, and the renderer has no Node.
// Runs only where the Electron binary is installed (an optional dependency); says so otherwise.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { _electron as electron, expect, test } from '@playwright/test';

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

const binary = electronBinary();

test('the desktop app opens with window.studio and answers over IPC', async () => {
  if (!binary)
    console.log(
      'SKIPPED: Electron smoke test: the Electron binary is not installed on this machine (npm could not download it). ' +
        'Run `npm install` with the internet to get it, then `npm run test:e2e`.',
    );
  test.skip(!binary, 'Electron binary not installed on this machine: smoke test skipped');
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
  // Chromium refuses its sandbox for root (CI containers); the app's own settings are unchanged.
  const args = process.getuid?.() === 0 ? ['--no-sandbox', repo] : [repo];
  const app = await electron.launch({ executablePath: binary!, args, cwd: repo, env });
  try {
    const win = await app.firstWindow();
    await expect(win).toHaveTitle(/Foundation Studio/);
    const api = await win.evaluate(() => {
      const s = (window as unknown as { studio?: Record<string, unknown> }).studio;
      return s ? Object.keys(s).sort() : null;
    });
    expect(api, 'window.studio is missing: the preload did not run').not.toBeNull();
    expect(api).toEqual(expect.arrayContaining(['galleryQuery', 'importImages', 'onGalleryChanged']));
    const settings = await win.evaluate(() =>
      (window as unknown as { studio: { getSettings(a: object): Promise<{ dataDir: string }> } }).studio.getSettings(
        {},
      ),
    );
    expect(settings.dataDir).toBe(dataDir);
    // Context isolation and no Node integration: none of Node's globals reach the page.
    expect(await win.evaluate(() => typeof (globalThis as { require?: unknown }).require)).toBe('undefined');
    expect(await win.evaluate(() => typeof (globalThis as { process?: unknown }).process)).toBe('undefined');
  } finally {
    await app.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
