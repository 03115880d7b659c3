// Walking a folder for Classify: recursive, image extensions only, hidden entries skipped, symbolic links
// followed once (a loop ends), a bounded count with a message that says what to do, a file or a missing path
// refused in words.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { walkImages } from '../../../src/main/studio/classify/folder.js';

const root = mkdtempSync(path.join(tmpdir(), 'fstudio-walk-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('walkImages', () => {
  it('finds images in sub-folders once, through links, past a loop', async () => {
    const top = path.join(root, 'top');
    mkdirSync(path.join(top, 'a', 'b'), { recursive: true });
    mkdirSync(path.join(root, 'elsewhere'));
    for (const f of ['x.PNG', 'a/y.jpg', 'a/b/z.webp', 'a/notes.txt', '.hidden.png', 'a/b/anim.gif'])
      writeFileSync(path.join(top, f), 'bytes');
    writeFileSync(path.join(root, 'elsewhere', 'linked.jpeg'), 'bytes');
    symlinkSync(path.join(root, 'elsewhere'), path.join(top, 'a', 'outside'));
    symlinkSync(top, path.join(top, 'a', 'b', 'back-to-top'));
    symlinkSync(path.join(root, 'nothing-here'), path.join(top, 'dangling.png'));
    const w = await walkImages(top, { max: 100 });
    expect(w.files.map((f) => path.relative(top, f))).toEqual(
      ['a/b/anim.gif', 'a/b/z.webp', 'a/outside/linked.jpeg', 'a/y.jpg', 'x.PNG'].sort(),
    );
    expect(w.unreadable).toEqual([]);
  });

  it('stops past the limit, saying what to do', async () => {
    const many = path.join(root, 'many');
    mkdirSync(many);
    for (let i = 0; i < 5; i++) writeFileSync(path.join(many, `${i}.png`), 'x');
    await expect(walkImages(many, { max: 4 })).rejects.toThrow(/holds more than 4 images\. Choose a sub-folder/);
  });

  it('refuses a file and a missing path in words', async () => {
    const f = path.join(root, 'file.png');
    writeFileSync(f, 'x');
    await expect(walkImages(f, { max: 10 })).rejects.toThrow(/is a file, not a folder/);
    await expect(walkImages(path.join(root, 'gone'), { max: 10 })).rejects.toThrow(/no such folder\. Check the path/);
  });
});
