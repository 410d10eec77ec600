import { z } from 'zod';
import type { HistoryRow } from './observation';
import { readMetricValue } from './observation';

// The numbers analysis agents write about are computed here, in code, from the run history. Agents interpret
// them; the grounding check holds their text to them.

/** Whether a lower or a higher value of a metric is better. */
export const MetricGoal = z.enum(['min', 'max']);
/** Whether a lower or a higher value of a metric is better. */
export type MetricGoal = z.infer<typeof MetricGoal>;

const LOWER_IS_BETTER =
  /loss|error|perplexity|(^|[^a-z])(err|ppl|mse|mae|rmse|nll|wer|cer|fid|regret)([^a-z]|$)/i;

/**
 * Guesses whether lower or higher is better from a metric's name: names with loss, error, perplexity, err,
 * ppl, mse, mae, rmse, nll, wer, cer, fid or regret are lower-is-better; anything else higher-is-better.
 */
export function metricGoalFromName(metric: string): MetricGoal {
  return LOWER_IS_BETTER.test(metric) ? 'min' : 'max';
}

/** Settings of {@link computeAnalysis} and {@link AnalysisAccumulator}; every field has a default. */
export const AnalysisOptions = z.object({
  /** Goal per metric, overriding {@link metricGoalFromName} (a spec's `analysis_pipeline.metric_goals`). Default `{}`. */
  goals: z.record(z.string(), MetricGoal).default({}),
  /** Only analyse these metrics. Default: every numeric key not starting with `_`. */
  metrics: z.array(z.string()).optional(),
  /** Metrics tracked at most; later new keys are ignored (and listed in `ignored_metrics`). Default `200`. */
  max_metrics: z.number().int().positive().default(200),
  /**
   * Points kept per metric for curve statistics (the history is downsampled evenly to between this many and
   * twice this many). Exact statistics (final, min, max, mean, step changes) use every point. Default `1024`.
   */
  max_points_per_metric: z.number().int().min(16).default(1024),
  /** Curve statistics need at least this many finite points of a metric. Default `5`. */
  min_points: z.number().int().min(2).default(5),
  /**
   * A lower-is-better metric diverged when its final value exceeds this multiple of its best and it gave
   * back more than half of its progress from the first value (a higher-is-better one: below best / factor
   * and past halfway back). NaN or infinite values always count. Default `2`.
   */
  divergence_factor: z.number().gt(1).default(2),
  /** Plateau: the last fraction of the metric's steps examined. Default `0.25` (the last quarter). */
  plateau_window: z.number().gt(0).lte(1).default(0.25),
  /** Plateau: relative improvement across that window below which the metric has plateaued. Default `0.01` (1%). */
  plateau_threshold: z.number().nonnegative().default(0.01),
  /**
   * Instability: a point is a spike when it is worse (by the goal) than both of its neighbours by more than
   * this many times the curve's own noise (`noise_std`), and a curve with a spike is unstable. Ordinary
   * minibatch noise stays below about 7 (the quickstart's train loss: 3 to 7); a spike that noise of that
   * size makes about once in 10⁸ points is 8. Default `8`.
   */
  instability_threshold: z.number().positive().default(8),
  /**
   * Overfitting: relative worsening of the eval metric from its best to its final value, while the train
   * metric kept improving, above which the pair is flagged. Default `0.02` (2%).
   */
  overfitting_threshold: z.number().nonnegative().default(0.02),
  /**
   * Generalization gap: the last fraction of the pair's steps over which the train and eval curves are
   * averaged and compared, so that a single minibatch is never compared with a full evaluation. Default
   * `0.1` (the last tenth).
   */
  gap_window: z.number().gt(0).lte(1).default(0.1),
  /**
   * Generalization gap: how much worse than train the eval metric must be, relative to the train value, to
   * count as a gap (it must also exceed the noise of both curves). Default `0.1` (10%).
   */
  gap_threshold: z.number().nonnegative().default(0.1),
});
/** Settings of the analysis, with defaults filled in. */
export type AnalysisOptions = z.infer<typeof AnalysisOptions>;
/** Settings of the analysis as a caller gives them; every field optional. */
export type AnalysisOptionsInput = z.input<typeof AnalysisOptions>;

