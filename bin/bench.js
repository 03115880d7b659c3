#!/usr/bin/env node
// `npm run bench [-- <name>... [--option ...]]`: runs the benchmarks in bench/<name>.ts (all when none is
// named), passing the options on to each (e.g. `npm run bench -- generate --quick`).
// Benchmarks print ratios measured in one run and write JSON under bench-results/.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const available = readdirSync(path.join(root, 'bench'))
  .filter((f) => f.endsWith('.ts') && !f.startsWith('_'))
  .map((f) => f.slice(0, -3))
  .sort();
const argv = process.argv.slice(2);
// Names first; from the first option on, everything goes to the benchmarks (an option may take a value).
const firstOption = argv.findIndex((a) => a.startsWith('-') && a !== '-h' && a !== '--help');
const args = firstOption < 0 ? argv : argv.slice(0, firstOption);
const options = firstOption < 0 ? [] : argv.slice(firstOption);
if (args.includes('--help') || args.includes('-h')) {
  console.log(
    `Usage: npm run bench [-- <name>... [--option ...]]\n\nBenchmarks: ${available.join(', ')}\nResults are printed and written to bench-results/<name>.json.`,
  );
  process.exit(0);
}
const wanted = args.length ? args : available;
const unknown = wanted.filter((w) => !available.includes(w));
if (unknown.length) {
  console.error(`Unknown benchmark: ${unknown.join(', ')}. Available: ${available.join(', ')}`);
  process.exit(2);
}
let failed = 0;
for (const name of wanted) {
  console.log(`\n== bench: ${name} ==`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'bench', `${name}.ts`), ...options], {
    cwd: root,
    stdio: 'inherit',
  });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
