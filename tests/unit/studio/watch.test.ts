// Watched folders end to end: a real studio on a temp data folder follows a temp "outputs" folder
// with the real watcher (chokidar on inotify here). Files written slowly are imported once, whole;
// a partial write that pauses is not imported early; renames and deletes are followed; a rescan at
// the next start imports what arrived while the studio was closed, and nothing twice.
import {
  appendFileSync,
  mkdirSync,
  mkdtempSync,
  renameSync,
  rmSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openStudio, type StudioService } from '../../../src/main/studio/index.js';
import { A1111_SAMPLE, makePng } from '../../fixtures/images.js';

const root = mkdtempSync(join(tmpdir(), 'fs-watch-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const QUIET = 300;

async function setup(opts: { mirrorDeletes?: boolean } = {}) {
  const dataDir = join(root, `data${n}`);
  const outputs = join(root, `outputs${n++}`);
  mkdirSync(outputs, { recursive: true });
  const s = await open(dataDir);
  const folder = await s.handlers.watchAdd({ path: outputs, mirrorDeletes: opts.mirrorDeletes ?? false });
  await until(s, async () => (await s.handlers.watchList({}))[0]?.state === 'watching');
  return { s, dataDir, outputs, folder };
}

const open = (dataDir: string) => openStudio({ dataDir, watchFolders: true, watchQuietMs: QUIET });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(s: StudioService, cond: () => Promise<boolean>, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting for the watcher');
    await sleep(50);
  }
  await s.watch.idle();
}

const items = async (s: StudioService) =>
  (await s.handlers.galleryQuery({ sort: 'newest', offset: 0, limit: 100 })).items;
const png = (seed: number) => makePng({ seed, width: 96, height: 96, text: { parameters: A1111_SAMPLE } });

describe('watched folders', () => {
  it('imports a file written slowly once it is whole, never a partial write that paused', async () => {
    const { s, outputs } = await setup();
    const data = await png(1);
    const file = join(outputs, '00001-123.png');
    // Half, then a pause longer than the quiet period: the half file is tried, and is not an image yet.
    writeFileSync(file, data.subarray(0, Math.floor(data.length / 2)));
    await until(s, async () => (await s.handlers.watchList({}))[0]!.failed === 1);
    expect(await items(s)).toHaveLength(0);
    // The rest in small pieces, each within the quiet period of the last.
    const rest = data.subarray(Math.floor(data.length / 2));
    for (let i = 0; i < rest.length; i += 2048) {
      appendFileSync(file, rest.subarray(i, i + 2048));
      await sleep(QUIET / 3);
    }
    await until(s, async () => (await items(s)).length === 1);
    const [item] = await items(s);
    expect((await s.handlers.getItem({ id: item!.id })).metadata.source).toBe('automatic1111');
    expect((await s.handlers.watchList({}))[0]).toMatchObject({ files: 1, failed: 0, pending: 0 });
    await s.close();
  });

  it('follows files renamed in, renamed within, and deleted (mirrorDeletes: to the trash; otherwise kept)', async () => {
    for (const mirrorDeletes of [true, false]) {
      const { s, outputs } = await setup({ mirrorDeletes });
      const outside = join(root, `elsewhere-${n}.png`);
      writeFileSync(outside, await png(10));
      renameSync(outside, join(outputs, 'a.png')); // renamed in: one event, the file whole
      await until(s, async () => (await items(s)).length === 1);
      const [a] = await items(s);
      // Renamed within the folder (into a subfolder too): the same content, nothing new.
      mkdirSync(join(outputs, 'sub'));
      renameSync(join(outputs, 'a.png'), join(outputs, 'sub', 'b.png'));
      await sleep(QUIET * 3);
      await s.watch.idle();
      expect((await items(s)).map((i) => i.id)).toEqual([a!.id]);
      expect((await s.handlers.watchList({}))[0]).toMatchObject({ files: 1 });
      // Deleted.
      unlinkSync(join(outputs, 'sub', 'b.png'));
      await until(s, async () => (await s.handlers.watchList({}))[0]!.files === 0);
      expect((await items(s)).map((i) => i.id)).toEqual(mirrorDeletes ? [] : [a!.id]);
      await s.close();
    }
  });

  it('rescans at start: imports what arrived while closed, and nothing it had already', async () => {
    const { s, dataDir, outputs } = await setup();
    writeFileSync(join(outputs, 'one.png'), await png(20));
    await until(s, async () => (await items(s)).length === 1);
    await s.close();
    // While the studio is closed: two new files, one in a new subfolder, and a non-image.
    writeFileSync(join(outputs, 'two.png'), await png(21));
    mkdirSync(join(outputs, '2024-05-01'));
    writeFileSync(join(outputs, '2024-05-01', 'three.png'), await png(22));
    const made = new Date('2024-05-01T12:00:00Z');
    utimesSync(join(outputs, '2024-05-01', 'three.png'), made, made);
    writeFileSync(join(outputs, 'notes.txt'), 'not an image');
    const again = await open(dataDir);
    const imports: number[] = [];
    again.on('galleryChanged', (e) => e.reason === 'import' && imports.push(...e.ids));
    await until(again, async () => (await items(again)).length === 3);
    expect(imports).toHaveLength(2); // one.png was not imported again
    expect((await again.handlers.watchList({}))[0]).toMatchObject({ files: 3, failed: 0, state: 'watching' });
    // A file's modification time is its date in the gallery.
    expect((await items(again)).filter((i) => i.createdAt === made.getTime())).toHaveLength(1);
    await again.close();
  });

  it('refuses folders that are not there, inside the data folder, or that hold it; and the same folder twice', async () => {
    const { s, dataDir, outputs } = await setup();
    await expect(s.handlers.watchAdd({ path: join(root, 'nope'), mirrorDeletes: false })).rejects.toMatchObject({
      name: 'InvalidArgument',
    });
    await expect(s.handlers.watchAdd({ path: join(dataDir, 'locks'), mirrorDeletes: false })).rejects.toMatchObject({
      name: 'InvalidArgument',
      message: expect.stringContaining('inside'),
    });
    await expect(s.handlers.watchAdd({ path: root, mirrorDeletes: false })).rejects.toMatchObject({
      name: 'InvalidArgument',
      message: expect.stringContaining('holds'),
    });
    await expect(s.handlers.watchAdd({ path: outputs, mirrorDeletes: false })).rejects.toMatchObject({
      name: 'AlreadyWatched',
    });
    const [f] = await s.handlers.watchList({});
    await s.handlers.watchRemove({ id: f!.id });
    expect(await s.handlers.watchList({})).toEqual([]);
    await s.close();
  });
});
