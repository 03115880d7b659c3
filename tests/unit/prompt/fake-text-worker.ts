// A compute worker whose text tasks are stand-ins with the real tasks' contract (engine/text/types.ts), for the
// tests of Prompt Lab's service without a language model. Its "model" reads only the query part of a prompt
// (the text after the last blank line) and gives each label continuation a log-likelihood from a small
// hand-written table, so the tests can work out every probability by hand:
//
//   query holds          " Positive"   " Negative"
//   "good"                  -1.0          -3.0
//   "bad"                   -3.0          -1.0
//   "N/A" / "[MASK]" / ""   -1.0          -2.5      (content-free: this model leans Positive)
//   anything else           -2.0          -2.2
//   any other continuation  -9.0
//   and a recency bias: when the block just before the query (the last example) ends "Output: Negative",
//   " Negative" gets +1.5.
//
// Triggers in the prompt: "slow" makes every prompt take 30 ms; "boom" makes text.score fail (as a prompt
// too long for the context would). text.info refuses a folder whose config.json model_type is not "gpt2".
// text.generate answers capitals ("India" -> " Delhi", "France" -> " Paris", else " unknown") and, with a
// temperature above 0, appends " #<seed>" so a test can see the seed each row got; it streams word by word.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { serveDevice, type TaskContext } from '../../../src/main/engine/runtime/worker-core.js';
import { tasks } from '../../../src/main/engine/tasks.js';
import type { GenerateArgs, ScoreArgs, TextModelInfo, TextModelRef } from '../../../src/main/engine/text/types.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function query(prompt: string): string {
  const at = prompt.lastIndexOf('\n\n');
  return at < 0 ? prompt : prompt.slice(at + 2);
}

function contentFree(q: string): boolean {
  const input = q.replace(/^Input:\s*/, '').replace(/\s*Output:\s*$/, '');
  return input === 'N/A' || input === '[MASK]' || input === '';
}

function lastExampleNegative(prompt: string): boolean {
  const before = prompt.slice(0, Math.max(0, prompt.lastIndexOf('\n\n')));
  return before.endsWith('Output: Negative');
}

export function fakeLogprob(prompt: string, continuation: string): number {
  const q = query(prompt);
  const row = q.includes('good')
    ? [-1.0, -3.0]
    : q.includes('bad')
      ? [-3.0, -1.0]
      : contentFree(q)
        ? [-1.0, -2.5]
        : [-2.0, -2.2];
  if (continuation === ' Positive') return row[0]!;
  if (continuation === ' Negative') return row[1]! + (lastExampleNegative(prompt) ? 1.5 : 0);
  return -9.0;
}

async function info(a: { model: TextModelRef }): Promise<TextModelInfo> {
  const config = JSON.parse(await readFile(join(a.model.dir, 'config.json'), 'utf8')) as { model_type?: string };
  if (config.model_type !== 'gpt2')
    throw new Error(`config.json says model_type "${config.model_type}", which is not a causal language model.`);
  return { modelType: 'gpt2', vocabSize: 100, maxPositions: 1024, onnxFile: 'onnx/model.onnx', eosTokenIds: [0] };
}

async function score(a: ScoreArgs, ctx: TaskContext) {
  const logprobs: number[][] = [];
  for (const p of a.prompts) {
    if (p.includes('boom')) throw new Error('the prompt is longer than the model context (1024 tokens)');
    if (p.includes('slow')) await sleep(30);
    logprobs.push(a.continuations.map((c) => fakeLogprob(p, c)));
    ctx.emit({ done: logprobs.length });
  }
  return {
    logprobs,
    continuationTokens: a.continuations.map((c) => [c.length]),
    promptTokens: a.prompts.map((p) => p.split(/\s+/).length),
    provider: 'cpu',
  };
}

async function generate(a: GenerateArgs, ctx: TaskContext) {
  const q = query(a.prompt);
  if (a.prompt.includes('slow')) await sleep(30);
  let text = q.includes('India') ? ' Delhi' : q.includes('France') ? ' Paris' : ' unknown';
  if (a.temperature > 0) text += ` #${a.seed}`;
  let tokens = 0;
  for (const word of text.split(/(?= )/)) {
    tokens++;
    ctx.emit({ delta: word, tokens });
  }
  return { text, tokens, finish: 'stop' as const, provider: 'cpu' };
}

serveDevice(
  parentPort!,
  { ...tasks, 'text.info': info, 'text.score': score, 'text.generate': generate },
  (workerData as { epoch: number }).epoch,
);
