// Prompt Lab over the real text runtime and the tiny GPT-2 of tests/fixtures/text/tiny-gpt2 (random weights: its
// answers mean nothing, its numbers are real): a classify run whose probabilities are the softmax (computed
// here) of the label log-likelihoods StudioCompute.textScore gives for the rendered prompts; bad inputs refused
// before anything is recorded (a CSV without the column, an empty file, a template without {input}, one label,
// the tiny CLIP folder as a language model); cancel mid-run keeps the rows; a 200 MB file streamed with
// bounded memory; and `fstudio prompt run` end to end writing CSV.
import { cpSync, createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunnerSet } from '../../../src/main/engine/runtime/runner.js';
import { StudioCompute } from '../../../src/main/studio/compute.js';
import { openStudio, type StudioService } from '../../../src/main/studio/index.js';
import { ModelManager } from '../../../src/main/studio/models/manager.js';
import { StudioError, type PromptRow } from '../../../src/shared/api.js';
import type { PromptModelInput } from '../../../src/shared/prompt-model.js';
import { renderPrompt } from '../../../src/shared/prompt-render.js';
import { PromptModelSpec } from '../../../src/shared/prompt-model.js';
import { fstudio, repo } from '../cli/fstudio.js';

const root = mkdtempSync(path.join(tmpdir(), 'fstudio-prompt-tiny-'));
const dataDir = path.join(root, 'data');
let studio: StudioService;
const rowEvents: { runId: number; rows: PromptRow[] }[] = [];

beforeAll(async () => {
  cpSync(path.join(repo, 'tests/fixtures/text/tiny-gpt2'), path.join(dataDir, 'models', 'tiny-gpt2'), {
    recursive: true,
  });
  cpSync(path.join(repo, 'tests/fixtures/clip/tiny'), path.join(dataDir, 'models', 'tiny-clip'), { recursive: true });
  studio = await openStudio({ dataDir, runQueue: false, watchFolders: false });
  studio.on('promptRows', (e) => rowEvents.push(e));
});
afterAll(async () => {
  await studio?.close();
  rmSync(root, { recursive: true, force: true });
});

function file(name: string, text: string): string {
  const p = path.join(root, name);
  writeFileSync(p, text);
  return p;
}

/** A spec with its defaults filled in (the handlers take what the API's zod parse gives). */
const spec = (o: Partial<PromptModelInput> = {}) => PromptModelSpec.parse(specInput(o));
const specInput = (o: Partial<PromptModelInput> = {}): PromptModelInput => ({
  name: 'Tiny sentiment',
  task: 'classify',
  model: { id: 'tiny-gpt2' },
  instructions: 'Reviews.',
  examples: [
    { input: 'great fun', output: 'Positive' },
    { input: 'dull', output: 'Negative' },
  ],
  labels: [{ name: 'Positive' }, { name: 'Negative' }],
  ...o,
});

async function refusal(p: Promise<unknown>): Promise<StudioError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  if (!(e instanceof StudioError)) throw new Error(`expected a StudioError, got ${String(e)}`);
  return e;
}

const h = () => studio.handlers;
const runCount = async () => (await h().promptRuns({ offset: 0, limit: 500 })).length;

