// Runs as jobs in the history database: migration 2 (run states enforced by the database,
// run_assets), state transitions, recovery of runs a killed process left running, and assets
// that only a run holds (kept by the purge and the open-time sweep until the run is deleted).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { StudioError } from '../../../src/shared/api.js';
import { RunAssetRole, RunState } from '../../../src/shared/runs.js';
import { History, type RunChange } from '../../../src/main/studio/history.js';
import { LATEST_VERSION } from '../../../src/main/studio/history-migrations.js';
import { openStudio } from '../../../src/main/studio/index.js';
import { openReportProblems } from '../../../src/main/studio/open-report.js';
import { INTERRUPTED_RUN_ERROR } from '../../../src/main/studio/recovery.js';
import { makePng } from '../../fixtures/images.js';
import { databaseAtVersion, fakeAsset } from './history-fixtures.js';

const projectRoot = resolve(__dirname, '../../..');
const root = mkdtempSync(join(tmpdir(), 'fs-jobs-'));
let n = 0;
const newDir = () => join(root, `d${n++}`);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const shaOf = (text: string) => createHash('sha256').update(text).digest('hex');
const DAY = 24 * 3600 * 1000;

const assetRow = (h: History, text: string) => fakeAsset(h, shaOf(text));

const job = (h: History, title: string, createdAt: number) =>
  h.enqueueRun({ kind: 'generate', title, spec: { prompt: title }, provenance: {}, createdAt });
const change = (to: RunState): RunChange => (to === 'failed' ? { to, error: 'out of memory' } : { to });

/** Spawns a child under tsx; resolves with it once it prints a line starting with `prefix`, and that line. */
function spawnChild(script: string, args: string[], prefix: string) {
  return new Promise<{ child: ReturnType<typeof spawn>; line: string }>((done, fail) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, script), ...args], {
      cwd: projectRoot,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith(prefix));
      if (line) done({ child, line });
    });
    child.on('error', fail);
    child.on('exit', (code) => fail(new Error(`${script} exited (${code}) before "${prefix}": ${err}`)));
  });
}
const exited = (child: ReturnType<typeof spawn>) =>
  new Promise<void>((done) =>
    child.exitCode !== null || child.signalCode !== null ? done() : child.on('exit', () => done()),
  );

