// The compute worker's text tasks: causal LMs through transformers.js (lm.ts), one opened model per
// (folder, ONNX file, provider) kept between calls (the worker's memo). Scoring and generation stream
// their progress (prompts done; text as it comes).
import { statSync } from 'node:fs';
import path from 'node:path';
import { CancelledError } from '../runtime/protocol.js';
import { resolveProvider } from '../runtime/providers.js';
import type { TaskContext } from '../runtime/worker-core.js';
import { TextLm, onnxFileFor } from './lm.js';
import type { GenerateArgs, GenerateResult, ScoreArgs, ScoreResult, TextModelInfo, TextModelRef } from './types.js';
import type { ProviderName } from '../runtime/ort.js';

async function open(ctx: TaskContext, model: TextModelRef, provider: string | undefined): Promise<TextLm> {
  const { file } = onnxFileFor(model.dir, model.dtype);
  const st = statSync(path.join(model.dir, file));
  const choice = await resolveProvider((provider ?? 'cpu') as ProviderName);
  const key = `text:${choice.provider}:${path.resolve(model.dir)}:${file}:${st.size}:${st.mtimeMs}`;
  return ctx.memo(
    key,
    () => TextLm.open(ctx.device, model, choice.provider),
    (lm) => lm.close(),
  );
}

/** An abort inside a loop becomes the worker's cancel. */
function cancelled(e: unknown): unknown {
  return e instanceof Error && e.name === 'AbortError' ? new CancelledError() : e;
}

export const textTasks = {
  async 'text.info'(a: { model: TextModelRef; provider?: string }, ctx: TaskContext): Promise<TextModelInfo> {
    return (await open(ctx, a.model, a.provider)).info;
  },
  async 'text.score'(a: ScoreArgs, ctx: TaskContext): Promise<ScoreResult> {
    const lm = await open(ctx, a.model, a.provider);
    return lm
      .score(a.prompts, a.continuations, { signal: ctx.signal, onProgress: (done) => ctx.emit({ done }) })
      .catch((e: unknown) => {
        throw cancelled(e);
      });
  },
  async 'text.generate'(a: GenerateArgs, ctx: TaskContext): Promise<GenerateResult> {
    const lm = await open(ctx, a.model, a.provider);
    return lm.generate(a, { signal: ctx.signal, onDelta: (m) => ctx.emit(m) }).catch((e: unknown) => {
      throw cancelled(e);
    });
  },
};
