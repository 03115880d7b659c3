import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startServer, type RunningServer } from '../../../src/main/server/index.js';
import { decodeWire, encodeWire } from '../../../src/shared/wire.js';
import { fakeStudio, PNG_BYTES, SHA, type FakeStudio } from './fake-studio.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

let root: string;
let studio: FakeStudio;
let server: RunningServer;
const SECRET = 'top secret outside the web root';

/** Raw HTTP, so paths reach the server exactly as written (fetch would normalise `..`). */
function raw(
  pathAndQuery: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; auth?: boolean } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { Host: `127.0.0.1:${server.port}`, ...opts.headers };
  if (opts.auth !== false && !('Authorization' in headers) && !('Cookie' in headers))
    headers.Authorization = `Bearer ${server.token}`;
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: server.port, path: pathAndQuery, method: opts.method ?? 'GET', headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

function call(name: string, args: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return raw(`/api/${name}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: encodeWire({ args }),
  });
}

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'fstudio-server-'));
  const web = path.join(root, 'web');
  mkdirSync(path.join(web, 'assets'), { recursive: true });
  writeFileSync(path.join(web, 'index.html'), '<!doctype html><title>Foundation Studio</title>');
  writeFileSync(path.join(web, 'assets', 'app-abc123.js'), 'console.log(1)');
  writeFileSync(path.join(root, 'secret.txt'), SECRET);
  symlinkSync(path.join(root, 'secret.txt'), path.join(web, 'link.txt'));
  studio = fakeStudio(path.join(root, 'data'));
  server = await startServer({ studio, webRoot: web, log: () => {} });
});

afterAll(async () => {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('authentication', () => {
  it('refuses requests without a token with 401 as JSON that says what to do', async () => {
    for (const p of ['/', '/index.html', `/asset/file/${SHA}`]) {
      const r = await raw(p, { auth: false });
      expect(r.status, p).toBe(401);
      const body = JSON.parse(r.body);
      expect(body.error.name).toBe('Unauthorized');
      expect(body.error.message).toMatch(/token/);
    }
    const r = await raw('/api/getSettings', {
      auth: false,
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{}',
    });
    expect(r.status).toBe(401);
    expect(studio.calls.filter((c) => c.name === 'getSettings')).toHaveLength(0);
  });

  it('refuses a wrong token, including one that only differs in length', async () => {
    for (const bad of ['nope', `${server.token}x`, server.token.slice(0, -1)]) {
      const r = await call('getSettings', {}, { Authorization: `Bearer ${bad}` });
      expect(r.status).toBe(401);
      expect(JSON.parse(r.body).error.message).toMatch(/Wrong token/);
    }
    expect((await raw('/?token=wrong', { auth: false })).status).toBe(401);
  });

  it('accepts the Bearer token', async () => {
    const r = await call('getSettings', {});
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ ok: true, result: expect.objectContaining({ theme: 'system' }) });
  });

  it('turns /?token= into an HttpOnly SameSite=Strict cookie and redirects to /', async () => {
    const r = await raw(`/?token=${encodeURIComponent(server.token)}`, { auth: false });
    expect(r.status).toBe(303);
    expect(r.headers.location).toBe('/');
    const cookie = String(r.headers['set-cookie']);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    const pair = cookie.split(';')[0]!;
    const page = await raw('/', { headers: { Cookie: pair } });
    expect(page.status).toBe(200);
    expect(page.body).toContain('Foundation Studio');
    // A cookie for another port of the same host is not ours.
    const other = await raw('/', { headers: { Cookie: pair.replace(String(server.port), '1') } });
    expect(other.status).toBe(401);
  });

  it('accepts a first visit by a link from another site, through a same-site refresh page', async () => {
    const nav = { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'navigate', 'Sec-Fetch-Dest': 'document' };
    const r = await raw(`/?token=${encodeURIComponent(server.token)}`, { auth: false, headers: nav });
    expect(r.status).toBe(200);
    expect(r.body).toMatch(/http-equiv="refresh" content="0;url=\/"/);
    expect(String(r.headers['set-cookie'])).toMatch(/SameSite=Strict/);
    expect((await raw('/?token=wrong', { auth: false, headers: nav })).status).toBe(401);
    // Not a navigation (a script's fetch from the other site): refused like any cross-site request.
    const fetchLike = { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'cors', 'Sec-Fetch-Dest': 'empty' };
    expect((await raw(`/?token=${server.token}`, { auth: false, headers: fetchLike })).status).toBe(403);
    // Only the first-visit URL is open to other sites' links.
    expect((await raw('/', { headers: nav })).status).toBe(403);
  });

  it('refuses a Host header that is not this server (DNS rebinding)', async () => {
    for (const host of [
      'evil.example',
      `evil.example:${server.port}`,
      '127.0.0.1:1',
      `127.0.0.1.evil.example:${server.port}`,
    ]) {
      const r = await call('getSettings', {}, { Host: host });
      expect(r.status, host).toBe(403);
      expect(JSON.parse(r.body).error.name).toBe('Forbidden');
    }
    expect((await call('getSettings', {}, { Host: `localhost:${server.port}` })).status).toBe(200);
  });

  it('answers to extra host names only when asked to (--allow-host)', async () => {
    const named = await startServer({ studio, allowedHosts: ['studio.lan'], log: () => {} });
    try {
      const get = (host: string) =>
        new Promise<number>((resolve, reject) => {
          const req = request(
            { host: '127.0.0.1', port: named.port, path: '/api/getSettings', method: 'POST' },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          );
          req.setHeader('Host', host);
          req.setHeader('Authorization', `Bearer ${named.token}`);
          req.setHeader('Content-Type', 'application/json');
          req.on('error', reject);
          req.end('{"args":{}}');
        });
      expect(await get(`studio.lan:${named.port}`)).toBe(200);
      expect(await get(`other.lan:${named.port}`)).toBe(403);
    } finally {
      await named.close();
    }
    const r = await call('getSettings', {}, { Host: `studio.lan:${server.port}` });
    expect(r.status).toBe(403);
    expect(JSON.parse(r.body).error.message).toMatch(/--allow-host/);
  });

  it('refuses cross-origin requests', async () => {
    expect((await call('getSettings', {}, { Origin: 'http://evil.example' })).status).toBe(403);
    expect((await call('getSettings', {}, { 'Sec-Fetch-Site': 'cross-site' })).status).toBe(403);
    expect((await call('getSettings', {}, { Origin: `http://127.0.0.1:${server.port}` })).status).toBe(200);
  });
});

