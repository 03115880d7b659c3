// Classify: CLIP zero-shot classification of a folder of images (or of images already in the gallery) with a
// list of labels ("is photoshopped" / "is not photoshopped") and prompt templates ensembled per label. A run
// is a history run of kind 'classify' (a job while it runs) whose rows hold each image's probabilities; the
// page then sets a threshold (two labels) or fits it to images the user labels, marks results inside an
// "unsure" band, exports CSV, copies the images by label or tags gallery items, and shows how the answers
// move across other wordings and orders of the labels.
import { z } from 'zod';
import { Bytes, Id } from './common.js';
import { Provider } from './providers.js';
import { RunState } from './runs.js';

export const MAX_CLASSIFY_LABELS = 20;
/** A label becomes a gallery tag: the tags' limit. */
export const MAX_LABEL_CHARS = 64;
export const MAX_CLASSIFY_TEMPLATES = 200;
export const MAX_CLASSIFY_IMAGES = 20_000;
export const MAX_CLASSIFY_WORDINGS = 8;

const Label = z
  .string()
  .trim()
  .min(1, 'a label cannot be empty')
  .max(MAX_LABEL_CHARS, `a label is at most ${MAX_LABEL_CHARS} characters`);

/** Two to twenty distinct labels. */
export const Labels = z
  .array(Label)
  .min(
    2,
    'Give at least two labels (like "is photoshopped|is not photoshopped"): one label has nothing to compare with.',
  )
  .max(MAX_CLASSIFY_LABELS, `At most ${MAX_CLASSIFY_LABELS} labels.`)
  .refine((ls) => new Set(ls).size === ls.length, 'Each label must be different.');

export const TemplateSetId = z.enum(['plain', 'imagenet7', 'imagenet80']);
export type TemplateSetId = z.infer<typeof TemplateSetId>;

/** A built-in set, or the user's own templates (each with `{}` where the label goes). */
export const TemplateChoice = z.union([
  z.object({ set: TemplateSetId }).strict(),
  z
    .object({
      custom: z
        .array(
          z
            .string()
            .trim()
            .min(1)
            .max(300)
            .refine((t) => t.includes('{}'), 'each template needs {} where the label goes, like "a photo of a {}."'),
        )
        .min(1)
        .max(MAX_CLASSIFY_TEMPLATES),
    })
    .strict(),
]);
export type TemplateChoice = z.infer<typeof TemplateChoice>;

export const ClassifySource = z.union([
  /** A folder on this machine (read only), searched recursively. */
  z.object({ folder: z.string().min(1).max(4096) }).strict(),
  /** Images in the gallery: all of them, or those a search finds; classified in place. */
  z.object({ gallery: z.object({ text: z.string().max(500).optional() }).strict() }).strict(),
]);
export type ClassifySource = z.infer<typeof ClassifySource>;

export const ClassifyStartArgs = z
  .object({
    labels: Labels,
    templates: TemplateChoice.default({ set: 'imagenet7' }),
    source: ClassifySource,
    /** Catalog id or a folder under the data folder's models/ (default: the catalog's default CLIP). */
    model: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]*$/i, 'expected a model id from the Models page (like clip-vit-base-patch32)')
      .max(200)
      .optional(),
    provider: Provider.optional(),
    /** Other wordings of the same labels (same count, same order of meaning) for the explorer. */
    wordings: z.array(Labels).max(MAX_CLASSIFY_WORDINGS).default([]),
    /** Gallery source: tag each item with its label when the run ends (existing tags are kept). */
    tag: z.boolean().default(true),
  })
  .strict();
export type ClassifyStartArgs = z.input<typeof ClassifyStartArgs>;

/** How results are decided: a threshold on p(label 0) (two labels only; null = the most probable) and the unsure band. */
export const Decision = z
  .object({
    threshold: z.number().min(0).max(1).nullable().default(null),
    /** A result whose margin (top probability minus the second) is below this is "unsure". */
    unsureBand: z.number().min(0).max(1).default(0),
  })
  .strict();
export type Decision = z.input<typeof Decision>;

/** One image's result. */
export const ClassifyRow = z.object({
  idx: z.number().int(),
  /** The file's path (folder runs) or the gallery item's file name. */
  path: z.string(),
  /** Gallery items: the item and its picture (thumbnails through the asset route). */
  itemId: Id.nullable(),
  sha256: z.string().nullable(),
  /** Probabilities per label, in the order of the run's labels. */
  probs: z.array(z.number()),
  /** The most probable label's index, and its probability minus the second's. */
  top: z.number().int(),
  margin: z.number(),
  /** [template][label]: the probabilities each template gives alone (empty past 256 labels x templates). */
  templateProbs: z.array(z.array(z.number())),
  /** The label each variant of the explorer gave (index into the run's labels), in ClassifyRun.variants' order. */
  variants: z.array(z.number().int()),
});
export type ClassifyRow = z.infer<typeof ClassifyRow>;

export const ClassifyRun = z.object({
  runId: Id,
  jobId: z.string().nullable(),
  title: z.string(),
  state: RunState,
  error: z.string().nullable(),
  createdAt: z.number(),
  labels: z.array(z.string()),
  templateSet: z.string(),
  templates: z.array(z.string()),
  source: z.string(),
  /** The factor on cosines, and where it came from ('model': its logit_scale; 'default': 100). */
  logitScale: z.number().nullable(),
  logitScaleSource: z.enum(['model', 'default']).nullable(),
  /** The explorer's variants: each a name ("wording 2", "order reversed") and its labels in its order. */
  variants: z.array(z.object({ name: z.string(), labels: z.array(z.string()) })),
  images: z.number().int(),
  /** Files that could not be read or decoded, each with why. */
  skipped: z.array(z.object({ path: z.string(), error: z.string() })),
});
export type ClassifyRun = z.infer<typeof ClassifyRun>;

