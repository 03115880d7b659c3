import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Compiles Svelte runes in *.svelte.ts modules (the renderer's stores are unit-tested too).
  plugins: [svelte()],
  test: {
    include: ['src/**/*.test.ts', 'tests/unit/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: native modules (ORT, sharp) already use threads of their own.
    pool: 'forks',
    maxWorkers: 2,
  },
});
