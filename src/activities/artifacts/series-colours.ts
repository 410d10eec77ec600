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
const WORDS = Object.keys(ROLE_OF_WORD).join('|');
const PREFIX = new RegExp(`^(${WORDS})[_/.-]`, 'i');
const SUFFIX = new RegExp(`[_/.-](${WORDS})$`, 'i');

export function seriesRole(metric: string): SeriesRole {
  const word = (PREFIX.exec(metric)?.[1] ?? SUFFIX.exec(metric)?.[1])?.toLowerCase();
  return word === undefined ? 'other' : (ROLE_OF_WORD[word] ?? 'other');
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
