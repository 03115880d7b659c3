// What lets a browser tab outlive a restart of `fstudio serve`: the token kept in the data folder
// (owner-only, replaced by --new-token), a port that stays the same (the next one when it is taken,
// said so), and a person's browser without the token told how to get in, in words, not JSON.
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startServer } from '../../../src/main/server/index.js';
import { loadServerToken, TOKEN_FILE } from '../../../src/main/server/token-file.js';
import { fakeStudio } from './fake-studio.js';

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'fstudio-restart-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const mode = (file: string) => statSync(file).mode & 0o777;
const posix = process.platform !== 'win32';

describe('the kept token', () => {
  it('is written once, owner-only, and read back the same at the next start', async () => {
    const first = await loadServerToken(root);
    expect(first.created).toBe('new');
    expect(first.file).toBe(path.join(root, TOKEN_FILE));
    expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    if (posix) expect(mode(first.file)).toBe(0o600);
    const again = await loadServerToken(root);
    expect(again).toEqual({ token: first.token, file: first.file, created: null, narrowed: false });
  });

  it('is replaced by a new one on --new-token, and when the file holds something else', async () => {
    const first = await loadServerToken(root);
    const rotated = await loadServerToken(root, { rotate: true });
    expect(rotated.created).toBe('rotated');
    expect(rotated.token).not.toBe(first.token);
    expect(readFileSync(rotated.file, 'utf8').trim()).toBe(rotated.token);
    writeFileSync(rotated.file, 'not a token\n');
    const replaced = await loadServerToken(root);
    expect(replaced.created).toBe('replaced-invalid');
    expect(replaced.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it.runIf(posix)('narrows a file others can read to its owner', async () => {
    const first = await loadServerToken(root);
    chmodSync(first.file, 0o644);
    const again = await loadServerToken(root);
    expect(again).toMatchObject({ token: first.token, narrowed: true });
    expect(mode(first.file)).toBe(0o600);
  });
});

function get(port: number, p: string, headers: Record<string, string>) {
  return new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: p, headers: { Host: `127.0.0.1:${port}`, ...headers } },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('the server', () => {
  it('takes the next port when the one asked for is taken, and says which it was', async () => {
    const blocker = createServer();
    await new Promise<void>((ok) => blocker.listen(0, '127.0.0.1', ok));
    const taken = (blocker.address() as { port: number }).port;
    const studio = fakeStudio(path.join(root, 'data'));
    const server = await startServer({ studio, port: taken, fallbackPorts: [0], log: () => {} });
    try {
      expect(server.port).not.toBe(taken);
      expect(server.portTaken).toBe(taken);
    } finally {
      await server.close();
      await new Promise((ok) => blocker.close(ok));
    }
    // Without fallbacks a taken port is an error, for `--port` given by the user.
    const again = createServer();
    await new Promise<void>((ok) => again.listen(0, '127.0.0.1', ok));
    const port = (again.address() as { port: number }).port;
    await expect(startServer({ studio, port, log: () => {} })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await new Promise((ok) => again.close(ok));
  });

  it('answers a page load without the token with a page in words, and the app’s calls with JSON', async () => {
    const web = path.join(root, 'web');
    const studio = fakeStudio(path.join(root, 'data'));
    const server = await startServer({ studio, webRoot: web, log: () => {} });
    try {
      const navigate = { 'Sec-Fetch-Mode': 'navigate', 'Sec-Fetch-Dest': 'document', Accept: 'text/html' };
      const page = await get(server.port, '/', navigate);
      expect(page.status).toBe(401);
      expect(page.type).toMatch(/^text\/html/);
      expect(page.body).toContain('Open the studio with its access link');
      expect(page.body).toContain('<code>fstudio serve</code>');
      expect(page.body).not.toContain('"ok":false');
      // A browser that has an old token: the page says the link is out of date.
      const stale = await get(server.port, '/', { ...navigate, Cookie: `fstudio_token_${server.port}=old-token` });
      expect(stale.body).toContain('This access link is out of date');
      // An image or a script of the app (not a page load): JSON, as before.
      const asset = await get(server.port, `/asset/thumb/${'a'.repeat(64)}`, { 'Sec-Fetch-Mode': 'no-cors' });
      expect(asset.status).toBe(401);
      expect(JSON.parse(asset.body).error.name).toBe('Unauthorized');
      // With the token, the UI not built yet: said in words too.
      const unbuilt = await get(server.port, '/', { ...navigate, Authorization: `Bearer ${server.token}` });
      expect(unbuilt.status).toBe(404);
      expect(unbuilt.body).toContain('npm run build:web');
    } finally {
      await server.close();
    }
  });
});
