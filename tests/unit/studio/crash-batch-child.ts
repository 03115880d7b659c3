// Child process for crash-batch.test.ts: imports 10,000 small distinct PNGs into a data folder in
// calls of 250 files (the batched path: parallel hashing and decoding, files made durable per
// chunk, one transaction per chunk), printing the hash of every file each call reports imported or
// already there, until the parent kills it with SIGKILL (or it finishes: "finished").
//   node --import tsx crash-batch-child.ts <dataDir>
import { createHash } from 'node:crypto';
import { openStudio } from '../../../src/main/studio/index.js';
import { makePng } from '../../fixtures/images.js';

const [dataDir] = process.argv.slice(2);
if (!dataDir) throw new Error('usage: crash-batch-child.ts <dataDir>');
export const FILES = 10_000;
const files: { name: string; data: Uint8Array<ArrayBuffer>; sha: string }[] = [];
for (let i = 0; i < FILES; i += 500) {
  const made = await Promise.all(
    Array.from({ length: Math.min(500, FILES - i) }, (_, k) => makePng({ seed: i + k + 1, width: 24, height: 24 })),
  );
  for (const [k, data] of made.entries())
    files.push({ name: `batch-${i + k}.png`, data, sha: createHash('sha256').update(data).digest('hex') });
}
const studio = await openStudio({ dataDir, runQueue: false });
process.stdout.write('ready\n');
for (let i = 0; i < files.length; i += 250) {
  const r = await studio.handlers.importImages({
    files: files.slice(i, i + 250).map(({ name, data }) => ({ name, data })),
  });
  if (r.failed.length) throw new Error(JSON.stringify(r.failed.slice(0, 3)));
  process.stdout.write(`done ${[...r.imported, ...r.duplicates.map((d) => d.item)].map((x) => x.sha256).join(' ')}\n`);
}
process.stdout.write('finished\n');
await studio.close();
