import type { Anomaly, AnalysisFacts, MetricFacts, TrainEvalPair } from '../../experiment';
import { formatNumber, formatPercent } from '../../experiment';
import type { PerformanceAnalysis, PerformanceFacts, PerformanceFinding } from './schemas';

// The performance analyst without a model: findings written from AnalysisFacts by rules. Every number it
// writes is a fact formatted with formatNumber (or formatPercent of a fraction), so its text passes the
// grounding check; it never writes a count or a difference of its own.

/** Metrics described with a `result` finding at most; the key metrics table of the report has the rest. */
const MAX_RESULT_FINDINGS = 20;

/** Overall recommendations at most, the most urgent findings' first; each finding keeps all of its own. */
const MAX_RECOMMENDATIONS = 6;

/** A metric name as Markdown code, so that digits in names (`top1_acc`) are never read as numbers. */
export function metricCode(metric: string): string {
  return `\`${metric.replaceAll('`', "'")}\``;
}

function atStep(step: number | null): string {
  return step === null ? '' : ` at step ${step}`;
}

function goalWords(facts: MetricFacts): string {
  return facts.goal === 'min' ? 'lower is better' : 'higher is better';
}

/** "ended at 0.3127 at step 900; its best was 0.3001 at step 700" and the like. */
export function describeFinalAndBest(facts: MetricFacts): string {
  const final =
    facts.final !== null
      ? `ended at ${formatNumber(facts.final)}${atStep(facts.final_step)}`
      : `ended on a NaN or infinite value${atStep(facts.final_step)}`;
  if (facts.best === null) return `${final}; it never logged a finite value`;
  if (facts.final === facts.best && facts.final_step === facts.best_step) return `${final}, its best`;
  return `${final}; its best was ${formatNumber(facts.best)}${atStep(facts.best_step)}`;
}

/** Metrics in the order findings describe them: eval then train metric of each pair, then the rest by name. */
export function metricsInReadingOrder(analysis: AnalysisFacts): string[] {
  const ordered = new Set<string>();
  for (const pair of analysis.pairs) {
    ordered.add(pair.eval);
    ordered.add(pair.train);
  }
  for (const metric of Object.keys(analysis.metrics)) ordered.add(metric);
  return [...ordered];
}

/** The same words wherever the best checkpoint is recommended, so the overall list holds it once. */
function keepBestCheckpoint(metric: string, facts: MetricFacts): string {
  return facts.best_step !== null
    ? `keep the checkpoint nearest step ${facts.best_step}, where ${metricCode(metric)} was best`
    : `keep the checkpoint where ${metricCode(metric)} was best`;
}

/**
 * "; it improved by 10% from its first value, 1 at step 0" and the like (only the fact's own sign, so that
 * every number stays a fact); empty without both values.
 */
function describeChange(facts: MetricFacts): string {
  if (facts.improvement === null || facts.first === null) return '';
  const from = `its first value, ${formatNumber(facts.first)}${atStep(facts.first_step)}`;
  if (facts.improvement === 0) return `; it ended where it started, at ${from}`;
  return facts.improvement > 0
    ? `; it improved by ${formatPercent(facts.improvement)} from ${from}`
    : `; it ended worse than ${from} (an improvement of ${formatPercent(facts.improvement)})`;
}

function resultFinding(metric: string, facts: MetricFacts): PerformanceFinding {
  return {
    kind: 'result',
    metric,
    severity: 'info',
    observation: `${metricCode(metric)} (${goalWords(facts)}) ${describeFinalAndBest(facts)}${describeChange(facts)}.`,
    likely_causes: [],
    recommendations: [],
  };
}

