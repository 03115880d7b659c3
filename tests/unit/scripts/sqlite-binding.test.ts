// better-sqlite3's two builds: the Node one npm installs (build/Release) and the Electron one that
// scripts/postinstall.js puts beside it, which src/main/studio/history-binding.ts picks inside
// Electron. The download itself needs the internet and the check in Electron needs its binary,
// neither of which this machine has: the spawner is injected (its command lines asserted), and one
// test runs the real prebuild-install offline from a local prebuilt archive, with this Node standing
// in for Electron.
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createGzip } from 'node:zlib';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  electronBindingFile,
  sqliteBindingOptions,
  type BindingRuntime,
} from '../../../src/main/studio/history-binding.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const require = createRequire(join(repo, 'package.json'));
const realSqliteDir = dirname(require.resolve('better-sqlite3/package.json'));
const nodeBuild = join(realSqliteDir, 'build/Release/better_sqlite3.node');

// scripts/ is plain JavaScript (it runs before anything is built): its exports, as the tests use them.
interface Electron {
  binary: string;
  version: string;
  abi: string | null;
}
interface SpawnResult {
  status: number | null;
  stdout?: string;
  stderr?: string;
}
interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
}
type Spawn = (command: string, args: string[], options: SpawnOptions) => SpawnResult;
interface EnsureResult {
  ok: boolean;
  how?: 'present' | 'prebuilt' | 'compiled';
  file: string | null;
  failures: string[];
}
interface Postinstall {
  electronSqliteFile(dir: string, abi: string, platform?: string, arch?: string): string;
  installedElectron(req: NodeJS.Require): Electron | null;
  ensureElectronSqlite(opts: {
    electron: Electron;
    sqliteDir?: string;
    platform?: string;
    arch?: string;
    spawn?: Spawn;
    env?: Record<string, string | undefined>;
    tmpDir?: string;
    nodeGyp?: string | null;
  }): EnsureResult;
  electronSqliteWarning(electron: Electron, result: EnsureResult): string;
}
interface Start {
  desktopBlocker(
    electron: Electron | null,
    opts: { ensure: Postinstall['ensureElectronSqlite']; sqliteDir: string },
  ): string | null;
}
const postinstall = (await import(pathToFileURL(join(repo, 'scripts/postinstall.js')).href)) as Postinstall;
const start = (await import(pathToFileURL(join(repo, 'scripts/start.js')).href)) as Start;

const temps: string[] = [];
function tempDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `fs-sqlite-${name}-`));
  temps.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/**
 * A better-sqlite3 package in a node_modules of its own (its package.json and lib/, the real ones; a
 * marker as its build/Release) with prebuild-install linked in, so that nothing is written into the
 * project's node_modules.
 */
function fakeInstall(): { sqliteDir: string; release: string; tmp: string } {
  const root = tempDir('install');
  const sqliteDir = join(root, 'node_modules/better-sqlite3');
  mkdirSync(join(sqliteDir, 'build/Release'), { recursive: true });
  copyFileSync(join(realSqliteDir, 'package.json'), join(sqliteDir, 'package.json'));
  cpSync(join(realSqliteDir, 'lib'), join(sqliteDir, 'lib'), { recursive: true });
  const release = join(sqliteDir, 'build/Release/better_sqlite3.node');
  writeFileSync(release, 'the Node build');
  const prebuild = dirname(createRequire(join(realSqliteDir, 'package.json')).resolve('prebuild-install/package.json'));
  symlinkSync(prebuild, join(root, 'node_modules/prebuild-install'), 'junction');
  return { sqliteDir, release, tmp: tempDir('work') };
}

const electron: Electron = { binary: '/opt/electron/electron', version: '39.2.0', abi: '140' };
const prebuildBin = realpathSync(
  join(dirname(createRequire(join(realSqliteDir, 'package.json')).resolve('prebuild-install/package.json')), 'bin.js'),
);

