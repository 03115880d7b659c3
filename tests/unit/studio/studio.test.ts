import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { apiCalls, apiEvents, type EventName, type EventPayload } from '../../../src/shared/api.js';
import { History } from '../../../src/main/studio/history.js';
import { openStudio, type StudioService } from '../../../src/main/studio/index.js';
import { readImageMetadata, readTextChunks } from '../../../src/main/studio/pngmeta.js';
import {
  A1111_SAMPLE,
  addTextChunks,
  COMFY_PROMPT,
  INVOKE_METADATA,
  itxtChunk,
  makeGif,
  makeJpeg,
  makePng,
  makeWebp,
  pngBomb,
  textChunk,
  truncate,
} from '../../fixtures/images.js';

const root = mkdtempSync(join(tmpdir(), 'fs-studio-'));
let n = 0;
const newDir = () => join(root, `d${n++}`);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Calls a handler the way a transport does: arguments and result through the zod schemas. */
async function call<K extends keyof typeof apiCalls>(s: StudioService, name: K, args: unknown) {
  const parsed = apiCalls[name].args.parse(args);
  const result = await (s.handlers[name] as (a: unknown) => Promise<unknown>)(parsed);
  return apiCalls[name].result.parse(result) as Awaited<ReturnType<StudioService['handlers'][K]>>;
}

function record<K extends EventName>(s: StudioService, name: K): EventPayload<K>[] {
  const seen: EventPayload<K>[] = [];
  s.on(name, (p) => seen.push(apiEvents[name].parse(p) as EventPayload<K>));
  return seen;
}

