// The script a worker_threads Worker starts: the bundle's `<name>.js` in the built app, or, running from
// source under tsx, an eval'd bootstrap that registers tsx and then imports the TypeScript entry.
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * `fromUrl` is the calling module's import.meta.url; `source` the entry's path relative to it (a .ts file);
 * `bundled` the entry's name in the bundle (electron-vite's input name, e.g. 'compute-worker'). Pass the
 * result to `new Worker(entry, { eval: typeof entry === 'string' })`.
 */
export function workerEntry(fromUrl: string, source: string, bundled: string): string | URL {
  if (fromUrl.endsWith('.ts')) {
    // Node 20 applies neither `--import tsx` from a worker's execArgv nor tsx's side-effect loader
    // inside a worker, so the entry is an eval'd bootstrap calling tsx's ESM register() API first
    // (its ESM build: the CommonJS one resolves its hooks file wrongly).
    const pkgFile = createRequire(fromUrl).resolve('tsx/package.json');
    const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as {
      exports: Record<string, { import: { default: string } }>;
    };
    const api = pathToFileURL(path.join(path.dirname(pkgFile), pkg.exports['./esm/api']!.import.default)).href;
    const entry = new URL(source, fromUrl).href;
    return `import(${JSON.stringify(api)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  }
  // Bundled: the entry sits beside the main bundle; this code may sit in a chunk one level down.
  for (const rel of [`./${bundled}.js`, `../${bundled}.js`]) {
    const url = new URL(rel, fromUrl);
    if (existsSync(fileURLToPath(url))) return url;
  }
  throw new Error(`${bundled}.js was not found next to ${fileURLToPath(fromUrl)}`);
}
