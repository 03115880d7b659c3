import { defineConfig } from 'vitest/config';

export default defineConfig({
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