/** A spawner that answers each command by its kind and records what it was asked to run. */
function fakeSpawn(answers: {
  prebuild: (cwd: string) => SpawnResult;
  gyp?: (cwd: string) => SpawnResult;
  check?: () => SpawnResult;
}) {
  const calls: { command: string; args: string[]; options: SpawnOptions; copyHadBuild: boolean }[] = [];
  const spawn = vi.fn<Spawn>((command, args, options) => {
    const cwd = options.cwd ?? '';
    calls.push({ command, args, options, copyHadBuild: cwd !== '' && existsSync(join(cwd, 'build')) });
    if (command === electron.binary) return answers.check?.() ?? { status: 0 };
    if (args.includes('rebuild')) return answers.gyp?.(cwd) ?? { status: 1, stderr: 'gyp ERR! not ok' };
    return answers.prebuild(cwd);
  });
  return { spawn, calls };
}

function writeBuilt(cwd: string, content: string): SpawnResult {
  mkdirSync(join(cwd, 'build/Release'), { recursive: true });
  writeFileSync(join(cwd, 'build/Release/better_sqlite3.node'), content);
  return { status: 0 };
}

describe('sqliteBindingOptions (history-binding.ts)', () => {
  const dir = join('/x', 'node_modules', 'better-sqlite3');
  const electronFile = join(dir, 'build', 'electron-v140-linux-x64', 'better_sqlite3.node');
  const runtime = (modules: string, exists: (f: string) => boolean, packageDir = dir): BindingRuntime => ({
    versions: { modules },
    platform: 'linux',
    arch: 'x64',
    packageDir: () => packageDir,
    exists,
  });

  it('is {} in this Node, and the Node build opens a database with it', () => {
    expect(sqliteBindingOptions()).toEqual({});
    const db = new Database(':memory:', sqliteBindingOptions());
    expect(db.pragma('user_version', { simple: true })).toBe(0);
    db.close();
  });

  it("names the Electron build in Electron when it is there, by Electron's ABI", () => {
    expect(sqliteBindingOptions(runtime('140', (f) => f === electronFile))).toEqual({ nativeBinding: electronFile });
  });

  it('is {} in Electron when the Electron build is missing', () => {
    expect(sqliteBindingOptions(runtime('140', () => false))).toEqual({});
  });

  it('never hands Node (another ABI) the Electron build, even when it is there', () => {
    expect(sqliteBindingOptions(runtime('115', (f) => f === electronFile))).toEqual({});
  });

  it('is {} in a packaged app (build/Release rebuilt for Electron), whatever lies beside it', () => {
    for (const packaged of [
      '/opt/Foundation Studio/resources/app.asar/node_modules/better-sqlite3',
      'C:\\Program Files\\Foundation Studio\\resources\\app.asar\\node_modules\\better-sqlite3',
    ]) {
      expect(sqliteBindingOptions(runtime('140', () => true, packaged))).toEqual({});
    }
  });

  it('looks where scripts/postinstall.js puts it', () => {
    for (const [abi, platform, arch] of [
      ['140', 'linux', 'x64'],
      ['140', 'darwin', 'arm64'],
      ['143', 'win32', 'x64'],
    ] as const) {
      const file = electronBindingFile(dir, abi, platform, arch);
      expect(postinstall.electronSqliteFile(dir, abi, platform, arch)).toBe(file);
      expect(relative(dir, file).split(/[\\/]/)[1]).toBe(`electron-v${abi}-${platform}-${arch}`);
    }
  });
});

