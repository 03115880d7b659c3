// The TypeScript API of Prompt Lab: `createPromptModel({ model, prompt })` makes a prompt-made model (a causal
// LM plus a few-shot prompt) that answers a list of questions, through the same service as the app and the CLI,
// so each run is in the history. It opens the studio on a data folder (default: as the CLI, $FSTUDIO_DATA_DIR
// or the app's folder) on the first run and keeps it until close(). With `labels` it is a classifier (the
// answer is the most likely label); without, it generates (the answer is the continuation, trimmed).
//
// Public API
//   createPromptModel({ model, prompt, labels?, calibrate?, decoding?, provider?, dataDir? }) -> PromptModel
//     .run(inputs: string[]) -> Promise<string[]>                 one answer per input, in order
//     .runRows(inputs: string[]) -> Promise<{ runId, rows }>      with probabilities, margins, finish reasons
//     .close()
//
//   const qa = createPromptModel({ model: 'gpt2', prompt: 'Q: Capital of India?\nA: Delhi\n\nQ: {input}\nA:' });
//   await qa.run(['Capital of France?'])   // ['Paris']
//   const sentiment = createPromptModel({ model: 'gpt2', prompt: 'I: Average movie O: Negative\nI: {input} O:',
//                                         labels: ['Positive', 'Negative'] });
//   await qa.close(); await sentiment.close();
import { StudioError, type PromptRow, type Provider } from '../../shared/api.js';
import type { PromptModelInput, PromptModelSpec } from '../../shared/prompt-model.js';
import { resolveDataDir } from '../cli/data-dir.js';
import type { StudioService } from '../studio/index.js';

export interface PromptModelOptions {
  /** Catalog id (gpt2, distilgpt2, smollm2-135m-instruct, …) or a model folder. */
  model: string;
  /** The template text with {input} (examples above it, blank-line separated), or a whole spec. */
  prompt: string | PromptModelInput | PromptModelSpec;
  /** A classifier over these labels (with a template text; a spec has its own). */
  labels?: string[];
  calibrate?: boolean;
  decoding?: PromptModelInput['decoding'];
  dataDir?: string;
  /** Execution provider (default: the one in the studio's Settings). */
  provider?: Provider;
  /** The compute worker's entry (tests give a stand-in). */
  computeWorker?: string | URL;
}

export interface PromptModel {
  run(inputs: readonly string[]): Promise<string[]>;
  runRows(inputs: readonly string[]): Promise<{ runId: number; rows: PromptRow[] }>;
  close(): Promise<void>;
}

export function createPromptModel(o: PromptModelOptions): PromptModel {
  let studio: Promise<StudioService> | null = null;
  let closed = false;
  const open = () =>
    (studio ??= import('../studio/index.js').then(({ openStudio }) =>
      openStudio({
        dataDir: resolveDataDir(o.dataDir),
        runQueue: false,
        watchFolders: false,
        ...(o.computeWorker ? { computeWorker: o.computeWorker } : {}),
      }),
    ));

  const spec = async (): Promise<PromptModelInput> => {
    if (typeof o.prompt !== 'string') return { ...o.prompt, model: { id: o.model } };
    const { specFromTemplate } = await import('../studio/prompt/library.js');
    return specFromTemplate(o.prompt, {
      name: 'SDK prompt',
      model: o.model,
      labels: o.labels,
      calibrate: o.calibrate,
      decoding: o.decoding,
    });
  };

  const runRows = async (inputs: readonly string[]) => {
    if (closed) throw new StudioError('Closed', 'This prompt model has been closed: create another.');
    if (inputs.length === 0) return { runId: 0, rows: [] };
    const s = await open();
    const rows: PromptRow[] = [];
    const run = await s.prompt.run(
      { model: { spec: await spec() }, input: { inline: inputs.map((text) => ({ text })) } },
      { allowPaths: true, provider: o.provider, onRows: (r) => rows.push(...r) },
    );
    await s.prompt.wait(run.runId);
    const d = s.prompt.get(run.runId);
    if (d.state !== 'done')
      throw new StudioError(d.state === 'failed' ? 'RunFailed' : 'Cancelled', d.error ?? `The run was ${d.state}.`);
    return { runId: run.runId, rows };
  };

  return {
    runRows,
    async run(inputs) {
      return (await runRows(inputs)).rows.map((r) => r.output.answer);
    },
    async close() {
      closed = true;
      const s = studio;
      studio = null;
      if (s) await (await s).close();
    },
  };
}
