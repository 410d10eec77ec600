import { z } from 'zod';
import { MetricGoal } from './analysis';
import {
  MeanEstimate,
  meanConfidenceInterval,
  hedgesG,
  studentTQuantile,
  WelchTTestResult,
  welchTTest,
} from './statistics';

// The numbers of a baseline comparison, computed in code: mean and confidence interval over seeds, Welch's
// t-test, effect size, and a verdict by fixed rules. The baseline comparator agent interprets them; it never
// computes a statistic itself, so every number it writes is one of these.

/** Significance level of every comparison. */
export const BASELINE_ALPHA = 0.05;

/** Confidence level of every interval. */
export const BASELINE_CONFIDENCE = 0.95;

/**
 * What the comparison says, by these rules (goal-aware: "better" means lower for a `min` metric):
 * with at least 2 values on each side, Welch's t-test at {@link BASELINE_ALPHA} decides between `better` /
 * `worse` and `no_significant_difference`; with one experiment value against at least 2 baseline values,
 * the value must fall outside the baseline's 95% prediction interval to be `better` or `worse`; with a
 * single baseline value, or no experiment value, it is `insufficient_data`.
 */
export const ComparisonVerdict = z.enum([
  'better',
  'worse',
  'no_significant_difference',
  'insufficient_data',
]);
/** What a baseline comparison says. */
export type ComparisonVerdict = z.infer<typeof ComparisonVerdict>;

/** The values of one side of a comparison and where they came from. */
export const BaselineSample = z.object({
  /** The values, one per seed or experiment. */
  values: z.array(z.number()),
  /** Where they came from, one entry per value: `spec`, an experiment id, `this run`. */
  sources: z.array(z.string()),
  /** Experiments listed as sources that gave no finite value for the metric, with why. */
  missing: z.array(z.string()),
});
/** The values of one side of a comparison. */
export type BaselineSample = z.infer<typeof BaselineSample>;

/** Everything computed about the experiment against one baseline. */
export const BaselineComparisonFacts = z.object({
  /** The baseline's name. */
  baseline: z.string(),
  /** The metric compared. */
  metric: z.string(),
  /** Whether lower or higher is better. */
  goal: MetricGoal,
  /** This experiment's values and where they came from. */
  experiment_sample: BaselineSample,
  /** The baseline's values and where they came from. */
  baseline_sample: BaselineSample,
  /** Mean and 95% interval of this experiment's values; `null` without values. */
  experiment: MeanEstimate.nullable(),
  /** Mean and 95% interval of the baseline's values; `null` without values. */
  baseline_estimate: MeanEstimate.nullable(),
  /** Experiment mean − baseline mean; `null` when a side has no value. */
  difference: z.number().nullable(),
  /** `difference / |baseline mean|`; `null` when the baseline mean is 0 or missing. */
  relative_difference: z.number().nullable(),
  /** Welch's t-test (experiment vs baseline); `null` unless both sides have at least 2 values. */
  welch: WelchTTestResult.nullable(),
  /** Hedges' g (experiment vs baseline); `null` unless both sides have at least 2 values and some spread. */
  hedges_g: z.number().nullable(),
  /** One experiment value against the baseline: `difference / baseline std`; `null` otherwise. */
  standardized_difference: z.number().nullable(),
  /** 95% prediction interval of one more baseline value; `null` with fewer than 2 baseline values. */
  prediction_interval: z.object({ lower: z.number(), upper: z.number() }).nullable(),
  /** Significance level used. */
  alpha: z.number(),
  /** The verdict by the rules of {@link ComparisonVerdict}. */
  verdict: ComparisonVerdict,
  /** How the verdict was reached, in one sentence. */
  method: z.string(),
});
/** Everything computed about the experiment against one baseline. */
export type BaselineComparisonFacts = z.infer<typeof BaselineComparisonFacts>;

/** The comparisons with every baseline of the spec, in spec order. */
export const BaselineFacts = z.object({ comparisons: z.array(BaselineComparisonFacts) });
/** The comparisons with every baseline of the spec. */
export type BaselineFacts = z.infer<typeof BaselineFacts>;

