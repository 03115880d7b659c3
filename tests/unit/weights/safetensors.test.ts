// safetensors: a file written by hand from PyTorch tensors reads exactly; write -> read round-trips
// every dtype with metadata and aligned offsets; corrupt and truncated files fail with clear errors.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  MAX_HEADER_BYTES,
  readSafetensors,
  SafetensorsReader,
  writeSafetensors,
} from '../../../src/main/engine/weights/safetensors.js';
import {
  WEIGHT_DTYPE_SIZE,
  type WeightDType,
  type StateDict,
  toFloat32,
} from '../../../src/main/engine/weights/tensor.js';
import { expected, expectMatchesTorch, fixture, tempDir } from './helpers.js';

function file(header: object | string, data = new Uint8Array(0), lengthOverride?: bigint): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const n = Buffer.alloc(8);
  n.writeBigUInt64LE(lengthOverride ?? BigInt(json.length));
  return Buffer.concat([n, json, data]);
}

describe('safetensors', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => (tmp = tempDir()));
  afterEach(() => tmp.cleanup());
  const at = (name: string) => path.join(tmp.dir, name);

  it('reads a file written from PyTorch tensors with the documented layout', async () => {
    const sd = await readSafetensors(fixture('torch-written.safetensors'));
    expectMatchesTorch(sd, expected.fixtures['torch-written.safetensors']!);
    const r = await SafetensorsReader.open(fixture('torch-written.safetensors'));
    expect(r.metadata).toEqual({ format: 'pt', source: 'make_fixtures.py' });
    expect(r.info('c.bf16')).toEqual({ dtype: 'BF16', shape: [3] });
    await r.close();
  });

  it('converts F16/BF16 to F32 on request, exactly', async () => {
    const sd = await readSafetensors(fixture('torch-written.safetensors'), { float32: true });
    const want = expected.fixtures['torch-written.safetensors']!;
    expect(Array.from(toFloat32(sd.get('b.f16')!))).toEqual(want['b.f16']!.first);
    expect(Array.from(toFloat32(sd.get('c.bf16')!))).toEqual(want['c.bf16']!.first);
    expect(sd.get('b.f16')!.dtype).toBe('F32');
  });

  it('round-trips every dtype, with __metadata__, each tensor aligned to its element size', async () => {
    const sd: StateDict = new Map();
    const dtypes = Object.keys(WEIGHT_DTYPE_SIZE) as WeightDType[];
    dtypes.forEach((dtype, i) => {
      const shape = i % 3 === 0 ? [3] : i % 3 === 1 ? [2, 3] : [];
      const n = shape.reduce((a, b) => a * b, 1) * WEIGHT_DTYPE_SIZE[dtype];
      sd.set(`t.${dtype}`, {
        dtype,
        shape,
        data: Uint8Array.from({ length: n }, (_, j) => (j * 37 + i) & (dtype === 'BOOL' ? 1 : 255)),
      });
    });
    sd.set('empty', { dtype: 'F32', shape: [0, 4], data: new Uint8Array(0) });
    await writeSafetensors(at('rt.safetensors'), sd, { format: 'pt', note: 'round trip' });
    const back = await readSafetensors(at('rt.safetensors'));
    expect(new Set(back.keys())).toEqual(new Set(sd.keys()));
    for (const [k, t] of sd) expect(back.get(k), k).toEqual(t);

    const raw = readFileSync(at('rt.safetensors'));
    const n = Number(raw.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const header = JSON.parse(raw.toString('utf8', 8, 8 + n)) as Record<
      string,
      { dtype: WeightDType; data_offsets: number[] }
    >;
    expect(header.__metadata__).toEqual({ format: 'pt', note: 'round trip' });
    for (const [k, e] of Object.entries(header)) {
      if (k !== '__metadata__') expect(e.data_offsets[0]! % WEIGHT_DTYPE_SIZE[e.dtype], k).toBe(0);
    }
  });

  it('writes atomically: a failing source leaves neither the file nor a temp file', async () => {
    const src = {
      names: () => ['a', 'b'],
      info: () => ({ dtype: 'F32' as const, shape: [2] }),
      read: async (name: string) => {
        if (name === 'b') throw new Error('disk on fire');
        return { dtype: 'F32' as const, shape: [2], data: new Uint8Array(8) };
      },
    };
    await expect(writeSafetensors(at('x.safetensors'), src)).rejects.toThrow('disk on fire');
    expect(readdirSync(tmp.dir)).toEqual([]);
    // A source whose bytes disagree with its declared shape is refused too.
    const liar = { ...src, read: async () => ({ dtype: 'F32' as const, shape: [2], data: new Uint8Array(4) }) };
    await expect(writeSafetensors(at('x.safetensors'), liar)).rejects.toThrow(/expected F32 with 8/);
    expect(existsSync(at('x.safetensors'))).toBe(false);
  });

  const CORRUPT: [string, () => Buffer, RegExp][] = [
    [
      'truncated fixture',
      () => readFileSync(fixture('truncated.safetensors')),
      /file is truncated: the header describes 98 bytes of data, the file holds 93/,
    ],
    ['shorter than the length prefix', () => Buffer.from([1, 2, 3]), /truncated \(3 bytes/],
    ['header length beyond the file', () => file({}, undefined, 1000n), /truncated: header length 1000/],
    [
      'header length over the limit',
      () => file({}, undefined, BigInt(MAX_HEADER_BYTES) + 1n),
      /exceeds the 100000000-byte limit/,
    ],
    ['header not JSON', () => file('{"a": '), /not valid JSON/],
    ['header not an object', () => file('[1,2]'), /does not start with '\{'/],
    [
      'unknown dtype',
      () => file({ a: { dtype: 'F8_E4M3', shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)),
      /'a' has unsupported dtype "F8_E4M3"/,
    ],
    [
      'negative dimension',
      () => file({ a: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } }),
      /invalid dimension -1/,
    ],
    [
      'size mismatch',
      () => file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, new Uint8Array(4)),
      /needs 8 bytes but data_offsets \[0, 4\] span 4/,
    ],
    [
      'overlapping tensors',
      () =>
        file(
          {
            a: { dtype: 'U8', shape: [4], data_offsets: [0, 4] },
            b: { dtype: 'U8', shape: [2], data_offsets: [2, 4] },
          },
          new Uint8Array(4),
        ),
      /overlapping/,
    ],
    [
      'a gap',
      () => file({ a: { dtype: 'U8', shape: [2], data_offsets: [2, 4] } }, new Uint8Array(4)),
      /gap between tensors/,
    ],
    [
      'trailing bytes',
      () => file({ a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] } }, new Uint8Array(5)),
      /3 unexpected bytes after the last tensor/,
    ],
    ['metadata not strings', () => file({ __metadata__: { a: 1 } }), /__metadata__\.a is not a string/],
  ];
  it.each(CORRUPT)('rejects %s', async (_name, make, message) => {
    writeFileSync(at('bad.safetensors'), make());
    await expect(SafetensorsReader.open(at('bad.safetensors'))).rejects.toThrow(message);
  });
});
