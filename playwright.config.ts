// End-to-end tests: the Svelte renderer in Debian's Chromium, talking to a real
// `fstudio serve` (started per test by tests/e2e/fixtures.ts on a fresh data folder).
// `npm run test:e2e` builds out/web first; this config builds nothing.
import { defineConfig } from '@playwright/test';

/** Debian's package; Playwright's own browser downloads are never used. */
const chromium = process.env.FSTUDIO_CHROMIUM ?? '/usr/bin/chromium';

export default defineConfig({
  testDir: 'tests/e2e',
  outputDir: 'test-results/artifacts',
  // One server and one browser at a time: the machines this runs on are small.
  workers: 1,
  fullyParallel: false,
  forbidOnly: !!process.env.CI,
  retries: 0,
  timeout: 120_000,
  expect: { timeout: 15_000 },
  reporter: [['list']],
  use: {
    viewport: { width: 1280, height: 800 },
    // Counts are shown with toLocaleString; pin the locale so "10,000" reads the same everywhere.
    locale: 'en-US',
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
  },
  projects: [
    {
      name: 'chromium',
      testIgnore: /electron-smoke\.spec\.ts/,
      use: {
        browserName: 'chromium',
        launchOptions: {
          executablePath: chromium,
          // Without the networking flags Chromium stalls on a machine with no internet.
          args: [
            '--no-sandbox',
            '--disable-gpu',
            '--disable-quic',
            '--no-first-run',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
          ],
        },
      },
    },
    { name: 'electron', testMatch: /electron-smoke\.spec\.ts/ },
  ],
});
