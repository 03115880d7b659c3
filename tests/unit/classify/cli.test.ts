// `fstudio classify` as a user runs it: JSON with each image's path and every label's probability, CSV, a
// template file, --copy-to; and the refusals: one label, a template file without {}, an empty folder.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTinyModels } from '../../fixtures/tiny-models.js';
import { fstudio } from '../cli/fstudio.js';

const root = mkdtempSync(path.join(tmpdir(), 'fstudio-classify-cli-'));
const data = withTinyModels(path.join(root, 'data'));
const dir = path.join(root, 'pics');
const common = ['--data-dir', data, 'classify', '--model', 'clip-tiny', '--provider', 'cpu'];

beforeAll(async () => {
  mkdirSync(path.join(dir, 'more'), { recursive: true });
  const make = (f: string, r: number, g: number) =>
    sharp({ create: { width: 24, height: 24, channels: 3, background: { r, g, b: 40 } } })
      .png()
      .toFile(f);
  await make(path.join(dir, 'a.png'), 240, 10);
  await make(path.join(dir, 'more', 'b.png'), 10, 240);
  writeFileSync(path.join(dir, 'broken.webp'), 'RIFF....WEBPVP8 garbage');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('fstudio classify', () => {
  it('--json: each image with the probability of every label; unreadable files named on stderr', async () => {
    const r = await fstudio([...common, '--labels', 'is red|is green', '--json', dir], { timeoutMs: 120_000 });
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as {
      runId: number;
      results: { path: string; label: string; probs: Record<string, number> }[];
      skipped: { path: string; error: string }[];
    };
    expect(out.results.map((x) => path.relative(dir, x.path)).sort()).toEqual(['a.png', 'more/b.png']);
    for (const x of out.results) {
      expect(Object.keys(x.probs)).toEqual(['is red', 'is green']);
      expect(x.probs['is red']! + x.probs['is green']!).toBeCloseTo(1, 5);
      expect(x.label).toBe(x.probs['is red']! >= x.probs['is green']! ? 'is red' : 'is green');
    }
    expect(out.skipped.map((k) => path.basename(k.path))).toEqual(['broken.webp']);
    expect(r.stderr).toMatch(/skipped: .*broken\.webp is truncated or corrupt and cannot be decoded/);
    expect(r.stderr).toMatch(new RegExp(`run ${out.runId}: 2 images classified, 1 skipped`));
  });

  it('--csv with a template file, and --copy-to sorts the files by label', async () => {
    const tpl = path.join(root, 'mine.txt');
    writeFileSync(tpl, '# my templates\na photo that {}\nsomething that {}\n');
    const sorted = path.join(root, 'sorted');
    const r = await fstudio(
      [...common, '--labels', 'is red|is green', '--templates', tpl, '--csv', '--copy-to', sorted, dir],
      { timeoutMs: 120_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\r\n');
    expect(lines[0]).toBe('path,label,unsure,margin,p(is red),p(is green)');
    expect(lines).toHaveLength(3);
    const copied = readdirSync(sorted).flatMap((l) => readdirSync(path.join(sorted, l)).map((f) => `${l}/${f}`));
    const want = lines.slice(1).map((l) => `${l.split(',')[1]}/${path.basename(l.split(',')[0]!)}`);
    expect(copied.sort()).toEqual(want.sort());
  });

  it('refuses one label, a template file without {}, and an empty folder, saying what to do', async () => {
    const one = await fstudio([...common, '--labels', 'is photoshopped', dir]);
    expect(one.code).toBe(2);
    expect(one.stderr).toMatch(/--labels needs at least two labels joined by \|/);
    const tpl = path.join(root, 'bad.txt');
    writeFileSync(tpl, 'a photo of a {}.\na photo\n');
    const bad = await fstudio([...common, '--labels', 'a|b', '--templates', tpl, dir]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/bad\.txt, line 2: "a photo" has no \{\} where the label goes/);
    const empty = path.join(root, 'empty');
    mkdirSync(empty);
    const none = await fstudio([...common, '--labels', 'a|b', empty], { timeoutMs: 60_000 });
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/holds no images .*Choose a folder with images/);
  });
});
