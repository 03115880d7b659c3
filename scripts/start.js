#!/usr/bin/env node
// `npm start`: the desktop app when the Electron binary is installed; otherwise the same UI
// served to the browser by `fstudio serve`. Plain JavaScript, so it runs before anything is built.
// Extra arguments go to `fstudio serve` in the browser case (e.g. `npm start -- --port 8765`).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(path.join(root, 'package.json'));

function say(message) {
  process.stderr.write(`[foundation-studio] ${message}\n`);
}

/** The JS entry of a package's command, run with this Node (no .cmd shims on Windows). */
function binOf(pkg, name) {
  const pkgJson = require.resolve(`${pkg}/package.json`);
  const bin = JSON.parse(readFileSync(pkgJson, 'utf8')).bin;
  return path.join(path.dirname(pkgJson), typeof bin === 'string' ? bin : bin[name]);
}

function runStep(label, args) {
  say(`${label}...`);
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    say(`${label} failed (exit code ${r.status ?? r.signal}). See the messages above.`);
    process.exit(r.status || 1);
  }
}

/** Runs a long-lived child, passes Ctrl+C / SIGTERM on, and exits with its code. */
function handOver(command, args, env = process.env) {
  const child = spawn(command, args, { cwd: root, stdio: 'inherit', env });
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('error', (e) => {
    say(`could not start ${command}: ${e.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
}

/** The Electron binary's path, or null when the package or its download is missing. */
function electronBinary() {
  try {
    // The electron package exports the path of the binary it downloaded; it throws when that failed.
    const p = require('electron');
    return typeof p === 'string' && existsSync(p) ? p : null;
  } catch {
    return null;
  }
}

const electron = electronBinary();
if (electron) {
  runStep('Building the app (electron-vite build)', [binOf('electron-vite', 'electron-vite'), 'build']);
  const env = { ...process.env };
  // Set by some shells and CI images; it would make Electron behave as plain Node.
  delete env.ELECTRON_RUN_AS_NODE;
  handOver(electron, [root], env);
} else {
  say(
    'The Electron binary is not installed, so the desktop window cannot open here.\n' +
      '  To get it, run `npm install` again on a machine with the internet (Electron is an optional\n' +
      '  dependency and its binary is downloaded by its own install step), or `npm rebuild electron`.\n' +
      '  Meanwhile the same studio opens in your browser.',
  );
  runStep('Building the web UI (vite build)', [
    binOf('vite', 'vite'),
    'build',
    '--config',
    'vite.web.config.ts',
    '--logLevel',
    'warn',
  ]);
  handOver(process.execPath, [path.join(root, 'bin/fstudio.js'), 'serve', ...process.argv.slice(2)]);
}
