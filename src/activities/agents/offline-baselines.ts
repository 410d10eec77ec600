import type { BaselineComparisonFacts, ComparisonVerdict } from '../../experiment';
import { formatNumber, formatPercent } from '../../experiment';
import { metricCode } from './offline-performance';
import type { BaselineAgentFacts, BaselineInterpretation, BaselineReading } from './schemas';

// The baseline comparator without a model: each comparison read aloud by rules. Every number is a computed
// statistic formatted with formatNumber, so the text passes the grounding check.

const VERDICT_WORDS: Record<ComparisonVerdict, string> = {
  better: 'better than',
  worse: 'worse than',
  no_significant_difference: 'not distinguishable from',
  insufficient_data: 'not comparable with',
};

function estimateWords(estimate: NonNullable<BaselineComparisonFacts['experiment']>): string {
  const interval =
    estimate.lower !== null && estimate.upper !== null
      ? ` (95% interval ${formatNumber(estimate.lower)} to ${formatNumber(estimate.upper)}, n = ${estimate.n})`
      : ` (n = ${estimate.n})`;
  return `${formatNumber(estimate.mean)}${interval}`;
}

function readComparison(comparison: BaselineComparisonFacts): BaselineReading {
  const sentences: string[] = [];
  const metric = metricCode(comparison.metric);
  const { experiment, baseline_estimate: baseline } = comparison;
  if (experiment && baseline) {
    sentences.push(
      `On ${metric} (${comparison.goal === 'min' ? 'lower' : 'higher'} is better) this experiment has ${estimateWords(experiment)} against ${estimateWords(baseline)} for ${comparison.baseline}.`,
    );
    if (comparison.difference !== null) {
      const relative =
        comparison.relative_difference !== null
          ? `, ${formatPercent(comparison.relative_difference)} of the baseline`
          : '';
      sentences.push(`The difference is ${formatNumber(comparison.difference)}${relative}.`);
    }
  } else sentences.push(`There is no value of ${metric} on one side, so nothing can be compared.`);
  if (comparison.welch?.p_value != null) {
    const g = comparison.hedges_g !== null ? `, Hedges' g ${formatNumber(comparison.hedges_g)}` : '';
    sentences.push(`Welch's t-test gives p = ${formatNumber(comparison.welch.p_value)}${g}.`);
  } else if (comparison.prediction_interval) {
    const z =
      comparison.standardized_difference !== null
        ? ` (${formatNumber(comparison.standardized_difference)} baseline standard deviations away)`
        : '';
    sentences.push(
      `The baseline's 95% prediction interval is ${formatNumber(comparison.prediction_interval.lower)} to ${formatNumber(comparison.prediction_interval.upper)}${z}.`,
    );
  }
  sentences.push(
    `By ${comparison.method}, the experiment is ${VERDICT_WORDS[comparison.verdict]} ${comparison.baseline}.`,
  );
  return { baseline: comparison.baseline, verdict: comparison.verdict, interpretation: sentences.join(' ') };
}

/**
 * Reads each baseline comparison by rules: both means with their intervals, the difference, the test that
 * decided and the verdict computed in code. Deterministic.
 */
export function writeBaselineInterpretation(facts: BaselineAgentFacts): BaselineInterpretation {
  const comparisons = facts.baselines.comparisons.map(readComparison);
  const better = comparisons.filter((reading) => reading.verdict === 'better').map((r) => r.baseline);
  const worse = comparisons.filter((reading) => reading.verdict === 'worse').map((r) => r.baseline);
  const summary =
    comparisons.length === 0
      ? 'No baseline was compared.'
      : [
          better.length > 0 ? `The experiment beats ${better.join(', ')}.` : '',
          worse.length > 0 ? `It falls behind ${worse.join(', ')}.` : '',
          better.length === 0 && worse.length === 0
            ? 'No baseline is clearly better or worse than the experiment.'
            : '',
        ]
          .filter(Boolean)
          .join(' ');
  const caveats: string[] = [];
  if (facts.baselines.comparisons.some((comparison) => (comparison.experiment?.n ?? 0) < 2))
    caveats.push(
      'This experiment is a single run: repeat it with other seeds so that a t-test can compare the two sides.',
    );
  if (facts.baselines.comparisons.some((comparison) => comparison.baseline_sample.missing.length > 0))
    caveats.push(
      'Some baseline experiments gave no value of the metric; see the sources of each comparison.',
    );
  return { summary, comparisons, caveats };
}