describe('migration 2: run states and run_assets', () => {
  function v1WithData(file: string) {
    const db = databaseAtVersion(file, 1);
    const [a, b] = [shaOf('one'), shaOf('two')];
    db.exec(`
      INSERT INTO runs (id, kind, title, spec, provenance, created_at, started_at, finished_at)
        VALUES (1, 'import', 'an astronaut', '{"fileName":"a.png"}', '{"appVersion":"0.1.0"}', 100, 100, 110);
      INSERT INTO runs (id, kind, title, parent_run_id, created_at, started_at) VALUES (2, 'generate', 'fork', 1, 200, 210);
      -- written by hand: a state with no error, and a word that is not a state
      INSERT INTO runs (id, kind, status, created_at) VALUES (3, 'classify', 'failed', 300);
      INSERT INTO runs (id, kind, status, created_at) VALUES (4, 'prompt', 'whatever', 400);
      INSERT INTO assets VALUES ('${a}', 'assets/${a.slice(0, 2)}/${a}.png', 'image/png', 10, 2, 3, NULL);
      INSERT INTO assets VALUES ('${b}', 'assets/${b.slice(0, 2)}/${b}.png', 'image/png', 20, 4, 5, 'thumbs/x.webp');
      INSERT INTO images (id, run_id, kind, sha256, file_name, created_at) VALUES (10, 1, 'import', '${a}', 'a.png', 100);
      INSERT INTO images (id, run_id, kind, sha256, created_at, trashed_at, trash_token)
        VALUES (11, 2, 'generate', '${b}', 200, 250, 'tok-0123456789abcdef');
      INSERT INTO tags VALUES (10, 'keeper');
      INSERT INTO search (rowid, prompt, negative, labels, note, tags, file, meta)
        VALUES (10, 'an astronaut', '', '', '', 'keeper', 'a png a.png', '');
    `);
    db.close();
  }
  const OLD_RUN_COLUMNS = 'id, kind, title, note, spec, provenance, parent_run_id, created_at, started_at, finished_at';
  const dump = (db: Database.Database) => ({
    runs: db.prepare(`SELECT ${OLD_RUN_COLUMNS} FROM runs ORDER BY id`).all(),
    assets: db.prepare('SELECT * FROM assets ORDER BY sha256').all(),
    // The columns of version 1 (version 4 adds sort_key, and keys the search index by it).
    images: db
      .prepare(
        'SELECT id, run_id, kind, sha256, file_name, favourite, metadata, created_at, trashed_at, trash_token FROM images ORDER BY id',
      )
      .all(),
    tags: db.prepare('SELECT * FROM tags').all(),
    search: db.prepare('SELECT * FROM search').all(),
  });

  it('keeps every row of a version-1 database, gives each run a state, and keeps the references working', () => {
    const file = join(root, 'v1.db');
    v1WithData(file);
    const raw = new Database(file, { readonly: true });
    const before = dump(raw);
    raw.close();
    expect(before.images).toHaveLength(2);

    const h = History.open(file);
    expect(h.userVersion).toBe(LATEST_VERSION);
    expect(dump(h.db)).toEqual(before);
    const states = h.db.prepare('SELECT id, status, error, updated_at AS updatedAt FROM runs ORDER BY id').all();
    expect(states).toEqual([
      { id: 1, status: 'done', error: null, updatedAt: 110 },
      { id: 2, status: 'done', error: null, updatedAt: 210 },
      { id: 3, status: 'failed', error: 'failed (no error was recorded)', updatedAt: 300 },
      { id: 4, status: 'done', error: null, updatedAt: 400 },
    ]);
    expect(h.getRun(1)).toMatchObject({
      kind: 'import',
      spec: { fileName: 'a.png' },
      provenance: { appVersion: '0.1.0' },
    });
    expect(h.getImage(10)!.status).toBe('done');
    expect(h.query({ text: 'astronaut', sort: 'newest', offset: 0, limit: 10 }).rows.map((r) => r.id)).toEqual([10]);

    // The rebuild left a sound database with foreign keys on, the old indexes back and no stray table.
    expect(h.db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(h.db.pragma('foreign_key_check')).toEqual([]);
    expect(h.quickCheck()).toBe('ok');
    const names = (
      h.db.prepare(`SELECT name FROM sqlite_master WHERE type IN ('table', 'index')`).all() as {
        name: string;
      }[]
    ).map((r) => r.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'runs_parent',
        'runs_kind_created',
        'runs_status_created',
        'run_assets_run',
        'run_assets_sha',
      ]),
    );
    expect(names).not.toContain('runs_v2');
    expect(h.db.pragma('foreign_key_list(images)')).toContainEqual(expect.objectContaining({ table: 'runs' }));

    // images still cascade from the new runs table, and a fork's parent link is cleared.
    h.db.prepare('DELETE FROM runs WHERE id = 1').run();
    expect(h.getImage(10)).toBeNull();
    expect(h.db.prepare('SELECT count(*) AS n FROM tags').get()).toEqual({ n: 0 });
    expect(h.getRun(2)!.parentRunId).toBeNull();
    h.close();
  });

  it('enforces the run states and the run_assets roles in the database itself', () => {
    const h = History.open(join(root, 'checks.db'));
    const bad =
      (sql: string, ...params: unknown[]) =>
      () =>
        h.db.prepare(sql).run(...params);
    const insert = `INSERT INTO runs (kind, status, error, created_at) VALUES ('generate', ?, ?, 1)`;
    for (const state of RunState.options)
      expect(bad(insert, state, state === 'failed' ? 'why' : null), state).not.toThrow();
    expect(bad(insert, 'bogus', null)).toThrow(/CHECK constraint failed/);
    expect(bad(insert, 'Done', null)).toThrow(/CHECK constraint failed/);
    expect(bad(`UPDATE runs SET status = 'finished' WHERE status = 'done'`)).toThrow(/CHECK constraint failed/);
    expect(bad(insert, 'failed', null)).toThrow(/CHECK constraint failed/); // a failed run says why
    expect(bad(insert, 'done', 'an error on a done run')).toThrow(/CHECK constraint failed/);
    expect(
      bad(`INSERT INTO runs (kind, created_at, progress_step, progress_total) VALUES ('generate', 1, 5, 4)`),
    ).toThrow(/CHECK constraint failed/);
    // A run inserted without updated_at (an old script) still gets one.
    h.db.prepare(`INSERT INTO runs (id, kind, created_at) VALUES (99, 'import', 1)`).run();
    expect(h.getRun(99)!.updatedAt).toBeGreaterThan(Date.now() - 60_000);

    const sha = assetRow(h, 'frame');
    const ra = `INSERT INTO run_assets (run_id, sha256, role, step) VALUES (99, ?, ?, ?)`;
    for (const role of RunAssetRole.options) expect(bad(ra, sha, role, 1), role).not.toThrow();
    expect(bad(ra, sha, 'thumbnail', 1)).toThrow(/CHECK constraint failed/);
    expect(bad(ra, sha, 'frame', null)).toThrow(/CHECK constraint failed/); // a frame is taken at a step
    expect(bad(ra, shaOf('no such asset'), 'init', null)).toThrow(/FOREIGN KEY constraint failed/);
    expect(() =>
      h.insertRun({ kind: 'generate', status: 'failed', title: '', spec: {}, provenance: {}, createdAt: 1 }),
    ).toThrow(/needs an error message/);
    h.close();
  });

  it('rolls back, leaving the database at version 1, when the rebuild finds a dangling reference', () => {
    const file = join(root, 'dangling.db');
    const db = databaseAtVersion(file, 1);
    db.pragma('foreign_keys = OFF'); // as a hand edit would
    const sha = shaOf('x');
    db.exec(`INSERT INTO assets VALUES ('${sha}', 'assets/x.png', 'image/png', 1, 1, 1, NULL);
             INSERT INTO images (run_id, kind, sha256, created_at) VALUES (42, 'import', '${sha}', 1);`);
    db.close();
    expect(() => History.open(file)).toThrow(
      expect.objectContaining({
        name: 'DatabaseCorrupt',
        message: expect.stringMatching(/images row 1, referring to runs/),
      }),
    );
    const after = new Database(file, { readonly: true });
    expect(after.pragma('user_version', { simple: true })).toBe(1);
    expect((after.pragma('table_info(runs)') as { name: string }[]).map((c) => c.name)).not.toContain('updated_at');
    expect(after.prepare(`SELECT name FROM sqlite_master WHERE name IN ('run_assets', 'runs_v2')`).all()).toEqual([]);
    after.close();
  });
});

