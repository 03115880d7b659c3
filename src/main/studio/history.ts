// The history database: runs, assets, images, tags and the FTS index, over better-sqlite3.
// The only module (with history-migrations.ts) that imports it. Everything here is
// synchronous, as better-sqlite3 is: a transaction never spans an await.
import { closeSync, openSync, readSync } from 'node:fs';
import Database from 'better-sqlite3';
import { StudioError, type ImageMetadata, type RunKind } from '../../shared/api.js';
import {
  canTransition,
  isTerminalRunState,
  RUN_TRANSITIONS,
  type RunAssetRole,
  type RunState,
} from '../../shared/runs.js';
import { sqliteBindingOptions } from './history-binding.js';
import { LATEST_VERSION, migrations, type Migration } from './history-migrations.js';
import { hasUnspacedScript, parseSearchText } from './fts.js';

export interface RunInput {
  kind: RunKind;
  /** 'done' unless given (an import is recorded once it is complete). */
  status?: RunState;
  title: string;
  note?: string;
  spec: unknown;
  provenance: Record<string, unknown>;
  parentRunId?: number | null;
  createdAt: number;
  startedAt?: number | null;
  finishedAt?: number | null;
  /** Why it failed: required with status 'failed', refused with any other. */
  error?: string | null;
  /** Steps planned, when known. */
  progressTotal?: number | null;
}

/** What a job needs to be queued: a run without state, times or outcome yet. */
export type JobInput = Omit<RunInput, 'status' | 'startedAt' | 'finishedAt' | 'error'>;

/** A move of a run to another state; a failed run says why. */
export type RunChange = { to: Exclude<RunState, 'failed'> } | { to: 'failed'; error: string };

export interface RunRow {
  id: number;
  kind: RunKind;
  status: RunState;
  title: string;
  note: string;
  spec: unknown;
  provenance: Record<string, unknown>;
  parentRunId: number | null;
  createdAt: number;
  /** When it first started running (kept across pauses). */
  startedAt: number | null;
  /** When it became failed, cancelled or done. */
  finishedAt: number | null;
  /** Last change of state or progress. */
  updatedAt: number;
  /** Why it failed; null unless failed. */
  error: string | null;
  progressStep: number | null;
  progressTotal: number | null;
}

export interface AssetRow {
  sha256: string;
  path: string;
  mime: string;
  bytes: number;
  width: number;
  height: number;
  thumbPath: string | null;
}

export interface ImageInput {
  sha256: string;
  fileName: string | null;
  metadata: ImageMetadata | null;
  createdAt: number;
}

/** A run as selected (RUN_COLUMNS), its JSON columns still text. */
type StoredRun = Omit<RunRow, 'spec' | 'provenance'> & { spec: string; provenance: string };

/** An asset a run holds (see RunAssetRole), with its file. */
export interface RunAssetRow extends AssetRow {
  role: RunAssetRole;
  step: number | null;
}

/** The columns a gallery card needs; the page query selects only these. */
export interface CardRow {
  id: number;
  /** Its place in the gallery's order (see history-migrations.ts, version 4): the cursor of a page. */
  sortKey: number;
  runId: number;
  kind: RunKind;
  sha256: string;
  title: string;
  width: number;
  height: number;
  favourite: number;
  createdAt: number;
}

/** An image with its run and asset, as the detail panel needs it: a card's columns and the rest. */
export interface ImageRow extends Omit<CardRow, 'favourite'> {
  favourite: boolean;
  fileName: string | null;
  mime: string;
  bytes: number;
  path: string;
  thumbPath: string | null;
  note: string;
  status: RunState;
  spec: unknown;
  provenance: Record<string, unknown>;
  metadata: ImageMetadata | null;
  trashToken: string | null;
}

export interface HistoryQuery {
  text?: string;
  kind?: RunKind;
  favourite?: boolean;
  from?: number;
  to?: number;
  sort: 'newest' | 'oldest';
  /**
   * The position of the page's first item. Without a cursor or `at`, the page is sought there (a
   * jump: the scrollbar, End); with one, it is only echoed back (the caller knows where its page is).
   */
  offset: number;
  limit: number;
  /** The page right after the item with this sort key, in the query's order (scrolling on). */
  after?: number;
  /** The page right before the item with this sort key (scrolling back). */
  before?: number;
  /** Jump to a date: the page that starts with the first item created at or before it (newest first; at or after, oldest first). */
  at?: number;
}

export interface WatchedFolderRow {
  id: number;
  path: string;
  mirrorDeletes: number;
  addedAt: number;
  lastScanAt: number | null;
}

/** A file seen in a watched folder: its size and time when it was imported (or failed), and as what. */
export interface WatchedFileRow {
  size: number;
  mtimeMs: number;
  sha256: string | null;
  error: string | null;
}

/** What a query selects, without its order and place (counts). */
export type HistoryFilter = Pick<HistoryQuery, 'text' | 'kind' | 'favourite' | 'from' | 'to'>;

export interface HistoryPage {
  rows: CardRow[];
  /** How many items match: exact, or (totalExact false) at least this many; countExact() gives the rest. */
  total: number;
  totalExact: boolean;
  /** The position of the first row (for `at`: computed; otherwise the query's offset). */
  offset: number;
}

/** Places a millisecond has in the gallery's order (sort_key = created_at * SORT_KEY_SLOTS + place). */
export const SORT_KEY_SLOTS = 1024;
/** Sort keys a day spans (gallery_days buckets). */
const DAY_KEYS = 86_400_000 * SORT_KEY_SLOTS;
/** The newest creation time a sort key can hold within Number.MAX_SAFE_INTEGER (the year 2248). */
export const MAX_CREATED_AT = Math.floor(Number.MAX_SAFE_INTEGER / SORT_KEY_SLOTS) - 1;
/** Text matches counted at once; past this a page says "at least" and countExact() counts the rest. */
export const COUNT_CAP = 10_000;

/** A gallery query as SQL pieces: FROM, WHERE and the sort key's column (the FTS rowid for a text query). */
interface Built {
  from: string;
  /** FROM for counting and seeking: the FTS table alone when no filter needs the images table. */
  bare: string;
  where: string[];
  params: Record<string, unknown>;
  key: string;
  text: boolean;
  /** Key range of the date filter, [lo, hi) (null: open). */
  lo: number | null;
  hi: number | null;
}

const SQLITE_HEADER = 'SQLite format 3\0';

/**
 * user_version of an existing database file, read straight from its header (offset 60,
 * big-endian) so that refusing a database opens nothing and writes nothing. null when the
 * file is missing or empty.
 */
function headerUserVersion(file: string): number | null {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const head = Buffer.alloc(100);
    const n = readSync(fd, head, 0, 100, 0);
    if (n === 0) return null;
    if (n < 100 || head.toString('latin1', 0, 16) !== SQLITE_HEADER)
      throw new StudioError(
        'DatabaseInvalid',
        `${file} is not a SQLite database. Move it aside, or choose another data folder.`,
      );
    return head.readUInt32BE(60);
  } finally {
    closeSync(fd);
  }
}

function tooNew(file: string, found: number): StudioError {
  return new StudioError(
    'DatabaseTooNew',
    `The history database ${file} is at schema version ${found}, but this version of Foundation Studio ` +
      `understands schema versions up to ${LATEST_VERSION}. It was written by a newer version of the app: ` +
      `update Foundation Studio to open it. The file has not been changed.`,
  );
}

