// Prompt Lab's service through the StudioApi (zod validation included), over a compute worker whose text
// tasks are the hand-written table of fake-text-worker.ts: saved models (versions, export, import, bad files),
// try (probabilities raw and calibrated against a hand calculation), runs over files (rows streamed, stored,
// accuracy, history search, cancel keeps rows, an error keeps rows, bad files refused with nothing recorded),
// generation seeds, compare, CSV/JSONL export, and the explorer's statistics worked out by hand.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workerEntry } from '../../../src/main/base/worker-entry.js';
import { dispatchCall } from '../../../src/main/api/dispatch.js';
import { openStudio, type StudioService } from '../../../src/main/studio/index.js';
import {
  apiCalls,
  StudioError,
  type CallArgs,
  type CallName,
  type CallResult,
  type JobStatus,
  type PromptRow,
} from '../../../src/shared/api.js';
import { PromptModelSpec, type PromptModelInput } from '../../../src/shared/prompt-model.js';

const root = mkdtempSync(path.join(tmpdir(), 'fstudio-prompt-'));
const fakeWorker = workerEntry(import.meta.url, './fake-text-worker.ts', 'fake-text-worker');
let studio: StudioService;
const rowEvents: { runId: number; rows: PromptRow[] }[] = [];
const jobEvents: JobStatus[] = [];

function modelFolder(dir: string, modelType: string) {
  mkdirSync(path.join(dir, 'onnx'), { recursive: true });
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model_type: modelType }));
  writeFileSync(path.join(dir, 'tokenizer.json'), '{}');
  writeFileSync(path.join(dir, 'onnx', 'model.onnx'), 'not really onnx');
}

beforeAll(async () => {
  const dataDir = path.join(root, 'data');
  modelFolder(path.join(dataDir, 'models', 'fake-lm'), 'gpt2');
  modelFolder(path.join(dataDir, 'models', 'not-lm'), 'clip');
  studio = await openStudio({ dataDir, computeWorker: fakeWorker, runQueue: false, watchFolders: false });
  studio.on('promptRows', (e) => rowEvents.push(e));
  studio.on('jobProgress', (s) => jobEvents.push(s));
});
afterAll(async () => {
  await studio?.close();
  rmSync(root, { recursive: true, force: true });
});

/** A call as a client makes it: validated by the API's zod schemas; errors come back as StudioErrors. */
async function call<K extends CallName>(name: K, args: CallArgs<K>): Promise<CallResult<K>> {
  const r = await dispatchCall(studio.handlers, name, args);
  if (!r.ok) throw new StudioError(r.error.name, r.error.message);
  // What the handler answers has the shape the API declares (the page relies on it).
  apiCalls[name].result.parse(r.result);
  return r.result as CallResult<K>;
}

async function refusal(p: Promise<unknown>): Promise<StudioError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  if (!(e instanceof StudioError)) throw new Error(`expected a StudioError, got ${String(e)}`);
  return e;
}

function file(name: string, text: string): string {
  const p = path.join(root, name);
  writeFileSync(p, text);
  return p;
}

const sentiment = (o: Partial<PromptModelInput> = {}): PromptModelInput => ({
  name: 'Sentiment',
  task: 'classify',
  model: { id: 'fake-lm' },
  labels: [{ name: 'Positive' }, { name: 'Negative' }],
  examples: [],
  contentFree: ['N/A'],
  ...o,
});

async function finished(runId: number) {
  await studio.prompt.wait(runId);
  return call('promptRunGet', { runId });
}

/** softmax over two log-likelihoods, written out: the independent reference for the service's numbers. */
const p2 = (a: number, b: number) => [
  Math.exp(a) / (Math.exp(a) + Math.exp(b)),
  Math.exp(b) / (Math.exp(a) + Math.exp(b)),
];

