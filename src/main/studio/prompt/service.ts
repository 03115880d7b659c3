// Prompt Lab's service: what the API handlers, the CLI and the SDK call. Saved models (library.ts), one
// input tried, runs over a file or a list of inputs (runs.ts), the explorer (explore.ts), and the runs read
// back, compared and exported (views.ts). Before a run is recorded its spec is checked, its language model
// resolved and checked to be a causal LM, and the first batch of its inputs read, so a bad spec, model or
// file is refused at once, in words, with nothing recorded; what fails later ends the run 'failed'.
//
// Public API
//   new PromptService(ctx)
//     .library                                       saved models (PromptLibrary)
//     .textModels() / .tryOne(args, { allowPaths })
//     .run({ model, input | inline, limit }, { allowPaths, onRows }) -> { runId, jobId, done }
//     .explore(args, { allowPaths }) -> { runId, jobId, done }
//     .runs({ text, offset, limit }) / .get(runId) / .rows(runId, page) / .compare(a, b, page)
//     .exportRun(runId, format) / .exploreGet(runId)
//     .close()                                       cancels the runs under way and waits for them to end
import type { PromptInputSource, PromptModelChoice, PromptRow, PromptRowOutput } from '../../../shared/api.js';
import { type PromptModelInput, type PromptModelSpec } from '../../../shared/prompt-model.js';
import { StudioError } from '../../../shared/api.js';
import { renderPrompt } from '../../../shared/prompt-render.js';
import type { StudioContext } from '../context.js';
import { exploreResult, startExplore } from './explore.js';
import { readInputs } from './inputs.js';
import { PromptLibrary } from './library.js';
import { inlineBatches, startRun, type ActiveRun, type InputRow } from './runs.js';
import { PromptScorer } from './scoring.js';
import { compareRuns, detailOf, exportRun, promptRun, rowPage, summaryOf } from './views.js';

type Choice = PromptModelChoice | { spec: PromptModelSpec | PromptModelInput };

export interface CallerOptions {
  /** The CLI and the SDK may name a model folder anywhere; the API names installed models only. */
  allowPaths?: boolean;
  /** The execution provider (default: the one in Settings). */
  provider?: string;
}

export interface RunArgs {
  model: Choice;
  /** A file, or inputs given as a list (the SDK). */
  input: PromptInputSource | { inline: readonly { text: string; gold?: string }[] };
  limit?: number;
}

export interface ExploreArgs {
  model: Choice;
  input: PromptInputSource | { inline: readonly { text: string; gold?: string }[] };
  variants: { permutations: number; leaveOneOut: boolean; wordings: boolean; seed: number };
  limit: number;
}

export class PromptService {
  readonly library: PromptLibrary;
  readonly #active = new Map<number, ActiveRun & { controller?: AbortController }>();

  constructor(private readonly ctx: StudioContext) {
    this.library = new PromptLibrary(ctx);
  }

  textModels() {
    return this.library.textModels();
  }

