// The `fstudio` CLI, spawned as a user would run it (bin/fstudio.js through tsx), on a
// temporary data folder with the real studio services behind it.
import { spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDataDir, resolveDataDir } from '../../../src/main/cli/data-dir.js';
import { bin, fstudio, repo } from './fstudio.js';

let root: string;
let dataDir: string;
let good: string;
let bad: string;

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'fstudio-cli-'));
  dataDir = path.join(root, 'data');
  good = path.join(root, 'red fox.png');
  bad = path.join(root, 'notes.png');
  await sharp({ create: { width: 16, height: 12, channels: 3, background: '#c33' } })
    .png()
    .toFile(good);
  writeFileSync(bad, 'this is not a PNG');
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('help', () => {
  it('exits 0 with examples for every command', async () => {
    const commands = [
      [],
      ['doctor'],
      ['serve'],
      ['import'],
      ['gallery'],
      ['gallery', 'list'],
      ['gallery', 'search'],
      ['gallery', 'export'],
    ];
    const results = await Promise.all(commands.map((c) => fstudio([...c, '--help'])));
    results.forEach((r, i) => {
      const name = commands[i]!.join(' ') || '(root)';
      expect(r.code, `${name}: ${r.stderr}`).toBe(0);
      expect(r.stdout, name).toMatch(/^Usage: fstudio/);
      expect(r.stdout, name).toContain('Examples:');
    });
  });

  it('refuses an unknown command and bad option values with one clear line', async () => {
    const unknown = await fstudio(['frobnicate']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/unknown command 'frobnicate'/);
    const limit = await fstudio(['--data-dir', dataDir, 'gallery', 'list', '--limit', '0']);
    expect(limit.code).toBe(1);
    expect(limit.stderr.trim()).toBe('fstudio: --limit must be a whole number from 1 to 500, not "0".');
    const kind = await fstudio(['--data-dir', dataDir, 'gallery', 'list', '--kind', 'photo']);
    expect(kind.code).toBe(1);
    expect(kind.stderr).toMatch(/--kind must be one of generate, prompt, classify, import/);
  });
});

