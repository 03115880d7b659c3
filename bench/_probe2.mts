import { TorchCheckpoint } from '../src/main/engine/weights/torch-zip.js';
const D = process.argv[2]!;
for (let rep = 0; rep < 3; rep++) {
  for (const conc of [1, 2, 4]) {
    const src = await TorchCheckpoint.open(`${D}/clip-vit-b32.ckpt`);
    const names = src.names();
    const t1 = performance.now();
    let i = 0;
    const out = new Array(names.length);
    await Promise.all(Array.from({ length: conc }, async () => { while (i < names.length) { const k = i++; out[k] = await src.read(names[k]!); } }));
    console.log('conc', conc, 'read', (performance.now() - t1).toFixed(0));
    await src.close();
  }
}
