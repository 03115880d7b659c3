import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { StudioError } from '../../../src/shared/api.js';
import { ftsMatch, parseSearchText } from '../../../src/main/studio/fts.js';
import { History, type HistoryQuery } from '../../../src/main/studio/history.js';
import { LATEST_VERSION, migrations } from '../../../src/main/studio/history-migrations.js';
import { openStudio } from '../../../src/main/studio/index.js';
import { databaseAtVersion, fakeAsset } from './history-fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'fs-history-'));
let n = 0;
const newDir = () => join(root, `d${n++}`);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const fileHash = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
const page = (q: Partial<HistoryQuery> = {}): HistoryQuery => ({ sort: 'newest', offset: 0, limit: 100, ...q });

function seed(
  h: History,
  rows: { prompt: string; fileName?: string; kind?: 'import' | 'generate'; createdAt: number }[],
) {
  return rows.map((r, i) => {
    const sha = createHash('sha256').update(`asset-${i}-${r.prompt}`).digest('hex');
    return h.transaction(() => {
      fakeAsset(h, sha);
      const runId = h.insertRun({
        kind: r.kind ?? 'import',
        title: r.prompt,
        spec: { prompt: r.prompt },
        provenance: {},
        createdAt: r.createdAt,
      });
      return h.insertImage(runId, {
        sha256: sha,
        fileName: r.fileName ?? null,
        metadata: null,
        createdAt: r.createdAt,
      });
    });
  });
}

describe('migrations', () => {
  it('creates a fresh database at the latest version in WAL mode, and reopens it unchanged', () => {
    const file = join(root, 'fresh.db');
    const h = History.open(file);
    expect(h.userVersion).toBe(LATEST_VERSION);
    expect(h.db.pragma('journal_mode', { simple: true })).toBe('wal');
    const tables = (
      h.db.prepare(`SELECT name FROM sqlite_master WHERE type IN ('table') ORDER BY name`).all() as { name: string }[]
    ).map((r) => r.name);
    expect(tables).toEqual(expect.arrayContaining(['runs', 'assets', 'images', 'tags', 'search']));
    h.close();
    const again = History.open(file);
    expect(again.userVersion).toBe(LATEST_VERSION);
    again.close();
  });

  it('runs only the pending migrations, all in one transaction', () => {
    const file = join(root, 'steps.db');
    const v1 = databaseAtVersion(file, 1);
    v1.exec(`INSERT INTO runs (kind, created_at) VALUES ('import', 1)`);
    v1.close();
    const extra = [
      ...migrations,
      {
        version: LATEST_VERSION + 1,
        up: (db: Database.Database) => db.exec(`ALTER TABLE runs ADD COLUMN extra TEXT DEFAULT 'x'`),
      },
      {
        version: LATEST_VERSION + 2,
        up: () => {
          throw new Error('boom');
        },
      },
    ];
    expect(() => History.open(file, { migrations: extra })).toThrow('boom');
    // The failed batch rolled back as a whole: neither the column nor the version moved.
    const h = History.open(file);
    expect(h.userVersion).toBe(LATEST_VERSION);
    expect((h.db.prepare(`SELECT * FROM runs`).get() as Record<string, unknown>).extra).toBeUndefined();
    h.close();
    const ok = History.open(file, { migrations: extra.slice(0, -1) });
    expect(ok.userVersion).toBe(LATEST_VERSION + 1);
    expect((ok.db.prepare(`SELECT extra FROM runs`).get() as { extra: string }).extra).toBe('x');
    ok.close();
  });

  it('refuses a database from a newer version, names both versions, and leaves the file byte-for-byte untouched', async () => {
    const dir = newDir();
    const s = await openStudio({ dataDir: dir });
    await s.close();
    const file = join(dir, 'history.db');
    // A "future" app bumps the version (and leaves the database in WAL mode, checkpointed).
    const db = new Database(file);
    db.pragma(`user_version = ${LATEST_VERSION + 41}`);
    db.exec('CREATE TABLE from_the_future (x)');
    db.close();
    expect(existsSync(`${file}-wal`)).toBe(false);
    const before = fileHash(file);
    const mtime = statSync(file).mtimeMs;

    const err = await openStudio({ dataDir: dir }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StudioError);
    expect((err as StudioError).code).toBe('DatabaseTooNew');
    expect((err as Error).message).toContain(`version ${LATEST_VERSION + 41}`);
    expect((err as Error).message).toContain(`up to ${LATEST_VERSION}`);
    expect((err as Error).message).toMatch(/update Foundation Studio/i);
    expect(() => History.open(file)).toThrow(/newer version/);
    expect(fileHash(file)).toBe(before);
    expect(statSync(file).mtimeMs).toBe(mtime);
    expect(existsSync(`${file}-wal`)).toBe(false);
  });

  it('refuses a newer database whose version change is still in its WAL, touching neither file', async () => {
    const dir = newDir();
    await (await openStudio({ dataDir: dir })).close();
    const live = join(dir, 'history.db');
    const copy = join(root, `wal-copy-${n++}`);
    mkdirSync(copy);
    // Snapshot the files while a "newer app" holds the database open with the change un-checkpointed.
    const db = new Database(live);
    db.pragma('wal_autocheckpoint = 0');
    db.pragma(`user_version = ${LATEST_VERSION + 1}`);
    copyFileSync(live, join(copy, 'history.db'));
    copyFileSync(`${live}-wal`, join(copy, 'history.db-wal'));
    db.close();
    const before = [fileHash(join(copy, 'history.db')), fileHash(join(copy, 'history.db-wal'))];
    await expect(openStudio({ dataDir: copy })).rejects.toMatchObject({ name: 'DatabaseTooNew' });
    expect([fileHash(join(copy, 'history.db')), fileHash(join(copy, 'history.db-wal'))]).toEqual(before);
  });

  it('refuses a damaged database with a message that says what to do', async () => {
    const dir = newDir();
    await (await openStudio({ dataDir: dir })).close();
    // Fill the history with enough rows to span several pages, then overwrite every page but the first.
    const db = new Database(join(dir, 'history.db'));
    const ins = db.prepare(`INSERT INTO runs (kind, title, created_at) VALUES ('import', ?, 1)`);
    for (let i = 0; i < 200; i++) ins.run('x'.repeat(500));
    db.close();
    const file = join(dir, 'history.db');
    const bytes = readFileSync(file);
    bytes.fill(0x55, 4096);
    writeFileSync(file, bytes);
    await expect(openStudio({ dataDir: dir })).rejects.toMatchObject({
      name: 'DatabaseCorrupt',
      message: expect.stringMatching(/move history\.db aside/),
    });
  });

  it('refuses a file that is not a SQLite database with a clear message', () => {
    const file = join(root, 'not-a-db.db');
    rmSync(file, { force: true });
    writeFileSync(file, 'this is not sqlite, it is a text file that is long enough '.repeat(4));
    expect(() => History.open(file)).toThrow(/not a SQLite database/);
  });
});

