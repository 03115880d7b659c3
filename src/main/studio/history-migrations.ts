// Numbered schema migrations (after Signal Desktop's ts/sql/migrations): each entry moves the
// database from version-1 to version; pending ones run in one transaction with
// PRAGMA user_version. Never edit a released migration: append a new one.
//
// Migrations run with foreign keys OFF (History.open turns them off before the transaction and
// runs PRAGMA foreign_key_check before it commits), so that a migration can rebuild a table the
// way SQLite recommends (https://www.sqlite.org/lang_altertable.html#otheralter): with them on,
// DROP TABLE runs would cascade into images and delete every gallery item.
import type Database from 'better-sqlite3';

export interface Migration {
  version: number;
  up(db: Database.Database): void;
}

export const migrations: readonly Migration[] = [
  {
    version: 1,
    up(db) {
      db.exec(`
        CREATE TABLE runs (
          id            INTEGER PRIMARY KEY,
          kind          TEXT    NOT NULL CHECK (kind IN ('generate', 'prompt', 'classify', 'import')),
          status        TEXT    NOT NULL DEFAULT 'done',
          title         TEXT    NOT NULL DEFAULT '',
          note          TEXT    NOT NULL DEFAULT '',
          spec          TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(spec)),
          -- app version, runtime version, execution provider, model file hashes
          provenance    TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(provenance)),
          parent_run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL,
          created_at    INTEGER NOT NULL,
          started_at    INTEGER,
          finished_at   INTEGER
        );
        CREATE INDEX runs_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
        CREATE INDEX runs_kind_created ON runs (kind, created_at);

        -- One row per distinct file content; paths are relative to the data folder.
        CREATE TABLE assets (
          sha256     TEXT    PRIMARY KEY CHECK (length(sha256) = 64),
          path       TEXT    NOT NULL,
          mime       TEXT    NOT NULL,
          bytes      INTEGER NOT NULL,
          width      INTEGER NOT NULL,
          height     INTEGER NOT NULL,
          thumb_path TEXT
        ) WITHOUT ROWID;

        CREATE TABLE images (
          id          INTEGER PRIMARY KEY,
          run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
          -- the run's kind, copied (it never changes) so that a kind filter can walk an index in date order
          kind        TEXT    NOT NULL,
          sha256      TEXT    NOT NULL REFERENCES assets (sha256),
          file_name   TEXT,
          favourite   INTEGER NOT NULL DEFAULT 0 CHECK (favourite IN (0, 1)),
          -- ImageMetadata as parsed from (or written into) the file
          metadata    TEXT    CHECK (metadata IS NULL OR json_valid(metadata)),
          created_at  INTEGER NOT NULL,
          trashed_at  INTEGER,
          trash_token TEXT,
          CHECK ((trashed_at IS NULL) = (trash_token IS NULL))
        );
        -- The gallery's default page (live images, newest first) walks this partial index.
        CREATE INDEX images_live_created ON images (created_at, id) WHERE trashed_at IS NULL;
        CREATE INDEX images_live_favourite ON images (created_at, id) WHERE trashed_at IS NULL AND favourite = 1;
        CREATE INDEX images_live_kind ON images (kind, created_at, id) WHERE trashed_at IS NULL;
        CREATE INDEX images_sha ON images (sha256);
        CREATE INDEX images_run ON images (run_id);
        CREATE INDEX images_trash ON images (trash_token) WHERE trash_token IS NOT NULL;

        CREATE TABLE tags (
          image_id INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
          tag      TEXT    NOT NULL,
          PRIMARY KEY (image_id, tag)
        ) WITHOUT ROWID;
        CREATE INDEX tags_tag ON tags (tag);

        -- One row per image (rowid = images.id), written explicitly by history.ts whenever
        -- one of its sources changes; remove_diacritics so "cafe" finds "café".
        CREATE VIRTUAL TABLE search USING fts5 (
          prompt, negative, labels, note, tags, file, meta,
          tokenize = 'unicode61 remove_diacritics 2'
        );
        -- Substring search for scripts written without spaces (Chinese, Japanese, Thai), which
        -- unicode61 cannot split into words; only items whose text has such characters are here.
        CREATE VIRTUAL TABLE search_unspaced USING fts5 (text, tokenize = 'trigram');
      `);
    },
  },
  {
    // Runs become jobs: a state the database enforces, an error, progress, updated_at; and
    // run_assets, the assets a run holds that are not gallery images (init image, image
    // prompts, preview frames, outputs). The state lists are those of RunState and
    // RunAssetRole in src/shared/runs.ts, written out: a migration never changes once released,
    // so a new state means a new migration.
    //
    // SQLite cannot add a CHECK to an existing column, so runs is rebuilt: new table, copy,
    // drop, rename, indexes again (foreign keys are off while migrations run; see above). A
    // rebuild rather than triggers that RAISE: the constraint is part of the table, shown by
    // its schema, enforced for every writer (the CLI, an old script, the sqlite3 shell) and
    // for UPDATE as well as INSERT, and it lets the new columns be NOT NULL and checked together
    // with the state (a failed run always says why).
    version: 2,
    up(db) {
      db.exec(`
        CREATE TABLE runs_v2 (
          id             INTEGER PRIMARY KEY,
          kind           TEXT    NOT NULL CHECK (kind IN ('generate', 'prompt', 'classify', 'import')),
          status         TEXT    NOT NULL DEFAULT 'done'
                                 CHECK (status IN ('queued', 'running', 'paused', 'failed', 'cancelled', 'done')),
          title          TEXT    NOT NULL DEFAULT '',
          note           TEXT    NOT NULL DEFAULT '',
          spec           TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(spec)),
          provenance     TEXT    NOT NULL DEFAULT '{}' CHECK (json_valid(provenance)),
          -- names runs, not runs_v2: after the rename below it is the new table's own id
          parent_run_id  INTEGER REFERENCES runs (id) ON DELETE SET NULL,
          created_at     INTEGER NOT NULL,
          started_at     INTEGER,
          finished_at    INTEGER,
          -- last change of state or progress (ms since the epoch, as the other times)
          updated_at     INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
          -- why a failed run failed, in words; only failed runs have one, and every one does
          error          TEXT,
          -- steps done of steps planned (total unknown: NULL)
          progress_step  INTEGER CHECK (progress_step IS NULL OR progress_step >= 0),
          progress_total INTEGER CHECK (progress_total IS NULL OR progress_total > 0),
          CHECK ((status = 'failed') = (error IS NOT NULL)),
          CHECK (progress_step IS NULL OR progress_total IS NULL OR progress_step <= progress_total)
        );
        -- Version 1 wrote no state but the default 'done'; anything else (written by hand) that is
        -- not a state becomes 'done', and a 'failed' gets an error, as the checks now require.
        INSERT INTO runs_v2 (id, kind, status, title, note, spec, provenance, parent_run_id,
                             created_at, started_at, finished_at, updated_at, error)
          SELECT id, kind,
                 CASE WHEN status IN ('queued', 'running', 'paused', 'failed', 'cancelled', 'done') THEN status ELSE 'done' END,
                 title, note, spec, provenance, parent_run_id, created_at, started_at, finished_at,
                 coalesce(finished_at, started_at, created_at),
                 CASE WHEN status = 'failed' THEN 'failed (no error was recorded)' END
          FROM runs;
        DROP TABLE runs;
        ALTER TABLE runs_v2 RENAME TO runs;
        CREATE INDEX runs_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
        CREATE INDEX runs_kind_created ON runs (kind, created_at);
        -- Runs in one state in order: the queue (queued, oldest first), what is running or paused.
        CREATE INDEX runs_status_created ON runs (status, created_at, id);

        CREATE TABLE run_assets (
          id     INTEGER PRIMARY KEY,
          run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
          sha256 TEXT    NOT NULL REFERENCES assets (sha256),
          role   TEXT    NOT NULL CHECK (role IN ('init', 'image-prompt', 'frame', 'output')),
          -- the step a frame (always) or an output (when it has one) was taken at
          step   INTEGER CHECK (step IS NULL OR step >= 0),
          CHECK (role <> 'frame' OR step IS NOT NULL)
        );
        -- A run's assets by role and step (its frames in order, the frame at a step); also the
        -- index the cascade from runs walks.
        CREATE UNIQUE INDEX run_assets_run ON run_assets (run_id, role, step, sha256);
        -- "Does any run hold this asset?", asked by the purge, the sweep and asset serving.
        CREATE INDEX run_assets_sha ON run_assets (sha256);
      `);
    },
  },
  {
    // Generation jobs: the order of the queue (a user moves runs in it), and the trajectory of a run: its
    // tokens every few steps (the image of a step depends only on them), to scrub and to fork from.
    version: 3,
    up(db) {
      db.exec(`
        ALTER TABLE runs ADD COLUMN queue_order REAL;
        CREATE INDEX runs_queue ON runs (queue_order, id) WHERE status = 'queued';

        CREATE TABLE run_snapshots (
          run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
          step        INTEGER NOT NULL CHECK (step >= 0),
          grid_width  INTEGER NOT NULL CHECK (grid_width > 0),
          grid_height INTEGER NOT NULL CHECK (grid_height > 0),
          -- int32 little-endian codebook indices, row by row
          tokens      BLOB    NOT NULL CHECK (length(tokens) = 4 * grid_width * grid_height),
          PRIMARY KEY (run_id, step)
        ) WITHOUT ROWID;
      `);
    },
  },
  {
    // The gallery at a million images. Every page is a seek on one integer, `sort_key`, that orders
    // images as the gallery shows them (by creation time, then by id): created_at in ms times 1024,
    // plus the image's place among those created in the same millisecond (SORT_KEY_SLOTS). It never
    // changes once given (created_at never does), so it is also the rowid of the FTS tables: a text
    // search walks the index in the gallery's order and stops after a page ("ORDER BY rowid DESC
    // LIMIT 100"), without sorting or joining every match. Only live images are in the FTS tables
    // (the trash is not searched), so counting matches needs no join either.
    //
    // gallery_days counts live images per day (of sort_key), kind and favourite, kept by triggers
    // for every writer: counts for the filters the UI offers, and the position of a date or of a
    // point on the scrollbar, are sums over at most a few thousand rows instead of scans of images.
    //
    // The covering indexes answer every filter (kind, favourite, date range) and its order from the
    // index alone; the three version-1 indexes on (created_at, id) they replace are dropped.
    version: 4,
    up(db) {
      db.exec(`
        ALTER TABLE images ADD COLUMN sort_key INTEGER;
        UPDATE images SET sort_key = k.key
          FROM (SELECT id, created_at * 1024 + row_number() OVER (PARTITION BY created_at ORDER BY id) - 1 AS key,
                       row_number() OVER (PARTITION BY created_at ORDER BY id) AS rn
                FROM images) AS k
          WHERE k.id = images.id AND k.rn <= 1024;
      `);
      // More than 1024 images in one millisecond (written by hand): the rest go after everything, one by one.
      const spill = db.prepare(`SELECT id FROM images WHERE sort_key IS NULL ORDER BY created_at, id`).all() as {
        id: number;
      }[];
      const next = db.prepare(`UPDATE images SET sort_key = (SELECT max(sort_key) + 1 FROM images) WHERE id = ?`);
      for (const { id } of spill) next.run(id);
      db.exec(`
        CREATE UNIQUE INDEX images_key ON images (sort_key);
        DROP INDEX images_live_created;
        DROP INDEX images_live_favourite;
        DROP INDEX images_live_kind;
        -- trashed_at (always NULL here) is a column too, so that the planner sees them as covering.
        CREATE INDEX images_live_key ON images (sort_key, kind, favourite, trashed_at) WHERE trashed_at IS NULL;
        CREATE INDEX images_live_kind_key ON images (kind, sort_key, favourite, trashed_at) WHERE trashed_at IS NULL;
        CREATE INDEX images_live_fav_key ON images (sort_key, kind, favourite, trashed_at)
          WHERE trashed_at IS NULL AND favourite = 1;

        -- A writer that gives no sort_key (a script, the sqlite3 shell) gets one: after the images
        -- created in the same millisecond, or after everything when those 1024 places are taken.
        CREATE TRIGGER images_sort_key AFTER INSERT ON images WHEN NEW.sort_key IS NULL
        BEGIN
          UPDATE images SET sort_key = (
            SELECT CASE WHEN m IS NULL THEN NEW.created_at * 1024
                        WHEN m + 1 < (NEW.created_at + 1) * 1024 THEN m + 1
                        ELSE (SELECT max(sort_key) + 1 FROM images) END
            FROM (SELECT max(sort_key) AS m FROM images
                  WHERE sort_key >= NEW.created_at * 1024 AND sort_key < (NEW.created_at + 1) * 1024))
          WHERE id = NEW.id;
        END;

        -- 86,400,000 ms a day times 1024 places a ms.
        CREATE TABLE gallery_days (
          day       INTEGER NOT NULL,
          kind      TEXT    NOT NULL,
          favourite INTEGER NOT NULL,
          n         INTEGER NOT NULL CHECK (n >= 0),
          PRIMARY KEY (day, kind, favourite)
        ) WITHOUT ROWID;
        INSERT INTO gallery_days (day, kind, favourite, n)
          SELECT sort_key / 88473600000, kind, favourite, count(*) FROM images
          WHERE trashed_at IS NULL AND sort_key IS NOT NULL GROUP BY 1, 2, 3;
        CREATE TRIGGER gallery_days_insert AFTER INSERT ON images
          WHEN NEW.trashed_at IS NULL AND NEW.sort_key IS NOT NULL
        BEGIN
          INSERT INTO gallery_days (day, kind, favourite, n) VALUES (NEW.sort_key / 88473600000, NEW.kind, NEW.favourite, 1)
            ON CONFLICT DO UPDATE SET n = n + 1;
        END;
        CREATE TRIGGER gallery_days_delete AFTER DELETE ON images
          WHEN OLD.trashed_at IS NULL AND OLD.sort_key IS NOT NULL
        BEGIN
          UPDATE gallery_days SET n = n - 1
            WHERE day = OLD.sort_key / 88473600000 AND kind = OLD.kind AND favourite = OLD.favourite;
        END;
        CREATE TRIGGER gallery_days_update AFTER UPDATE OF sort_key, kind, favourite, trashed_at ON images
        BEGIN
          UPDATE gallery_days SET n = n - 1
            WHERE OLD.trashed_at IS NULL AND OLD.sort_key IS NOT NULL
              AND day = OLD.sort_key / 88473600000 AND kind = OLD.kind AND favourite = OLD.favourite;
          INSERT INTO gallery_days (day, kind, favourite, n)
            SELECT NEW.sort_key / 88473600000, NEW.kind, NEW.favourite, 1
            WHERE NEW.trashed_at IS NULL AND NEW.sort_key IS NOT NULL
            ON CONFLICT DO UPDATE SET n = n + 1;
        END;

        -- The FTS tables again, keyed by sort_key, live images only; prefix indexes for the 2 and 3
        -- character prefixes a user types first (a prefix query is then one term's doclist).
        CREATE VIRTUAL TABLE search_v4 USING fts5 (
          prompt, negative, labels, note, tags, file, meta,
          tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
        );
        INSERT INTO search_v4 (rowid, prompt, negative, labels, note, tags, file, meta)
          SELECT i.sort_key, s.prompt, s.negative, s.labels, s.note, s.tags, s.file, s.meta
          FROM search s JOIN images i ON i.id = s.rowid WHERE i.trashed_at IS NULL;
        DROP TABLE search;
        ALTER TABLE search_v4 RENAME TO search;
        CREATE VIRTUAL TABLE search_unspaced_v4 USING fts5 (text, tokenize = 'trigram');
        INSERT INTO search_unspaced_v4 (rowid, text)
          SELECT i.sort_key, u.text FROM search_unspaced u JOIN images i ON i.id = u.rowid WHERE i.trashed_at IS NULL;
        DROP TABLE search_unspaced;
        ALTER TABLE search_unspaced_v4 RENAME TO search_unspaced;
      `);
    },
  },
  {
    // Watched folders: a folder whose new image files are imported as they are finished (an
    // AUTOMATIC1111 or ComfyUI outputs folder), and every file seen there with the size and time it
    // had when it was imported (or failed), so that a rescan at start imports only what is new or
    // changed. `rel` is the path inside the folder, '/'-separated.
    version: 5,
    up(db) {
      db.exec(`
        CREATE TABLE watched_folders (
          id             INTEGER PRIMARY KEY,
          path           TEXT    NOT NULL UNIQUE,
          -- a file deleted from the folder sends its gallery item to the trash (1), or leaves it (0)
          mirror_deletes INTEGER NOT NULL DEFAULT 0 CHECK (mirror_deletes IN (0, 1)),
          added_at       INTEGER NOT NULL,
          last_scan_at   INTEGER
        );
        CREATE TABLE watched_files (
          folder_id INTEGER NOT NULL REFERENCES watched_folders (id) ON DELETE CASCADE,
          rel       TEXT    NOT NULL,
          size      INTEGER NOT NULL,
          mtime_ms  INTEGER NOT NULL,
          -- the content it was imported as; NULL when it could not be imported (error says why)
          sha256    TEXT,
          error     TEXT,
          PRIMARY KEY (folder_id, rel)
        ) WITHOUT ROWID;
        CREATE INDEX watched_files_sha ON watched_files (sha256) WHERE sha256 IS NOT NULL;
      `);
    },
  },
  {
    // Prompt Lab and Classify: prompt-made models (one row per saved version of a named model, the whole
    // model as JSON), the rows a prompt or classify run produced (its input and its output as JSON, in
    // input order), and a full-text index over runs (title and searchable text of the spec), so that the
    // history finds a prompt or classify run as the gallery finds an image. runs_search's rowid is runs.id.
    version: 6,
    up(db) {
      db.exec(`
        CREATE TABLE prompt_models (
          id         INTEGER PRIMARY KEY,
          name       TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
          version    INTEGER NOT NULL CHECK (version >= 1),
          spec       TEXT    NOT NULL CHECK (json_valid(spec)),
          created_at INTEGER NOT NULL,
          UNIQUE (name, version)
        );
        CREATE TABLE run_rows (
          run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
          idx    INTEGER NOT NULL CHECK (idx >= 0),
          input  TEXT    NOT NULL,
          output TEXT    NOT NULL CHECK (json_valid(output)),
          PRIMARY KEY (run_id, idx)
        ) WITHOUT ROWID;
        CREATE VIRTUAL TABLE runs_search USING fts5 (
          title, body, tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3'
        );
        CREATE TRIGGER runs_search_delete AFTER DELETE ON runs
        BEGIN
          DELETE FROM runs_search WHERE rowid = OLD.id;
        END;
      `);
    },
  },
];

export const LATEST_VERSION = migrations.at(-1)!.version;
