// `fstudio import` given things that are not image files: devices, FIFOs, files over the size
// limit, names that are not UTF-8. Each is refused (or imported) by name, and the files after it
// are still imported. A command that hangs is killed, so an old bug fails instead of blocking.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_IMPORT_FILE_BYTES } from '../../../src/main/server/server.js';
import { fstudio } from './fstudio.js';

const TIMEOUT_MS = 15_000;

let root: string;
let good: string;
let png: Buffer;
let runs = 0;

/** `fstudio import args...` on a fresh data folder, killed after TIMEOUT_MS. */
async function importInto(...args: string[]) {
  const r = await fstudio(['--data-dir', path.join(root, `data-${++runs}`), 'import', ...args], {
    timeoutMs: TIMEOUT_MS,
  });
  expect(r.timedOut, `fstudio import hung:\n${r.stderr}`).toBe(false);
  return r;
}

function mkfifo(p: string): void {
  execFileSync('mkfifo', [p]);
}

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'fstudio-import-files-'));
  good = path.join(root, 'good.png');
  png = await sharp({ create: { width: 8, height: 6, channels: 3, background: '#c33' } })
    .png()
    .toBuffer();
  writeFileSync(good, png);
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('fstudio import refuses what is not a regular file', () => {
  it('skips a symbolic link to /dev/zero by name and imports the next file', async () => {
    const zero = path.join(root, 'zero.png');
    symlinkSync('/dev/zero', zero);
    const r = await importInto(zero, good);
    expect(r.stderr).toContain(`failed: ${zero}: a symbolic link to a character device, not a regular file: skipped.`);
    expect(r.stdout).toMatch(/Import finished: 1 imported, 1 failed \(2 files\)\./);
    expect(r.code).toBe(1);
  });

  it('skips a FIFO by name without waiting for a writer, and imports the next file', async () => {
    const fifo = path.join(root, 'pipe.png');
    mkfifo(fifo);
    const r = await importInto(fifo, good);
    expect(r.stderr).toContain(`failed: ${fifo}: a FIFO (named pipe), not a regular file: skipped.`);
    expect(r.stdout).toMatch(/Import finished: 1 imported, 1 failed \(2 files\)\./);
  });

  it('reports a FIFO and a link to a device inside a folder, and imports the rest', async () => {
    const dir = path.join(root, 'with-fifo');
    mkdirSync(dir);
    mkfifo(path.join(dir, 'a-pipe.png'));
    symlinkSync('/dev/zero', path.join(dir, 'b-zero.jpg'));
    mkfifo(path.join(dir, 'not-an-image')); // no image's name: passed over like any other file
    writeFileSync(path.join(dir, 'c.png'), png);
    const other = path.join(root, 'other.png');
    await sharp({ create: { width: 8, height: 6, channels: 3, background: '#3c3' } })
      .png()
      .toFile(other);
    const r = await importInto(dir, other);
    expect(r.stderr).toContain(`failed: ${path.join(dir, 'a-pipe.png')}: a FIFO (named pipe), not a regular file`);
    expect(r.stderr).toContain(
      `failed: ${path.join(dir, 'b-zero.jpg')}: a symbolic link to a character device, not a regular file`,
    );
    expect(r.stderr).not.toContain('not-an-image');
    expect(r.stdout).toMatch(/Import finished: 2 imported, 2 failed \(4 files\)\./);
  });

  it('refuses a file over the size limit by name, before reading it, and imports the next file', async () => {
    const big = path.join(root, 'huge.png');
    writeFileSync(big, png);
    truncateSync(big, MAX_IMPORT_FILE_BYTES + 1); // sparse: no disk used
    const r = await importInto(big, good);
    expect(r.stderr).toContain(`failed: ${big}: 256.0 MiB, over the 256 MiB one image may have: skipped.`);
    expect(r.stdout).toMatch(/Import finished: 1 imported, 1 failed \(2 files\)\./);
  });
});

describe('fstudio import and names that are not UTF-8', () => {
  // 'f\xff.png': 0xff never occurs in UTF-8.
  const rawName = Buffer.from([0x66, 0xff, 0x2e, 0x70, 0x6e, 0x67]);

  it('imports such a file found in a folder, and says its name is shown with U+FFFD', async () => {
    const dir = path.join(root, 'latin1');
    mkdirSync(dir);
    writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), rawName]), png);
    // A folder with such a name, holding a file with a plain one.
    const sub = Buffer.concat([Buffer.from(`${dir}/sub`), Buffer.from([0xff])]);
    mkdirSync(sub);
    writeFileSync(
      Buffer.concat([sub, Buffer.from('/plain.png')]),
      await sharp({ create: { width: 4, height: 4, channels: 3, background: '#33c' } })
        .png()
        .toBuffer(),
    );
    const data = path.join(root, 'latin1-data');
    const r = await fstudio(['--data-dir', data, 'import', dir], { timeoutMs: TIMEOUT_MS });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Import finished: 2 imported, 0 failed \(2 files\)\./);
    expect(r.stderr).toContain(`note: ${dir}/sub\uFFFD/plain.png: this path is not valid UTF-8`);
    expect(r.stderr).toContain(
      `note: ${dir}/f\uFFFD.png: this path is not valid UTF-8 (shown with \uFFFD in place of the bytes that are not); ` +
        'it is imported as "f\uFFFD.png".',
    );
    const list = await fstudio(['--data-dir', data, 'gallery', 'list', '--json']);
    expect(JSON.parse(list.stdout).items).toContainEqual(
      expect.objectContaining({
        kind: 'import',
        title: 'f\uFFFD.png',
        width: 8,
        height: 6,
      }),
    );
  });

  it('says why such a name given on the command line cannot be found', async () => {
    const dir = path.join(root, 'latin1-arg');
    mkdirSync(dir);
    writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), rawName]), png);
    // The command line only carries UTF-8: the byte 0xff arrives as U+FFFD, which names no file.
    const given = path.join(dir, 'f\uFFFD.png');
    const r = await importInto(given, good);
    expect(r.stderr).toContain(`failed: ${given}: no such file; its name has bytes that are not valid UTF-8`);
    expect(r.stderr).toMatch(/Name the folder that holds it instead\./);
    expect(r.stdout).toMatch(/Import finished: 1 imported, 1 failed \(2 files\)\./);
  });
});
