// Fetches what npm packages cannot ship, without ever failing `npm install`:
//  - onnxruntime-node's CUDA provider files (Linux x64 only; NuGet). package.json's
//    allowScripts denies onnxruntime-node's own script (npm 11+) because it aborts the
//    whole install when NuGet is unreachable; this runs the same download and only warns;
//  - better-sqlite3 built for Electron, beside the Node build npm installed (see
//    ensureElectronSqlite and docs/building.md); the desktop app run from this checkout loads it;
//  - nothing for Electron itself: it is an optional dependency, so npm drops it (with a
//    warning) when its binary cannot be downloaded, and `npm start` then says so.
// scripts/start.js imports the Electron parts; run as a script, this does the fetching.
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

function warn(msg) {
  process.stderr.write(`\n[foundation-studio] ${msg}\n`);
}

/** The line of a failed command's output that says why (its first error line), else its exit. */
function whyFailed(r) {
  const lines = `${r.stderr || ''}\n${r.stdout || ''}`.split('\n').map((l) => l.trim());
  const line =
    lines.find((l) => /Error:/.test(l)) ??
    lines.find((l) => /ERR!|Error/.test(l)) ??
    lines.find((l) => /\bwarn\b/i.test(l));
  return line || r.error?.message || `exit code ${r.status ?? r.signal}`;
}

function fetchOrtCuda() {
  if (`${process.platform}/${process.arch}` !== 'linux/x64') return;
  if (process.env.FSTUDIO_SKIP_CUDA === '1') return;
  let ortDir;
  try {
    ortDir = path.dirname(require.resolve('onnxruntime-node/package.json'));
  } catch {
    return;
  }
  const cudaLib = path.join(ortDir, 'bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so');
  if (existsSync(cudaLib)) return;
  const env = { ...process.env, ONNXRUNTIME_NODE_INSTALL: '1' };
  // '1' forces the download; without it the script exits early when run from a project root.
  delete env.npm_config_onnxruntime_node_install;
  const r = spawnSync(process.execPath, [path.join(ortDir, 'script/install.js')], {
    cwd: ortDir,
    env,
    encoding: 'utf8',
    timeout: 10 * 60 * 1000,
  });
  if (r.status !== 0) {
    warn(
      'Could not download the CUDA execution provider for onnxruntime-node ' +
        `(${whyFailed(r)}).\n` +
        '  CPU and WebGPU still work. With the internet and CUDA 12 + cuDNN 9 installed, run ' +
        '`node scripts/postinstall.js` to fetch it later.',
    );
  }
}

function checkElectron() {
  try {
    require.resolve('electron/package.json');
  } catch {
    warn(
      'Electron was not installed (its binary could not be downloaded). `npm start` will serve ' +
        'the studio in your browser instead; re-run `npm install` with the internet to get the desktop app.',
    );
  }
}

// ---- better-sqlite3 for Electron ----
// better-sqlite3 is compiled against one V8 ABI (it does not use Node-API), and `npm install` builds it
// for the Node that ran npm: the CLI, the server and the tests need that one in build/Release. The
// desktop app run from this checkout (`npm start`) needs Electron's, which goes beside it, named as
// better-sqlite3's prebuilt binaries are; src/main/studio/history-binding.ts picks it inside Electron.

/** Where the Electron build lives (the same path as electronBindingFile in history-binding.ts). */
export function electronSqliteFile(sqliteDir, abi, platform = process.platform, arch = process.arch) {
  return path.join(sqliteDir, 'build', `electron-v${abi}-${platform}-${arch}`, 'better_sqlite3.node');
}

/** better-sqlite3's package folder. */
export function sqlitePackageDir() {
  return path.dirname(require.resolve('better-sqlite3/package.json'));
}

/** The JS file of a package's command, resolved from `fromDir` (run with this Node: no .cmd shims). */
export function packageBin(fromDir, pkg, name = pkg) {
  const pkgJson = createRequire(path.join(fromDir, 'package.json')).resolve(`${pkg}/package.json`);
  const bin = JSON.parse(readFileSync(pkgJson, 'utf8')).bin;
  return path.join(path.dirname(pkgJson), typeof bin === 'string' ? bin : bin[name]);
}

