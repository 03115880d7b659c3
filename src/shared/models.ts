// The model manager's part of the StudioApi contract (api.ts spreads modelCalls and modelEvents
// into its tables). The manager's results are typed from these, so contract and implementation stay one.
import { z } from 'zod';

export const ModelKindSchema = z.enum(['clip', 'vqgan', 'text-lm']);

/**
 * How a file's bytes are known to be right:
 *  - sha256: matches the SHA-256 published in the catalog
 *  - hf-linked-etag: matches the SHA-256 Hugging Face sent in X-Linked-Etag
 *  - recorded: hashed on first download or import, nothing to check it against ("recorded, not verified")
 */
export const FileVerification = z.enum(['sha256', 'hf-linked-etag', 'recorded']);
export type FileVerification = z.infer<typeof FileVerification>;

export const ModelFileInfo = z.object({
  name: z.string(),
  /** present: in place; partial: a .part file waits for resume; missing: neither. */
  state: z.enum(['present', 'partial', 'missing']),
  /** Bytes on disk (the .part's size when partial). */
  bytes: z.number().int(),
  /** Size from the catalog when known. */
  expectedBytes: z.number().int().nullable(),
  expectedApproximate: z.boolean(),
  sha256: z.string().nullable(),
  verification: FileVerification.nullable(),
  /** Where it came from: a mirror URL, or the path it was imported from. */
  source: z.string().nullable(),
  optional: z.boolean(),
});
export type ModelFileInfo = z.infer<typeof ModelFileInfo>;

/** A server a model's files come from, in the order they are tried. */
export const ModelSource = z.object({
  host: z.string(),
  /** Who runs it, in words ("Hugging Face", "hf-mirror.com", "your mirror"). */
  name: z.string(),
  /** Run by someone other than the model's publisher. */
  thirdParty: z.boolean(),
  about: z.string(),
  /** False when a setting keeps it out (third-party mirrors turned off, or only your own mirror used). */
  enabled: z.boolean(),
  /** Why it is not used: third-party mirrors are turned off, or only your mirror is used (FSTUDIO_MODEL_MIRROR_ONLY). */
  unusedBecause: z.enum(['third-party-off', 'mirror-only']).nullable(),
});
export type ModelSource = z.infer<typeof ModelSource>;

/** A URL's host name (the text itself when it is not a URL). */
export function urlHost(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return url;
  }
}

/** "hf-mirror.com (third-party mirror)", "heibox.uni-heidelberg.de (Heidelberg University heibox)", "huggingface.co". */
export function sourceLabel(s: Pick<ModelSource, 'host' | 'name' | 'thirdParty'>): string {
  if (s.thirdParty) return `${s.host} (third-party mirror)`;
  return s.name === s.host ? s.host : `${s.host} (${s.name})`;
}

/**
 * The servers a model does not use and why, in words: "hf-mirror.com (third-party mirrors are turned off)";
 * `turnedOff` names where ("turned off in Settings"). Null when every one is used.
 */
export function unusedSourcesWords(sources: readonly ModelSource[], turnedOff = 'turned off'): string | null {
  const hosts = (why: ModelSource['unusedBecause']) =>
    sources.filter((s) => !s.enabled && s.unusedBecause === why).map((s) => s.host);
  const parts: string[] = [];
  const only = hosts('mirror-only');
  const third = hosts('third-party-off');
  if (only.length) parts.push(`${only.join(', ')} (only your mirror is used)`);
  if (third.length) parts.push(`${third.join(', ')} (third-party mirrors are ${turnedOff})`);
  return parts.length ? parts.join('; ') : null;
}

/** The label of the server a URL is on, from a model's sources (the host alone for one it does not list). */
export function urlSourceLabel(url: string, sources: readonly ModelSource[]): string {
  const host = urlHost(url);
  const s = sources.find((x) => x.host === host);
  return s ? sourceLabel(s) : host;
}

