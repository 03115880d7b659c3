// Prompt Lab: prompt-made models (a causal LM plus a few-shot prompt, prompt-model.ts) saved, versioned,
// exported and imported as one JSON file; tried on one input; run over a file of inputs (TXT lines, a CSV
// column, a JSONL field) as a job whose rows stream as `promptRows` events and land in the history; runs
// listed, searched, exported as CSV/JSONL and compared side by side; and the uncertainty explorer (the same
// inputs under permutations of the examples, leave-one-out and label wordings: per input the flip rate and
// entropy of the answers, per variant the accuracy and class shares, raw against calibrated).
//
// Public API
//   promptCalls / promptEvents (composed in api.ts)
//   PromptInputSource, PromptModelRef, PromptRowOutput, PromptRow, PromptRunSummary, PromptRunDetail,
//   PromptExploreResult, PromptTextModel, PROMPT_EXPORT_INLINE_MAX
import { z } from 'zod';
import { Bytes, Id, Void } from './common.js';
import { JobStatus } from './jobs.js';
import { PromptModelSpec } from './prompt-model.js';
import { RunState } from './runs.js';

/** A saved prompt-made model: its name and a version (the latest when left out). */
export const PromptModelRef = z
  .object({ name: z.string().trim().min(1).max(200), version: z.number().int().min(1).optional() })
  .strict();
export type PromptModelRef = z.infer<typeof PromptModelRef>;

/** What a run uses: a spec as edited (saved or not), or a saved model by name. */
export const PromptModelChoice = z.union([
  z.object({ spec: PromptModelSpec }).strict(),
  z.object({ saved: PromptModelRef }).strict(),
]);
export type PromptModelChoice = z.input<typeof PromptModelChoice>;

/**
 * A file of inputs on the machine the studio runs on (it is only read). format defaults from the extension
 * (.txt, .csv, .tsv, .jsonl / .ndjson); column: the CSV header or JSONL field holding the input (default:
 * CSV the first column, JSONL the first of text/input/question/prompt/sentence); goldColumn: the expected
 * answers, for accuracy.
 */
export const PromptInputSource = z
  .object({
    path: z.string().min(1).max(4096),
    format: z.enum(['txt', 'csv', 'tsv', 'jsonl']).optional(),
    column: z.string().min(1).max(200).optional(),
    goldColumn: z.string().min(1).max(200).optional(),
  })
  .strict();
export type PromptInputSource = z.infer<typeof PromptInputSource>;

/** Inputs typed in (the explorer), each with its expected answer when known. */
export const InlineInputs = z
  .array(z.object({ text: z.string().max(20_000), gold: z.string().max(200).optional() }).strict())
  .min(1)
  .max(1000);

/** A label's probability, raw and after contextual calibration (null when the run does not calibrate). */
export const LabelProb = z.object({ label: z.string(), raw: z.number(), calibrated: z.number().nullable() });

/** One input's result. `answer` is what the model says (the calibrated label when the spec calibrates). */
export const PromptRowOutput = z.discriminatedUnion('task', [
  z.object({
    task: z.literal('classify'),
    answer: z.string(),
    /** Most likely label before calibration, and with it (null without calibration). */
    rawLabel: z.string(),
    calibratedLabel: z.string().nullable(),
    /** Per label, in the spec's label order. */
    probs: z.array(LabelProb),
    /** Top probability minus the second, of the distribution the answer came from. */
    margin: z.number(),
  }),
  z.object({
    task: z.literal('generate'),
    answer: z.string(),
    /** The continuation as generated (answer is it trimmed). */
    text: z.string(),
    finish: z.enum(['stop', 'length', 'eos']),
    tokens: z.number().int(),
  }),
]);
export type PromptRowOutput = z.infer<typeof PromptRowOutput>;

export const PromptRow = z.object({
  /** Position in the input file (0-based, blank TXT lines not counted). */
  idx: z.number().int().nonnegative(),
  input: z.string(),
  gold: z.string().nullable(),
  output: PromptRowOutput,
});
export type PromptRow = z.infer<typeof PromptRow>;