  #provider(o: CallerOptions): string {
    return o.provider ?? this.ctx.settings.get().preferredProvider;
  }

  async #prepare(choice: Choice, o: CallerOptions) {
    this.ctx.live();
    const { spec, saved } = this.library.resolveChoice(choice as never);
    const lm = await this.library.resolveLm(spec, { allowPaths: o.allowPaths ?? false });
    return { lm, saved };
  }

  /** One input: the rendered prompt and the answer; generation streams promptTryDelta with tryId. */
  async tryOne(
    a: { model: Choice; input: string; tryId?: string },
    o: CallerOptions = {},
  ): Promise<{ prompt: string; promptTokens: number | null; output: PromptRowOutput }> {
    const { lm } = await this.#prepare(a.model, o);
    const scorer = new PromptScorer(this.ctx.compute, { ref: lm.ref, spec: lm.spec, provider: this.#provider(o) });
    const prompt = renderPrompt(lm.spec, a.input);
    if (lm.spec.task === 'classify') {
      const { outputs, promptTokens } = await scorer.classify([a.input]);
      return { prompt, promptTokens: promptTokens[0] ?? null, output: outputs[0]! };
    }
    const onDelta = a.tryId
      ? (m: { delta: string; tokens: number }) =>
          this.ctx.emit('promptTryDelta', { tryId: a.tryId!, delta: m.delta, tokens: m.tokens })
      : undefined;
    const { provider: _p, ...output } = await scorer.generate(a.input, 0, { onDelta });
    return { prompt, promptTokens: null, output };
  }

  /** The inputs in batches; the first batch is read now, so a bad file is refused before anything is recorded. */
  async #batches(
    input: RunArgs['input'],
  ): Promise<{ batches: AsyncIterator<InputRow[]>; readShare: () => number | null }> {
    const read = { share: null as number | null };
    const it: AsyncIterator<InputRow[]> =
      'inline' in input ? inlineBatches(input.inline) : fileBatches(input as PromptInputSource, read);
    const first = await it.next();
    if (first.done || first.value.length === 0) {
      await it.return?.(undefined);
      throw new StudioError(
        'InputFile',
        'inline' in input ? 'There are no inputs: give at least one.' : `${input.path} has no inputs.`,
      );
    }
    const rest = it;
    let pending: InputRow[] | null = first.value;
    const batches: AsyncIterator<InputRow[]> = {
      next: async () => {
        if (pending) {
          const value = pending;
          pending = null;
          return { done: false, value };
        }
        return rest.next();
      },
      return: async () => (await rest.return?.(undefined)) ?? { done: true, value: undefined },
    };
    return { batches, readShare: () => read.share };
  }

  #track(run: ActiveRun): ActiveRun {
    this.#active.set(run.runId, run);
    void run.done.finally(() => this.#active.delete(run.runId));
    return run;
  }

  async run(a: RunArgs, o: CallerOptions & { onRows?: (rows: PromptRow[]) => void } = {}): Promise<ActiveRun> {
    const { lm, saved } = await this.#prepare(a.model, o);
    const { batches, readShare } = await this.#batches(a.input);
    this.ctx.live();
    return this.#track(
      startRun(this.ctx, {
        readShare,
        lm,
        saved,
        input: 'inline' in a.input ? { inline: a.input.inline.length } : a.input,
        batches,
        limit: a.limit ?? null,
        provider: this.#provider(o),
        onRows: o.onRows,
      }),
    );
  }

  async explore(a: ExploreArgs, o: CallerOptions = {}): Promise<ActiveRun> {
    const { lm, saved } = await this.#prepare(a.model, o);
    const { batches } = await this.#batches(a.input);
    const rows: InputRow[] = [];
    try {
      while (rows.length < a.limit) {
        const n = await batches.next();
        if (n.done) break;
        rows.push(...n.value.slice(0, a.limit - rows.length));
      }
    } finally {
      await batches.return?.(undefined);
    }
    this.ctx.live();
    return this.#track(
      startExplore(this.ctx, {
        lm,
        saved,
        input: 'inline' in a.input ? { inline: rows.length } : a.input,
        rows,
        variants: a.variants,
        limit: a.limit,
        provider: this.#provider(o),
      }),
    );
  }

  runs(q: { text?: string; offset: number; limit: number }) {
    return this.ctx.lab
      .searchRuns({ text: q.text, kinds: ['prompt'], offset: q.offset, limit: q.limit })
      .flatMap((run) => {
        try {
          return [summaryOf(this.ctx, run, this.#active.get(run.id))];
        } catch {
          return []; // a prompt run of another shape (a newer version's)
        }
      });
  }

  get(runId: number) {
    return detailOf(this.ctx, promptRun(this.ctx, runId), this.#active.get(runId));
  }

  rows(runId: number, page: { offset: number; limit: number }) {
    return rowPage(this.ctx, runId, page.offset, page.limit);
  }

  compare(a: number, b: number, page: { offset: number; limit: number }) {
    return compareRuns(this.ctx, a, b, page);
  }

  /** inlineMax: larger exports go to a file under <data>/exports (default PROMPT_EXPORT_INLINE_MAX). */
  exportRun(runId: number, format: 'csv' | 'jsonl', inlineMax?: number) {
    return exportRun(this.ctx, runId, format, inlineMax);
  }

  exploreGet(runId: number) {
    const run = promptRun(this.ctx, runId);
    const summary = summaryOf(this.ctx, run, this.#active.get(runId));
    return exploreResult(this.ctx, run, summary, this.get(runId).job);
  }

  /** The run's outcome once it has ended (for the CLI and the SDK). */
  async wait(runId: number): Promise<void> {
    await this.#active.get(runId)?.done;
  }

  /** Cancels the runs under way (each ends 'cancelled' with its rows) and waits for them. */
  async close(): Promise<void> {
    const runs = [...this.#active.values()];
    for (const r of runs) this.ctx.jobs.cancel(r.jobId);
    await Promise.all(runs.map((r) => r.done.catch(() => {})));
  }
}

/** A file's inputs in batches (inputs.ts), with its errors as StudioErrors. */
async function* fileBatches(source: PromptInputSource, read: { share: number | null }): AsyncGenerator<InputRow[]> {
  try {
    yield* readInputs(source.path, {
      format: source.format,
      column: source.column,
      goldColumn: source.goldColumn,
      onProgress: (p) => (read.share = p.totalBytes > 0 ? p.bytesRead / p.totalBytes : null),
    });
  } catch (e) {
    if (e instanceof StudioError) throw e;
    throw new StudioError('InputFile', (e as Error).message);
  }
}
