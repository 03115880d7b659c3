// The renderer built for the local server (`npm run serve`): the same Svelte app,
// served by src/main/server from out/web.
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';

export default defineConfig({
  root: 'src/renderer',
  base: './',
  plugins: [svelte()],
  build: { outDir: '../../out/web', emptyOutDir: true },
});
