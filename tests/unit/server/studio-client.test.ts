// The renderer's server transport against the real server (fake studio behind it).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startServer, type RunningServer } from '../../../src/main/server/index.js';
import { fromBridgeError, serverClient, type StudioClient } from '../../../src/renderer/src/lib/studio-client.js';
import { fakeStudio, PNG_BYTES, SHA, type FakeStudio } from './fake-studio.js';

let root: string;
let studio: FakeStudio;
let server: RunningServer;
let client: StudioClient;

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'fstudio-client-'));
  studio = fakeStudio(path.join(root, 'data'));
  server = await startServer({ studio, log: () => {} });
  client = serverClient({
    baseUrl: server.url,
    token: server.token,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
  });
});

afterAll(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

describe('server client', () => {
  it('calls through HTTP and returns results, bytes included', async () => {
    expect(client.transport).toBe('server');
    expect((await client.getSettings({})).theme).toBe('system');
    const exported = await client.exportItem({ id: 1 });
    expect(exported.data).toEqual(PNG_BYTES);
  });

  it('throws Errors named after the wire error', async () => {
    await expect(client.getItem({ id: 7 })).rejects.toMatchObject({ name: 'NotFound', message: 'No item 7.' });
    await expect(client.getItem({ id: 'x' as unknown as number })).rejects.toMatchObject({ name: 'InvalidArgument' });
    const anonymous = serverClient({ baseUrl: server.url });
    await expect(anonymous.getSettings({})).rejects.toMatchObject({ name: 'Unauthorized' });
  });

  it('says NetworkError when the server is gone', async () => {
    const gone = serverClient({ baseUrl: 'http://127.0.0.1:1' });
    await expect(gone.getSettings({})).rejects.toMatchObject({ name: 'NetworkError' });
  });

  it('delivers events to onX listeners and stops after unsubscribing', async () => {
    const seen: unknown[] = [];
    const open = new Promise<void>((resolve) => {
      const off = client.onConnection((s) => {
        if (s === 'open') {
          resolve();
          queueMicrotask(off);
        }
      });
    });
    let resolveFirst!: () => void;
    const first = new Promise<void>((r) => (resolveFirst = r));
    const off = client.onGalleryChanged((p) => {
      seen.push(p);
      resolveFirst();
    });
    await open;
    studio.emit('galleryChanged', { reason: 'delete', ids: [3] });
    await first;
    expect(seen).toEqual([{ reason: 'delete', ids: [3] }]);
    off();
  });

  it('reconnects after the server restarts and asks the views to refresh', async () => {
    const first = await startServer({ studio, log: () => {} });
    const port = first.port;
    const c = serverClient({
      baseUrl: first.url,
      token: first.token,
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    });
    const states: string[] = [];
    const waiters: { state: string; resolve: () => void }[] = [];
    const offConn = c.onConnection((s) => {
      states.push(s);
      for (const w of waiters.filter((w) => w.state === s)) w.resolve();
    });
    const reach = (state: string, count: number) =>
      new Promise<void>((resolve) => {
        const check = () =>
          states.filter((s) => s === state).length >= count ? resolve() : waiters.push({ state, resolve: check });
        check();
      });
    const changes: unknown[] = [];
    const offChanges = c.onGalleryChanged((p) => changes.push(p));
    let second: RunningServer | null = null;
    try {
      await reach('open', 1);
      await first.close();
      await reach('closed', 1);
      second = await startServer({ studio, port, token: first.token, log: () => {} });
      await reach('open', 2);
      expect(changes).toEqual([{ reason: 'update', ids: [] }]);
      let offProgress = () => {};
      const got = new Promise<void>((resolve) => (offProgress = c.onImportProgress(() => resolve())));
      studio.emit('importProgress', { done: 1, total: 1, name: 'x.png' });
      await got;
      offProgress();
    } finally {
      offConn();
      offChanges();
      await second?.close();
    }
  });

  it('builds asset URLs and refuses a malformed hash', () => {
    expect(client.assetUrl(SHA, 'thumb')).toBe(`${server.url.replace(/\/$/, '')}/asset/thumb/${SHA}`);
    expect(() => client.assetUrl('../../etc/passwd', 'file')).toThrow(/SHA-256/);
  });
});

describe('Electron bridge errors', () => {
  it('restores the wire name from the preload message', () => {
    const e = fromBridgeError(new Error('NotFound: No item 7.'));
    expect(e.name).toBe('NotFound');
    expect(e.message).toBe('No item 7.');
    expect(fromBridgeError(new Error('plain failure')).message).toBe('plain failure');
  });
});
