// The gallery: every run's images, searchable; imports from other tools, delete with undo, export.
import { z } from 'zod';
import { Bytes, Id, Sha256 } from './common.js';

export const RunKind = z.enum(['generate', 'prompt', 'classify', 'import']);
export type RunKind = z.infer<typeof RunKind>;

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

const IdArg = z.object({ id: Id }).strict();

export const galleryCalls = {
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
} as const;

export const galleryEvents = {
  /** Something in the gallery changed (import, delete, undo, favourite): refresh views. */
  galleryChanged: z.object({ reason: z.enum(['import', 'delete', 'undo', 'update']), ids: z.array(Id) }),
  importProgress: z.object({ done: z.number().int(), total: z.number().int(), name: z.string() }),
} as const;
