// What Prompt Lab and Classify keep (lab-store.ts, migration 6): versioned prompt-made models, the rows of a
// run, and the history search over runs of every kind.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { History } from '../../../src/main/studio/history.js';
import { LabStore } from '../../../src/main/studio/lab-store.js';

let dir: string;
let history: History;
let lab: LabStore;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'fstudio-lab-'));
  history = History.open(path.join(dir, 'history.db'));
  lab = new LabStore(history);
});
afterEach(() => {
  history.close();
  rmSync(dir, { recursive: true, force: true });
});

const run = (kind: 'generate' | 'prompt' | 'classify' | 'import', title: string, createdAt: number) =>
  history.insertRun({ kind, title, spec: {}, provenance: {}, createdAt });

describe('prompt-made models', () => {
  it('numbers versions per name and lists the latest of each', () => {
    expect(lab.saveModel('Sentiment', { v: 'a' }, 1)).toMatchObject({ name: 'Sentiment', version: 1 });
    expect(lab.saveModel(' Sentiment ', { v: 'b' }, 2)).toMatchObject({ name: 'Sentiment', version: 2 });
    lab.saveModel('Capitals', { v: 'c' }, 3);
    expect(lab.models().map((m) => [m.name, m.version, m.spec])).toEqual([
      ['Capitals', 1, { v: 'c' }],
      ['Sentiment', 2, { v: 'b' }],
    ]);
    expect(lab.model('Sentiment', 1)?.spec).toEqual({ v: 'a' });
    expect(lab.modelVersions('Sentiment').map((m) => m.version)).toEqual([2, 1]);
    expect(lab.deleteModel('Sentiment')).toBe(2);
    expect(lab.model('Sentiment')).toBeNull();
    expect(() => lab.saveModel('   ', {}, 4)).toThrow(/1 to 200 characters/);
  });
});

describe('run rows', () => {
  it('keeps rows in input order, pages them and goes with the run', () => {
    const id = run('prompt', 'p', 1);
    lab.appendRows(id, [
      { idx: 1, input: 'b', output: { label: 'Negative' } },
      { idx: 0, input: 'a', output: { label: 'Positive' } },
    ]);
    lab.appendRows(id, [{ idx: 2, input: 'c', output: null }]);
    expect(lab.rowCount(id)).toBe(3);
    expect(lab.rows(id).map((r) => r.input)).toEqual(['a', 'b', 'c']);
    expect(lab.rows(id, { offset: 1, limit: 1 })).toEqual([{ idx: 1, input: 'b', output: { label: 'Negative' } }]);
    expect([...lab.iterateRows(id)].map((r) => r.idx)).toEqual([0, 1, 2]);
    history.deleteRun(id);
    expect(lab.rowCount(id)).toBe(0);
  });
});

describe('the history search', () => {
  it('finds lab runs by their indexed text and other runs by their title, newest first, per kind', () => {
    const g = run('generate', 'a lighthouse at 100% dusk', 1);
    const p = run('prompt', 'Sentiment v2 over reviews.csv', 2);
    const c = run('classify', 'photoshopped? 12 images', 3);
    lab.indexRun(p, 'Sentiment v2 over reviews.csv', 'smollm2 Positive Negative reviews.csv');
    lab.indexRun(c, 'photoshopped? 12 images', 'is photoshopped | is not photoshopped holiday-photos');
    const ids = (q: Parameters<LabStore['searchRuns']>[0]) => lab.searchRuns(q).map((r) => r.id);
    expect(ids({})).toEqual([c, p, g]);
    expect(ids({ text: 'negat' })).toEqual([p]); // a prefix of an indexed word
    expect(ids({ text: 'holiday photos' })).toEqual([c]);
    expect(ids({ text: 'lighthouse' })).toEqual([g]);
    expect(ids({ text: '100%' })).toEqual([g]); // LIKE's wildcards are taken literally
    expect(ids({ text: '0%d' })).toEqual([]);
    expect(ids({ kinds: ['prompt', 'classify'] })).toEqual([c, p]);
    expect(ids({ limit: 1, offset: 1 })).toEqual([p]);
    // Indexing again replaces the text.
    lab.indexRun(p, 'Sentiment v3', 'qwen');
    expect(ids({ text: 'smollm2' })).toEqual([]);
    expect(ids({ text: 'qwen' })).toEqual([p]);
  });

  it('counts rows for lab runs', () => {
    const p = run('prompt', 'x', 1);
    lab.appendRows(p, [
      { idx: 0, input: 'a', output: 1 },
      { idx: 1, input: 'b', output: 2 },
    ]);
    expect(lab.searchRuns({})[0]).toMatchObject({ id: p, count: 2, imageId: null });
  });
});