function divergenceFinding(metric: string, facts: MetricFacts): PerformanceFinding {
  const name = metricCode(metric);
  if (facts.divergence_reason === 'non_finite') {
    const best =
      facts.best !== null
        ? `; its best finite value was ${formatNumber(facts.best)}${atStep(facts.best_step)}`
        : '';
    return {
      kind: 'divergence',
      metric,
      severity: 'critical',
      observation: `${name} became NaN or infinite${atStep(facts.first_non_finite_step)} (${facts.non_finite_points} non-finite points)${best}.`,
      likely_causes: [
        'a learning rate too high for this model and batch size',
        'exploding gradients without gradient clipping',
        'overflow in reduced precision (fp16 without loss scaling)',
        'invalid values in the data (NaN inputs, a log of zero in the loss)',
      ],
      recommendations: [
        'lower the learning rate or add a warmup',
        'clip gradients by their global norm',
        'train in bf16 or use dynamic loss scaling',
        'check the data for NaN or infinite values',
      ],
    };
  }
  return {
    kind: 'divergence',
    metric,
    severity: 'critical',
    observation: `${name} ${describeFinalAndBest(facts)}: it moved far away from its best.`,
    likely_causes: [
      'a learning rate too high after warmup, or no learning-rate decay',
      'optimizer instability late in training (for Adam, an epsilon too small)',
      'a change in the data stream, such as a bad shard or a new epoch ordering',
    ],
    recommendations: [
      'decay the learning rate (cosine or step schedule) or lower its peak',
      'clip gradients by their global norm',
      keepBestCheckpoint(metric, facts),
    ],
  };
}

function plateauFinding(metric: string, facts: MetricFacts): PerformanceFinding | undefined {
  const plateau = facts.plateau;
  if (!plateau) return undefined;
  const name = metricCode(metric);
  const window = `from step ${plateau.window_start_step} to the end of training`;
  // A small negative change inside the noise is no change at all: "did not improve" would misread noise.
  const change =
    plateau.relative_improvement >= 0
      ? `${name} improved by only ${formatPercent(plateau.relative_improvement)} ${window}`
      : plateau.within_noise
        ? `${name} levelled off ${window}: its change there (${formatPercent(plateau.relative_improvement)}) is within the noise of its values`
        : `${name} got worse ${window} (relative change ${formatPercent(plateau.relative_improvement)})`;
  const overall =
    facts.improvement !== null && facts.improvement > 0
      ? `; over the whole run it improved by ${formatPercent(facts.improvement)}`
      : '';
  const best =
    facts.best === null
      ? ''
      : facts.final === facts.best && facts.final_step === facts.best_step
        ? `, and it ended at its best, ${formatNumber(facts.best)}`
        : `; its best was ${formatNumber(facts.best)}${atStep(facts.best_step)}`;
  return {
    kind: 'plateau',
    metric,
    severity: 'warning',
    observation: `${change}${overall}${best}.`,
    likely_causes: [
      'a learning rate too low, or decayed too far, to make further progress',
      'the model has converged: it has learned what it can from this data',
      'too little model capacity for the task',
    ],
    recommendations: [
      'if the value is good enough, stop earlier (early stopping) to save compute',
      'try a higher learning rate or a schedule with warm restarts',
      'if the value is not good enough, try a larger model or more data',
    ],
  };
}

function instabilityFinding(metric: string, facts: MetricFacts): PerformanceFinding | undefined {
  if (facts.noise_std === null || facts.largest_spike === null || facts.largest_spike_step === null)
    return undefined;
  return {
    kind: 'instability',
    metric,
    severity: 'warning',
    observation: `${metricCode(metric)} spiked away from its own trend by far more than its noise (${formatNumber(facts.noise_std)}) explains: ${facts.spikes} spike(s), the largest ${formatNumber(facts.largest_spike)} times its noise at step ${facts.largest_spike_step}.`,
    likely_causes: [
      'a learning rate too high for this model and batch size, or no warmup',
      'exploding gradients without gradient clipping',
      'unusual batches: outliers or corrupt examples in the data',
    ],
    recommendations: [
      'lower the learning rate or add a warmup',
      'clip gradients by their global norm',
      `look at the batches near step ${facts.largest_spike_step}`,
    ],
  };
}

