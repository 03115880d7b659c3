// kill -9 during a batched import of 10,000 files: a child imports them in calls of 250 (each
// decoded in parallel and committed in chunks) and is killed at several points. After each kill
// the next open must find every file the child was told was imported (nothing finished is lost),
// no row without its file, asset, run and search entry (no half row), no file without a row once
// the background check has run, and a sound database; a last run to the end gives exactly 10,000.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, expect, it } from 'vitest';
import { openStudio } from '../../../src/main/studio/index.js';

const projectRoot = resolve(__dirname, '../../..');
const child = join(__dirname, 'crash-batch-child.ts');
const dataDir = mkdtempSync(join(tmpdir(), 'fs-crash-batch-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/** Runs the child; kills it `afterMs` after its first reported call (null: lets it finish). Resolves with the hashes it reported. */
function run(afterMs: number | null): Promise<{ reported: Set<string>; killed: boolean }> {
  return new Promise((done, fail) => {
    const p = spawn(process.execPath, ['--import', 'tsx', child, dataDir], {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const reported = new Set<string>();
    let buf = '';
    let stderr = '';
    let armed = false;
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const line of lines) {
        if (!line.startsWith('done ')) continue;
        for (const sha of line.slice(5).split(' ')) reported.add(sha);
        if (afterMs !== null && !armed) {
          armed = true;
          setTimeout(() => p.kill('SIGKILL'), afterMs);
        }
      }
    });
    p.on('error', fail);
    p.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') done({ reported, killed: true });
      else if (code === 0) done({ reported, killed: false });
      else fail(new Error(`child exited ${code}: ${stderr}`));
    });
  });
}

function filesUnder(dir: string): string[] {
  try {
    return readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) =>
        join(e.parentPath, e.name)
          .slice(dataDir.length + 1)
          .split('\\')
          .join('/'),
      );
  } catch {
    return [];
  }
}

it(
  'kill -9 during a batched import of 10,000 files loses no finished file and leaves no half row',
  { timeout: 600_000 },
  async () => {
    const everReported = new Set<string>();
    for (const afterMs of [150, 900, 2500, null]) {
      const { reported, killed } = await run(afterMs);
      expect(killed).toBe(afterMs !== null);
      for (const sha of reported) everReported.add(sha);

      const s = await openStudio({ dataDir, runQueue: false });
      const report = await s.checked;
      expect(report).toMatchObject({ quickCheck: 'ok', sweep: 'done', missingFiles: [] });
      await s.close();

      const db = new Database(join(dataDir, 'history.db'), { readonly: true });
      const shas = new Set(db.prepare('SELECT sha256 FROM images WHERE trashed_at IS NULL').pluck().all() as string[]);
      // Nothing the child was told is finished is lost.
      for (const sha of everReported) expect(shas.has(sha), sha).toBe(true);
      // No half row: every image has its run, asset (with a thumbnail) and search entry; no import run without its image.
      expect(
        db
          .prepare('SELECT count(*) FROM images i LEFT JOIN runs r ON r.id = i.run_id WHERE r.id IS NULL')
          .pluck()
          .get(),
      ).toBe(0);
      expect(
        db
          .prepare(
            'SELECT count(*) FROM images i LEFT JOIN assets a ON a.sha256 = i.sha256 WHERE a.sha256 IS NULL OR a.thumb_path IS NULL',
          )
          .pluck()
          .get(),
      ).toBe(0);
      expect(
        db
          .prepare(
            `SELECT count(*) FROM runs r WHERE kind = 'import' AND NOT EXISTS (SELECT 1 FROM images WHERE run_id = r.id)`,
          )
          .pluck()
          .get(),
      ).toBe(0);
      expect(db.prepare('SELECT count(*) FROM images WHERE trashed_at IS NULL').pluck().get()).toBe(
        db.prepare('SELECT count(*) FROM search').pluck().get(),
      );
      expect(db.prepare('SELECT sum(n) FROM gallery_days').pluck().get()).toBe(shas.size);
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      // Every row's files are there, and (the check having run) every file has its row.
      const rows = db.prepare('SELECT path, thumb_path AS thumb FROM assets').all() as {
        path: string;
        thumb: string;
      }[];
      db.close();
      const known = new Set(rows.flatMap((r) => [r.path, r.thumb]));
      const onDisk = [...filesUnder(join(dataDir, 'assets')), ...filesUnder(join(dataDir, 'thumbs'))].map((f) =>
        f.replace(/^.*?(assets|thumbs)\//, '$1/'),
      );
      for (const f of onDisk) expect(known.has(f), `orphan ${f}`).toBe(true);
      expect(onDisk.length).toBe(known.size);
      if (afterMs === null) expect(shas.size).toBe(10_000);
    }
  },
);
