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
  offset: number;
  limit: number;
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
  i.id, i.run_id AS runId, i.kind, i.sha256, r.title, a.width, a.height, i.favourite, i.created_at AS createdAt`;

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
      insertImage: p(`INSERT INTO images (run_id, kind, sha256, file_name, metadata, created_at)
                      VALUES (@runId, (SELECT kind FROM runs WHERE id = @runId), @sha256, @fileName, @metadata, @createdAt)`),
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
      const ro = new Database(file, { readonly: true, fileMustExist: true });
      try {
        const v = ro.pragma('user_version', { simple: true }) as number;
        if (v > latest) throw tooNew(file, v);
      } finally {
        ro.close();
      }
    }
    const db = new Database(file);
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
      order.splice(at, 0, queue.find((r) => r.id === id)!);
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
      | { step: number; gridWidth: number; gridHeight: number; tokens: Buffer }
      | undefined;
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

  /** Rewrites an image's row in the FTS index from its current sources. */
  reindex(id: number): void {
    const row = this.getImage(id);
    this.unindex(id);
    if (!row) return;
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
    this.s.searchInsert.run({ id, ...fields });
    const all = Object.values(fields).join('\n');
    if (hasUnspacedScript(all)) this.s.unspacedInsert.run(id, all);
  }

  private unindex(id: number): void {
    this.s.searchDelete.run(id);
    this.s.unspacedDelete.run(id);
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

  /** The SQL and parameters of a gallery page (exposed so a test can EXPLAIN it). */
  buildQuery(q: HistoryQuery): { page: string; count: string; params: Record<string, unknown> } {
    const where = ['i.trashed_at IS NULL'];
    const params: Record<string, unknown> = {};
    if (q.kind !== undefined) {
      where.push('i.kind = @kind');
      params.kind = q.kind;
    }
    if (q.favourite !== undefined) {
      where.push(q.favourite ? 'i.favourite = 1' : 'i.favourite = 0');
    }
    if (q.from !== undefined) {
      where.push('i.created_at >= @from');
      params.from = q.from;
    }
    if (q.to !== undefined) {
      where.push('i.created_at <= @to');
      params.to = q.to;
    }
    const text = q.text !== undefined ? parseSearchText(q.text) : null;
    if (text?.match) {
      where.push('i.id IN (SELECT rowid FROM search WHERE search MATCH @match)');
      params.match = text.match;
    }
    text?.substrings.forEach((sub, k) => {
      // Trigram index for 3+ characters; shorter ones scan the (small) table of unspaced-script items.
      where.push(
        [...sub].length >= 3
          ? `i.id IN (SELECT rowid FROM search_unspaced WHERE search_unspaced MATCH @sub${k})`
          : `i.id IN (SELECT rowid FROM search_unspaced WHERE instr(lower(text), @sub${k}) > 0)`,
      );
      params[`sub${k}`] = [...sub].length >= 3 ? `"${sub.replace(/"/g, '""')}"` : sub;
    });
    const dir = q.sort === 'oldest' ? 'ASC' : 'DESC';
    const w = where.join(' AND ');
    return {
      page: `SELECT ${IMAGE_COLUMNS} FROM images i JOIN runs r ON r.id = i.run_id JOIN assets a ON a.sha256 = i.sha256
             WHERE ${w} ORDER BY i.created_at ${dir}, i.id ${dir} LIMIT @limit OFFSET @offset`,
      count: `SELECT count(*) AS n FROM images i WHERE ${w}`,
      params,
    };
  }

  query(q: HistoryQuery): { total: number; rows: CardRow[] } {
    const { page, count, params } = this.buildQuery(q);
    const rows = this.stmt(page).all({ ...params, limit: q.limit, offset: q.offset }) as CardRow[];
    // The count is skipped when the page itself shows everything there is.
    const total =
      rows.length < q.limit && (rows.length > 0 || q.offset === 0)
        ? q.offset + rows.length
        : (this.stmt(count).get(params) as { n: number }).n;
    return { total, rows };
  }

  explain(sql: string, params: Record<string, unknown>): string[] {
    return (this.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(params) as { detail: string }[]).map((r) => r.detail);
  }
}
