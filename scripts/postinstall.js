// Fetches what npm packages cannot ship, without ever failing `npm install`:
//  - onnxruntime-node's CUDA provider files (Linux x64 only; NuGet). package.json's
//    allowScripts denies onnxruntime-node's own script (npm 11+) because it aborts the
//    whole install when NuGet is unreachable; this runs the same download and only warns;
//  - nothing for Electron: it is an optional dependency, so npm drops it (with a
//    warning) when its binary cannot be downloaded, and `npm start` then says so.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);

function warn(msg) {
  process.stderr.write(`\n[foundation-studio] ${msg}\n`);
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
    const why = `${r.stderr || ''}${r.stdout || ''}`
      .trim()
      .split('\n')
      .find((l) => /Error/.test(l))
      ?.trim();
    warn(
      'Could not download the CUDA execution provider for onnxruntime-node ' +
        `(${why || r.error?.message || 'unknown error'}).\n` +
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

try {
  fetchOrtCuda();
  checkElectron();
} catch (e) {
  warn(`postinstall step skipped: ${e instanceof Error ? e.message : String(e)}`);
}