function overfittingFinding(pair: TrainEvalPair, evalFacts: MetricFacts): PerformanceFinding | undefined {
  if (pair.eval_worsening_since_best === null || pair.train_improvement_since_eval_best === null)
    return undefined;
  const evalName = metricCode(pair.eval);
  const best =
    evalFacts.best !== null
      ? ` from its best ${formatNumber(evalFacts.best)}${atStep(evalFacts.best_step)}`
      : '';
  const final =
    evalFacts.final !== null ? ` to ${formatNumber(evalFacts.final)}${atStep(evalFacts.final_step)}` : '';
  return {
    kind: 'overfitting',
    metric: pair.eval,
    severity: 'warning',
    observation: `${evalName} worsened by ${formatPercent(pair.eval_worsening_since_best)}${best}${final}, while ${metricCode(pair.train)} improved by ${formatPercent(pair.train_improvement_since_eval_best)} over the same steps.`,
    likely_causes: [
      'the model memorises the training set: too many steps for the amount of data',
      'too little regularisation (weight decay, dropout, data augmentation)',
    ],
    recommendations: [
      keepBestCheckpoint(pair.eval, evalFacts),
      'stop training earlier (early stopping on the eval metric)',
      'add regularisation: weight decay, dropout, data augmentation',
      'train on more data',
    ],
  };
}

/** The generalization gap of a pair whose eval side is worse beyond the noise (see `TrainEvalPair`). */
function gapFinding(pair: TrainEvalPair): PerformanceFinding | undefined {
  if (
    !pair.generalization_gap ||
    pair.gap === null ||
    pair.eval_mean === null ||
    pair.train_mean === null ||
    pair.gap_noise === null
  )
    return undefined;
  const relative =
    pair.relative_gap !== null ? `, ${formatPercent(pair.relative_gap)} of the train value` : '';
  const since = pair.window_start_step !== null ? ` from step ${pair.window_start_step} on` : '';
  return {
    kind: 'generalization_gap',
    metric: pair.eval,
    severity: 'warning',
    observation: `Averaged over the same steps${since}, ${metricCode(pair.eval)} was ${formatNumber(pair.eval_mean)} and ${metricCode(pair.train)} ${formatNumber(pair.train_mean)}: a gap (eval − train) of ${formatNumber(pair.gap)}${relative}, far beyond the ${formatNumber(pair.gap_noise)} that the noise of the two curves explains.`,
    likely_causes: [
      'the model fits the training data better than it generalises',
      'the train and eval data come from different distributions',
    ],
    recommendations: [
      'add regularisation or more training data',
      'check that train and eval data are drawn alike',
    ],
  };
}

function anomalyFinding(anomaly: Anomaly, analysis: AnalysisFacts): PerformanceFinding | undefined {
  const facts = analysis.metrics[anomaly.metric];
  if (!facts) return undefined;
  switch (anomaly.kind) {
    case 'divergence':
      return divergenceFinding(anomaly.metric, facts);
    case 'plateau':
      return plateauFinding(anomaly.metric, facts);
    case 'instability':
      return instabilityFinding(anomaly.metric, facts);
    case 'overfitting': {
      const pair = analysis.pairs.find(
        (candidate) => candidate.eval === anomaly.metric && candidate.overfitting,
      );
      return pair ? overfittingFinding(pair, facts) : undefined;
    }
  }
}

const KIND_WORDS: Record<Anomaly['kind'], string> = {
  divergence: 'divergence',
  plateau: 'a plateau',
  instability: 'instability',
  overfitting: 'overfitting',
};

/** "divergence in `loss`, a plateau in `acc` and overfitting in `eval/loss`". */
export function listAnomalies(anomalies: readonly Anomaly[]): string {
  const parts = anomalies.map((anomaly) => `${KIND_WORDS[anomaly.kind]} in ${metricCode(anomaly.metric)}`);
  if (parts.length <= 1) return parts.join('');
  return `${parts.slice(0, -1).join(', ')} and ${parts.at(-1) ?? ''}`;
}

/**
 * The anomalies worth a finding: all of them, except a plateau of a metric that also diverged or overfit
 * (a metric getting worse is not stuck; the worse anomaly explains its flat end).
 */