/** Accuracy on the rows with a gold answer (null when none has one). */
export const PromptAccuracy = z.object({
  rows: z.number().int(),
  correct: z.number().int(),
  accuracy: z.number(),
  /** With calibration, the same for the raw labels (null without calibration). */
  rawCorrect: z.number().int().nullable(),
  rawAccuracy: z.number().nullable(),
});
export type PromptAccuracy = z.infer<typeof PromptAccuracy>;

export const PromptRunSummary = z.object({
  runId: Id,
  kind: z.enum(['run', 'explore']),
  /** Its job while it is known to this process (jobProgress / promptRows carry it). */
  jobId: z.string().nullable(),
  title: z.string(),
  state: RunState,
  task: z.enum(['classify', 'generate']),
  /** The saved model it ran (null for an unsaved spec). */
  modelName: z.string().nullable(),
  modelVersion: z.number().int().nullable(),
  /** The language model (catalog id or folder). */
  lm: z.string(),
  /** The input file's name (null for typed-in inputs). */
  inputName: z.string().nullable(),
  rows: z.number().int(),
  /** Rows planned when known (a limit, or the explorer's inputs x variants). */
  total: z.number().int().nullable(),
  accuracy: PromptAccuracy.nullable(),
  error: z.string().nullable(),
  createdAt: z.number(),
  finishedAt: z.number().nullable(),
});
export type PromptRunSummary = z.infer<typeof PromptRunSummary>;

export const PromptRunDetail = PromptRunSummary.extend({
  /** The spec as run (defaults filled in, model files with their hashes). */
  spec: PromptModelSpec,
  input: z.union([PromptInputSource, z.object({ inline: z.number().int() })]),
  limit: z.number().int().nullable(),
  /** How many rows gave each answer (classify: every label, in order; generate: the 20 most common). */
  answers: z.array(z.object({ answer: z.string(), count: z.number().int() })),
  /** Rows per second over the run. */
  rowsPerSecond: z.number().nullable(),
  provider: z.string().nullable(),
  job: JobStatus.nullable(),
});
export type PromptRunDetail = z.infer<typeof PromptRunDetail>;

/** The explorer's statistics for one way of reading the answers (raw or calibrated labels). */
export const ExploreStats = z.object({
  /** Per input, in input order. flipRate: share of variants whose answer differs from the input's most common one. */
  perInput: z.array(
    z.object({
      idx: z.number().int(),
      majority: z.string(),
      flipRate: z.number(),
      /** Entropy of the answers across variants, in bits. */
      entropyBits: z.number(),
      /** Share of variants that answered the gold label (null without gold). */
      correctShare: z.number().nullable(),
    }),
  ),
  /** Per variant, in variant order. */
  perVariant: z.array(
    z.object({
      variantId: z.string(),
      /** Accuracy on the inputs with gold (null without gold). */
      accuracy: z.number().nullable(),
      /** Share of each class among its answers (classify: label order; generate: empty). */
      shares: z.array(z.number()),
    }),
  ),
  /** The gold answers' share of each class (null without gold). */
  dataShares: z.array(z.number()).nullable(),
  /** Accuracy across variants: mean, population standard deviation, min, max (null without gold). */
  accuracy: z.object({ mean: z.number(), sd: z.number(), min: z.number(), max: z.number() }).nullable(),
  meanFlipRate: z.number(),
  meanEntropyBits: z.number(),
});
export type ExploreStats = z.infer<typeof ExploreStats>;

