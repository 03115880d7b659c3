// A small seeded generator for the places that need repeatable randomness and no more: the explorer's
// example orderings (src/shared/prompt-stats.ts) and the engine's finite-difference checks
// (engine/graph/fdcheck.ts). The generation loop has its own streams (engine/vqclip/prng.ts).

/** mulberry32 (Tommy Ettinger's 32-bit generator): a seeded stream of floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