/** Plateau statistics of one metric over the last part of training. */
export const PlateauFacts = z.object({
  /** First step of the examined window. */
  window_start_step: z.number(),
  /** Improvement across the window relative to the value at its start (mean of its first quarter); positive is better. */
  relative_improvement: z.number(),
  /** Whether the improvement is below `plateau_threshold`. */
  plateaued: z.boolean(),
  /**
   * Whether the change across the window is within what the curve's noise alone would give (less than twice
   * its standard error): a small negative `relative_improvement` then means no change, not a worsening.
   */
  within_noise: z.boolean(),
});
/** Plateau statistics of one metric. */
export type PlateauFacts = z.infer<typeof PlateauFacts>;

/** Everything computed about one metric. Values are `null` where they do not exist (no finite point). */
export const MetricFacts = z.object({
  /** Whether lower or higher is better. */
  goal: MetricGoal,
  /** Rows that held the metric, finite or not. */
  points: z.number().int().nonnegative(),
  /** Rows whose value was NaN or infinite. */
  non_finite_points: z.number().int().nonnegative(),
  /** Step of the first NaN or infinite value. */
  first_non_finite_step: z.number().nullable(),
  /** First finite value and its step. */
  first: z.number().nullable(),
  first_step: z.number().nullable(),
  /** Last logged value (`null` when it was NaN or infinite) and its step. */
  final: z.number().nullable(),
  final_step: z.number().nullable(),
  /** Smallest finite value and its (first) step. */
  min: z.number().nullable(),
  min_step: z.number().nullable(),
  /** Largest finite value and its (first) step. */
  max: z.number().nullable(),
  max_step: z.number().nullable(),
  /** Best value by the goal (min or max) and its step. */
  best: z.number().nullable(),
  best_step: z.number().nullable(),
  /** Mean and standard deviation of the finite values. */
  mean: z.number().nullable(),
  std: z.number().nullable(),
  /** Relative improvement from the first to the final value, by the goal (positive is better); e.g. `0.1`: 10% better. */
  improvement: z.number().nullable(),
  /**
   * The scatter of one point that the curve itself shows: a robust standard deviation of the changes
   * between consecutive points (1.4826 × their median absolute deviation, / √2), at least the smallest
   * change the metric makes; `null` with fewer than `min_points` points. Trends and rare spikes barely move it.
   */
  noise_std: z.number().nullable(),
  /**
   * The largest spike: how far a point is worse (by the goal) than both of its neighbours, in units of
   * `noise_std`; `0` when no point is worse than both; `null` with fewer than `min_points` points.
   */
  largest_spike: z.number().nullable(),
  /** The step of that spike; `null` when there is none. */
  largest_spike_step: z.number().nullable(),
  /** Spikes larger than `instability_threshold` noise widths. */
  spikes: z.number().int().nonnegative(),
  /** It has a spike: it departs from its own trend by far more than its noise explains. */
  unstable: z.boolean(),
  /** NaN/inf appeared, or the final value moved far from the best (see `divergence_factor`). */
  diverged: z.boolean(),
  /** Why it counts as diverged. */
  divergence_reason: z.enum(['non_finite', 'moved_away_from_best']).nullable(),
  /** Plateau over the last part of training; `null` with too few points. */
  plateau: PlateauFacts.nullable(),
});
/** Everything computed about one metric. */
export type MetricFacts = z.infer<typeof MetricFacts>;

