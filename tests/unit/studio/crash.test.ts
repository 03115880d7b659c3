// Crash safety for real: a child process importing (and deleting) images is killed with
// SIGKILL at several points; after each kill the next open must find a sound database, no
// half-written file under a real name, no orphans, and a file behind every listed item.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, expect, it } from 'vitest';
import { openStudio, type OpenReport } from '../../../src/main/studio/index.js';

const projectRoot = resolve(__dirname, '../../..');
const child = join(__dirname, 'crash-child.ts');
const dataDir = mkdtempSync(join(tmpdir(), 'fs-crash-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

type Mode = 'random' | 'mid-temp' | 'after-asset-rename' | 'mid-trash';

/**
 * Runs the child and SIGKILLs it: in 'random' mode `jitterMs` after it has reported `after`
 * imported files (wherever in the next file's decode, write or insert that lands); in the
 * other modes as soon as it says it stalled at its injected point (see crash-child.ts).
 */
function importThenKill(seedBase: number, mode: Mode, after: number, jitterMs: number): Promise<{ progress: number }> {
  return new Promise((done, fail) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, dataDir, String(seedBase), mode], {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let progress = 0;
    let stderr = '';
    let buf = '';
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('progress')) progress++;
        if (mode === 'random' && line.startsWith('progress') && progress === after)
          setTimeout(() => p.kill('SIGKILL'), jitterMs);
        if (mode !== 'random' && line === 'stall') p.kill('SIGKILL');
      }
    });
    p.on('error', fail);
    p.on('exit', (code, signal) =>
      signal === 'SIGKILL' ? done({ progress }) : fail(new Error(`child was not killed (exit ${code}): ${stderr}`)),
    );
  });
}

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

function filesUnder(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => join(e.parentPath, e.name));
  } catch {
    return [];
  }
}

it('survives kill -9 in the middle of a large import', { timeout: 240_000 }, async () => {
  const reports: OpenReport[] = [];
  // Kill points: after a few files, mid-batch (a delete may be under way), and later with no pause at all.
  // Injected kill points first (each must leave the leftover it is named for), then random
  // ones: one file takes ~20-200 ms here (decode, thumbnail, two fsynced writes, insert), so
  // these delays spread the kills over all of its phases.
  const plan: {
    mode: Mode;
    after?: number;
    jitter?: number;
    expect?: Partial<Record<keyof OpenReport, number>>;
    atLeast?: Partial<Record<keyof OpenReport, number>>;
  }[] = [
    // A chunk's files are written side by side: the kill finds at least the one stalled temp file.
    { mode: 'mid-temp', atLeast: { tempFilesRemoved: 1 } },
    { mode: 'after-asset-rename', expect: { orphanFilesMoved: 1 } },
    { mode: 'mid-trash' },
    { mode: 'random', after: 4, jitter: 3 },
    { mode: 'random', after: 11, jitter: 20 },
    { mode: 'random', after: 23, jitter: 30 },
    { mode: 'random', after: 17, jitter: 42 },
    { mode: 'random', after: 8, jitter: 55 },
  ];
  let seedBase = 0;
  let listed = 0;
  for (const step of plan) {
    const r = await importThenKill(seedBase, step.mode, step.after ?? 0, step.jitter ?? 0);
    seedBase += 1000;

    const s = await openStudio({ dataDir });
    reports.push(await s.checked);
    expect(await s.checked).toMatchObject({ quickCheck: 'ok', sweep: 'done' });
    // No row is ever dropped: every image the database lists still has its file.
    expect((await s.checked).missingFiles, step.mode).toEqual([]);
    for (const [k, v] of Object.entries(step.expect ?? {}))
      expect((await s.checked)[k as keyof OpenReport], `${step.mode}: ${k}`).toBe(v);
    for (const [k, v] of Object.entries(step.atLeast ?? {}))
      expect((await s.checked)[k as keyof OpenReport], `${step.mode}: ${k}`).toBeGreaterThanOrEqual(v);
    // Orphans are moved into the trash, not deleted: the file the kill left is there, whole.
    if (step.mode === 'after-asset-rename') {
      const moved = filesUnder(join(dataDir, (await s.checked).orphansFolder!)).filter((f) => f.includes('assets'));
      expect(moved).toHaveLength(1);
      expect(sha(moved[0]!)).toBe(moved[0]!.slice(-68, -4));
    }
    // Every listed item has its file, with the content its name promises, and a thumbnail.
    const page = await s.handlers.galleryQuery({ sort: 'newest', offset: 0, limit: 500 });
    // What the child reported imported is listed, less the one it deletes after each batch of 10.
    // The kill may land after a commit and before the line that reports it: one more import
    // than reported, or a delete that is done (a mid-trash delete is: its rows were marked).
    const sureDeletes = Math.floor(Math.max(0, r.progress - 1) / 10); // a later batch had started
    const maybeDeletes = Math.floor(r.progress / 10);
    expect(page.total, step.mode).toBeGreaterThanOrEqual(listed + r.progress - maybeDeletes);
    expect(page.total, step.mode).toBeLessThanOrEqual(listed + r.progress + 1 - sureDeletes);
    if (step.mode === 'mid-trash') expect(page.total).toBe(listed + 10 - 1);
    listed = page.total;
    for (const item of page.items) {
      const f = await s.assetFile(item.sha256, 'file');
      expect(f, `file of item ${item.id}`).not.toBeNull();
      expect(sha(f!.path)).toBe(item.sha256);
      expect(await s.assetFile(item.sha256, 'thumb'), `thumb of item ${item.id}`).not.toBeNull();
    }
    await s.close();

    const db = new Database(join(dataDir, 'history.db'));
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    const known = new Set(
      (db.prepare('SELECT path FROM assets UNION SELECT thumb_path FROM assets').all() as { path: string }[]).map(
        (x) => x.path,
      ),
    );
    db.close();
    // No temp or half-written file is visible under assets/ or thumbs/, and none without a row.
    for (const f of [...filesUnder(join(dataDir, 'assets')), ...filesUnder(join(dataDir, 'thumbs'))]) {
      const rel = f
        .slice(dataDir.length + 1)
        .split('\\')
        .join('/');
      expect(rel).toMatch(/^(assets|thumbs)\/[0-9a-f]{2}\/[0-9a-f]{64}\.(png|jpg|webp)$/);
      expect(known.has(rel), `orphan ${rel}`).toBe(true);
      if (rel.startsWith('assets/')) expect(sha(f)).toBe(rel.slice(10, 74));
    }
  }
  // What the sweeps found across the kills (varies run to run: the kill lands where it lands).
  const sum = (k: 'tempFilesRemoved' | 'orphanFilesMoved' | 'orphanThumbsMoved') =>
    reports.reduce((n, r) => n + r[k], 0);
  console.log(
    `crash test: ${reports.length} kills; swept ${sum('tempFilesRemoved')} temp files, ` +
      `${sum('orphanFilesMoved')} orphan files and ${sum('orphanThumbsMoved')} orphan thumbnails moved to the trash; ` +
      `${reports.reduce((n, r) => n + r.restoredFromTrash, 0)} files brought back from the trash`,
  );
});
