// The prompt model being edited on the Prompt Lab page: a form-shaped draft (strings where the user types,
// paraphrases and stop sequences as one line each) kept in one $state object, turned into a PromptModelSpec
// for the API and back, with the problems that keep it from running (the spec's own bounds from zod, then
// validateSpec's sentences), and the page's shared state (which tab, the input file, the run shown).
//
// Public API
//   lab ($state)           draft, saved (name/version it was loaded or saved as), tab, source, runId, exploreId
//   openPromptRun(r)       a past run shown in its tab (Run, or Explorer for an exploration)
//   markSaved(name, version) / modelChoice()   a run uses the saved version when the draft is unchanged
//   newDraft() / draftFromSpec(spec) / specFromDraft(draft) -> PromptModelInput
//   draftProblems(draft) -> string[]       [] when it can run
//   escapeText(s) / unescapeText(s)        "\n" shown and typed as backslash-n
//   SEPARATORS, LabTab
import { PromptModelSpec, type PromptModelInput, type PromptModelSpec as Spec } from '../../../shared/prompt-model.js';
import { validateSpec } from '../../../shared/prompt-render.js';

export interface DraftLabel {
  name: string;
  /** The scored text; '' = a space and the name. */
  text: string;
  /** Comma-separated. */
  paraphrases: string;
}

export interface Draft {
  name: string;
  description: string;
  task: 'classify' | 'generate';
  modelId: string;
  instructions: string;
  exampleTemplate: string;
  queryTemplate: string;
  separator: string;
  examples: { input: string; output: string }[];
  labels: DraftLabel[];
  calibrate: boolean;
  /** Escaped, one per entry. */
  contentFree: string[];
  maxTokens: number;
  temperature: number;
  topP: number;
  /** Escaped, one per entry. */
  stop: string[];
  seed: number;
}

export type LabTab = 'try' | 'run' | 'explore' | 'history';

export const SEPARATORS = [
  { value: '\n\n', label: 'Blank line' },
  { value: '\n', label: 'New line' },
  { value: '\n###\n', label: '### line' },
] as const;

/** Backslash escapes for the characters a text field cannot show (newline, tab) and the backslash itself. */
export function escapeText(s: string): string {
  return s.replaceAll('\\', '\\\\').replaceAll('\n', '\\n').replaceAll('\t', '\\t');
}

export function unescapeText(s: string): string {
  return s.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c));
}

export function newDraft(): Draft {
  const draft = draftFromSpec(
    PromptModelSpec.parse({
      name: 'Sentiment',
      task: 'classify',
      model: { id: 'none' }, // chosen on the page
      instructions: 'Say whether each movie review is Positive or Negative.',
      exampleTemplate: 'Review: {input}\nSentiment: {output}',
      queryTemplate: 'Review: {input}\nSentiment:',
      examples: [
        { input: 'A moving, beautifully acted film.', output: 'Positive' },
        { input: 'Two hours I will never get back.', output: 'Negative' },
        { input: 'Average movie, forgettable plot.', output: 'Negative' },
        { input: 'Funny and warm from start to finish.', output: 'Positive' },
      ],
      labels: [
        { name: 'Positive', paraphrases: ['good', 'great'] },
        { name: 'Negative', paraphrases: ['bad'] },
      ],
      calibrate: true,
    }),
  );
  draft.modelId = '';
  return draft;
}

export function draftFromSpec(spec: Spec): Draft {
  return {
    name: spec.name,
    description: spec.description,
    task: spec.task,
    modelId: spec.model.id,
    instructions: spec.instructions,
    exampleTemplate: spec.exampleTemplate,
    queryTemplate: spec.queryTemplate,
    separator: spec.separator,
    examples: spec.examples.map((e) => ({ ...e })),
    labels: spec.labels.map((l) => ({ name: l.name, text: l.text ?? '', paraphrases: l.paraphrases.join(', ') })),
    calibrate: spec.calibrate,
    contentFree: spec.contentFree.map(escapeText),
    maxTokens: spec.decoding.maxTokens,
    temperature: spec.decoding.temperature,
    topP: spec.decoding.topP,
    stop: spec.decoding.stop.map(escapeText),
    seed: spec.decoding.seed,
  };
}

const splitList = (s: string) =>
  s
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');

