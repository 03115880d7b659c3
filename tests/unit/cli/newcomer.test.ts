// What a new user of the `fstudio` CLI meets: --version, `gallery show` with the prompt and every
// parameter, a path that is not there said as missing, errors that speak of the CLI, an export that
// says what it carries, a doctor without Dawn's native warnings, and `serve` on the same link after a
// restart (the kept token, the same port).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { A1111_SAMPLE, makePng } from '../../fixtures/images.js';
import { bin, fstudio, repo } from './fstudio.js';

let root: string;
let dataDir: string;
let castle: string;

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'fstudio-newcomer-'));
  dataDir = path.join(root, 'data');
  castle = path.join(root, '00012-1234567890.png');
  writeFileSync(castle, await makePng({ seed: 5, text: { parameters: A1111_SAMPLE } }));
  const r = await fstudio(['--data-dir', dataDir, 'import', castle]);
  expect(r.code, r.stderr).toBe(0);
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('the CLI for a newcomer', () => {
  it('prints its version', async () => {
    const version = (JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-V']) {
      const r = await fstudio([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout.trim()).toBe(version);
    }
  });

  it('shows an item with its prompt and every parameter, as text and as JSON', async () => {
    const r = await fstudio(['--data-dir', dataDir, 'gallery', 'show', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Kind +Imported$/m);
    expect(r.stdout).toMatch(/^Made with +AUTOMATIC1111$/m);
    expect(r.stdout).toContain('Prompt\n  a castle on a hill, (masterpiece:1.2), golden hour');
    expect(r.stdout).toContain('Negative prompt\n  blurry, lowres');
    const lines = r.stdout.split('\n').map((l) => l.trim().replace(/ {2,}/g, ' | '));
    for (const row of [
      'Steps | 20',
      'Sampler | DPM++ 2M Karras',
      'CFG scale | 7',
      'Seed | 1234567890',
      'Size | 512x768',
      'Model | v1-5-pruned-emaonly',
      'Lora hashes | detail: 1a2b3c, style: 4d5e6f',
    ])
      expect(lines).toContain(row);
    const json = JSON.parse((await fstudio(['--data-dir', dataDir, 'gallery', 'show', '1', '--json'])).stdout) as {
      metadata: { parameters: Record<string, string> };
    };
    expect(json.metadata.parameters.Seed).toBe('1234567890');
  });

  it('speaks of the CLI when an id is wrong', async () => {
    for (const cmd of [['show'], ['export']]) {
      const r = await fstudio(['--data-dir', dataDir, 'gallery', ...cmd, '99']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/No gallery item with id 99: it may have been deleted\. `fstudio gallery list` shows/);
      expect(r.stderr).not.toMatch(/Refresh|gallery page/i);
    }
  });

  it('says a missing path is missing, not that a file failed to import', async () => {
    const missing = path.join(root, 'no-such-folder');
    const r = await fstudio(['--data-dir', dataDir, 'import', missing]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`Not found: ${missing} (no such file or folder): check the path.`);
    expect(r.stdout).not.toMatch(/imported|failed/);
    // Beside a file that imports, it is said once, apart from the files.
    const other = path.join(root, 'other.png');
    writeFileSync(other, await makePng({ seed: 6 }));
    const both = await fstudio(['--data-dir', dataDir, 'import', missing, other]);
    expect(both.stdout.trim()).toBe('Import finished: 1 imported, 0 failed (1 file). 1 path not found (see above).');
    expect(both.stderr.match(/Not found/g)).toHaveLength(1);
  });

  it('says which metadata an export carries', async () => {
    const r = await fstudio(['--data-dir', dataDir, 'gallery', 'export', '1', '-o', path.join(root, 'a.png')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('It carries the prompt, the negative prompt and the generation parameters.');
  });

  it('keeps Dawn’s native warnings out of the doctor’s report', async () => {
    const r = await fstudio(['--data-dir', dataDir, 'doctor']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toMatch(/artificially reduced/);
    expect(r.stdout).toMatch(/^ {2}cpu +available/m);
    // Where WebGPU runs only in software, the report says so once, in words.
    if (/^ {2}webgpu +software/m.test(r.stdout))
      expect(r.stdout.match(/WebGPU runs in software here/g)).toHaveLength(1);
  });

  it('serves on the same link after a restart, and --new-token changes it', async () => {
    const web = path.join(root, 'web');
    mkdirSync(web, { recursive: true });
    writeFileSync(path.join(web, 'index.html'), '<title>Foundation Studio</title>');
    const serveOnce = async (...extra: string[]) => {
      const child = spawn(
        process.execPath,
        [bin, '--data-dir', dataDir, 'serve', '--no-open', '--web-root', web, ...extra],
        {
          cwd: repo,
        },
      );
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((ok) => child.on('close', ok));
      const link = await new Promise<string>((ok, fail) => {
        let out = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          const m = /serving at (\S+)/.exec(out);
          if (m) ok(m[1]!);
        });
        child.on('close', () => fail(new Error(`serve exited early: ${stderr}`)));
      });
      await new Promise((ok) => setTimeout(ok, 200)); // the lines after the link
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      return { link, stderr };
    };
    const first = await serveOnce();
    // The default port, or (taken on this machine) the next one, said so.
    const port = Number(new URL(first.link).port);
    if (port !== 8765) expect(first.stderr).toContain('Port 8765 is taken');
    const token = readFileSync(path.join(dataDir, 'server-token'), 'utf8').trim();
    expect(first.link).toBe(`http://127.0.0.1:${port}/?token=${token}`);
    expect((await serveOnce()).link).toBe(first.link);
    const rotated = await serveOnce('--new-token');
    expect(rotated.link).not.toBe(first.link);
    expect(rotated.stderr).toContain('New token written to');
  });
});
