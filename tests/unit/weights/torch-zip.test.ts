// The zip layer and the tensor views: strided copies against a naive reference, and crafted
// archives that are corrupt in each way the reader checks.
import { copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { constants, crc32, deflateRawSync } from 'node:zlib';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../../../src/main/engine/weights/load.js';
import { WEIGHT_DTYPE_SIZE, gather, isContiguous, toFloat32 } from '../../../src/main/engine/weights/tensor.js';
import { TorchCheckpoint } from '../../../src/main/engine/weights/torch-zip.js';
import {
  Pickle,
  pickleStateDict,
  pickleTensorDict,
  type TensorView,
  writeTorchZip,
} from '../../fixtures/weights/torch-zip-writer.js';
import { expected, expectMatchesTorch, fixture, tempDir } from './helpers.js';

describe('strided views', () => {
  it('gather matches a naive element-by-element copy over random shapes, strides and offsets', () => {
    let seed = 12345;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed % n;
    };
    for (let trial = 0; trial < 200; trial++) {
      const nd = rand(4);
      const shape = Array.from({ length: nd }, () => rand(4) + (trial % 7 === 0 ? 0 : 1));
      const stride = shape.map(() => rand(6));
      const size = [1, 2, 4, 8][rand(4)]!;
      const span = shape.reduce((m, d, i) => m + Math.max(0, d - 1) * stride[i]!, 0) + 1;
      const src = Uint8Array.from({ length: span * size }, (_, i) => (i * 31 + trial) & 255);
      const n = shape.reduce((a, b) => a * b, 1);
      const want = new Uint8Array(n * size);
      for (let flat = 0; flat < n; flat++) {
        let rem = flat;
        let off = 0;
        for (let d = nd - 1; d >= 0; d--) {
          off += (rem % shape[d]!) * stride[d]!;
          rem = Math.floor(rem / shape[d]!);
        }
        want.set(src.subarray(off * size, off * size + size), flat * size);
      }
      expect(gather(src, shape, stride, size), `shape ${shape} stride ${stride}`).toEqual(want);
    }
  });

  it('isContiguous ignores the stride of size-1 dimensions', () => {
    expect(isContiguous([2, 3], [3, 1])).toBe(true);
    expect(isContiguous([2, 1, 3], [3, 99, 1])).toBe(true);
    expect(isContiguous([3, 2], [1, 3])).toBe(false);
    expect(isContiguous([2, 3], [0, 1])).toBe(false);
    expect(isContiguous([], [])).toBe(true);
  });
});

