// Playwright fixtures: `server` starts `fstudio serve` on a fresh temporary data folder for
// each test and stops it afterwards; `studioPage` is a page already opened on its URL.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test as base, type Page } from '@playwright/test';

export interface StudioServer {
  /** The URL `fstudio serve` printed, token included. */
  url: string;
  dataDir: string;
  /** Everything the server wrote to stdout and stderr so far (shown when a test fails). */
  log(): string;
  /** Stops the server now (it is stopped after the test anyway). */
  stop(): Promise<void>;
}

const root = resolve(import.meta.dirname, '../..');
const readyLine = /Foundation Studio is serving at (http:\/\/\S+)/;

/**
 * Starts `fstudio serve` on `dataDir`; by default on any free port with a token of the test's own
 * (`serveArgs` replaces those two options: a test of the kept token and the fixed port passes its own).
 */
export async function startServer(
  dataDir: string,
  extraEnv: Record<string, string>,
  serveArgs: string[] = ['--port', '0', '--token', randomBytes(16).toString('hex')],
): Promise<{ child: ChildProcess; url: string; log: () => string }> {
  if (!existsSync(join(root, 'out/web/index.html')))
    throw new Error('out/web is not built: run `npm run test:e2e` (it builds the renderer first).');
  const child = spawn(process.execPath, ['bin/fstudio.js', '--data-dir', dataDir, 'serve', ...serveArgs, '--no-open'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, FSTUDIO_DATA_DIR: undefined, ...extraEnv },
  });
  let output = '';
  const url = await new Promise<string>((ok, fail) => {
    const onData = (b: Buffer) => {
      output += b.toString();
      const m = readyLine.exec(output);
      if (m) ok(m[1]!);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('error', fail);
    child.once('exit', (code) => fail(new Error(`fstudio serve exited with ${code} before serving:\n${output}`)));
  });
  return { child, url, log: () => output };
}

export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((ok) => child.once('exit', ok));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export const test = base.extend<{ serverEnv: Record<string, string>; server: StudioServer; studioPage: Page }>({
  /** Extra environment for `fstudio serve` (a spec overrides it, e.g. FSTUDIO_MODEL_MIRROR). */
  serverEnv: [{}, { option: true }],
  server: async ({ serverEnv }, use, testInfo) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'fstudio-e2e-'));
    const { child, url, log } = await startServer(dataDir, serverEnv);
    try {
      await use({ url, dataDir, log, stop: () => stop(child) });
    } finally {
      await stop(child);
      if (testInfo.status !== testInfo.expectedStatus) await testInfo.attach('server.log', { body: log() });
      await rm(dataDir, { recursive: true, force: true });
    }
  },
  studioPage: async ({ page, server }, use) => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(server.url);
    await use(page);
    if (errors.length > 0) throw new Error(`Uncaught errors in the page:\n${errors.join('\n')}`);
  },
});

/**
 * Puts the tiny test models (tests/fixtures) in a data folder's models/ as folders of the user's own: the
 * CLIP (24 px images) as `tiny-clip`, the VQGAN (factor 2) as `tiny-vqgan` (last.ckpt and model.yaml), the
 * GPT-2-style causal LM (a transformers.js folder) as `tiny-gpt2`.
 */
export async function installTinyModels(dataDir: string): Promise<{ clip: string; vqgan: string; text: string }> {
  const models = join(dataDir, 'models');
  await cp(join(root, 'tests/fixtures/clip/tiny'), join(models, 'tiny-clip'), { recursive: true });
  await cp(join(root, 'tests/fixtures/text/tiny-gpt2'), join(models, 'tiny-gpt2'), { recursive: true });
  await mkdir(join(models, 'tiny-vqgan'), { recursive: true });
  await copyFile(join(root, 'tests/fixtures/vqgan/tiny.ckpt'), join(models, 'tiny-vqgan', 'last.ckpt'));
  await copyFile(join(root, 'tests/fixtures/vqgan/model.yaml'), join(models, 'tiny-vqgan', 'model.yaml'));
  return { clip: 'tiny-clip', vqgan: 'tiny-vqgan', text: 'tiny-gpt2' };
}

export { expect } from '@playwright/test';
