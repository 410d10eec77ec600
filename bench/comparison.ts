/**
 * Side by side: the embedded server against the real Temporal dev server, as ratios embedded / real of the
 * same measurement. A ratio above 1 means the embedded server's figure is the larger one, which is good for
 * throughput and bad for latency, memory and time.
 */
import { round } from './support';

/** embedded / real, to three digits; null when either side is missing or the real figure is zero. */
export function ratio(embedded: number | undefined, real: number | undefined): number | null {
  if (embedded === undefined || real === undefined || !Number.isFinite(embedded) || !Number.isFinite(real))
    return null;
  return real === 0 ? null : round(embedded / real, 3);
}

/** Ratios of every numeric field `pick` returns, by key; none when neither side was measured. */
export function ratios<T, K extends string>(
  embedded: T | undefined,
  real: T | undefined,
  pick: (side: T) => Record<K, number>,
): Partial<Record<K, number | null>> {
  const e = embedded === undefined ? undefined : pick(embedded);
  const r = real === undefined ? undefined : pick(real);
  const keys = Object.keys(e ?? r ?? {}) as K[];
  return Object.fromEntries(keys.map((key) => [key, ratio(e?.[key], r?.[key])])) as Partial<
    Record<K, number | null>
  >;
}

/** A goal of the embedded server, judged from ratios: holds only when every ratio it depends on does. */
export interface Goal {
  goal: string;
  holds: boolean | 'not measured';
  statement: string;
}

/**
 * Judges `goal` from named ratios: each must satisfy `ok`. The statement lists every ratio, so a reader sees
 * by how much it holds or fails, not just whether.
 */
export function judgeGoal(
  goal: string,
  named: Record<string, number | null>,
  ok: (ratio: number) => boolean,
): Goal {
  const entries = Object.entries(named);
  if (entries.length === 0 || entries.some(([, r]) => r === null))
    return { goal, holds: 'not measured', statement: `${goal}: not measured on both servers in this run.` };
  const failing = entries.filter(([, r]) => !ok(r!)).map(([name]) => name);
  const listed = entries.map(([name, r]) => `${name} ${r}`).join(', ');
  return {
    goal,
    holds: failing.length === 0,
    statement:
      failing.length === 0
        ? `${goal}: holds (embedded / real: ${listed}).`
        : `${goal}: does NOT hold for ${failing.join(', ')} (embedded / real: ${listed}).`,
  };
}
