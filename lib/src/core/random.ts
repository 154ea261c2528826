/**
 * Seeded randomness: the one PRNG of parenlens (dataset generation, bootstrap resampling, test
 * checkpoints), so that every result is a pure function of its seed.
 *
 * The generator is mulberry32 (32-bit state, period 2^32): fast and well mixed, which is all that
 * resampling and synthetic weights need; it is not cryptographic.
 *
 * @example
 * const rand = seededRandom(42);
 * rand(); // a uniform in [0, 1), the same for seed 42 on every machine
 * const perTemplate = seededRandom(streamSeed("2502|authors|analysis|3")); // an independent stream per key
 */

/** A uniform [0, 1) generator for `seed` (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A 32-bit seed for an independent stream named `key`: FNV-1a of the key, started from the
 * FNV offset basis mixed with `seed` (with `seed` 0 it is plain FNV-1a).
 *
 * @default seed 0
 */
export function streamSeed(key: string, seed = 0): number {
  let h = 0x811c9dc5 ^ Math.imul(seed >>> 0, 0x9e3779b1);
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
