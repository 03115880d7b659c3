// Import benchmark (a script, not a test): node --import tsx bench/gallery-import.ts [--files 2000]
//
// Writes N (default 2,000) distinct 512x512 PNGs carrying AUTOMATIC1111 `parameters` text into a
// temp folder, then imports the folder the way `fstudio import <folder>` does (importCommand, in this
// process, so that its main thread is the one measured) into a fresh data folder. Reports images/s,
// peak RSS, and the main thread's event-loop lag while it runs, measured as
// tests/serial/main-thread-lag.test.ts does (how late a 5 ms timer fires; p99 and max). The figure
// to compare across machines is images/s per core; the lag p99 should stay under 30 ms.
// Prints a table and writes bench-results/gallery-import.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { importCommand } from '../src/main/cli/import.js';
import { openStudio } from '../src/main/studio/index.js';
import { makePng } from '../tests/fixtures/images.js';
import { lagDuring } from '../tests/fixtures/lag.js';

const arg = process.argv.indexOf('--files');
const FILES = arg > 0 ? Number(process.argv[arg + 1]) : 2000;

const parameters = (i: number) =>
  `a lighthouse on a cliff at dusk, oil painting, number ${i}\n` +
  'Negative prompt: blurry, lowres\n' +
  `Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: ${1000 + i}, Size: 512x512, Model hash: 6ce0161689, Model: v1-5-pruned-emaonly`;

async function main() {
  const src = mkdtempSync(join(tmpdir(), 'fstudio-import-src-'));
  const dataDir = mkdtempSync(join(tmpdir(), 'fstudio-import-data-'));
  const tGen = performance.now();
  let bytes = 0;
  for (let i = 0; i < FILES; i += 50) {
    const made = await Promise.all(
      Array.from({ length: Math.min(50, FILES - i) }, (_, k) =>
        makePng({ seed: i + k + 1, width: 512, height: 512, text: { parameters: parameters(i + k) } }),
      ),
    );
    made.forEach((png, k) => {
      writeFileSync(join(src, `${String(i + k).padStart(5, '0')}-${1000 + i + k}.png`), png);
      bytes += png.length;
    });
  }
  const genMs = performance.now() - tGen;

  // The main thread's lag while the import runs (a 5 ms timer's lateness), and the peak RSS.
  const rssBefore = process.memoryUsage().rss;
  let peakRss = rssBefore;
  const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  let code = -1;
  const lag = await lagDuring(async () => {
    code = await importCommand(dataDir, [src], { json: false });
  });
  clearInterval(rssTimer);
  const ms = lag.ms;

  const s = await openStudio({ dataDir, runQueue: false });
  const page = await s.handlers.galleryQuery({ sort: 'newest', offset: 0, limit: 1 });
  const detail = page.items[0] ? await s.handlers.getItem({ id: page.items[0].id }) : null;
  await s.close();
  if (code !== 0 || page.total !== FILES)
    throw new Error(`import: exit ${code}, ${page.total} of ${FILES} in the gallery`);
  if (detail?.metadata.source !== 'automatic1111') throw new Error('the A1111 parameters were not read');

  const result = {
    date: new Date().toISOString(),
    machine: { cpus: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', node: process.versions.node },
    files: FILES,
    megabytes: bytes / 1e6,
    generateMs: genMs,
    importMs: ms,
    imagesPerSecond: FILES / (ms / 1000),
    imagesPerSecondPerCore: FILES / (ms / 1000) / availableParallelism(),
    peakRssMB: Math.max(peakRss, process.resourceUsage().maxRSS * 1024) / 1e6,
    rssBeforeMB: rssBefore / 1e6,
    lagMs: { p50: lag.p50, p99: lag.p99, max: lag.max, ticks: lag.ticks },
  };
  console.log(
    `\nImport benchmark: ${FILES} 512x512 PNGs with A1111 parameters (${result.megabytes.toFixed(0)} MB), ` +
      `${result.machine.cpus} CPUs (${result.machine.cpu}), Node ${result.machine.node}`,
  );
  console.log(`  import (fstudio import <folder>, in-process)  ${(ms / 1000).toFixed(1)} s`);
  console.log(`  images/s                                      ${result.imagesPerSecond.toFixed(1)}`);
  console.log(`  peak RSS                                      ${result.peakRssMB.toFixed(0)} MB`);
  console.log(
    `  main-thread lag (5 ms timer)                  p50 ${result.lagMs.p50.toFixed(1)} ms, p99 ${result.lagMs.p99.toFixed(1)} ms, max ${result.lagMs.max.toFixed(1)} ms`,
  );
  mkdirSync('bench-results', { recursive: true });
  writeFileSync(join('bench-results', 'gallery-import.json'), JSON.stringify(result, null, 2) + '\n');
  console.log('wrote bench-results/gallery-import.json');
  rmSync(src, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
}

await main();