export const ModelInfo = z.object({
  id: z.string(),
  kind: ModelKindSchema,
  title: z.string(),
  description: z.string(),
  licence: z.string(),
  homepage: z.string(),
  default: z.boolean(),
  notes: z.string().nullable(),
  /** installed: every required file present; partial: some bytes on disk; missing: none. */
  state: z.enum(['installed', 'partial', 'missing']),
  /** Weakest verification over the present files (recorded < hf-linked-etag < sha256); null if none. */
  verification: FileVerification.nullable(),
  downloading: z.boolean(),
  bytesOnDisk: z.number().int(),
  /** Sum of the catalog sizes that are known (null when none is); approximate when any is. */
  expectedBytes: z.number().int().nullable(),
  expectedApproximate: z.boolean(),
  /** Files whose size the catalog does not give (small JSON files, mostly). */
  expectedUnknownFiles: z.number().int(),
  /** Folder holding the files (for the runtimes and "show in folder"). */
  dir: z.string(),
  /** Where its files are downloaded from, in the order tried. */
  sources: z.array(ModelSource),
  files: z.array(ModelFileInfo),
});
export type ModelInfo = z.infer<typeof ModelInfo>;

export const FileProgressSchema = z.object({
  name: z.string(),
  state: z.enum([
    'queued',
    'connecting',
    'downloading',
    'stalled',
    'retrying',
    'verifying',
    'done',
    'failed',
    'skipped',
    'cancelled',
  ]),
  bytes: z.number(),
  total: z.number().nullable(),
  speed: z.number(),
  etaSeconds: z.number().nullable(),
  url: z.string().nullable(),
  mirror: z.number().int(),
  mirrors: z.number().int(),
  attempt: z.number().int(),
  maxAttempts: z.number().int(),
  message: z.string().nullable(),
});

/** The `modelProgress` event: a pull's total and per-file progress. */
export const ModelProgress = z.object({
  modelId: z.string(),
  jobId: z.string(),
  state: z.enum(['queued', 'running', 'done', 'failed', 'cancelled']),
  files: z.array(FileProgressSchema),
  bytes: z.number(),
  total: z.number().nullable(),
  speed: z.number(),
  etaSeconds: z.number().nullable(),
  stalled: z.boolean(),
  message: z.string().nullable(),
});
export type ModelProgress = z.infer<typeof ModelProgress>;

export const VerifyReport = z.object({
  id: z.string(),
  ok: z.boolean(),
  files: z.array(
    z.object({
      name: z.string(),
      result: z.enum(['ok', 'recorded', 'mismatch', 'missing']),
      sha256: z.string().nullable(),
      expected: z.string().nullable(),
      verification: FileVerification.nullable(),
      message: z.string(),
    }),
  ),
});
export type VerifyReport = z.infer<typeof VerifyReport>;

export const ModelImportReport = z.object({
  id: z.string(),
  imported: z.array(
    z.object({ name: z.string(), from: z.string(), sha256: z.string(), verification: FileVerification }),
  ),
  /** Required catalog files the source did not have. */
  missing: z.array(z.string()),
  model: ModelInfo,
});
export type ModelImportReport = z.infer<typeof ModelImportReport>;

const ModelIdArg = z.string().min(1).max(100);

/** Calls and events to merge into api.ts's apiCalls / apiEvents. */
export const modelCalls = {
  modelsList: { args: z.object({}).strict(), result: z.array(ModelInfo) },
  /** Resolves once the pull is queued; progress and the outcome arrive as modelProgress events. */
  modelPull: { args: z.object({ id: ModelIdArg }).strict(), result: z.object({ jobId: z.string() }) },
  modelCancel: {
    args: z.object({ id: ModelIdArg, discard: z.boolean().default(false) }).strict(),
    result: z.object({ cancelled: z.boolean() }),
  },
  /**
   * `path` is a file or folder name relative to `<dataDir>/imports/` (no absolute paths, no `..`,
   * no links leading out): no path outside the data folder is reachable through the API. The CLI's
   * `fstudio models import <id> <path>` takes any local path.
   */
  modelImport: {
    args: z.object({ id: ModelIdArg, path: z.string().min(1).max(4096), as: z.string().max(300).optional() }).strict(),
    result: ModelImportReport,
  },
  modelVerify: { args: z.object({ id: ModelIdArg }).strict(), result: VerifyReport },
  modelRemove: { args: z.object({ id: ModelIdArg }).strict(), result: z.object({ removedBytes: z.number() }) },
} as const;

export const modelEvents = {
  modelProgress: ModelProgress,
  /** A model's files changed (pulled, imported, verified, removed): refresh its row. */
  modelsChanged: z.object({ id: z.string(), reason: z.enum(['pull', 'import', 'verify', 'remove']) }),
} as const;