describe('installedElectron (postinstall.js)', () => {
  function fakeRequire(pkgFile: string | null, binary: string): NodeJS.Require {
    const req = (() => binary) as unknown as NodeJS.Require;
    req.resolve = (() => {
      if (pkgFile === null) throw new Error("Cannot find module 'electron/package.json'");
      return pkgFile;
    }) as unknown as NodeJS.Require['resolve'];
    return req;
  }

  it('is null without the package or without its binary', () => {
    expect(postinstall.installedElectron(fakeRequire(null, ''))).toBeNull();
    const dir = tempDir('electron');
    writeFileSync(join(dir, 'package.json'), '{"version":"39.2.0"}');
    expect(
      postinstall.installedElectron(fakeRequire(join(dir, 'package.json'), join(dir, 'dist/electron'))),
    ).toBeNull();
  });

  it("reads the version and the package's ABI", () => {
    const dir = tempDir('electron');
    writeFileSync(join(dir, 'package.json'), '{"version":"39.2.0"}');
    writeFileSync(join(dir, 'abi_version'), '140\n');
    writeFileSync(join(dir, 'electron'), '');
    expect(postinstall.installedElectron(fakeRequire(join(dir, 'package.json'), join(dir, 'electron')))).toEqual({
      binary: join(dir, 'electron'),
      version: '39.2.0',
      abi: '140',
    });
  });
});

