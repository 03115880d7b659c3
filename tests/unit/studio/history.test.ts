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
import { COUNT_CAP, History, type HistoryQuery } from '../../../src/main/studio/history.js';
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

  it('migration 4 gives every image a sort key in gallery order, counts live images per day, re-keys the search index', () => {
    const file = join(root, 'v3.db');
    const db = databaseAtVersion(file, 3);
    const sha = (i: number) => createHash('sha256').update(`v3-${i}`).digest('hex');
    db.exec(
      `INSERT INTO runs (id, kind, title, created_at) VALUES (1, 'import', 'an owl', 5), (2, 'generate', 'a fox', 5)`,
    );
    const asset = db.prepare(`INSERT INTO assets VALUES (?, ?, 'image/png', 1, 1, 1, NULL)`);
    const image = db.prepare(
      `INSERT INTO images (id, run_id, kind, sha256, created_at, trashed_at, trash_token) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    const search = db.prepare(
      `INSERT INTO search (rowid, prompt, negative, labels, note, tags, file, meta) VALUES (?, ?, '', '', '', '', '', '')`,
    );
    // Three images in one millisecond (ids out of order), one a day later, one in the trash.
    const rows: [number, number, string, number, number | null][] = [
      [30, 1, 'import', 86_400_000 * 3, null],
      [12, 2, 'generate', 86_400_000 * 3, null],
      [20, 1, 'import', 86_400_000 * 3, null],
      [40, 2, 'generate', 86_400_000 * 4 + 7, null],
      [50, 1, 'import', 86_400_000 * 4 + 9, 99],
    ];
    for (const [id, run, kind, at, trashed] of rows) {
      asset.run(sha(id), `assets/${sha(id).slice(0, 2)}/${sha(id)}.png`);
      image.run(id, run, kind, sha(id), at, trashed, trashed ? 'tok-0123456789abcdef' : null);
      search.run(id, run === 1 ? 'an owl' : 'a fox');
    }
    db.close();
    const h = History.open(file);
    const keys = h.db.prepare('SELECT id, sort_key AS k FROM images ORDER BY sort_key').all() as {
      id: number;
      k: number;
    }[];
    expect(keys.map((r) => r.id)).toEqual([12, 20, 30, 40, 50]); // (created_at, id) order
    expect(keys[0]!.k).toBe(86_400_000 * 3 * 1024);
    expect(keys[2]!.k).toBe(86_400_000 * 3 * 1024 + 2);
    expect(h.db.prepare('SELECT day, kind, favourite, n FROM gallery_days ORDER BY day, kind').all()).toEqual([
      { day: 3, kind: 'generate', favourite: 0, n: 1 },
      { day: 3, kind: 'import', favourite: 0, n: 2 },
      { day: 4, kind: 'generate', favourite: 0, n: 1 },
    ]);
    // The search index: live images only, by sort key; the trashed one is searchable again once restored.
    expect(h.query(page({ text: 'owl' })).rows.map((r) => r.id)).toEqual([30, 20]);
    expect(h.query(page({ text: 'fox', sort: 'oldest' })).rows.map((r) => r.id)).toEqual([12, 40]);
    h.untrash('tok-0123456789abcdef');
    expect(h.query(page({ text: 'owl' })).rows.map((r) => r.id)).toEqual([50, 30, 20]);
    expect(h.query(page()).total).toBe(5);
    // A writer that gives no sort key (the sqlite3 shell) still gets one, after the others of its millisecond.
    h.db.exec(
      `INSERT INTO images (id, run_id, kind, sha256, created_at) VALUES (60, 1, 'import', '${sha(30)}', ${86_400_000 * 3})`,
    );
    expect(h.db.prepare('SELECT sort_key AS k FROM images WHERE id = 60').get()).toEqual({
      k: 86_400_000 * 3 * 1024 + 3,
    });
    expect(h.query(page()).total).toBe(6);
    h.close();
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

  it('answers every filter the gallery offers from a covering index, in order, by seek (never OFFSET over rows)', () => {
    const h = History.open(join(root, 'plan.db'));
    const ids = seed(
      h,
      Array.from({ length: 300 }, (_, i) => ({
        prompt: `p${i} ${i % 2 ? 'owl' : 'fox'}`,
        kind: i % 3 ? ('import' as const) : ('generate' as const),
        createdAt: 1_000_000 + i * 1000,
      })),
    );
    for (const id of ids.filter((_, i) => i % 7 === 0)) h.setFavourite(id, true);
    h.db.exec('ANALYZE');
    const plans = (q: HistoryQuery) => {
      const { page: sql, keyAt, count, params } = h.buildQuery(q);
      expect(sql).not.toMatch(/OFFSET/);
      return {
        page: h.explain(sql, { ...params, limit: q.limit }).join('\n'),
        keyAt: h.explain(keyAt, { ...params, offset: 10 }).join('\n'),
        count: h.explain(count, params).join('\n'),
      };
    };
    const filters: Partial<HistoryQuery>[] = [
      {},
      { sort: 'oldest' },
      { favourite: true },
      { favourite: false },
      { kind: 'generate' },
      { kind: 'generate', favourite: true },
      { from: 1_050_000, to: 1_200_000 },
      { kind: 'import', from: 1_050_000 },
    ];
    for (const f of filters) {
      const p = plans(page(f));
      const label = JSON.stringify(f);
      expect(p.page, label).toMatch(/(SCAN|SEARCH) i USING INDEX images_live_(key|kind_key|fav_key)/);
      expect(p.page, label).not.toMatch(/TEMP B-TREE/);
      // Seeking a position and counting an edge day read the index alone.
      expect(p.keyAt, label).toMatch(/(SCAN|SEARCH) i USING COVERING INDEX images_live_(key|kind_key|fav_key)/);
      expect(p.count, label).toMatch(/USING COVERING INDEX images_live_(key|kind_key|fav_key)/);
    }
    // A text query walks the FTS index in the gallery's order: no sort of the matches, and the
    // count reads the index alone unless a filter needs the images table.
    for (const f of [
      { text: 'owl' },
      { text: 'ow', sort: 'oldest' as const },
      { text: 'owl', kind: 'generate' as const },
    ]) {
      const p = plans(page(f));
      expect(p.page).toMatch(/^SCAN s VIRTUAL TABLE INDEX/);
      expect(p.page).not.toMatch(/TEMP B-TREE/);
      if (!('kind' in f)) expect(p.count).not.toMatch(/ i /);
    }
    h.close();
  });

  /** The reference: live images in the gallery's order by plain SQL over created_at and id (not sort_key). */
  const reference = (h: History, q: Partial<HistoryQuery>) => {
    const dir = q.sort === 'oldest' ? 'ASC' : 'DESC';
    const where = ['trashed_at IS NULL'];
    if (q.kind) where.push(`kind = '${q.kind}'`);
    if (q.favourite !== undefined) where.push(`favourite = ${q.favourite ? 1 : 0}`);
    if (q.from !== undefined) where.push(`created_at >= ${q.from}`);
    if (q.to !== undefined) where.push(`created_at <= ${q.to}`);
    if (q.text) where.push(`run_id IN (SELECT id FROM runs WHERE title LIKE '%${q.text}%')`);
    return (
      h.db
        .prepare(`SELECT id FROM images WHERE ${where.join(' AND ')} ORDER BY created_at ${dir}, id ${dir}`)
        .all() as { id: number }[]
    ).map((r) => r.id);
  };

  it('keyset paging returns every row exactly once while rows are inserted and deleted between pages', () => {
    const h = History.open(join(root, 'keyset.db'));
    let rng = 7;
    const rand = () => (rng = (rng * 48271) % 2147483647) / 2147483647;
    // Many images share a millisecond (an import of a folder copied at once), others are spread out.
    const at = (i: number) => (i % 5 === 0 ? 5_000_000 : 1_000_000 + Math.floor(rand() * 10_000_000));
    let n = 0;
    const add = (count: number, when: (i: number) => number) =>
      seed(
        h,
        Array.from({ length: count }, () => {
          const i = n++;
          return {
            prompt: `item${i} ${i % 3 ? 'common' : 'rare'}`,
            kind: i % 4 ? 'import' : 'generate',
            createdAt: when(i),
          };
        }) as { prompt: string; kind: 'import' | 'generate'; createdAt: number }[],
      );
    add(600, at);
    for (const filter of [{}, { sort: 'oldest' as const }, { kind: 'generate' as const }, { text: 'common' }]) {
      const before = new Set(reference(h, filter));
      const deleted = new Set<number>();
      const seen: number[] = [];
      let cursor: number | undefined;
      for (let pageNo = 0; pageNo < 100; pageNo++) {
        const r = h.query(page({ ...filter, limit: 37, after: cursor }));
        seen.push(...r.rows.map((x) => x.id));
        if (r.rows.length < 37) break;
        cursor = r.rows.at(-1)!.sortKey;
        // Between pages: new images (newer than all, older than all, anywhere) and deletes of some not seen yet.
        add(2, () => 20_000_000 + pageNo);
        add(2, () => 10 + pageNo);
        add(3, at);
        const unseen = [...before].filter((id) => !seen.includes(id) && !deleted.has(id));
        const gone = [unseen[Math.floor(rand() * unseen.length)]!, unseen[Math.floor(rand() * unseen.length)]!];
        h.trash(gone, `${(1000 + pageNo).toString(36)}-${'0'.repeat(16)}`, 1);
        for (const g of gone) deleted.add(g);
      }
      const label = JSON.stringify(filter);
      expect(new Set(seen).size, label).toBe(seen.length); // nothing twice
      for (const id of before) if (!deleted.has(id)) expect(seen, `${label}: ${id}`).toContain(id); // nothing lost
      for (const id of seen) expect(deleted.has(id) && !before.has(id), label).toBe(false);
      // And in the gallery's order: the seen rows are in the order the reference gives them.
      const order = reference(h, filter).filter((id) => seen.includes(id));
      expect(
        seen.filter((id) => order.includes(id)),
        label,
      ).toEqual(order);
      for (const id of [...deleted]) h.untrash(`${(1000 + [...deleted].indexOf(id)).toString(36)}-${'0'.repeat(16)}`);
    }
    h.close();
  });

  it('jumps to any position, to a date, and back a page, with the counts a plain scan gives', () => {
    const h = History.open(join(root, 'jump.db'));
    const ids = seed(
      h,
      Array.from({ length: 500 }, (_, i) => ({
        prompt: `p${i} ${i % 2 ? 'owl' : 'fox'}`,
        kind: i % 3 ? ('import' as const) : ('generate' as const),
        // Several days, some of them crowded.
        createdAt: 86_400_000 * (10 + Math.floor(i / 60)) + (i % 60) * (i % 4 === 0 ? 0 : 1000),
      })),
    );
    for (const id of ids.filter((_, i) => i % 6 === 0)) h.setFavourite(id, true);
    const day = 86_400_000;
    for (const filter of [
      {},
      { sort: 'oldest' as const },
      { favourite: true },
      { kind: 'generate' as const, favourite: false },
      { from: 12 * day + 5000, to: 15 * day + 30_000 },
      { text: 'owl' },
      { text: 'owl', sort: 'oldest' as const, from: 11 * day },
    ]) {
      const ref = reference(h, filter);
      const label = JSON.stringify(filter);
      expect(h.query(page({ ...filter, offset: 0 })).total, label).toBe(ref.length);
      expect(h.countExact(filter), label).toBe(ref.length);
      for (const p of [1, 59, 60, 61, 137, ref.length - 1, ref.length]) {
        const r = h.query(page({ ...filter, offset: p, limit: 5 }));
        expect(
          r.rows.map((x) => x.id),
          `${label} @${p}`,
        ).toEqual(ref.slice(p, p + 5));
        // The page before it, by cursor.
        if (r.rows.length > 0 && p >= 5) {
          const back = h.query(page({ ...filter, before: r.rows[0]!.sortKey, limit: 5 }));
          expect(
            back.rows.map((x) => x.id),
            `${label} before @${p}`,
          ).toEqual(ref.slice(p - 5, p));
        }
      }
      // A date: the first item created at or before it (oldest first: at or after), and its position.
      const created = new Map(
        (h.db.prepare('SELECT id, created_at AS c FROM images').all() as { id: number; c: number }[]).map((r) => [
          r.id,
          r.c,
        ]),
      );
      for (const when of [13 * day + 12_345, 11 * day, 40 * day, 1]) {
        const r = h.query(page({ ...filter, at: when, limit: 3 }));
        const first = ref.findIndex((id) =>
          filter.sort === 'oldest' ? created.get(id)! >= when : created.get(id)! <= when,
        );
        const want = first < 0 ? [] : ref.slice(first, first + 3);
        expect(
          r.rows.map((x) => x.id),
          `${label} at ${when}`,
        ).toEqual(want);
        expect(r.offset, `${label} at ${when}`).toBe(first < 0 ? ref.length : first);
      }
    }
    h.close();
  });

  it('counts a large text search as "at least" on the page, and exactly when asked', () => {
    const h = History.open(join(root, 'cap.db'));
    h.transaction(() =>
      seed(
        h,
        Array.from({ length: COUNT_CAP + 50 }, (_, i) => ({
          prompt: `everywhere ${i % 2 ? 'odd' : 'even'}`,
          createdAt: i,
        })),
      ),
    );
    const big = h.query(page({ text: 'everywhere' }));
    expect(big).toMatchObject({ total: COUNT_CAP, totalExact: false });
    expect(big.rows).toHaveLength(100);
    expect(h.countExact({ text: 'everywhere' })).toBe(COUNT_CAP + 50);
    const small = h.query(page({ text: 'odd', kind: 'generate' }));
    expect(small).toMatchObject({ total: 0, totalExact: true });
    // Without text the count is exact however large (gallery_days).
    expect(h.query(page({ offset: 200 }))).toMatchObject({ total: COUNT_CAP + 50, totalExact: true });
    h.close();
  });
});
