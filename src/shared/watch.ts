// Watched folders: folders whose image files are imported as they are finished (an AUTOMATIC1111 or
// ComfyUI outputs folder), with a rescan at start for what arrived while the studio was closed.
import { z } from 'zod';
import { Id, Void } from './common.js';

export const WatchedFolder = z.object({
  id: Id,
  /** Absolute path on the machine the studio runs on. */
  path: z.string(),
  /** Whether a file deleted from the folder sends its gallery item to the trash (undoable), or leaves it. */
  mirrorDeletes: z.boolean(),
  addedAt: z.number(),
  /** scanning: the rescan is under way; watching: up to date, following changes; error: see `error`. */
  state: z.enum(['scanning', 'watching', 'error']),
  error: z.string().nullable(),
  /** Image files seen in it (imported, already in the gallery, or failed). */
  files: z.number().int(),
  /** Files waiting to be imported (being written, or queued). */
  pending: z.number().int(),
  /** Files that could not be imported (not an image, damaged); retried when they change. */
  failed: z.number().int(),
  lastScanAt: z.number().nullable(),
});
export type WatchedFolder = z.infer<typeof WatchedFolder>;

export const watchCalls = {
  watchList: { args: Void, result: z.array(WatchedFolder) },
  /** Starts watching a folder on this machine (not inside the data folder, nor holding it); it is scanned at once. */
  watchAdd: {
    args: z.object({ path: z.string().min(1).max(4096), mirrorDeletes: z.boolean().default(false) }).strict(),
    result: WatchedFolder,
  },
  /** Stops watching (what was imported stays in the gallery). */
  watchRemove: { args: z.object({ id: Id }).strict(), result: z.object({}) },
} as const;

export const watchEvents = {
  /** A watched folder's state or counts changed (or it was added). */
  watchChanged: WatchedFolder,
  /** A watched folder was removed. */
  watchRemoved: z.object({ id: Id }),
} as const;
