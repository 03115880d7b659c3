// The renderer's server transport against the real server (fake studio behind it).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { JobStatus } from '../../../src/shared/api.js';
import { decodeWireBinary } from '../../../src/shared/wire.js';
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

  it("a job's preview frame crosses as one binary WebSocket frame, its bytes as they are", async () => {
    const data = new Uint8Array(200_000).map((_, i) => (i * 31) % 256);
    const frame = { jobId: 'job-1', step: 12, mime: 'image/png' as const, width: 64, height: 48, data };
    // A raw socket: the frame must be binary and about the size of the bytes (base64 would be 4/3 of it).
    const raw = new WebSocket(`${server.url.replace(/^http/, 'ws').replace(/\/$/, '')}/events?token=${server.token}`);
    await new Promise((r) => raw.once('open', r));
    const got = new Promise<{ data: Buffer; isBinary: boolean }>((resolve) =>
      raw.once('message', (d: Buffer, isBinary: boolean) => resolve({ data: d, isBinary })),
    );
    // And through the client, as the renderer receives it.
    const seen = new Promise<unknown>((resolve) => {
      const off = client.onJobFrame((f) => {
        off();
        resolve(f);
      });
    });
    await new Promise<void>((resolve) => {
      const off = client.onConnection((st) => st === 'open' && (queueMicrotask(off), resolve()));
    });
    studio.emit('jobFrame', frame);
    const msg = await got;
    raw.close();
    expect(msg.isBinary).toBe(true);
    expect(msg.data.length).toBeLessThan(data.length + 500);
    expect(decodeWireBinary(msg.data)).toEqual({ event: 'jobFrame', payload: frame });
    const delivered = (await seen) as typeof frame;
    expect(delivered.data).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(delivered.data).equals(Buffer.from(data))).toBe(true);
  });

  it('after a reconnect, asks for the state of the jobs it follows and delivers it', async () => {
    const first = await startServer({ studio, log: () => {} });
    const c = serverClient({
      baseUrl: first.url,
      token: first.token,
      WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    });
    const statuses: JobStatus[] = [];
    const waiters: (() => void)[] = [];
    const offJobs = c.onJobProgress((st) => {
      statuses.push(st);
      waiters.splice(0).forEach((w) => w());
    });
    const next = () => new Promise<void>((r) => waiters.push(r));
    const opens: (() => void)[] = [];
    let openCount = 0;
    const offConn = c.onConnection((st) => {
      if (st === 'open') openCount++;
      opens.splice(0).forEach((o) => o());
    });
    const opened = async (n: number) => {
      while (openCount < n) await new Promise<void>((r) => opens.push(r));
    };
    const job = (jobId: string, state: JobStatus['state'], step: number): JobStatus => ({
      jobId,
      kind: 'gradcheck',
      title: 'Gradient check on cpu',
      state,
      step,
      total: 10,
      values: {},
      message: '',
      error: null,
      runId: null,
      startedAt: 1,
      updatedAt: 2,
      frameStep: null,
    });
    let second: RunningServer | null = null;
    try {
      await opened(1);
      const running = next();
      studio.emit('jobProgress', job('followed', 'running', 3));
      studio.emit('jobProgress', job('over', 'done', 10)); // finished: nothing to follow
      await running;
      await first.close();
      // While the client is away, the job finishes; the event is lost, the state is kept.
      studio.jobs.set('followed', job('followed', 'done', 10));
      studio.jobs.set('other', job('other', 'running', 1));
      const calls = studio.calls.length;
      second = await startServer({ studio, port: first.port, token: first.token, log: () => {} });
      const caughtUp = next();
      await opened(2);
      await caughtUp;
      expect(studio.calls.slice(calls)).toEqual([{ name: 'jobList', args: { ids: ['followed'] } }]);
      expect(statuses.at(-1)).toMatchObject({ jobId: 'followed', state: 'done', step: 10 });
    } finally {
      offJobs();
      offConn();
      studio.jobs.clear();
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