describe('API calls', () => {
  it('answers an unknown call with 404 as data', async () => {
    const r = await call('dropAllTables', {});
    expect(r.status).toBe(404);
    const body = JSON.parse(r.body);
    expect(body.ok).toBe(false);
    expect(body.error.name).toBe('UnknownCall');
    expect(body.error.message).toMatch(/galleryQuery/);
    expect((await call('__proto__', {})).status).toBe(404);
  });

  it('answers invalid arguments with 400 and a readable message, without calling the handler', async () => {
    const before = studio.calls.length;
    const r = await call('getItem', { id: 'seven' });
    expect(r.status).toBe(400);
    const body = JSON.parse(r.body);
    expect(body).toEqual({
      ok: false,
      error: { name: 'InvalidArgument', message: expect.stringMatching(/^getItem: id: /) },
    });
    const extra = JSON.parse((await call('getSettings', { evil: true })).body);
    expect(extra.error.name).toBe('InvalidArgument');
    expect(extra.error.message).toMatch(/evil/);
    expect(studio.calls.length).toBe(before);
  });

  it('refuses bodies that are not JSON objects, and other content types', async () => {
    const notJson = await raw('/api/getSettings', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{oops',
    });
    expect(notJson.status).toBe(400);
    expect(JSON.parse(notJson.body).error.message).toMatch(/not valid JSON/);
    const form = await raw('/api/getSettings', {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain' },
      body: '{}',
    });
    expect(form.status).toBe(415);
    expect((await raw('/api/getSettings')).status).toBe(405);
  });

  it('sends handler errors as data: StudioError by its code, others as 500 without a stack', async () => {
    const nf = await call('getItem', { id: 7 });
    expect(nf.status).toBe(404);
    expect(JSON.parse(nf.body).error).toEqual({ name: 'NotFound', message: 'No item 7.' });
    const boom = await call('getItem', { id: 500 });
    expect(boom.status).toBe(500);
    expect(JSON.parse(boom.body).error.name).toBe('InternalError');
    expect(boom.body).not.toMatch(/secret\.ts/);
  });

  it('carries bytes both ways as {$bytes: base64}', async () => {
    const data = Uint8Array.from([0, 1, 2, 250, 255]);
    const r = await call('importImages', { files: [{ name: 'x.png', data }] });
    expect(r.status).toBe(200);
    const received = studio.calls.at(-1)!.args as { files: { data: unknown }[] };
    expect(received.files[0]!.data).toBeInstanceOf(Uint8Array);
    expect(Array.from(received.files[0]!.data as Uint8Array)).toEqual([0, 1, 2, 250, 255]);
    const exported = decodeWire((await call('exportItem', { id: 1 })).body) as { result: { data: Uint8Array } };
    expect(Array.from(exported.result.data)).toEqual(Array.from(PNG_BYTES));
  });

  it('refuses a body over the limit with 413 and a clear message', async () => {
    const small = await startServer({ studio, maxBodyBytes: 1024, log: () => {} });
    try {
      const body = encodeWire({ args: { files: [{ name: 'big.png', data: new Uint8Array(4096) }] } });
      const r = await new Promise<Reply>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: small.port,
            path: '/api/importImages',
            method: 'POST',
            headers: {
              Host: `127.0.0.1:${small.port}`,
              Authorization: `Bearer ${small.token}`,
              'Content-Type': 'application/json',
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
            );
          },
        );
        req.on('error', reject);
        req.end(body);
      });
      expect(r.status).toBe(413);
      expect(JSON.parse(r.body).error).toEqual({
        name: 'PayloadTooLarge',
        message: expect.stringMatching(/fewer or smaller files/),
      });
    } finally {
      await small.close();
    }
  });
});

