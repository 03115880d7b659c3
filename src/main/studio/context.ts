// What the handler groups (handlers/*.ts) share: the open data folder's services and the studio's
// event emitter. openStudio() builds one StudioContext and hands it to every group.
import { StudioError, type EventName, type EventPayload } from '../../shared/api.js';
import type { AssetFiles } from './assets.js';
import type { StudioCompute } from './compute.js';
import type { History } from './history.js';
import type { HistoryReader } from './history-reader.js';
import type { ImportDecoder } from './import-decoder.js';
import type { JobManager } from './jobs/manager.js';
import type { LabStore } from './lab-store.js';
import type { ModelManager } from './models/manager.js';
import type { SettingsStore } from './settings.js';
import type { OpenReport, StudioOptions } from './types.js';

export type Emit = <K extends EventName>(name: K, payload: EventPayload<K>) => void;

/** Serialises the operations that move files and rows together (import, delete, undo). */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => {});
    return next;
  }
  idle(): Promise<unknown> {
    return this.tail;
  }
}

export interface StudioContext {
  readonly dataDir: string;
  readonly options: StudioOptions;
  readonly history: History;
  /** Prompt-made models, the rows of prompt and classify runs, the runs' search index (lab-store.ts). */
  readonly lab: LabStore;
  readonly files: AssetFiles;
  readonly settings: SettingsStore;
  readonly models: ModelManager;
  readonly compute: StudioCompute;
  readonly jobs: JobManager;
  readonly decoder: ImportDecoder;
  /** The history worker: exact counts and checks off the main thread. */
  readonly reader: HistoryReader;
  /** What the open-time checks found (filled in by the background check as it goes). */
  readonly report: OpenReport;
  /** Whether the background check of the data folder is still running. */
  checking(): boolean;
  readonly mutex: Mutex;
  emit: Emit;
  /** Throws once the studio is closed (a call that arrives during shutdown). */
  live(): void;
}

export const closedError = () => new StudioError('Closed', 'The studio has been closed.');