/** What {@link compareWithBaseline} compares. */
export interface BaselineComparisonInput {
  baseline: string;
  metric: string;
  goal: MetricGoal;
  experiment: BaselineSample;
  baselineSample: BaselineSample;
}

function finiteOnly(sample: BaselineSample): number[] {
  return sample.values.filter(Number.isFinite);
}

/** `better` or `worse` for a difference (experiment − baseline) by the goal. */
function direction(difference: number, goal: MetricGoal): 'better' | 'worse' {
  return (goal === 'min' ? difference < 0 : difference > 0) ? 'better' : 'worse';
}

/** Compares this experiment's values of a metric with a baseline's; see {@link ComparisonVerdict} for the rules. */
export function compareWithBaseline(input: BaselineComparisonInput): BaselineComparisonFacts {
  const ours = finiteOnly(input.experiment);
  const theirs = finiteOnly(input.baselineSample);
  const experiment = ours.length > 0 ? meanConfidenceInterval(ours, BASELINE_CONFIDENCE) : null;
  const baselineEstimate = theirs.length > 0 ? meanConfidenceInterval(theirs, BASELINE_CONFIDENCE) : null;
  const difference = experiment && baselineEstimate ? experiment.mean - baselineEstimate.mean : null;
  const relative =
    difference !== null && baselineEstimate && baselineEstimate.mean !== 0
      ? difference / Math.abs(baselineEstimate.mean)
      : null;
  const base = {
    baseline: input.baseline,
    metric: input.metric,
    goal: input.goal,
    experiment_sample: input.experiment,
    baseline_sample: input.baselineSample,
    experiment,
    baseline_estimate: baselineEstimate,
    difference,
    relative_difference: relative,
    alpha: BASELINE_ALPHA,
  };
  const none = { welch: null, hedges_g: null, standardized_difference: null, prediction_interval: null };

  if (difference === null || !experiment || !baselineEstimate)
    return {
      ...base,
      ...none,
      verdict: 'insufficient_data',
      method: ours.length === 0 ? 'this experiment has no value of the metric' : 'the baseline has no value',
    };

  const interval =
    theirs.length >= 2
      ? (() => {
          const half =
            studentTQuantile(1 - (1 - BASELINE_CONFIDENCE) / 2, theirs.length - 1) *
            baselineEstimate.std *
            Math.sqrt(1 + 1 / theirs.length);
          return { lower: baselineEstimate.mean - half, upper: baselineEstimate.mean + half };
        })()
      : null;

  if (ours.length >= 2 && theirs.length >= 2) {
    const welch = welchTTest(ours, theirs);
    const significant = welch.p_value !== null && welch.p_value < BASELINE_ALPHA;
    const identical = welch.p_value === null && difference !== 0;
    return {
      ...base,
      welch,
      hedges_g: hedgesG(ours, theirs),
      standardized_difference: null,
      prediction_interval: interval,
      verdict: significant || identical ? direction(difference, input.goal) : 'no_significant_difference',
      method:
        welch.p_value === null
          ? 'both sides have zero variance, so the means are compared directly'
          : `Welch's t-test, two-sided, at significance level ${BASELINE_ALPHA}`,
    };
  }

  if (interval && ours.length === 1) {
    const value = ours[0] ?? Number.NaN;
    const outside = value < interval.lower || value > interval.upper;
    return {
      ...base,
      welch: null,
      hedges_g: null,
      standardized_difference: baselineEstimate.std > 0 ? difference / baselineEstimate.std : null,
      prediction_interval: interval,
      verdict: outside ? direction(difference, input.goal) : 'no_significant_difference',
      method: `one experiment value against the baseline's ${100 * BASELINE_CONFIDENCE}% prediction interval (Welch's t-test needs at least 2 values on each side)`,
    };
  }

  return {
    ...base,
    ...none,
    verdict: 'insufficient_data',
    method:
      'the baseline has a single value, so no interval or test can be computed; only the difference is known',
  };
}
