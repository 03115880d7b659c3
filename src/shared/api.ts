// The StudioApi contract: every call and event that crosses a process or network
// boundary, declared once with zod schemas. The Electron binding (preload + ipcMain)
// and the server binding (HTTP + WebSocket) are both generated from `apiCalls` and
// `apiEvents`, so adding a method here is the only step that touches every transport.
// Style after VS Code's ipc.ts: one argument per call, events named onX, errors as data.
import { z } from 'zod';
import { modelCalls, modelEvents } from './models.js';

export const RunKind = z.enum(['generate', 'prompt', 'classify', 'import']);
export type RunKind = z.infer<typeof RunKind>;

export const Provider = z.enum(['auto', 'cpu', 'webgpu', 'cuda', 'dml', 'coreml']);
export type Provider = z.infer<typeof Provider>;

export const Theme = z.enum(['system', 'dark', 'light']);
export type Theme = z.infer<typeof Theme>;

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex SHA-256');
const Id = z.number().int().positive();

/** Bytes cross IPC as Uint8Array (structured clone) and HTTP as {$bytes: base64} (see wire.ts). */
export const Bytes = z.instanceof(Uint8Array);

// ---------- settings ----------
export const Settings = z.object({
  dataDir: z.string(),
  preferredProvider: Provider,
  theme: Theme,
});
export type Settings = z.infer<typeof Settings>;
export const SettingsPatch = Settings.omit({ dataDir: true }).partial().strict();
export type SettingsPatch = z.infer<typeof SettingsPatch>;

// ---------- system ----------
export const ProviderReport = z.object({
  name: Provider.exclude(['auto']),
  available: z.boolean(),
  /** Why it is or is not usable, in words a user can act on. */
  reason: z.string(),
  /** Time of the probe session, when one ran. */
  ms: z.number().nullable(),
});
export type ProviderReport = z.infer<typeof ProviderReport>;

export const SystemInfo = z.object({
  appVersion: z.string(),
  node: z.string(),
  electron: z.string().nullable(),
  chrome: z.string().nullable(),
  onnxruntime: z.string().nullable(),
  platform: z.string(),
  arch: z.string(),
  dataDir: z.string(),
  freeDiskBytes: z.number().nullable(),
  /** Findings of the data-folder check at open (missing files, orphans moved, sweep skipped), in words. */
  dataFolderProblems: z.array(z.string()),
  providers: z.array(ProviderReport),
});
export type SystemInfo = z.infer<typeof SystemInfo>;

// ---------- gallery ----------
export const GalleryQuery = z
  .object({
    /** Full-text query over prompts, labels, notes, tags and file names (FTS5 syntax tolerated). */
    text: z.string().max(500).optional(),
    kind: RunKind.optional(),
    favourite: z.boolean().optional(),
    /** Inclusive bounds on creation time, ms since the epoch. */
    from: z.number().int().nonnegative().optional(),
    to: z.number().int().nonnegative().optional(),
    sort: z.enum(['newest', 'oldest']).default('newest'),
    offset: z.number().int().nonnegative().default(0),
    limit: z.number().int().min(1).max(500).default(100),
  })
  .strict();
export type GalleryQuery = z.input<typeof GalleryQuery>;

export const GalleryItem = z.object({
  /** Image id (one run may hold several images). */
  id: Id,
  runId: Id,
  kind: RunKind,
  sha256: Sha256,
  /** Short text for the card and the alt attribute: the prompt or the file name. */
  title: z.string(),
  width: z.number().int(),
  height: z.number().int(),
  favourite: z.boolean(),
  createdAt: z.number(),
});
export type GalleryItem = z.infer<typeof GalleryItem>;

export const GalleryPage = z.object({
  total: z.number().int(),
  offset: z.number().int(),
  items: z.array(GalleryItem),
});
export type GalleryPage = z.infer<typeof GalleryPage>;

/** Metadata found in an image's PNG text chunks, by the tool that wrote it. */
export const ImageMetadata = z.object({
  /** Which tool's format was recognised: ours, AUTOMATIC1111, ComfyUI, InvokeAI, or none. */
  source: z.enum(['foundation-studio', 'automatic1111', 'comfyui', 'invokeai', 'unknown', 'none']),
  prompt: z.string().nullable(),
  negativePrompt: z.string().nullable(),
  /** Flat key/value parameters for display (Steps, Seed, Sampler, Model, ...). */
  parameters: z.record(z.string(), z.string()),
  /** Every text chunk as found (keyword -> text), for the "raw" view. */
  raw: z.record(z.string(), z.string()),
});
export type ImageMetadata = z.infer<typeof ImageMetadata>;