describe('run states', () => {
  it('queues runs in order and records the times of each move', () => {
    const h = History.open(join(root, 'queue.db'));
    const late = job(h, 'late', 300);
    const early = job(h, 'early', 100);
    const middle = job(h, 'middle', 200);
    expect(h.getRun(early)).toMatchObject({
      status: 'queued',
      startedAt: null,
      finishedAt: null,
      updatedAt: 100,
      error: null,
    });
    expect(h.listRunsByState('queued').map((r) => r.id)).toEqual([early, middle, late]);
    expect(h.listRunsByState('queued', { order: 'newest', limit: 2 }).map((r) => r.id)).toEqual([late, middle]);
    expect(h.listRunsByState('queued', { limit: 1, offset: 1 }).map((r) => r.id)).toEqual([middle]);
    expect(h.nextQueuedRun()!.id).toBe(early);

    expect(h.transitionRun(early, { to: 'running' }, 1000)).toMatchObject({
      status: 'running',
      startedAt: 1000,
      updatedAt: 1000,
    });
    expect(h.nextQueuedRun()!.id).toBe(middle);
    expect(h.listRunsByState('running').map((r) => r.id)).toEqual([early]);
    expect(h.setRunProgress(early, 10, 300, 1100)).toBe(true);
    h.transitionRun(early, { to: 'paused' }, 1200);
    expect(h.setRunProgress(early, 11, 300, 1250)).toBe(false); // a step that lands after the pause is not recorded
    // Resumed: the first start is kept; the progress so far too.
    expect(h.transitionRun(early, { to: 'running' }, 1300)).toMatchObject({
      startedAt: 1000,
      updatedAt: 1300,
      progressStep: 10,
      progressTotal: 300,
    });
    expect(h.transitionRun(early, { to: 'done' }, 1400)).toMatchObject({
      status: 'done',
      finishedAt: 1400,
      error: null,
    });
    h.transitionRun(middle, { to: 'running' }, 1500);
    expect(h.transitionRun(middle, { to: 'failed', error: 'CUDA out of memory' }, 1600)).toMatchObject({
      status: 'failed',
      error: 'CUDA out of memory',
      finishedAt: 1600,
    });
    expect(h.transitionRun(late, { to: 'cancelled' }, 1700)).toMatchObject({
      status: 'cancelled',
      startedAt: null,
      finishedAt: 1700,
    });
    expect(h.nextQueuedRun()).toBeNull();
    expect(() => h.setRunProgress(early, 5, 4, 1)).toThrow(/step total/);
    h.close();
  });

  it('allows exactly the documented moves, and refuses the others with a clear error', () => {
    const h = History.open(join(root, 'moves.db'));
    // The specification, written out (not read from RUN_TRANSITIONS, which it checks); failed,
    // cancelled and done go nowhere.
    const allowed = new Set([
      'queued -> running',
      'queued -> cancelled',
      'queued -> failed',
      'running -> paused',
      'running -> failed',
      'running -> cancelled',
      'running -> done',
      'paused -> running',
      'paused -> queued',
      'paused -> cancelled',
      'paused -> failed',
    ]);
    const pathTo: Record<RunState, RunState[]> = {
      queued: [],
      running: ['running'],
      paused: ['running', 'paused'],
      failed: ['failed'],
      cancelled: ['cancelled'],
      done: ['running', 'done'],
    };
    let t = 0;
    for (const from of RunState.options)
      for (const to of RunState.options) {
        const id = job(h, `${from} -> ${to}`, ++t);
        for (const step of pathTo[from]) h.transitionRun(id, change(step), ++t);
        expect(h.getRun(id)!.status).toBe(from);
        if (allowed.has(`${from} -> ${to}`))
          expect(h.transitionRun(id, change(to), ++t).status, `${from} -> ${to}`).toBe(to);
        else {
          expect(() => h.transitionRun(id, change(to), ++t), `${from} -> ${to}`).toThrow(
            expect.objectContaining({
              name: 'InvalidTransition',
              message: expect.stringContaining(`Run ${id} is ${from} and cannot become ${to}`),
            }),
          );
          expect(h.getRun(id)!.status).toBe(from); // unchanged
        }
      }
    const id = job(h, 'x', 1);
    h.transitionRun(id, { to: 'running' }, 2);
    expect(() => h.transitionRun(id, { to: 'failed', error: '  ' }, 3)).toThrow(/without an error message/);
    expect(() => h.transitionRun(id, { to: 'bogus' } as unknown as RunChange, 3)).toThrow(/cannot become bogus/);
    expect(h.getRun(id)!.status).toBe('running');
    expect(() => h.transitionRun(12345, { to: 'running' }, 3)).toThrow(StudioError);
    expect(() => h.transitionRun(12345, { to: 'running' }, 3)).toThrow(/No run with id 12345/);
    h.close();
  });

  it('finds the queue and a run’s assets through indexes, and checks references by index lookups', () => {
    const h = History.open(join(root, 'plans.db'));
    h.transaction(() => {
      for (let i = 0; i < 300; i++) {
        const id =
          i % 3 === 0
            ? job(h, `j${i}`, i)
            : h.insertRun({ kind: 'import', title: `i${i}`, spec: {}, provenance: {}, createdAt: i });
        const sha = assetRow(h, `a${i}`);
        if (i % 2 === 0) h.insertImage(id, { sha256: sha, fileName: null, metadata: null, createdAt: i });
        else h.addRunAsset(id, { sha256: sha, role: 'frame', step: i });
      }
    });
    h.db.exec('ANALYZE');
    const plan = (name: Parameters<History['statementSql']>[0], params: Record<string, unknown>) =>
      h.explain(h.statementSql(name), params).join('\n');
    for (const name of ['runsOldest', 'runsNewest'] as const) {
      const p = plan(name, { state: 'queued', limit: 10, offset: 0 });
      expect(p).toMatch(/SEARCH runs USING INDEX runs_status_created \(status=\?\)/);
      expect(p).not.toMatch(/TEMP B-TREE/);
    }
    for (const name of ['isLive', 'isReferenced'] as const) {
      const p = plan(name, { sha256: shaOf('a1') });
      expect(p).toMatch(/SEARCH images USING (COVERING )?INDEX images_sha \(sha256=\?\)/);
      expect(p).toMatch(/SEARCH run_assets USING COVERING INDEX run_assets_sha \(sha256=\?\)/);
      expect(p).not.toMatch(/SCAN (images|run_assets)/);
    }
    const full = plan('unreferencedAssets', {});
    expect(full).toMatch(/SEARCH i USING COVERING INDEX images_sha \(sha256=\?\)/);
    expect(full).toMatch(/SEARCH ra USING COVERING INDEX run_assets_sha \(sha256=\?\)/);
    expect(full).not.toMatch(/SCAN (i|ra)\b/);
    const ofRun = plan('shasOfRun', { runId: 1 });
    expect(ofRun).toMatch(/SEARCH images USING INDEX images_run \(run_id=\?\)/);
    expect(ofRun).toMatch(/SEARCH run_assets USING COVERING INDEX run_assets_run \(run_id=\?\)/);
    h.close();
  });
});

