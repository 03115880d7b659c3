// Classify through the studio with the tiny fixture CLIP: a folder (sub-folders, a symlink loop, hidden files,
// an unreadable PNG and a text file named .jpg) classified with the ImageNet-7 ensemble, checked against the
// same computation done here by hand (the model's text and image embeddings from StudioCompute's own
// paths, averaged and renormalised in this file, logit_scale read from the weights' bytes here); the run in
// the history and its search; CSV, copy, calibration, the explorer; gallery items tagged in place; bad input.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClassifyStartArgs, type CallName, type ClassifyRun } from '../../../src/shared/api.js';
import { dispatchCall } from '../../../src/main/api/dispatch.js';
import { RunnerSet } from '../../../src/main/engine/runtime/runner.js';
import { StudioCompute } from '../../../src/main/studio/compute.js';
import { openStudio, type StudioService } from '../../../src/main/studio/index.js';
import { ModelManager } from '../../../src/main/studio/models/manager.js';
import { withTinyModels } from '../../fixtures/tiny-models.js';

const root = mkdtempSync(path.join(tmpdir(), 'fstudio-classify-'));
const data = withTinyModels(path.join(root, 'data'));
const folder = path.join(root, 'holiday-photos');
let s: StudioService;

const LABELS = ['a photo of a red square', 'a photo of a green field'];
const IMAGENET7 = [
  'itap of a {}.',
  'a bad photo of the {}.',
  'a origami {}.',
  'a photo of the large {}.',
  'a {} in a video game.',
  'art of the {}.',
  'a photo of the small {}.',
];

async function png(file: string, rgb: [number, number, number], w = 30, h = 24): Promise<Buffer> {
  const b = await sharp({
    create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } },
  })
    .png()
    .toBuffer();
  writeFileSync(file, b);
  return b;
}

async function call<K extends CallName>(name: K, args: unknown) {
  const o = await dispatchCall(s.handlers, name, args);
  if (!o.ok) throw Object.assign(new Error(o.error.message), { name: o.error.name });
  return o.result as Awaited<ReturnType<StudioService['handlers'][K]>>;
}

async function untilEnded(runId: number): Promise<ClassifyRun> {
  for (let i = 0; i < 1200; i++) {
    const r = await call('classifyRun', { runId });
    if (r.state !== 'running') return r;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`run ${runId} did not end`);
}

/** logit_scale straight from the safetensors bytes: 8-byte header length, JSON header, little-endian f32. */
function logitScaleByHand(file: string): number {
  const b = readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString()) as Record<string, { data_offsets: [number, number] }>;
  return Math.min(100, Math.exp(b.readFloatLE(8 + n + header.logit_scale!.data_offsets[0])));
}

const unit = (v: ArrayLike<number>) => {
  let n = 0;
  for (let i = 0; i < v.length; i++) n += v[i]! * v[i]!;
  return Array.from(v, (x) => x / Math.sqrt(n));
};

beforeAll(async () => {
  mkdirSync(path.join(folder, 'day 2'), { recursive: true });
  await png(path.join(folder, 'red.png'), [230, 20, 20]);
  await png(path.join(folder, 'green.png'), [20, 200, 40], 24, 40);
  await png(path.join(folder, 'day 2', 'blue.png'), [20, 30, 220]);
  await png(path.join(folder, 'day 2', 'grey.png'), [128, 128, 128]);
  const whole = await png(path.join(root, 'x.png'), [10, 10, 10], 64, 64);
  writeFileSync(path.join(folder, 'day 2', 'truncated.png'), whole.subarray(0, Math.floor(whole.length / 2)));
  writeFileSync(path.join(folder, 'notes.jpg'), 'not a picture at all');
  writeFileSync(path.join(folder, '.hidden.png'), 'skipped: hidden');
  writeFileSync(path.join(folder, 'readme.txt'), 'not an image extension');
  symlinkSync('..', path.join(folder, 'day 2', 'loop'));
  s = await openStudio({ dataDir: data, runQueue: false, watchFolders: false });
});