export const PromptExploreResult = z.object({
  run: PromptRunSummary,
  task: z.enum(['classify', 'generate']),
  /** Classify: the label names (the order of shares); generate: empty. */
  labels: z.array(z.string()),
  variants: z.array(
    z.object({
      id: z.string(),
      kind: z.enum(['original', 'permutation', 'leave-one-out', 'wording']),
      description: z.string(),
    }),
  ),
  inputs: z.array(z.object({ idx: z.number().int(), text: z.string(), gold: z.string().nullable() })),
  /** answers[variant][input]: the answer of each variant for each input ('' where not computed yet). */
  raw: z.array(z.array(z.string())),
  calibrated: z.array(z.array(z.string())).nullable(),
  /** null until the run is done (or when it stopped before every variant was scored). */
  stats: z.object({ raw: ExploreStats, calibrated: ExploreStats.nullable() }).nullable(),
  job: JobStatus.nullable(),
});
export type PromptExploreResult = z.infer<typeof PromptExploreResult>;

export const PromptModelSummary = z.object({
  name: z.string(),
  /** The latest version. */
  version: z.number().int(),
  versions: z.number().int(),
  task: z.enum(['classify', 'generate']),
  description: z.string(),
  /** The language model it runs. */
  lm: z.string(),
  labels: z.array(z.string()),
  examples: z.number().int(),
  createdAt: z.number(),
});
export type PromptModelSummary = z.infer<typeof PromptModelSummary>;

/** A causal LM the studio can run: a catalog text model, or a folder of the user's own under models/. */
export const PromptTextModel = z.object({
  id: z.string(),
  title: z.string(),
  source: z.enum(['catalog', 'folder']),
  installed: z.boolean(),
  default: z.boolean(),
});
export type PromptTextModel = z.infer<typeof PromptTextModel>;

/** Exports up to this many bytes come back as bytes; larger ones are written under <data>/exports. */
export const PROMPT_EXPORT_INLINE_MAX = 32 * 1024 * 1024;

const RunArg = z.object({ runId: Id }).strict();
const Page = { offset: z.number().int().min(0).default(0), limit: z.number().int().min(1).max(1000).default(100) };
/** A file the studio made: its bytes, or (too large to send) where it was written on this machine. */
const ExportedFile = z.object({
  fileName: z.string(),
  mime: z.string(),
  data: Bytes.nullable(),
  path: z.string().nullable(),
  bytes: z.number().int(),
});

