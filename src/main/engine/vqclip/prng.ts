// The generation loop's one source of randomness: xoshiro128** (Blackman and Vigna 2018, 32-bit state
// words, period 2^128 - 1) seeded through splitmix32, with uniform integers by rejection and normal
// variates by Box-Muller. Everything is integer arithmetic on uint32 plus Math.log/sqrt/cos/sin, so the
// same seed gives the same numbers on every machine.
//
// A run draws from sub-streams keyed by (seed, stream, step): the cutouts of step 40 come from
// Rng.stream(seed, STREAM.cuts, 40) whether the run got there in one go, was paused and resumed, or was
// forked from a snapshot, so all of these give byte-identical images.
//
// Public API
//   Rng.stream(seed, ...keys) -> Rng       a generator for the sub-stream (seed and keys: uint32s)
//   Rng.fromState([s0, s1, s2, s3])        a generator at a raw state (reference vectors)
//   rng.u32() / next() [0, 1) / int(n) [0, n) / uniform(lo, hi) / normal() / fillNormal(out, scale)
//   STREAM                                 the stream numbers the loop uses

/** Sub-stream numbers: one per kind of draw, so adding draws to one kind never shifts another's. */
export const STREAM = {
  /** Random start tokens, noise start images. */
  init: 1,
  /** Per step: the cutouts' parameters and noise. */
  cuts: 2,
  /** The cutouts of image prompts (per prompt index). */
  imagePrompt: 3,
  /** Noise prompts (seeded by the prompt's own seed). */
  noisePrompt: 4,
} as const;

/** splitmix32 (Steele, Lea and Flood's SplitMix, 32-bit variant): a well-mixed uint32 from a counter. */
function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) >>> 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

const rotl = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;

export class Rng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;
  /** Box-Muller makes normals in pairs; the second waits here. */
  #spare: number | null = null;

  private constructor(s: [number, number, number, number]) {
    [this.#s0, this.#s1, this.#s2, this.#s3] = s;
  }

  /** A generator at a given xoshiro128** state (four uint32s, not all zero): for tests against reference vectors. */
  static fromState(s: readonly [number, number, number, number]): Rng {
    if ((s[0] | s[1] | s[2] | s[3]) === 0) throw new Error('Rng.fromState: the all-zero state is not allowed');
    return new Rng([s[0] >>> 0, s[1] >>> 0, s[2] >>> 0, s[3] >>> 0]);
  }

  /** The generator of the sub-stream (seed, ...keys); every key and the seed are taken as uint32. */
  static stream(seed: number, ...keys: number[]): Rng {
    const st = { s: seed >>> 0 };
    for (const k of keys) st.s = (splitmix32(st) ^ (k >>> 0)) >>> 0;
    const s: [number, number, number, number] = [splitmix32(st), splitmix32(st), splitmix32(st), splitmix32(st)];
    if ((s[0] | s[1] | s[2] | s[3]) === 0) s[0] = 1; // the one state xoshiro cannot leave
    return new Rng(s);
  }

  /** The next uint32 (xoshiro128**). */
  u32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.#s1 << 9) >>> 0;
    this.#s2 = (this.#s2 ^ this.#s0) >>> 0;
    this.#s3 = (this.#s3 ^ this.#s1) >>> 0;
    this.#s1 = (this.#s1 ^ this.#s2) >>> 0;
    this.#s0 = (this.#s0 ^ this.#s3) >>> 0;
    this.#s2 = (this.#s2 ^ t) >>> 0;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** Uniform in [0, 1), 32 bits of resolution. */
  next(): number {
    return this.u32() / 4294967296;
  }

  /** Uniform integer in [0, n), n <= 2^32, unbiased (rejection of the incomplete last block). */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 4294967296) throw new Error(`Rng.int: bad range ${n}`);
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.u32();
      if (x < limit) return x % n;
    }
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Standard normal by Box-Muller (u1 in (0, 1] so the log is finite). */
  normal(): number {
    if (this.#spare !== null) {
      const v = this.#spare;
      this.#spare = null;
      return v;
    }
    const u1 = 1 - this.next();
    const u2 = this.next();
    const r = Math.sqrt(-2 * Math.log(u1));
    const a = 2 * Math.PI * u2;
    this.#spare = r * Math.sin(a);
    return r * Math.cos(a);
  }

  /** Fills `out` with normal variates times `scale` (the same numbers as that many normal() calls). */
  fillNormal(out: Float32Array | Float64Array, scale = 1): void {
    let i = 0;
    if (this.#spare !== null && out.length > 0) {
      out[i++] = scale * this.#spare;
      this.#spare = null;
    }
    for (; i + 1 < out.length; i += 2) {
      const r = Math.sqrt(-2 * Math.log(1 - this.next()));
      const a = 2 * Math.PI * this.next();
      out[i] = scale * r * Math.cos(a);
      out[i + 1] = scale * r * Math.sin(a);
    }
    if (i < out.length) out[i] = scale * this.normal();
  }
}
