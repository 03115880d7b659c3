// Child process for crash.test.ts: imports (and deletes) images in a data folder, one line per
// imported file on stdout, until the parent kills it with SIGKILL.
//   node --import tsx crash-child.ts <dataDir> <seedBase> [mode]
// mode 'random' (default) just runs; the others inject a stall at one point of the write path
// and print "stall" there, so the parent's kill lands exactly in that window:
//   mid-temp            a temp file has been created but not written or renamed
//   after-asset-rename  an asset file is in place under its real name, its row not yet inserted
//   mid-trash           a delete has marked its rows and moved the first file to the trash
// The stalls wrap node:fs/promises from outside (syncBuiltinESMExports updates the live
// bindings that src/main/studio/assets.ts imported): the code under test is not changed.
import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { sep } from 'node:path';
import { openStudio } from '../../../src/main/studio/index.js';
import { makeJpeg, makePng } from '../../fixtures/images.js';

const [dataDir, seedBase = '0', mode = 'random'] = process.argv.slice(2);
if (!dataDir) throw new Error('usage: crash-child.ts <dataDir> <seedBase> [mode]');

const stall = async () => {
  process.stdout.write('stall\n');
  await new Promise((r) => setTimeout(r, 30_000)); // the parent kills us in here
};
if (mode === 'mid-temp') {
  const open = fsp.open;
  fsp.open = (async (...args: Parameters<typeof open>) => {
    const fh = await open(...args);
    if (String(args[0]).endsWith('.tmp')) await stall();
    return fh;
  }) as typeof open;
}
if (mode === 'after-asset-rename' || mode === 'mid-trash') {
  const rename = fsp.rename;
  const where = mode === 'mid-trash' ? `${sep}trash${sep}` : `${sep}assets${sep}`;
  fsp.rename = async (from, to) => {
    await rename(from, to);
    if (String(to).includes(where) && !String(from).includes(`${sep}trash${sep}`)) await stall();
  };
}
syncBuiltinESMExports();

const base = Number(seedBase);
// Large enough that writes take a while (so a random kill lands mid-write now and then), small enough to be quick.
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
