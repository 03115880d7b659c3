// What Prompt Lab and Classify keep in the history database (migration 6): saved prompt-made models (named,
// versioned, the whole model as JSON), the rows a prompt or classify run produced, and the full-text index
// over runs that lets the history find those runs by their title and what they were about.
//
// A prompt or classify run is a `runs` row of kind 'prompt' or 'classify', inserted 'running' (never
// 'queued': the queue is the generation queue's) and moved to done / failed / cancelled by its job.
//
// Public API
//   new LabStore(history)
//     .saveModel(name, spec, now) -> { id, name, version }   a new version of a named model (1 for a new name)
//     .models() / .modelVersions(name) / .model(name, version?) / .deleteModel(name)
//     .appendRows(runId, rows)         rows { idx, input, output } in one transaction (a streamed batch)
//     .rows(runId, { offset, limit }) / .rowCount(runId)
//     .indexRun(runId, title, body)    what the history search finds the run by (replaces the previous text)
//     .searchRuns({ text?, kinds?, limit?, offset? }) -> RunRow[] newest first
import { StudioError } from '../../shared/api.js';
import type { RunKind } from '../../shared/gallery.js';
import { ftsMatch } from './fts.js';
import type { History, RunRow } from './history.js';

export interface SavedModelRow {
  id: number;
  name: string;
  version: number;
  spec: unknown;
  createdAt: number;
}

export interface StoredRow {
  idx: number;
  input: string;
  output: unknown;
}

const MAX_NAME = 200;

export class LabStore {
  constructor(private readonly history: History) {}

