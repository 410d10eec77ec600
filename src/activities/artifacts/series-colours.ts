/**
 * One colour per kind of series in every chart of an experiment's documents: the training side of a metric
 * is always blue, the evaluation side always orange (red in LaTeX), whatever else a chart holds, so that a
 * reader who learned the colours in Figure 1 can read Figure 2 without its legend.
 */

/** Which side of a quantity a metric is: `train/loss` train, `val_loss` eval, `test/acc` test. */
export type SeriesRole = 'train' | 'eval' | 'test' | 'other';

const ROLE_OF_WORD: Record<string, SeriesRole> = {
  train: 'train',
  training: 'train',
  eval: 'eval',
  val: 'eval',
  valid: 'eval',
  validation: 'eval',
  dev: 'eval',
  test: 'test',
};
const WORDS = `(${Object.keys(ROLE_OF_WORD).join('|')})`;
const PREFIX = new RegExp(`^${WORDS}[_/.-](.+)$`, 'i');
const SUFFIX = new RegExp(`^(.+)[_/.-]${WORDS}$`, 'i');

/**
 * A metric's side and the quantity it measures: `eval/loss` is the eval side of `loss`, `val_acc` of `acc`,
 * `lr` the `other` side of itself. Charts group a quantity's sides together (`metricGroup` in charts.ts).
 */
export function splitRole(metric: string): { role: SeriesRole; base: string } {
  const prefixed = PREFIX.exec(metric);
  if (prefixed) return { role: ROLE_OF_WORD[prefixed[1]!.toLowerCase()] ?? 'other', base: prefixed[2]! };
  const suffixed = SUFFIX.exec(metric);
  if (suffixed) return { role: ROLE_OF_WORD[suffixed[2]!.toLowerCase()] ?? 'other', base: suffixed[1]! };
  return { role: 'other', base: metric };
}

export function seriesRole(metric: string): SeriesRole {
  return splitRole(metric).role;
}

/** A colour per role, and spares for a second series of a role already drawn in the same chart. */
export interface SeriesPalette {
  roles: Record<SeriesRole, string>;
  spares: readonly string[];
}

/** Vega's default category colours, by role. */
export const SVG_PALETTE: SeriesPalette = {
  roles: { train: '#4c78a8', eval: '#f58518', test: '#54a24b', other: '#b279a2' },
  spares: ['#e45756', '#72b7b2', '#eeca3b', '#9d755d', '#bab0ac'],
};

/** Names the LaTeX `color` package defines, by role. */
export const LATEX_PALETTE: SeriesPalette = {
  roles: { train: 'blue', eval: 'red', test: 'black', other: 'magenta' },
  spares: ['cyan', 'green', 'yellow'],
};

/**
 * The colour of each of `metrics` (in order) in one chart: its role's, or the next spare when that is taken;
 * once the spares run out too, colours repeat (a chart with that many series of one kind is rare).
 */
export function seriesColours(metrics: readonly string[], palette: SeriesPalette): string[] {
  const used = new Set<string>();
  const spares = [...palette.spares];
  return metrics.map((metric) => {
    const own = palette.roles[seriesRole(metric)];
    const colour = !used.has(own) ? own : (spares.find((spare) => !used.has(spare)) ?? own);
    used.add(colour);
    return colour;
  });
}
