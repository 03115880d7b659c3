// `fstudio prompt` (run, explore, models, history) and the SDK's createPromptModel, in process over the
// stand-in text worker (fake-text-worker.ts: its table is in its header), with what a user reads checked:
// the CSV/JSONL on stdout or --out, the summary and accuracy on stderr, the explorer's report, and errors as
// one sentence. The help of every prompt command is read through the real `fstudio` binary.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workerEntry } from '../../../src/main/base/worker-entry.js';
import {
  promptExploreCommand,
  promptHistoryCommand,
  promptModelsCommand,
  promptRunCommand,
  type PromptIo,
  type RunOptions,
} from '../../../src/main/cli/prompt.js';
import { createPromptModel } from '../../../src/main/sdk/prompt.js';
import { openStudio } from '../../../src/main/studio/index.js';
import { fstudio } from '../cli/fstudio.js';

const root = mkdtempSync(path.join(tmpdir(), 'fstudio-prompt-cli-'));
const fakeWorker = workerEntry(import.meta.url, './fake-text-worker.ts', 'fake-text-worker');
const dataDir = path.join(root, 'data');
const lm = path.join(root, 'my-lm');

beforeAll(() => {
  mkdirSync(path.join(lm, 'onnx'), { recursive: true });
  writeFileSync(path.join(lm, 'config.json'), JSON.stringify({ model_type: 'gpt2' }));
  writeFileSync(path.join(lm, 'tokenizer.json'), '{}');
  writeFileSync(path.join(lm, 'onnx', 'model.onnx'), 'x');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = path.join(root, name);
  writeFileSync(p, text);
  return p;
}

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

function io(): PromptIo & { out: Capture; err: Capture } {
  const out = new Capture();
  const err = new Capture();
  return {
    out,
    err,
    stdout: out,
    stderr: err,
    open: (d) => openStudio({ dataDir: d, computeWorker: fakeWorker, runQueue: false, watchFolders: false }),
  };
}

const sentimentTemplate = () =>
  file('sentiment.txt', 'Classify each review.\n\nInput: a good film\nOutput: Positive\n\nInput: {input}\nOutput:\n');
const reviews = () =>
  file('reviews.csv', 'text,label\n"a good movie, really",Positive\nbad movie,Negative\nfine movie,Negative\n');

const runOpts = (o: Partial<RunOptions> = {}): RunOptions => ({
  model: lm,
  template: sentimentTemplate(),
  labels: 'Positive|Negative',
  inputs: reviews(),
  column: 'text',
  gold: 'label',
  format: 'csv',
  ...o,
});

describe('fstudio prompt run', () => {
  it('prints a CSV row per input and the accuracy, and the run is in the history', async () => {
    const x = io();
    expect(await promptRunCommand(dataDir, runOpts(), x)).toBe(0);
    const lines = x.out.text.trimEnd().split('\n');
    expect(lines[0]).toBe('idx,input,gold,answer,raw_label,calibrated_label,margin,p_Positive,p_Negative');
    expect(
      lines.slice(1).map((l) =>
        l
          .split(',')
          .slice(0, 1)
          .concat(l.match(/,(Positive|Negative),(Positive|Negative),/)!.slice(1)),
      ),
    ).toEqual([
      ['0', 'Positive', 'Positive'],
      ['1', 'Negative', 'Negative'],
      ['2', 'Negative', 'Positive'],
    ]);
    expect(lines[1]!.startsWith('0,"a good movie, really",Positive,Positive,Positive,,')).toBe(true);
    // "fine movie" after a Positive last example: -2.0 against -2.2 -> Positive; gold says Negative: 2 of 3.
    expect(x.err.text).toMatch(/^Done: 3 rows \([\d.]+ rows\/s\); run \d+ is in the history\.$/m);
    expect(x.err.text).toContain('Accuracy 66.7% (2 of 3 rows with a gold answer).');

    const h = io();
    await promptHistoryCommand(dataDir, 'reviews', { limit: 5 }, h);
    expect(h.out.text).toMatch(/^\d+ +done +run +sentiment on reviews\.csv +3 +66\.7%/m);
  });

  it('writes JSONL to --out for generation, and refuses an existing file without --force', async () => {
    const capitals = file('capitals.txt', 'Q: Capital of India?\nA: Delhi\n\nQ: Capital of {input}?\nA:\n');
    const out = path.join(root, 'answers.jsonl');
    const o = runOpts({
      template: capitals,
      labels: undefined,
      inputs: file('c.txt', 'France\nPeru\n'),
      column: undefined,
      gold: undefined,
      format: 'jsonl',
      out,
    });
    const x = io();
    expect(await promptRunCommand(dataDir, o, x)).toBe(0);
    const rows = readFileSync(out, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rows.map((r) => [r.idx, r.input, r.answer, r.finish])).toEqual([
      [0, 'France', 'Paris', 'stop'],
      [1, 'Peru', 'unknown', 'stop'],
    ]);
    expect(x.out.text).toBe('');
    expect(x.err.text).toContain(`Wrote 2 rows to ${out}.`);
    await expect(promptRunCommand(dataDir, o, io())).rejects.toThrow(
      `${out} already exists. Choose another name with -o, or add --force to replace it.`,
    );
  });

  it('says what is wrong with a template, a file or a missing model, in one sentence', async () => {
    const noSlot = file('noslot.txt', 'Q: Capital of India?\nA: Delhi\n');
    await expect(promptRunCommand(dataDir, runOpts({ template: noSlot }), io())).rejects.toThrow(
      /--template .*noslot\.txt: The template has no \{input\} slot/,
    );
    await expect(promptRunCommand(dataDir, runOpts({ labels: 'Positive' }), io())).rejects.toThrow(
      'A classifier needs at least two labels (got one: "Positive").',
    );
    await expect(promptRunCommand(dataDir, runOpts({ column: 'question' }), io())).rejects.toThrow(/"question"/);
    await expect(promptRunCommand(dataDir, runOpts({ model: undefined }), io())).rejects.toThrow(
      'Give the language model with --model',
    );
  });
});

describe('fstudio prompt explore', () => {
  it('prints the least stable inputs and accuracy across variants, raw and calibrated', async () => {
    const t = file(
      'explore.txt',
      'Input: a good film\nOutput: Positive\n\nInput: a bad film\nOutput: Negative\n\nInput: {input}\nOutput:\n',
    );
    const inputs = file('ex.csv', 'text,label\ngood movie,Positive\nbad movie,Negative\nfine movie,Positive\n');
    const x = io();
    const code = await promptExploreCommand(
      dataDir,
      {
        model: lm,
        template: t,
        labels: 'Positive|Negative',
        inputs,
        gold: 'label',
        permutations: 1,
        leaveOneOut: true,
        limit: 50,
      },
      x,
    );
    expect(code).toBe(0);
    const text = x.out.text;
    expect(text).toMatch(/4 variants x 3 inputs \(run \d+\)\./);
    // The same matrices as the service test: "fine movie" flips in half the raw variants; accuracy 5/6 ± 1/6.
    expect(text).toMatch(/^ {2}"fine movie" +50\.0% +1\.00 bits +Positive +0\.0% +Negative +Positive$/m);
    expect(text).toMatch(/^ {2}raw +83\.3% +16\.7% +66\.7% +100\.0%$/m);
    expect(text).toMatch(/^ {2}calibrated +66\.7% +0\.0% +66\.7% +66\.7%$/m);
    expect(text).toMatch(/^ {2}\(gold answers\) +66\.7% +33\.3%$/m);
  });
});

describe('fstudio prompt models', () => {
  it('saves from a template, lists, shows, exports, imports and deletes', async () => {
    const x = io();
    await promptModelsCommand(
      dataDir,
      'save',
      undefined,
      { name: 'Reviews', model: lm, template: sentimentTemplate(), labels: 'Positive|Negative' },
      x,
    );
    await promptModelsCommand(dataDir, 'list', undefined, {}, x);
    await promptModelsCommand(dataDir, 'show', 'Reviews@1', {}, x);
    const exported = path.join(root, 'reviews.json');
    await promptModelsCommand(dataDir, 'export', 'Reviews', { output: exported }, x);
    await promptModelsCommand(dataDir, 'import', exported, {}, x);
    await promptModelsCommand(dataDir, 'delete', 'Reviews', {}, x);
    expect(x.out.text).toContain('Saved Reviews as version 1.');
    expect(x.out.text).toMatch(/^Reviews +v1 +classify +.*my-lm +Positive\|Negative +1$/m);
    expect(x.out.text).toContain(
      'The prompt for an input "…":\nClassify each review.\n\nInput: a good film\nOutput: Positive\n\nInput: …\nOutput:',
    );
    expect(x.out.text).toContain('Imported Reviews as version 2.');
    expect(x.out.text).toContain('Deleted Reviews (2 versions).');
    // The run by the saved name.
    await promptModelsCommand(dataDir, 'import', exported, {}, x);
    const r = io();
    expect(
      await promptRunCommand(
        dataDir,
        { inputs: reviews(), column: 'text', promptModel: 'Reviews@1', format: 'jsonl' },
        r,
      ),
    ).toBe(0);
    expect(r.out.text.trim().split('\n')).toHaveLength(3);
  });
});

describe('the SDK', () => {
  it('answers questions with a template, and classifies with labels', async () => {
    const qa = createPromptModel({
      model: lm,
      prompt: 'Q: Capital of India?\nA: Delhi\n\nQ: {input}\nA:',
      dataDir: path.join(root, 'sdk'),
      computeWorker: fakeWorker,
    });
    const clf = createPromptModel({
      model: lm,
      prompt: 'Input: a good film\nOutput: Positive\n\nInput: {input}\nOutput:',
      labels: ['Positive', 'Negative'],
      dataDir: path.join(root, 'sdk2'),
      computeWorker: fakeWorker,
    });
    try {
      expect(await qa.run(['Capital of France?', 'Capital of Peru?'])).toEqual(['Paris', 'unknown']);
      expect(await clf.run(['a good day', 'a bad day', 'a day'])).toEqual(['Positive', 'Negative', 'Positive']);
      const { rows } = await clf.runRows(['a bad day']);
      const p = rows[0]!.output.task === 'classify' ? rows[0]!.output.probs.map((x) => x.raw) : [];
      const e = [Math.exp(-3), Math.exp(-1)];
      expect(p[1]).toBeCloseTo(e[1]! / (e[0]! + e[1]!), 12);
    } finally {
      await qa.close();
      await clf.close();
    }
    await expect(qa.run(['x'])).rejects.toThrow('This prompt model has been closed');
  });
});

describe('help', () => {
  it('exits 0 with examples for every prompt command', async () => {
    const commands = [
      ['prompt'],
      ['prompt', 'run'],
      ['prompt', 'explore'],
      ['prompt', 'models'],
      ['prompt', 'history'],
    ];
    const results = await Promise.all(commands.map((c) => fstudio([...c, '--help'])));
    results.forEach((r, i) => {
      const name = commands[i]!.join(' ');
      expect(r.code, `${name}: ${r.stderr}`).toBe(0);
      expect(r.stdout, name).toMatch(/^Usage: fstudio prompt/);
      expect(r.stdout, name).toContain('Examples:');
    });
  });
});