describe('saved prompt models', () => {
  it('saves numbered versions, lists the latest, and records the model files with their hashes', async () => {
    const v1 = await call('promptModelSave', { spec: sentiment({ description: 'first' }) });
    const v2 = await call('promptModelSave', { spec: sentiment({ description: 'second' }) });
    expect([v1.version, v2.version]).toEqual([1, 2]);
    const list = await call('promptModelsList', {});
    const s = list.find((m) => m.name === 'Sentiment')!;
    expect(s).toMatchObject({ version: 2, versions: 2, task: 'classify', description: 'second', lm: 'fake-lm' });
    const got = await call('promptModelGet', { name: 'Sentiment', version: 1 });
    expect(got.spec.description).toBe('first');
    expect(got.versions.map((v) => v.version)).toEqual([2, 1]);
    // The files the model folder had, each with the SHA-256 of its bytes (config.json's, computed here).
    const { createHash } = await import('node:crypto');
    const config = JSON.stringify({ model_type: 'gpt2' });
    expect(got.spec.model.files).toContainEqual({
      name: 'config.json',
      sha256: createHash('sha256').update(config).digest('hex'),
    });
    expect(got.spec.model.files.map((f) => f.name)).toContain('onnx/model.onnx');
  });

  it('refuses specs that cannot run, in words, and saves nothing', async () => {
    const before = (await call('promptModelsList', {})).length;
    const noSlot = await refusal(call('promptModelSave', { spec: sentiment({ name: 'X', queryTemplate: 'Review:' }) }));
    expect(noSlot.code).toBe('InvalidArgument');
    expect(noSlot.message).toContain('The query template has no {input} slot');
    const oneLabel = await refusal(
      call('promptModelSave', { spec: sentiment({ name: 'Y', labels: [{ name: 'Positive' }] }) }),
    );
    expect(oneLabel.message).toContain('A classifier needs at least two labels (got one: "Positive")');
    expect((await call('promptModelsList', {})).length).toBe(before);
  });

  it('exports one JSON file and imports it back as a new version; other files are refused clearly', async () => {
    const exp = await call('promptModelExport', { name: 'Sentiment' });
    expect(exp.fileName).toBe('Sentiment-v2.fstudio-prompt.json');
    const json = JSON.parse(new TextDecoder().decode(exp.data!)) as Record<string, unknown>;
    expect(json).toMatchObject({ format: 'fstudio-prompt-model', name: 'Sentiment', version: 2, task: 'classify' });
    const imported = await call('promptModelImport', { data: exp.data! });
    expect(imported).toMatchObject({ name: 'Sentiment', version: 3 });
    const renamed = await call('promptModelImport', { data: exp.data!, name: 'Sentiment copy' });
    expect(renamed).toMatchObject({ name: 'Sentiment copy', version: 1 });

    const notJson = await refusal(call('promptModelImport', { data: new TextEncoder().encode('Q: {input}\nA:') }));
    expect(notJson.message).toMatch(/^This file is not JSON/);
    const other = await refusal(
      call('promptModelImport', { data: new TextEncoder().encode(JSON.stringify({ format: 'fstudio-vqgan-tokens' })) }),
    );
    expect(other.message).toContain('its format is "fstudio-vqgan-tokens"; expected "fstudio-prompt-model"');
    const binary = await refusal(call('promptModelImport', { data: new Uint8Array([0xff, 0xfe, 0x00, 0x81]) }));
    expect(binary.message).toContain('not text (UTF-8)');
    const deleted = await call('promptModelDelete', { name: 'Sentiment copy' });
    expect(deleted.deleted).toBe(1);
    const gone = await refusal(call('promptModelGet', { name: 'Sentiment copy' }));
    expect(gone.code).toBe('NotFound');
  });

  it('refuses megabyte-long adversarial files quickly, in words', async () => {
    const enc = new TextEncoder();
    const started = Date.now();
    const nested = await refusal(call('promptModelImport', { data: enc.encode('['.repeat(4_000_000)) }));
    expect(nested.message).toMatch(/^This file is not JSON/);
    const long = await refusal(
      call('promptModelImport', {
        data: enc.encode(
          JSON.stringify({ format: 'fstudio-prompt-model', name: 'x'.repeat(3_000_000), task: 'classify' }),
        ),
      }),
    );
    expect(long.message).toMatch(/^This prompt model is not valid: name: .*200/);
    const tooBig = await refusal(call('promptModelImport', { data: new Uint8Array(5 * 1024 * 1024) }));
    expect(tooBig.message).toContain('a prompt model file is at most 4 MB');
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('lists the text models: folders of the user own that hold an ONNX causal LM, not CLIP folders', async () => {
    const models = await call('promptTextModels', {});
    expect(models.find((m) => m.id === 'fake-lm')).toMatchObject({ source: 'folder', installed: true });
    expect(models.find((m) => m.id === 'not-lm')).toBeUndefined();
    expect(models.some((m) => m.source === 'catalog' && m.id === 'gpt2')).toBe(true);
  });
});

describe('try', () => {
  it('gives raw and calibrated probabilities as worked out by hand', async () => {
    const r = await call('promptTry', { model: { spec: sentiment({ calibrate: true }) }, input: 'fine movie' });
    expect(r.prompt).toBe('Input: fine movie\nOutput:');
    if (r.output.task !== 'classify') throw new Error('expected a classification');
    // Table: "fine movie" -> Positive -2.0, Negative -2.2; the content-free "N/A" -> -1.0, -2.5.
    const raw = p2(-2.0, -2.2);
    const cf = p2(-1.0, -2.5);
    const q = [raw[0]! / cf[0]!, raw[1]! / cf[1]!];
    const cal = [q[0]! / (q[0]! + q[1]!), q[1]! / (q[0]! + q[1]!)];
    expect(r.output.probs.map((p) => p.raw)).toEqual([expect.closeTo(raw[0]!, 12), expect.closeTo(raw[1]!, 12)]);
    expect(r.output.probs.map((p) => p.calibrated)).toEqual([expect.closeTo(cal[0]!, 12), expect.closeTo(cal[1]!, 12)]);
    // Raw says Positive (0.55); calibration removes the model's lean toward Positive and the answer flips.
    expect(r.output).toMatchObject({ rawLabel: 'Positive', calibratedLabel: 'Negative', answer: 'Negative' });
    expect(r.output.margin).toBeCloseTo(cal[1]! - cal[0]!, 12);
  });

  it('streams generation for a tryId', async () => {
    const deltas: string[] = [];
    const off = studio.on('promptTryDelta', (d) => d.tryId === 't1' && deltas.push(d.delta));
    const r = await call('promptTry', {
      model: { spec: { name: 'QA', task: 'generate', model: { id: 'fake-lm' }, queryTemplate: 'Q: {input}\nA:' } },
      input: 'Capital of India?',
      tryId: 't1',
    });
    off();
    expect(r.output).toMatchObject({ task: 'generate', answer: 'Delhi', text: ' Delhi', finish: 'stop' });
    expect(deltas.join('')).toBe(' Delhi');
  });

  it('refuses a folder that is not a causal LM, saying what a text model is', async () => {
    const e = await refusal(call('promptTry', { model: { spec: sentiment({ model: { id: 'not-lm' } }) }, input: 'x' }));
    expect(e.code).toBe('NotATextModel');
    expect(e.message).toContain('"not-lm" cannot run as a text model');
    expect(e.message).toContain('model_type "clip"');
  });

  it('refuses a model path through the API (installed models only)', async () => {
    const e = await refusal(
      call('promptTry', {
        model: { spec: sentiment({ model: { id: path.join(root, 'data/models/fake-lm') } }) },
        input: 'x',
      }),
    );
    expect(e.code).toBe('InvalidArgument');
    expect(e.message).toContain('is a path: the studio runs installed models only');
  });
});

describe('runs over a file', () => {
  const csv = () =>
    file(
      'reviews.csv',
      'review,label\n"a good movie, really",Positive\nbad movie,negative\nfine movie,Positive\n"good, ""great""",Negative\n',
    );

  it('streams rows, stores them, computes accuracy on the gold rows, and is found by the history search', async () => {
    const before = rowEvents.length;
    const { runId, jobId } = await call('promptRun', {
      model: { saved: { name: 'Sentiment', version: 2 } },
      input: { path: csv(), column: 'review', goldColumn: 'label' },
    });
    const run = await finished(runId);
    expect(run).toMatchObject({ state: 'done', kind: 'run', rows: 4, modelName: 'Sentiment', modelVersion: 2 });
    expect(run.inputName).toBe('reviews.csv');
    // Answers by the table: good -> Positive, bad -> Negative, fine -> Positive (raw), good -> Positive.
    // Gold: Positive, negative (matches the label Negative ignoring case), Positive, Negative: 3 of 4 right.
    expect(run.accuracy).toEqual({ rows: 4, correct: 3, accuracy: 0.75, rawCorrect: null, rawAccuracy: null });
    expect(run.answers).toEqual([
      { answer: 'Positive', count: 3 },
      { answer: 'Negative', count: 1 },
    ]);
    const streamed = rowEvents
      .slice(before)
      .filter((e) => e.runId === runId)
      .flatMap((e) => e.rows);
    expect(streamed.map((r) => [r.idx, r.input, r.gold, r.output.answer])).toEqual([
      [0, 'a good movie, really', 'Positive', 'Positive'],
      [1, 'bad movie', 'Negative', 'Negative'],
      [2, 'fine movie', 'Positive', 'Positive'],
      [3, 'good, "great"', 'Negative', 'Positive'],
    ]);
    const page = await call('promptRunRows', { runId, offset: 1, limit: 2 });
    expect(page.total).toBe(4);
    expect(page.rows).toEqual(streamed.slice(1, 3));
    expect(jobEvents.filter((j) => j.jobId === jobId).at(-1)).toMatchObject({ state: 'done', runId, kind: 'prompt' });
    // The history: a run of kind 'prompt', never queued, found by its file name and by a label.
    const h = studio.handlers;
    expect((await h.promptRuns({ text: 'reviews', offset: 0, limit: 10 })).map((r) => r.runId)).toContain(runId);
    expect((await h.promptRuns({ text: 'Negative', offset: 0, limit: 10 })).map((r) => r.runId)).toContain(runId);
    expect((await h.promptRuns({ text: 'zebra', offset: 0, limit: 10 })).map((r) => r.runId)).not.toContain(runId);
  });

  it('refuses a CSV without the named column before recording anything', async () => {
    const runsBefore = (await call('promptRuns', {})).length;
    const e = await refusal(
      call('promptRun', { model: { spec: sentiment() }, input: { path: csv(), column: 'question' } }),
    );
    expect(e.code).toBe('InputFile');
    expect(e.message).toContain('"question"');
    expect(e.message).toContain('review');
    const empty = await refusal(
      call('promptRun', { model: { spec: sentiment() }, input: { path: file('empty.txt', '') } }),
    );
    expect(empty.message).toContain('empty.txt');
    const missing = await refusal(
      call('promptRun', { model: { spec: sentiment() }, input: { path: path.join(root, 'nope.txt') } }),
    );
    expect(missing.code).toBe('InputFile');
    expect((await call('promptRuns', {})).length).toBe(runsBefore);
  });

  it('with calibration, reports accuracy raw and calibrated', async () => {
    const { runId } = await call('promptRun', {
      model: { spec: sentiment({ calibrate: true }) },
      input: { path: csv(), column: 'review', goldColumn: 'label' },
    });
    const run = await finished(runId);
    // Calibrated answers: good P, bad N, fine N (flips), good P: right on rows 0, 1 -> 2 of 4. Raw: 3 of 4.
    expect(run.accuracy).toEqual({ rows: 4, correct: 2, accuracy: 0.5, rawCorrect: 3, rawAccuracy: 0.75 });
  });

  it('cancel stops after the current batch, ends cancelled and keeps the rows done', async () => {
    const lines = Array.from({ length: 600 }, (_, i) => `review ${i} of a good film`).join('\n');
    const { runId, jobId } = await call('promptRun', {
      model: { spec: sentiment({ instructions: 'slow' }) },
      input: { path: file('many.txt', lines) },
    });
    await until(() => rowEvents.some((e) => e.runId === runId));
    await call('jobCancel', { jobId });
    const run = await finished(runId);
    expect(run.state).toBe('cancelled');
    expect(run.rows).toBeGreaterThan(0);
    expect(run.rows).toBeLessThan(600);
    const stored = await call('promptRunRows', { runId, offset: 0, limit: 1000 });
    expect(stored.total).toBe(run.rows);
    expect(stored.rows.map((r) => r.idx)).toEqual([...Array(run.rows).keys()]);
  });

  it('an error mid-run ends it failed with the message, keeping the rows done', async () => {
    const lines = Array.from({ length: 100 }, (_, i) => (i === 70 ? 'boom' : `line ${i}`)).join('\n');
    const { runId } = await call('promptRun', {
      model: { spec: sentiment() },
      input: { path: file('boom.txt', lines) },
    });
    const run = await finished(runId);
    expect(run.state).toBe('failed');
    expect(run.error).toContain('longer than the model context');
    // Batches of 64 rows are scored 16 prompts at a time: rows 0..63, then 64..79 holds the bad one.
    expect(run.rows).toBe(64);
  });

  it('generation seeds each row with the spec seed plus its index (reproducible), and respects the limit', async () => {
    const spec = {
      name: 'Capitals',
      task: 'generate' as const,
      model: { id: 'fake-lm' },
      queryTemplate: 'Q: Capital of {input}?\nA:',
      decoding: { temperature: 0.7, seed: 10 },
    };
    const { runId } = await call('promptRun', {
      model: { spec },
      input: { path: file('countries.txt', 'India\nFrance\nPeru\nChad\n') },
      limit: 3,
    });
    const run = await finished(runId);
    expect(run).toMatchObject({ state: 'done', rows: 3, total: 3 });
    const rows = (await call('promptRunRows', { runId, offset: 0, limit: 10 })).rows;
    expect(rows.map((r) => r.output.answer)).toEqual(['Delhi #10', 'Paris #11', 'unknown #12']);
  });
});

describe('closing the studio', () => {
  it('cancels a run under way: it ends cancelled with its rows, as the next open shows', async () => {
    const dir = path.join(root, 'closing');
    mkdirSync(dir, { recursive: true });
    modelFolder(path.join(dir, 'models', 'fake-lm'), 'gpt2');
    const open = () => openStudio({ dataDir: dir, computeWorker: fakeWorker, runQueue: false, watchFolders: false });
    const s1 = await open();
    const lines = Array.from({ length: 400 }, (_, i) => `line ${i}`).join('\n');
    let seen = 0;
    s1.on('promptRows', (e) => (seen += e.rows.length));
    const { runId } = await s1.handlers.promptRun({
      model: { spec: PromptModelSpec.parse(sentiment({ instructions: 'slow' })) },
      input: { path: file('closing.txt', lines) },
    });
    await until(() => seen > 0);
    await s1.close();
    const s2 = await open();
    try {
      const run = await s2.handlers.promptRunGet({ runId });
      expect(run.state).toBe('cancelled');
      expect(run.rows).toBeGreaterThan(0);
      expect(run.rows).toBeLessThan(400);
    } finally {
      await s2.close();
    }
  });
});

describe('compare and export', () => {
  it('compares two runs row by row and exports CSV and JSONL', async () => {
    const input = { path: file('cmp.txt', 'good one\nbad one\nfine one\nmeh one\n') };
    const a = await call('promptRun', { model: { spec: sentiment() }, input });
    const b = await call('promptRun', { model: { spec: sentiment({ calibrate: true }) }, input });
    await Promise.all([finished(a.runId), finished(b.runId)]);
    const c = await call('promptCompare', { a: a.runId, b: b.runId });
    // Raw: P, N, P, P. Calibrated: P, N, N, N ("fine" and "meh" fall in the table's "anything else" row).
    expect(c).toMatchObject({ compared: 4, agree: 2, agreement: 0.5, differing: 2, onlyA: 0, onlyB: 0 });
    expect(c.diffs).toEqual([
      { idx: 2, input: 'fine one', gold: null, a: 'Positive', b: 'Negative' },
      { idx: 3, input: 'meh one', gold: null, a: 'Positive', b: 'Negative' },
    ]);
    const paged = await call('promptCompare', { a: a.runId, b: b.runId, offset: 1, limit: 1 });
    expect(paged.diffs.map((d) => d.idx)).toEqual([3]);

    const csv = await call('promptExportRun', { runId: b.runId, format: 'csv' });
    const lines = new TextDecoder().decode(csv.data!).trimEnd().split('\n');
    expect(lines[0]).toBe(
      'idx,input,gold,answer,raw_label,calibrated_label,margin,p_Positive,p_Negative,calibrated_p_Positive,calibrated_p_Negative',
    );
    const raw = p2(-2.0, -2.2);
    const cells = lines[3]!.split(',');
    expect(cells.slice(0, 6)).toEqual(['2', 'fine one', '', 'Negative', 'Positive', 'Negative']);
    expect(Number(cells[7])).toBeCloseTo(raw[0]!, 5);
    expect(csv).toMatchObject({ rows: 4, path: null, mime: 'text/csv' });
    const jsonl = await call('promptExportRun', { runId: a.runId, format: 'jsonl' });
    const objs = new TextDecoder()
      .decode(jsonl.data!)
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { idx: number; answer: string });
    // Past the inline limit the same bytes are written under <data>/exports and the path is returned.
    const big = await studio.prompt.exportRun(a.runId, 'jsonl', 100);
    expect(big.data).toBeNull();
    expect(big.path).toBe(path.join(studio.dataDir, 'exports', `prompt-run-${a.runId}.jsonl`));
    expect(readFileSync(big.path!)).toEqual(Buffer.from(jsonl.data!));
    expect(objs.map((o) => [o.idx, o.answer])).toEqual([
      [0, 'Positive'],
      [1, 'Negative'],
      [2, 'Positive'],
      [3, 'Positive'],
    ]);
  });
});

describe('the explorer', () => {
  it('runs every variant and gives flip rate, entropy and accuracy as worked out by hand', async () => {
    const spec = sentiment({
      name: 'Explore me',
      examples: [
        { input: 'a good film', output: 'Positive' },
        { input: 'a bad film', output: 'Negative' },
      ],
    });
    const { runId } = await call('promptExplore', {
      model: { spec },
      input: {
        inline: [
          { text: 'good movie', gold: 'Positive' },
          { text: 'bad movie', gold: 'Negative' },
          { text: 'fine movie', gold: 'Positive' },
        ],
      },
      variants: { permutations: 1, leaveOneOut: true, wordings: false, seed: 3 },
    });
    await studio.prompt.wait(runId);
    const r = await call('promptExploreGet', { runId });
    expect(r.run.state).toBe('done');
    // Two examples: the original order (1-2), the other order (2-1), and each left out.
    expect(r.variants.map((v) => v.description)).toEqual([
      'the prompt as written',
      'order 2-1',
      'without example 1',
      'without example 2',
    ]);
    // The table's recency bias: after a Negative last example " Negative" gets +1.5, which turns "fine movie"
    // (-2.0 against -2.2) to Negative (-2.0 against -0.7). Last examples: Negative, Positive, Negative, Positive.
    expect(r.raw).toEqual([
      ['Positive', 'Negative', 'Negative'],
      ['Positive', 'Negative', 'Positive'],
      ['Positive', 'Negative', 'Negative'],
      ['Positive', 'Negative', 'Positive'],
    ]);
    const raw = r.stats!.raw;
    // "fine movie": 2 Positive, 2 Negative -> the tie goes to the first label, half the variants flip, 1 bit.
    expect(raw.perInput.map((x) => [x.majority, x.flipRate, x.entropyBits])).toEqual([
      ['Positive', 0, 0],
      ['Negative', 0, 0],
      ['Positive', 0.5, 1],
    ]);
    // Accuracy per variant against P, N, P: 2/3, 1, 2/3, 1 -> mean 5/6, population sd 1/6.
    expect(raw.perVariant.map((v) => v.accuracy)).toEqual([2 / 3, 1, 2 / 3, 1]);
    expect(raw.accuracy!.mean).toBeCloseTo(5 / 6, 12);
    expect(raw.accuracy!.sd).toBeCloseTo(1 / 6, 12);
    expect(raw.perVariant[0]!.shares).toEqual([1 / 3, 2 / 3]);
    expect(raw.dataShares).toEqual([2 / 3, 1 / 3]);
    // Calibrated: after a Negative last example the content-free prompt gives softmax(-1, -1) = (1/2, 1/2), which
    // changes nothing; after a Positive one p_cf = softmax(-1, -2.5), and "fine movie" goes Negative in every
    // variant: (0.5498 / 0.8176) < (0.4502 / 0.1824). So calibration removes the flip (and is wrong on it).
    const cf = p2(-1, -2.5);
    const fine = p2(-2, -2.2);
    expect(fine[0]! / cf[0]! < fine[1]! / cf[1]!).toBe(true);
    expect(r.calibrated).toEqual(Array.from({ length: 4 }, () => ['Positive', 'Negative', 'Negative']));
    const cal = r.stats!.calibrated!;
    expect(cal.perInput.map((x) => x.flipRate)).toEqual([0, 0, 0]);
    expect(cal.accuracy).toMatchObject({ mean: 2 / 3, sd: 0, min: 2 / 3, max: 2 / 3 });
    // Found in the history as an exploration.
    const found = await call('promptRuns', { text: 'Explore me' });
    expect(found.find((x) => x.runId === runId)?.kind).toBe('explore');
  });

  it('explores a generator: answers are the generated texts, compared as strings', async () => {
    const { runId } = await call('promptExplore', {
      model: {
        spec: {
          name: 'QA',
          task: 'generate',
          model: { id: 'fake-lm' },
          exampleTemplate: 'Q: {input}\nA: {output}',
          queryTemplate: 'Q: Capital of {input}?\nA:',
          examples: [
            { input: 'Capital of Chad?', output: "N'Djamena" },
            { input: 'Capital of Peru?', output: 'Lima' },
          ],
        },
      },
      input: {
        inline: [
          { text: 'India', gold: 'Delhi' },
          { text: 'Mars', gold: 'none' },
        ],
      },
      variants: { permutations: 1, leaveOneOut: false, wordings: false, seed: 0 },
    });
    await studio.prompt.wait(runId);
    const r = await call('promptExploreGet', { runId });
    // The stand-in ignores the examples: both orders answer alike, nothing flips; accuracy 1 of 2 in both.
    expect(r.labels).toEqual([]);
    expect(r.raw).toEqual([
      ['Delhi', 'unknown'],
      ['Delhi', 'unknown'],
    ]);
    expect(r.calibrated).toBeNull();
    expect(r.stats!.raw.perInput.map((x) => [x.majority, x.flipRate, x.correctShare])).toEqual([
      ['Delhi', 0, 1],
      ['unknown', 0, 0],
    ]);
    expect(r.stats!.raw.accuracy).toMatchObject({ mean: 0.5, sd: 0 });
  });

  it('refuses more answers than it computes, saying what to lower', async () => {
    const e = await refusal(
      call('promptExplore', {
        model: {
          spec: sentiment({ examples: Array.from({ length: 6 }, (_, i) => ({ input: `x${i}`, output: 'Positive' })) }),
        },
        input: { inline: Array.from({ length: 1000 }, (_, i) => ({ text: `t${i}` })) },
        variants: { permutations: 100, leaveOneOut: true, wordings: false, seed: 0 },
        limit: 1000,
      }),
    );
    expect(e.message).toMatch(/107 variants x 1000 inputs .* ask for fewer permutations or a lower limit/);
  });
});

function until(f: () => boolean, ms = 20_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const t = setInterval(() => {
      if (f()) {
        clearInterval(t);
        resolve();
      } else if (Date.now() - start > ms) {
        clearInterval(t);
        reject(new Error('timed out'));
      }
    }, 10);
  });
}