describe('assets held by runs', () => {
  it('keeps an asset a run holds through the purge of its only image, until the run is deleted', () => {
    const h = History.open(join(root, 'held.db'));
    const runId = h.insertRun({ kind: 'generate', title: 'a fox', spec: {}, provenance: {}, createdAt: 1 });
    const [out, init, frame, loose] = ['out', 'init', 'frame', 'loose'].map((s) => assetRow(h, s)) as [
      string,
      string,
      string,
      string,
    ];
    const img = h.insertImage(runId, { sha256: out, fileName: null, metadata: null, createdAt: 1 });
    expect(h.addRunAsset(runId, { sha256: out, role: 'output', step: 300 })).toBe(true);
    expect(h.addRunAsset(runId, { sha256: init, role: 'init' })).toBe(true);
    expect(h.addRunAsset(runId, { sha256: init, role: 'init' })).toBe(false); // already held
    expect(h.addRunAsset(runId, { sha256: frame, role: 'frame', step: 100 })).toBe(true);
    expect(h.runAssets(runId).map((a) => [a.role, a.step, a.sha256])).toEqual([
      ['frame', 100, frame],
      ['init', null, init],
      ['output', 300, out],
    ]);
    expect(h.runAssets(runId, 'frame')[0]).toMatchObject({
      sha256: frame,
      mime: 'image/png',
      path: expect.stringContaining(frame),
    });
    expect(h.runIdsOfAsset(init)).toEqual([runId]);

    // Trashing the image leaves its file where it is (the run holds it), and it is still served.
    const t = h.trash([img], 'tok-00000000000000aa', 10);
    expect(t.orphaned).toEqual([]);
    expect(h.isAssetLive(out)).toBe(true);
    expect(h.purge('tok-00000000000000aa')).toEqual([]);
    expect(h.getImage(img)).toBeNull();
    expect(h.getAsset(out)).not.toBeNull();
    // The full clean-up takes only what nothing references.
    expect(h.dropUnreferencedAssets().map((a) => a.sha256)).toEqual([loose]);
    for (const sha of [out, init, frame]) expect(h.getAsset(sha), sha).not.toBeNull();

    expect(() => h.deleteRun(runId + 1000)).toThrow(/No run with id/);
    const deleted = h.deleteRun(runId);
    expect(deleted.imageIds).toEqual([]);
    expect(deleted.orphaned.map((a) => a.sha256).sort()).toEqual([out, init, frame].sort());
    for (const sha of [out, init, frame]) expect(h.getAsset(sha), sha).toBeNull();
    expect(h.db.prepare('SELECT count(*) AS n FROM run_assets').get()).toEqual({ n: 0 });
    h.close();
  });

  it('keeps an asset that another run or an image still references when one run is deleted; refuses unfinished runs and live images', () => {
    const h = History.open(join(root, 'shared.db'));
    const shared = assetRow(h, 'shared');
    const a = h.insertRun({ kind: 'generate', title: 'a', spec: {}, provenance: {}, createdAt: 1 });
    const b = h.insertRun({ kind: 'generate', title: 'b', spec: {}, provenance: {}, createdAt: 2, parentRunId: a });
    h.addRunAsset(a, { sha256: shared, role: 'image-prompt' });
    h.addRunAsset(b, { sha256: shared, role: 'init' });
    expect(h.deleteRun(a).orphaned).toEqual([]);
    expect(h.getRun(b)!.parentRunId).toBeNull();
    expect(h.getAsset(shared)).not.toBeNull();

    const active = job(h, 'running', 3);
    h.addRunAsset(active, { sha256: shared, role: 'init' });
    expect(() => h.deleteRun(active)).toThrow(expect.objectContaining({ name: 'RunActive' }));
    h.transitionRun(active, { to: 'cancelled' }, 4);

    const withImage = h.insertRun({
      kind: 'generate',
      title: 'c',
      spec: { prompt: 'searchable owl' },
      provenance: {},
      createdAt: 5,
    });
    const gallery = assetRow(h, 'gallery');
    const img = h.insertImage(withImage, { sha256: gallery, fileName: null, metadata: null, createdAt: 5 });
    h.addRunAsset(withImage, { sha256: shared, role: 'init' });
    expect(() => h.deleteRun(withImage)).toThrow(expect.objectContaining({ name: 'RunHasImages' }));
    // Once its image is in the trash the run can go, the trashed image with it (the trash is not searched).
    expect(h.db.prepare(`SELECT count(*) AS n FROM search WHERE search MATCH 'owl'`).get()).toEqual({ n: 1 });
    h.trash([img], 'tok-00000000000000bb', 6);
    const q = { text: 'owl', sort: 'newest' as const, offset: 0, limit: 10 };
    expect(h.db.prepare(`SELECT count(*) AS n FROM search WHERE search MATCH 'owl'`).get()).toEqual({ n: 0 });
    expect(h.deleteRun(withImage)).toEqual({
      imageIds: [img],
      trashTokens: ['tok-00000000000000bb'],
      orphaned: [expect.objectContaining({ sha256: gallery })],
    });
    expect(h.query(q).total).toBe(0);
    expect(h.db.prepare(`SELECT count(*) AS n FROM search WHERE search MATCH 'owl'`).get()).toEqual({ n: 0 });
    expect(h.getAsset(shared)).not.toBeNull(); // b and the cancelled run still hold it
    h.deleteRun(b);
    expect(h.deleteRun(active).orphaned.map((x) => x.sha256)).toEqual([shared]);
    h.close();
  });

  it('the open-time sweep keeps, serves and thumbnails a file only a run holds; once the run is deleted it is an orphan', async () => {
    const dir = newDir();
    await (await openStudio({ dataDir: dir, runQueue: false })).close();
    const png = await makePng({ seed: 901, width: 64, height: 48 });
    const sha = createHash('sha256').update(png).digest('hex');
    const rel = `assets/${sha.slice(0, 2)}/${sha}.png`;
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), png);
    let h = History.open(join(dir, 'history.db'));
    const runId = h.insertRun({ kind: 'generate', title: 'frames', spec: {}, provenance: {}, createdAt: 1 });
    h.transaction(() => {
      h.upsertAsset({
        sha256: sha,
        path: rel,
        mime: 'image/png',
        bytes: png.byteLength,
        width: 64,
        height: 48,
        thumbPath: null,
      });
      h.addRunAsset(runId, { sha256: sha, role: 'frame', step: 50 });
    });
    h.close();

    let s = await openStudio({ dataDir: dir, runQueue: false });
    expect(await s.checked).toMatchObject({ sweep: 'done', orphanFilesMoved: 0, missingFiles: [], thumbsRebuilt: 1 });
    expect(existsSync(join(dir, rel))).toBe(true);
    expect((await s.assetFile(sha, 'file'))?.path).toBe(join(dir, rel));
    expect(await s.assetFile(sha, 'thumb')).not.toBeNull();
    await s.close();

    // The file gone: reported with the run that holds it.
    rmSync(join(dir, rel));
    s = await openStudio({ dataDir: dir, runQueue: false });
    expect((await s.checked).missingFiles).toEqual([{ sha256: sha, path: rel, imageIds: [], runIds: [runId] }]);
    expect(openReportProblems(await s.checked)).toEqual([
      `1 image file is missing from the data folder (run ${runId}): ${rel}. Their gallery entries and runs are kept: ` +
        'put the files back (from a backup, or a drive that is not mounted) and they work again.',
    ]);
    await s.close();
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), png);

    // The run deleted (and, say, the process killed before it removed the files): the next sweep takes them away.
    h = History.open(join(dir, 'history.db'));
    expect(h.deleteRun(runId).orphaned.map((a) => a.sha256)).toEqual([sha]);
    h.close();
    s = await openStudio({ dataDir: dir, runQueue: false });
    expect(await s.checked).toMatchObject({ orphanFilesMoved: 1, orphanThumbsMoved: 1 });
    expect(existsSync(join(dir, rel))).toBe(false);
    expect(await s.assetFile(sha, 'file')).toBeNull();
    await s.close();
  });

  it('deleting a gallery image a run holds leaves its file in place through undo and the 30-day purge', async () => {
    const dir = newDir();
    let s = await openStudio({ dataDir: dir, runQueue: false });
    const imported = await s.handlers.importImages({
      files: [{ name: 'init.png', data: await makePng({ seed: 902 }) }],
    });
    const item = imported.imported[0]!;
    const file = (await s.assetFile(item.sha256, 'file'))!.path;
    await s.close();
    let h = History.open(join(dir, 'history.db'));
    const runId = h.insertRun({
      kind: 'generate',
      title: 'from an init image',
      spec: {},
      provenance: {},
      createdAt: 1,
    });
    h.addRunAsset(runId, { sha256: item.sha256, role: 'init' });
    h.close();

    s = await openStudio({ dataDir: dir, runQueue: false });
    const del = await s.handlers.deleteItems({ ids: [item.id] });
    expect(existsSync(file)).toBe(true); // the run still holds it: not moved to the trash
    expect((await s.assetFile(item.sha256, 'file'))?.path).toBe(file);
    expect((await s.handlers.undoDelete({ undoToken: del.undoToken })).restored).toBe(1);
    expect(existsSync(file)).toBe(true);
    await s.handlers.deleteItems({ ids: [item.id] });
    await s.close();

    h = History.open(join(dir, 'history.db'));
    h.db.prepare('UPDATE images SET trashed_at = ? WHERE id = ?').run(Date.now() - 31 * DAY, item.id);
    h.close();
    s = await openStudio({ dataDir: dir, runQueue: false });
    expect(await s.checked).toMatchObject({ trashPurged: 1, orphanFilesMoved: 0, missingFiles: [] });
    expect(existsSync(file)).toBe(true);
    expect(await s.assetFile(item.sha256, 'file')).not.toBeNull();
    expect((await s.handlers.galleryQuery({ sort: 'newest', offset: 0, limit: 10 })).total).toBe(0);
    await s.close();
    h = History.open(join(dir, 'history.db'));
    expect(h.getImage(item.id)).toBeNull();
    expect(h.getRun(item.runId)).toBeNull(); // the import run went with its image
    expect(h.deleteRun(runId).orphaned.map((a) => a.sha256)).toEqual([item.sha256]);
    h.close();
  });
});