export const ItemDetail = z.object({
  item: GalleryItem,
  mime: z.string(),
  bytes: z.number().int(),
  fileName: z.string().nullable(),
  note: z.string(),
  tags: z.array(z.string()),
  /** The run's full spec as stored (JSON). */
  spec: z.unknown(),
  status: z.string(),
  provenance: z.record(z.string(), z.unknown()),
  metadata: ImageMetadata,
});
export type ItemDetail = z.infer<typeof ItemDetail>;

export const ImportFile = z.object({
  name: z.string().min(1).max(1024),
  data: Bytes,
});
export const ImportRequest = z.object({ files: z.array(ImportFile).min(1).max(1000) }).strict();
export type ImportRequest = z.infer<typeof ImportRequest>;

export const ImportReport = z.object({
  imported: z.array(GalleryItem),
  /** Files already in the gallery (same SHA-256): not duplicated, reported. */
  duplicates: z.array(z.object({ name: z.string(), item: GalleryItem })),
  failed: z.array(z.object({ name: z.string(), error: z.string() })),
});
export type ImportReport = z.infer<typeof ImportReport>;

export const DeleteReport = z.object({
  deleted: z.number().int(),
  /** Pass to undoDelete to bring them back. */
  undoToken: z.string(),
});

export const ExportedFile = z.object({ name: z.string(), mime: z.string(), data: Bytes });

// ---------- the calls ----------
const IdArg = z.object({ id: Id }).strict();
const Void = z.object({}).strict();

export const apiCalls = {
  getSystemInfo: { args: z.object({ probeProviders: z.boolean().default(false) }).strict(), result: SystemInfo },
  getSettings: { args: Void, result: Settings },
  updateSettings: { args: SettingsPatch, result: Settings },
  galleryQuery: { args: GalleryQuery, result: GalleryPage },
  getItem: { args: IdArg, result: ItemDetail },
  setFavourite: { args: z.object({ id: Id, favourite: z.boolean() }).strict(), result: GalleryItem },
  setNote: { args: z.object({ id: Id, note: z.string().max(10_000) }).strict(), result: z.object({}) },
  setTags: {
    args: z.object({ id: Id, tags: z.array(z.string().min(1).max(64)).max(64) }).strict(),
    result: z.object({}),
  },
  deleteItems: { args: z.object({ ids: z.array(Id).min(1).max(10_000) }).strict(), result: DeleteReport },
  undoDelete: {
    args: z.object({ undoToken: z.string().min(1).max(200) }).strict(),
    result: z.object({ restored: z.number() }),
  },
  importImages: { args: ImportRequest, result: ImportReport },
  exportItem: { args: IdArg, result: ExportedFile },
  ...modelCalls,
} as const;

export type ApiCalls = typeof apiCalls;
export type CallName = keyof ApiCalls;
export type CallArgs<K extends CallName> = z.input<ApiCalls[K]['args']>;
export type CallResult<K extends CallName> = z.infer<ApiCalls[K]['result']>;

// ---------- the events ----------
export const apiEvents = {
  /** Something in the gallery changed (import, delete, undo, favourite): refresh views. */
  galleryChanged: z.object({ reason: z.enum(['import', 'delete', 'undo', 'update']), ids: z.array(Id) }),
  importProgress: z.object({ done: z.number().int(), total: z.number().int(), name: z.string() }),
  settingsChanged: Settings,
  ...modelEvents,
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

/** What the main-process side implements (validated args, emits events through `emit`). */
export type StudioHandlers = {
  [K in CallName]: (args: z.infer<ApiCalls[K]['args']>) => Promise<CallResult<K>>;
};

export function eventSubscriberName<K extends EventName>(name: K): EventSubscriber<K> {
  return `on${name[0]!.toUpperCase()}${name.slice(1)}` as EventSubscriber<K>;
}

/** Errors cross every boundary as data. `name` is a stable code the UI can switch on. */
export interface WireError {
  name: string;
  message: string;
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
