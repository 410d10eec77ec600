import type { ValidationResult } from '../../experiment';
import { formatNumberText, hypothesisThresholds } from '../../experiment';
import {
  describeFinalAndBest,
  listAnomalies,
  mainMetric,
  metricCode,
  metricsInReadingOrder,
  reportedAnomalies,
} from './offline-performance';
import type { HypothesisVerdict, ReportFacts, ReportNarrative } from './schemas';

// The report writer without a model: the narrative sections from the facts, by rules. Numbers are quoted
// from the facts as they stand there (deliverables' expected/found strings, formatted metric values), so the
// grounding check finds each one.

/** Metrics the results section describes at most; the report's key metrics table has them all. */
const MAX_RESULT_METRICS = 4;

function deliverableNames(results: readonly ValidationResult[]): string {
  return results.map((result) => metricCode(result.name)).join(', ');
}

function verdictOf(facts: ReportFacts): { verdict: HypothesisVerdict; explanation: string } {
  const { validation } = facts;
  const stated = `The hypothesis was: "${facts.experiment.hypothesis.trim().replace(/[.!]$/, '')}".`;
  if (!validation)
    return {
      verdict: 'inconclusive',
      explanation: `${stated} The run was not validated against its deliverables, so it neither supports nor refutes it.`,
    };
  // The same thresholds as the verdict computed in code, so the explanation names what decided it.
  const thresholds = hypothesisThresholds(validation);
  const otherFailures = validation.results.filter(
    (result) => result.required && !result.passed && result.type !== 'threshold',
  );
  const caveat =
    otherFailures.length > 0
      ? ` Other required deliverables did not pass (${deliverableNames(otherFailures)}), so the evidence is incomplete.`
      : '';
  const missed = thresholds.filter((result) => !result.passed);
  if (missed.length > 0)
    return {
      verdict: 'not_supported',
      explanation: `${stated} It is not supported: ${missed.map((result) => `${metricCode(result.name)} expected ${result.expected} but found ${formatNumberText(result.found)}`).join('; ')}.${caveat}`,
    };
  if (thresholds.length > 0)
    return {
      verdict: 'supported',
      explanation: `${stated} It is supported by the criteria the spec set: ${thresholds.map((result) => `${metricCode(result.name)} expected ${result.expected} and found ${formatNumberText(result.found)}`).join('; ')}.${caveat} This is one run; repeat it with other seeds before relying on it.`,
    };
  const deliverables = validation.passed
    ? 'Every required deliverable was met.'
    : `Required deliverables were not met: ${deliverableNames(validation.results.filter((result) => result.required && !result.passed))}.`;
  return {
    verdict: 'inconclusive',
    explanation: `${stated} The spec sets no metric threshold, so the run neither supports nor refutes it on its own. ${deliverables}`,
  };
}

const VERDICT_SENTENCES: Record<HypothesisVerdict, string> = {
  supported: 'The run met every metric threshold the spec set for its hypothesis.',
  not_supported: 'The run missed a metric threshold the spec set for its hypothesis.',
  inconclusive: 'The run does not decide the hypothesis on its own.',
};

function summaryOf(facts: ReportFacts, verdict: HypothesisVerdict): string {
  const { analysis, experiment } = facts;
  const sentences = [
    `${experiment.name} (${metricCode(experiment.id)}) tested a hypothesis with one training run.`,
  ];
  sentences.push(VERDICT_SENTENCES[verdict]);
  const main = mainMetric(analysis);
  const mainFacts = main === undefined ? undefined : analysis.metrics[main];
  if (main !== undefined && mainFacts)
    sentences.push(`Its main metric ${metricCode(main)} ${describeFinalAndBest(mainFacts)}.`);
  const anomalies = reportedAnomalies(analysis);
  sentences.push(
    anomalies.length === 0
      ? 'Training showed no divergence, plateau, instability or overfitting.'
      : `Training showed ${listAnomalies(anomalies)}.`,
  );
  return sentences.join(' ');
}