/** The most probable label's index, and its probability minus the second's (0 to 1; near 0: cannot tell). */
export function topTwo(probs: readonly number[]): { top: number; margin: number } {
  let top = 0;
  for (let i = 1; i < probs.length; i++) if (probs[i]! > probs[top]!) top = i;
  let second = -Infinity;
  for (let i = 0; i < probs.length; i++) if (i !== top && probs[i]! > second) second = probs[i]!;
  return { top, margin: probs[top]! - (second === -Infinity ? 0 : second) };
}

/**
 * A result's label under a decision: with a threshold (two labels only), label 0 when p(label 0) >= threshold,
 * else the most probable; unsure when the margin is below the band. The page and the service decide alike.
 */
export function decideLabel(
  probs: readonly number[],
  d: { threshold?: number | null; unsureBand?: number } = {},
): { label: number; unsure: boolean } {
  const { top, margin } = topTwo(probs);
  const th = d.threshold ?? null;
  if (th !== null && probs.length !== 2) throw new Error('a threshold applies to two labels only');
  return { label: th === null ? top : probs[0]! >= th ? 0 : 1, unsure: margin < (d.unsureBand ?? 0) };
}

const RunArg = z.object({ runId: Id }).strict();
const Marks = z
  .array(z.object({ idx: z.number().int().min(0), label: z.union([z.literal(0), z.literal(1)]) }).strict())
  .min(2)
  .max(10_000);

export const classifyCalls = {
  /** The built-in template sets, with their templates. */
  classifyTemplateSets: {
    args: z.object({}).strict(),
    result: z.array(z.object({ id: TemplateSetId, name: z.string(), templates: z.array(z.string()) })),
  },
  /** Reads a template file's text (one template a line, {} for the label): its templates, or an error saying what to fix. */
  classifyParseTemplates: {
    args: z.object({ text: z.string().max(256 * 1024) }).strict(),
    result: z.object({ templates: z.array(z.string()) }),
  },
  /** Starts a run (a job); the folder is walked first, so an empty or missing folder is refused at once. */
  classifyStart: {
    args: ClassifyStartArgs,
    result: z.object({ runId: Id, jobId: z.string(), images: z.number().int() }),
  },
  /** A run's settings and counts. */
  classifyRun: { args: RunArg, result: ClassifyRun },
  /** A page of a run's rows, in the order the images were read. */
  classifyRows: {
    args: z
      .object({
        runId: Id,
        offset: z.number().int().min(0).default(0),
        limit: z.number().int().min(1).max(2000).default(500),
      })
      .strict(),
    result: z.object({ rows: z.array(ClassifyRow), total: z.number().int() }),
  },
  /** Past classify runs, newest first; with text, those the history search finds (labels, folder name). */
  classifyRuns: {
    args: z
      .object({ text: z.string().max(500).optional(), limit: z.number().int().min(1).max(200).default(50) })
      .strict(),
    result: z.array(ClassifyRun.omit({ templates: true, skipped: true, variants: true })),
  },
  /** Fits the two-label threshold to images the user marked (rows' idx and their true label). */
  classifyCalibrate: {
    args: z.object({ runId: Id, marks: Marks }).strict(),
    result: z.object({
      threshold: z.number(),
      accuracy: z.number(),
      correct: z.number().int(),
      marked: z.number().int(),
      interval: z.tuple([z.number(), z.number()]),
    }),
  },
  /** The explorer: per variant the share of each label, per image how often the variants disagree. */
  classifyExplore: {
    args: RunArg,
    result: z.object({
      variants: z.array(z.object({ name: z.string(), labels: z.array(z.string()), shares: z.array(z.number()) })),
      perImage: z.array(z.object({ idx: z.number().int(), flipRate: z.number(), entropy: z.number() })),
      /** The mean flip rate over images, and the share of images at least one variant answered differently. */
      meanFlipRate: z.number(),
      anyFlip: z.number(),
    }),
  },
  /** The results as CSV (path, label, unsure, margin, one column per label's probability). */
  classifyExport: {
    args: z.object({ runId: Id, decision: Decision.default({ threshold: null, unsureBand: 0 }) }).strict(),
    result: z.object({ name: z.string(), mime: z.string(), data: Bytes }),
  },
  /** Copies a folder run's images into <data>/exports/classify-<runId>/<label>/ (unsure ones into unsure/). */
  classifyCopy: {
    args: z.object({ runId: Id, decision: Decision.default({ threshold: null, unsureBand: 0 }) }).strict(),
    result: z.object({ folder: z.string(), copied: z.number().int(), perLabel: z.record(z.string(), z.number()) }),
  },
  /** Tags a gallery run's items with their label (their other tags kept; this run's other labels removed). */
  classifyTag: {
    args: z.object({ runId: Id, decision: Decision.default({ threshold: null, unsureBand: 0 }) }).strict(),
    result: z.object({ tagged: z.number().int() }),
  },
  /** A small WebP of a folder run's image (gallery items use the asset route). */
  classifyThumb: {
    args: z.object({ runId: Id, idx: z.number().int().min(0) }).strict(),
    result: z.object({ mime: z.string(), data: Bytes }),
  },
} as const;

export type ClassifyExploreResult = z.infer<(typeof classifyCalls)['classifyExplore']['result']>;

export const classifyEvents = {} as const;
