// A prompt-made model: a causal LM plus a few-shot prompt (instructions, examples of input and answer, a
// query with a slot for the input) and, for a classifier, the labels whose likelihood is compared; or, for
// free generation, the decoding settings. Saved, named and versioned in the history, exported and imported
// as one JSON file (format 'fstudio-prompt-model'). No Node built-ins: the renderer imports it.
//
// Public API
//   PromptModelSpec (zod) / PromptModelSpec type, PromptExample, PromptLabel, Decoding
//   PROMPT_MODEL_FORMAT, INPUT_SLOT ('{input}'), OUTPUT_SLOT ('{output}'), DEFAULT_CONTENT_FREE
import { z } from 'zod';

export const PROMPT_MODEL_FORMAT = 'fstudio-prompt-model';
/** Where an input goes in a template. */
export const INPUT_SLOT = '{input}';
/** Where an example's answer goes in the example template. */
export const OUTPUT_SLOT = '{output}';
/** Content-free inputs for contextual calibration (Zhao et al. 2021 used "N/A", "[MASK]" and the empty string). */
export const DEFAULT_CONTENT_FREE: readonly string[] = ['N/A', '[MASK]', ''];

const Text = (max: number) => z.string().max(max);

export const PromptExample = z.object({ input: Text(20_000), output: Text(20_000) }).strict();
export type PromptExample = z.infer<typeof PromptExample>;

export const PromptLabel = z
  .object({
    /** The class as results show it ("Positive"). */
    name: z.string().trim().min(1).max(200),
    /** The continuation whose likelihood is scored; default a space and the name (" Positive"). */
    text: Text(200).optional(),
    /** Other wordings of the same label, for the explorer's label-wording variants. */
    paraphrases: z.array(z.string().min(1).max(200)).max(20).default([]),
  })
  .strict();
export type PromptLabel = z.infer<typeof PromptLabel>;

export const Decoding = z
  .object({
    maxTokens: z.number().int().min(1).max(4096).default(32),
    /** 0 = greedy. */
    temperature: z.number().min(0).max(5).default(0),
    topP: z.number().gt(0).max(1).default(1),
    /** Generation stops at the first of these (cut off). */
    stop: z.array(z.string().min(1).max(100)).max(8).default(['\n']),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1)
      .default(0),
  })
  .strict();
export type Decoding = z.infer<typeof Decoding>;

export const PromptModelSpec = z
  .object({
    format: z.literal(PROMPT_MODEL_FORMAT).default(PROMPT_MODEL_FORMAT),
    formatVersion: z.literal(1).default(1),
    name: z.string().trim().min(1).max(200),
    /** Assigned when saved (1 for a new name, then 2, 3, ...). */
    version: z.number().int().min(1).optional(),
    description: Text(5000).default(''),
    /** classify: pick the most likely label; generate: continue the text. */
    task: z.enum(['classify', 'generate']),
    model: z
      .object({
        /** Catalog id or model folder. */
        id: z.string().min(1).max(4096),
        /** The files it was made with and their SHA-256 (null where not recorded). */
        files: z
          .array(z.object({ name: z.string().max(500), sha256: z.string().nullable() }).strict())
          .max(100)
          .default([]),
      })
      .strict(),
    /** Text before the examples ("Classify the sentiment of each review."). */
    instructions: Text(20_000).default(''),
    /** One example: {input} and {output} are replaced. */
    exampleTemplate: Text(5000).default(`Input: ${INPUT_SLOT}\nOutput: ${OUTPUT_SLOT}`),
    /** The query: {input} is replaced; the model continues after it. */
    queryTemplate: Text(5000).default(`Input: ${INPUT_SLOT}\nOutput:`),
    /** Between instructions, examples and the query. */
    separator: Text(100).default('\n\n'),
    examples: z.array(PromptExample).max(200).default([]),
    /** task 'classify': at least two. */
    labels: z.array(PromptLabel).max(100).default([]),
    /** Contextual calibration (divide by the label probabilities for content-free inputs). */
    calibrate: z.boolean().default(false),
    contentFree: z
      .array(Text(200))
      .max(10)
      .default([...DEFAULT_CONTENT_FREE]),
    decoding: Decoding.default(Decoding.parse({})),
  })
  .strict();
export type PromptModelSpec = z.infer<typeof PromptModelSpec>;
/** What a user writes (defaults filled in by PromptModelSpec.parse). */
export type PromptModelInput = z.input<typeof PromptModelSpec>;