describe('ensureElectronSqlite (postinstall.js)', () => {
  const common = { electron, platform: 'linux', arch: 'x64', env: { PATH: process.env.PATH } };
  const ensureIn = (
    at: { sqliteDir: string; tmp: string },
    spawn: Spawn,
    nodeGyp: string | null = '/npm/node-gyp.js',
  ) => postinstall.ensureElectronSqlite({ ...common, sqliteDir: at.sqliteDir, tmpDir: at.tmp, spawn, nodeGyp });

  it('does nothing when the Electron build for this ABI is already there', () => {
    const { sqliteDir, tmp } = fakeInstall();
    const file = postinstall.electronSqliteFile(sqliteDir, '140', 'linux', 'x64');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, 'fetched before');
    const { spawn } = fakeSpawn({ prebuild: () => ({ status: 0 }) });
    expect(postinstall.ensureElectronSqlite({ ...common, sqliteDir, spawn, tmpDir: tmp })).toEqual({
      ok: true,
      how: 'present',
      file,
      failures: [],
    });
    expect(spawn).not.toHaveBeenCalled();
    // Another Electron ABI is another file: that one is fetched.
    const other = fakeSpawn({ prebuild: (cwd) => writeBuilt(cwd, 'abi 143') });
    const r = postinstall.ensureElectronSqlite({
      ...common,
      electron: { ...electron, version: '40.0.0', abi: '143' },
      sqliteDir,
      spawn: other.spawn,
      tmpDir: tmp,
    });
    expect(r).toMatchObject({ ok: true, how: 'prebuilt' });
    expect(r.file).not.toBe(file);
    expect(readFileSync(r.file!, 'utf8')).toBe('abi 143');
    expect(readFileSync(file, 'utf8')).toBe('fetched before');
  });

  it('downloads with prebuild-install for Electron in a copy of the package, checks it in Electron, moves it in place', () => {
    const at = fakeInstall();
    const { sqliteDir, release, tmp } = at;
    const { spawn, calls } = fakeSpawn({ prebuild: (cwd) => writeBuilt(cwd, 'the Electron build') });
    const r = ensureIn(at, spawn);

    const file = join(sqliteDir, 'build/electron-v140-linux-x64/better_sqlite3.node');
    expect(r).toEqual({ ok: true, how: 'prebuilt', file, failures: [] });
    expect(readFileSync(file, 'utf8')).toBe('the Electron build');
    expect(readFileSync(release, 'utf8')).toBe('the Node build');
    expect(calls).toHaveLength(2);

    const [download, check] = calls;
    expect(download!.command).toBe(process.execPath);
    expect([realpathSync(download!.args[0]!), ...download!.args.slice(1)]).toEqual([
      prebuildBin,
      ...['--runtime', 'electron', '--target', '39.2.0', '--arch', 'x64', '--platform', 'linux'],
    ]);
    // A copy under the temporary folder, without the real package's build/.
    const cwd = download!.options.cwd!;
    expect(relative(tmp, cwd).startsWith('..')).toBe(false);
    expect(download!.copyHadBuild).toBe(false);

    expect(check!.command).toBe(electron.binary);
    expect(check!.args[0]).toBe('-e');
    expect(check!.args[1]).toContain(JSON.stringify(join(cwd, 'build/Release/better_sqlite3.node')));
    expect(check!.args[1]).toContain(JSON.stringify(sqliteDir));
    expect(check!.options.env?.ELECTRON_RUN_AS_NODE).toBe('1');
    // The temporary copy is gone.
    expect(readdirSync(tmp)).toEqual([]);
  });

  it("compiles with node-gyp against Electron's headers when there is no prebuilt binary", () => {
    const at = fakeInstall();
    const { spawn, calls } = fakeSpawn({
      prebuild: () => ({
        status: 1,
        stderr:
          'prebuild-install info begin Prebuild-install version 7.1.3\n' +
          'prebuild-install warn install No prebuilt binaries found (target=39.2.0 runtime=electron arch=x64 libc= platform=linux)\n',
      }),
      gyp: (cwd) => writeBuilt(cwd, 'compiled for Electron'),
    });
    const r = ensureIn(at, spawn);
    expect(r).toMatchObject({ ok: true, how: 'compiled' });
    expect(r.failures).toEqual([
      'download: prebuild-install warn install No prebuilt binaries found (target=39.2.0 runtime=electron arch=x64 libc= platform=linux)',
    ]);
    expect(readFileSync(r.file!, 'utf8')).toBe('compiled for Electron');
    const gyp = calls[1]!;
    expect(gyp.command).toBe(process.execPath);
    expect(gyp.args.slice(0, 3)).toEqual(['/npm/node-gyp.js', 'rebuild', '--release']);
    expect(gyp.args).toEqual(
      expect.arrayContaining([
        '--target=39.2.0',
        '--arch=x64',
        '--dist-url=https://electronjs.org/headers',
        '--runtime=electron',
      ]),
    );
    expect(gyp.options.cwd).toBe(calls[0]!.options.cwd);
    expect(gyp.copyHadBuild).toBe(false);
  });

  it('installs nothing that does not load in Electron', () => {
    const at = fakeInstall();
    const { spawn } = fakeSpawn({
      prebuild: (cwd) => writeBuilt(cwd, 'wrong ABI'),
      check: () => ({
        status: 1,
        stderr: 'Error: The module was compiled against a different Node.js version using NODE_MODULE_VERSION 115.\n',
      }),
    });
    const r = ensureIn(at, spawn, null);
    expect(r.ok).toBe(false);
    expect(existsSync(r.file!)).toBe(false);
    expect(r.failures).toEqual([
      'download: the result does not load in Electron (Error: The module was compiled against a different Node.js version using NODE_MODULE_VERSION 115.)',
      'compile: node-gyp was not found',
    ]);
  });

  it('says what a failure means and how to retry', () => {
    const at = fakeInstall();
    const { tmp } = at;
    const { spawn, calls } = fakeSpawn({
      prebuild: () => ({ status: 1, stderr: 'prebuild-install warn install getaddrinfo ENOTFOUND github.com\n' }),
      gyp: () => ({ status: 1, stderr: 'gyp ERR! configure error\ngyp ERR! stack Error: connect ETIMEDOUT\n' }),
    });
    const r = ensureIn(at, spawn);
    expect(r.ok).toBe(false);
    expect(calls).toHaveLength(2);
    expect(existsSync(r.file!)).toBe(false);
    expect(readdirSync(tmp)).toEqual([]);
    const warning = postinstall.electronSqliteWarning(electron, r);
    expect(warning).toContain('getaddrinfo ENOTFOUND github.com');
    expect(warning).toContain('gyp ERR! stack Error: connect ETIMEDOUT');
    expect(warning).toContain('cannot open its data folder');
    expect(warning).toContain('browser');
    expect(warning).toContain('`node scripts/postinstall.js`');
  });

  it('runs the real prebuild-install for Electron (offline, from a local prebuilt archive)', async () => {
    const { sqliteDir, release, tmp } = fakeInstall();
    // The archive prebuild-install looks for: better-sqlite3's name and version, Electron 39's ABI (140),
    // this platform and CPU. Inside, the Node build stands in for Electron's, so that this Node (standing
    // in for Electron, with its own ABI) can check that it loads.
    const version = (JSON.parse(readFileSync(join(realSqliteDir, 'package.json'), 'utf8')) as { version: string })
      .version;
    const prebuilds = tempDir('prebuilds');
    const staging = join(tempDir('staging'), 'build/Release');
    mkdirSync(staging, { recursive: true });
    copyFileSync(nodeBuild, join(staging, 'better_sqlite3.node'));
    const tarFs = createRequire(prebuildBin)('tar-fs') as {
      pack(dir: string): NodeJS.ReadableStream;
    };
    await pipeline(
      tarFs.pack(dirname(dirname(staging))),
      createGzip(),
      createWriteStream(
        join(prebuilds, `better-sqlite3-v${version}-electron-v140-${process.platform}-${process.arch}.tar.gz`),
      ),
    );

    const standIn: Electron = { binary: process.execPath, version: '39.2.0', abi: process.versions.modules };
    const calls: string[][] = [];
    const r = postinstall.ensureElectronSqlite({
      electron: standIn,
      sqliteDir,
      env: { ...process.env, npm_config_better_sqlite3_local_prebuilds: prebuilds },
      tmpDir: tmp,
      nodeGyp: null,
      spawn: (command, args, options) => {
        calls.push([command, ...args]);
        return spawnSync(command, args, { ...options, encoding: 'utf8' });
      },
    });
    expect(r.failures).toEqual([]);
    expect(r).toMatchObject({ ok: true, how: 'prebuilt' });
    expect(r.file).toBe(postinstall.electronSqliteFile(sqliteDir, process.versions.modules));
    expect(readFileSync(r.file!).equals(readFileSync(nodeBuild))).toBe(true);
    expect(readFileSync(release, 'utf8')).toBe('the Node build');
    expect(calls.map((c) => c[0])).toEqual([process.execPath, process.execPath]);
    expect(calls[0]!.slice(2)).toEqual([
      '--runtime',
      'electron',
      '--target',
      '39.2.0',
      '--arch',
      process.arch,
      '--platform',
      process.platform,
    ]);
  });
});