export const promptCalls = {
  /** The text models a prompt can run on (installed or not). */
  promptTextModels: { args: Void, result: z.array(PromptTextModel) },
  /** The latest version of every saved prompt-made model, most recently saved first. */
  promptModelsList: { args: Void, result: z.array(PromptModelSummary) },
  /** One version of a saved model (the latest by default) and the list of its versions. */
  promptModelGet: {
    args: PromptModelRef,
    result: z.object({
      spec: PromptModelSpec,
      versions: z.array(z.object({ version: z.number().int(), createdAt: z.number() })),
    }),
  },
  /** Saves a spec under its name as a new version (1 for a new name); problems are refused in words. */
  promptModelSave: {
    args: z.object({ spec: PromptModelSpec }).strict(),
    result: z.object({ name: z.string(), version: z.number().int(), spec: PromptModelSpec }),
  },
  /** Deletes every version of a saved model (runs made with it stay in the history). */
  promptModelDelete: {
    args: z.object({ name: z.string().trim().min(1).max(200) }).strict(),
    result: z.object({ deleted: z.number().int() }),
  },
  /** The model as one JSON file (format 'fstudio-prompt-model'). */
  promptModelExport: { args: PromptModelRef, result: ExportedFile },
  /** Imports a JSON file made by promptModelExport as a new version of its name (or of `name` when given). */
  promptModelImport: {
    args: z
      .object({ data: Bytes, name: z.string().trim().min(1).max(200).optional() })
      .strict()
      .refine((a) => a.data.byteLength <= 4 * 1024 * 1024, 'a prompt model file is at most 4 MB'),
    result: z.object({ name: z.string(), version: z.number().int(), spec: PromptModelSpec }),
  },
  /**
   * One input through a spec: the rendered prompt and the answer. Generation streams `promptTryDelta` events
   * with the given tryId.
   */
  promptTry: {
    args: z
      .object({
        model: PromptModelChoice,
        input: z.string().max(20_000),
        tryId: z.string().min(1).max(100).optional(),
      })
      .strict(),
    result: z.object({
      prompt: z.string(),
      /** Tokens in the prompt (classify; null for generation). */
      promptTokens: z.number().int().nullable(),
      output: PromptRowOutput,
    }),
  },
  /** Runs a model over a file as a job: rows stream as `promptRows`; the run lands in the history. */
  promptRun: {
    args: z
      .object({
        model: PromptModelChoice,
        input: PromptInputSource,
        /** At most this many inputs (the first ones). */
        limit: z.number().int().min(1).max(10_000_000).optional(),
      })
      .strict(),
    result: z.object({ runId: Id, jobId: z.string() }),
  },
  /** A page of a run's rows, in input order. */
  promptRunRows: {
    args: z.object({ runId: Id, ...Page }).strict(),
    result: z.object({ total: z.number().int(), rows: z.array(PromptRow) }),
  },
  /** Prompt runs and explorations, newest first; text searches their model, instructions, labels and file. */
  promptRuns: {
    args: z
      .object({
        text: z.string().max(500).optional(),
        offset: z.number().int().min(0).default(0),
        limit: z.number().int().min(1).max(500).default(50),
      })
      .strict(),
    result: z.array(PromptRunSummary),
  },
  promptRunGet: { args: RunArg, result: PromptRunDetail },
  /**
   * Two runs side by side, matched by input position (rows whose inputs differ are counted, not compared):
   * agreement on the rows both have, and a page of the rows where the answers differ.
   */
  promptCompare: {
    args: z.object({ a: Id, b: Id, ...Page }).strict(),
    result: z.object({
      a: PromptRunSummary,
      b: PromptRunSummary,
      /** Rows at the same position with the same input in both. */
      compared: z.number().int(),
      agree: z.number().int(),
      /** agree / compared (null when nothing was compared). */
      agreement: z.number().nullable(),
      /** Positions present in both whose inputs differ (different files). */
      mismatchedInputs: z.number().int(),
      /** Rows in only one of them. */
      onlyA: z.number().int(),
      onlyB: z.number().int(),
      differing: z.number().int(),
      diffs: z.array(
        z.object({
          idx: z.number().int(),
          input: z.string(),
          gold: z.string().nullable(),
          a: z.string(),
          b: z.string(),
        }),
      ),
    }),
  },
  /** A run's rows as CSV or JSONL (bytes up to PROMPT_EXPORT_INLINE_MAX, else a file under <data>/exports). */
  promptExportRun: {
    args: z.object({ runId: Id, format: z.enum(['csv', 'jsonl']) }).strict(),
    result: ExportedFile.extend({ rows: z.number().int() }),
  },
  /** The uncertainty explorer as a job: every variant of the prompt over the inputs (limit rows). */
  promptExplore: {
    args: z
      .object({
        model: PromptModelChoice,
        input: z.union([PromptInputSource, z.object({ inline: InlineInputs }).strict()]),
        variants: z
          .object({
            /** Orderings of the examples besides the original (all of them when there are fewer). */
            permutations: z.number().int().min(0).max(100).default(5),
            leaveOneOut: z.boolean().default(false),
            wordings: z.boolean().default(false),
            seed: z.number().int().min(0).max(0xffffffff).default(0),
          })
          .strict()
          .default({ permutations: 5, leaveOneOut: false, wordings: false, seed: 0 }),
        limit: z.number().int().min(1).max(1000).default(50),
      })
      .strict(),
    result: z.object({ runId: Id, jobId: z.string() }),
  },
  /** An exploration's variants, answers and (once done) statistics, raw and calibrated. */
  promptExploreGet: { args: RunArg, result: PromptExploreResult },
} as const;

export const promptEvents = {
  /** Rows a run just produced (in order within the event). */
  promptRows: z.object({ runId: Id, rows: z.array(PromptRow) }),
  /** Generation text as it comes, for promptTry with a tryId. */
  promptTryDelta: z.object({ tryId: z.string(), delta: z.string(), tokens: z.number().int() }),
} as const;