describe('import', () => {
  it('imports each file independently: bad ones fail with clear errors, duplicates are reported', async () => {
    const s = await openStudio({ dataDir: newDir() });
    const progress = record(s, 'importProgress');
    const changed = record(s, 'galleryChanged');
    const a1111 = await makePng({ seed: 1, text: { parameters: A1111_SAMPLE } });
    const files = [
      { name: 'C:\\Users\\me\\a1111.png', data: a1111 },
      { name: 'comfy.png', data: await makePng({ seed: 2, text: { prompt: COMFY_PROMPT } }) },
      { name: 'photo.jpg', data: await makeJpeg({ seed: 3 }) },
      { name: 'anim.gif', data: await makeGif({ seed: 4 }) },
      { name: 'pic.webp', data: await makeWebp({ seed: 5 }) },
      { name: 'notes.txt', data: Buffer.from('these are not pixels') },
      { name: 'cut.png', data: truncate(await makePng({ seed: 6, width: 200, height: 200 })) },
      { name: 'cut.jpg', data: truncate(await makeJpeg({ seed: 7, width: 200, height: 200 })) },
      { name: 'bomb.png', data: pngBomb(30000, 30000) },
      { name: 'again.png', data: a1111 },
    ];
    const r = await call(s, 'importImages', { files });
    expect(r.imported.map((i) => i.title)).toEqual([
      'a castle on a hill, (masterpiece:1.2), golden hour',
      'beautiful scenery nature glass bottle landscape, purple galaxy bottle',
      'photo.jpg',
      'anim.gif',
      'pic.webp',
    ]);
    expect(r.duplicates).toEqual([{ name: 'again.png', item: r.imported[0] }]);
    const errors = Object.fromEntries(r.failed.map((f) => [f.name, f.error]));
    expect(Object.keys(errors)).toEqual(['notes.txt', 'cut.png', 'cut.jpg', 'bomb.png']);
    expect(errors['notes.txt']).toBe('not an image: notes.txt (expected PNG, JPEG, WebP or GIF)');
    expect(errors['cut.png']).toMatch(/^cut\.png is truncated or corrupt/);
    expect(errors['cut.jpg']).toMatch(/^cut\.jpg is truncated or corrupt/);
    expect(errors['bomb.png']).toMatch(/30000x30000 \(900\.0 megapixels\), over the limit of 100\.0 megapixels/);
    expect(progress.map((p) => p.done)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(progress.every((p) => p.total === 10)).toBe(true);
    expect(changed).toEqual([{ reason: 'import', ids: r.imported.map((i) => i.id) }]);

    // Files are content-addressed; thumbnails are 256 px WebP at most.
    const first = r.imported[0]!;
    expect(first.sha256).toBe(sha(a1111));
    const f = await s.assetFile(first.sha256, 'file');
    expect(relative(s.dataDir, f!.path)).toBe(join('assets', first.sha256.slice(0, 2), `${first.sha256}.png`));
    expect(sha(readFileSync(f!.path))).toBe(first.sha256);
    const big = await call(s, 'importImages', {
      files: [{ name: 'big.png', data: await makePng({ seed: 8, width: 600, height: 300 }) }],
    });
    const t = await s.assetFile(big.imported[0]!.sha256, 'thumb');
    expect(t!.mime).toBe('image/webp');
    const tm = await sharp(t!.path).metadata();
    expect([tm.format, tm.width, tm.height]).toEqual(['webp', 256, 128]);
    expect(big.imported[0]).toMatchObject({ width: 600, height: 300 });
    await s.close();
  });

  it('records an import run with the file name and parsed metadata, searchable by prompt, file name and parameters', async () => {
    const s = await openStudio({ dataDir: newDir() });
    const r = await call(s, 'importImages', {
      files: [
        { name: 'invoke_cabin.png', data: await makePng({ seed: 20, text: { invokeai_metadata: INVOKE_METADATA } }) },
        { name: 'castle.png', data: await makePng({ seed: 21, text: { parameters: A1111_SAMPLE } }) },
      ],
    });
    const [cabin, castle] = r.imported as [(typeof r.imported)[0], (typeof r.imported)[0]];
    const d = await call(s, 'getItem', { id: cabin.id });
    expect(d.fileName).toBe('invoke_cabin.png');
    expect(d.item.kind).toBe('import');
    expect(d.metadata).toMatchObject({
      source: 'invokeai',
      prompt: 'a cozy cabin in the snowy woods, warm light',
      negativePrompt: 'people, cars',
    });
    expect(d.spec).toMatchObject({
      fileName: 'invoke_cabin.png',
      metadata: { source: 'invokeai', prompt: 'a cozy cabin in the snowy woods, warm light' },
    });
    expect(d.provenance).toMatchObject({ appVersion: expect.any(String), importedFrom: 'invoke_cabin.png' });
    const ids = async (text: string) => (await call(s, 'galleryQuery', { text })).items.map((i) => i.id);
    expect(await ids('cozy cab')).toEqual([cabin.id]);
    expect(await ids('invoke_cabin')).toEqual([cabin.id]);
    expect(await ids('Juggernaut')).toEqual([cabin.id]); // model name from the metadata
    expect(await ids('Karras')).toEqual([castle.id]); // sampler
    expect(await ids('blurry')).toEqual([castle.id]); // negative prompt
    expect(await ids('zebra')).toEqual([]);
    await s.close();
  });
});

describe('gallery', () => {
  it('favourite, note, tags, kind/date filters and paging', async () => {
    const s = await openStudio({ dataDir: newDir() });
    const changed = record(s, 'galleryChanged');
    const r = await call(s, 'importImages', {
      files: await Promise.all(
        Array.from({ length: 7 }, async (_, i) => ({ name: `img${i}.png`, data: await makePng({ seed: 100 + i }) })),
      ),
    });
    const ids = r.imported.map((i) => i.id);
    const all = await call(s, 'galleryQuery', {});
    expect(all.total).toBe(7);
    expect(all.items.map((i) => i.id)).toEqual([...ids].reverse());
    const p2 = await call(s, 'galleryQuery', { limit: 3, offset: 3, sort: 'oldest' });
    expect([p2.total, p2.offset, p2.items.map((i) => i.id)]).toEqual([7, 3, ids.slice(3, 6)]);

    const fav = await call(s, 'setFavourite', { id: ids[2], favourite: true });
    expect(fav.favourite).toBe(true);
    expect((await call(s, 'galleryQuery', { favourite: true })).items.map((i) => i.id)).toEqual([ids[2]]);
    await call(s, 'setNote', { id: ids[4], note: 'ノート: the best one' });
    await call(s, 'setTags', { id: ids[5], tags: ['portfolio', ' portfolio ', 'blue'] });
    const d4 = await call(s, 'getItem', { id: ids[4] });
    expect(d4.note).toBe('ノート: the best one');
    expect((await call(s, 'getItem', { id: ids[5] })).tags).toEqual(['blue', 'portfolio']);
    expect((await call(s, 'galleryQuery', { text: 'ノート' })).items.map((i) => i.id)).toEqual([ids[4]]);
    expect((await call(s, 'galleryQuery', { text: 'portfolio' })).items.map((i) => i.id)).toEqual([ids[5]]);
    expect((await call(s, 'galleryQuery', { kind: 'generate' })).total).toBe(0);
    expect((await call(s, 'galleryQuery', { kind: 'import', to: 0 })).total).toBe(0);
    expect((await call(s, 'galleryQuery', { from: all.items.at(-1)!.createdAt })).total).toBe(7);
    expect(changed.map((c) => c.reason)).toEqual(['import', 'update', 'update', 'update']);

    await expect(call(s, 'getItem', { id: 9999 })).rejects.toMatchObject({ name: 'NotFound' });
    await expect(call(s, 'setFavourite', { id: 9999, favourite: true })).rejects.toMatchObject({ name: 'NotFound' });
    await s.close();
  });

  it('delete moves files to the trash and hides the rows; undo brings both back; it all survives a restart', async () => {
    const dir = newDir();
    let s = await openStudio({ dataDir: dir });
    const r = await call(s, 'importImages', {
      files: await Promise.all(
        [1, 2, 3].map(async (i) => ({ name: `x${i}.png`, data: await makePng({ seed: 200 + i }) })),
      ),
    });
    const [a, b, c] = r.imported as [(typeof r.imported)[0], (typeof r.imported)[0], (typeof r.imported)[0]];
    await call(s, 'setFavourite', { id: b.id, favourite: true });
    const aFile = (await s.assetFile(a.sha256, 'file'))!.path;
    const del = await call(s, 'deleteItems', { ids: [a.id, b.id, 424242] });
    expect(del.deleted).toBe(2);
    expect(existsSync(aFile)).toBe(false);
    expect(readdirSync(join(dir, 'trash', del.undoToken), { recursive: true })).toEqual(
      expect.arrayContaining([
        join('assets', a.sha256.slice(0, 2), `${a.sha256}.png`),
        join('thumbs', a.sha256.slice(0, 2), `${a.sha256}.webp`),
      ]),
    );
    expect(await s.assetFile(a.sha256, 'file')).toBeNull();
    expect((await call(s, 'galleryQuery', {})).items.map((i) => i.id)).toEqual([c.id]);
    await expect(call(s, 'getItem', { id: a.id })).rejects.toMatchObject({ name: 'NotFound' });

    await s.close();
    s = await openStudio({ dataDir: dir }); // the trash survives a restart, and so does undo
    const undo = await call(s, 'undoDelete', { undoToken: del.undoToken });
    expect(undo.restored).toBe(2);
    expect(existsSync(aFile)).toBe(true);
    expect(existsSync(join(dir, 'trash', del.undoToken))).toBe(false);
    const after = await call(s, 'galleryQuery', {});
    expect(after.items.map((i) => [i.id, i.favourite])).toEqual([
      [c.id, false],
      [b.id, true],
      [a.id, false],
    ]);
    await expect(call(s, 'undoDelete', { undoToken: del.undoToken })).rejects.toMatchObject({ name: 'NotFound' });
    await expect(call(s, 'undoDelete', { undoToken: '../../etc' })).rejects.toMatchObject({ name: 'NotFound' });
    await s.close();
  });

  it('empties trash older than 30 days at open, files and rows', async () => {
    const dir = newDir();
    let s = await openStudio({ dataDir: dir });
    const r = await call(s, 'importImages', {
      files: [
        { name: 'old.png', data: await makePng({ seed: 300 }) },
        { name: 'new.png', data: await makePng({ seed: 301 }) },
      ],
    });
    const [old, recent] = r.imported as [(typeof r.imported)[0], (typeof r.imported)[0]];
    const d1 = await call(s, 'deleteItems', { ids: [old.id] });
    const d2 = await call(s, 'deleteItems', { ids: [recent.id] });
    await s.close();
    const h = History.open(join(dir, 'history.db'));
    h.db.prepare('UPDATE images SET trashed_at = ? WHERE id = ?').run(Date.now() - 31 * 24 * 3600 * 1000, old.id);
    h.close();
    s = await openStudio({ dataDir: dir });
    expect(s.openReport.trashPurged).toBe(1);
    expect(existsSync(join(dir, 'trash', d1.undoToken))).toBe(false);
    expect(existsSync(join(dir, 'trash', d2.undoToken))).toBe(true);
    await expect(call(s, 'undoDelete', { undoToken: d1.undoToken })).rejects.toMatchObject({ name: 'NotFound' });
    expect((await call(s, 'undoDelete', { undoToken: d2.undoToken })).restored).toBe(1);
    await s.close();
    const h2 = History.open(join(dir, 'history.db'));
    expect(h2.getAsset(old.sha256)).toBeNull();
    expect(h2.db.prepare('SELECT count(*) AS n FROM runs').get()).toEqual({ n: 1 });
    h2.close();
  });
});

describe('export', () => {
  it('writes our JSON chunk and an A1111 chunk; the exported PNG parses back to the same metadata', async () => {
    const s = await openStudio({ dataDir: newDir() });
    const original = addTextChunks(await makePng({ seed: 400 }), [
      textChunk('parameters', A1111_SAMPLE),
      textChunk('Software', 'AUTOMATIC1111'),
      itxtChunk('Title', '夕焼け 🌅'),
    ]);
    const r = await call(s, 'importImages', { files: [{ name: 'sunset.png', data: original }] });
    const id = r.imported[0]!.id;
    await call(s, 'setNote', { id, note: 'exported' });
    const before = (await call(s, 'getItem', { id })).metadata;
    const ex = await call(s, 'exportItem', { id });
    expect([ex.name, ex.mime]).toEqual(['sunset.png', 'image/png']);
    const back = readImageMetadata(ex.data);
    expect(back.source).toBe('foundation-studio');
    expect([back.prompt, back.negativePrompt, back.parameters]).toEqual([
      before.prompt,
      before.negativePrompt,
      before.parameters,
    ]);
    // The original's chunks are kept as they were (A1111 parameters not duplicated).
    const kw = readTextChunks(ex.data).map((t) => t.keyword);
    expect(kw.filter((k) => k === 'parameters')).toHaveLength(1);
    expect(kw).toEqual(expect.arrayContaining(['Software', 'Title', 'foundation-studio']));
    expect(back.raw.parameters).toBe(A1111_SAMPLE);
    expect(JSON.parse(back.raw['foundation-studio']!)).toMatchObject({
      note: 'exported',
      image: { fileName: 'sunset.png' },
    });
    // Same pixels.
    const [p0, p1] = await Promise.all([
      sharp(original).raw().toBuffer(),
      sharp(Buffer.from(ex.data)).raw().toBuffer(),
    ]);
    expect(p0.equals(p1)).toBe(true);
    // Re-importing the export is a new file whose metadata reads as ours.
    const again = await call(s, 'importImages', { files: [{ name: ex.name, data: ex.data }] });
    expect((await call(s, 'getItem', { id: again.imported[0]!.id })).metadata.prompt).toBe(before.prompt);
    await s.close();
  });

  it('re-encodes a PNG whose ancillary chunk has a bad CRC (libpng accepted it) instead of failing', async () => {
    const s = await openStudio({ dataDir: newDir() });
    const png = addTextChunks(await makePng({ seed: 403 }), [textChunk('parameters', A1111_SAMPLE)]);
    png.writeUInt8(png.readUInt8(33 + 8) ^ 0x01, 33 + 8); // first byte of the tEXt data: its CRC no longer matches
    const r = await call(s, 'importImages', { files: [{ name: 'badcrc.png', data: png }] });
    expect(r.failed).toEqual([]);
    const ex = await call(s, 'exportItem', { id: r.imported[0]!.id });
    expect(readImageMetadata(ex.data).source).toBe('foundation-studio');
    await s.close();
  });

  it('converts a JPEG to PNG and writes an A1111 chunk from the ComfyUI-derived metadata', async () => {
    const s = await openStudio({ dataDir: newDir() });
    const r = await call(s, 'importImages', {
      files: [
        { name: 'photo.jpeg', data: await makeJpeg({ seed: 401 }) },
        { name: 'comfy.png', data: await makePng({ seed: 402, text: { prompt: COMFY_PROMPT } }) },
      ],
    });
    const jpg = await call(s, 'exportItem', { id: r.imported[0]!.id });
    expect(jpg.name).toBe('photo.png');
    expect((await sharp(Buffer.from(jpg.data)).metadata()).format).toBe('png');
    expect(readImageMetadata(jpg.data).source).toBe('foundation-studio');
    const comfy = await call(s, 'exportItem', { id: r.imported[1]!.id });
    const chunks = Object.fromEntries(readTextChunks(comfy.data).map((t) => [t.keyword, t.text]));
    expect(chunks.parameters).toMatch(
      /^beautiful scenery nature glass bottle landscape, purple galaxy bottle\nNegative prompt: text, watermark\n/,
    );
    expect(chunks.parameters).toContain('Seed: 156680208700286');
    expect(chunks.prompt).toBe(COMFY_PROMPT); // the ComfyUI graph travels on
    await s.close();
  });
});

describe('settings, system info, asset paths', () => {
  it('persists settings atomically with defaults and emits settingsChanged', async () => {
    const dir = newDir();
    let s = await openStudio({ dataDir: dir });
    expect(await call(s, 'getSettings', {})).toEqual({
      dataDir: s.dataDir,
      preferredProvider: 'auto',
      theme: 'system',
    });
    const seen = record(s, 'settingsChanged');
    const next = await call(s, 'updateSettings', { theme: 'dark' });
    expect(next.theme).toBe('dark');
    expect(seen).toEqual([next]);
    await s.close();
    expect(JSON.parse(readFileSync(join(dir, 'settings.json'), 'utf8'))).toEqual({
      preferredProvider: 'auto',
      theme: 'dark',
    });
    writeFileSync(join(dir, 'settings.json'), '{"theme":"neon","preferredProvider":"cuda"}');
    s = await openStudio({ dataDir: dir });
    expect(await call(s, 'getSettings', {})).toMatchObject({ theme: 'system', preferredProvider: 'cuda' });
    await s.close();
  });

  it('probes execution providers only when asked, each with a reason', async () => {
    const s = await openStudio({ dataDir: newDir() });
    const info = await call(s, 'getSystemInfo', { probeProviders: true }); // result checked by the SystemInfo schema
    expect(info.providers.length).toBeGreaterThan(0);
    for (const p of info.providers) expect(p.reason.length).toBeGreaterThan(0);
    await s.close();
  });

  it('reports versions, the data folder and free disk', async () => {
    const s = await openStudio({ dataDir: newDir() });
    const info = await call(s, 'getSystemInfo', {});
    const pkg = JSON.parse(readFileSync(join(__dirname, '../../../package.json'), 'utf8')) as { version: string };
    expect(info).toMatchObject({
      appVersion: pkg.version,
      node: process.versions.node,
      dataDir: s.dataDir,
      electron: null,
      providers: [],
    });
    expect(info.freeDiskBytes).toBeGreaterThan(0);
    await s.close();
  });

  it('assetFile resolves only hashes it stores, only inside the data folder', async () => {
    const dir = newDir();
    const s = await openStudio({ dataDir: dir });
    const r = await call(s, 'importImages', { files: [{ name: 'a.png', data: await makePng({ seed: 500 }) }] });
    const h = r.imported[0]!.sha256;
    expect((await s.assetFile(h, 'file'))!.path.startsWith(s.dataDir)).toBe(true);
    for (const bad of ['../../etc/passwd', h.toUpperCase(), h + 'a', `${h.slice(0, 63)}/`, '', 'a'.repeat(64)])
      expect(await s.assetFile(bad, 'file')).toBeNull();
    expect(await s.assetFile(h, 'original' as 'file')).toBeNull();
    await s.close();
  });
});

describe('open-time repairs', () => {
  it('leaves the sweep to the process that holds the data folder, and takes over a stale lock', async () => {
    const dir = newDir();
    await (await openStudio({ dataDir: dir })).close();
    expect(existsSync(join(dir, 'studio.lock'))).toBe(false); // released on close
    const orphan = join(dir, 'assets', 'ee', `${'e'.repeat(64)}.png`);
    mkdirSync(join(dir, 'assets', 'ee'), { recursive: true });
    writeFileSync(orphan, 'being written by the other process');
    // A live process (our parent) holds the folder: no sweep.
    writeFileSync(join(dir, 'studio.lock'), `${process.ppid}\n`);
    let s = await openStudio({ dataDir: dir });
    expect(s.openReport.sweep).toEqual({ skipped: expect.stringContaining(`pid ${process.ppid}`) });
    expect(existsSync(orphan)).toBe(true);
    await s.close();
    expect(readFileSync(join(dir, 'studio.lock'), 'utf8')).toBe(`${process.ppid}\n`); // not ours to remove
    // Its process is gone: the lock is stale, taken over, and the sweep runs.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(join(dir, 'studio.lock'), `${dead}\n`);
    s = await openStudio({ dataDir: dir });
    expect(s.openReport).toMatchObject({ sweep: 'done', orphanFilesRemoved: 1 });
    expect(readFileSync(join(dir, 'studio.lock'), 'utf8')).toBe(`${process.pid}\n`);
    await s.close();
    expect(existsSync(orphan)).toBe(false);
  });

  it('sweeps temp and orphan files, rebuilds missing thumbnails, drops rows whose file is gone', async () => {
    const dir = newDir();
    let s = await openStudio({ dataDir: dir });
    const r = await call(s, 'importImages', {
      files: await Promise.all(
        [1, 2, 3].map(async (i) => ({ name: `r${i}.png`, data: await makePng({ seed: 600 + i }) })),
      ),
    });
    const [a, b, c] = r.imported as [(typeof r.imported)[0], (typeof r.imported)[0], (typeof r.imported)[0]];
    const aThumb = (await s.assetFile(a.sha256, 'thumb'))!.path;
    const bFile = (await s.assetFile(b.sha256, 'file'))!.path;
    await s.close();
    const orphan = 'f'.repeat(64);
    mkdirSync(join(dir, 'assets', 'ff'), { recursive: true });
    writeFileSync(join(dir, 'assets', 'ff', `${orphan}.png`), 'orphan');
    writeFileSync(join(dir, 'assets', 'ff', '.0123abcd.tmp'), 'half');
    mkdirSync(join(dir, 'thumbs', 'ff'), { recursive: true });
    writeFileSync(join(dir, 'thumbs', 'ff', `${orphan}.webp`), 'orphan');
    rmSync(aThumb);
    rmSync(bFile);
    s = await openStudio({ dataDir: dir });
    expect(s.openReport).toMatchObject({
      quickCheck: 'ok',
      tempFilesRemoved: 1,
      orphanFilesRemoved: 1,
      orphanThumbsRemoved: 1,
      thumbsRebuilt: 1,
      missingFiles: [{ sha256: b.sha256, imageIds: [b.id] }],
    });
    expect(existsSync(aThumb)).toBe(true);
    expect(readdirSync(join(dir, 'assets', 'ff'))).toEqual([]);
    expect((await call(s, 'galleryQuery', {})).items.map((i) => i.id)).toEqual([c.id, a.id]);
    await s.close();
  });
});
