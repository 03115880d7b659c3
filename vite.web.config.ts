// The renderer built for the local server (`npm run serve`): the same Svelte app,
// served by src/main/server from out/web.
import { fileURLToPath } from 'node:url';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';

export default defineConfig({
  root: 'src/renderer',
  base: './',
  // The Svelte config is at the repository's root, not in `root`: named, so the plugin does not look in vain.
  plugins: [svelte({ configFile: fileURLToPath(new URL('svelte.config.js', import.meta.url)) })],
  build: { outDir: '../../out/web', emptyOutDir: true },
});
