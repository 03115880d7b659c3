import { resolve } from 'node:path';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'electron-vite';

// Native modules stay outside the bundle: they are loaded from node_modules (unpacked
// from the asar by electron-builder, see electron-builder.yml).
const external = ['onnxruntime-node', 'better-sqlite3', 'sharp', 'electron'];

export default defineConfig({
  main: {
    build: {
      externalizeDeps: true,
      rollupOptions: {
        external,
        input: {
          index: resolve('src/main/electron/index.ts'),
          // Worker threads' entries (base/worker-entry.ts finds them beside the main bundle).
          'compute-worker': resolve('src/main/engine/compute-worker.ts'),
          'import-worker': resolve('src/main/studio/import-worker.ts'),
          'history-worker': resolve('src/main/studio/history-worker.ts'),
        },
      },
    },
  },
  preload: {
    build: {
      rollupOptions: {
        input: { index: resolve('src/preload/index.ts') },
        // A sandboxed preload must be a single CommonJS file.
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    root: 'src/renderer',
    // The Svelte config is at the repository's root, not in `root`.
    plugins: [svelte({ configFile: resolve('svelte.config.js') })],
    build: { rollupOptions: { input: resolve('src/renderer/index.html') } },
  },
});
