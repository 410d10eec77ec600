import { z } from 'zod';

/**
 * Durations as users write them in specs and on the command line: one or more `<number><unit>` parts,
 * units `ms`, `s`, `m`, `h`, `d`, `w`, e.g. `90s`, `30m`, `2h`, `1h30m`, `1.5h`.
 */
export const DURATION_PATTERN = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/;

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g;

const SECONDS_PER_UNIT: Record<string, number> = {
  ms: 0.001,
  s: 1,
  m: 60,
  h: 3600,
  d: 86_400,
  w: 604_800,
};

/** What to tell a user who wrote a duration Labline cannot read. */
export const DURATION_HINT = 'write a duration like "90s", "30m", "2h" or "1h30m", or a number of seconds';

/**
 * The longest duration Labline accepts anywhere: 3650 days (about 10 years), in seconds. Durations become
 * Temporal timers and deadlines (`new Date(now + duration)`); far longer ones overflow them (a Date past
 * year 275760 is "Invalid time value", a Go duration past 292 years wraps), and a workflow that computes
 * one fails every task forever. No approval or training waits longer than this.
 */
export const MAX_DURATION_SECONDS = 3650 * 86_400;

const MAX_DURATION_TEXT = '3650d (about 10 years)';

/** What to tell a user whose duration is longer than {@link MAX_DURATION_SECONDS}. */
export const MAX_DURATION_HINT = `Temporal timers and deadlines cannot wait much longer; write at most ${MAX_DURATION_TEXT}, like "30d"`;

/**
 * Parses a duration such as `"2h"`, `"30m"`, `"90s"` or `"1h30m"` into seconds.
 *
 * Surrounding whitespace is ignored. A bare number without a unit is refused, because `"90"` could mean
 * seconds or minutes; numbers of seconds belong in specs as YAML numbers, not strings.
 *
 * @returns the duration in seconds (may be fractional, e.g. `"500ms"` → `0.5`), at most
 *   {@link MAX_DURATION_SECONDS}
 * @throws RangeError naming the text and the accepted forms when it is not a duration, or the maximum when it
 *   is longer
 */
export function parseDuration(text: string): number {
  const seconds = durationSeconds(text);
  if (!(seconds <= MAX_DURATION_SECONDS)) {
    throw new RangeError(`"${text}" is longer than the maximum of ${MAX_DURATION_TEXT}`);
  }
  return seconds;
}

/** The seconds a duration text stands for, unbounded (`Infinity` for absurd lengths). */
function durationSeconds(text: string): number {
  const compact = text.trim();
  if (!DURATION_PATTERN.test(compact)) {
    throw new RangeError(`"${text}" is not a duration: ${DURATION_HINT}`);
  }
  let seconds = 0;
  for (const [, amount, unit] of compact.matchAll(DURATION_PART)) {
    seconds += Number(amount) * (SECONDS_PER_UNIT[unit ?? 's'] ?? 1);
  }
  return seconds;
}

/**
 * Formats seconds the way a person writes them: `5400` → `"1h30m"`, `0.5` → `"500ms"`, `0` → `"0s"`.
 * The result parses back to the same number of seconds (to the millisecond).
 */
export function formatDuration(seconds: number): string {
  let ms = Math.round(seconds * 1000);
  if (ms === 0) return '0s';
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
    ['ms', 1],
  ] as const) {
    if (ms >= size) {
      parts.push(`${Math.floor(ms / size)}${unit}`);
      ms %= size;
    }
  }
  return parts.join('');
}

/**
 * A duration field of a spec: a string such as `"2h"` or a number of seconds, at most
 * {@link MAX_DURATION_SECONDS}. Parses to seconds, and accepts its own output, so a parsed spec parses again
 * unchanged.
 */
export const Duration = z
  .union([
    z.number().nonnegative(),
    z.string().trim().regex(DURATION_PATTERN, 'is not a duration such as "90s", "30m", "2h" or "1h30m"'),
  ])
  .transform((value) => (typeof value === 'number' ? value : durationSeconds(value)))
  .refine((seconds) => seconds <= MAX_DURATION_SECONDS, {
    message: `must be at most ${MAX_DURATION_TEXT}`,
    params: { hint: MAX_DURATION_HINT },
  });

/**
 * Memory sizes as Slurm and container runtimes take them: a number and a unit `K`, `M`, `G` or `T`
 * (binary multiples; `Ki`/`KB`/`KiB` spellings accepted), e.g. `512M`, `4G`, `1.5Gi`.
 */
export const MEMORY_SIZE_PATTERN = /^\d+(?:\.\d+)?\s*[KMGT]i?B?$/i;

/** What to tell a user who wrote a memory size Labline cannot read. */
export const MEMORY_SIZE_HINT = 'write a size with a unit, like "512M", "4G" or "1.5T"';

const BYTES_PER_UNIT: Record<string, number> = {
  K: 1024,
  M: 1024 ** 2,
  G: 1024 ** 3,
  T: 1024 ** 4,
};

/**
 * Parses a memory size such as `"4G"` into bytes, with binary multiples (`1K` = 1024 bytes), as Slurm's
 * `--mem` does.
 *
 * @throws RangeError naming the text and the accepted forms when it is not a memory size
 */
export function parseMemorySize(text: string): number {
  const compact = text.trim();
  const match = /^(\d+(?:\.\d+)?)\s*([KMGT])i?B?$/i.exec(compact);
  if (!match) throw new RangeError(`"${text}" is not a memory size: ${MEMORY_SIZE_HINT}`);
  const [, amount, unit] = match;
  return Math.round(Number(amount) * (BYTES_PER_UNIT[(unit ?? 'K').toUpperCase()] ?? 1));
}