function danglingReferences(
  file: string,
  version: number,
  rows: { table: string; rowid: number; parent: string }[],
): StudioError {
  const first = rows[0]!;
  return new StudioError(
    'DatabaseCorrupt',
    `Updating the history database ${file} to schema version ${version} found ${rows.length} row(s) that refer to ` +
      `rows that do not exist (the first: ${first.table} row ${first.rowid}, referring to ${first.parent}). ` +
      `Nothing was changed. Copy the data folder somewhere safe, then move history.db aside to start a fresh history.`,
  );
}

/** SQLite's own errors at open, turned into ones that say what to do. */
function explainOpenError(file: string, e: unknown): unknown {
  if (e instanceof StudioError) return e;
  const code = (e as { code?: unknown }).code;
  const msg = (e as Error).message ?? String(e);
  if (typeof code !== 'string') return e;
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB')
    return new StudioError(
      'DatabaseCorrupt',
      `The history database ${file} is damaged (${msg}). Copy the data folder somewhere safe, ` +
        `then move history.db aside to start a fresh history.`,
    );
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))
    return new StudioError(
      'DatabaseBusy',
      `The history database ${file} is locked by another process (${msg}). Close it and retry.`,
    );
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_PERM'))
    return new StudioError(
      'DatabaseUnavailable',
      `Cannot open the history database ${file} for writing (${msg}). Check the data folder's permissions, or choose another data folder.`,
    );
  return e;
}

const parseJson = <T>(text: string | null, fallback: T): T => {
  if (text === null) return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
};

const IMAGE_COLUMNS = `
  i.id, i.sort_key AS sortKey, i.run_id AS runId, i.kind, i.sha256, r.title, a.width, a.height, i.favourite, i.created_at AS createdAt`;

const RUN_COLUMNS = `
  id, kind, status, title, note, spec, provenance, parent_run_id AS parentRunId, created_at AS createdAt,
  started_at AS startedAt, finished_at AS finishedAt, updated_at AS updatedAt, error,
  progress_step AS progressStep, progress_total AS progressTotal`;

const ASSET_COLUMNS = `a.sha256, a.path, a.mime, a.bytes, a.width, a.height, a.thumb_path AS thumbPath`;

/** A run's spec and provenance as stored (JSON text), parsed. */
function withParsedJson<T extends { spec: string; provenance: string }>(
  r: T,
): Omit<T, 'spec' | 'provenance'> & { spec: unknown; provenance: Record<string, unknown> } {
  return {
    ...r,
    spec: parseJson<unknown>(r.spec, {}),
    provenance: parseJson<Record<string, unknown>>(r.provenance, {}),
  };
}

const invalid = (message: string) => new StudioError('InvalidArgument', message);

export class History {
  readonly db: Database.Database;
  private readonly cache = new Map<string, Database.Statement>();
  private readonly s;