/** A train metric and its eval counterpart (`train_loss`/`eval_loss`, `train/acc`/`val/acc`, `loss`/`val_loss`). */
export const TrainEvalPair = z.object({
  /** Shared name, e.g. `loss`. */
  base: z.string(),
  /** The train metric's key. */
  train: z.string(),
  /** The eval metric's key. */
  eval: z.string(),
  /** The goal of both. */
  goal: MetricGoal,
  /** Final train and eval values, as last logged (a train value may be a single minibatch). */
  train_final: z.number().nullable(),
  eval_final: z.number().nullable(),
  /** First step of the window the gap is measured over (the last `gap_window` of the pair's steps). */
  window_start_step: z.number().nullable(),
  /** Mean of the train values in that window: the smoothed train curve where eval was measured. */
  train_mean: z.number().nullable(),
  /** Mean of the eval values in that window (at least its final value). */
  eval_mean: z.number().nullable(),
  /** `eval_mean − train_mean`. */
  gap: z.number().nullable(),
  /** `gap / |train_mean|`. */
  relative_gap: z.number().nullable(),
  /** The standard deviation the gap would have from the noise of both curves alone; `null` when unknown. */
  gap_noise: z.number().nullable(),
  /**
   * Eval is worse than train by more than `gap_threshold` of the train value and by more than three times
   * `gap_noise`: a generalization gap, not noise. `false` when the noise of either curve is unknown.
   */
  generalization_gap: z.boolean(),
  /** Relative worsening of eval from its best to its final value (positive is worse). */
  eval_worsening_since_best: z.number().nullable(),
  /** Relative improvement of train from the step of eval's best to its final value (positive is better). */
  train_improvement_since_eval_best: z.number().nullable(),
  /** Eval got worse since its best while train kept improving. */
  overfitting: z.boolean(),
});
/** A train metric and its eval counterpart. */
export type TrainEvalPair = z.infer<typeof TrainEvalPair>;

/** A finding worth a sentence in the analysis. */
export const Anomaly = z.object({
  /** What kind. */
  kind: z.enum(['divergence', 'plateau', 'instability', 'overfitting']),
  /** The metric (for overfitting: the eval metric). */
  metric: z.string(),
  /** One sentence with the numbers behind it. */
  message: z.string(),
});
/** A finding worth a sentence in the analysis. */
export type Anomaly = z.infer<typeof Anomaly>;

/** The numbers an analysis works from. Plain JSON (no NaN): safe in workflow history and LLM prompts. */
export const AnalysisFacts = z.object({
  /** History rows read. */
  rows: z.number().int().nonnegative(),
  /** First and last step seen. */
  first_step: z.number().nullable(),
  last_step: z.number().nullable(),
  /** Facts per metric. */
  metrics: z.record(z.string(), MetricFacts),
  /** Train/eval pairs found by name. */
  pairs: z.array(TrainEvalPair),
  /** Divergence, plateaus, instability and overfitting, in metric order. */
  anomalies: z.array(Anomaly),
  /** Up to 20 metric keys ignored because `max_metrics` was reached. */
  ignored_metrics: z.array(z.string()),
});
/** The numbers an analysis works from. */
export type AnalysisFacts = z.infer<typeof AnalysisFacts>;

interface Point {
  step: number;
  value: number;
}

/** One side of a train/eval pair: its key, its facts and its (downsampled) curve. */
interface PairSide {
  name: string;
  facts: MetricFacts;
  samples: readonly Point[];
}

/** Running mean and variance (Welford), exact over any number of values in constant memory. */
class RunningMoments {
  count = 0;
  mean = 0;
  #m2 = 0;

  add(value: number): void {
    this.count += 1;
    const delta = value - this.mean;
    this.mean += delta / this.count;
    this.#m2 += delta * (value - this.mean);
  }

