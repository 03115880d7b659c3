import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assetResponse } from '../../../src/main/electron/asset-protocol.js';
import { bindStudioIpc, type IpcMainLike, type IpcReply } from '../../../src/main/electron/ipc.js';
import { contentSecurityPolicy, externalLinkAllowed, isOurPage } from '../../../src/main/electron/security.js';
import { callNames, eventNames, subscriberName } from '../../../src/preload/names.js';
import { apiCalls, apiEvents, eventSubscriberName } from '../../../src/shared/api.js';
import { fakeStudio, PNG_BYTES, SHA, type FakeStudio } from '../server/fake-studio.js';

interface FakeEvent {
  trusted: boolean;
}

/** An in-memory ipcMain: `invoke` plays the renderer's ipcRenderer.invoke. */
function fakeIpcMain() {
  const handlers = new Map<string, (event: FakeEvent, ...args: unknown[]) => unknown>();
  const ipc: IpcMainLike<FakeEvent> & { invoke(event: FakeEvent, ...args: unknown[]): Promise<IpcReply> } = {
    handle: (channel, listener) => {
      if (handlers.has(channel)) throw new Error(`second handler for ${channel}`);
      handlers.set(channel, listener);
    },
    removeHandler: (channel) => handlers.delete(channel),
    invoke: async (event, ...args) => (await handlers.get('studio:call')!(event, ...args)) as IpcReply,
  };
  return { ipc, handlers };
}

let root: string;
let studio: FakeStudio;

beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'fstudio-ipc-'));
  studio = fakeStudio(path.join(root, 'data'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('IPC binding', () => {
  function bind() {
    const { ipc, handlers } = fakeIpcMain();
    const sent: [string, unknown][] = [];
    const unbind = bindStudioIpc(ipc, studio, {
      isTrustedSender: (e) => e.trusted,
      send: (name, payload) => sent.push([name, payload]),
    });
    return { ipc, handlers, sent, unbind };
  }

  it('refuses an untrusted sender before looking at the call', async () => {
    const { ipc, unbind } = bind();
    try {
      const before = studio.calls.length;
      const reply = await ipc.invoke({ trusted: false }, 'getSettings', {});
      expect(reply).toEqual({ ok: false, error: { name: 'Forbidden', message: expect.any(String) } });
      expect(studio.calls.length).toBe(before);
    } finally {
      unbind();
    }
  });

  it('answers a trusted call with its result', async () => {
    const { ipc, unbind } = bind();
    try {
      const reply = await ipc.invoke({ trusted: true }, 'getSettings', {});
      expect(reply).toEqual({ ok: true, result: expect.objectContaining({ theme: 'system' }) });
      const bytes = await ipc.invoke({ trusted: true }, 'exportItem', { id: 1 });
      expect(bytes.ok && (bytes.result as { data: Uint8Array }).data).toEqual(PNG_BYTES);
    } finally {
      unbind();
    }
  });

  it('refuses invalid arguments as data, without calling the handler', async () => {
    const { ipc, unbind } = bind();
    try {
      const before = studio.calls.length;
      const cases: unknown[][] = [
        ['getItem', { id: -1 }],
        ['getItem', { id: 1, extra: 'x' }],
        ['importImages', { files: [{ name: 'a.png', data: 'not bytes' }] }],
        ['updateSettings', { dataDir: '/etc' }],
        [42, {}],
        ['getSettings', {}, 'a second argument'],
      ];
      for (const args of cases) {
        const reply = await ipc.invoke({ trusted: true }, ...args);
        expect(reply.ok, JSON.stringify(args)).toBe(false);
        expect(!reply.ok && reply.error.name).toBe('InvalidArgument');
      }
      expect(studio.calls.length).toBe(before);
      const unknown = await ipc.invoke({ trusted: true }, 'constructor', {});
      expect(!unknown.ok && unknown.error.name).toBe('UnknownCall');
    } finally {
      unbind();
    }
  });

  it('returns handler errors as data instead of rejecting the invoke', async () => {
    const { ipc, unbind } = bind();
    try {
      expect(await ipc.invoke({ trusted: true }, 'getItem', { id: 7 })).toEqual({
        ok: false,
        error: { name: 'NotFound', message: 'No item 7.' },
      });
      const boom = await ipc.invoke({ trusted: true }, 'getItem', { id: 500 });
      expect(boom).toEqual({ ok: false, error: { name: 'InternalError', message: 'database is on fire' } });
    } finally {
      unbind();
    }
  });

  it('forwards studio events to the window and stops after unbinding', () => {
    const { handlers, sent, unbind } = bind();
    studio.emit('importProgress', { done: 1, total: 2, name: 'a.png' });
    expect(sent).toEqual([['importProgress', { done: 1, total: 2, name: 'a.png' }]]);
    unbind();
    expect(handlers.size).toBe(0);
    studio.emit('importProgress', { done: 2, total: 2, name: 'b.png' });
    expect(sent).toHaveLength(1);
  });
});

describe('preload names', () => {
  it('match the contract exactly', () => {
    expect([...callNames].sort()).toEqual(Object.keys(apiCalls).sort());
    expect([...eventNames].sort()).toEqual(Object.keys(apiEvents).sort());
    for (const e of eventNames) expect(subscriberName(e)).toBe(eventSubscriberName(e));
  });
});

describe('shell security decisions', () => {
  it('knows its own page and nothing else', () => {
    const app = 'file:///opt/Foundation%20Studio/resources/app.asar/out/renderer/index.html';
    expect(isOurPage(app, app)).toBe(true);
    expect(isOurPage(`${app}#/gallery`, app)).toBe(true);
    expect(isOurPage('file:///etc/passwd', app)).toBe(false);
    expect(isOurPage('https://example.com/', app)).toBe(false);
    expect(isOurPage('http://localhost:5173/x', 'http://localhost:5173/')).toBe(true);
    expect(isOurPage('http://localhost:5174/', 'http://localhost:5173/')).toBe(false);
    expect(isOurPage('not a url', app)).toBe(false);
  });

  it('hands only plain web links to the OS browser', () => {
    expect(externalLinkAllowed('https://huggingface.co/openai/clip-vit-base-patch32')).toBe(true);
    expect(externalLinkAllowed('http://example.com')).toBe(true);
    for (const bad of [
      'file:///etc/passwd',
      'javascript:alert(1)',
      'smb://host/share',
      `studio-asset://file/${SHA}`,
      'https://user:pw@example.com',
      'nope',
    ])
      expect(externalLinkAllowed(bad), bad).toBe(false);
  });

  it('has a CSP that allows only our scripts and our image scheme', () => {
    const csp = contentSecurityPolicy(false);
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    expect(csp).toMatch(/img-src [^;]*studio-asset:/);
    expect(csp).not.toMatch(/unsafe-eval/);
    expect(csp).not.toMatch(/ws:/);
  });
});

describe('studio-asset protocol', () => {
  it('serves a known asset with its type', async () => {
    const r = await assetResponse(studio, `studio-asset://file/${SHA}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('image/png');
    expect(new Uint8Array(await r.arrayBuffer())).toEqual(PNG_BYTES);
    expect((await assetResponse(studio, `studio-asset://thumb/${SHA}`)).headers.get('content-type')).toBe('image/webp');
  });

  it('refuses other shapes, unknown hashes, and paths outside the data folder', async () => {
    for (const url of [
      `studio-asset://file/${'b'.repeat(64)}`,
      `studio-asset://other/${SHA}`,
      `studio-asset://file/${SHA}/x`,
      `studio-asset://file/../../etc/passwd`,
      `studio-asset://file/%2e%2e%2fsecret`,
      `studio-asset://file/${SHA}?x=1`,
    ])
      expect((await assetResponse(studio, url)).status, url).toBe(404);
    expect((await assetResponse(studio, `studio-asset://file/${SHA}`, 'POST')).status).toBe(405);
    writeFileSync(path.join(root, 'secret.txt'), 'secret');
    studio.assetOverride = { path: path.join(root, 'secret.txt'), mime: 'text/plain' };
    try {
      const r = await assetResponse(studio, `studio-asset://file/${SHA}`);
      expect(r.status).toBe(404);
      expect(await r.text()).not.toContain('secret');
    } finally {
      studio.assetOverride = null;
    }
  });
});