/**
 * The installed Electron: `{ binary, version, abi }`, or null when the package or its binary (which
 * the package's own install step downloads) is missing. The ABI comes from the package's abi_version
 * file, else from node-abi (prebuild-install's, which maps Electron versions to ABIs).
 */
export function installedElectron(req = require) {
  let binary, pkgFile;
  try {
    pkgFile = req.resolve('electron/package.json');
    // The package exports the path of the binary it downloaded; it throws when that failed.
    binary = req('electron');
  } catch {
    return null;
  }
  if (typeof binary !== 'string' || !existsSync(binary)) return null;
  const version = JSON.parse(readFileSync(pkgFile, 'utf8')).version;
  let abi = null;
  try {
    abi = readFileSync(path.join(path.dirname(pkgFile), 'abi_version'), 'utf8').trim();
  } catch {
    try {
      const prebuild = createRequire(packageBin(sqlitePackageDir(), 'prebuild-install'));
      abi = prebuild('node-abi').getAbi(version, 'electron');
    } catch {
      // Left null: ensureElectronSqlite says so.
    }
  }
  return { binary, version, abi };
}

/** npm's own node-gyp (npm names it to install scripts), else one in node_modules, else null. */
function findNodeGyp(env) {
  if (env.npm_config_node_gyp && existsSync(env.npm_config_node_gyp)) return env.npm_config_node_gyp;
  try {
    return packageBin(path.dirname(fileURLToPath(import.meta.url)), 'node-gyp');
  } catch {
    return null;
  }
}

/**
 * Makes sure better-sqlite3's Electron build is in place (build/Release is never touched), the way
 * better-sqlite3's own install does it: prebuild-install's download of the prebuilt binary for this
 * Electron, else node-gyp against Electron's headers. Both run in a temporary copy of the package,
 * the result is loaded by Electron itself (as Node: ELECTRON_RUN_AS_NODE) before it is moved into
 * place, and nothing is done when the file is already there.
 *
 * `electron`: installedElectron()'s answer. `spawn`: spawnSync's signature (the tests pass their own).
 * Returns `{ ok, how: 'present' | 'prebuilt' | 'compiled' | undefined, file, failures: string[] }`.
 */