  private constructor(
    db: Database.Database,
    readonly file: string,
  ) {
    this.db = db;
    const p = (sql: string) => db.prepare(sql);
    this.s = {
      insertRun:
        p(`INSERT INTO runs (kind, status, title, note, spec, provenance, parent_run_id, created_at, started_at,
                                      finished_at, updated_at, error, progress_total)
                    VALUES (@kind, @status, @title, @note, @spec, @provenance, @parentRunId, @createdAt, @startedAt,
                            @finishedAt, @updatedAt, @error, @progressTotal)`),
      run: p(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = ?`),
      runsOldest: p(`SELECT ${RUN_COLUMNS} FROM runs WHERE status = @state
                     ORDER BY created_at, id LIMIT @limit OFFSET @offset`),
      runsNewest: p(`SELECT ${RUN_COLUMNS} FROM runs WHERE status = @state
                     ORDER BY created_at DESC, id DESC LIMIT @limit OFFSET @offset`),
      // Compare-and-set on the state read just before: a concurrent move by another connection makes it change nothing.
      moveRun: p(`UPDATE runs SET status = @to, error = @error, updated_at = @now,
                    started_at = CASE WHEN @to = 'running' THEN coalesce(started_at, @now) ELSE started_at END,
                    finished_at = CASE WHEN @to IN ('failed', 'cancelled', 'done') THEN @now ELSE finished_at END
                  WHERE id = @id AND status = @from`),
      setProgress: p(`UPDATE runs SET progress_step = @step, progress_total = @total, updated_at = @now
                      WHERE id = @id AND status = 'running'`),
      interruptRuns: p(`UPDATE runs SET status = 'failed', error = @error, finished_at = @now, updated_at = @now
                        WHERE status = 'running' RETURNING id`),
      deleteRun: p(`DELETE FROM runs WHERE id = ?`),
      queued: p(`SELECT ${RUN_COLUMNS} FROM runs WHERE status = 'queued' ORDER BY queue_order, id`),
      lastQueueOrder: p(`SELECT max(queue_order) AS last FROM runs WHERE status = 'queued'`),
      setQueueOrder: p(`UPDATE runs SET queue_order = @order, updated_at = @now WHERE id = @id`),
      setSpec: p(`UPDATE runs SET spec = @spec, provenance = @provenance, title = @title, updated_at = @now
                  WHERE id = @id`),
      addSnapshot: p(`INSERT OR REPLACE INTO run_snapshots (run_id, step, grid_width, grid_height, tokens)
                      VALUES (@runId, @step, @gridWidth, @gridHeight, @tokens)`),
      snapshots: p(`SELECT step, grid_width AS gridWidth, grid_height AS gridHeight FROM run_snapshots
                    WHERE run_id = ? ORDER BY step`),
      snapshot: p(`SELECT step, grid_width AS gridWidth, grid_height AS gridHeight, tokens FROM run_snapshots
                   WHERE run_id = @runId AND step <= @step ORDER BY step DESC LIMIT 1`),
      addRunAsset: p(`INSERT INTO run_assets (run_id, sha256, role, step)
                      SELECT @runId, @sha256, @role, @step
                      WHERE NOT EXISTS (SELECT 1 FROM run_assets WHERE run_id = @runId AND role = @role
                                        AND step IS @step AND sha256 = @sha256)`),
      runAssets: p(`SELECT ra.role, ra.step, ${ASSET_COLUMNS} FROM run_assets ra JOIN assets a ON a.sha256 = ra.sha256
                    WHERE ra.run_id = @runId AND (@role IS NULL OR ra.role = @role)
                    ORDER BY ra.role, ra.step, ra.id`),
      runsOfAsset: p(`SELECT DISTINCT run_id AS id FROM run_assets WHERE sha256 = ? ORDER BY run_id`),
      shasOfRun: p(`SELECT sha256 FROM images WHERE run_id = @runId
                    UNION SELECT sha256 FROM run_assets WHERE run_id = @runId`),
      upsertAsset: p(`INSERT INTO assets (sha256, path, mime, bytes, width, height, thumb_path)
                      VALUES (@sha256, @path, @mime, @bytes, @width, @height, @thumbPath)
                      ON CONFLICT (sha256) DO UPDATE SET path = excluded.path, thumb_path = excluded.thumb_path`),
      // The sort key: after the images created in the same millisecond (see migration 4).
      insertImage: p(`INSERT INTO images (run_id, kind, sha256, file_name, metadata, created_at, sort_key)
                      VALUES (@runId, (SELECT kind FROM runs WHERE id = @runId), @sha256, @fileName, @metadata, @createdAt,
                        (SELECT CASE WHEN m IS NULL THEN @createdAt * ${SORT_KEY_SLOTS}
                                     WHEN m + 1 < (@createdAt + 1) * ${SORT_KEY_SLOTS} THEN m + 1
                                     ELSE (SELECT max(sort_key) + 1 FROM images) END
                         FROM (SELECT max(sort_key) AS m FROM images WHERE sort_key >= @createdAt * ${SORT_KEY_SLOTS}
                               AND sort_key < (@createdAt + 1) * ${SORT_KEY_SLOTS})))`),
      sortKeyOf: p(`SELECT sort_key AS k FROM images WHERE id = ?`),
      days: p(`SELECT day, sum(n) AS n FROM gallery_days
               WHERE (@kind IS NULL OR kind = @kind) AND (@fav IS NULL OR favourite = @fav)
                 AND day >= @dayLo AND day <= @dayHi
               GROUP BY day HAVING sum(n) > 0 ORDER BY day`),
      liveBySha: p(`SELECT id FROM images WHERE sha256 = ? AND trashed_at IS NULL ORDER BY id LIMIT 1`),
      asset: p(`SELECT sha256, path, mime, bytes, width, height, thumb_path AS thumbPath FROM assets WHERE sha256 = ?`),
      allAssets: p(`SELECT sha256, path, mime, bytes, width, height, thumb_path AS thumbPath FROM assets`),
      setThumb: p(`UPDATE assets SET thumb_path = ? WHERE sha256 = ?`),
      image: p(`SELECT ${IMAGE_COLUMNS}, i.file_name AS fileName, a.mime, a.bytes, a.path, a.thumb_path AS thumbPath,
                       r.note, r.status, r.spec, r.provenance, i.metadata, i.trash_token AS trashToken
                FROM images i JOIN runs r ON r.id = i.run_id JOIN assets a ON a.sha256 = i.sha256
                WHERE i.id = ?`),
      card: p(`SELECT ${IMAGE_COLUMNS} FROM images i JOIN runs r ON r.id = i.run_id JOIN assets a ON a.sha256 = i.sha256
               WHERE i.id = ?`),
      tags: p(`SELECT tag FROM tags WHERE image_id = ? ORDER BY tag`),
      deleteTags: p(`DELETE FROM tags WHERE image_id = ?`),
      insertTag: p(`INSERT OR IGNORE INTO tags (image_id, tag) VALUES (?, ?)`),
      setFavourite: p(`UPDATE images SET favourite = ? WHERE id = ? AND trashed_at IS NULL`),
      setNote: p(`UPDATE runs SET note = ? WHERE id = (SELECT run_id FROM images WHERE id = ?)`),
      imagesOfRun: p(`SELECT id, trash_token AS trashToken FROM images WHERE run_id = ?`),
      searchDelete: p(`DELETE FROM search WHERE rowid = ?`),
      unspacedDelete: p(`DELETE FROM search_unspaced WHERE rowid = ?`),
      unspacedInsert: p(`INSERT INTO search_unspaced (rowid, text) VALUES (?, ?)`),
      searchInsert: p(`INSERT INTO search (rowid, prompt, negative, labels, note, tags, file, meta)
                       VALUES (@id, @prompt, @negative, @labels, @note, @tags, @file, @meta)`),
      trash: p(`UPDATE images SET trashed_at = ?, trash_token = ? WHERE id = ? AND trashed_at IS NULL`),
      trashed: p(`SELECT id, sha256, run_id AS runId FROM images WHERE trash_token = ?`),
      untrash: p(`UPDATE images SET trashed_at = NULL, trash_token = NULL WHERE trash_token = ?`),
      oldTokens: p(`SELECT DISTINCT trash_token AS token FROM images WHERE trashed_at < ? AND trash_token IS NOT NULL`),
      deleteTrashed: p(`DELETE FROM images WHERE trash_token = ?`),
      deleteImage: p(`DELETE FROM images WHERE id = ?`),
      deleteIfEmptyImport: p(
        `DELETE FROM runs WHERE id = ? AND kind = 'import' AND NOT EXISTS (SELECT 1 FROM images WHERE run_id = runs.id)`,
      ),
      unreferencedAssets: p(`SELECT ${ASSET_COLUMNS} FROM assets a
                             WHERE NOT EXISTS (SELECT 1 FROM images i WHERE i.sha256 = a.sha256)
                               AND NOT EXISTS (SELECT 1 FROM run_assets ra WHERE ra.sha256 = a.sha256)`),
      deleteAsset: p(`DELETE FROM assets WHERE sha256 = ?`),
      imagesOfAsset: p(`SELECT id FROM images WHERE sha256 = ?`),
      isLive: p(`SELECT 1 WHERE EXISTS (SELECT 1 FROM images WHERE sha256 = @sha256 AND trashed_at IS NULL)
                              OR EXISTS (SELECT 1 FROM run_assets WHERE sha256 = @sha256)`),
      isReferenced: p(`SELECT 1 WHERE EXISTS (SELECT 1 FROM images WHERE sha256 = @sha256)
                                    OR EXISTS (SELECT 1 FROM run_assets WHERE sha256 = @sha256)`),
      tokenExists: p(`SELECT 1 FROM images WHERE trash_token = ? LIMIT 1`),
      assetsOfToken: p(`SELECT sha256, path, mime, bytes, width, height, thumb_path AS thumbPath FROM assets
                        WHERE sha256 IN (SELECT sha256 FROM images WHERE trash_token = ?)`),
    };
  }

  /**
   * Opens (creating if needed) and migrates. A database from a newer schema is refused
   * before anything is written: the version is read from the file header first, then again
   * through a read-only connection (a newer app may have left the change in its WAL), and only
   * then is the database opened for writing and switched to WAL.
   */
  static open(file: string, opts: { migrations?: readonly Migration[] } = {}): History {
    try {
      return History.openUnchecked(file, opts);
    } catch (e) {
      throw explainOpenError(file, e);
    }
  }

  private static openUnchecked(file: string, opts: { migrations?: readonly Migration[] }): History {
    const list = opts.migrations ?? migrations;
    const latest = list.at(-1)?.version ?? 0;
    const headerVersion = headerUserVersion(file);
    if (headerVersion !== null) {
      if (headerVersion > latest) throw tooNew(file, headerVersion);
      const ro = new Database(file, { ...sqliteBindingOptions(), readonly: true, fileMustExist: true });
      try {
        const v = ro.pragma('user_version', { simple: true }) as number;
        if (v > latest) throw tooNew(file, v);
      } finally {
        ro.close();
      }
    }
    const db = new Database(file, sqliteBindingOptions());
    try {
      // Another process (app, server, CLI) may hold the database: wait for its locks rather than fail.
      db.pragma('busy_timeout = 5000');
      db.pragma('journal_mode = WAL');
      // NORMAL is safe against process crashes in WAL mode (only a power cut can lose the last commit).
      db.pragma('synchronous = NORMAL');
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > latest) throw tooNew(file, version);
      const pending = list.filter((m) => m.version > version);
      if (pending.length > 0) {
        // Off while migrating, so that a table can be rebuilt (see history-migrations.ts); the
        // pragma does nothing inside a transaction, so it is set before. What the rebuild could
        // have broken is checked before the commit: a dangling reference rolls everything back.
        db.pragma('foreign_keys = OFF');
        db.transaction(() => {
          for (const m of pending) {
            m.up(db);
            db.pragma(`user_version = ${m.version}`);
          }
          const dangling = db.pragma('foreign_key_check') as { table: string; rowid: number; parent: string }[];
          if (dangling.length > 0) throw danglingReferences(file, latest, dangling);
        })();
      }
      db.pragma('foreign_keys = ON');
      return new History(db, file);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  static readonly latestVersion = LATEST_VERSION;

  /**
   * A second, read-only connection to a database another connection has opened and migrated (the
   * history worker's: counts and checks that must not hold up the main thread). Refused unless the
   * database is at this version's schema.
   */
  static openReadOnly(file: string): History {
    const db = new Database(file, { ...sqliteBindingOptions(), readonly: true, fileMustExist: true });
    try {
      db.pragma('busy_timeout = 5000');
      const v = db.pragma('user_version', { simple: true }) as number;
      if (v !== LATEST_VERSION) throw new Error(`${file} is at schema version ${v}, not ${LATEST_VERSION}`);
      return new History(db, file);
    } catch (e) {
      db.close();
      throw explainOpenError(file, e);
    }
  }

  /**
   * A cheap check at open: the first and last row of every table is read, which fails on a
   * database whose pages are damaged at the roots or edges of its b-trees. The full PRAGMA
   * quick_check reads every page, so it runs in the background (the history worker) instead.
   */
  probe(): void {
    try {
      const tables = this.db
        .prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'`)
        .all() as { name: string; sql: string }[];
      for (const { name, sql } of tables) {
        const t = `"${name.replace(/"/g, '""')}"`;
        this.db.prepare(`SELECT * FROM ${t} LIMIT 1`).all();
        if (!/WITHOUT\s+ROWID/i.test(sql)) this.db.prepare(`SELECT * FROM ${t} ORDER BY rowid DESC LIMIT 1`).all();
      }
    } catch (e) {
      throw explainOpenError(this.file, e);
    }
  }

