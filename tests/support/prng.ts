/**
 * A tiny seeded pseudo-random generator for tests that draw many cases (fuzzers, property tests): the same
 * seed draws the same cases on every run and every machine, so a failure names a case that reproduces.
 */

/** Draws numbers in [0, 1) from a seed (mulberry32: 32 bits of state, good enough to pick test cases). */
export type Random = () => number;

/** A generator for `seed`. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [min, max]. */
export function integerBetween(random: Random, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** One of `items`, chosen uniformly. */
export function pick<T>(random: Random, items: readonly T[]): T {
  const item = items[Math.floor(random() * items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}
