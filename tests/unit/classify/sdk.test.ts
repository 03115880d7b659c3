// The TypeScript API: createClipClassifier({ labels }).run(images) on files and on a folder, the run in the
// history of the data folder it opened; one label refused.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { createClipClassifier } from '../../../src/main/sdk/classify.js';
import { openStudio } from '../../../src/main/studio/index.js';
import { withTinyModels } from '../../fixtures/tiny-models.js';

const root = mkdtempSync(path.join(tmpdir(), 'fstudio-classify-sdk-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('createClipClassifier', () => {
  it('classifies files and folders; each run is in the history', async () => {
    const data = withTinyModels(path.join(root, 'data'));
    const pics = path.join(root, 'pics');
    mkdirSync(pics);
    const files = [path.join(pics, 'a.png'), path.join(pics, 'b.png')];
    for (const [i, f] of files.entries()) {
      await sharp({ create: { width: 24, height: 24, channels: 3, background: { r: 200 * i, g: 100, b: 50 } } })
        .png()
        .toFile(f);
    }
    const clf = createClipClassifier({
      labels: ['is photoshopped', 'is not photoshopped'],
      model: 'clip-tiny',
      provider: 'cpu',
      dataDir: data,
    });
    let runIds: number[];
    try {
      const one = await clf.run(files);
      expect(one.results.map((r) => r.path)).toEqual(files);
      for (const r of one.results) {
        const p = r.probs;
        expect(p['is photoshopped']! + p['is not photoshopped']!).toBeCloseTo(1, 5);
        expect(r.margin).toBeCloseTo(Math.abs(p['is photoshopped']! - p['is not photoshopped']!), 5);
      }
      const two = await clf.run(pics);
      expect(two.results.map((r) => r.probs)).toEqual(one.results.map((r) => r.probs));
      runIds = [one.runId, two.runId];
    } finally {
      await clf.close();
    }
    const s = await openStudio({ dataDir: data, runQueue: false, watchFolders: false });
    try {
      const runs = await s.handlers.classifyRuns({ limit: 10 });
      expect(runs.map((r) => r.runId).sort()).toEqual(runIds.sort());
      expect(runs.every((r) => r.state === 'done')).toBe(true);
    } finally {
      await s.close();
    }
  });

  it('refuses one label', async () => {
    const clf = createClipClassifier({ labels: ['alone'], dataDir: withTinyModels(path.join(root, 'd2')) });
    try {
      await expect(clf.run([path.join(root, 'x.png')])).rejects.toThrow(/at least two labels/);
    } finally {
      await clf.close();
    }
  });
});
