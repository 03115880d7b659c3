// Numbered schema migrations (after Signal Desktop's ts/sql/migrations): each entry moves the
// database from version-1 to version; pending ones run in one transaction with
// PRAGMA user_version. Never edit a released migration: append a new one.
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
];

export const LATEST_VERSION = migrations.at(-1)!.version;