  // ---------- watched folders ----------
  watchedFolders(): WatchedFolderRow[] {
    return this.stmt(
      `SELECT id, path, mirror_deletes AS mirrorDeletes, added_at AS addedAt, last_scan_at AS lastScanAt
       FROM watched_folders ORDER BY id`,
    ).all() as WatchedFolderRow[];
  }

  addWatchedFolder(path: string, mirrorDeletes: boolean, now: number): number {
    const r = this.stmt(`INSERT INTO watched_folders (path, mirror_deletes, added_at) VALUES (?, ?, ?)`).run(
      path,
      mirrorDeletes ? 1 : 0,
      now,
    );
    return Number(r.lastInsertRowid);
  }

  /** Forgets a watched folder and what was seen in it (the images stay). */
  removeWatchedFolder(id: number): boolean {
    return this.transaction(() => {
      this.stmt(`DELETE FROM watched_files WHERE folder_id = ?`).run(id);
      return this.stmt(`DELETE FROM watched_folders WHERE id = ?`).run(id).changes > 0;
    });
  }

  setWatchedFolderScanned(id: number, now: number): void {
    this.stmt(`UPDATE watched_folders SET last_scan_at = ? WHERE id = ?`).run(now, id);
  }

  /** Every file recorded in a watched folder, by its path inside it. */
  watchedFiles(folderId: number): Map<string, WatchedFileRow> {
    const rows = this.stmt(
      `SELECT rel, size, mtime_ms AS mtimeMs, sha256, error FROM watched_files WHERE folder_id = ?`,
    ).all(folderId) as (WatchedFileRow & { rel: string })[];
    return new Map(rows.map(({ rel, ...r }) => [rel, r]));
  }

  watchedFile(folderId: number, rel: string): WatchedFileRow | null {
    return (
      (this.stmt(
        `SELECT size, mtime_ms AS mtimeMs, sha256, error FROM watched_files WHERE folder_id = ? AND rel = ?`,
      ).get(folderId, rel) as WatchedFileRow | undefined) ?? null
    );
  }

  recordWatchedFile(folderId: number, rel: string, f: WatchedFileRow): void {
    this.stmt(
      `INSERT OR REPLACE INTO watched_files (folder_id, rel, size, mtime_ms, sha256, error) VALUES (?, ?, ?, ?, ?, ?)`,
    ).run(folderId, rel, f.size, Math.round(f.mtimeMs), f.sha256, f.error);
  }

  forgetWatchedFile(folderId: number, rel: string): void {
    this.stmt(`DELETE FROM watched_files WHERE folder_id = ? AND rel = ?`).run(folderId, rel);
  }

  /** Whether any watched folder still has a file with this content. */
  watchedShaExists(sha256: string): boolean {
    return this.stmt(`SELECT 1 FROM watched_files WHERE sha256 = ? LIMIT 1`).get(sha256) !== undefined;
  }

  watchedFileCounts(folderId: number): { files: number; failed: number } {
    return this.stmt(
      `SELECT count(*) AS files, count(*) - count(sha256) AS failed FROM watched_files WHERE folder_id = ?`,
    ).get(folderId) as { files: number; failed: number };
  }

  /** The asset rows whose hash starts with `shard` (two hex digits), for the background check. */
  assetsInShard(shard: string): AssetRow[] {
    const hi = shard[0]! + String.fromCharCode(shard.charCodeAt(1) + 1);
    return this.stmt(`SELECT ${ASSET_COLUMNS} FROM assets a WHERE a.sha256 >= ? AND a.sha256 < ?`).all(
      shard,
      hi,
    ) as AssetRow[];
  }

  get userVersion(): number {
    return this.db.pragma('user_version', { simple: true }) as number;
  }

  close(): void {
    if (!this.db.open) return;
    this.db.pragma('optimize');
    this.db.close();
  }

  quickCheck(): string {
    return (this.db.pragma('quick_check', { simple: true }) as string) ?? 'ok';
  }

