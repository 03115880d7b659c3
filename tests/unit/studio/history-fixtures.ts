// Helpers of the history tests: asset rows without files, and databases at an older schema
// version for the migration tests (made with better-sqlite3 directly: History itself works only
// at the latest version, as it prepares its statements then).
import Database from 'better-sqlite3';
import type { History } from '../../../src/main/studio/history.js';
import { migrations } from '../../../src/main/studio/history-migrations.js';

/** Inserts an asset row (no file behind it) for `sha256`, a 1x1 PNG at its usual path; returns the hash. */
export function fakeAsset(h: History, sha256: string): string {
  h.upsertAsset({
    sha256,
    path: `assets/${sha256.slice(0, 2)}/${sha256}.png`,
    mime: 'image/png',
    bytes: 1,
    width: 1,
    height: 1,
    thumbPath: null,
  });
  return sha256;
}

/** Creates `file` at schema `version` (the migrations up to it, nothing else) and returns it open. */
export function databaseAtVersion(file: string, version: number): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.transaction(() => {
    for (const m of migrations) if (m.version <= version) m.up(db);
    db.pragma(`user_version = ${version}`);
  })();
  return db;
}

/** Closes a studio once its background check of the data folder has finished (what the test looks at next). */
export async function checkedClose(s: { checked: Promise<unknown>; close(): Promise<void> }): Promise<void> {
  await s.checked;
  await s.close();
}