describe('desktopBlocker (start.js)', () => {
  const fetched: EnsureResult = { ok: true, how: 'prebuilt', file: 'x', failures: [] };

  it('blocks the window without the Electron binary, and fetches nothing', () => {
    const ensure = vi.fn(() => fetched);
    expect(start.desktopBlocker(null, { ensure, sqliteDir: realSqliteDir })).toMatch(
      /Electron binary is not installed/,
    );
    expect(ensure).not.toHaveBeenCalled();
  });

  it('lets the window open when the Electron build is there', () => {
    const { sqliteDir } = fakeInstall();
    const file = postinstall.electronSqliteFile(sqliteDir, '140');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, '');
    const ensure = vi.fn(() => fetched);
    expect(start.desktopBlocker(electron, { ensure, sqliteDir })).toBeNull();
    expect(ensure).not.toHaveBeenCalled();
  });

  it('fetches a missing Electron build once, and opens the window only if that worked', () => {
    const { sqliteDir } = fakeInstall();
    const ok = vi.fn(() => fetched);
    expect(start.desktopBlocker(electron, { ensure: ok, sqliteDir })).toBeNull();
    expect(ok).toHaveBeenCalledTimes(1);
    expect(ok).toHaveBeenCalledWith({ electron, sqliteDir });

    const failed = vi.fn(() => ({ ok: false, file: null, failures: ['download: offline'] }));
    const blocker = start.desktopBlocker(electron, { ensure: failed, sqliteDir });
    expect(failed).toHaveBeenCalledTimes(1);
    expect(blocker).toContain('download: offline');
    expect(blocker).toContain('browser');
  });
});
