import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { apiCalls, apiEvents, type EventName, type EventPayload } from '../../../src/shared/api.js';
import { History } from '../../../src/main/studio/history.js';
import { openStudio, type StudioService } from '../../../src/main/studio/index.js';
import {
  FolderBusyError,
  processIdentity,
  registerOpen,
  SWEEP_STALE_MS,
  SWEEP_WAIT_MS,
} from '../../../src/main/studio/lock.js';
import { readImageMetadata } from '../../../src/main/studio/metadata/index.js';
import { readTextChunks } from '../../../src/main/studio/png-chunks.js';
import { checkedClose } from './history-fixtures.js';
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

/** What a live process `pid` would have written into a registration or sweep lock. */
const liveRecord = (pid: number) => `${pid} ${processIdentity(pid) ?? ''}\n`;

/** Spawns a tsx child script from this folder and resolves once it has printed `line`. */
function spawnChild(script: string, args: string[], line: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, script), ...args], {
    cwd: join(__dirname, '../../..'),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  let out = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((done) => child.on('exit', done));
  const ready = new Promise<void>((done, fail) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.split('\n').includes(line)) done();
    });
    void exited.then((code) => fail(new Error(`child exited (${code}) before "${line}": ${out} ${stderr}`)));
  });
  return { child, ready, exited, output: () => out };
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
    expect((await s.checked).trashPurged).toBe(1);
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
    await call(s, 'setTags', { id, tags: ['private-tag'] });
    const before = (await call(s, 'getItem', { id })).metadata;
    // By default the user's note and tags stay out of the file; the setting (or the call) puts them in.
    const plain = await call(s, 'exportItem', { id });
    const plainChunk = JSON.parse(readImageMetadata(plain.data).raw['foundation-studio']!);
    expect(plainChunk.note).toBeUndefined();
    expect(JSON.stringify(plainChunk)).not.toContain('private-tag');
    await call(s, 'updateSettings', { exportNoteAndTags: true });
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
    expect(back.raw['foundation-studio']).toContain('private-tag');
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
      thirdPartyMirrors: true,
      exportNoteAndTags: false,
    });
    const seen = record(s, 'settingsChanged');
    const next = await call(s, 'updateSettings', { theme: 'dark' });
    expect(next.theme).toBe('dark');
    expect(seen).toEqual([next]);
    await s.close();
    expect(JSON.parse(readFileSync(join(dir, 'settings.json'), 'utf8'))).toEqual({
      preferredProvider: 'auto',
      theme: 'dark',
      thirdPartyMirrors: true,
      exportNoteAndTags: false,
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
  it('sweeps only when no other process has the data folder open; stale registrations are removed', async () => {
    const dir = newDir();
    await checkedClose(await openStudio({ dataDir: dir }));
    expect(readdirSync(join(dir, 'locks'))).toEqual([]); // our registration is removed on close
    const orphan = join(dir, 'assets', 'ee', `${'e'.repeat(64)}.png`);
    mkdirSync(join(dir, 'assets', 'ee'), { recursive: true });
    writeFileSync(orphan, 'being written by the other process');
    // A live process (our parent) has the folder open: no sweep.
    writeFileSync(join(dir, 'locks', `${process.ppid}.pid`), liveRecord(process.ppid));
    let s = await openStudio({ dataDir: dir });
    expect((await s.checked).sweep).toEqual({ skipped: expect.stringContaining(`pid ${process.ppid}`) });
    expect(existsSync(orphan)).toBe(true);
    // A second open in this process does not sweep either (the first one may be importing).
    rmSync(join(dir, 'locks', `${process.ppid}.pid`));
    const second = await openStudio({ dataDir: dir });
    expect((await second.checked).sweep).toEqual({ skipped: expect.stringContaining('this process') });
    await second.close();
    await s.close();
    // A registration whose process is gone is stale: removed, and the sweep runs.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(join(dir, 'locks', `${dead}.pid`), `${dead}\n`);
    s = await openStudio({ dataDir: dir });
    expect(await s.checked).toMatchObject({ sweep: 'done', orphanFilesMoved: 1 });
    expect(readdirSync(join(dir, 'locks'))).toEqual([`${process.pid}.pid`]);
    await s.close();
    expect(existsSync(orphan)).toBe(false);
    expect(existsSync(join(dir, (await s.checked).orphansFolder!, 'assets', 'ee', `${'e'.repeat(64)}.png`))).toBe(true);
  });

  it('does not sweep while another process holds the folder open, whichever opened first', async () => {
    const dir = newDir();
    // A short command opens first, the app (the child) second, the short command ends: the
    // next short command must still not sweep, as the app may be importing right then.
    const first = await openStudio({ dataDir: dir });
    expect((await first.checked).sweep).toBe('done');
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'hold-child.ts'), dir], {
      cwd: join(__dirname, '../../..'),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const ready = await new Promise<string>((done, fail) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) done(out.trim());
      });
      child.on('exit', (code) => fail(new Error(`child exited (${code}) before it was ready: ${stderr}`)));
    });
    expect(ready).toMatch(/^ready \{"skipped":"another Foundation Studio process \(pid \d+\)/);
    await first.close();
    try {
      // What the child could be importing right now: a file under its real name, its row not yet in.
      const inFlight = join(dir, 'assets', 'dd', `${'d'.repeat(64)}.png`);
      mkdirSync(join(dir, 'assets', 'dd'), { recursive: true });
      writeFileSync(inFlight, 'the other process is importing this');
      const s = await openStudio({ dataDir: dir });
      expect((await s.checked).sweep).toEqual({ skipped: expect.stringContaining(`pid ${child.pid}`) });
      await s.close();
      expect(existsSync(inFlight)).toBe(true);
    } finally {
      const exited = new Promise((done) => child.on('exit', done));
      child.stdin.end();
      await exited;
    }
    // Once it has closed, the next open sweeps.
    const s = await openStudio({ dataDir: dir });
    expect(await s.checked).toMatchObject({ sweep: 'done', orphanFilesMoved: 1 });
    await s.close();
  });

  it('waits for a sweep another live process is running, and opens once it has finished', async () => {
    const dir = newDir();
    // The child holds locks/sweep.lock for a good second, then writes `swept` and lets go.
    const c = spawnChild('sweep-child.ts', [dir, '1500'], 'sweeping');
    try {
      await c.ready;
      expect(readdirSync(join(dir, 'locks'))).toContain('sweep.lock');
      const s = await openStudio({ dataDir: dir });
      // Only returned once the child's sweep was over (an open that did not wait returns before).
      expect(existsSync(join(dir, 'swept'))).toBe(true);
      expect(readdirSync(join(dir, 'locks'))).not.toContain('sweep.lock');
      await s.close();
    } finally {
      expect(await c.exited).toBe(0);
    }
    expect(c.output()).toContain('done');
  });

  it('waits for a live sweeper under a minute, then names the lock to delete; a stale one is taken over', async () => {
    expect(SWEEP_WAIT_MS).toBeLessThan(60_000);
    expect(SWEEP_WAIT_MS).toBeGreaterThan(SWEEP_STALE_MS); // a leftover lock ages out before the wait ends
    const dir = newDir();
    const lock = join(dir, 'locks', 'sweep.lock');
    mkdirSync(join(dir, 'locks'), { recursive: true });
    writeFileSync(lock, liveRecord(process.ppid)); // a live process, sweeping right now
    const err = await registerOpen(dir, { waitMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FolderBusyError);
    expect((err as Error).message).toMatch(new RegExp(`process \\(pid ${process.ppid}\\) is still checking`));
    expect((err as Error).message).toContain('locks/sweep.lock');
    expect((err as Error).message).toContain(
      `If no other Foundation Studio is running, the lock is left over: delete ${lock}`,
    );
    expect(readdirSync(join(dir, 'locks'))).toEqual(['sweep.lock']); // our registration did not stay

    // Not touched for longer than a sweeper's heartbeat allows: stale, whatever its pid says.
    const old = new Date(Date.now() - SWEEP_STALE_MS - 5_000);
    utimesSync(lock, old, old);
    (await registerOpen(dir, { waitMs: 0 })).release(); // no wait at all
    expect(readdirSync(join(dir, 'locks'))).toEqual([]);

    for (const stale of [spawnSync(process.execPath, ['-e', '0']).pid!, process.pid]) {
      // A process that is gone, or an earlier process that had our pid, left it.
      writeFileSync(lock, `${stale}\n`);
      const s = await openStudio({ dataDir: dir });
      expect((await s.checked).sweep).toBe('done');
      await s.close();
      expect(readdirSync(join(dir, 'locks'))).toEqual([]);
    }
  });

  it('keeps its sweep lock fresh while it sweeps', async () => {
    const dir = newDir();
    const lock = join(dir, 'locks', 'sweep.lock');
    const reg = await registerOpen(dir, { heartbeatMs: 50 });
    const refreshed = await reg.sweep(
      async () => {
        const old = new Date(Date.now() - 10 * 60_000);
        utimesSync(lock, old, old);
        for (let i = 0; i < 100 && statSync(lock).mtimeMs < Date.now() - 5 * 60_000; i++)
          await new Promise((r) => setTimeout(r, 50));
        return statSync(lock).mtimeMs > Date.now() - 5 * 60_000;
      },
      () => false,
    );
    reg.release();
    expect(refreshed).toBe(true);
    expect(existsSync(lock)).toBe(false);
  });

  it.runIf(process.platform === 'linux')(
    'takes a lock or registration whose pid now belongs to another process for a leftover',
    async () => {
      const me = processIdentity(process.pid);
      expect(me).toMatch(/^[0-9a-f-]+\/\d+$/);
      expect(processIdentity(process.pid)).toBe(me);
      expect(processIdentity(spawnSync(process.execPath, ['-e', '0']).pid!)).toBeNull();
      const dir = newDir();
      mkdirSync(join(dir, 'locks'), { recursive: true });
      const lock = join(dir, 'locks', 'sweep.lock');
      // Left by a process that crashed; after a reboot the pid went to init, or to our parent.
      for (const text of ['1\n', `${process.ppid}\n`, `${process.ppid} ${me}\n`]) {
        writeFileSync(lock, text); // just written: not stale by its age
        (await registerOpen(dir, { waitMs: 0 })).release(); // no wait at all
        expect(readdirSync(join(dir, 'locks'))).toEqual([]);
      }
      // The same for an open registration: the pid is alive, but it is not the studio that wrote it.
      const reg = join(dir, 'locks', `${process.ppid}.pid`);
      writeFileSync(reg, `${process.ppid} ${me}\n`);
      let s = await openStudio({ dataDir: dir });
      expect((await s.checked).sweep).toBe('done');
      await s.close();
      expect(existsSync(reg)).toBe(false);
      writeFileSync(reg, liveRecord(process.ppid)); // and the real one is still respected
      s = await openStudio({ dataDir: dir });
      expect((await s.checked).sweep).toEqual({ skipped: expect.stringContaining(`pid ${process.ppid}`) });
      await s.close();
      expect(existsSync(reg)).toBe(true);
    },
  );

  it('counts opens of one folder in this process by its real path (a symlink is the same folder)', async () => {
    const dir = newDir();
    const link = `${dir}-link`;
    mkdirSync(dir, { recursive: true });
    symlinkSync(dir, link, 'dir');
    const own = join(dir, 'locks', `${process.pid}.pid`);
    const first = await openStudio({ dataDir: dir });
    expect((await first.checked).sweep).toBe('done');
    const second = await openStudio({ dataDir: link });
    expect((await second.checked).sweep).toEqual({ skipped: expect.stringContaining('this process') });
    await second.close();
    expect(existsSync(own)).toBe(true); // the first open still has the folder open
    await first.close();
    expect(existsSync(own)).toBe(false);
  });

  it('sweeps temp files, moves orphans to the trash, rebuilds thumbnails, keeps rows whose file is gone', async () => {
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
    expect(await s.checked).toMatchObject({
      quickCheck: 'ok',
      tempFilesRemoved: 1,
      orphanFilesMoved: 1,
      orphanThumbsMoved: 1,
      thumbsRebuilt: 1,
      missingFiles: [{ sha256: b.sha256, path: `assets/${b.sha256.slice(0, 2)}/${b.sha256}.png`, imageIds: [b.id] }],
    });
    expect(existsSync(aThumb)).toBe(true);
    expect(readdirSync(join(dir, 'assets', 'ff'))).toEqual([]);
    const moved = join(dir, (await s.checked).orphansFolder!);
    expect(readFileSync(join(moved, 'assets', 'ff', `${orphan}.png`), 'utf8')).toBe('orphan');
    expect(readFileSync(join(moved, 'thumbs', 'ff', `${orphan}.webp`), 'utf8')).toBe('orphan');
    // b is still listed (its row is kept); importing the same bytes again puts its file back.
    expect((await call(s, 'galleryQuery', {})).items.map((i) => i.id)).toEqual([c.id, b.id, a.id]);
    expect(await s.assetFile(b.sha256, 'file')).toBeNull();
    await expect(call(s, 'exportItem', { id: b.id })).rejects.toThrow(
      /missing from the data folder.*Put it back from a backup, or delete the item and import the image again/,
    );
    const again = await call(s, 'importImages', { files: [{ name: 'r2.png', data: await makePng({ seed: 602 }) }] });
    expect(again.duplicates.map((d) => d.item.id)).toEqual([b.id]);
    expect((await s.assetFile(b.sha256, 'file'))!.path).toBe(bFile);
    await s.close();
    s = await openStudio({ dataDir: dir });
    expect((await s.checked).missingFiles).toEqual([]);
    await s.close();
  });

  async function threeImages(dir: string) {
    const s = await openStudio({ dataDir: dir });
    const r = await call(s, 'importImages', {
      files: await Promise.all(
        [1, 2, 3].map(async (i) => ({ name: `m${i}.png`, data: await makePng({ seed: 700 + i }) })),
      ),
    });
    await s.close();
    return r.imported.map((i) => i.id);
  }
  const listIds = async (dir: string) => {
    const s = await openStudio({ dataDir: dir });
    const ids = (await call(s, 'galleryQuery', {})).items.map((i) => i.id);
    return { s, ids };
  };
  const filesIn = (dir: string) =>
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => relative(dir, join(e.parentPath, e.name)))
      .sort();

  it('keeps every row and file when the assets folder is gone for a while, and works again once it is back', async () => {
    const dir = newDir();
    const ids = await threeImages(dir);
    const before = filesIn(join(dir, 'assets'));
    renameSync(join(dir, 'assets'), join(dir, 'assets.away')); // a drive not mounted, a folder moved by hand
    let { s, ids: listed } = await listIds(dir);
    expect(listed.sort()).toEqual([...ids].sort());
    expect((await s.checked).missingFiles.map((m) => m.imageIds[0]).sort()).toEqual([...ids].sort());
    expect((await s.checked).orphanFilesMoved).toBe(0);
    // The System page (and any API client) is told, in words.
    const problems = (await call(s, 'getSystemInfo', {})).dataFolderProblems;
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^3 image files are missing from the data folder .*put the files back/);
    await s.close();
    renameSync(join(dir, 'assets.away'), join(dir, 'assets'));
    ({ s, ids: listed } = await listIds(dir));
    expect(listed.sort()).toEqual([...ids].sort());
    expect(await s.checked).toMatchObject({ sweep: 'done', missingFiles: [], orphanFilesMoved: 0 });
    expect((await call(s, 'getSystemInfo', {})).dataFolderProblems).toEqual([]);
    for (const id of ids) expect((await call(s, 'exportItem', { id })).data.byteLength).toBeGreaterThan(0);
    await s.close();
    expect(filesIn(join(dir, 'assets'))).toEqual(before);
  });

  it('moves nothing and drops nothing when assets/ cannot be read, and says why', async () => {
    const dir = newDir();
    const ids = await threeImages(dir);
    const shard = readdirSync(join(dir, 'assets'))[0]!;
    renameSync(join(dir, 'assets', shard), join(dir, 'shard.away'));
    writeFileSync(join(dir, 'assets', shard), 'not a folder'); // readdir fails: ENOTDIR
    const before = filesIn(dir).filter((f) => !f.startsWith('locks'));
    const { s, ids: listed } = await listIds(dir);
    expect((await s.checked).sweep).toEqual({
      skipped: expect.stringMatching(/cannot read .*assets.*No file was moved and no gallery entry changed/),
    });
    expect((await s.checked).missingFiles).toEqual([]);
    expect(listed.sort()).toEqual([...ids].sort());
    await s.close();
    expect(filesIn(dir).filter((f) => !f.startsWith('locks') && !f.startsWith('history.db'))).toEqual(
      before.filter((f) => !f.startsWith('history.db')),
    );
  });

  it('keeps the files of images newer than a restored history.db, in the trash, and takes them back', async () => {
    const dir = newDir();
    let s = await openStudio({ dataDir: dir });
    const old = (await call(s, 'importImages', { files: [{ name: 'old.png', data: await makePng({ seed: 800 }) }] }))
      .imported[0]!;
    await s.close();
    const backup = join(dir, '..', `${relative(root, dir)}-backup.db`);
    copyFileSync(join(dir, 'history.db'), backup);
    s = await openStudio({ dataDir: dir });
    const newer = (
      await call(s, 'importImages', { files: [{ name: 'newer.png', data: await makePng({ seed: 801 }) }] })
    ).imported[0]!;
    const newerFile = (await s.assetFile(newer.sha256, 'file'))!.path;
    const newerBytes = readFileSync(newerFile);
    await s.close();
    copyFileSync(join(dir, 'history.db'), `${backup}.newer`);

    copyFileSync(backup, join(dir, 'history.db')); // the user restores yesterday's database
    s = await openStudio({ dataDir: dir });
    expect(await s.checked).toMatchObject({
      sweep: 'done',
      orphanFilesMoved: 1,
      orphanThumbsMoved: 1,
      missingFiles: [],
    });
    expect((await s.checked).orphansFolder).toMatch(/^trash\/orphans-\d+$/);
    const kept = join(dir, (await s.checked).orphansFolder!, relative(dir, newerFile));
    expect(readFileSync(kept)).toEqual(newerBytes); // moved, not deleted
    expect(existsSync(newerFile)).toBe(false);
    expect((await call(s, 'galleryQuery', {})).items.map((i) => i.id)).toEqual([old.id]);
    await s.close();

    copyFileSync(`${backup}.newer`, join(dir, 'history.db')); // ...and changes their mind
    s = await openStudio({ dataDir: dir });
    expect(await s.checked).toMatchObject({ missingFiles: [], restoredFromTrash: 1 });
    expect(readFileSync((await s.assetFile(newer.sha256, 'file'))!.path)).toEqual(newerBytes);
    expect(await s.assetFile(newer.sha256, 'thumb')).not.toBeNull();
    await s.close();
  });

  it('empties orphan folders and unreferenced trash only once they are older than the trash keeps things', async () => {
    const dir = newDir();
    await checkedClose(await openStudio({ dataDir: dir }));
    const day = 24 * 3600 * 1000;
    const oldOrphans = `orphans-${Date.now() - 31 * day}`;
    const newOrphans = `orphans-${Date.now() - 1 * day}`;
    const oldToken = `${(Date.now() - 31 * day).toString(36)}-0123456789abcdef`;
    const newToken = `${(Date.now() - 1 * day).toString(36)}-0123456789abcdef`;
    for (const f of [oldOrphans, newOrphans, oldToken, newToken]) {
      mkdirSync(join(dir, 'trash', f, 'assets', 'aa'), { recursive: true });
      writeFileSync(join(dir, 'trash', f, 'assets', 'aa', `${'a'.repeat(64)}.png`), 'x');
    }
    await checkedClose(await openStudio({ dataDir: dir }));
    expect(readdirSync(join(dir, 'trash')).sort()).toEqual([newOrphans, newToken].sort());
  });

  it('takes the only file of a live image back from old trash before emptying it (a history.db restored from before the delete)', async () => {
    const day = 24 * 3600 * 1000;
    const dir = newDir();
    let s = await openStudio({ dataDir: dir });
    const a = (await call(s, 'importImages', { files: [{ name: 'a.png', data: await makePng({ seed: 820 }) }] }))
      .imported[0]!;
    const aFile = (await s.assetFile(a.sha256, 'file'))!.path;
    const aBytes = readFileSync(aFile);
    await s.close();
    const backup = join(dir, '..', `${relative(root, dir)}-backup.db`);
    copyFileSync(join(dir, 'history.db'), backup);
    s = await openStudio({ dataDir: dir });
    const { undoToken } = await call(s, 'deleteItems', { ids: [a.id] });
    await s.close();
    // The delete was long ago: its trash folder is older than the trash keeps anything.
    const oldToken = `${(Date.now() - 35 * day).toString(36)}-${undoToken.split('-')[1]}`;
    renameSync(join(dir, 'trash', undoToken), join(dir, 'trash', oldToken));
    copyFileSync(backup, join(dir, 'history.db')); // the user restores the database from before the delete

    s = await openStudio({ dataDir: dir });
    expect(await s.checked).toMatchObject({ sweep: 'done', restoredFromTrash: 1, missingFiles: [] });
    expect(readFileSync((await s.assetFile(a.sha256, 'file'))!.path)).toEqual(aBytes);
    expect(await s.assetFile(a.sha256, 'thumb')).not.toBeNull();
    expect((await call(s, 'galleryQuery', {})).items.map((i) => i.id)).toEqual([a.id]);
    await s.close();
    expect(existsSync(join(dir, 'trash', oldToken))).toBe(false); // emptied once nothing live was left in it
  });

  it('takes the only file of a live image back from an old orphans folder before emptying it (a newer history.db put back)', async () => {
    const day = 24 * 3600 * 1000;
    const dir = newDir();
    await checkedClose(await openStudio({ dataDir: dir }));
    const backup = join(dir, '..', `${relative(root, dir)}-backup.db`);
    copyFileSync(join(dir, 'history.db'), backup);
    let s = await openStudio({ dataDir: dir });
    const a = (await call(s, 'importImages', { files: [{ name: 'a.png', data: await makePng({ seed: 821 }) }] }))
      .imported[0]!;
    const aBytes = readFileSync((await s.assetFile(a.sha256, 'file'))!.path);
    await s.close();
    copyFileSync(join(dir, 'history.db'), `${backup}.newer`);
    copyFileSync(backup, join(dir, 'history.db')); // an older database: A's files go to trash/orphans-*
    s = await openStudio({ dataDir: dir });
    expect(await s.checked).toMatchObject({ orphanFilesMoved: 1, orphanThumbsMoved: 1 });
    const orphans = (await s.checked).orphansFolder!.split('/')[1]!;
    await s.close();
    // ...long ago; only now is the newer database put back.
    const oldOrphans = `orphans-${Date.now() - 35 * day}`;
    renameSync(join(dir, 'trash', orphans), join(dir, 'trash', oldOrphans));
    copyFileSync(`${backup}.newer`, join(dir, 'history.db'));

    s = await openStudio({ dataDir: dir });
    expect(await s.checked).toMatchObject({ sweep: 'done', restoredFromTrash: 1, missingFiles: [], thumbsRebuilt: 0 });
    expect(readFileSync((await s.assetFile(a.sha256, 'file'))!.path)).toEqual(aBytes);
    expect(await s.assetFile(a.sha256, 'thumb')).not.toBeNull();
    await s.close();
    expect(existsSync(join(dir, 'trash', oldOrphans))).toBe(false);
  });
});