describe('recovery of jobs', () => {
  it('marks the runs a killed process left running failed at the next open, and leaves queued and paused ones', async () => {
    const dir = newDir();
    const { child, line } = await spawnChild('job-child.ts', [dir], 'jobs ');
    const ids = JSON.parse(line.slice('jobs '.length)) as { running: number; paused: number; queued: number };
    child.kill('SIGKILL');
    await exited(child);

    let s = await openStudio({ dataDir: dir, runQueue: false });
    expect(await s.checked).toMatchObject({ sweep: 'done', runsInterrupted: 1 });
    expect(openReportProblems(await s.checked)).toEqual([
      expect.stringMatching(/^1 run was still running when the studio last stopped .*marked failed \("interrupted"\)/),
    ]);
    await s.close();
    const h = History.open(join(dir, 'history.db'));
    const run = h.getRun(ids.running)!;
    expect(run).toMatchObject({ status: 'failed', error: INTERRUPTED_RUN_ERROR, progressStep: 40, progressTotal: 300 });
    expect(run.finishedAt).toBeGreaterThanOrEqual(run.startedAt!);
    expect(run.updatedAt).toBe(run.finishedAt);
    expect(h.getRun(ids.paused)!.status).toBe('paused');
    expect(h.getRun(ids.queued)!.status).toBe('queued');
    h.close();
    s = await openStudio({ dataDir: dir, runQueue: false });
    expect((await s.checked).runsInterrupted).toBe(0);
    await s.close();
  }, 60_000);

  it('leaves running runs alone while another process has the folder open', async () => {
    const dir = newDir();
    const { child } = await spawnChild('hold-child.ts', [dir], 'ready');
    const h = History.open(join(dir, 'history.db'));
    const id = job(h, 'held by the other process', Date.now());
    h.transitionRun(id, { to: 'running' }, Date.now());
    h.close();

    let s = await openStudio({ dataDir: dir, runQueue: false });
    expect((await s.checked).sweep).toEqual({ skipped: expect.stringContaining(`pid ${child.pid}`) });
    expect((await s.checked).runsInterrupted).toBe(0);
    await s.close();
    const status = (runId: number) => {
      const check = History.open(join(dir, 'history.db'));
      const r = check.getRun(runId)!.status;
      check.close();
      return r;
    };
    expect(status(id)).toBe('running');

    child.stdin!.end(); // the other process closes (without finishing its run)
    await exited(child);
    s = await openStudio({ dataDir: dir, runQueue: false });
    expect(await s.checked).toMatchObject({ sweep: 'done', runsInterrupted: 1 });
    expect(status(id)).toBe('failed');

    // A second open in this process does not touch the runs the first one is running.
    const h2 = History.open(join(dir, 'history.db'));
    const mine = job(h2, 'run by this process', Date.now());
    h2.transitionRun(mine, { to: 'running' }, Date.now());
    h2.close();
    const second = await openStudio({ dataDir: dir, runQueue: false });
    expect(await second.checked).toMatchObject({
      sweep: { skipped: expect.stringContaining('this process') },
      runsInterrupted: 0,
    });
    await second.close();
    await s.close();
    expect(status(mine)).toBe('running');
  }, 60_000);
});
