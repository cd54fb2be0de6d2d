/**
 * A random source: a function returning a float in [0, 1), passed in so that decisions (heartflow
 * coin flips, scheduler tie-breaks, reply templates) can be pinned by a seed. `Math.random` fits.
 */
export type Rng = () => number;

/**
 * mulberry32: a tiny 32-bit seeded PRNG (period 2^32), good enough for coin flips and tie-breaks,
 * and fully reproducible. The same seed always yields the same sequence.
 */
export function mulberry32(seed: number): Rng {
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
 * A 32-bit seed from a string (FNV-1a). Seeding with the message id makes a retried or stalled job
 * take the same decision as its first attempt.
 */
export function seedFromString(value: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    hash ^= value.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}
