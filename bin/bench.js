#!/usr/bin/env node
// `npm run bench [-- <name>...]`: runs the benchmarks in bench/<name>.ts (all when none is named).
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
const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  console.log(
    `Usage: npm run bench [-- <name>...]\n\nBenchmarks: ${available.join(', ')}\nResults are printed and written to bench-results/<name>.json.`,
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
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(root, 'bench', `${name}.ts`)], {
    cwd: root,
    stdio: 'inherit',
  });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
