import { defineConfig } from 'vitest/config';

// Tests that measure the main thread's responsiveness: one file at a time, after the unit tests, so no
// other test computes on the same cores while they measure.
export default defineConfig({
  test: {
    include: ['tests/serial/**/*.test.ts'],
    environment: 'node',
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
