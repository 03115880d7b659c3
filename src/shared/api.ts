// The StudioApi contract: every call and event that crosses a process or network
// boundary, declared once with zod schemas in one group per domain (system.ts, gallery.ts,
// generate.ts, models.ts, jobs.ts) and composed here. The Electron binding (preload + ipcMain) and the server
// binding (HTTP + WebSocket) are both generated from `apiCalls` and `apiEvents`, so adding a method
// to a group is the only step that touches every transport.
// Style after VS Code's ipc.ts: one argument per call, events named onX, errors as data.
import type { z } from 'zod';
import { classifyCalls, classifyEvents } from './classify.js';
import { galleryCalls, galleryEvents } from './gallery.js';
import { generateCalls, generateEvents } from './generate.js';
import { historyCalls, historyEvents } from './history.js';
import { jobCalls, jobEvents } from './jobs.js';
import { modelCalls, modelEvents } from './models.js';
import { promptCalls, promptEvents } from './prompt.js';
import { systemCalls, systemEvents } from './system.js';
import { watchCalls, watchEvents } from './watch.js';

export * from './classify.js';
export * from './common.js';
export * from './gallery.js';
export * from './generate.js';
export * from './history.js';
export * from './jobs.js';
export * from './models.js';
export * from './prompt.js';
export * from './providers.js';
export * from './system.js';
export * from './watch.js';

export const apiCalls = {
  ...systemCalls,
  ...galleryCalls,
  ...generateCalls,
  ...historyCalls,
  ...modelCalls,
  ...jobCalls,
  ...watchCalls,
  ...promptCalls,
  ...classifyCalls,
} as const;

export type ApiCalls = typeof apiCalls;
export type CallName = keyof ApiCalls;
export type CallArgs<K extends CallName> = z.input<ApiCalls[K]['args']>;
export type CallResult<K extends CallName> = z.infer<ApiCalls[K]['result']>;

// ---------- the events ----------
export const apiEvents = {
  ...systemEvents,
  ...galleryEvents,
  ...generateEvents,
  ...historyEvents,
  ...modelEvents,
  ...jobEvents,
  ...watchEvents,
  ...promptEvents,
  ...classifyEvents,
} as const;
export type ApiEvents = typeof apiEvents;
export type EventName = keyof ApiEvents;
export type EventPayload<K extends EventName> = z.infer<ApiEvents[K]>;

/** `onGalleryChanged` for `galleryChanged`. */
export type EventSubscriber<K extends EventName> = `on${Capitalize<K>}`;

/** The API as the renderer sees it: one async method per call, one onX per event. */
export type StudioApi = {
  [K in CallName]: (args: CallArgs<K>) => Promise<CallResult<K>>;
} & {
  [K in EventName as EventSubscriber<K>]: (listener: (payload: EventPayload<K>) => void) => () => void;
};

/** What the main-process side implements for a group of calls (validated args; results as the schema says). */
export type Handlers<G extends Record<string, { args: z.ZodType; result: z.ZodType }>> = {
  [K in keyof G]: (args: z.infer<G[K]['args']>) => Promise<z.infer<G[K]['result']>>;
};

/** What the main-process side implements: every call (openStudio composes the groups' handlers). */
export type StudioHandlers = Handlers<ApiCalls>;

export function eventSubscriberName<K extends EventName>(name: K): EventSubscriber<K> {
  return `on${name[0]!.toUpperCase()}${name.slice(1)}` as EventSubscriber<K>;
}

/** Errors cross every boundary as data. `name` is a stable code the UI can switch on. */
export interface WireError {
  name: string;
  message: string;
  /** Only between threads of one process (the compute worker's errors, for logs); never sent to a client. */
  stack?: string;
}

export class StudioError extends Error {
  constructor(
    public readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = code;
  }
}