  /** A prepared statement for a dynamically built query, prepared once per distinct SQL. */
  private stmt(sql: string): Database.Statement {
    let s = this.cache.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.cache.set(sql, s);
    }
    return s;
  }

  // ---------- writes ----------
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  insertRun(run: RunInput): number {
    const status = run.status ?? 'done';
    const error = run.error ?? null;
    if ((status === 'failed') !== (error !== null && error.trim() !== ''))
      throw invalid(
        status === 'failed'
          ? 'A failed run needs an error message saying why it failed.'
          : `Only a failed run has an error message (this one is ${status}).`,
      );
    const r = this.s.insertRun.run({
      kind: run.kind,
      status,
      title: run.title,
      note: run.note ?? '',
      spec: JSON.stringify(run.spec ?? {}),
      provenance: JSON.stringify(run.provenance),
      parentRunId: run.parentRunId ?? null,
      createdAt: run.createdAt,
      startedAt: run.startedAt ?? null,
      finishedAt: run.finishedAt ?? null,
      updatedAt: run.finishedAt ?? run.startedAt ?? run.createdAt,
      error,
      progressTotal: run.progressTotal ?? null,
    });
    return Number(r.lastInsertRowid);
  }

  // ---------- runs as jobs ----------
  /** Records a job in the queue (state 'queued'); the queue is listRunsByState('queued'), oldest first. */
  enqueueRun(job: JobInput): number {
    return this.insertRun({ ...job, status: 'queued', startedAt: null, finishedAt: null, error: null });
  }

  /**
   * Moves a run to another state if RUN_TRANSITIONS allows it (src/shared/runs.ts), and
   * returns it as it is now. Entering 'running' sets startedAt the first time; entering a
   * terminal state sets finishedAt. Throws NotFound for an unknown run and InvalidTransition
   * for a move that is not allowed, or when the run changed state meanwhile (another process).
   */
  transitionRun(id: number, change: RunChange, now: number): RunRow {
    const run = this.getRun(id);
    if (!run) throw new StudioError('NotFound', `No run with id ${id} (it may have been deleted).`);
    const { to } = change;
    if (!canTransition(run.status, to)) {
      const allowed = RUN_TRANSITIONS[run.status];
      throw new StudioError(
        'InvalidTransition',
        `Run ${id} is ${run.status} and cannot become ${String(to)}: ` +
          (allowed.length > 0 ? `from ${run.status} it can become ${allowed.join(', ')}.` : 'it has finished.'),
      );
    }
    const error = change.to === 'failed' ? change.error : null;
    if (change.to === 'failed' && !(typeof error === 'string' && error.trim() !== ''))
      throw invalid(`Run ${id} cannot be marked failed without an error message saying why.`);
    if (this.s.moveRun.run({ id, from: run.status, to, error, now }).changes === 0) {
      const current = this.getRun(id);
      throw new StudioError(
        'InvalidTransition',
        `Run ${id} changed state while it was being moved from ${run.status} to ${to} ` +
          `(it is ${current ? current.status : 'deleted'} now). Refresh and try again.`,
      );
    }
    return this.getRun(id)!;
  }

  /**
   * Records the progress of a running run. Returns false (and changes nothing) when the run is
   * not running: a step that finishes after a pause or a cancel was asked for is not recorded.
   */
  setRunProgress(id: number, step: number, total: number | null, now: number): boolean {
    if (!Number.isInteger(step) || step < 0)
      throw invalid(`A run's progress step must be a whole number >= 0 (got ${step}).`);
    if (total !== null && (!Number.isInteger(total) || total < Math.max(1, step)))
      throw invalid(`A run's step total must be a whole number >= 1 and >= its step (got ${step} of ${total}).`);
    return this.s.setProgress.run({ id, step, total, now }).changes > 0;
  }

  /**
   * Marks every run left 'running' as failed with `error`; returns their ids. Only for the
   * open-time recovery, when no other process has the data folder open (one that has may be
   * running them).
   */
  failInterruptedRuns(error: string, now: number): number[] {
    return (this.s.interruptRuns.all({ error, now }) as { id: number }[]).map((r) => r.id);
  }

  /**
   * Records that a run holds an asset (whose row must exist: upsertAsset first). Returns false
   * when it already held it in that role and step. The caller makes sure the asset's file is
   * in assets/: one whose images are all in the trash has its file in trash/<token>/ until an
   * open-time sweep brings it back (write the same bytes again, as an import of a duplicate does).
   */
  addRunAsset(runId: number, a: { sha256: string; role: RunAssetRole; step?: number | null }): boolean {
    return this.s.addRunAsset.run({ runId, sha256: a.sha256, role: a.role, step: a.step ?? null }).changes > 0;
  }

  /** The assets a run holds (all, or those in one role), by role, then step, then order added. */
  runAssets(runId: number, role?: RunAssetRole): RunAssetRow[] {
    return this.s.runAssets.all({ runId, role: role ?? null }) as RunAssetRow[];
  }

  /** The runs that hold this asset (in any role). */
  runIdsOfAsset(sha256: string): number[] {
    return (this.s.runsOfAsset.all(sha256) as { id: number }[]).map((r) => r.id);
  }

  /**
   * Deletes a finished run for good, with what it holds (run_assets, by cascade) and its
   * images that are in the trash; runs forked from it keep going without a parent. Refused for
   * a run that is not finished (cancel it first) or that still has gallery images (delete them
   * first). Returns the trashed images deleted with it, the trash tokens they were under, and
   * the assets nothing references any more: the caller deletes their files (from assets/,
   * thumbs/ and those tokens' trash folders), after this has returned.
   */
  deleteRun(id: number): { imageIds: number[]; trashTokens: string[]; orphaned: AssetRow[] } {
    return this.transaction(() => {
      const run = this.getRun(id);
      if (!run) throw new StudioError('NotFound', `No run with id ${id} (it may have been deleted).`);
      if (!isTerminalRunState(run.status))
        throw new StudioError('RunActive', `Run ${id} is ${run.status}: cancel it before deleting it.`);
      const images = this.s.imagesOfRun.all(id) as { id: number; trashToken: string | null }[];
      const live = images.filter((i) => i.trashToken === null).map((i) => i.id);
      if (live.length > 0)
        throw new StudioError(
          'RunHasImages',
          `Run ${id} still has ${live.length} gallery item(s) (${live.join(', ')}): delete them first.`,
        );
      const held = this.shasOfRun(id);
      for (const i of images) this.unindex(i.id);
      this.s.deleteRun.run(id);
      return {
        imageIds: images.map((i) => i.id),
        trashTokens: [...new Set(images.map((i) => i.trashToken!))],
        orphaned: this.dropIfUnreferenced(held),
      };
    });
  }

  getRun(id: number): RunRow | null {
    const r = this.s.run.get(id) as StoredRun | undefined;
    return r ? withParsedJson(r) : null;
  }

  /** The runs in one state, oldest first unless asked (the queue: 'queued'), all unless a limit is given. */
  listRunsByState(
    state: RunState,
    opts: { order?: 'oldest' | 'newest'; limit?: number; offset?: number } = {},
  ): RunRow[] {
    const stmt = opts.order === 'newest' ? this.s.runsNewest : this.s.runsOldest;
    const rows = stmt.all({ state, limit: opts.limit ?? -1, offset: opts.offset ?? 0 }) as StoredRun[];
    return rows.map(withParsedJson);
  }

  /** The job to run next: the oldest queued run, or null when the queue is empty. */
  nextQueuedRun(): RunRow | null {
    return this.listRunsByState('queued', { limit: 1 })[0] ?? null;
  }

  // ---------- the generation queue and trajectories ----------
  /** The run's images that are in the gallery (not in the trash), oldest first. */
  liveImageIdsOfRun(runId: number): number[] {
    return (this.s.imagesOfRun.all(runId) as { id: number; trashToken: string | null }[])
      .filter((i) => i.trashToken === null)
      .map((i) => i.id);
  }

  /** The queued runs in queue order (a queued run without an order goes by its id, after those with one). */
  queuedRuns(): RunRow[] {
    return (this.s.queued.all() as StoredRun[]).map(withParsedJson);
  }

  /** Puts a run at the end of the queue's order. */
  appendToQueue(id: number, now: number): void {
    const last = (this.s.lastQueueOrder.get() as { last: number | null }).last ?? 0;
    this.s.setQueueOrder.run({ id, order: last + 1, now });
  }

  /** Moves a queued run before another (or to the end with null); returns the queue in its new order. */
  moveInQueue(id: number, before: number | null, now: number): RunRow[] {
    return this.transaction(() => {
      const queue = this.queuedRuns();
      if (!queue.some((r) => r.id === id))
        throw new StudioError('NotQueued', `Run ${id} is not waiting in the queue (it may have started or finished).`);
      if (before !== null && !queue.some((r) => r.id === before))
        throw new StudioError('NotQueued', `Run ${before} is not waiting in the queue.`);
      const order = queue.filter((r) => r.id !== id);
      const at = before === null ? order.length : order.findIndex((r) => r.id === before);
      order.splice(
        at,
        0,
        queue.find((r) => r.id === id)!,
      );
      order.forEach((r, k) => this.s.setQueueOrder.run({ id: r.id, order: k + 1, now }));
      return this.queuedRuns();
    });
  }

  /** Replaces a run's spec, provenance and title (a run records what it resolved: its seed, models, size). */
  setRunSpec(id: number, r: { spec: unknown; provenance: Record<string, unknown>; title: string }, now: number): void {
    this.s.setSpec.run({
      id,
      spec: JSON.stringify(r.spec ?? {}),
      provenance: JSON.stringify(r.provenance),
      title: r.title,
      now,
    });
  }

  /** Keeps a run's tokens at a step (replacing one kept for that step before). */
  addSnapshot(runId: number, step: number, grid: { width: number; height: number }, tokens: Int32Array): void {
    if (tokens.length !== grid.width * grid.height)
      throw invalid(`A snapshot of a ${grid.width}x${grid.height} grid needs ${grid.width * grid.height} tokens.`);
    const bytes = Buffer.from(tokens.buffer, tokens.byteOffset, tokens.byteLength);
    this.s.addSnapshot.run({ runId, step, gridWidth: grid.width, gridHeight: grid.height, tokens: bytes });
  }

  /** The steps a run has snapshots of, in order. */
  snapshotSteps(runId: number): { step: number; gridWidth: number; gridHeight: number }[] {
    return this.s.snapshots.all(runId) as { step: number; gridWidth: number; gridHeight: number }[];
  }

  /** The snapshot at `step`, or the last one before it; null when there is none. */
  snapshotAt(
    runId: number,
    step: number,
  ): { step: number; gridWidth: number; gridHeight: number; tokens: Int32Array } | null {
    const r = this.s.snapshot.get({ runId, step }) as
      { step: number; gridWidth: number; gridHeight: number; tokens: Buffer } | undefined;
    if (!r) return null;
    const tokens = new Int32Array(r.tokens.byteLength / 4);
    new Uint8Array(tokens.buffer).set(r.tokens);
    return { ...r, tokens };
  }

  /** The SQL of a prepared statement whose plan matters (exposed so a test can EXPLAIN it). */
  statementSql(
    name: 'runsOldest' | 'runsNewest' | 'isLive' | 'isReferenced' | 'unreferencedAssets' | 'shasOfRun',
  ): string {
    return this.s[name].source;
  }

  upsertAsset(a: AssetRow): void {
    this.s.upsertAsset.run(a);
  }

  insertImage(runId: number, img: ImageInput): number {
    if (!Number.isSafeInteger(img.createdAt) || img.createdAt < 0 || img.createdAt > MAX_CREATED_AT)
      throw invalid(`An image's creation time must be a whole number of ms from 0 to ${MAX_CREATED_AT}.`);
    const r = this.s.insertImage.run({
      runId,
      sha256: img.sha256,
      fileName: img.fileName,
      metadata: img.metadata ? JSON.stringify(img.metadata) : null,
      createdAt: img.createdAt,
    });
    const id = Number(r.lastInsertRowid);
    this.reindex(id);
    return id;
  }

  /** Rewrites an image's row in the FTS index from its current sources (only live images are indexed). */
  reindex(id: number): void {
    const row = this.getImage(id);
    this.unindex(id);
    if (!row || row.trashToken !== null) return;
    const spec = (row.spec ?? {}) as Record<string, unknown>;
    const meta = row.metadata;
    const text = (v: unknown) => (typeof v === 'string' ? v : '');
    const labels = Array.isArray(spec.labels) ? spec.labels.filter((l) => typeof l === 'string').join(' ') : '';
    const params = meta ? Object.entries(meta.parameters).map(([k, v]) => `${k} ${v}`) : [];
    const fields = {
      prompt: [meta?.prompt ?? text(spec.prompt), row.title].join('\n'),
      negative: meta?.negativePrompt ?? text(spec.negativePrompt),
      labels,
      note: row.note,
      tags: this.tagsOf(id).join(' '),
      file: (row.fileName ?? '').replace(/[._-]+/g, ' ') + ' ' + (row.fileName ?? ''),
      meta: [meta && meta.source !== 'none' ? meta.source : '', ...params].join('\n'),
    };
    this.s.searchInsert.run({ id: row.sortKey, ...fields });
    const all = Object.values(fields).join('\n');
    if (hasUnspacedScript(all)) this.s.unspacedInsert.run(row.sortKey, all);
  }

  /** Takes an image out of the FTS index (its rows there are keyed by its sort key). */
  private unindex(id: number): void {
    const r = this.s.sortKeyOf.get(id) as { k: number | null } | undefined;
    if (r?.k == null) return;
    this.s.searchDelete.run(r.k);
    this.s.unspacedDelete.run(r.k);
  }

  setFavourite(id: number, favourite: boolean): boolean {
    return this.s.setFavourite.run(favourite ? 1 : 0, id).changes > 0;
  }

  setNote(id: number, note: string): boolean {
    return this.transaction(() => {
      const img = this.getImage(id);
      if (!img || img.trashToken !== null) return false;
      this.s.setNote.run(note, id);
      for (const { id: other } of this.s.imagesOfRun.all(img.runId) as { id: number }[]) this.reindex(other);
      return true;
    });
  }

  setTags(id: number, tags: readonly string[]): boolean {
    return this.transaction(() => {
      const img = this.getImage(id);
      if (!img || img.trashToken !== null) return false;
      this.s.deleteTags.run(id);
      for (const t of tags) this.s.insertTag.run(id, t);
      this.reindex(id);
      return true;
    });
  }

  /**
   * Marks live images as trashed under `token`. Returns the ids trashed and the assets that
   * nothing live holds any more, no live image and no run (their files can move to the trash
   * folder); an asset a run still holds keeps its file in assets/.
   */
  trash(ids: readonly number[], token: string, now: number): { ids: number[]; orphaned: AssetRow[] } {
    return this.transaction(() => {
      const done: number[] = [];
      const shas = new Set<string>();
      for (const id of ids) {
        const img = this.getImage(id);
        if (!img || img.trashToken !== null) continue;
        this.s.trash.run(now, token, id);
        this.unindex(id); // the trash is not searched
        done.push(id);
        shas.add(img.sha256);
      }
      const orphaned = [...shas].filter((sha) => !this.isAssetLive(sha)).map((sha) => this.getAsset(sha)!);
      return { ids: done, orphaned };
    });
  }

  /** Brings back the images trashed under `token`; returns their ids and assets. */
  untrash(token: string): { ids: number[]; assets: AssetRow[] } {
    return this.transaction(() => {
      const rows = this.s.trashed.all(token) as { id: number; sha256: string }[];
      this.s.untrash.run(token);
      for (const r of rows) this.reindex(r.id);
      const assets = [...new Set(rows.map((r) => r.sha256))].map((sha) => this.getAsset(sha)!);
      return { ids: rows.map((r) => r.id), assets };
    });
  }

  tokenExists(token: string): boolean {
    return this.s.tokenExists.get(token) !== undefined;
  }

  /** The assets of the images trashed under `token` (whose files may sit in its trash folder). */
  assetsOfToken(token: string): AssetRow[] {
    return this.s.assetsOfToken.all(token) as AssetRow[];
  }

  trashTokensBefore(cutoff: number): string[] {
    return (this.s.oldTokens.all(cutoff) as { token: string }[]).map((r) => r.token);
  }

  /**
   * Deletes the rows trashed under `token` for good, with the import runs left without an
   * image (an import run is its image); returns the assets nothing references now (no image,
   * no run). Only the assets of what it deleted are checked, each by two index lookups: the
   * cost is that of the batch, not of the whole history.
   */
  purge(token: string): AssetRow[] {
    return this.transaction(() => {
      const rows = this.s.trashed.all(token) as { id: number; sha256: string; runId: number }[];
      for (const { id } of rows) this.unindex(id);
      this.s.deleteTrashed.run(token);
      const candidates = new Set(rows.map((r) => r.sha256));
      for (const runId of new Set(rows.map((r) => r.runId))) {
        const held = this.shasOfRun(runId);
        if (this.s.deleteIfEmptyImport.run(runId).changes > 0) for (const sha of held) candidates.add(sha);
      }
      return this.dropIfUnreferenced(candidates);
    });
  }

  /** The assets a run's images show and the assets it holds. */
  private shasOfRun(runId: number): string[] {
    return (this.s.shasOfRun.all({ runId }) as { sha256: string }[]).map((r) => r.sha256);
  }

  /** Of these assets, deletes the rows of those nothing references (no image, no run); returns them. */
  private dropIfUnreferenced(shas: Iterable<string>): AssetRow[] {
    const out: AssetRow[] = [];
    for (const sha256 of shas) {
      if (this.s.isReferenced.get({ sha256 }) !== undefined) continue;
      const a = this.getAsset(sha256);
      if (!a) continue;
      this.s.deleteAsset.run(sha256);
      out.push(a);
    }
    return out;
  }

  /** Every image (live or trashed) that shows this asset. */
  imageIdsOfAsset(sha256: string): number[] {
    return (this.s.imagesOfAsset.all(sha256) as { id: number }[]).map((r) => r.id);
  }

  /**
   * Deletes the asset rows nothing references: no image (live or in the trash) and no run
   * (run_assets). Returns them; the caller deletes their files. A scan of every asset (with two
   * index lookups each), for a full clean-up; purge and deleteRun check only their own assets.
   */
  dropUnreferencedAssets(): AssetRow[] {
    const rows = this.s.unreferencedAssets.all() as AssetRow[];
    for (const r of rows) this.s.deleteAsset.run(r.sha256);
    return rows;
  }

  setThumbPath(sha256: string, thumbPath: string | null): void {
    this.s.setThumb.run(thumbPath, sha256);
  }

  // ---------- reads ----------
  liveImageIdBySha(sha256: string): number | null {
    const r = this.s.liveBySha.get(sha256) as { id: number } | undefined;
    return r?.id ?? null;
  }

  getAsset(sha256: string): AssetRow | null {
    return (this.s.asset.get(sha256) as AssetRow | undefined) ?? null;
  }

  allAssets(): AssetRow[] {
    return this.s.allAssets.all() as AssetRow[];
  }

  /**
   * Whether the asset's file belongs in assets/ (and may be served): a live image shows it, or
   * a run holds it. Otherwise it is only in the trash (its file in trash/<token>/), or unreferenced.
   */
  isAssetLive(sha256: string): boolean {
    return this.s.isLive.get({ sha256 }) !== undefined;
  }

  getImage(id: number): ImageRow | null {
    const r = this.s.image.get(id) as
      | (Omit<ImageRow, 'favourite' | 'spec' | 'provenance' | 'metadata'> & {
          favourite: number;
          spec: string;
          provenance: string;
          metadata: string | null;
        })
      | undefined;
    if (!r) return null;
    return {
      ...withParsedJson(r),
      favourite: r.favourite === 1,
      metadata: parseJson<ImageMetadata | null>(r.metadata, null),
    };
  }

  getCard(id: number): CardRow | null {
    return (this.s.card.get(id) as CardRow | undefined) ?? null;
  }

  tagsOf(id: number): string[] {
    return (this.s.tags.all(id) as { tag: string }[]).map((r) => r.tag);
  }

  /** A gallery query as SQL pieces (filters, the FTS tables for a text query, the date range as keys). */
  private build(q: HistoryFilter): Built {
    const text = q.text !== undefined ? parseSearchText(q.text) : null;
    const params: Record<string, unknown> = {};
    const where: string[] = [];
    let from = 'images i';
    let key = 'i.sort_key';
    const isText = text !== null && (text.match !== null || text.substrings.length > 0);
    if (text && isText) {
      // The FTS table drives: it holds only live images, keyed by sort key, so it walks in the
      // gallery's order and a page stops after `limit` matches.
      const subs = text.substrings.map((sub, k) => {
        const long = [...sub].length >= 3;
        params[`sub${k}`] = long ? `"${sub.replace(/"/g, '""')}"` : sub;
        // Trigram index for 3+ characters; shorter ones scan the (small) table of unspaced-script items.
        return long ? `search_unspaced MATCH @sub${k}` : `instr(lower(text), @sub${k}) > 0`;
      });
      if (text.match !== null) {
        from = 'search s JOIN images i ON i.sort_key = s.rowid';
        key = 's.rowid';
        where.push('search MATCH @match');
        params.match = text.match;
        for (const cond of subs) where.push(`+s.rowid IN (SELECT rowid FROM search_unspaced WHERE ${cond})`);
      } else {
        from = 'search_unspaced s JOIN images i ON i.sort_key = s.rowid';
        key = 's.rowid';
        where.push(subs[0]!.replace('search_unspaced MATCH', 's.text MATCH').replace('lower(text)', 'lower(s.text)'));
        for (const cond of subs.slice(1)) where.push(`+s.rowid IN (SELECT rowid FROM search_unspaced WHERE ${cond})`);
      }
    } else if (text) {
      from = 'images i'; // only punctuation: nothing matches (below)
      where.push('i.trashed_at IS NULL');
    } else {
      // The covering index of the filter, named: the planner would take the unique images_key
      // (smaller entries) and then read every row to check trashed_at, kind and favourite.
      const index =
        q.kind !== undefined
          ? 'images_live_kind_key'
          : q.favourite === true
            ? 'images_live_fav_key'
            : 'images_live_key';
      from = `images i INDEXED BY ${index}`;
      where.push('i.trashed_at IS NULL');
    }
    if (q.kind !== undefined) {
      where.push('i.kind = @kind');
      params.kind = q.kind;
    }
    if (q.favourite !== undefined) where.push(q.favourite ? 'i.favourite = 1' : 'i.favourite = 0');
    const lo = q.from !== undefined ? Math.min(q.from, MAX_CREATED_AT + 1) * SORT_KEY_SLOTS : null;
    const hi = q.to !== undefined ? (Math.min(q.to, MAX_CREATED_AT) + 1) * SORT_KEY_SLOTS : null;
    if (lo !== null) where.push(`${key} >= ${lo}`);
    if (hi !== null) where.push(`${key} < ${hi}`);
    if (text && !isText) where.push('0'); // only punctuation: nothing matches
    const bare = isText && q.kind === undefined && q.favourite === undefined ? from.split(' JOIN ')[0]! : from;
    return { from, bare, where, params, key, text: isText, lo, hi };
  }

  /** The SQL of a page (exposed so a test can EXPLAIN it): `bound` is a condition on the sort key. */
  pageSql(b: Built, dir: 'ASC' | 'DESC', bound: string | null): string {
    const where = bound ? [...b.where, `${b.key} ${bound}`] : [...b.where];
    if (b.text) where.push('i.trashed_at IS NULL'); // the FTS tables hold only live images; checked all the same
    return `SELECT ${IMAGE_COLUMNS} FROM ${b.from} JOIN runs r ON r.id = i.run_id JOIN assets a ON a.sha256 = i.sha256
            WHERE ${where.join(' AND ')} ORDER BY ${b.key} ${dir} LIMIT @limit`;
  }

  /** The SQL and parameters of a gallery page from its start, and of its count (for EXPLAIN in tests). */
  buildQuery(q: HistoryQuery): { page: string; count: string; keyAt: string; params: Record<string, unknown> } {
    const b = this.build(q);
    const dir = q.sort === 'oldest' ? 'ASC' : 'DESC';
    return {
      page: this.pageSql(b, dir, null),
      count: this.countSql(b, null),
      keyAt: `SELECT ${b.key} AS k FROM ${b.bare} WHERE ${b.where.join(' AND ')} ORDER BY ${b.key} ${dir} LIMIT 1 OFFSET @offset`,
      params: b.params,
    };
  }

  private countSql(b: Built, cap: number | null, extra?: string): string {
    const where = extra ? [...b.where, extra] : b.where;
    const inner = `SELECT 1 FROM ${b.bare} WHERE ${where.join(' AND ')}`;
    return cap === null
      ? `SELECT count(*) AS n FROM ${b.bare} WHERE ${where.join(' AND ')}`
      : `SELECT count(*) AS n FROM (${inner} LIMIT ${cap + 1})`;
  }

  /**
   * The live images matching the filters per day, in key order, as [lo, hi, n]: from gallery_days,
   * with the first and last day of a date range that cuts a day counted from the index. Only for
   * queries without text.
   */
  private daySegments(b: Built, q: HistoryFilter): [number, number, number][] {
    const dayLo = b.lo === null ? 0 : Math.floor(b.lo / DAY_KEYS);
    const dayHi = b.hi === null ? Math.floor(Number.MAX_SAFE_INTEGER / DAY_KEYS) : Math.floor((b.hi - 1) / DAY_KEYS);
    const fav = q.favourite === undefined ? null : q.favourite ? 1 : 0;
    const rows = this.s.days.all({ kind: q.kind ?? null, fav, dayLo, dayHi }) as { day: number; n: number }[];
    return rows.map(({ day, n }) => {
      const lo = Math.max(day * DAY_KEYS, b.lo ?? 0);
      const hi = Math.min((day + 1) * DAY_KEYS, b.hi ?? Number.MAX_SAFE_INTEGER);
      if (lo === day * DAY_KEYS && hi === (day + 1) * DAY_KEYS) return [lo, hi, n];
      return [lo, hi, this.countKeys(b, lo, hi)];
    });
  }

  /** Matching items with lo <= key < hi, counted from the index. */
  private countKeys(b: Built, lo: number, hi: number): number {
    return (
      this.stmt(this.countSql(b, null, `${b.key} >= @klo AND ${b.key} < @khi`)).get({
        ...b.params,
        klo: lo,
        khi: hi,
      }) as { n: number }
    ).n;
  }

  /** How many items match (text: at most COUNT_CAP + 1 are counted). */
  private count(b: Built, q: HistoryFilter): { total: number; exact: boolean } {
    if (!b.text) return { total: this.daySegments(b, q).reduce((n, [, , c]) => n + c, 0), exact: true };
    const n = (this.stmt(this.countSql(b, COUNT_CAP)).get(b.params) as { n: number }).n;
    return n > COUNT_CAP ? { total: COUNT_CAP, exact: false } : { total: n, exact: true };
  }

  /** The exact number of matches, however many (a text query can take a while: the history worker runs it). */
  countExact(q: HistoryFilter): number {
    const b = this.build(q);
    if (!b.text) return this.count(b, q).total;
    return (this.stmt(this.countSql(b, null)).get(b.params) as { n: number }).n;
  }

  /** The sort key of the item at `position` in the query's order, or null past the end. */
  private keyAt(b: Built, q: HistoryQuery, position: number): number | null {
    const newest = q.sort !== 'oldest';
    if (b.text) {
      const { keyAt } = this.buildQuery(q);
      const r = this.stmt(keyAt).get({ ...b.params, offset: position }) as { k: number } | undefined;
      return r?.k ?? null;
    }
    // Whole days are skipped by their counts; the rest is an index walk inside one day.
    const segments = this.daySegments(b, q);
    if (newest) segments.reverse();
    let skip = position;
    for (const [lo, hi, n] of segments) {
      if (skip >= n) {
        skip -= n;
        continue;
      }
      const sql = `SELECT ${b.key} AS k FROM ${b.bare} WHERE ${[...b.where, `${b.key} >= @klo AND ${b.key} < @khi`].join(' AND ')}
                   ORDER BY ${b.key} ${newest ? 'DESC' : 'ASC'} LIMIT 1 OFFSET @skip`;
      const r = this.stmt(sql).get({ ...b.params, klo: lo, khi: hi, skip }) as { k: number } | undefined;
      return r?.k ?? null;
    }
    return null;
  }

  /** How many matching items come before sort key `k` in the query's order. */
  private positionOf(b: Built, q: HistoryQuery, k: number): number {
    const newest = q.sort !== 'oldest';
    if (b.text) {
      const sql = this.countSql(b, null, newest ? `${b.key} > @k` : `${b.key} < @k`);
      return (this.stmt(sql).get({ ...b.params, k }) as { n: number }).n;
    }
    let n = 0;
    for (const [lo, hi, c] of this.daySegments(b, q)) {
      if (newest ? lo > k : hi <= k) n += c;
      else if (lo <= k && k < hi) n += newest ? this.countKeys(b, k + 1, hi) : this.countKeys(b, lo, k);
    }
    return n;
  }

  /**
   * A page of the gallery by seek, never by OFFSET over rows: after or before a cursor (a sort key),
   * at a date, or at a position (whole days skipped by their counts, then an index walk in one day).
   */
  query(q: HistoryQuery): HistoryPage {
    const b = this.build(q);
    const newest = q.sort !== 'oldest';
    const dir = newest ? 'DESC' : 'ASC';
    const params = { ...b.params, limit: q.limit };
    let offset = q.offset;
    let rows: CardRow[];
    if (q.after !== undefined) {
      rows = this.stmt(this.pageSql(b, dir, newest ? '< @cursor' : '> @cursor')).all({
        ...params,
        cursor: q.after,
      }) as CardRow[];
    } else if (q.before !== undefined) {
      const back = this.pageSql(b, newest ? 'ASC' : 'DESC', newest ? '> @cursor' : '< @cursor');
      rows = (this.stmt(back).all({ ...params, cursor: q.before }) as CardRow[]).reverse();
    } else if (q.at !== undefined) {
      const at = Math.min(q.at, MAX_CREATED_AT);
      // Newest first: keys below the end of that millisecond; oldest first: from its start.
      const k = newest ? (at + 1) * SORT_KEY_SLOTS : at * SORT_KEY_SLOTS;
      rows = this.stmt(this.pageSql(b, dir, newest ? '< @cursor' : '>= @cursor')).all({
        ...params,
        cursor: k,
      }) as CardRow[];
      offset = rows.length > 0 ? this.positionOf(b, q, rows[0]!.sortKey) : this.count(b, q).total;
    } else if (q.offset > 0) {
      const k = this.keyAt(b, q, q.offset);
      rows =
        k === null
          ? []
          : (this.stmt(this.pageSql(b, dir, newest ? '<= @cursor' : '>= @cursor')).all({
              ...params,
              cursor: k,
            }) as CardRow[]);
    } else {
      rows = this.stmt(this.pageSql(b, dir, null)).all(params) as CardRow[];
    }
    // A first page that shows everything there is needs no count.
    const whole =
      q.after === undefined && q.before === undefined && q.at === undefined && q.offset === 0 && rows.length < q.limit;
    const { total, exact } = whole ? { total: rows.length, exact: true } : this.count(b, q);
    return { rows, total, totalExact: exact, offset };
  }

  explain(sql: string, params: Record<string, unknown>): string[] {
    return (this.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(params) as { detail: string }[]).map((r) => r.detail);
  }
}
