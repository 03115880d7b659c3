// A small in-memory Studio for transport tests: real contract types, a few working calls,
// events on demand, asset files in a temporary data folder.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  type EventName,
  type EventPayload,
  type GalleryItem,
  type JobStatus,
  type Settings,
  StudioError,
  type StudioHandlers,
} from '../../../src/shared/api.js';
import type { AssetVariant, Studio } from '../../../src/main/studio/types.js';

export const SHA = 'a'.repeat(64);
export const PNG_BYTES = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);

export interface FakeStudio extends Studio {
  emit<K extends EventName>(name: K, payload: EventPayload<K>): void;
  /** What jobList answers (the fake's jobs, by id). */
  jobs: Map<string, JobStatus>;
  /** Arguments each handler received, in order. */
  calls: { name: string; args: unknown }[];
  /** assetFile returns this instead when set (to test the transport's own path check). */
  assetOverride: { path: string; mime: string } | null;
}

export function fakeStudio(dataDir: string): FakeStudio {
  mkdirSync(path.join(dataDir, 'assets'), { recursive: true });
  writeFileSync(path.join(dataDir, 'assets', SHA), PNG_BYTES);
  writeFileSync(path.join(dataDir, 'assets', `${SHA}.thumb.webp`), 'RIFF....WEBP');
  const listeners = new Map<string, Set<(p: unknown) => void>>();
  const calls: { name: string; args: unknown }[] = [];
  let settings: Settings = {
    dataDir,
    preferredProvider: 'auto',
    theme: 'system',
    thirdPartyMirrors: true,
    exportNoteAndTags: false,
  };
  const item: GalleryItem = {
    id: 1,
    runId: 1,
    kind: 'import',
    sha256: SHA,
    title: 'one.png',
    width: 1,
    height: 1,
    favourite: false,
    createdAt: 0,
  };

  const notImplemented = (name: string) => async () => {
    throw new StudioError('NotImplemented', `${name} is not in the fake studio`);
  };
  const record =
    <A, R>(name: string, fn: (args: A) => Promise<R>) =>
    async (args: A) => {
      calls.push({ name, args });
      return fn(args);
    };

  const handlers = {
    getSystemInfo: notImplemented('getSystemInfo'),
    getSettings: record('getSettings', async () => settings),
    updateSettings: record('updateSettings', async (patch: Partial<Settings>) => {
      settings = { ...settings, ...patch };
      return settings;
    }),
    galleryQuery: record('galleryQuery', async () => ({ total: 1, offset: 0, items: [item] })),
    getItem: record('getItem', async ({ id }: { id: number }) => {
      if (id === 500) throw new Error('database is on fire\n    at secret (/home/user/secret.ts:1:1)');
      throw new StudioError('NotFound', `No item ${id}.`);
    }),
    setFavourite: notImplemented('setFavourite'),
    setNote: notImplemented('setNote'),
    setTags: notImplemented('setTags'),
    deleteItems: notImplemented('deleteItems'),
    undoDelete: notImplemented('undoDelete'),
    importImages: record('importImages', async ({ files }: { files: { name: string; data: Uint8Array }[] }) => ({
      imported: files.map((f, i) => ({ ...item, id: i + 1, title: `${f.name}:${f.data.length}` })),
      duplicates: [],
      failed: [],
    })),
    exportItem: record('exportItem', async () => ({ name: 'one.png', mime: 'image/png', data: PNG_BYTES })),
    jobList: record('jobList', async ({ ids }: { ids?: string[] }) =>
      [...jobs.values()].filter((j) => !ids || ids.includes(j.jobId)),
    ),
  } as unknown as StudioHandlers;

  const jobs = new Map<string, JobStatus>();
  const studio: FakeStudio = {
    dataDir,
    handlers,
    calls,
    jobs,
    assetOverride: null,
    on(name, listener) {
      let set = listeners.get(name);
      if (!set) listeners.set(name, (set = new Set()));
      set.add(listener as (p: unknown) => void);
      return () => set.delete(listener as (p: unknown) => void);
    },
    emit(name, payload) {
      for (const l of listeners.get(name) ?? []) l(payload);
    },
    async assetFile(sha: string, variant: AssetVariant) {
      if (studio.assetOverride) return studio.assetOverride;
      if (sha !== SHA) return null;
      return variant === 'file'
        ? { path: path.join(dataDir, 'assets', SHA), mime: 'image/png' }
        : { path: path.join(dataDir, 'assets', `${SHA}.thumb.webp`), mime: 'image/webp' };
    },
    async close() {},
  };
  return studio;
}
