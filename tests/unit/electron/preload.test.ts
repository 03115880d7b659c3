// The preload and the main-process binding joined by an in-memory IPC pair (no Electron):
// what the renderer sees as window.studio, end to end down to a fake studio.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { bindStudioIpc } from '../../../src/main/electron/ipc.js';
import type { StudioApi } from '../../../src/shared/api.js';
import { fromBridgeError } from '../../../src/renderer/src/lib/studio-client.js';
import { fakeStudio, PNG_BYTES, type FakeStudio } from '../server/fake-studio.js';

type Listener = (event: unknown, ...args: unknown[]) => void;

const bridge = vi.hoisted(() => {
  const state = {
    exposed: new Map<string, unknown>(),
    rendererListeners: new Map<string, Set<(...args: unknown[]) => void>>(),
    mainHandlers: new Map<string, (event: unknown, ...args: unknown[]) => unknown>(),
    trusted: true,
  };
  return state;
});

vi.mock('electron', () => ({
  contextBridge: { exposeInMainWorld: (key: string, api: unknown) => bridge.exposed.set(key, api) },
  ipcRenderer: {
    invoke: async (channel: string, ...args: unknown[]) => {
      const handler = bridge.mainHandlers.get(channel);
      if (!handler) throw new Error(`Error invoking remote method '${channel}': No handler registered`);
      // Structured clone, as Electron does between processes.
      return structuredClone(await handler({ trusted: bridge.trusted }, ...structuredClone(args)));
    },
    on: (channel: string, listener: Listener) => {
      let set = bridge.rendererListeners.get(channel);
      if (!set) bridge.rendererListeners.set(channel, (set = new Set()));
      set.add(listener as (...args: unknown[]) => void);
    },
    removeListener: (channel: string, listener: Listener) =>
      bridge.rendererListeners.get(channel)?.delete(listener as (...args: unknown[]) => void),
  },
}));

let root: string;
let studio: FakeStudio;
let api: StudioApi;
let unbind: () => void;

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'fstudio-preload-'));
  studio = fakeStudio(path.join(root, 'data'));
  unbind = bindStudioIpc(
    {
      handle: (channel, listener) => bridge.mainHandlers.set(channel, listener as never),
      removeHandler: (channel) => bridge.mainHandlers.delete(channel),
    },
    studio,
    {
      isTrustedSender: (e: { trusted: boolean }) => e.trusted,
      send: (name, payload) => {
        for (const l of bridge.rendererListeners.get('studio:event') ?? []) l({}, name, structuredClone(payload));
      },
    },
  );
  await import('../../../src/preload/index.js');
  api = bridge.exposed.get('studio') as StudioApi;
});

afterAll(() => {
  unbind();
  rmSync(root, { recursive: true, force: true });
});

describe('preload', () => {
  it('exposes exactly one window.studio with a method per call and an onX per event', () => {
    expect([...bridge.exposed.keys()]).toEqual(['studio']);
    expect(typeof api.galleryQuery).toBe('function');
    expect(typeof api.onImportProgress).toBe('function');
  });

  it('unwraps results, bytes included', async () => {
    expect((await api.getSettings({})).theme).toBe('system');
    expect((await api.exportItem({ id: 1 })).data).toEqual(PNG_BYTES);
  });

  it('rejects with the wire name recoverable by the renderer client', async () => {
    const err = await api.getItem({ id: 7 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe('NotFound: No item 7.');
    expect(fromBridgeError(err)).toMatchObject({ name: 'NotFound', message: 'No item 7.' });
    const bad = await api.getItem({ id: 'x' as unknown as number }).catch((e: unknown) => fromBridgeError(e));
    expect(bad).toMatchObject({ name: 'InvalidArgument' });
  });

  it('is refused when the main process does not trust the sender', async () => {
    bridge.trusted = false;
    try {
      const err = await api.getSettings({}).catch((e: unknown) => fromBridgeError(e));
      expect(err).toMatchObject({ name: 'Forbidden' });
    } finally {
      bridge.trusted = true;
    }
  });

  it('delivers events to each subscriber until it unsubscribes', () => {
    const a: unknown[] = [];
    const b: unknown[] = [];
    const offA = api.onGalleryChanged((p) => a.push(p));
    const offB = api.onGalleryChanged((p) => b.push(p));
    const progress: unknown[] = [];
    const offP = api.onImportProgress((p) => progress.push(p));
    studio.emit('galleryChanged', { reason: 'import', ids: [1] });
    offA();
    studio.emit('galleryChanged', { reason: 'delete', ids: [1] });
    expect(a).toEqual([{ reason: 'import', ids: [1] }]);
    expect(b).toEqual([
      { reason: 'import', ids: [1] },
      { reason: 'delete', ids: [1] },
    ]);
    expect(progress).toEqual([]);
    offB();
    offP();
    // One IPC listener serves every subscription.
    expect(bridge.rendererListeners.get('studio:event')?.size).toBe(1);
  });
});