describe('Prompt Lab on the tiny GPT-2', () => {
  it('classifies a CSV: probabilities are the softmax of textScore log-likelihoods of the rendered prompts', async () => {
    const csv = file('r.csv', 'text,label\nlovely film,Positive\nawful,Negative\nso so,Positive\n');
    const { runId } = await h().promptRun({
      model: { spec: spec({ calibrate: true }) },
      input: { path: csv, column: 'text', goldColumn: 'label' },
    });
    await studio.prompt.wait(runId);
    const run = await h().promptRunGet({ runId });
    expect(run).toMatchObject({ state: 'done', rows: 3, lm: 'tiny-gpt2', provider: expect.any(String) });
    expect(run.spec.model.files.map((f) => f.name)).toEqual(
      expect.arrayContaining(['config.json', 'tokenizer.json', 'onnx/model.onnx']),
    );
    const rows = (await h().promptRunRows({ runId, offset: 0, limit: 10 })).rows;
    // The reference: the same prompts scored directly, turned into probabilities here.
    const parsed = spec();
    const compute = new StudioCompute(new ModelManager(dataDir), new RunnerSet());
    try {
      const prompts = ['lovely film', 'awful', 'so so'].map((x) => renderPrompt(parsed, x));
      const { result } = await compute.textScore({
        model: 'tiny-gpt2',
        provider: 'cpu',
        prompts: [...prompts, ...['N/A', '[MASK]', ''].map((x) => renderPrompt(parsed, x))],
        continuations: [' Positive', ' Negative'],
      });
      const softmax = (lp: number[]) => lp.map((x) => Math.exp(x) / lp.reduce((s, y) => s + Math.exp(y), 0));
      const cf = result.logprobs.slice(3).map(softmax);
      const pcf = [0, 1].map((j) => cf.reduce((s, p) => s + p[j]!, 0) / cf.length);
      rows.forEach((row, i) => {
        if (row.output.task !== 'classify') throw new Error('expected a classification');
        const raw = softmax(result.logprobs[i]!);
        const q = raw.map((p, j) => p / pcf[j]!);
        const cal = q.map((x) => x / (q[0]! + q[1]!));
        expect(row.output.probs.map((p) => p.raw)).toEqual(raw.map((p) => expect.closeTo(p, 5)));
        expect(row.output.probs.map((p) => p.calibrated)).toEqual(cal.map((p) => expect.closeTo(p, 5)));
        expect(row.output.answer).toBe(cal[0]! >= cal[1]! ? 'Positive' : 'Negative');
      });
    } finally {
      await compute.runners.close();
    }
  });

  it('explores: the statistics agree with the answer matrix, counted here', async () => {
    const { runId } = await h().promptExplore({
      model: {
        spec: spec({
          examples: [
            { input: 'great fun', output: 'Positive' },
            { input: 'dull', output: 'Negative' },
            { input: 'a joy', output: 'Positive' },
          ],
        }),
      },
      input: {
        inline: ['lovely', 'awful', 'fine', 'boring', 'ok'].map((text, i) => ({
          text,
          gold: i % 2 ? 'Negative' : 'Positive',
        })),
      },
      variants: { permutations: 3, leaveOneOut: true, wordings: false, seed: 7 },
      limit: 50,
    });
    await studio.prompt.wait(runId);
    const r = await h().promptExploreGet({ runId });
    expect(r.run.state).toBe('done');
    expect(r.variants).toHaveLength(1 + 3 + 3);
    for (const [answers, stats] of [
      [r.raw, r.stats!.raw],
      [r.calibrated!, r.stats!.calibrated!],
    ] as const) {
      r.inputs.forEach((input, j) => {
        const column = answers.map((row) => row[j]!);
        const pos = column.filter((a) => a === 'Positive').length;
        const majority = pos >= column.length - pos ? 'Positive' : 'Negative';
        const flips = column.filter((a) => a !== majority).length / column.length;
        const shares = [pos, column.length - pos].map((c) => c / column.length).filter((p) => p > 0);
        const bits = -shares.reduce((sum, p) => sum + p * Math.log2(p), 0);
        expect(stats.perInput[j]).toMatchObject({
          majority,
          flipRate: flips,
          correctShare: column.filter((a) => a === input.gold).length / column.length,
        });
        expect(stats.perInput[j]!.entropyBits).toBeCloseTo(bits, 12);
      });
      const acc = answers.map((row) => row.filter((a, j) => a === r.inputs[j]!.gold).length / r.inputs.length);
      const mean = acc.reduce((a, b) => a + b, 0) / acc.length;
      expect(stats.perVariant.map((v) => v.accuracy)).toEqual(acc);
      expect(stats.accuracy!.mean).toBeCloseTo(mean, 12);
      expect(stats.accuracy!.sd).toBeCloseTo(Math.sqrt(acc.reduce((a, x) => a + (x - mean) ** 2, 0) / acc.length), 12);
    }
  });

  it('refuses bad inputs before recording anything, each in words', async () => {
    const before = await runCount();
    const noColumn = await refusal(
      h().promptRun({
        model: { spec: spec() },
        input: { path: file('q.csv', 'text,label\na,b\n'), column: 'question' },
      }),
    );
    expect(noColumn.code).toBe('InputFile');
    expect(noColumn.message).toContain('No column "question" in q.csv');
    const empty = await refusal(h().promptRun({ model: { spec: spec() }, input: { path: file('e.txt', '') } }));
    expect(empty.message).toContain('e.txt');
    const noSlot = await refusal(
      h().promptRun({ model: { spec: spec({ queryTemplate: 'Review:' }) }, input: { path: file('ok.txt', 'a\n') } }),
    );
    expect(noSlot.message).toContain('The query template has no {input} slot: add {input} where each input goes.');
    const oneLabel = await refusal(
      h().promptRun({
        model: { spec: spec({ labels: [{ name: 'Positive' }], examples: [] }) },
        input: { path: file('ok.txt', 'a\n') },
      }),
    );
    expect(oneLabel.message).toContain('A classifier needs at least two labels (got one: "Positive").');
    const clip = await refusal(
      h().promptRun({ model: { spec: spec({ model: { id: 'tiny-clip' } }) }, input: { path: file('ok.txt', 'a\n') } }),
    );
    expect(clip.code).toBe('NotATextModel');
    expect(clip.message).toMatch(/^"tiny-clip" cannot run as a text model: .*no onnx\/model\.onnx/);
    expect(await runCount()).toBe(before);
  });

  it('cancel mid-run keeps the rows done; a 200 MB file streams in bounded memory', async () => {
    // 200 MB of short lines, written in chunks.
    const big = path.join(root, 'big.txt');
    const out = createWriteStream(big);
    const line =
      'a fine and quite long review line that says nothing much at all, padded out to about a hundred bytes\n';
    const block = line.repeat(10_000);
    for (let written = 0; written < 200e6; written += block.length) if (!out.write(block)) await once(out, 'drain');
    out.end();
    await once(out, 'finish');
    // Warm the model first, so the memory measured is the run's.
    const warm = await h().promptRun({ model: { spec: spec() }, input: { path: file('w.txt', 'x\n') } });
    await studio.prompt.wait(warm.runId);
    const m0 = process.memoryUsage();
    const { runId, jobId } = await h().promptRun({ model: { spec: spec() }, input: { path: big } });
    const until = Date.now() + 60_000;
    while (rowEvents.filter((e) => e.runId === runId).flatMap((e) => e.rows).length < 130 && Date.now() < until)
      await new Promise((r) => setTimeout(r, 20));
    await h().jobCancel({ jobId });
    await studio.prompt.wait(runId);
    const m1 = process.memoryUsage();
    const run = await h().promptRunGet({ runId });
    expect(run.state).toBe('cancelled');
    expect(run.rows).toBeGreaterThanOrEqual(130);
    expect(run.rows).toBeLessThan(1000);
    expect((await h().promptRunRows({ runId, offset: 0, limit: 1000 })).total).toBe(run.rows);
    // The file is 200 MB; the run read only what it scored (a few 64 KB chunks): the JavaScript heap hardly
    // grows, and the process (whose resident memory also holds the worker's ONNX arenas, which grow with the
    // first batches of a new shape) stays far below the file's size.
    expect(m1.heapUsed - m0.heapUsed).toBeLessThan(30e6);
    expect(m1.rss - m0.rss).toBeLessThan(100e6);
    // The rows to come are estimated from the share of the file read (read ahead of the rows scored, so the
    // first estimates are low and firm up as the run goes): far above the rows done, at most the true count.
    const lines = Math.ceil(200e6 / block.length) * 10_000;
    expect(run.total).toBeGreaterThan(100 * run.rows);
    expect(run.total).toBeLessThanOrEqual(lines);
  }, 120_000);

  it('fstudio prompt run writes a CSV end to end, and generates without labels', async () => {
    const t = file('t.txt', 'I: lovely O: Positive\nI: dull O: Negative\nI: {input} O:\n');
    const out = path.join(root, 'out.csv');
    const r = await fstudio(
      [
        '--data-dir',
        dataDir,
        'prompt',
        'run',
        '--model',
        'tiny-gpt2',
        '--template',
        t,
        '--labels',
        'Positive|Negative',
        '--inputs',
        file('in.txt', 'great\nbad\n\nmeh\n'),
        '--out',
        out,
      ],
      { timeoutMs: 60_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe('idx,input,gold,answer,raw_label,calibrated_label,margin,p_Positive,p_Negative');
    expect(lines.slice(1).map((l) => l.split(',').slice(0, 2))).toEqual([
      ['0', 'great'],
      ['1', 'bad'],
      ['2', 'meh'],
    ]);
    for (const l of lines.slice(1)) {
      const c = l.split(',');
      expect(['Positive', 'Negative']).toContain(c[3]);
      expect(Number(c[7]) + Number(c[8])).toBeCloseTo(1, 4);
    }
    expect(r.stderr).toMatch(/Done: 3 rows .*run \d+ is in the history\.\nWrote 3 rows to .*out\.csv\./);

    const g = await fstudio(
      [
        '--data-dir',
        dataDir,
        'prompt',
        'run',
        '--model',
        'tiny-gpt2',
        '--template',
        t,
        '--inputs',
        file('g.txt', 'nice\n'),
        '--max-tokens',
        '4',
        '--format',
        'jsonl',
      ],
      { timeoutMs: 60_000 },
    );
    expect(g.code, g.stderr).toBe(0);
    const row = JSON.parse(g.stdout) as { task: string; tokens: number; finish: string; input: string };
    expect(row).toMatchObject({ task: 'generate', input: 'nice' });
    expect(row.tokens).toBeLessThanOrEqual(4);
  }, 120_000);
});
