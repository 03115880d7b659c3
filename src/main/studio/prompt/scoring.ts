// How a prompt-made model answers, for runs, tries, the explorer and the SDK alike: a classifier scores every
// label's continuation after each rendered prompt in the compute worker (StudioCompute.textScore) and turns
// the log-likelihoods into probabilities (raw, and calibrated against the content-free prompts' label
// probabilities, Zhao et al. 2021); a generator continues each prompt (StudioCompute.textGenerate) with the
// spec's decoding, seeded with the spec's seed plus the row's index so a run is reproducible.
//
// Public API
//   new PromptScorer(compute, { ref, spec, provider })
//     .calibration(signal?) -> number[] | null     p_cf (mean content-free label probabilities), once per scorer
//     .classify(inputs, signal?) -> { outputs, promptTokens }
//     .generate(input, idx, { signal?, onDelta? }) -> output
//   outputOf(scores, labels, calibrate) -> PromptRowOutput (classify)
import { StudioError, type PromptRowOutput } from '../../../shared/api.js';
import { type PromptModelSpec } from '../../../shared/prompt-model.js';
import { contentFreePrompts, labelContinuation, renderPrompt } from '../../../shared/prompt-render.js';
import { classifyScores, contentFreeMean, softmax } from '../../../shared/prompt-stats.js';
import type { GenerateStreamMessage } from '../../engine/text/types.js';
import type { StudioCompute } from '../compute.js';

/** Prompts scored per call into the compute worker: a cancel waits at most for one such batch. */
export const SCORE_BATCH = 16;

type ClassifyOutput = Extract<PromptRowOutput, { task: 'classify' }>;
type GenerateOutput = Extract<PromptRowOutput, { task: 'generate' }>;

export interface ScorerOptions {
  /** The language model as StudioCompute takes it (catalog id, folder name, or path). */
  ref: string;
  spec: PromptModelSpec;
  provider?: string;
}

/** A classifier's output for one input, from its label log-likelihoods. */
export function outputOf(
  logprobs: readonly number[],
  labels: readonly string[],
  calibration: readonly number[] | null,
): ClassifyOutput {
  const s = classifyScores(logprobs, calibration ? { calibration } : {});
  const chosen = s.calibrated ?? s;
  return {
    task: 'classify',
    answer: labels[chosen.label]!,
    rawLabel: labels[s.label]!,
    calibratedLabel: s.calibrated ? labels[s.calibrated.label]! : null,
    probs: labels.map((label, i) => ({ label, raw: s.probs[i]!, calibrated: s.calibrated?.probs[i] ?? null })),
    margin: chosen.margin,
  };
}

export class PromptScorer {
  #calibration: Promise<number[] | null> | null = null;

  constructor(
    private readonly compute: StudioCompute,
    private readonly o: ScorerOptions,
  ) {}

  get #labels(): string[] {
    return this.o.spec.labels.map((l) => l.name);
  }

  async #score(prompts: string[], signal?: AbortSignal) {
    const { result } = await this.compute.textScore({
      model: this.o.ref,
      provider: this.o.provider as never,
      prompts,
      continuations: this.o.spec.labels.map(labelContinuation),
      signal,
    });
    return result;
  }

  /** The content-free label probabilities (null when the spec does not calibrate), scored once. */
  calibration(signal?: AbortSignal): Promise<number[] | null> {
    if (!this.o.spec.calibrate || this.o.spec.task !== 'classify') return Promise.resolve(null);
    this.#calibration ??= (async () => {
      const prompts = contentFreePrompts(this.o.spec);
      if (prompts.length === 0)
        throw new StudioError(
          'InvalidArgument',
          'Calibration needs at least one content-free input (like "N/A"): add one, or turn calibration off.',
        );
      return contentFreeMean((await this.#score(prompts, signal)).logprobs.map((lp) => softmax(lp)));
    })();
    return this.#calibration;
  }

  /** Every label scored for each input, in batches of SCORE_BATCH; the signal is checked between batches. */
  async classify(
    inputs: readonly string[],
    signal?: AbortSignal,
  ): Promise<{ outputs: ClassifyOutput[]; promptTokens: number[]; provider: string | null }> {
    const calibration = await this.calibration(signal);
    const outputs: ClassifyOutput[] = [];
    const promptTokens: number[] = [];
    let provider: string | null = null;
    for (let at = 0; at < inputs.length; at += SCORE_BATCH) {
      if (at > 0 && signal?.aborted) break;
      const prompts = inputs.slice(at, at + SCORE_BATCH).map((x) => renderPrompt(this.o.spec, x));
      const r = await this.#score(prompts);
      provider = r.provider;
      for (const lp of r.logprobs) outputs.push(outputOf(lp, this.#labels, calibration));
      promptTokens.push(...r.promptTokens);
    }
    return { outputs, promptTokens, provider };
  }

  /** One input continued with the spec's decoding; seed = the spec's seed + idx. */
  async generate(
    input: string,
    idx: number,
    o: { signal?: AbortSignal; onDelta?: (m: GenerateStreamMessage) => void } = {},
  ): Promise<GenerateOutput & { provider: string }> {
    const d = this.o.spec.decoding;
    const { result } = await this.compute.textGenerate({
      model: this.o.ref,
      provider: this.o.provider as never,
      prompt: renderPrompt(this.o.spec, input),
      maxTokens: d.maxTokens,
      temperature: d.temperature,
      topP: d.topP,
      stop: d.stop,
      seed: (d.seed + idx) % 2 ** 31,
      signal: o.signal,
      onDelta: o.onDelta,
    });
    return {
      task: 'generate',
      answer: result.text.trim(),
      text: result.text,
      finish: result.finish,
      tokens: result.tokens,
      provider: result.provider,
    };
  }
}
