#!/usr/bin/env node
// Renders resources/icon.svg into every icon file the app and its installers use (run it after
// changing the SVG; the outputs are committed, so neither a build nor a user needs this):
//   resources/icon.png               512 px, the window's icon on Linux and Windows (src/main/electron)
//   resources/build/icon.png         1024 px, electron-builder's fallback source
//   resources/build/icons/NxN.png    the Linux icon set (AppImage, deb), 16 to 512 px
//   resources/build/icon.ico         Windows (app and NSIS installer): 16 to 256 px
//   resources/build/icon.icns        macOS (app and dmg): 16 to 1024 px
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = (...p) => path.join(root, 'resources', ...p);

const svg = await readFile(out('icon.svg'));
/** The SVG's viewBox is 1024 units wide: render at the target size (crisper than scaling a big PNG down). */
function render(size) {
  return sharp(svg, { density: (72 * size) / 1024 })
    .resize(size, size)
    .png({ compressionLevel: 9 })
    .toBuffer();
}

/** A 32-bit BMP entry for an .ico (BITMAPINFOHEADER, BGRA rows bottom-up, then a 1-bit AND mask). */
async function bmpEntry(size) {
  const { data } = await sharp(await render(size))
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const header = Buffer.alloc(40);
  header.writeUInt32LE(40, 0);
  header.writeInt32LE(size, 4);
  header.writeInt32LE(size * 2, 8); // colour rows plus mask rows
  header.writeUInt16LE(1, 12);
  header.writeUInt16LE(32, 14);
  const pixels = Buffer.alloc(size * size * 4);
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      const from = (y * size + x) * 4;
      const to = ((size - 1 - y) * size + x) * 4;
      pixels[to] = data[from + 2];
      pixels[to + 1] = data[from + 1];
      pixels[to + 2] = data[from];
      pixels[to + 3] = data[from + 3];
    }
  const maskRow = Math.ceil(size / 32) * 4; // all zero: the alpha channel decides
  return Buffer.concat([header, pixels, Buffer.alloc(maskRow * size)]);
}

/** Windows icon: BMP entries below 256 px (what every consumer reads), PNG at 256 px. */
async function ico(sizes) {
  const images = await Promise.all(sizes.map((s) => (s >= 256 ? render(s) : bmpEntry(s))));
  const dir = Buffer.alloc(6 + 16 * sizes.length);
  dir.writeUInt16LE(1, 2);
  dir.writeUInt16LE(sizes.length, 4);
  let offset = dir.length;
  sizes.forEach((s, i) => {
    const e = 6 + 16 * i;
    dir[e] = s >= 256 ? 0 : s; // 0 means 256
    dir[e + 1] = s >= 256 ? 0 : s;
    dir.writeUInt16LE(1, e + 4);
    dir.writeUInt16LE(32, e + 6);
    dir.writeUInt32LE(images[i].length, e + 8);
    dir.writeUInt32LE(offset, e + 12);
    offset += images[i].length;
  });
  return Buffer.concat([dir, ...images]);
}

/** macOS icon: PNG payloads under their OSType codes (Retina variants are the next size up). */
async function icns() {
  const types = [
    ['icp4', 16],
    ['icp5', 32],
    ['icp6', 64],
    ['ic07', 128],
    ['ic08', 256],
    ['ic09', 512],
    ['ic10', 1024],
    ['ic11', 32],
    ['ic12', 64],
    ['ic13', 256],
    ['ic14', 512],
  ];
  const entries = await Promise.all(
    types.map(async ([code, size]) => {
      const png = await render(size);
      const head = Buffer.alloc(8);
      head.write(code, 0, 'ascii');
      head.writeUInt32BE(png.length + 8, 4);
      return Buffer.concat([head, png]);
    }),
  );
  const head = Buffer.alloc(8);
  head.write('icns', 0, 'ascii');
  head.writeUInt32BE(8 + entries.reduce((n, e) => n + e.length, 0), 4);
  return Buffer.concat([head, ...entries]);
}

await mkdir(out('build', 'icons'), { recursive: true });
await writeFile(out('icon.png'), await render(512));
await writeFile(out('build', 'icon.png'), await render(1024));
for (const s of [16, 24, 32, 48, 64, 128, 256, 512])
  await writeFile(out('build', 'icons', `${s}x${s}.png`), await render(s));
await writeFile(out('build', 'icon.ico'), await ico([16, 24, 32, 48, 64, 128, 256]));
await writeFile(out('build', 'icon.icns'), await icns());
console.log('Wrote resources/icon.png and resources/build/{icon.png,icon.ico,icon.icns,icons/}.');
