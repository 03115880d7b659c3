// The application services as the transports (Electron IPC, HTTP server, CLI) see them.
import type { EventName, EventPayload, StudioHandlers } from '../../shared/api.js';

export interface StudioOptions {
  /** Absolute path of the data folder (created if missing). */
  dataDir: string;
  /** Versions of the host, filled in by the Electron shell; null in plain Node. */
  host?: { electron: string | null; chrome: string | null };
  /**
   * Whether this process runs the generation queue (the app and `fstudio serve`: yes; a one-shot CLI
   * command: no, it runs only the run it was asked for). Default true.
   */
  runQueue?: boolean;
  /**
   * Whether this process follows the watched folders (imports what appears in them). Default: as
   * runQueue (the app and `fstudio serve` do; a one-shot command does not).
   */
  watchFolders?: boolean;
  /** How long a watched file must stay unchanged before it is imported (ms; default 1000; tests shorten it). */
  watchQuietMs?: number;
  /** The compute workers' script, for tests (default: the engine's). */
  computeWorker?: string | URL;
}

export type AssetVariant = 'file' | 'thumb';

/** What the open-time checks of the data folder found and fixed (for logs and `fstudio doctor`). */
export interface OpenReport {
  /**
   * PRAGMA quick_check of the history database, run in the background after open ('ok'; anything
   * else is reported, and no file is moved). At open only a cheap probe runs (History.probe).
   */
  quickCheck: string;
  /**
   * Whether this process ran the sweeps. They are skipped (and say why) when another process
   * has the data folder open (its in-flight writes would look like crash leftovers), or when
   * assets/ or thumbs/ cannot be read (an unreadable folder is not an empty one).
   */
  sweep: 'running' | 'done' | { skipped: string };
  /** Temp files of writes cut short (a crash, a kill), deleted. */
  tempFilesRemoved: number;
  /**
   * Asset files and thumbnails with no database row (written just before a crash, or newer
   * than a history.db restored from a backup), moved to `orphansFolder`, never deleted outright.
   */
  orphanFilesMoved: number;
  orphanThumbsMoved: number;
  /** Where this open moved orphans (`trash/orphans-<ms>`), emptied with the trash; null if none. */
  orphansFolder: string | null;
  thumbsRebuilt: number;
  /**
   * Live assets (shown by a live image, or held by a run) whose file is not in the data folder.
   * Their rows are kept (never dropped): the file may be put back, and then the images work
   * again. `imageIds`: the gallery items that show it (live or in the trash); `runIds`: the runs
   * that hold it otherwise (as an init image, image prompt, frame or output).
   */
  missingFiles: { sha256: string; path: string; imageIds: number[]; runIds: number[] }[];
  /** Files found in a trash folder for images that were live, moved back. */
  restoredFromTrash: number;
  /** Trash batches older than 30 days emptied for good. */
  trashPurged: number;
  /**
   * Runs left 'running' by a process that stopped without finishing them (a crash, a kill),
   * now marked failed with the error "interrupted: ...". Only counted when the sweep ran: while
   * another process has the folder open, its runs may really be running.
   */
  runsInterrupted: number;
  /** Generation runs a stopped process left running, with snapshots: they resume from the last one. */
  runsResumable: number;
}

export interface Studio {
  readonly dataDir: string;
  /** One async function per StudioApi call; arguments already validated by the transport. */
  readonly handlers: StudioHandlers;
  on<K extends EventName>(name: K, listener: (payload: EventPayload<K>) => void): () => void;
  /**
   * The file behind an asset for the image protocol / HTTP route. Only ever resolves to a path
   * inside the data folder; null for an unknown hash or variant.
   */
  assetFile(sha256: string, variant: AssetVariant): Promise<{ path: string; mime: string } | null>;
  /** Set by openStudio; absent in test doubles. Filled in as the background check goes (sweep 'running' until then). */
  readonly openReport?: OpenReport;
  close(): Promise<void>;
}
