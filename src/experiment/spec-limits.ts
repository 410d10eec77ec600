/**
 * How big a spec may be. Every limit is far above any real spec (the quickstart is 4 KiB, about 100 keys
 * and list items, 4 levels deep) and low enough that reading, validating and submitting a spec stays fast
 * and fits Temporal. Each is checked before the work it protects.
 */

/**
 * Keys and list items a spec may hold, counted after YAML aliases are expanded. The parsed spec is walked
 * by the schema, the error reporter and every activity that receives it; 10,000 keeps that to
 * milliseconds, and bounds what an alias "bomb" can expand to.
 */
export const MAX_SPEC_ENTRIES = 10_000;

/** How deeply mappings and lists may nest (the quickstart nests 4 levels; the schema needs at most 6). */
export const MAX_SPEC_DEPTH = 32;

/** `12,345`: numbers in limit messages, grouped so that they read at a glance. */
export function formatCount(count: number): string {
  return Number.isFinite(count) ? Math.round(count).toLocaleString('en-US') : 'uncountably many';
}