/** The draft as the API takes it (defaults for the rest filled in by the API's parse). */
export function specFromDraft(d: Draft): PromptModelInput {
  return {
    name: d.name,
    description: d.description,
    task: d.task,
    model: { id: d.modelId },
    instructions: d.instructions,
    exampleTemplate: d.exampleTemplate,
    queryTemplate: d.queryTemplate,
    separator: d.separator,
    examples: d.examples.map((e) => ({ input: e.input, output: e.output })),
    labels:
      d.task === 'classify'
        ? d.labels.map((l) => ({
            name: l.name,
            ...(l.text !== '' ? { text: unescapeText(l.text) } : {}),
            paraphrases: splitList(l.paraphrases),
          }))
        : [],
    calibrate: d.task === 'classify' && d.calibrate,
    contentFree: d.contentFree.map(unescapeText),
    decoding: {
      maxTokens: d.maxTokens,
      temperature: d.temperature,
      topP: d.topP,
      stop: d.stop.map(unescapeText).filter((s) => s !== ''),
      seed: d.seed,
    },
  };
}

/** What keeps the draft from running: the spec's bounds (zod), then validateSpec's sentences. */
export function draftProblems(d: Draft): string[] {
  if (d.modelId.trim() === '') return ['No model is chosen: pick a text model for the prompt to run on.'];
  const parsed = PromptModelSpec.safeParse(specFromDraft(d));
  if (!parsed.success) return parsed.error.issues.map(issueWords);
  return validateSpec(parsed.data);
}

const FIELD_WORDS: Record<string, string> = {
  name: 'The name',
  description: 'The description',
  instructions: 'The instructions',
  exampleTemplate: 'The example template',
  queryTemplate: 'The query template',
  separator: 'The separator',
  contentFree: 'A content-free input',
  maxTokens: 'Max tokens',
  temperature: 'The temperature',
  topP: 'Top-p',
  seed: 'The seed',
  stop: 'A stop sequence',
};

/** A zod issue about the draft as a sentence naming the field as the page shows it. */
function issueWords(issue: {
  path: readonly PropertyKey[];
  code: string;
  message: string;
  maximum?: unknown;
  minimum?: unknown;
}): string {
  const [head, index, leaf] = issue.path;
  const field =
    (head === 'examples' || head === 'labels') && typeof index === 'number'
      ? `${head === 'examples' ? 'Example' : 'Label'} ${index + 1}${leaf !== undefined ? ` ${String(leaf)}` : ''}`
      : (FIELD_WORDS[String(head === 'decoding' ? index : head)] ?? String(head));
  if (issue.code === 'too_small' && issue.minimum === 1) return `${field} is empty: fill it in.`;
  if (issue.code === 'too_big') return `${field} is too long or too large (at most ${String(issue.maximum)}).`;
  if (issue.code === 'too_small') return `${field} is too small (at least ${String(issue.minimum)}).`;
  return `${field}: ${issue.message}`;
}

/** The page's state: the draft, what it was saved as, the tab, the input file, the runs shown. */
export const lab = $state<{
  draft: Draft;
  saved: { name: string; version: number } | null;
  /** The spec JSON of the saved version, to tell whether the draft changed since. */
  savedSpec: string | null;
  tab: LabTab;
  source: {
    path: string;
    format: '' | 'txt' | 'csv' | 'tsv' | 'jsonl';
    column: string;
    goldColumn: string;
    limit: number | null;
  };
  /** The run whose rows the Run tab shows. */
  runId: number | null;
  /** The exploration the Explore tab shows. */
  exploreId: number | null;
}>({
  draft: newDraft(),
  saved: null,
  savedSpec: null,
  tab: 'try',
  source: { path: '', format: '', column: '', goldColumn: '', limit: null },
  runId: null,
  exploreId: null,
});

/** The input source as the API takes it. */
export function sourceArg(): {
  path: string;
  format?: 'txt' | 'csv' | 'tsv' | 'jsonl';
  column?: string;
  goldColumn?: string;
} {
  const s = lab.source;
  return {
    path: s.path.trim(),
    ...(s.format ? { format: s.format } : {}),
    ...(s.column.trim() ? { column: s.column.trim() } : {}),
    ...(s.goldColumn.trim() ? { goldColumn: s.goldColumn.trim() } : {}),
  };
}

/** Records that the draft is now the saved version `version` of `name`. */
/** Shows a past run: a run over a file in the Run tab, an exploration in the Explorer. */
export function openPromptRun(r: { runId: number; kind: 'run' | 'explore' }): void {
  if (r.kind === 'explore') {
    lab.exploreId = r.runId;
    lab.tab = 'explore';
  } else {
    lab.runId = r.runId;
    lab.tab = 'run';
  }
}

export function markSaved(saved: { name: string; version: number } | null): void {
  lab.saved = saved;
  lab.savedSpec = saved ? JSON.stringify(specFromDraft(lab.draft)) : null;
}

/** What a call runs: the saved version when the draft has not changed since, else the draft as a spec. */
export function modelChoice(): { saved: { name: string; version: number } } | { spec: Spec } {
  const spec = specFromDraft(lab.draft);
  if (lab.saved && lab.savedSpec === JSON.stringify(spec)) return { saved: lab.saved };
  return { spec: PromptModelSpec.parse(spec) };
}