export function reportedAnomalies(analysis: AnalysisFacts): Anomaly[] {
  const worsened = new Set(
    analysis.anomalies
      .filter((anomaly) => anomaly.kind === 'divergence' || anomaly.kind === 'overfitting')
      .map((anomaly) => anomaly.metric),
  );
  return analysis.anomalies.filter((anomaly) => anomaly.kind !== 'plateau' || !worsened.has(anomaly.metric));
}

/** The metric a summary leads with: the eval side of the first train/eval pair, else the first metric. */
export function mainMetric(analysis: AnalysisFacts): string | undefined {
  return analysis.pairs[0]?.eval ?? Object.keys(analysis.metrics)[0];
}

function summarize(analysis: AnalysisFacts): string {
  const sentences: string[] = [];
  const span =
    analysis.first_step !== null && analysis.last_step !== null
      ? ` from step ${analysis.first_step} to step ${analysis.last_step}`
      : '';
  sentences.push(`The run logged ${analysis.rows} rows${span}.`);
  const main = mainMetric(analysis);
  const mainFacts = main === undefined ? undefined : analysis.metrics[main];
  if (main !== undefined && mainFacts)
    sentences.push(`The main metric ${metricCode(main)} ${describeFinalAndBest(mainFacts)}.`);
  const anomalies = reportedAnomalies(analysis);
  sentences.push(
    anomalies.length === 0
      ? 'No divergence, plateau, instability or overfitting was detected.'
      : `The curves show ${listAnomalies(anomalies)}.`,
  );
  if (analysis.ignored_metrics.length > 0)
    sentences.push('Some metrics were not analysed because the limit on analysed metrics was reached.');
  return sentences.join(' ');
}

const SEVERITY_ORDER: Record<PerformanceFinding['severity'], number> = { critical: 0, warning: 1, info: 2 };

/**
 * Writes the performance analysis from the computed facts, by rules: a `result` finding per metric (train/eval
 * pairs first, at most {@link MAX_RESULT_FINDINGS}), a finding per anomaly with likely causes and
 * recommendations, and a generalization gap finding for each train/eval pair with a gap beyond noise
 * (`generalization_gap`) that is not already overfitting. Deterministic: the same facts give the same text.
 */
export function writePerformanceAnalysis(facts: PerformanceFacts): PerformanceAnalysis {
  const { analysis } = facts;
  if (Object.keys(analysis.metrics).length === 0)
    return {
      summary: `The run logged ${analysis.rows} rows but no numeric metric, so there is nothing to analyse.`,
      findings: [],
      recommendations: [
        'check that the trainer logs its metrics (for the local tracker: one JSON object per step in metrics.jsonl)',
      ],
    };

  const findings: PerformanceFinding[] = [];
  for (const metric of metricsInReadingOrder(analysis).slice(0, MAX_RESULT_FINDINGS)) {
    const metricFacts = analysis.metrics[metric];
    if (metricFacts) findings.push(resultFinding(metric, metricFacts));
  }
  for (const anomaly of reportedAnomalies(analysis)) {
    const finding = anomalyFinding(anomaly, analysis);
    if (finding) findings.push(finding);
  }
  for (const pair of analysis.pairs) {
    if (pair.overfitting) continue;
    const finding = gapFinding(pair);
    if (finding) findings.push(finding);
  }

  const recommendations: string[] = [];
  const byUrgency = findings
    .map((finding, index) => ({ finding, index }))
    .sort(
      (a, b) => SEVERITY_ORDER[a.finding.severity] - SEVERITY_ORDER[b.finding.severity] || a.index - b.index,
    );
  for (const { finding } of byUrgency)
    for (const recommendation of finding.recommendations)
      if (!recommendations.includes(recommendation) && recommendations.length < MAX_RECOMMENDATIONS)
        recommendations.push(recommendation);
  if (recommendations.length === 0)
    recommendations.push(
      'No anomaly calls for a change; compare the result with a baseline and across seeds before drawing conclusions.',
    );

  return { summary: summarize(analysis), findings, recommendations };
}
