import type {
  AnalysisFacts,
  BaselineFacts,
  DeliverableStatus,
  MetricFacts,
  NumberTrace,
  ValidationReport,
} from '../../experiment';
import { formatNumber, formatNumberText, formatPercent } from '../../experiment';
import { metricsInReadingOrder } from '../agents/offline-performance';
import type { AblationPlan } from '../agents/schemas';

// The tables of the Markdown documents (report.md, blog.md), written in code from the facts. Numbers are
// formatted like every number Labline writes, so the numbers section traces each one to its fact.

/** Metrics in the key metrics table at most. */
export const MAX_METRIC_ROWS = 30;

/** A table cell: pipes escaped, on one line. */
export function cell(text: string): string {
  return text.replace(/\r?\n/g, ' ').replaceAll('|', '\\|');
}

/** Text as a Markdown code span. */
export function code(text: string): string {
  return `\`${text.replaceAll('`', "'")}\``;
}

/** A Markdown table. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${row.map(cell).join(' | ')} |`),
  ].join('\n');
}

function optionalNumber(value: number | null): string {
  return value === null ? '—' : formatNumber(value);
}

function metricRow(metric: string, facts: MetricFacts): string[] {
  const final =
    facts.final === null && facts.non_finite_points > 0 ? 'NaN or infinite' : optionalNumber(facts.final);
  return [
    code(metric),
    facts.goal === 'min' ? 'lower is better' : 'higher is better',
    final,
    optionalNumber(facts.final_step),
    optionalNumber(facts.best),
    optionalNumber(facts.best_step),
  ];
}

/** Final and best value of each metric (train/eval pairs first), or a sentence when there is none. */
export function metricsTable(analysis: AnalysisFacts): string {
  const rows = metricsInReadingOrder(analysis)
    .slice(0, MAX_METRIC_ROWS)
    .flatMap((metric) => {
      const facts = analysis.metrics[metric];
      return facts ? [metricRow(metric, facts)] : [];
    });
  return rows.length === 0
    ? 'The run logged no numeric metric.'
    : table(['Metric', 'Goal', 'Final', 'Final step', 'Best', 'Best step'], rows);
}

const DELIVERABLE_WORDS: Record<DeliverableStatus, string> = {
  met: '✅ met',
  not_met: '❌ not met',
  accepted_anyway: '⚠️ accepted anyway',
};

/** Each deliverable with what was expected and found, or a sentence when there is none. */
export function deliverablesTable(
  validation: ValidationReport | null,
  status: Readonly<Record<string, DeliverableStatus>> = {},
): string {
  if (!validation) return 'The run was not validated.';
  if (validation.results.length === 0) return 'The spec declares no deliverables.';
  return table(
    ['Deliverable', 'Type', 'Required', 'Expected', 'Found', 'Pass'],
    validation.results.map((result) => {
      const verdict = status[result.name];
      return [
        code(result.name),
        result.type,
        result.required ? 'yes' : 'no',
        result.expected,
        formatNumberText(result.found),
        verdict ? DELIVERABLE_WORDS[verdict] : result.passed ? '✅ pass' : '❌ fail',
      ];
    }),
  );
}

const VERDICT_WORDS: Record<BaselineFacts['comparisons'][number]['verdict'], string> = {
  better: 'better',
  worse: 'worse',
  no_significant_difference: 'no significant difference',
  insufficient_data: 'insufficient data',
};

function estimate(value: BaselineFacts['comparisons'][number]['experiment']): string {
  if (!value) return '—';
  const interval =
    value.lower !== null && value.upper !== null
      ? ` [${formatNumber(value.lower)}, ${formatNumber(value.upper)}]`
      : '';
  return `${formatNumber(value.mean)}${interval} (n = ${value.n})`;
}

/** Each baseline comparison: both means with their 95% intervals, the difference, the test, the verdict. */
export function baselinesTable(facts: BaselineFacts): string {
  return table(
    ['Baseline', 'Metric', 'This experiment', 'Baseline', 'Difference', 'Test', 'Verdict'],
    facts.comparisons.map((comparison) => {
      const relative =
        comparison.relative_difference !== null ? ` (${formatPercent(comparison.relative_difference)})` : '';
      const test =
        comparison.welch?.p_value != null
          ? `Welch p = ${formatNumber(comparison.welch.p_value)}${comparison.hedges_g !== null ? `, g = ${formatNumber(comparison.hedges_g)}` : ''}`
          : comparison.prediction_interval
            ? `prediction interval [${formatNumber(comparison.prediction_interval.lower)}, ${formatNumber(comparison.prediction_interval.upper)}]`
            : '—';
      return [
        comparison.baseline,
        code(comparison.metric),
        estimate(comparison.experiment),
        estimate(comparison.baseline_estimate),
        comparison.difference === null ? '—' : `${formatNumber(comparison.difference)}${relative}`,
        test,
        VERDICT_WORDS[comparison.verdict],
      ];
    }),
  );
}

function shownValue(value: number | string | boolean | null): string {
  if (value === null) return 'unset';
  return typeof value === 'number' ? formatNumber(value) : String(value);
}

/** Each proposed follow-up with its changes, rationale and expected effect. */
export function ablationsTable(plan: AblationPlan): string {
  return table(
    ['Follow-up', 'Changes', 'Rationale', 'Expected effect'],
    plan.proposals.map((proposal) => [
      code(proposal.name),
      proposal.modifications
        .map((change) => `${code(change.parameter)}: ${shownValue(change.from)} → ${shownValue(change.to)}`)
        .join('; '),
      proposal.rationale,
      proposal.expected_effect,
    ]),
  );
}

/** The closing section of a document: each number with the facts path it came from. */
export function numbersSection(title: string, traces: readonly NumberTrace[], what: string): string {
  const lines = [
    `## ${title}`,
    '',
    `Every number ${what} and where it comes from (a path into the facts: \`analysis\` computed from the run history, \`validation\` the deliverable checks, \`spec\` the experiment spec, \`results\` the results payload, \`baselines\` the baseline statistics, \`ablations\` the proposed changes). A number that stands for several facts is listed once, with the first; one that stands for none is marked.`,
    '',
  ];
  if (traces.length === 0) lines.push('There are no numbers.');
  else
    lines.push(
      table(
        ['Number', 'Source'],
        traces.map((trace) => [
          trace.text,
          trace.source === null ? '**not found in the facts**' : code(trace.source),
        ]),
      ),
    );
  return lines.join('\n');
}
