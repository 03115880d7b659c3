// Prompt Lab's text side of a prompt-made model: the prompt a causal LM reads for one input (instructions,
// the examples, the query), the continuation a label is scored by, the problems that keep a spec from
// running (in words a user can act on), and the `--template t.txt` reader that turns a plain few-shot
// prompt ("Q: Capital of India?\nA: Delhi\n\nQ: {input}\nA:") into a spec's parts. Everything is linear
// in the size of its text: slots are replaced literally (an input holding "{output}" or "$&" stays as
// typed) and the template reader uses no backtracking regular expressions. No Node built-ins.
//
// Public API
//   fillTemplate(template, { input, output? }) -> string   literal {input}/{output} replacement
//   renderPrompt(spec, input) -> string       instructions, examples and query joined by spec.separator
//   contentFreePrompts(spec) -> string[]      the prompt of each content-free input (for calibration)
//   labelContinuation(label) -> string        label.text ?? ' ' + label.name
//   validateSpec(spec) -> string[]            what is wrong, one sentence each ([] when it can run)
//   assertValidSpec(spec)                     throws PromptSpecError (message: all problems; .problems)
//   parseTemplateFile(text, { labels? }) -> TemplateParts   throws TemplateError
//   distinctOutputs(examples) -> string[]     the examples' answers, first seen first (labels for a classifier)
//   TEMPLATE_MAX_BYTES
import { listWords } from './format.js';
import { INPUT_SLOT, OUTPUT_SLOT, type PromptExample, type PromptLabel } from './prompt-model.js';
import type { PromptModelSpec } from './prompt-model.js';

/** The parts of a spec that rendering reads (a parsed PromptModelSpec has them all). */
export type RenderSpec = Pick<
  PromptModelSpec,
  'instructions' | 'exampleTemplate' | 'queryTemplate' | 'separator' | 'examples' | 'contentFree'
>;

/**
 * The template with every {input} and {output} replaced by the given text. Only the template is scanned,
 * never the values, so a value containing a slot or "$&" is inserted as it is; linear in the output size.
 */
export function fillTemplate(template: string, values: { input: string; output?: string }): string {
  return template
    .split(INPUT_SLOT)
    .map((piece) => (values.output === undefined ? piece : piece.split(OUTPUT_SLOT).join(values.output)))
    .join(values.input);
}

/** The prompt for one input: instructions, each example, the query; empty parts skipped. */
export function renderPrompt(spec: Omit<RenderSpec, 'contentFree'>, input: string): string {
  const parts = [
    spec.instructions,
    ...spec.examples.map((e) => fillTemplate(spec.exampleTemplate, { input: e.input, output: e.output })),
    fillTemplate(spec.queryTemplate, { input }),
  ];
  return parts.filter((p) => p !== '').join(spec.separator);
}

/** The prompts of the spec's content-free inputs ("N/A", "[MASK]", ""), for contextual calibration. */
export function contentFreePrompts(spec: RenderSpec): string[] {
  return spec.contentFree.map((cf) => renderPrompt(spec, cf));
}

/** The text whose likelihood scores a label: its own text, or a space and its name (" Positive"). */
export function labelContinuation(label: Pick<PromptLabel, 'name' | 'text'>): string {
  return label.text ?? ' ' + label.name;
}

/** The spec fields validateSpec reads. */
export type ValidatableSpec = Pick<PromptModelSpec, 'task' | 'exampleTemplate' | 'queryTemplate' | 'examples'> & {
  model: { id: string };
  labels: Pick<PromptLabel, 'name' | 'text'>[];
};

/** Everything that keeps the spec from running, one actionable sentence each; [] when it can run. */
export function validateSpec(spec: ValidatableSpec): string[] {
  const problems: string[] = [];
  if (spec.model.id.trim() === '') problems.push('No model is chosen: pick a text model for the prompt to run on.');
  if (!spec.queryTemplate.includes(INPUT_SLOT)) {
    problems.push(`The query template has no ${INPUT_SLOT} slot: add ${INPUT_SLOT} where each input goes.`);
  }
  if (spec.examples.length > 0) {
    for (const slot of [INPUT_SLOT, OUTPUT_SLOT]) {
      if (!spec.exampleTemplate.includes(slot)) {
        const what = slot === INPUT_SLOT ? 'input' : 'answer';
        problems.push(`The example template has no ${slot} slot: add ${slot} where each example's ${what} goes.`);
      }
    }
  }
  if (spec.task === 'classify') problems.push(...labelProblems(spec));
  return problems;
}