afterAll(async () => {
  await s?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('classify a folder', () => {
  let run: ClassifyRun;

  it('classifies every readable image, skips and names the unreadable ones, and goes on', async () => {
    const started = await call('classifyStart', {
      labels: LABELS,
      templates: { set: 'imagenet7' },
      source: { folder },
      model: 'clip-tiny',
      provider: 'cpu',
      wordings: [['a picture of something red', 'a picture of something green']],
    });
    expect(started.images).toBe(6); // 4 pictures, the truncated PNG and notes.jpg; not .hidden, not readme.txt
    run = await untilEnded(started.runId);
    expect(run).toMatchObject({ state: 'done', error: null, images: 4, labels: LABELS, logitScaleSource: 'model' });
    expect(run.skipped.map((k) => path.basename(k.path)).sort()).toEqual(['notes.jpg', 'truncated.png']);
    const trunc = run.skipped.find((k) => k.path.endsWith('truncated.png'))!;
    expect(trunc.error).toMatch(/truncated or corrupt/);
    expect(run.skipped.find((k) => k.path.endsWith('notes.jpg'))!.error).toMatch(/is not a PNG, JPEG, WebP or GIF/);
  });

  it('gives the probabilities of the ensemble computed by hand', async () => {
    const { rows, total } = await call('classifyRows', { runId: run.runId, offset: 0, limit: 100 });
    expect(total).toBe(4);
    const files = rows.map((r) => r.path);
    expect(files.map((f) => path.relative(folder, f)).sort()).toEqual(
      ['day 2/blue.png', 'day 2/grey.png', 'green.png', 'red.png'].sort(),
    );
    const compute = new StudioCompute(new ModelManager(data), new RunnerSet());
    try {
      const texts = LABELS.flatMap((l) => IMAGENET7.map((t) => t.replace('{}', l)));
      const t = (await compute.embedTexts({ model: 'clip-tiny', provider: 'cpu', texts })).result.embeds;
      const im = (await compute.embedImages({ model: 'clip-tiny', provider: 'cpu', images: files })).result.embeds;
      const weights = LABELS.map((_, li) => {
        const mean = new Array<number>(t[0]!.length).fill(0);
        for (let k = 0; k < IMAGENET7.length; k++) unit(t[li * 7 + k]!).forEach((x, d) => (mean[d]! += x / 7));
        return unit(mean);
      });
      const scale = logitScaleByHand(path.join(data, 'models/clip-tiny/model.safetensors'));
      expect(run.logitScale).toBeCloseTo(scale, 4);
      rows.forEach((r, i) => {
        const u = unit(im[i]!);
        const logits = weights.map((w) => scale * w.reduce((a, x, d) => a + x * u[d]!, 0));
        const e = logits.map((x) => Math.exp(x - Math.max(...logits)));
        const p = e.map((x) => x / (e[0]! + e[1]!));
        expect(r.probs[0]).toBeCloseTo(p[0]!, 4);
        expect(r.probs[1]).toBeCloseTo(p[1]!, 4);
        expect(r.top).toBe(p[0]! >= p[1]! ? 0 : 1);
        expect(r.margin).toBeCloseTo(Math.abs(p[0]! - p[1]!), 4);
        expect(r.templateProbs).toHaveLength(7);
        // The "order reversed" variant names the same class as the labels as given: CLIP's softmax has no order.
        expect(r.variants[0]).toBe(r.top);
        expect(r.variants[2]).toBe(r.top);
      });
    } finally {
      await compute.runners.close();
    }
  });

  it('is in the history: kind classify, found by its folder name and its labels', async () => {
    const byFolder = await call('classifyRuns', { text: 'holiday' });
    expect(byFolder.map((r) => r.runId)).toContain(run.runId);
    const byLabel = await call('classifyRuns', { text: 'green field' });
    expect(byLabel.map((r) => r.runId)).toContain(run.runId);
    expect(await call('classifyRuns', { text: 'zebra' })).toEqual([]);
  });

  it('exports CSV with the threshold and the unsure band applied', async () => {
    const { rows } = await call('classifyRows', { runId: run.runId });
    const csv = await call('classifyExport', { runId: run.runId, decision: { threshold: 0, unsureBand: 0 } });
    expect(csv.name).toBe(`classify-${run.runId}.csv`);
    const lines = new TextDecoder().decode(csv.data).trimEnd().split('\r\n');
    expect(lines[0]).toBe(`path,label,unsure,margin,p(${LABELS[0]}),p(${LABELS[1]})`);
    expect(lines).toHaveLength(5);
    // threshold 0: every image is label 0.
    for (const l of lines.slice(1)) expect(l.split(',')[1]).toBe(LABELS[0]);
    const band = await call('classifyExport', { runId: run.runId, decision: { threshold: null, unsureBand: 1 } });
    for (const l of new TextDecoder().decode(band.data).trimEnd().split('\r\n').slice(1)) {
      expect(l.split(',')[2]).toBe('true');
    }
    const first = lines.find((l) => l.startsWith(rows[0]!.path))!.split(',');
    expect(Number(first[4])).toBeCloseTo(rows[0]!.probs[0]!, 6);
  });

  it('fits the threshold to marked images', async () => {
    const { rows } = await call('classifyRows', { runId: run.runId });
    const sorted = [...rows].sort((a, b) => a.probs[0]! - b.probs[0]!);
    // Mark the two highest p0 as label 0 and the two lowest as label 1: the threshold falls between them.
    const marks = sorted.map((r, i) => ({ idx: r.idx, label: i >= 2 ? 0 : 1 }));
    const c = await call('classifyCalibrate', { runId: run.runId, marks });
    expect(c.accuracy).toBe(1);
    expect(c.threshold).toBeCloseTo((sorted[1]!.probs[0]! + sorted[2]!.probs[0]!) / 2, 9);
    await expect(
      call('classifyCalibrate', { runId: run.runId, marks: marks.map((m) => ({ ...m, label: 0 })) }),
    ).rejects.toThrow(/at least one image as each label/);
  });

  it('copies the images by label into the exports folder', async () => {
    const { rows } = await call('classifyRows', { runId: run.runId });
    const r = await call('classifyCopy', { runId: run.runId });
    expect(r.folder).toBe(path.join(data, 'exports', `classify-${run.runId}`));
    expect(r.copied).toBe(4);
    for (const [i, label] of LABELS.entries()) {
      const want = rows
        .filter((x) => x.top === i)
        .map((x) => path.basename(x.path))
        .sort();
      const dir = path.join(r.folder, label);
      expect(want.length ? readdirSync(dir).sort() : []).toEqual(want);
    }
  });

  it('explores the wordings: shares per wording, flips per image', async () => {
    const e = await call('classifyExplore', { runId: run.runId });
    expect(e.variants.map((v) => v.name)).toEqual(['as given', 'wording 2', 'order reversed']);
    for (const v of e.variants) expect(v.shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    expect(e.variants[2]!.shares).toEqual(e.variants[0]!.shares);
    const { rows } = await call('classifyRows', { runId: run.runId });
    for (const p of e.perImage) {
      const v = rows.find((r) => r.idx === p.idx)!.variants;
      const agree = v.filter((x) => x === v[0]).length;
      expect(p.flipRate).toBeCloseTo(1 - Math.max(agree, 3 - agree) / 3, 9);
    }
  });
});

describe('cancel', () => {
  it('stops between batches: the run is cancelled with the rows done so far, the job says so', async () => {
    const many = path.join(root, 'many');
    mkdirSync(many);
    const one = await png(path.join(root, 'one.png'), [90, 90, 200]);
    for (let i = 0; i < 400; i++) writeFileSync(path.join(many, `p${String(i).padStart(3, '0')}.png`), one);
    const started = await call('classifyStart', {
      labels: LABELS,
      source: { folder: many },
      model: 'clip-tiny',
      provider: 'cpu',
    });
    expect(await call('jobCancel', { jobId: started.jobId })).toEqual({ cancelled: true });
    const run = await untilEnded(started.runId);
    expect(run.state).toBe('cancelled');
    const { total } = await call('classifyRows', { runId: run.runId });
    expect(total).toBe(run.images);
    expect(total).toBeLessThan(400);
    const [job] = await call('jobList', { ids: [started.jobId] });
    expect(job).toMatchObject({ state: 'cancelled', kind: 'classify', runId: run.runId });
  });
});

describe('closing the studio mid-run', () => {
  it('stops the work without an unhandled error; the next open marks the run failed', async () => {
    const dir = withTinyModels(path.join(root, 'closing'));
    const many = path.join(root, 'many-close');
    mkdirSync(many);
    const one = await png(path.join(root, 'one-close.png'), [90, 200, 90]);
    for (let i = 0; i < 300; i++) writeFileSync(path.join(many, `q${i}.png`), one);
    const rejections: unknown[] = [];
    const onRejection = (e: unknown) => rejections.push(e);
    process.on('unhandledRejection', onRejection);
    try {
      const first = await openStudio({ dataDir: dir, runQueue: false, watchFolders: false });
      const { runId } = await first.handlers.classifyStart(
        ClassifyStartArgs.parse({ labels: LABELS, source: { folder: many }, model: 'clip-tiny', provider: 'cpu' }),
      );
      await first.close();
      await new Promise((r) => setTimeout(r, 500));
      const again = await openStudio({ dataDir: dir, runQueue: false, watchFolders: false });
      try {
        const run = await again.handlers.classifyRun({ runId });
        expect(run.state).toBe('failed');
        expect(run.error).toMatch(/interrupted/);
      } finally {
        await again.close();
      }
      expect(rejections).toEqual([]);
    } finally {
      process.off('unhandledRejection', onRejection);
    }
  });
});

describe('bad input', () => {
  it('one label: refused, saying to give two', async () => {
    await expect(call('classifyStart', { labels: ['is photoshopped'], source: { folder } })).rejects.toThrow(
      /at least two labels/,
    );
  });

  it('an empty folder: refused at once, nothing recorded', async () => {
    const empty = path.join(root, 'empty');
    mkdirSync(path.join(empty, 'sub'), { recursive: true });
    writeFileSync(path.join(empty, 'sub', 'a.txt'), 'x');
    const before = (await call('classifyRuns', {})).length;
    await expect(
      call('classifyStart', { labels: LABELS, source: { folder: empty }, model: 'clip-tiny' }),
    ).rejects.toThrow(/holds no images .* Choose a folder with images/);
    await expect(
      call('classifyStart', { labels: LABELS, source: { folder: path.join(root, 'nope') }, model: 'clip-tiny' }),
    ).rejects.toThrow(/no such folder/);
    await expect(call('classifyStart', { labels: LABELS, source: { folder }, model: 'no-such-clip' })).rejects.toThrow(
      /no-such-clip/,
    );
    expect((await call('classifyRuns', {})).length).toBe(before);
  });

  it('a template without {}: refused with the line and what to write', async () => {
    await expect(call('classifyParseTemplates', { text: 'a photo of a {}.\nno slot here\n' })).rejects.toThrow(
      /line 2: "no slot here" has no \{\}/,
    );
    await expect(
      call('classifyStart', { labels: LABELS, templates: { custom: ['no slot'] }, source: { folder } }),
    ).rejects.toThrow(/needs \{\} where the label goes/);
  });
});

describe('gallery items', () => {
  it('are classified in place and tagged with their label, their own tags kept', async () => {
    const red = readFileSync(path.join(folder, 'red.png'));
    const green = readFileSync(path.join(folder, 'green.png'));
    const rep = await s.handlers.importImages({
      files: [
        { name: 'g-red.png', data: new Uint8Array(red) },
        { name: 'g-green.png', data: new Uint8Array(green) },
      ],
    });
    const ids = rep.imported.map((i) => i.id);
    await s.handlers.setTags({ id: ids[0]!, tags: ['mine'] });
    const started = await call('classifyStart', {
      labels: LABELS,
      source: { gallery: {} },
      model: 'clip-tiny',
      provider: 'cpu',
    });
    const run = await untilEnded(started.runId);
    expect(run.state).toBe('done');
    const { rows } = await call('classifyRows', { runId: run.runId });
    expect(rows.map((r) => r.itemId).sort()).toEqual([...ids].sort());
    for (const r of rows) {
      const item = await s.handlers.getItem({ id: r.itemId! });
      const want = [...(r.itemId === ids[0] ? ['mine'] : []), LABELS[r.top]!];
      expect([...item.tags].sort()).toEqual(want.sort());
    }
    // Threshold 0 calls every item label 0: the tags move; the user's own tag stays.
    expect((await call('classifyTag', { runId: run.runId, decision: { threshold: 0, unsureBand: 0 } })).tagged).toBe(2);
    for (const id of ids) {
      const item = await s.handlers.getItem({ id });
      expect([...item.tags].sort()).toEqual(id === ids[0] ? [LABELS[0], 'mine'].sort() : [LABELS[0]]);
    }
    await expect(call('classifyCopy', { runId: run.runId })).rejects.toThrow(/tag them instead/);
  });
});
