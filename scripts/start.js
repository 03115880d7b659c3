#!/usr/bin/env node
// `npm start`: the desktop app when the Electron binary and better-sqlite3's Electron build are
// installed; otherwise the same UI served to the browser by `fstudio serve`. Plain JavaScript, so it
// runs before anything is built. Extra arguments go to `fstudio serve` in the browser case (e.g.
// `npm start -- --port 8765`).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  electronSqliteFile,
  electronSqliteWarning,
  ensureElectronSqlite,
  installedElectron,
  isEntryScript,
  packageBin,
  sqlitePackageDir,
} from './postinstall.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function say(message) {
  process.stderr.write(`[foundation-studio] ${message}\n`);
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

/**
 * Why the desktop window cannot open here, or null when it can. `electron` is installedElectron()'s
 * answer. Without better-sqlite3's Electron build the app could not open its data folder, so a missing
 * one is fetched once (scripts/postinstall.js's step), and if it is still missing the window is not
 * opened at all.
 */
export function desktopBlocker(electron, { ensure = ensureElectronSqlite, sqliteDir = sqlitePackageDir() } = {}) {
  if (!electron) {
    return (
      'The Electron binary is not installed, so the desktop window cannot open here.\n' +
      '  To get it, run `npm install` again on a machine with the internet (Electron is an optional\n' +
      '  dependency and its binary is downloaded by its own install step), or `npm rebuild electron`.\n' +
      '  Meanwhile the same studio opens in your browser.'
    );
  }
  if (electron.abi && existsSync(electronSqliteFile(sqliteDir, electron.abi))) return null;
  say(
    `better-sqlite3 has no build for Electron ${electron.version} yet, and the desktop app needs one to ` +
      'open its data folder: fetching it (once)...',
  );
  const result = ensure({ electron, sqliteDir });
  return result.ok ? null : electronSqliteWarning(electron, result);
}

function main() {
  const electron = installedElectron();
  const blocker = desktopBlocker(electron);
  if (electron && !blocker) {
    runStep('Building the app (electron-vite build)', [packageBin(root, 'electron-vite'), 'build']);
    const env = { ...process.env };
    // Set by some shells and CI images; it would make Electron behave as plain Node.
    delete env.ELECTRON_RUN_AS_NODE;
    handOver(electron.binary, [root], env);
    return;
  }
  say(blocker);
  runStep('Building the web UI (vite build)', [
    packageBin(root, 'vite'),
    'build',
    '--config',
    'vite.web.config.ts',
    '--logLevel',
    'warn',
  ]);
  handOver(process.execPath, [path.join(root, 'bin/fstudio.js'), 'serve', ...process.argv.slice(2)]);
}

if (isEntryScript(import.meta.url)) main();