  std(): number | null {
    return this.count < 2 ? null : Math.sqrt(this.#m2 / (this.count - 1));
  }
}

/** Streaming state of one metric: exact statistics plus an evenly downsampled curve of bounded size. */
class MetricTrack {
  points = 0;
  nonFinite = 0;
  firstNonFiniteStep: number | null = null;
  first: Point | null = null;
  last: { step: number; value: number } | null = null;
  lastFinite: Point | null = null;
  min: Point | null = null;
  max: Point | null = null;
  readonly values = new RunningMoments();
  /** Every `stride`-th finite point; halved (keeping every other point) when it reaches twice the capacity. */
  curve: Point[] = [];
  #stride = 1;
  #finiteSeen = 0;

  constructor(readonly capacity: number) {}

  add(step: number, value: number): void {
    this.points += 1;
    this.last = { step, value };
    if (!Number.isFinite(value)) {
      this.nonFinite += 1;
      this.firstNonFiniteStep ??= step;
      return;
    }
    const point = { step, value };
    this.first ??= point;
    this.lastFinite = point;
    this.values.add(value);
    if (!this.min || value < this.min.value) this.min = point;
    if (!this.max || value > this.max.value) this.max = point;
    if (this.#finiteSeen % this.#stride === 0) {
      this.curve.push(point);
      if (this.curve.length >= 2 * this.capacity) {
        this.curve = this.curve.filter((_, index) => index % 2 === 0);
        this.#stride *= 2;
      }
    }
    this.#finiteSeen += 1;
  }

  /** The downsampled curve, ending with the last finite point. */
  samples(): Point[] {
    const tail = this.curve.at(-1);
    return this.lastFinite && tail !== this.lastFinite ? [...this.curve, this.lastFinite] : this.curve;
  }
}

function averageOf(points: readonly Point[]): number {
  return points.reduce((sum, point) => sum + point.value, 0) / points.length;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[middle] ?? 0)
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/**
 * The scatter of one point of a curve, from the changes between consecutive points: their median absolute
 * deviation (so a trend, which shifts every change alike, and a few spikes do not count), scaled to a
 * standard deviation (× 1.4826) of one point (/ √2). At least the smallest nonzero change, so a metric that
 * moves in steps (accuracy on a small eval set) is not credited with no noise at all.
 */
function noiseStd(samples: readonly Point[]): number {
  const changes = samples.slice(1).map((point, index) => point.value - (samples[index]?.value ?? 0));
  if (changes.length === 0) return 0;
  const center = median(changes);
  const robust = (1.4826 * median(changes.map((change) => Math.abs(change - center)))) / Math.SQRT2;
  const steps = changes.map(Math.abs).filter((change) => change > 0);
  return Math.max(robust, steps.length > 0 ? Math.min(...steps) : 0);
}

/**
 * Points worse (by the goal) than both neighbours, by how much in noise widths. A smooth curve, however
 * steep or curved, has no such point; noise gives small ones; a spike gives one far beyond the noise. (A
 * spike is a nonzero change, so `noise` is positive whenever there is one: see {@link noiseStd}.)
 */
function spikesOf(
  samples: readonly Point[],
  goal: MetricGoal,
  noise: number,
): { step: number; size: number }[] {
  const worse = (point: Point) => (goal === 'min' ? point.value : -point.value);
  const spikes: { step: number; size: number }[] = [];
  for (let index = 1; index + 1 < samples.length; index++) {
    const [before, point, after] = [samples[index - 1], samples[index], samples[index + 1]];
    if (!before || !point || !after) continue;
    const height = worse(point) - Math.max(worse(before), worse(after));
    if (height > 0 && noise > 0) spikes.push({ step: point.step, size: height / noise });
  }
  return spikes;
}

/** The samples with `from < step <= to`. */
function samplesIn(samples: readonly Point[], from: number, to: number): Point[] {
  return samples.filter((sample) => sample.step > from && sample.step <= to);
}

/** The mean of some samples (at least one), how many, and the first step among them. */
interface WindowMean {
  mean: number;
  n: number;
  firstStep: number;
}

function meanOf(points: readonly Point[]): WindowMean {
  return { mean: averageOf(points), n: points.length, firstStep: points[0]?.step ?? 0 };
}

/**
 * A curve smoothed over the window of `width` steps ending at `step`: the mean of its samples there, else
 * (a curve logged more sparsely than the window) its last sample at or before `step`.
 */
function smoothedAt(samples: readonly Point[], step: number, width: number): WindowMean | undefined {
  const inWindow = samplesIn(samples, step - width, step);
  if (inWindow.length > 0) return meanOf(inWindow);
  const before = samples.filter((sample) => sample.step <= step).at(-1) ?? samples[0];
  return before ? meanOf([before]) : undefined;
}

/** Improvement from `from` to `to` relative to `from`, oriented by the goal: positive is better. */
function relativeImprovement(from: number, to: number, goal: MetricGoal): number {
  const change = goal === 'min' ? from - to : to - from;
  return change / Math.max(Math.abs(from), 1e-12);
}

const ROLE_WORDS = {
  train: ['train', 'training'],
  eval: ['eval', 'val', 'valid', 'validation', 'dev', 'test'],
} as const;

/** Splits `train_loss`, `eval/loss`, `loss_val` into a role and a base name. */
function splitRole(metric: string): { role: 'train' | 'eval'; word: string; base: string } | undefined {
  for (const role of ['train', 'eval'] as const) {
    for (const word of ROLE_WORDS[role]) {
      const prefix = new RegExp(`^${word}[_/.-](.+)$`, 'i').exec(metric);
      if (prefix?.[1]) return { role, word, base: prefix[1] };
      const suffix = new RegExp(`^(.+)[_/.-]${word}$`, 'i').exec(metric);
      if (suffix?.[1]) return { role, word, base: suffix[1] };
    }
  }
  return undefined;
}

function formatNumber(value: number): string {
  return Number.isInteger(value) ? String(value) : String(Number(value.toPrecision(4)));
}

/**
 * Computes {@link AnalysisFacts} from history rows streamed in step order, in bounded memory: per metric a
 * constant amount of exact state plus at most `2 × max_points_per_metric` curve points, for at most
 * `max_metrics` metrics. Deterministic (no randomness), so workflow code may use it too.
 */
export class AnalysisAccumulator {
  readonly #options: AnalysisOptions;
  readonly #tracks = new Map<string, MetricTrack>();
  readonly #only: ReadonlySet<string> | undefined;
  readonly #ignored = new Set<string>();
  #rows = 0;
  #firstStep: number | null = null;
  #lastStep: number | null = null;