describe('history store', () => {
  it('CRUD: runs, images, favourites, notes, tags, and FTS over prompt, note, tag and file name', () => {
    const h = History.open(join(root, 'crud.db'));
    const [a, b, c, d] = seed(h, [
      { prompt: 'an astronaut riding a horse', fileName: 'space_horse.png', createdAt: 1000 },
      { prompt: 'a café in Paris at night', fileName: 'paris-cafe.jpg', createdAt: 2000 },
      { prompt: 'a bowl of fruit', kind: 'generate', createdAt: 3000 },
      { prompt: '富士山の夕焼け, mountain', createdAt: 500 },
    ]) as [number, number, number, number];
    expect(h.query(page()).rows.map((r) => r.id)).toEqual([c, b, a, d]);
    expect(h.query(page({ sort: 'oldest' })).rows.map((r) => r.id)).toEqual([d, a, b, c]);
    expect(h.query(page({ text: 'astro' })).rows.map((r) => r.id)).toEqual([a]); // prefix match on the last token
    expect(h.query(page({ text: 'cafe' })).rows.map((r) => r.id)).toEqual([b]); // diacritics folded
    expect(h.query(page({ text: '夕焼け' })).rows.map((r) => r.id)).toEqual([d]); // inside an unspaced run
    expect(h.query(page({ text: 'の夕 mount' })).rows.map((r) => r.id)).toEqual([d]); // mixed with a prefix word
    expect(h.query(page({ text: '夕焼け astronaut' })).total).toBe(0);
    expect(h.query(page({ text: 'space horse' })).rows.map((r) => r.id)).toEqual([a]); // file name words
    expect(h.query(page({ kind: 'generate' })).rows.map((r) => r.id)).toEqual([c]);
    expect(h.query(page({ from: 1500, to: 2500 })).rows.map((r) => r.id)).toEqual([b]);

    expect(h.setFavourite(b, true)).toBe(true);
    expect(h.query(page({ favourite: true })).rows.map((r) => r.id)).toEqual([b]);
    expect(h.query(page({ favourite: false })).total).toBe(3);

    expect(h.setNote(c, 'remember the lighting')).toBe(true);
    expect(h.query(page({ text: 'lighting' })).rows.map((r) => r.id)).toEqual([c]);
    expect(h.getImage(c)!.note).toBe('remember the lighting');
    expect(h.setTags(a, ['keeper', 'sci-fi'])).toBe(true);
    expect(h.tagsOf(a)).toEqual(['keeper', 'sci-fi']);
    expect(h.query(page({ text: 'keeper' })).rows.map((r) => r.id)).toEqual([a]);
    h.setTags(a, ['other']);
    expect(h.query(page({ text: 'keeper' })).total).toBe(0);

    // Paging: total counts everything, the page holds at most `limit`.
    const p = h.query(page({ limit: 2, offset: 1 }));
    expect(p.total).toBe(4);
    expect(p.rows.map((r) => r.id)).toEqual([b, a]);

    // Trash hides, untrash restores.
    const t = h.trash([a, b], 'tok-0000000000000000', 5000);
    expect(t.ids).toEqual([a, b]);
    expect(t.orphaned).toHaveLength(2);
    expect(h.query(page()).rows.map((r) => r.id)).toEqual([c, d]);
    expect(h.query(page({ text: 'astronaut' })).total).toBe(0);
    expect(h.untrash('tok-0000000000000000').ids.sort()).toEqual([a, b].sort());
    expect(h.query(page()).total).toBe(4);
    h.close();
  });

  it('never turns user text into an FTS5 syntax error', () => {
    const h = History.open(join(root, 'fts.db'));
    seed(h, [{ prompt: 'a "quoted" (weird) prompt: AND OR NOT near', createdAt: 1 }]);
    const nasty = [
      '"',
      '""',
      '"unterminated',
      'a AND',
      'OR',
      'NOT x',
      '(',
      ')',
      'foo)',
      'col:foo',
      '*',
      'a*b*',
      '^start',
      'NEAR(a b, 2)',
      '-minus',
      '+plus',
      '{a b}: c',
      "it's",
      '\u0000',
      '   ',
      '🙂',
      '日本語',
      '"富士',
      '富"士山',
      '夕焼け*',
      '山 "',
      'ab 夕焼け(',
      'x'.repeat(500),
    ];
    for (const text of nasty) expect(() => h.query(page({ text })), text).not.toThrow();
    expect(h.query(page({ text: 'quoted (weird' })).total).toBe(1);
    expect(h.query(page({ text: 'AND OR' })).total).toBe(1); // searched as words, not operators
    expect(h.query(page({ text: '"weird prompt"' })).total).toBe(1); // a phrase stays a phrase
    expect(h.query(page({ text: '"prompt weird"' })).total).toBe(0);
    h.close();
  });

  it('builds quoted, prefix-matched FTS expressions', () => {
    expect(ftsMatch('red car')).toBe('"red" "car"*');
    expect(ftsMatch('red car ')).toBe('"red" "car"');
    expect(ftsMatch('"red car" blue')).toBe('"red car" "blue"*');
    expect(ftsMatch('a"b')).toBe('"ab"*');
    expect(ftsMatch('!!! ...')).toBeNull();
    expect(parseSearchText('富士山 red 夕焼け')).toEqual({ match: '"red"', substrings: ['富士山', '夕焼け'] });
    expect(parseSearchText('red 夕焼け')).toEqual({ match: '"red"', substrings: ['夕焼け'] });
    expect(ftsMatch('')).toBeNull();
  });

  it('serves the default gallery page from an index, not a scan of images', () => {
    const h = History.open(join(root, 'plan.db'));
    seed(
      h,
      Array.from({ length: 50 }, (_, i) => ({ prompt: `p${i}`, createdAt: i })),
    );
    h.db.exec('ANALYZE');
    const plan = (q: HistoryQuery) => {
      const { page: sql, params } = h.buildQuery(q);
      return h.explain(sql, { ...params, limit: q.limit, offset: q.offset }).join('\n');
    };
    for (const q of [page(), page({ sort: 'oldest' }), page({ favourite: true }), page({ kind: 'generate' })]) {
      const p = plan(q);
      expect(p).toMatch(/(SCAN|SEARCH) i USING INDEX images_live_(created|favourite|kind)/);
      expect(p).not.toMatch(/SCAN i\b(?! USING)/);
      expect(p).not.toMatch(/TEMP B-TREE FOR ORDER BY/);
    }
    // With a text query the FTS index drives the search.
    expect(plan(page({ text: 'p1' }))).toMatch(/VIRTUAL TABLE INDEX/);
    h.close();
  });
});
