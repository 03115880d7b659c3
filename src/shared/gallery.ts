// The gallery: every run's images, searchable; imports from other tools, delete with undo, export.
import { z } from 'zod';
import { Bytes, Id, Sha256 } from './common.js';

export const RunKind = z.enum(['generate', 'prompt', 'classify', 'import']);
export type RunKind = z.infer<typeof RunKind>;

/** A place in the gallery's order (an item's sort key, as text): pages continue after or before one. */
export const GalleryCursor = z.string().regex(/^\d{1,16}$/, 'expected a cursor from a gallery page');

/** What a gallery shows: the filters of a query, without the place of the page. */
export const GalleryFilterArgs = z
  .object({
    /** Full-text query over prompts, labels, notes, tags and file names (FTS5 syntax tolerated). */
    text: z.string().max(500).optional(),
    kind: RunKind.optional(),
    favourite: z.boolean().optional(),
    /** Inclusive bounds on creation time, ms since the epoch. */
    from: z.number().int().nonnegative().optional(),
    to: z.number().int().nonnegative().optional(),
  })
  .strict();
export type GalleryFilterArgs = z.input<typeof GalleryFilterArgs>;

/**
 * A page of the gallery. Pages are found by seeking, never by skipping rows: `after` / `before` a
 * cursor of a page already shown (scrolling), `at` a date, or at a position (`offset` alone: the
 * scrollbar, End). With a cursor, `offset` is only the position the caller gives the page (echoed).
 */
export const GalleryQuery = GalleryFilterArgs.extend({
  sort: z.enum(['newest', 'oldest']).default('newest'),
  offset: z.number().int().nonnegative().default(0),
  limit: z.number().int().min(1).max(500).default(100),
  /** The page after this cursor in the query's order (a page's `next`). */
  after: GalleryCursor.optional(),
  /** The page that ends just before this cursor (a page's `prev`). */
  before: GalleryCursor.optional(),
  /** Jump to a date (ms): the page starts at the first item created at or before it (oldest first: at or after). */
  at: z.number().int().nonnegative().optional(),
})
  .strict()
  .refine((q) => [q.after, q.before, q.at].filter((x) => x !== undefined).length <= 1, {
    message: 'give at most one of after, before and at',
  });
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
  /** Items that match: exact, or with `totalExact` false at least this many (galleryCount counts them all). */
  total: z.number().int(),
  totalExact: z.boolean(),
  /** The position of the first item (for `at`, where the date is). */
  offset: z.number().int(),
  items: z.array(GalleryItem),
  /** Cursors for the pages after and before this one (null when it is empty). */
  next: GalleryCursor.nullable(),
  prev: GalleryCursor.nullable(),
});
export type GalleryPage = z.infer<typeof GalleryPage>;

/** The largest image file the studio imports (the renderer, `fstudio import` and watched folders refuse larger ones). */
export const MAX_IMPORT_FILE_BYTES = 256 * 1024 * 1024;

/** File extensions a folder walk imports (the content decides in the end). */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif']);

/** The tools whose metadata the studio reads, as their makers name them (`source` of ImageMetadata). */
export const TOOL_NAMES = {
  'foundation-studio': 'Foundation Studio',
  automatic1111: 'AUTOMATIC1111',
  comfyui: 'ComfyUI',
  invokeai: 'InvokeAI',
  novelai: 'NovelAI',
  fooocus: 'Fooocus',
  swarmui: 'SwarmUI',
} as const;

/** Metadata found in an image's PNG text chunks, by the tool that wrote it. */
export const ImageMetadata = z.object({
  /**
   * Which tool's format was recognised: ours, AUTOMATIC1111 (also its "stealth pnginfo" in the
   * pixels' lowest bits, said so in the `Metadata note` parameter), ComfyUI, InvokeAI, NovelAI, Fooocus,
   * SwarmUI; `unknown` for text no reader recognised, `none` for no metadata at all.
   */
  source: z.enum([
    'foundation-studio',
    'automatic1111',
    'comfyui',
    'invokeai',
    'novelai',
    'fooocus',
    'swarmui',
    'unknown',
    'none',
  ]),
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
  /** When the file was last modified (ms): the item's date in the gallery. Now when not given. */
  modifiedAt: z.number().int().nonnegative().optional(),
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

export const ExportedFile = z.object({
  name: z.string(),
  mime: z.string(),
  data: Bytes,
  /** What metadata the file carries, in words ("the prompt", "the generation parameters", "your note", ...). */
  carries: z.array(z.string()),
  /** What the item has that the file does not carry ("your note", "your tags"): the export setting left them out. */
  leftOut: z.array(z.string()),
});

const IdArg = z.object({ id: Id }).strict();

export const galleryCalls = {
  galleryQuery: { args: GalleryQuery, result: GalleryPage },
  /** The exact number of items a filter matches (a text search past 10,000 matches is counted here, off the main thread). */
  galleryCount: { args: GalleryFilterArgs, result: z.object({ total: z.number().int() }) },
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
  exportItem: {
    args: z
      .object({
        id: Id,
        /** Put the user's note and tags in the file; by default the `exportNoteAndTags` setting decides. */
        noteAndTags: z.boolean().optional(),
      })
      .strict(),
    result: ExportedFile,
  },
} as const;

export const galleryEvents = {
  /** Something in the gallery changed (import, delete, undo, favourite): refresh views. */
  galleryChanged: z.object({ reason: z.enum(['import', 'delete', 'undo', 'update']), ids: z.array(Id) }),
  /** Per importImages call: files done of the call's, images a second so far, and the time left at that rate. */
  importProgress: z.object({
    done: z.number().int(),
    total: z.number().int(),
    name: z.string(),
    rate: z.number().nonnegative().optional(),
    etaMs: z.number().nonnegative().nullable().optional(),
  }),
} as const;