describe('crafted torch archives', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());
  const at = (name: string) => path.join(tmp.dir, name);
  const f32 = (a: number[]) => new Uint8Array(new Float32Array(a).buffer);
  const write = (tensors: TensorView[], storages: [string, Uint8Array][], extra: [string, Uint8Array][] = []) => {
    writeTorchZip(at('c.pt'), 'archive', pickleStateDict(tensors, 'flat'), storages, extra);
    return at('c.pt');
  };

  it('a well-formed one loads (the writer itself is checked against torch.load by check_ts_writer.py)', async () => {
    const sd = await loadCheckpoint(
      write([{ name: 'w', dtype: 'F32', key: '0', storageNumel: 3, shape: [3] }], [['0', f32([1, 2, 3])]]),
    );
    expect(sd.get('w')).toEqual({ dtype: 'F32', shape: [3], data: f32([1, 2, 3]) });
  });

  it('tensors read from a torch file keep its 64-byte alignment, so F32 views need no copy', async () => {
    const sd = await loadCheckpoint(fixture('lightning.ckpt'));
    for (const [name, t] of sd) expect(t.data.byteOffset % WEIGHT_DTYPE_SIZE[t.dtype], name).toBe(0);
    const w = sd.get('conv_in.weight')!;
    expect(toFloat32(w).buffer).toBe(w.data.buffer);
  });

  it('reads entries whatever their padding: none (unaligned data) or more than one read guesses', async () => {
    const t = { name: 'w', dtype: 'F32' as const, key: '0', storageNumel: 3, shape: [3] };
    for (const align of [1, 4096]) {
      writeTorchZip(at('a.pt'), 'archive', pickleStateDict([t], 'flat'), [['0', f32([1, 2, 3])]], [], align);
      const w = (await loadCheckpoint(at('a.pt'))).get('w')!;
      expect([align, Array.from(toFloat32(w))]).toEqual([align, [1, 2, 3]]);
    }
  });

  it('a state dict nested under another key: says where it is, and stateDictKey picks it', async () => {
    const p = new Pickle().proto(2).emptyDict().mark().str('epoch').int(1).str('model');
    pickleTensorDict(p, [{ name: 'w', dtype: 'F32', key: '0', storageNumel: 1, shape: [1] }]);
    writeTorchZip(at('n.pt'), 'archive', p.setitems().stop().bytes(), [['0', f32([5])]]);
    await expect(loadCheckpoint(at('n.pt'))).rejects.toThrow(
      /no tensors in the state dict; dicts of tensors under 'model' \(1 tensors\): pass stateDictKey/,
    );
    expect([...(await loadCheckpoint(at('n.pt'), { stateDictKey: 'model' })).keys()]).toEqual(['w']);
  });

  it('a storage claiming more elements than its entry holds', async () => {
    const file = write(
      [{ name: 'w', dtype: 'F32', key: '0', storageNumel: 1000, shape: [3] }],
      [['0', f32([1, 2, 3])]],
    );
    await expect(loadCheckpoint(file)).rejects.toThrow(
      /storage '0' claims 1000 elements of torch\.FloatStorage \(4000 bytes\) but its zip entry holds 12 bytes/,
    );
  });

  it('a view reaching past its storage', async () => {
    const file = write(
      [{ name: 'w', dtype: 'F32', key: '0', storageNumel: 3, offset: 2, shape: [2, 2], stride: [2, 1] }],
      [['0', f32([1, 2, 3])]],
    );
    await expect(loadCheckpoint(file)).rejects.toThrow(
      /'w': view \(offset 2, shape \[2, 2\], stride \[2, 1\]\) needs 24 bytes of a 12-byte storage/,
    );
  });

  it('an expanded view claiming more memory than any checkpoint could need', async () => {
    const huge = {
      name: 'w',
      dtype: 'F32' as const,
      key: '0',
      storageNumel: 1,
      shape: [2 ** 20, 2 ** 20],
      stride: [0, 0],
    };
    const file = write([huge], [['0', f32([1])]]);
    await expect(loadCheckpoint(file)).rejects.toThrow(/'w' would take 4398046511104 bytes, over 4294967296/);
    const many = Array.from({ length: 3 }, (_, i) => ({ ...huge, name: `w${i}`, shape: [2 ** 14, 2 ** 14] }));
    await expect(loadCheckpoint(write(many, [['0', f32([1])]]))).rejects.toThrow(
      /the tensors would take 3221225472 bytes, far more than/,
    );
  });

  it('a storage with no entry', async () => {
    const file = write([{ name: 'w', dtype: 'F32', key: '7', storageNumel: 3, shape: [3] }], [['0', f32([1, 2, 3])]]);
    await expect(loadCheckpoint(file)).rejects.toThrow(/storage '7' has no entry archive\/data\/7/);
  });

  it('a big-endian archive', async () => {
    const file = write([], [], [['byteorder', new TextEncoder().encode('big')]]);
    await expect(loadCheckpoint(file)).rejects.toThrow(/big-endian checkpoint/);
  });

  it('a tensor kind the reader does not support is named; non-tensor entries are listed as skipped', async () => {
    const p = new Pickle().proto(2);
    pickleTensorDict(p, [{ name: 'w', dtype: 'F32', key: '0', storageNumel: 1, shape: [1] }]);
    p.mark().str('note').str('hello').setitems().stop();
    writeTorchZip(at('s.pt'), 'archive', p.bytes(), [['0', f32([1])]]);
    const ck = await TorchCheckpoint.open(at('s.pt'));
    expect(ck.names()).toEqual(['w']);
    expect([...ck.skipped]).toEqual([['note', 'str "hello"']]);
    await ck.close();

    const q = new Pickle().proto(2).global('collections', 'OrderedDict').emptyTuple().reduce().mark();
    q.str('q').global('torch._utils', '_rebuild_qtensor').emptyTuple().reduce().setitems().stop();
    writeTorchZip(at('q.pt'), 'archive', q.bytes(), []);
    await expect(loadCheckpoint(at('q.pt'))).rejects.toThrow(
      /'q' is a tensor kind this reader does not support \(torch\._utils\._rebuild_qtensor\)/,
    );
  });

  it('a corrupted data.pkl fails its CRC; a corrupted storage only when verifyCrc is asked for', async () => {
    const file = write([{ name: 'w', dtype: 'F32', key: '0', storageNumel: 3, shape: [3] }], [['0', f32([1, 2, 3])]]);
    const bytes = readFileSync(file);
    const badPkl = Buffer.from(bytes);
    const nameAt = badPkl.indexOf('storage'); // inside data.pkl
    badPkl[nameAt] = 0x53;
    writeFileSync(at('badpkl.pt'), badPkl);
    await expect(loadCheckpoint(at('badpkl.pt'))).rejects.toThrow(/data\.pkl' fails its CRC-32 check/);

    const badData = Buffer.from(bytes);
    const dataAt = badData.indexOf(Buffer.from(f32([1, 2, 3])));
    badData[dataAt + 1] = badData[dataAt + 1]! ^ 0xff;
    writeFileSync(at('baddata.pt'), badData);
    await expect(loadCheckpoint(at('baddata.pt'), { verifyCrc: true })).rejects.toThrow(
      /data\/0' fails its CRC-32 check/,
    );
    expect((await loadCheckpoint(at('baddata.pt'))).get('w')!.data).not.toEqual(f32([1, 2, 3]));
  });

  it('reads the zip64 end records torch writes when the classic ones are saturated', async () => {
    const bytes = Buffer.from(readFileSync(fixture('lightning.ckpt')));
    const eocd = bytes.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    bytes.writeUInt16LE(0xffff, eocd + 8);
    bytes.writeUInt16LE(0xffff, eocd + 10);
    bytes.writeUInt32LE(0xffffffff, eocd + 12);
    bytes.writeUInt32LE(0xffffffff, eocd + 16);
    writeFileSync(at('z64.ckpt'), bytes);
    expectMatchesTorch(await loadCheckpoint(at('z64.ckpt')), expected.fixtures['lightning.ckpt']!);
    // ... and with the zip64 record damaged, says so
    const z64 = bytes.lastIndexOf(Buffer.from([0x50, 0x4b, 0x06, 0x06]));
    bytes[z64] = 0;
    writeFileSync(at('z64bad.ckpt'), bytes);
    await expect(loadCheckpoint(at('z64bad.ckpt'))).rejects.toThrow(/bad zip64 end record/);
  });

  it('a pickle over the size bound, a zip without data.pkl, a cut central directory', async () => {
    const file = write([{ name: 'w', dtype: 'F32', key: '0', storageNumel: 3, shape: [3] }], [['0', f32([1, 2, 3])]]);
    await expect(loadCheckpoint(file, { maxPickleBytes: 50 })).rejects.toThrow(
      /data\.pkl is \d+ bytes, over the 50-byte limit/,
    );

    writeTorchZip(at('other.zip'), 'archive', new Uint8Array(0), []);
    const z = readFileSync(at('other.zip'));
    // rename the entry 'archive/data.pkl' -> 'archive/data.pkX' everywhere
    writeFileSync(at('nopkl.zip'), Buffer.from(z.toString('latin1').replaceAll('data.pkl', 'data.pkX'), 'latin1'));
    await expect(loadCheckpoint(at('nopkl.zip'))).rejects.toThrow(/a zip file but not a torch checkpoint/);

    copyFileSync(fixture('pytorch_model.bin'), at('cut.bin'));
    const full = readFileSync(at('cut.bin'));
    writeFileSync(at('cut.bin'), full.subarray(0, full.length - 30));
    await expect(loadCheckpoint(at('cut.bin'))).rejects.toThrow(/truncated or corrupt/);
  });
});