/** "Table 1 lists … Figure 1 shows …": where the documents' tables and figures are, when the facts list them. */
export function citationSentence(facts: Pick<ReportFacts, 'figures' | 'tables'>): string {
  const parts: string[] = [];
  for (const table of facts.tables ?? [])
    parts.push(`Table ${table.number} lists the ${TABLE_WORDS[table.kind]}`);
  const figures = facts.figures ?? [];
  if (figures.length > 0)
    parts.push(
      `${figures.map((figure) => `Figure ${figure.number}`).join(', ')} ${figures.length > 1 ? 'show' : 'shows'} the training curves (${figures.map((figure) => figure.title).join(', ')})`,
    );
  return parts.length > 0 ? `${parts.join('; ')}.` : '';
}

const TABLE_WORDS: Record<NonNullable<ReportFacts['tables']>[number]['kind'], string> = {
  metrics: 'final and best value of each metric',
  deliverables: 'deliverables with what was expected and found',
  baselines: 'comparison with the baselines',
  ablations: 'proposed follow-up experiments',
};

function resultsOf(facts: ReportFacts): string {
  const { analysis, validation } = facts;
  const paragraphs: string[] = [];
  const metrics = metricsInReadingOrder(analysis).slice(0, MAX_RESULT_METRICS);
  const lines = metrics.flatMap((metric) => {
    const metricFacts = analysis.metrics[metric];
    return metricFacts ? [`${metricCode(metric)} ${describeFinalAndBest(metricFacts)}.`] : [];
  });
  paragraphs.push(lines.length > 0 ? lines.join(' ') : 'The run logged no numeric metric.');
  const citations = citationSentence(facts);
  if (citations) paragraphs.push(citations);
  if (!validation) paragraphs.push('The deliverables were not checked.');
  else if (validation.results.length === 0) paragraphs.push('The spec declares no deliverables.');
  else
    paragraphs.push(
      validation.results
        .map(
          (result) =>
            `${metricCode(result.name)} ${result.passed ? 'passed' : 'did not pass'}${result.required ? '' : ' (optional)'}: expected ${result.expected}, found ${formatNumberText(result.found)}.`,
        )
        .join(' '),
    );
  return paragraphs.join('\n\n');
}

function analysisOf(facts: ReportFacts): string {
  const { performance, analysis } = facts;
  if (performance) {
    const anomalies = performance.findings.filter(
      (finding) => finding.kind !== 'result' && finding.severity !== 'info',
    );
    const paragraphs = [performance.summary];
    if (anomalies.length > 0)
      paragraphs.push(
        anomalies
          .map((finding) => {
            const cause = finding.likely_causes[0];
            return cause ? `${finding.observation} A likely cause is ${cause}.` : finding.observation;
          })
          .join(' '),
      );
    if (performance.recommendations.length > 0)
      paragraphs.push(`Recommended next: ${performance.recommendations.slice(0, 3).join('; ')}.`);
    return paragraphs.join('\n\n');
  }
  const anomalies = reportedAnomalies(analysis);
  if (anomalies.length === 0) return 'The curves show no divergence, plateau, instability or overfitting.';
  return anomalies.map((anomaly) => `${anomaly.message}.`).join(' ');
}

/**
 * Writes the report's narrative sections from the facts, by rules: the hypothesis verdict from the
 * validation report's metric thresholds (required ones, else all; none: inconclusive), the results from the
 * main metrics and every deliverable's expected and found values, the analysis from the performance analyst's
 * output (or the anomalies when it did not run). Deterministic.
 */
export function writeReportNarrative(facts: ReportFacts): ReportNarrative {
  const outcome = verdictOf(facts);
  return {
    summary: summaryOf(facts, outcome.verdict),
    hypothesis_outcome: outcome,
    results: resultsOf(facts),
    analysis: analysisOf(facts),
  };
}
