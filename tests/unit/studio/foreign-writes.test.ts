// Another process's writes to the same data folder reach the windows of this one as `galleryChanged`
// (PRAGMA data_version, checked while someone listens): an import by a second studio on the folder (as
// `fstudio import` opens one) is seen; this studio's own writes are not counted twice; export carries
// the note and tags only when asked.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { apiCalls, type EventPayload } from '../../../src/shared/api.js';
import { FOREIGN_WRITES_INTERVAL_MS } from '../../../src/main/studio/history-watch.js';
import { openStudio, type StudioService } from '../../../src/main/studio/index.js';
import { readTextChunks } from '../../../src/main/studio/png-chunks.js';
import { A1111_SAMPLE, makePng } from '../../fixtures/images.js';

const root = mkdtempSync(join(tmpdir(), 'fs-foreign-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function call<K extends keyof typeof apiCalls>(s: StudioService, name: K, args: unknown) {
  const parsed = apiCalls[name].args.parse(args);
  const result = await (s.handlers[name] as (a: unknown) => Promise<unknown>)(parsed);
  return apiCalls[name].result.parse(result) as Awaited<ReturnType<StudioService['handlers'][K]>>;
}

const wait = (ms: number) => new Promise((ok) => setTimeout(ok, ms));

describe('writes by another process', () => {
  it('reach this studio as galleryChanged, once per check, and only while someone listens', async () => {
    const dir = join(root, 'a');
    const here = await openStudio({ dataDir: dir, runQueue: false, watchFolders: false });
    const there = await openStudio({ dataDir: dir, runQueue: false, watchFolders: false });
    try {
      const seen: EventPayload<'galleryChanged'>[] = [];
      const off = here.on('galleryChanged', (p) => seen.push(p));
      await call(there, 'importImages', { files: [{ name: 'x.png', data: await makePng({ seed: 1 }) }] });
      await expect
        .poll(() => seen, { timeout: 5 * FOREIGN_WRITES_INTERVAL_MS })
        .toEqual([{ reason: 'update', ids: [] }]);
      // This studio's own import says so itself; the check does not add an 'update' for it.
      await call(here, 'importImages', { files: [{ name: 'y.png', data: await makePng({ seed: 2 }) }] });
      await wait(3 * FOREIGN_WRITES_INTERVAL_MS);
      expect(seen.map((p) => p.reason)).toEqual(['update', 'import']);
      // Nobody listening: nothing is checked (and nothing delivered).
      off();
      const later: unknown[] = [];
      await call(there, 'importImages', { files: [{ name: 'z.png', data: await makePng({ seed: 3 }) }] });
      const off2 = here.on('jobProgress', (p) => later.push(p)); // another event: no gallery check
      await wait(2 * FOREIGN_WRITES_INTERVAL_MS);
      off2();
      expect(seen).toHaveLength(2);
      expect(later).toEqual([]);
    } finally {
      await there.close();
      await here.close();
    }
  });
});

describe('export', () => {
  it('leaves the note and tags out unless asked (or the setting says so), and says what it carries', async () => {
    const s = await openStudio({ dataDir: join(root, 'b'), runQueue: false, watchFolders: false });
    try {
      const png = await makePng({ seed: 4, text: { parameters: A1111_SAMPLE } });
      const { imported } = await call(s, 'importImages', { files: [{ name: 'castle.png', data: png }] });
      const id = imported[0]!.id;
      await call(s, 'setNote', { id, note: 'my private thought' });
      await call(s, 'setTags', { id, tags: ['secret-tag'] });
      const text = (data: Uint8Array) =>
        readTextChunks(data)
          .map((c) => c.text)
          .join('\n');

      const plain = await call(s, 'exportItem', { id });
      expect(text(plain.data)).toContain('a castle on a hill');
      expect(text(plain.data)).not.toMatch(/my private thought|secret-tag/);
      expect(plain.carries).toEqual(['the prompt', 'the negative prompt', 'the generation parameters']);
      expect(plain.leftOut).toEqual(['your note', 'your tags']);

      const asked = await call(s, 'exportItem', { id, noteAndTags: true });
      expect(text(asked.data)).toMatch(/my private thought/);
      expect(text(asked.data)).toMatch(/secret-tag/);
      expect(asked.carries).toContain('your note');
      expect(asked.leftOut).toEqual([]);

      await call(s, 'updateSettings', { exportNoteAndTags: true });
      expect(text((await call(s, 'exportItem', { id })).data)).toMatch(/my private thought/);
    } finally {
      await s.close();
    }
  });
});