interface RawEntry {
  name: string;
  /** The bytes as they go in the file (already deflated for method 8). */
  data: Uint8Array;
  method: 0 | 8;
  /** The uncompressed size the zip declares. */
  size: number;
  crc: number;
}

/** A plain zip (no zip64) from entries as given: sizes and CRCs are whatever the test says. */
function writeRawZip(file: string, entries: RawEntry[]): void {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = Buffer.from(e.name);
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(20, 4);
    h.writeUInt16LE(e.method, 8);
    h.writeUInt32LE(e.crc >>> 0, 14);
    h.writeUInt32LE(e.data.length, 18);
    h.writeUInt32LE(e.size, 22);
    h.writeUInt16LE(name.length, 26);
    parts.push(h, name, Buffer.from(e.data));
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(e.method, 10);
    c.writeUInt32LE(e.crc >>> 0, 16);
    c.writeUInt32LE(e.data.length, 20);
    c.writeUInt32LE(e.size, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(offset, 42);
    central.push(c, name);
    offset += 30 + name.length + e.data.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  writeFileSync(file, Buffer.concat([...parts, cd, end]));
}

const stored = (name: string, data: Uint8Array): RawEntry => ({
  name,
  data,
  method: 0,
  size: data.length,
  crc: crc32(data),
});

/**
 * `mib` MiB of zeros as raw deflate, built without ever holding them: one MiB deflated and
 * fully flushed (byte-aligned, no references back) repeated, then an empty final block.
 */
function deflatedZeros(mib: number): Buffer {
  const block = deflateRawSync(Buffer.alloc(1 << 20), { finishFlush: constants.Z_FULL_FLUSH });
  return Buffer.concat([...Array<Buffer>(mib).fill(block), deflateRawSync(Buffer.alloc(0))]);
}

describe('deflated storages (re-zipped checkpoints)', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());
  const at = (name: string) => path.join(tmp.dir, name);
  const pkl = (tensors: TensorView[]) => stored('archive/data.pkl', pickleStateDict(tensors, 'flat'));

  it('refuses a storage entry padded past what the storage needs (a 2 GiB zip bomb in a 2 MB file)', async () => {
    const GiB2 = 2048;
    writeRawZip(at('bomb.pt'), [
      pkl([{ name: 'w', dtype: 'F32', key: '0', storageNumel: 3, shape: [3] }]),
      { name: 'archive/data/0', data: deflatedZeros(GiB2), method: 8, size: GiB2 * 2 ** 20, crc: 0 },
    ]);
    expect(statSync(at('bomb.pt')).size).toBeLessThan(4 << 20);
    await expect(loadCheckpoint(at('bomb.pt'))).rejects.toThrow(
      /storage '0' claims 3 elements of torch\.FloatStorage \(12 bytes\) but its zip entry holds 2147483648 bytes/,
    );
  });

  it('counts deflated storages in the memory bound, however little of them a tensor views', async () => {
    const GiB2 = 2048;
    // The storage is exactly what its entry holds (2 GiB), but the tensor views one element of it.
    writeRawZip(at('view.pt'), [
      pkl([{ name: 'w', dtype: 'F32', key: '0', storageNumel: 2 ** 29, shape: [1] }]),
      { name: 'archive/data/0', data: deflatedZeros(GiB2), method: 8, size: GiB2 * 2 ** 20, crc: 0 },
    ]);
    await expect(loadCheckpoint(at('view.pt'))).rejects.toThrow(
      /the tensors and the deflated storages they read would take 2147483652 bytes, far more than the \d+-byte file holds/,
    );
  });

  it('bounds the inflating work of views that each re-inflate one large deflated storage', async () => {
    const MiB = 32;
    const numel = (MiB << 20) / 4;
    // Ten one-element views at the end of a 32 MiB zero storage: each read inflates all of it.
    const views: TensorView[] = Array.from({ length: 10 }, (_, i) => ({
      name: `v${i}`,
      dtype: 'F32' as const,
      key: '0',
      storageNumel: numel,
      offset: numel - 1 - i,
      shape: [1],
    }));
    writeRawZip(at('views.pt'), [
      pkl(views),
      { name: 'archive/data/0', data: deflatedZeros(MiB), method: 8, size: MiB << 20, crc: 0 },
    ]);
    expect(statSync(at('views.pt')).size).toBeLessThan(1 << 20);
    const ckpt = await TorchCheckpoint.open(at('views.pt'));
    try {
      // budget: 2 x (32 MiB storage + 40 tensor bytes) + 64 MiB: four whole inflations and no more
      for (let i = 0; i < 4; i++) await ckpt.read(`v${i}`);
      expect(ckpt.inflatedBytes).toBeGreaterThan(3 * (MiB << 20));
      await expect(ckpt.read('v4')).rejects.toThrow(
        /reading 'v4' would inflate \d+ more bytes of deflated storage 'archive\/data\/0' \(\d+ inflated so far\), over the \d+-byte budget/,
      );
      expect(ckpt.inflatedBytes).toBeLessThanOrEqual(4 * (MiB << 20) + 160);
    } finally {
      await ckpt.close();
    }
    await expect(loadCheckpoint(at('views.pt'))).rejects.toThrow(/over the \d+-byte budget for this checkpoint/);
  });

  it('reads ranges of a large deflated storage, checks its CRC, and refuses one that inflates past its size', async () => {
    const n = 3 << 18; // 3 MiB of F32: past the one-call path
    const values = Float32Array.from({ length: n }, (_, i) => i);
    const bytes = new Uint8Array(values.buffer);
    const data = deflateRawSync(bytes);
    const tensors: TensorView[] = [
      { name: 'all', dtype: 'F32', key: '0', storageNumel: n, shape: [n] },
      { name: 'mid', dtype: 'F32', key: '0', storageNumel: n, offset: 500_000, shape: [4] },
      { name: 'cols', dtype: 'F32', key: '0', storageNumel: n, offset: 7, shape: [3, 2], stride: [1, 100_000] },
    ];
    const entry: RawEntry = { name: 'archive/data/0', data, method: 8, size: bytes.length, crc: crc32(bytes) };
    writeRawZip(at('ok.pt'), [pkl(tensors), entry]);
    for (const verifyCrc of [false, true]) {
      const sd = await loadCheckpoint(at('ok.pt'), { verifyCrc });
      expect(Buffer.from(sd.get('all')!.data).equals(bytes)).toBe(true);
      expect(Array.from(toFloat32(sd.get('mid')!))).toEqual([500_000, 500_001, 500_002, 500_003]);
      expect(Array.from(toFloat32(sd.get('cols')!))).toEqual([7, 100_007, 8, 100_008, 9, 100_009]);
    }
    writeRawZip(at('crc.pt'), [pkl(tensors), { ...entry, crc: entry.crc ^ 1 }]);
    await expect(loadCheckpoint(at('crc.pt'), { verifyCrc: true })).rejects.toThrow(/fails its CRC-32 check/);

    // Declares 1 MiB + 4 bytes but holds 3 MiB.
    const small = (1 << 18) + 1;
    writeRawZip(at('long.pt'), [
      pkl([{ name: 'w', dtype: 'F32', key: '0', storageNumel: small, shape: [small] }]),
      { ...entry, size: small * 4 },
    ]);
    await expect(loadCheckpoint(at('long.pt'))).rejects.toThrow(/inflates to more than its declared 1048580 bytes/);
  });
});