export function ensureElectronSqlite({
  electron,
  sqliteDir = sqlitePackageDir(),
  platform = process.platform,
  arch = process.arch,
  spawn = spawnSync,
  env = process.env,
  tmpDir = os.tmpdir(),
  nodeGyp = findNodeGyp(env),
}) {
  if (!electron.abi) {
    return { ok: false, file: null, failures: [`the ABI of Electron ${electron.version} is not known here`] };
  }
  const file = electronSqliteFile(sqliteDir, electron.abi, platform, arch);
  if (existsSync(file)) return { ok: true, how: 'present', file, failures: [] };

  const failures = [];
  let work = null;
  try {
    // The root project's npm metadata would tell prebuild-install that better-sqlite3 came from git.
    const childEnv = { ...env };
    delete childEnv.npm_package_from;
    delete childEnv.npm_package_resolved;
    const attempts = [
      {
        step: 'download',
        how: 'prebuilt',
        command: () => [
          packageBin(sqliteDir, 'prebuild-install'),
          ...['--runtime', 'electron', '--target', electron.version, '--arch', arch, '--platform', platform],
        ],
        timeout: 5 * 60 * 1000,
      },
      {
        step: 'compile',
        how: 'compiled',
        command: () => {
          if (!nodeGyp) throw new Error('node-gyp was not found');
          return [
            nodeGyp,
            'rebuild',
            '--release',
            `--target=${electron.version}`,
            `--arch=${arch}`,
            '--dist-url=https://electronjs.org/headers',
            '--runtime=electron',
            // Electron's headers apart from Node's (as @electron/rebuild keeps them).
            `--devdir=${path.join(os.homedir(), '.electron-gyp')}`,
          ];
        },
        timeout: 15 * 60 * 1000,
      },
    ];
    work = mkdtempSync(path.join(tmpDir, 'fstudio-sqlite-'));
    const copy = path.join(work, 'better-sqlite3');
    cpSync(sqliteDir, copy, {
      recursive: true,
      filter: (src) => !['build', 'node_modules'].includes(path.relative(sqliteDir, src)),
    });
    const built = path.join(copy, 'build', 'Release', 'better_sqlite3.node');
    for (const { step, how, command, timeout } of attempts) {
      let args;
      try {
        args = command();
      } catch (e) {
        failures.push(`${step}: ${firstLine(e)}`);
        continue;
      }
      rmSync(path.join(copy, 'build'), { recursive: true, force: true });
      const r = spawn(process.execPath, args, { cwd: copy, env: childEnv, encoding: 'utf8', timeout });
      if (r.status !== 0) {
        failures.push(`${step}: ${whyFailed(r)}`);
        continue;
      }
      if (!existsSync(built)) {
        failures.push(`${step}: it left no build/Release/better_sqlite3.node`);
        continue;
      }
      const check = loadsInElectron(electron, sqliteDir, built, spawn, childEnv);
      if (check.status !== 0) {
        failures.push(`${step}: the result does not load in Electron (${whyFailed(check)})`);
        continue;
      }
      mkdirSync(path.dirname(file), { recursive: true });
      const part = `${file}.${process.pid}.part`;
      copyFileSync(built, part);
      renameSync(part, file);
      return { ok: true, how, file, failures };
    }
  } catch (e) {
    failures.push(firstLine(e));
  } finally {
    if (work) rmSync(work, { recursive: true, force: true });
  }
  return { ok: false, file, failures };
}

function firstLine(e) {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}

/** Runs Electron as Node to open an in-memory database with `binding`; status 0 when it works. */
function loadsInElectron(electron, sqliteDir, binding, spawn, env) {
  const script =
    `if (process.versions.modules !== ${JSON.stringify(electron.abi)}) ` +
    `throw new Error('ABI ' + process.versions.modules + ', expected ${electron.abi}');\n` +
    `new (require(${JSON.stringify(sqliteDir)}))(':memory:', { nativeBinding: ${JSON.stringify(binding)} }).close();`;
  return spawn(electron.binary, ['-e', script], {
    env: { ...env, ELECTRON_RUN_AS_NODE: '1' },
    encoding: 'utf8',
    timeout: 60 * 1000,
  });
}

/** What a missing Electron build means, and how to get it. */
export function electronSqliteWarning(electron, result) {
  return (
    `better-sqlite3 has no build for Electron ${electron.version} here ` +
    `(${result.failures.join('; ') || 'unknown error'}).\n` +
    '  Without it the desktop app cannot open its data folder, so `npm start` serves the studio in your\n' +
    '  browser instead. To fetch it, run `node scripts/postinstall.js` with the internet (to compile it\n' +
    '  instead: Python 3 and a C++ toolchain). The CLI, the server and the tests are not affected.'
  );
}

function fetchElectronSqlite() {
  const electron = installedElectron();
  if (!electron) return;
  const result = ensureElectronSqlite({ electron });
  if (!result.ok) warn(electronSqliteWarning(electron, result));
  else if (result.how !== 'present') {
    process.stderr.write(`[foundation-studio] better-sqlite3 for Electron ${electron.version}: ${result.file}\n`);
  }
}

/** Whether the module at `moduleUrl` (its import.meta.url) is the script node was started with. */
export function isEntryScript(moduleUrl) {
  try {
    return realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}

if (isEntryScript(import.meta.url)) {
  for (const step of [fetchOrtCuda, checkElectron, fetchElectronSqlite]) {
    try {
      step();
    } catch (e) {
      warn(`postinstall step skipped: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}