function labelProblems(spec: ValidatableSpec): string[] {
  const problems: string[] = [];
  const names = spec.labels.map((l) => l.name.trim());
  if (names.length < 2) {
    const got = names.length === 0 ? 'none' : `one: "${names[0]}"`;
    problems.push(`A classifier needs at least two labels (got ${got}).`);
  }
  for (const dup of duplicates(names)) {
    problems.push(`The label "${dup}" is listed more than once: each label needs its own name.`);
  }
  const byText = new Map<string, string>();
  spec.labels.forEach((label, i) => {
    const text = labelContinuation(label);
    const other = byText.get(text);
    if (other !== undefined && other !== names[i]) {
      problems.push(`"${other}" and "${names[i]}" are scored by the same text "${text}": give each its own text.`);
    }
    if (other === undefined) byText.set(text, names[i]!);
  });
  if (names.length >= 2) {
    const known = new Set(names);
    spec.examples.forEach((e, i) => {
      const out = e.output.trim();
      if (!known.has(out)) {
        problems.push(
          `Example ${i + 1}'s answer "${clip(out)}" is not one of the labels (${listWords(names)}): ` +
            'change the answer or add it as a label.',
        );
      }
    });
  }
  return problems;
}

function duplicates(items: readonly string[]): string[] {
  const seen = new Set<string>();
  const dups = new Set<string>();
  for (const item of items) (seen.has(item) ? dups : seen).add(item);
  return [...dups];
}

function clip(text: string, max = 60): string {
  return text.length <= max ? text : text.slice(0, max - 1) + '…';
}

/** A spec that cannot run; `problems` lists every reason. */
export class PromptSpecError extends Error {
  constructor(public readonly problems: string[]) {
    super(problems.join(' '));
    this.name = 'PromptSpecError';
  }
}

/** Throws PromptSpecError with all of validateSpec's problems, if there are any. */
export function assertValidSpec(spec: ValidatableSpec): void {
  const problems = validateSpec(spec);
  if (problems.length > 0) throw new PromptSpecError(problems);
}

/** The examples' answers (trimmed, non-empty), each once, in the order first seen. */
export function distinctOutputs(examples: readonly PromptExample[]): string[] {
  return [...new Set(examples.map((e) => e.output.trim()).filter((o) => o !== ''))];
}

// ---------- the template file (fstudio prompt --template t.txt) ----------

/** A template file larger than this is refused. */
export const TEMPLATE_MAX_BYTES = 1_000_000;

/** The spec parts a template file gives; the caller adds name, task and model. */
export interface TemplateParts {
  instructions: string;
  exampleTemplate: string;
  queryTemplate: string;
  separator: string;
  examples: PromptExample[];
  labels: { name: string; paraphrases: string[] }[];
}

/** A template file that cannot be read as a prompt; the message says why and what to do. */
export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

interface Unit {
  text: string;
  /** 1-based line where it starts. */
  line: number;
}

/**
 * Reads a plain few-shot prompt. The last blank-line separated block holding {input} is the query; the
 * blocks before it that have the query's shape (the text around {input}, then the answer: "Q: x\nA: y"
 * against "Q: {input}\nA:") are the examples, with the example template "<query> {output}"; blocks before
 * the first example are the instructions. When the query block also holds lines before the query line
 * (the one-line style "I: Average movie O: Negative\nI: {input} O:"), those lines are the examples and
 * the separator is one newline. Linear time; over TEMPLATE_MAX_BYTES is refused.
 */
export function parseTemplateFile(text: string, opts: { labels?: readonly string[] } = {}): TemplateParts {
  const bytes = utf8Length(text);
  if (bytes > TEMPLATE_MAX_BYTES) {
    throw new TemplateError(
      `The template is ${bytes.toLocaleString('en-US')} bytes; the most a template may be is ` +
        `${TEMPLATE_MAX_BYTES.toLocaleString('en-US')} bytes (1 MB). Put the inputs in an input file instead.`,
    );
  }
  const lines = toLines(text);
  const blocks = toBlocks(lines);
  const qb = findLast(blocks, (b) => b.lines.some((l) => l.text.includes(INPUT_SLOT)));
  if (qb < 0) {
    throw new TemplateError(
      `The template has no ${INPUT_SLOT} slot: write the query with ${INPUT_SLOT} where each input goes, ` +
        `e.g. "Q: ${INPUT_SLOT}" and "A:" on the next line, as the last block.`,
    );
  }
  const block = blocks[qb]!;
  if (qb < blocks.length - 1) {
    throw new TemplateError(
      `Text follows the query (line ${blocks[qb + 1]!.lines[0]!.line}): the block with ${INPUT_SLOT} must come ` +
        'last, because the model continues right after it.',
    );
  }
  const qLine = block.lines.findIndex((l) => l.text.includes(INPUT_SLOT));
  const lineMode = qLine > 0;
  const queryTemplate = joinUnit(block.lines.slice(qLine)).trimEnd();
  const earlier: Unit[] = lineMode
    ? block.lines.slice(0, qLine)
    : blocks.slice(0, qb).map((b) => ({ text: joinUnit(b.lines), line: b.lines[0]!.line }));
  const { examples, instructionUnits } = splitExamples(earlier, queryTemplate);
  let instructions = instructionUnits.map((u) => u.text).join(lineMode ? '\n' : '\n\n');
  if (lineMode && qb > 0) {
    const before = blocks.slice(0, qb).map((b) => joinUnit(b.lines));
    // The blank line after the earlier blocks: renderPrompt joins instructions and examples with '\n'.
    instructions = [...before, ...(instructions ? [instructions] : [])].join('\n\n') + '\n';
  }
  return {
    instructions,
    exampleTemplate: exampleTemplateFor(queryTemplate),
    queryTemplate,
    separator: lineMode ? '\n' : '\n\n',
    examples,
    labels: (opts.labels ?? []).map((name) => ({ name, paraphrases: [] })),
  };
}

