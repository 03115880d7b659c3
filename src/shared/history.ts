// The history of runs: every run of every kind (generate, prompt, classify, import) in one list, newest
// first, searchable. Images are found in the Gallery; runs that made no image (a prompt run over a file, a
// classification of a folder) are found here. Each page opens its own kind of run (shell.openRun).
import { z } from 'zod';
import { Id } from './common.js';
import { RunKind } from './gallery.js';
import { RunState } from './runs.js';

export const HistoryRun = z.object({
  id: Id,
  kind: RunKind,
  status: RunState,
  title: z.string(),
  createdAt: z.number(),
  finishedAt: z.number().nullable(),
  error: z.string().nullable(),
  /** Rows it produced (prompt and classify runs); images it made (generate and import runs). */
  count: z.number().int(),
  /** A gallery image of the run (the picture a generate run made), to open it in the Gallery. */
  imageId: Id.nullable(),
});
export type HistoryRun = z.infer<typeof HistoryRun>;

export const historyCalls = {
  /** Runs newest first; with text, those whose title, prompt, labels, model or input file match every word. */
  historyRuns: {
    args: z
      .object({
        text: z.string().max(500).optional(),
        kinds: z.array(RunKind).max(4).optional(),
        limit: z.number().int().min(1).max(200).default(50),
        offset: z.number().int().min(0).max(1_000_000).default(0),
      })
      .strict(),
    result: z.object({ runs: z.array(HistoryRun), more: z.boolean() }),
  },
} as const;

export const historyEvents = {} as const;
