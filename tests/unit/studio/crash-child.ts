// Child process for crash.test.ts: imports images into a data folder, one progress line per
// file on stdout, until the parent kills it with SIGKILL. Run: node --import tsx crash-child.ts <dataDir> <seedBase>
import { openStudio } from '../../../src/main/studio/index.js';
import { makePng, makeJpeg } from '../../fixtures/images.js';

const [dataDir, seedBase = '0'] = process.argv.slice(2);
if (!dataDir) throw new Error('usage: crash-child.ts <dataDir> <seedBase>');
const base = Number(seedBase);
// Large enough that writes take a while (so a kill lands mid-write now and then), small enough to be quick.
const files = await Promise.all(
  Array.from({ length: 120 }, async (_, i) => ({
    name: `crash-${base + i}.${i % 3 === 2 ? 'jpg' : 'png'}`,
    data:
      i % 3 === 2
        ? await makeJpeg({ seed: base + i, width: 384, height: 384 })
        : await makePng({ seed: base + i, width: 384, height: 384 }),
  })),
);
const studio = await openStudio({ dataDir });
studio.on('importProgress', (p) => process.stdout.write(`progress ${p.done}\n`));
process.stdout.write('ready\n');
for (let i = 0; i < files.length; i += 10) {
  const r = await studio.handlers.importImages({ files: files.slice(i, i + 10) });
  // Deletes too, so a kill can also land in the middle of moving files to the trash.
  if (r.imported.length > 2) await studio.handlers.deleteItems({ ids: [r.imported[0]!.id] });
}
process.stdout.write('finished\n');
await studio.close();