function exampleTemplateFor(query: string): string {
  return /\s$/.test(query) ? query + OUTPUT_SLOT : `${query} ${OUTPUT_SLOT}`;
}

function splitExamples(units: Unit[], query: string): { examples: PromptExample[]; instructionUnits: Unit[] } {
  const at = query.indexOf(INPUT_SLOT);
  const shape = { prefix: query.slice(0, at), suffix: query.slice(at + INPUT_SLOT.length) };
  const multiSlot = shape.suffix.includes(INPUT_SLOT);
  const finder = shape.suffix.trim() === '' || multiSlot ? null : new Finder(shape.suffix);
  const examples: PromptExample[] = [];
  const instructionUnits: Unit[] = [];
  for (const unit of units) {
    const example = finder ? matchExample(unit.text, shape.prefix, finder) : null;
    if (example) examples.push(example);
    else if (examples.length === 0) instructionUnits.push(unit);
    else {
      throw new TemplateError(
        `Line ${unit.line} ("${clip(unit.text.split('\n')[0]!)}") comes after the first example but does not ` +
          `have the query's shape ("${clip(query.replaceAll('\n', '\\n'))}" followed by the answer): write it ` +
          'like the other examples, or move it above them to make it part of the instructions.',
      );
    }
  }
  return { examples, instructionUnits };
}

function matchExample(text: string, prefix: string, suffix: Finder): PromptExample | null {
  if (!text.startsWith(prefix)) return null;
  const end = suffix.indexIn(text, prefix.length);
  if (end < 0) return null;
  const input = text.slice(prefix.length, end);
  if (input.trim() === '') return null;
  return { input, output: text.slice(end + suffix.needle.length).trim() };
}

/** Knuth-Morris-Pratt search: linear in the text and the needle, whatever they hold. */
class Finder {
  readonly #fail: Int32Array;
  constructor(readonly needle: string) {
    const fail = new Int32Array(needle.length);
    for (let i = 1, k = 0; i < needle.length; i++) {
      while (k > 0 && needle[i] !== needle[k]) k = fail[k - 1]!;
      if (needle[i] === needle[k]) k++;
      fail[i] = k;
    }
    this.#fail = fail;
  }
  indexIn(text: string, from: number): number {
    const n = this.needle;
    for (let i = from, k = 0; i < text.length; i++) {
      while (k > 0 && text[i] !== n[k]) k = this.#fail[k - 1]!;
      if (text[i] === n[k]) k++;
      if (k === n.length) return i - n.length + 1;
    }
    return -1;
  }
}

function toLines(text: string): Unit[] {
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  return body.split('\n').map((l, i) => ({ text: l.endsWith('\r') ? l.slice(0, -1) : l, line: i + 1 }));
}

function toBlocks(lines: Unit[]): { lines: Unit[] }[] {
  const blocks: { lines: Unit[] }[] = [];
  let current: Unit[] = [];
  for (const line of lines) {
    if (line.text.trim() === '') {
      if (current.length) blocks.push({ lines: current });
      current = [];
    } else current.push(line);
  }
  if (current.length) blocks.push({ lines: current });
  return blocks;
}

function joinUnit(lines: Unit[]): string {
  return lines.map((l) => l.text).join('\n');
}

function findLast<T>(items: readonly T[], test: (item: T) => boolean): number {
  for (let i = items.length - 1; i >= 0; i--) if (test(items[i]!)) return i;
  return -1;
}

/** UTF-8 byte length without encoding (a lone surrogate counts 3, as TextEncoder writes U+FFFD). */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}