  /** @param options see {@link AnalysisOptions}; all optional */
  constructor(options: AnalysisOptionsInput = {}) {
    this.#options = AnalysisOptions.parse(options);
    this.#only = this.#options.metrics ? new Set(this.#options.metrics) : undefined;
  }

  /**
   * Takes one history row. `_step` orders it (the row's index when absent); keys starting with `_` and
   * values that are not numbers (histograms, strings) are skipped; `NaN`/`Infinity` (or their strings)
   * count as non-finite points.
   */
  add(row: HistoryRow): void {
    const rawStep = row._step;
    const step = typeof rawStep === 'number' && Number.isFinite(rawStep) ? rawStep : this.#rows;
    this.#rows += 1;
    this.#firstStep ??= step;
    this.#lastStep = step;
    for (const key of Object.keys(row)) {
      if (key.startsWith('_')) continue;
      if (this.#only && !this.#only.has(key)) continue;
      const value = readMetricValue(row[key]);
      if (value === undefined) continue;
      let track = this.#tracks.get(key);
      if (!track) {
        if (this.#tracks.size >= this.#options.max_metrics) {
          if (this.#ignored.size < 20) this.#ignored.add(key);
          continue;
        }
        track = new MetricTrack(this.#options.max_points_per_metric);
        this.#tracks.set(key, track);
      }
      track.add(step, value);
    }
  }

  /** Curve points held in memory over all metrics: at most `2 × max_points_per_metric × max_metrics`. */
  get retainedPoints(): number {
    let total = 0;
    for (const track of this.#tracks.values()) total += track.curve.length;
    return total;
  }

  /** The facts so far. May be called repeatedly; adding more rows afterwards continues the analysis. */
  result(): AnalysisFacts {
    const metrics: Record<string, MetricFacts> = {};
    const anomalies: Anomaly[] = [];
    for (const [metric, track] of [...this.#tracks].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const facts = this.#metricFacts(metric, track);
      metrics[metric] = facts;
      anomalies.push(...this.#metricAnomalies(metric, facts));
    }
    const pairs = this.#pairs(metrics);
    for (const pair of pairs) {
      if (!pair.overfitting) continue;
      anomalies.push({
        kind: 'overfitting',
        metric: pair.eval,
        message: `${pair.eval} worsened ${formatNumber(100 * (pair.eval_worsening_since_best ?? 0))}% from its best while ${pair.train} improved ${formatNumber(100 * (pair.train_improvement_since_eval_best ?? 0))}%`,
      });
    }
    return {
      rows: this.#rows,
      first_step: this.#firstStep,
      last_step: this.#lastStep,
      metrics,
      pairs,
      anomalies,
      ignored_metrics: [...this.#ignored],
    };
  }

  #metricFacts(metric: string, track: MetricTrack): MetricFacts {
    const options = this.#options;
    const goal = options.goals[metric] ?? metricGoalFromName(metric);
    const best = goal === 'min' ? track.min : track.max;
    const final = track.last && Number.isFinite(track.last.value) ? track.last.value : null;
    const samples = track.samples();
    const enough = samples.length >= options.min_points;
    const noise = enough ? noiseStd(samples) : null;
    const spikes = noise === null ? [] : spikesOf(samples, goal, noise);
    const largest = spikes.reduce<{ step: number; size: number } | undefined>(
      (worst, spike) => (worst && worst.size >= spike.size ? worst : spike),
      undefined,
    );
    const spikeCount = spikes.filter((spike) => spike.size > options.instability_threshold).length;

    let divergenceReason: MetricFacts['divergence_reason'] = null;
    if (track.nonFinite > 0) divergenceReason = 'non_finite';
    else if (final !== null && best && best.value > 0 && track.first) {
      const factor = options.divergence_factor;
      // A noisy minibatch loss often ends a few times above its luckiest batch while still far below where
      // it started; divergence also means it gave back more than half of the progress it had made.
      const midway = (track.first.value + best.value) / 2;
      const away =
        goal === 'min'
          ? final > factor * best.value && final > midway
          : final < best.value / factor && final < midway;
      if (away) divergenceReason = 'moved_away_from_best';
    }

    return {
      goal,
      points: track.points,
      non_finite_points: track.nonFinite,
      first_non_finite_step: track.firstNonFiniteStep,
      first: track.first?.value ?? null,
      first_step: track.first?.step ?? null,
      final,
      final_step: track.last?.step ?? null,
      min: track.min?.value ?? null,
      min_step: track.min?.step ?? null,
      max: track.max?.value ?? null,
      max_step: track.max?.step ?? null,
      best: best?.value ?? null,
      best_step: best?.step ?? null,
      mean: track.values.count > 0 ? track.values.mean : null,
      std: track.values.std(),
      improvement: track.first && final !== null ? relativeImprovement(track.first.value, final, goal) : null,
      noise_std: noise,
      largest_spike: noise === null ? null : (largest?.size ?? 0),
      largest_spike_step: largest?.step ?? null,
      spikes: spikeCount,
      unstable: spikeCount > 0,
      diverged: divergenceReason !== null,
      divergence_reason: divergenceReason,
      plateau: this.#plateau(samples, goal, noise),
    };
  }

  #plateau(samples: readonly Point[], goal: MetricGoal, noise: number | null): PlateauFacts | null {
    const first = samples[0];
    const last = samples.at(-1);
    if (!first || !last) return null;
    const windowStart = last.step - this.#options.plateau_window * (last.step - first.step);
    const window = samples.filter((sample) => sample.step >= windowStart);
    if (window.length < this.#options.min_points) return null;
    const quarter = Math.max(1, Math.floor(window.length / 4));
    const start = averageOf(window.slice(0, quarter));
    const end = averageOf(window.slice(-quarter));
    // The difference of two means of `quarter` points each, from noise alone: noise × √(2 / quarter).
    const standardError = (noise ?? 0) * Math.sqrt(2 / quarter);
    const relative = relativeImprovement(start, end, goal);
    return {
      window_start_step: window[0]?.step ?? windowStart,
      relative_improvement: relative,
      plateaued: relative < this.#options.plateau_threshold,
      within_noise: Math.abs(end - start) < 2 * standardError,
    };
  }

  #metricAnomalies(metric: string, facts: MetricFacts): Anomaly[] {
    const found: Anomaly[] = [];
    if (facts.divergence_reason === 'non_finite')
      found.push({
        kind: 'divergence',
        metric,
        message: `${metric} became NaN or infinite at step ${facts.first_non_finite_step ?? '?'} (${facts.non_finite_points} non-finite points)`,
      });
    else if (facts.divergence_reason === 'moved_away_from_best')
      found.push({
        kind: 'divergence',
        metric,
        message: `${metric} ended at ${formatNumber(facts.final ?? 0)}, far from its best ${formatNumber(facts.best ?? 0)} at step ${facts.best_step ?? '?'}`,
      });
    // A plateau matters for a metric that was learning: one that never improved is just flat.
    const improvedOverall =
      facts.first !== null &&
      facts.best !== null &&
      relativeImprovement(facts.first, facts.best, facts.goal) > 0;
    const plateau = facts.plateau;
    if (plateau?.plateaued && improvedOverall) {
      const change = `${formatNumber(100 * plateau.relative_improvement)}%`;
      const from = `from step ${plateau.window_start_step}`;
      found.push({
        kind: 'plateau',
        metric,
        message:
          plateau.relative_improvement >= 0
            ? `${metric} improved only ${change} ${from} to the end`
            : plateau.within_noise
              ? `${metric} levelled off ${from}: its change to the end, ${change}, is within its noise`
              : `${metric} got worse ${from} to the end (relative change ${change})`,
      });
    }
    if (facts.unstable)
      found.push({
        kind: 'instability',
        metric,
        message: `${metric} rose above both neighbouring points by more than ${formatNumber(this.#options.instability_threshold)} times its noise (${formatNumber(facts.noise_std ?? 0)}) ${facts.spikes} time(s); the largest spike, ${formatNumber(facts.largest_spike ?? 0)} times its noise, at step ${facts.largest_spike_step ?? '?'}`,
      });
    return found;
  }

  #pairs(metrics: Readonly<Record<string, MetricFacts>>): TrainEvalPair[] {
    const names = Object.keys(metrics);
    const pairs: TrainEvalPair[] = [];
    const paired = new Set<string>();
    const evalWords: readonly string[] = ROLE_WORDS.eval;
    // Prefer eval/val over test for the same base name.
    const evals = names
      .map((name) => ({ name, split: splitRole(name) }))
      .filter((entry) => entry.split?.role === 'eval')
      .sort((a, b) => evalWords.indexOf(a.split?.word ?? '') - evalWords.indexOf(b.split?.word ?? ''));
    for (const { name: evalName, split } of evals) {
      if (!split) continue;
      const base = split.base.toLowerCase();
      const train =
        names.find((name) => {
          const other = splitRole(name);
          return other?.role === 'train' && other.base.toLowerCase() === base;
        }) ?? names.find((name) => name.toLowerCase() === base);
      if (!train || paired.has(train)) continue;
      const trainFacts = metrics[train];
      const evalFacts = metrics[evalName];
      const trainTrack = this.#tracks.get(train);
      const evalTrack = this.#tracks.get(evalName);
      if (!trainFacts || !evalFacts || !trainTrack || !evalTrack) continue;
      paired.add(train);
      pairs.push(
        this.#pair(
          split.base,
          { name: train, facts: trainFacts, samples: trainTrack.samples() },
          { name: evalName, facts: evalFacts, samples: evalTrack.samples() },
        ),
      );
    }
    return pairs;
  }

  /**
   * A train metric against its eval counterpart, like with like: a train value is often one minibatch and an
   * eval value a whole held-out set, so both are averaged over the same window of steps before they are
   * compared, and a difference counts only beyond the noise both curves show.
   */
  #pair(base: string, train: PairSide, evaluation: PairSide): TrainEvalPair {
    const options = this.#options;
    const trainFacts = train.facts;
    const evalFacts = evaluation.facts;
    const goal = evalFacts.goal;
    const first = Math.min(train.samples[0]?.step ?? Infinity, evaluation.samples[0]?.step ?? Infinity);
    const last = evaluation.samples.at(-1)?.step;
    const width = last === undefined || !Number.isFinite(first) ? 0 : options.gap_window * (last - first);
    const evalPoints = last === undefined ? [] : samplesIn(evaluation.samples, last - width, last);
    const evalSide = evalPoints.length > 0 ? meanOf(evalPoints) : undefined;
    const trainSide = last === undefined ? undefined : smoothedAt(train.samples, last, width);
    const gap = evalSide && trainSide ? evalSide.mean - trainSide.mean : null;
    const relativeGap =
      gap !== null && trainSide && trainSide.mean !== 0 ? gap / Math.abs(trainSide.mean) : null;
    const gapNoise =
      evalSide && trainSide && trainFacts.noise_std !== null && evalFacts.noise_std !== null
        ? Math.sqrt(trainFacts.noise_std ** 2 / trainSide.n + evalFacts.noise_std ** 2 / evalSide.n)
        : null;
    const evalWorse = gap !== null && (goal === 'min' ? gap > 0 : gap < 0);

    let worsening: number | null = null;
    let trainImprovement: number | null = null;
    if (evalFacts.best !== null && evalFacts.final !== null && evalFacts.best_step !== null) {
      worsening = -relativeImprovement(evalFacts.best, evalFacts.final, goal);
      const trainThen = smoothedAt(train.samples, evalFacts.best_step, width);
      if (trainThen && trainSide)
        trainImprovement = relativeImprovement(trainThen.mean, trainSide.mean, trainFacts.goal);
    }
    return {
      base,
      train: train.name,
      eval: evaluation.name,
      goal,
      train_final: trainFacts.final,
      eval_final: evalFacts.final,
      window_start_step: evalSide && trainSide ? Math.min(evalSide.firstStep, trainSide.firstStep) : null,
      train_mean: trainSide?.mean ?? null,
      eval_mean: evalSide?.mean ?? null,
      gap,
      relative_gap: relativeGap,
      gap_noise: gapNoise,
      generalization_gap:
        evalWorse &&
        relativeGap !== null &&
        gapNoise !== null &&
        Math.abs(relativeGap) > options.gap_threshold &&
        Math.abs(gap ?? 0) > 3 * gapNoise,
      eval_worsening_since_best: worsening,
      train_improvement_since_eval_best: trainImprovement,
      overfitting:
        worsening !== null &&
        trainImprovement !== null &&
        worsening > this.#options.overfitting_threshold &&
        trainImprovement > 0,
    };
  }
}

/** Computes {@link AnalysisFacts} from history rows in step order; see {@link AnalysisAccumulator}. */
export function computeAnalysis(
  rows: Iterable<HistoryRow>,
  options: AnalysisOptionsInput = {},
): AnalysisFacts {
  const accumulator = new AnalysisAccumulator(options);
  for (const row of rows) accumulator.add(row);
  return accumulator.result();
}
