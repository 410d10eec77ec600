import type { HistoryRow } from '../../experiment';
import { formatNumber, readMetricValue } from '../../experiment';
import { LATEX_PALETTE, seriesColours } from './series-colours';

// Training curves drawn with LaTeX's own `picture` environment (lines as \qbezier segments), so that the
// paper draft compiles with the standard article class and the `color` package alone: pdflatex cannot
// include the SVG charts, and no converter is assumed on the host.

/** Points kept per curve: enough for the shape, few enough for a fast compile. */
export const LATEX_POINTS_PER_CURVE = 80;

/** One metric's sampled curve. */
export interface LatexCurve {
  metric: string;
  points: { step: number; value: number }[];
}

/**
 * Samples every metric's finite values in bounded memory while history rows stream past (one pass): every
 * `stride`-th point is kept, and the stride doubles when the buffer fills. The last point is always kept.
 */
export class LatexCurveSampler {
  readonly #curves = new Map<
    string,
    {
      points: { step: number; value: number }[];
      stride: number;
      seen: number;
      last?: { step: number; value: number };
    }
  >();
  #index = 0;

  add(row: HistoryRow): void {
    const rawStep = row._step;
    const step = typeof rawStep === 'number' && Number.isFinite(rawStep) ? rawStep : this.#index;
    this.#index += 1;
    for (const key of Object.keys(row)) {
      if (key.startsWith('_')) continue;
      const value = readMetricValue(row[key]);
      if (value === undefined || !Number.isFinite(value)) continue;
      let curve = this.#curves.get(key);
      if (!curve) {
        curve = { points: [], stride: 1, seen: 0 };
        this.#curves.set(key, curve);
      }
      const point = { step, value };
      curve.last = point;
      if (curve.seen % curve.stride === 0) {
        curve.points.push(point);
        if (curve.points.length >= 2 * LATEX_POINTS_PER_CURVE) {
          curve.points = curve.points.filter((_, index) => index % 2 === 0);
          curve.stride *= 2;
        }
      }
      curve.seen += 1;
    }
  }

  /** The curve of a metric, at most {@link LATEX_POINTS_PER_CURVE} points; empty when it had no finite value. */
  curve(metric: string): LatexCurve {
    const curve = this.#curves.get(metric);
    if (!curve) return { metric, points: [] };
    const all =
      curve.last && curve.points.at(-1) !== curve.last ? [...curve.points, curve.last] : curve.points;
    if (all.length <= LATEX_POINTS_PER_CURVE) return { metric, points: all };
    const picked = Array.from(
      { length: LATEX_POINTS_PER_CURVE },
      (_, i) => all[Math.round((i * (all.length - 1)) / (LATEX_POINTS_PER_CURVE - 1))],
    ).filter((point) => point !== undefined);
    return { metric, points: picked };
  }
}

/** Plot area in `\unitlength` = 1 mm. */
const WIDTH = 110;
const HEIGHT = 55;

function coordinate(value: number): string {
  return value.toFixed(2);
}

/**
 * A `picture` drawing of some curves over step: a frame, the step and value ranges at its corners, one
 * coloured line per metric and a legend below. `escape` turns metric names into LaTeX text.
 */
export function latexCurvesPicture(curves: readonly LatexCurve[], escape: (text: string) => string): string {
  const points = curves.flatMap((curve) => curve.points);
  if (points.length === 0) return '\\fbox{No finite values to plot.}';
  const steps = points.map((point) => point.step);
  const values = points.map((point) => point.value);
  let [xMin, xMax] = [Math.min(...steps), Math.max(...steps)];
  let [yMin, yMax] = [Math.min(...values), Math.max(...values)];
  if (xMax === xMin) [xMin, xMax] = [xMin - 1, xMax + 1];
  if (yMax === yMin) {
    const pad = Math.abs(yMin) > 0 ? Math.abs(yMin) * 0.1 : 1;
    [yMin, yMax] = [yMin - pad, yMax + pad];
  }
  const x = (step: number) => ((step - xMin) / (xMax - xMin)) * WIDTH;
  const y = (value: number) => ((value - yMin) / (yMax - yMin)) * HEIGHT;
  const legendRows = Math.ceil(curves.length / 2);
  const lines = [
    '\\setlength{\\unitlength}{1mm}',
    `\\begin{picture}(${WIDTH},${HEIGHT + 4 + legendRows * 5})(-12,${-6 - legendRows * 5})`,
    `\\put(0,0){\\framebox(${WIDTH},${HEIGHT}){}}`,
    `\\put(-1,0){\\makebox(0,0)[r]{\\scriptsize ${formatNumber(yMin)}}}`,
    `\\put(-1,${HEIGHT}){\\makebox(0,0)[r]{\\scriptsize ${formatNumber(yMax)}}}`,
    `\\put(0,-3){\\makebox(0,0)[l]{\\scriptsize step ${formatNumber(xMin)}}}`,
    `\\put(${WIDTH},-3){\\makebox(0,0)[r]{\\scriptsize step ${formatNumber(xMax)}}}`,
  ];
  const colours = seriesColours(
    curves.map((curve) => curve.metric),
    LATEX_PALETTE,
  );
  curves.forEach((curve, index) => {
    const color = colours[index] ?? 'black';
    lines.push(`{\\color{${color}}`);
    for (let i = 1; i < curve.points.length; i++) {
      const from = curve.points[i - 1];
      const to = curve.points[i];
      if (!from || !to) continue;
      const [x1, y1, x2, y2] = [x(from.step), y(from.value), x(to.step), y(to.value)];
      // A quadratic Bézier with its control point at the midpoint is the straight segment.
      lines.push(
        `\\qbezier(${coordinate(x1)},${coordinate(y1)})(${coordinate((x1 + x2) / 2)},${coordinate((y1 + y2) / 2)})(${coordinate(x2)},${coordinate(y2)})`,
      );
    }
    if (curve.points.length === 1 && curve.points[0])
      lines.push(
        `\\put(${coordinate(x(curve.points[0].step))},${coordinate(y(curve.points[0].value))}){\\circle*{1}}`,
      );
    const legendX = (index % 2) * (WIDTH / 2);
    const legendY = -8 - Math.floor(index / 2) * 5;
    lines.push(`\\put(${legendX},${legendY}){\\line(1,0){6}}`, '}');
    lines.push(
      `\\put(${legendX + 8},${legendY}){\\makebox(0,0)[l]{\\small\\texttt{${escape(curve.metric)}}}}`,
    );
  });
  lines.push('\\end{picture}');
  return lines.join('\n');
}
