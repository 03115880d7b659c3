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

/**
 * Runs the child until it has reported `after` imported files, then SIGKILLs it `jitterMs`
 * later (in the middle of the next file's decode, write or insert, wherever that lands).
 */
function importThenKill(
  seedBase: number,
  after: number,
  jitterMs: number,
): Promise<{ signal: string | null; progress: number }> {
  return new Promise((done, fail) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, dataDir, String(seedBase)], {
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
        if (progress === after) setTimeout(() => p.kill('SIGKILL'), jitterMs);
      }
    });
    p.on('error', fail);
    p.on('exit', (code, signal) =>
      signal === 'SIGKILL' ? done({ signal, progress }) : fail(new Error(`child exited with ${code}: ${stderr}`)),
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
  // One file takes ~20-200 ms here (decode, thumbnail, two fsynced writes, insert), so these
  // delays spread the kills over all of its phases.
  const plan = [
    { after: 4, jitter: 3 },
    { after: 11, jitter: 20 },
    { after: 23, jitter: 30 },
    { after: 17, jitter: 42 },
    { after: 8, jitter: 55 },
    { after: 30, jitter: 70 },
  ];
  let seedBase = 0;
  for (const { after, jitter } of plan) {
    const r = await importThenKill(seedBase, after, jitter);
    expect(r.signal).toBe('SIGKILL');
    seedBase += 1000;

    const s = await openStudio({ dataDir });
    reports.push(s.openReport);
    expect(s.openReport.quickCheck).toBe('ok');
    // Every listed item has its file, with the content its name promises, and a thumbnail.
    const page = await s.handlers.galleryQuery({ sort: 'newest', offset: 0, limit: 500 });
    expect(page.total).toBeGreaterThan(0);
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
  const sum = (k: 'tempFilesRemoved' | 'orphanFilesRemoved' | 'orphanThumbsRemoved') =>
    reports.reduce((n, r) => n + r[k], 0);
  console.log(
    `crash test: ${reports.length} kills; swept ${sum('tempFilesRemoved')} temp files, ` +
      `${sum('orphanFilesRemoved')} orphan files, ${sum('orphanThumbsRemoved')} orphan thumbnails; ` +
      `${reports.reduce((n, r) => n + r.missingFiles.length + r.restoredFromTrash, 0)} rows repaired`,
  );
});