describe('assets and static files', () => {
  it('streams an asset with its type and immutable caching', async () => {
    const r = await raw(`/asset/file/${SHA}`);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('image/png');
    expect(r.headers['cache-control']).toMatch(/immutable/);
    expect(Buffer.from(r.body, 'utf8').length).toBeGreaterThan(0);
    const t = await raw(`/asset/thumb/${SHA}`);
    expect(t.status).toBe(200);
    expect(t.headers['content-type']).toBe('image/webp');
  });

  it('answers unknown or malformed asset URLs with 404', async () => {
    for (const p of [
      `/asset/file/${'b'.repeat(64)}`,
      '/asset/file/ABC',
      `/asset/full/${SHA}`,
      `/asset/file/${SHA}/x`,
      `/asset/file/${SHA.toUpperCase()}`,
    ]) {
      expect((await raw(p)).status, p).toBe(404);
    }
  });

  it('refuses an asset path outside the data folder even if the studio hands one out', async () => {
    studio.assetOverride = { path: path.join(root, 'secret.txt'), mime: 'text/plain' };
    try {
      const r = await raw(`/asset/file/${SHA}`);
      expect(r.status).toBe(404);
      expect(r.body).not.toContain(SECRET);
    } finally {
      studio.assetOverride = null;
    }
  });

  it('refuses every path traversal variant on /asset and on static files', async () => {
    const variants = [
      '/../secret.txt',
      '/assets/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/%2E%2E/secret.txt',
      '/%2e%2e%2fsecret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/..%5csecret.txt',
      '/..\\secret.txt',
      '/assets/%2e%2e/%2e%2e/secret.txt',
      '/index.html%00.png',
      '/link.txt',
      `/asset/file/../../secret.txt`,
      `/asset/file/%2e%2e%2f%2e%2e%2fsecret.txt`,
      `/asset/thumb/..%2f${SHA}`,
      '/./index.html',
      '/%',
    ];
    for (const p of variants) {
      const r = await raw(p);
      expect([400, 404], p).toContain(r.status);
      expect(r.body, p).not.toContain(SECRET);
    }
  });

  it('serves the built renderer with a strict CSP', async () => {
    const r = await raw('/');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/text\/html/);
    const csp = String(r.headers['content-security-policy']);
    expect(csp).toMatch(/default-src 'self'/);
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    expect(csp).toMatch(/frame-ancestors 'none'/);
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    const js = await raw('/assets/app-abc123.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toMatch(/javascript/);
    expect(js.headers['cache-control']).toMatch(/immutable/);
    expect((await raw('/missing.js')).status).toBe(404);
  });

  it('says to build the web UI when webRoot has no index.html', async () => {
    const empty = path.join(root, 'empty-web');
    mkdirSync(empty, { recursive: true });
    const s = await startServer({ studio, webRoot: empty, log: () => {} });
    try {
      const r = await new Promise<Reply>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port: s.port,
            path: '/',
            headers: { Host: `127.0.0.1:${s.port}`, Authorization: `Bearer ${s.token}` },
          },
          (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
          },
        );
        req.on('error', reject);
        req.end();
      });
      expect(r.status).toBe(404);
      expect(JSON.parse(r.body).error.message).toMatch(/npm run build:web/);
    } finally {
      await s.close();
    }
  });
});

describe('events over WebSocket', () => {
  function connect(query: string, headers: Record<string, string> = {}): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/events${query}`, { headers });
      ws.once('open', () => resolve(ws));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  it('refuses a socket without a token, with a wrong token, or from another origin', async () => {
    await expect(connect('')).rejects.toThrow('HTTP 401');
    await expect(connect('?token=wrong')).rejects.toThrow('HTTP 401');
    await expect(connect(`?token=${server.token}`, { Origin: 'http://evil.example' })).rejects.toThrow('HTTP 403');
  });

  it('relays studio events to an authorised socket', async () => {
    const ws = await connect(`?token=${encodeURIComponent(server.token)}`, {
      Origin: `http://127.0.0.1:${server.port}`,
    });
    try {
      const got = new Promise<unknown>((resolve) => ws.once('message', (data) => resolve(decodeWire(String(data)))));
      studio.emit('galleryChanged', { reason: 'import', ids: [1, 2] });
      expect(await got).toEqual({ event: 'galleryChanged', payload: { reason: 'import', ids: [1, 2] } });
      expect(server.eventClients()).toBe(1);
    } finally {
      ws.close();
    }
  });
});
