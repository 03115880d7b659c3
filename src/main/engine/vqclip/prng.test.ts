// The seeded generator against an independent C implementation (xoshiro128** as published by Blackman and
// Vigna; splitmix32 as murmur3's finaliser over a Weyl sequence), compiled and run once to get these numbers,
// and the distributions it derives (uniform integers, Box-Muller normals) checked statistically.
import { describe, expect, it } from 'vitest';
import { Rng } from './prng.js';

describe('xoshiro128**', () => {
  it('matches the reference implementation from state (1, 2, 3, 4)', () => {
    const r = Rng.fromState([1, 2, 3, 4]);
    expect(Array.from({ length: 6 }, () => r.u32())).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
  });

  it('seeds sub-streams through splitmix32 as the C reference does', () => {
    const r = Rng.stream(42, 2, 7);
    expect(Array.from({ length: 6 }, () => r.u32())).toEqual([
      2337041207, 3072611065, 1421847815, 3010813764, 3594860732, 320338958,
    ]);
  });

  it('gives different streams for different seeds and keys, the same for the same', () => {
    const first = (r: Rng) => Array.from({ length: 4 }, () => r.u32()).join();
    expect(first(Rng.stream(1, 2, 3))).toBe(first(Rng.stream(1, 2, 3)));
    expect(first(Rng.stream(1, 2, 3))).not.toBe(first(Rng.stream(1, 2, 4)));
    expect(first(Rng.stream(1, 2, 3))).not.toBe(first(Rng.stream(2, 2, 3)));
    expect(first(Rng.stream(1, 2))).not.toBe(first(Rng.stream(1, 2, 0)));
    expect(() => Rng.fromState([0, 0, 0, 0])).toThrow(/all-zero/);
  });
});

describe('derived distributions', () => {
  it('int(n) is uniform and in range, also for n that does not divide 2^32', () => {
    const r = Rng.stream(5);
    const n = 7;
    const counts = new Array<number>(n).fill(0);
    const N = 70000;
    for (let i = 0; i < N; i++) {
      const x = r.int(n);
      expect(Number.isInteger(x) && x >= 0 && x < n).toBe(true);
      counts[x]!++;
    }
    // Chi-square with 6 degrees of freedom: 22.5 is its 0.999 quantile.
    const chi = counts.reduce((s, c) => s + (c - N / n) ** 2 / (N / n), 0);
    expect(chi).toBeLessThan(22.5);
    expect(() => r.int(0)).toThrow(/bad range/);
  });

  it('normal() has mean 0, variance 1 and normal tails (Box-Muller)', () => {
    const r = Rng.stream(9);
    const N = 200000;
    let s = 0;
    let s2 = 0;
    let beyond2 = 0;
    for (let i = 0; i < N; i++) {
      const x = r.normal();
      s += x;
      s2 += x * x;
      if (Math.abs(x) > 2) beyond2++;
    }
    const mean = s / N;
    const variance = s2 / N - mean * mean;
    expect(Math.abs(mean)).toBeLessThan(5 / Math.sqrt(N)); // 5 standard errors
    expect(Math.abs(variance - 1)).toBeLessThan(0.02);
    expect(Math.abs(beyond2 / N - 0.0455)).toBeLessThan(0.003); // P(|x| > 2) = 0.0455
  });

  it('next() is in [0, 1) and fillNormal scales', () => {
    const r = Rng.stream(3);
    for (let i = 0; i < 1000; i++) {
      const x = r.next();
      expect(x >= 0 && x < 1).toBe(true);
    }
    const a = new Float32Array(10000);
    Rng.stream(3).fillNormal(a, 0.1);
    const sd = Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length);
    expect(Math.abs(sd - 0.1)).toBeLessThan(0.005);
  });
});
