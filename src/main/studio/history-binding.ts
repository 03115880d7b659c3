// Which compiled build of better-sqlite3 this runtime loads. better-sqlite3 is built for one V8 ABI (not
// Node-API): build/Release holds the build npm installed, for the Node that ran it (the CLI, the server,
// the tests). scripts/postinstall.js puts the Electron build beside it, in
// build/electron-v<abi>-<platform>-<arch>/ (the name better-sqlite3's own prebuilt binaries carry), for
// the desktop app run from a checkout (`npm start`). A packaged app has build/Release rebuilt for
// Electron by electron-builder (and the electron-* folders left out, electron-builder.yml): it loads
// build/Release.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/** The part of better-sqlite3's constructor options that chooses its compiled build. */
export interface SqliteBindingOptions {
  nativeBinding?: string;
}

export interface BindingRuntime {
  /** `modules`: the runtime's V8 ABI (Electron's differs from every Node's). */
  versions: { modules: string };
  platform: string;
  arch: string;
  /** better-sqlite3's package folder. */
  packageDir(): string;
  exists(file: string): boolean;
}

/** Where scripts/postinstall.js puts the Electron build for this ABI, platform and CPU. */
export function electronBindingFile(packageDir: string, abi: string, platform: string, arch: string): string {
  return path.join(packageDir, 'build', `electron-v${abi}-${platform}-${arch}`, 'better_sqlite3.node');
}

const thisRuntime: BindingRuntime = {
  versions: process.versions,
  platform: process.platform,
  arch: process.arch,
  packageDir: () => path.dirname(createRequire(import.meta.url).resolve('better-sqlite3/package.json')),
  exists: existsSync,
};

/**
 * Options for `new Database(file, { ...sqliteBindingOptions(), ... })`: the Electron build when this
 * runtime is Electron and that build is there; `{}` (build/Release) in Node and in a packaged app.
 *
 * The build is looked up by the runtime's ABI, not by `versions.electron`: the ABI is what the file
 * must match, and Node's ABIs are never Electron's (they are registered apart), so in Node the lookup
 * finds nothing; and a worker thread of Electron's main process (the history worker) runs with
 * Electron's ABI whether or not its `process.versions` names Electron.
 */
export function sqliteBindingOptions(rt: BindingRuntime = thisRuntime): SqliteBindingOptions {
  const dir = rt.packageDir();
  // Inside app.asar (a packaged app) build/Release is already Electron's.
  if (dir.split(/[\\/]/).includes('app.asar')) return {};
  const file = electronBindingFile(dir, rt.versions.modules, rt.platform, rt.arch);
  return rt.exists(file) ? { nativeBinding: file } : {};
}
