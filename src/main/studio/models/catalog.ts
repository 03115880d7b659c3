// The catalog of real models (models/catalog.json): ids, files, ordered mirror URLs, sizes,
// licences and how each file is verified. Hashes are only ever the published ones: a file with
// no published SHA-256 is checked against Hugging Face's X-Linked-Etag (the SHA-256 of an LFS
// file) or has its hash recorded on first download, and is shown as "recorded, not verified".
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import catalogJson from '../../../../models/catalog.json' with { type: 'json' };

export const ModelKind = z.enum(['clip', 'vqgan', 'text-lm']);
export type ModelKind = z.infer<typeof ModelKind>;

export const VerifyMethod = z.enum(['sha256', 'hf-linked-etag', 'record-on-first-download']);
export type VerifyMethod = z.infer<typeof VerifyMethod>;

export const SHA256_HEX = /^[0-9a-f]{64}$/;
/** Ids double as folder names under <dataDir>/models, so no separators, no dot-dot. */
export const MODEL_ID = /^[a-z0-9][a-z0-9._-]{0,99}$/;

/** A relative path inside the model folder: forward slashes, no '..', no absolute or empty segments. */
const RelativeFileName = z
  .string()
  .min(1)
  .max(300)
  .refine(
    (p) => !p.startsWith('/') && !p.includes('\\') && p.split('/').every((s) => s !== '' && s !== '.' && s !== '..'),
    { message: 'a file name is a relative path with forward slashes and no "." or ".." segments' },
  );

const HttpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), { message: 'mirror URLs are http(s)' });

export const CatalogFile = z
  .object({
    name: RelativeFileName,
    /** Tried in order; the next is used when one fails (404, 5xx, connection error, bad checksum). */
    urls: z.array(HttpUrl).min(1),
    size: z.object({ bytes: z.number().int().positive(), approximate: z.boolean() }).strict().optional(),
    sha256: z.string().regex(SHA256_HEX, 'a sha256 is 64 lower-case hex digits').optional(),
    verify: VerifyMethod,
    /** A file the model works without (generation_config.json): failing on every mirror is not fatal. */
    optional: z.boolean().optional(),
  })
  .strict()
  .refine((f) => (f.verify === 'sha256') === (f.sha256 !== undefined), {
    message: 'verify is "sha256" exactly when a sha256 is given',
  });
export type CatalogFile = z.infer<typeof CatalogFile>;

export const CatalogEntry = z
  .object({
    id: z.string().regex(MODEL_ID, 'ids are lower-case letters, digits, ".", "_" and "-"'),
    kind: ModelKind,
    title: z.string().min(1),
    default: z.boolean(),
    /** The Hugging Face repo the files come from, where they do. */
    repo: z.string().optional(),
    description: z.string().min(1),
    licence: z.string().min(1),
    homepage: z.string().url(),
    /** How the text runtime loads it (transformers.js dtype of the weights file). */
    runtime: z
      .object({ library: z.literal('transformers.js'), dtype: z.string() })
      .strict()
      .optional(),
    files: z.array(CatalogFile).min(1),
    notes: z.string().optional(),
  })
  .strict()
  .refine((e) => new Set(e.files.map((f) => f.name)).size === e.files.length, {
    message: 'file names within a model are unique',
  });
export type CatalogEntry = z.infer<typeof CatalogEntry>;

/** A host the catalog downloads from: who runs it, and whether that is someone other than the model's publisher. */
export const CatalogHost = z
  .object({
    host: z.string().regex(/^[a-z0-9.-]+$/, 'a host name in lower case'),
    name: z.string().min(1),
    /** Run by someone other than the publisher of the models it serves (a mirror): the user may turn these off. */
    thirdParty: z.boolean(),
    about: z.string().min(1),
  })
  .strict();
export type CatalogHost = z.infer<typeof CatalogHost>;

export const Catalog = z
  .object({
    version: z.literal(1),
    /** Who runs each host the URLs point at (a catalog that lists any must list them all). */
    hosts: z.array(CatalogHost).default([]),
    models: z.array(CatalogEntry).min(1),
  })
  .strict()
  .superRefine((c, ctx) => {
    // Every URL's host is named, so the user is told whose server a download comes from.
    const hosts = new Set(c.hosts.map((h) => h.host));
    if (hosts.size > 0)
      for (const m of c.models)
        for (const f of m.files)
          for (const u of f.urls)
            if (!hosts.has(new URL(u).hostname))
              ctx.addIssue({ code: 'custom', message: `${m.id}/${f.name}: the host of ${u} is not in "hosts"` });
    const ids = new Set<string>();
    for (const m of c.models) {
      if (ids.has(m.id)) ctx.addIssue({ code: 'custom', message: `duplicate model id "${m.id}"` });
      ids.add(m.id);
    }
    for (const kind of ModelKind.options) {
      const defaults = c.models.filter((m) => m.kind === kind && m.default);
      if (defaults.length !== 1)
        ctx.addIssue({
          code: 'custom',
          message: `exactly one default model per kind: ${kind} has ${defaults.length} (${defaults.map((d) => d.id).join(', ') || 'none'})`,
        });
    }
  });
export type Catalog = z.infer<typeof Catalog>;

/** Validates a catalog; the error names every problem with its path. */
export function parseCatalog(json: unknown): Catalog {
  const r = Catalog.safeParse(json);
  if (!r.success)
    throw new Error(
      `The model catalog is invalid: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  return r.data;
}

let builtin: Catalog | null = null;
/**
 * The catalog shipped with the app (models/catalog.json), validated once; or, when FSTUDIO_MODEL_CATALOG
 * names a file, that catalog instead (an organisation's own models and servers, or a test's).
 */
export function builtinCatalog(): Catalog {
  if (builtin) return builtin;
  const own = process.env.FSTUDIO_MODEL_CATALOG;
  if (!own) return (builtin = parseCatalog(catalogJson));
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(own, 'utf8'));
  } catch (e) {
    throw new Error(
      `FSTUDIO_MODEL_CATALOG names ${own}, which cannot be read as JSON (${(e as Error).message}). Fix the file, or unset the variable to use the built-in catalog.`,
    );
  }
  return (builtin = parseCatalog(json));
}

/** The catalog's entry for a URL's host; null for a host it does not name (the user's own mirror). */
export function hostOf(catalog: Catalog, url: string): CatalogHost | null {
  let name: string;
  try {
    name = new URL(url).hostname;
  } catch {
    return null;
  }
  return catalog.hosts.find((h) => h.host === name) ?? null;
}

export function findModel(catalog: Catalog, id: string): CatalogEntry | undefined {
  return catalog.models.find((m) => m.id === id);
}

export function defaultModel(catalog: Catalog, kind: ModelKind): CatalogEntry {
  const m = catalog.models.find((e) => e.kind === kind && e.default);
  if (!m) throw new Error(`The model catalog has no default ${kind} model.`);
  return m;
}

/** Known bytes of a model's files (approximate sizes included), and whether any size is unknown. */
export function expectedBytes(entry: CatalogEntry): { bytes: number; approximate: boolean; unknown: number } {
  let bytes = 0;
  let approximate = false;
  let unknown = 0;
  for (const f of entry.files) {
    if (!f.size) unknown++;
    else {
      bytes += f.size.bytes;
      approximate ||= f.size.approximate;
    }
  }
  return { bytes, approximate, unknown };
}
