// Shared by the weights tests: the fixtures folder and what PyTorch recorded about each fixture.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { type StateDict, toFloat32, typedArrayOf, type WeightTensor } from '../../../src/main/engine/weights/tensor.js';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/weights');
export const fixture = (name: string) => path.join(FIXTURES, name);

export interface ExpectedTensor {
  dtype: string;
  shape: number[];
  sum: number;
  first: number[];
  sha256: string;
  contiguous: boolean;
}

export const expected = JSON.parse(readFileSync(fixture('expected.json'), 'utf8')) as {
  torch: string;
  marker: string;
  fixtures: Record<string, Record<string, ExpectedTensor>>;
};

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Every value as a JS number, exactly where the dtype allows (F64, I64 up to 2^53, F16/BF16 via F32). */
export function values(t: WeightTensor): number[] {
  if (t.dtype === 'F16' || t.dtype === 'BF16') return Array.from(toFloat32(t));
  const a = typedArrayOf(t);
  return a instanceof BigInt64Array ? Array.from(a, (v) => Number(v)) : Array.from(a as ArrayLike<number>);
}

/** Asserts a loaded state dict is exactly what PyTorch wrote: names in order, dtypes, shapes, bytes, sums, values. */
export function expectMatchesTorch(sd: StateDict, want: Record<string, ExpectedTensor>): void {
  expect([...sd.keys()].sort()).toEqual(Object.keys(want).sort());
  for (const [name, w] of Object.entries(want)) {
    const t = sd.get(name)!;
    expect({ name, dtype: t.dtype, shape: t.shape }).toEqual({ name, dtype: w.dtype, shape: w.shape });
    expect(sha256(t.data), `bytes of ${name}`).toBe(w.sha256);
    const v = values(t);
    const sum = v.reduce((a, b) => a + b, 0);
    expect(Math.abs(sum - w.sum), `sum of ${name}`).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(w.sum)));
    expect(v.slice(0, w.first.length), `first values of ${name}`).toEqual(w.first);
  }
}

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fstudio-weights-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