  get #db() {
    return this.history.db;
  }

  saveModel(name: string, spec: unknown, now: number): { id: number; name: string; version: number } {
    const clean = name.trim();
    if (!clean || clean.length > MAX_NAME) {
      throw new StudioError('InvalidArgument', `A model's name is 1 to ${MAX_NAME} characters (got ${clean.length}).`);
    }
    return this.history.transaction(() => {
      const row = this.#db.prepare(`SELECT max(version) AS v FROM prompt_models WHERE name = ?`).get(clean) as {
        v: number | null;
      };
      const version = (row.v ?? 0) + 1;
      const r = this.#db
        .prepare(`INSERT INTO prompt_models (name, version, spec, created_at) VALUES (?, ?, ?, ?)`)
        .run(clean, version, JSON.stringify(spec), now);
      return { id: Number(r.lastInsertRowid), name: clean, version };
    });
  }

  /** The latest version of every named model, most recently saved first. */
  models(): SavedModelRow[] {
    const rows = this.#db
      .prepare(
        `SELECT id, name, version, spec, created_at AS createdAt FROM prompt_models p
         WHERE version = (SELECT max(version) FROM prompt_models q WHERE q.name = p.name)
         ORDER BY created_at DESC, id DESC`,
      )
      .all() as (Omit<SavedModelRow, 'spec'> & { spec: string })[];
    return rows.map((r) => ({ ...r, spec: JSON.parse(r.spec) as unknown }));
  }

  modelVersions(name: string): Omit<SavedModelRow, 'spec'>[] {
    return this.#db
      .prepare(
        `SELECT id, name, version, created_at AS createdAt FROM prompt_models WHERE name = ? ORDER BY version DESC`,
      )
      .all(name) as Omit<SavedModelRow, 'spec'>[];
  }

  /** One version of a named model (the latest when version is not given), or null. */
  model(name: string, version?: number): SavedModelRow | null {
    const r = (
      version === undefined
        ? this.#db
            .prepare(
              `SELECT id, name, version, spec, created_at AS createdAt FROM prompt_models WHERE name = ?
               ORDER BY version DESC LIMIT 1`,
            )
            .get(name)
        : this.#db
            .prepare(
              `SELECT id, name, version, spec, created_at AS createdAt FROM prompt_models
               WHERE name = ? AND version = ?`,
            )
            .get(name, version)
    ) as (Omit<SavedModelRow, 'spec'> & { spec: string }) | undefined;
    return r ? { ...r, spec: JSON.parse(r.spec) as unknown } : null;
  }

  /** Deletes every version of a named model; returns how many versions there were. */
  deleteModel(name: string): number {
    return this.#db.prepare(`DELETE FROM prompt_models WHERE name = ?`).run(name).changes;
  }

  appendRows(runId: number, rows: readonly StoredRow[]): void {
    if (rows.length === 0) return;
    const insert = this.#db.prepare(`INSERT OR REPLACE INTO run_rows (run_id, idx, input, output) VALUES (?, ?, ?, ?)`);
    this.history.transaction(() => {
      for (const r of rows) insert.run(runId, r.idx, r.input, JSON.stringify(r.output ?? null));
    });
  }

  rows(runId: number, page: { offset?: number; limit?: number } = {}): StoredRow[] {
    const rows = this.#db
      .prepare(`SELECT idx, input, output FROM run_rows WHERE run_id = ? ORDER BY idx LIMIT ? OFFSET ?`)
      .all(runId, page.limit ?? -1, page.offset ?? 0) as { idx: number; input: string; output: string }[];
    return rows.map((r) => ({ idx: r.idx, input: r.input, output: JSON.parse(r.output) as unknown }));
  }

  /** Rows one at a time, in order, without holding them all (an export of a large run). */
  *iterateRows(runId: number): Generator<StoredRow> {
    const it = this.#db
      .prepare(`SELECT idx, input, output FROM run_rows WHERE run_id = ? ORDER BY idx`)
      .iterate(runId) as IterableIterator<{ idx: number; input: string; output: string }>;
    for (const r of it) yield { idx: r.idx, input: r.input, output: JSON.parse(r.output) as unknown };
  }

  rowCount(runId: number): number {
    return (this.#db.prepare(`SELECT count(*) AS n FROM run_rows WHERE run_id = ?`).get(runId) as { n: number }).n;
  }

  indexRun(runId: number, title: string, body: string): void {
    this.history.transaction(() => {
      this.#db.prepare(`DELETE FROM runs_search WHERE rowid = ?`).run(runId);
      this.#db.prepare(`INSERT INTO runs_search (rowid, title, body) VALUES (?, ?, ?)`).run(runId, title, body);
    });
  }

  /**
   * Runs of the given kinds (default every kind), newest first; with text, those whose indexed title or body
   * match every word (prefixes, as the gallery's search), or whose title holds the text (runs not indexed
   * here: generate and import runs). Each with the rows it produced, or the images it made.
   */
  searchRuns(
    q: { text?: string; kinds?: readonly RunKind[]; limit?: number; offset?: number } = {},
  ): (RunRow & { count: number; imageId: number | null })[] {
    const kinds = q.kinds ?? ['generate', 'prompt', 'classify', 'import'];
    const params: Record<string, unknown> = { limit: q.limit ?? 100, offset: q.offset ?? 0 };
    const kindList = kinds.map((k, i) => ((params[`k${i}`] = k), `@k${i}`)).join(', ');
    const text = q.text?.trim() ?? '';
    const match = text ? ftsMatch(text) : null;
    const where = [`r.kind IN (${kindList})`];
    if (text) {
      params.like = `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      where.push(
        match
          ? `(r.id IN (SELECT rowid FROM runs_search WHERE runs_search MATCH @match) OR r.title LIKE @like ESCAPE '\\')`
          : `r.title LIKE @like ESCAPE '\\'`,
      );
      if (match) params.match = match;
    }
    const rows = this.#db
      .prepare(
        `SELECT r.id,
                (SELECT count(*) FROM run_rows w WHERE w.run_id = r.id) AS nrows,
                (SELECT count(*) FROM images i WHERE i.run_id = r.id AND i.trashed_at IS NULL) AS nimages,
                (SELECT min(i.id) FROM images i WHERE i.run_id = r.id AND i.trashed_at IS NULL) AS imageId
         FROM runs r WHERE ${where.join(' AND ')}
         ORDER BY r.created_at DESC, r.id DESC LIMIT @limit OFFSET @offset`,
      )
      .all(params) as { id: number; nrows: number; nimages: number; imageId: number | null }[];
    return rows.flatMap((r) => {
      const run = this.history.getRun(r.id);
      return run ? [{ ...run, count: r.nrows || r.nimages, imageId: r.imageId }] : [];
    });
  }
}
