import { TorchCheckpoint } from '../src/main/engine/weights/torch-zip.js';
import { SafetensorsReader } from '../src/main/engine/weights/safetensors.js';
const D = process.argv[2]!;
for (let rep = 0; rep < 3; rep++) {
  for (const [kind, f] of [['ckpt', `${D}/clip-vit-b32.ckpt`], ['st', `${D}/clip-vit-b32.safetensors`]] as const) {
    const t0 = performance.now();
    const src = kind === 'ckpt' ? await TorchCheckpoint.open(f) : await SafetensorsReader.open(f);
    const t1 = performance.now();
    const out = [];
    for (const n of src.names()) out.push(await src.read(n));
    const t2 = performance.now();
    await src.close();
    console.log(kind, 'open', (t1 - t0).toFixed(0), 'read', (t2 - t1).toFixed(0));
  }
}