describe('import and gallery', () => {
  it('imports a good file, reports the bad one, prints a summary and exits 1', async () => {
    const r = await fstudio(['--data-dir', dataDir, 'import', good, bad, path.join(root, 'missing.png')]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/Import finished: 1 imported, 1 failed \(2 files\)\. 1 path not found \(see above\)\./);
    expect(r.stderr).toContain(`failed: ${bad}:`);
    expect(r.stderr).toMatch(/Not found: .*missing\.png \(no such file or folder\): check the path\./);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack without --verbose
  });

  it('reports a re-import as a duplicate and exits 0, with --json a valid report', async () => {
    const r = await fstudio(['--data-dir', dataDir, 'import', good, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.imported).toHaveLength(0);
    expect(report.duplicates).toHaveLength(1);
    expect(r.stderr).toMatch(/1 already in the gallery/);
  });

  it('lists the gallery as valid JSON and as a table', async () => {
    const json = await fstudio(['--data-dir', dataDir, 'gallery', 'list', '--json']);
    expect(json.code, json.stderr).toBe(0);
    const page = JSON.parse(json.stdout);
    expect(page.total).toBe(1);
    expect(page.items[0]).toMatchObject({ kind: 'import', width: 16, height: 12 });
    const table = await fstudio(['--data-dir', dataDir, 'gallery', 'list']);
    expect(table.stdout).toMatch(/red fox\.png/);
    const favs = JSON.parse(
      (await fstudio(['--data-dir', dataDir, 'gallery', 'list', '--favourites', '--json'])).stdout,
    );
    expect(favs.total).toBe(0);
  });

  it('searches by file name', async () => {
    const hit = JSON.parse((await fstudio(['--data-dir', dataDir, 'gallery', 'search', 'fox', '--json'])).stdout);
    expect(hit.total).toBe(1);
    const miss = JSON.parse(
      (await fstudio(['--data-dir', dataDir, 'gallery', 'search', 'lighthouse', '--json'])).stdout,
    );
    expect(miss.total).toBe(0);
  });

  it('exports a PNG, refuses to overwrite it, and says when an id is unknown', async () => {
    const out = path.join(root, 'exported.png');
    const r = await fstudio(['--data-dir', dataDir, 'gallery', 'export', '1', '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(out).subarray(1, 4).toString()).toBe('PNG');
    const again = await fstudio(['--data-dir', dataDir, 'gallery', 'export', '1', '-o', out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists.*--force/);
    const nowhere = path.join(root, 'no', 'such', 'dir', 'x.png');
    const noDir = await fstudio(['--data-dir', dataDir, 'gallery', 'export', '1', '-o', nowhere]);
    expect(noDir.code).toBe(1);
    expect(noDir.stderr.trim()).toBe(
      `fstudio: cannot write ${nowhere}: the folder ${path.dirname(nowhere)} does not exist. ` +
        'Create it first, or choose another -o.',
    );
    const missing = await fstudio(['--data-dir', dataDir, 'gallery', 'export', '99']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^fstudio: No gallery item with id 99/);
  });

  it('walks folders: follows links to files, skips unsupported types and says so', async () => {
    const dir = path.join(root, 'walk');
    mkdirSync(path.join(dir, 'sub'), { recursive: true });
    await sharp({ create: { width: 8, height: 8, channels: 3, background: '#3c3' } })
      .png()
      .toFile(path.join(dir, 'sub', 'a.png'));
    await sharp({ create: { width: 8, height: 8, channels: 3, background: '#33c' } })
      .tiff()
      .toFile(path.join(dir, 'photo.tif'));
    writeFileSync(path.join(dir, 'pic.bmp'), 'BM not really');
    writeFileSync(path.join(dir, 'readme.txt'), 'not an image');
    symlinkSync(good, path.join(dir, 'link.png'));
    const data = path.join(root, 'walk-data');
    const r = await fstudio(['--data-dir', data, 'import', dir]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Skipped 2 files of unsupported types \(\.tif, \.bmp\)/);
    expect(r.stdout).toMatch(/Import finished: 2 imported, 0 failed \(2 files\)\./);
    // Named on the command line, an unsupported image is refused by its format.
    const tif = await fstudio(['--data-dir', data, 'import', path.join(dir, 'photo.tif')]);
    expect(tif.code).toBe(1);
    expect(tif.stderr).toMatch(/unsupported image format: TIFF \(photo\.tif\); supported: PNG, JPEG, WebP or GIF/);
  });

  it('says so and exits 1 when a folder holds no image to import', async () => {
    const dir = path.join(root, 'empty');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'readme.txt'), 'not an image');
    const r = await fstudio(['--data-dir', path.join(root, 'empty-data'), 'import', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`Nothing to import: no PNG, JPEG, WebP or GIF files in ${dir}.`);
  });

  it('uses FSTUDIO_DATA_DIR when --data-dir is absent', async () => {
    const r = await fstudio(['gallery', 'list', '--json'], { env: { FSTUDIO_DATA_DIR: dataDir } });
    expect(JSON.parse(r.stdout).total).toBe(1);
  });
});

describe('doctor', () => {
  it('prints a JSON report with every provider tried', async () => {
    const r = await fstudio(['--data-dir', dataDir, 'doctor', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.dataDir).toBe(dataDir);
    expect(info.providers.map((p: { name: string }) => p.name)).toContain('cpu');
    expect(info.providers.find((p: { name: string }) => p.name === 'cpu').available).toBe(true);
  });

  it('prints the data folder check: files missing from the data folder are listed, their items kept', async () => {
    const data = path.join(root, 'doctor-data');
    expect((await fstudio(['--data-dir', data, 'import', good])).code).toBe(0);
    renameSync(path.join(data, 'assets'), path.join(data, 'assets.away'));
    const r = await fstudio(['--data-dir', data, 'doctor']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /Data folder check\n {2}1 image file is missing from the data folder \(gallery item 1\): assets\//,
    );
    const json = JSON.parse((await fstudio(['--data-dir', data, 'doctor', '--json'])).stdout);
    expect(json.openReport.missingFiles).toHaveLength(1);
    renameSync(path.join(data, 'assets.away'), path.join(data, 'assets'));
    expect((await fstudio(['--data-dir', data, 'doctor'])).stdout).toMatch(/Data folder check\n {2}ok/);
  });

  it('refuses --provider without --gradcheck (exit 2) instead of ignoring it', async () => {
    const r = await fstudio(['--data-dir', dataDir, 'doctor', '--provider', 'cuda']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      'fstudio: --provider cuda applies only to --gradcheck (the report always tries every provider). ' +
        'Add --gradcheck, or leave out --provider.',
    );
    expect(r.stdout).toBe('');
  });

  it('runs the gradient check, or says plainly that it is not available yet (exit 2)', async () => {
    const gradcheck = path.join(repo, 'src/main/engine/graph/gradcheck.ts');
    const r = await fstudio(['--data-dir', dataDir, 'doctor', '--gradcheck', '--provider', 'cpu']);
    if (existsSync(gradcheck)) {
      expect([0, 1], r.stderr).toContain(r.code);
      expect(r.stdout).toMatch(/Gradient check on cpu/);
    } else {
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/gradient check is not available yet/);
    }
  });
});

describe('serve', () => {
  it('prints one URL line with the token, serves with it, and stops cleanly on SIGTERM', async () => {
    const web = path.join(root, 'web');
    rmSync(web, { recursive: true, force: true });
    mkdirSync(web);
    writeFileSync(path.join(web, 'index.html'), '<title>Foundation Studio</title>');
    const child = spawn(process.execPath, [bin, '--data-dir', dataDir, 'serve', '--no-open', '--web-root', web], {
      cwd: repo,
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
      child.on('close', () => reject(new Error(`serve exited early: ${stderr}`)));
    });
    const m = /^Foundation Studio is serving at http:\/\/127\.0\.0\.1:(\d+)\/\?token=([A-Za-z0-9_-]+)$/.exec(line);
    expect(m, line).not.toBeNull();
    const [, port, token] = m!;
    const status = (auth: string | null) =>
      new Promise<number>((resolve, reject) => {
        const headers: Record<string, string> = { 'Content-Type': 'application/json' };
        if (auth) headers.Authorization = `Bearer ${auth}`;
        const req = request(
          { host: '127.0.0.1', port: Number(port), path: '/api/getSettings', method: 'POST', headers },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end('{"args":{}}');
      });
    expect(await status(token!)).toBe(200);
    expect(await status(null)).toBe(401);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/Stopped\./);
  });

  it('warns in one line when the data folder check found something', async () => {
    const web = path.join(root, 'web2');
    mkdirSync(web, { recursive: true });
    writeFileSync(path.join(web, 'index.html'), '<title>Foundation Studio</title>');
    const data = path.join(root, 'serve-data');
    expect((await fstudio(['--data-dir', data, 'import', good])).code).toBe(0);
    rmSync(path.join(data, 'assets'), { recursive: true });
    const child = spawn(process.execPath, [bin, '--data-dir', data, 'serve', '--no-open', '--web-root', web], {
      cwd: repo,
    });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
        // The check of the data folder runs in the background: its warning comes when it is done.
        if (stderr.includes('Press Ctrl+C') && stderr.includes('fstudio doctor')) resolve();
      });
      child.on('close', () => reject(new Error(`serve exited early: ${stderr}`)));
    });
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const warnings = stderr.split('\n').filter((l) => l.startsWith('Warning:'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/^Warning: 1 image file is missing from the data folder .*Run `fstudio doctor`/);
  });

  it('says to run npm run build:web when the web UI is missing', async () => {
    const r = await fstudio(['--data-dir', dataDir, 'serve', '--no-open', '--web-root', path.join(root, 'nowhere')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/npm run build:web/);
  });
});

describe('data folder', () => {
  it('matches the folder Electron uses on each platform', () => {
    expect(defaultDataDir('linux', {}, '/home/ann')).toBe('/home/ann/.config/Foundation Studio');
    expect(defaultDataDir('linux', { XDG_CONFIG_HOME: '/cfg' }, '/home/ann')).toBe('/cfg/Foundation Studio');
    expect(defaultDataDir('darwin', {}, '/Users/ann')).toBe('/Users/ann/Library/Application Support/Foundation Studio');
    expect(defaultDataDir('win32', { APPDATA: 'C:\\Users\\ann\\AppData\\Roaming' }, 'C:\\Users\\ann')).toBe(
      'C:\\Users\\ann\\AppData\\Roaming\\Foundation Studio',
    );
    expect(resolveDataDir('rel', {})).toBe(path.resolve('rel'));
    expect(resolveDataDir(undefined, { FSTUDIO_DATA_DIR: '/x' })).toBe('/x');
  });
});
