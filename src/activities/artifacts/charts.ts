import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { TopLevelSpec } from 'vega-lite';
import type { HistoryRow } from '../../experiment';
import { readMetricValue } from '../../experiment';
import { seriesColours, splitRole, SVG_PALETTE } from './series-colours';

// Training curves as SVG, rendered in this process by vega-lite (spec → vega) and vega's headless renderer.
// Data is inline and the loader refuses every URL, so rendering never touches the network; text is laid out
// with vega's built-in width estimate, so no font is loaded either.

/** Options of {@link renderTrainingCharts}; every field optional. */
export interface TrainingChartOptions {
  /** Points kept per series (evenly spaced, first and last included). Default `500`. */
  maxPointsPerSeries?: number;
  /** Charts rendered at most, in the order their metrics first appear. Default `20`. */
  maxCharts?: number;
  /** Only chart these metrics. Default: every numeric key not starting with `_`. */
  metrics?: readonly string[];
  /** Plot width and height in pixels (without axes and legend). Default `560` × `280`. */
  width?: number;
  height?: number;
}

/** One rendered chart: a metric group such as `loss` (`train/loss`, `eval/loss`). */
export interface TrainingChart {
  /** File-safe name, unique among the charts: `loss` → `charts/loss.svg`. */
  name: string;
  /** Title shown on the chart: the group's base name. */
  title: string;
  /** The metrics plotted, in order of first appearance. */
  metrics: string[];
  /** The SVG document. */
  svg: string;
}

/**
 * The group of a metric: its name without a train/eval word (`eval/loss` → `loss`), so that `train/loss`,
 * `eval/loss`, `val_loss` and `loss` share one chart.
 */
export function metricGroup(metric: string): string {
  return splitRole(metric).base.toLowerCase();
}

/**
 * A series sampled evenly in bounded memory: every `stride`-th point is kept, and when twice the capacity
 * is reached every other kept point is dropped and the stride doubles. The last point is always kept.
 */
class SeriesSampler {
  points: { step: number; value: number }[] = [];
  last: { step: number; value: number } | undefined;
  #stride = 1;
  #seen = 0;

  constructor(readonly capacity: number) {}

  add(step: number, value: number): void {
    const point = { step, value };
    this.last = point;
    if (this.#seen % this.#stride === 0) {
      this.points.push(point);
      if (this.points.length >= 2 * this.capacity) {
        this.points = this.points.filter((_, index) => index % 2 === 0);
        this.#stride *= 2;
      }
    }
    this.#seen += 1;
  }

  /** At most `capacity` points, evenly spaced, first and last included. */
  samples(): { step: number; value: number }[] {
    const all = this.last && this.points.at(-1) !== this.last ? [...this.points, this.last] : this.points;
    if (all.length <= this.capacity) return all;
    const picked: { step: number; value: number }[] = [];
    for (let i = 0; i < this.capacity; i++) {
      const point = all[Math.round((i * (all.length - 1)) / (this.capacity - 1))];
      if (point) picked.push(point);
    }
    return picked;
  }
}

function fileName(group: string, taken: Set<string>): string {
  const base =
    group
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '') || 'metric';
  let name = base;
  for (let index = 2; taken.has(name); index++) name = `${base}-${index}`;
  taken.add(name);
  return name;
}

const offlineLoader: vega.Loader = {
  load: (uri) => Promise.reject(new Error(`charts render from inline data only; refused to load ${uri}`)),
  sanitize: (uri) => Promise.reject(new Error(`charts render from inline data only; refused ${uri}`)),
  http: (uri) => Promise.reject(new Error(`charts render from inline data only; refused ${uri}`)),
  file: (file) => Promise.reject(new Error(`charts render from inline data only; refused ${file}`)),
};

function chartSpec(
  title: string,
  values: { _step: number; metric: string; value: number }[],
  metrics: readonly string[],
  size: { width: number; height: number },
): TopLevelSpec {
  return {
    title,
    width: size.width,
    height: size.height,
    background: 'white',
    data: { values },
    mark: { type: 'line', strokeWidth: 1.5 },
    encoding: {
      x: { field: '_step', type: 'quantitative', title: 'step' },
      // Losses rarely start near zero; a zero-based axis would flatten the part of the curve that matters.
      y: { field: 'value', type: 'quantitative', title, scale: { zero: false } },
      color: {
        field: 'metric',
        type: 'nominal',
        title: null,
        // The same colour for the same kind of series in every chart (series-colours.ts).
        scale: { domain: [...metrics], range: seriesColours(metrics, SVG_PALETTE) },
        legend: { orient: 'bottom' },
      },
    },
  };
}

/** Renders a vega-lite spec to SVG in Node, offline (inline data only). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vl.compile(spec).spec), {
    renderer: 'none',
    loader: offlineLoader,
    logLevel: vega.Error,
  });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/**
 * Renders one line chart per metric group (train and eval sides of a quantity together, e.g. `train/loss`
 * with `eval/loss`; every other metric alone), x = `_step`. Rows are read once, in order, keeping at most
 * `2 × maxPointsPerSeries` points per series; NaN and infinite values are left out of the lines. Rows
 * without a numeric `_step` are numbered by position.
 */
export async function renderTrainingCharts(
  history: Iterable<HistoryRow> | AsyncIterable<HistoryRow>,
  options: TrainingChartOptions = {},
): Promise<TrainingChart[]> {
  const capacity = Math.max(2, options.maxPointsPerSeries ?? 500);
  const only = options.metrics ? new Set(options.metrics) : undefined;
  const series = new Map<string, SeriesSampler>();
  let index = 0;
  for await (const row of history) {
    const rawStep = row._step;
    const step = typeof rawStep === 'number' && Number.isFinite(rawStep) ? rawStep : index;
    index += 1;
    for (const key of Object.keys(row)) {
      if (key.startsWith('_') || (only && !only.has(key))) continue;
      const value = readMetricValue(row[key]);
      if (value === undefined || !Number.isFinite(value)) continue;
      let sampler = series.get(key);
      if (!sampler) {
        sampler = new SeriesSampler(capacity);
        series.set(key, sampler);
      }
      sampler.add(step, value);
    }
  }

  const groups = new Map<string, string[]>();
  for (const metric of series.keys()) {
    const group = metricGroup(metric);
    groups.set(group, [...(groups.get(group) ?? []), metric]);
  }

  const taken = new Set<string>();
  const charts: TrainingChart[] = [];
  const size = { width: options.width ?? 560, height: options.height ?? 280 };
  for (const [group, metrics] of [...groups].slice(0, options.maxCharts ?? 20)) {
    const values = metrics.flatMap((metric) =>
      (series.get(metric)?.samples() ?? []).map((point) => ({
        _step: point.step,
        metric,
        value: point.value,
      })),
    );
    const svg = await renderSvg(chartSpec(group, values, metrics, size));
    charts.push({ name: fileName(group, taken), title: group, metrics, svg });
  }
  return charts;
}
