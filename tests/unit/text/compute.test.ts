// The text runtime as the app runs it: StudioCompute resolves the model (a folder under models/, or a path),
// and the compute worker (not this thread) scores and generates, streaming progress and text.
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunnerSet } from '../../../src/main/engine/runtime/runner.js';
import { StudioCompute } from '../../../src/main/studio/compute.js';
import { ModelManager } from '../../../src/main/studio/models/manager.js';
import { TINY_GPT2_DIR } from '../../fixtures/text/make-tiny-gpt2.js';

let dataDir: string;
let runners: RunnerSet;
let compute: StudioCompute;

beforeAll(async () => {
  dataDir = await mkdtemp(path.join(tmpdir(), 'fstudio-text-'));
  await cp(TINY_GPT2_DIR, path.join(dataDir, 'models', 'tiny-gpt2'), { recursive: true });
  runners = new RunnerSet();
  compute = new StudioCompute(new ModelManager(dataDir), runners);
});
afterAll(async () => {
  await runners.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('text models through the compute worker', () => {
  it('scores labels by model id and by folder alike, reporting progress', async () => {
    const prompts = ['I: Average movie O:', 'I: Great acting O:', 'Q: Capital of India? A:'];
    const seen: number[] = [];
    const byId = await compute.textScore({
      model: 'tiny-gpt2',
      provider: 'cpu',
      prompts,
      continuations: [' Positive', ' Negative'],
      onProgress: (n) => seen.push(n),
    });
    const byPath = await compute.textScore({
      model: TINY_GPT2_DIR,
      provider: 'cpu',
      prompts,
      continuations: [' Positive', ' Negative'],
    });
    expect(byId.model.ref).toBe('tiny-gpt2');
    expect(byId.result.logprobs).toHaveLength(3);
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 2; j++) expect(byId.result.logprobs[i]![j]!).toBeCloseTo(byPath.result.logprobs[i]![j]!, 5);
    }
    // Different prompts give different scores (the model reads the prompt).
    expect(byId.result.logprobs[0]![0]).not.toBeCloseTo(byId.result.logprobs[2]![0]!, 3);
    expect(seen.at(-1)).toBe(3);
  });

  it('streams generated text and reports the model', async () => {
    const deltas: string[] = [];
    const info = await compute.textInfo({ model: 'tiny-gpt2', provider: 'cpu' });
    expect(info.info).toMatchObject({ modelType: 'gpt2', maxPositions: 256, onnxFile: 'onnx/model.onnx' });
    const r = await compute.textGenerate({
      model: 'tiny-gpt2',
      provider: 'cpu',
      prompt: 'The review is',
      maxTokens: 10,
      temperature: 0.8,
      topP: 0.9,
      stop: [],
      seed: 1,
      onDelta: (m) => deltas.push(m.delta),
    });
    expect(r.result.tokens).toBeGreaterThan(0);
    expect(deltas.join('')).toBe(r.result.text);
  });

  it('a model that is not installed says what to do', async () => {
    await expect(
      compute.textScore({ model: 'gpt2', provider: 'cpu', prompts: ['a'], continuations: [' b'] }),
    ).rejects.toThrow(/model "gpt2" is not installed.*download it on the Models page/);
  });
});
