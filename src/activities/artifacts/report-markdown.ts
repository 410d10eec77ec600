import type {
  AnalysisFacts,
  DecisionRecord,
  DeliverableStatus,
  ExperimentSpec,
  HyperparameterValue,
  MetricFacts,
  ResultsPayload,
  ValidationReport,
} from '../../experiment';
import { formatNumber, formatNumberText, traceNumbers } from '../agents/grounding';
import { metricCode, metricsInReadingOrder } from '../agents/offline-performance';
import type { HypothesisVerdict, PerformanceAnalysis, ReportNarrative } from '../agents/schemas';

// The technical report as Markdown, from data only (no I/O), so tests read it without a file system. Tables
// and lists are written here from the facts; the narrative sections come from the `report` agent. Ids,
// dates and paths go into code spans: the grounding trace skips code, so only results count as numbers.

/** A chart as the report links it. */
export interface ReportChart {
  /** Shown above the chart. */
  title: string;
  /** Path relative to the report, e.g. `charts/loss.svg`. */
  file: string;
  /** The metrics it plots. */
  metrics: readonly string[];
}

/** Everything the report is written from. */
export interface ReportContent {
  spec: ExperimentSpec;
  /** `null` when the run was not validated. */
  validation: ValidationReport | null;
  analysis: AnalysisFacts;
  /** `null` when the performance analyst did not run. */
  performance: PerformanceAnalysis | null;
  narrative: ReportNarrative;
  /** The results as they will be written to `results.json` (artifacts included). */
  results: ResultsPayload;
  charts: readonly ReportChart[];
}

/** Metrics in the key metrics table at most. */
const MAX_METRIC_ROWS = 30;

/** A table cell: pipes escaped, on one line. */
function cell(text: string): string {
  return text.replace(/\r?\n/g, ' ').replaceAll('|', '\\|');
}

function code(text: string): string {
  return `\`${text.replaceAll('`', "'")}\``;
}

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${row.map(cell).join(' | ')} |`),
  ].join('\n');
}

function shownValue(value: HyperparameterValue | null): string {
  if (value === null) return 'unset';
  return typeof value === 'string' ? value : String(value);
}

function optionalNumber(value: number | null): string {
  return value === null ? '—' : formatNumber(value);
}

const VERDICT_WORDS: Record<HypothesisVerdict, string> = {
  supported: 'Supported',
  not_supported: 'Not supported',
  inconclusive: 'Inconclusive',
};

const DELIVERABLE_WORDS: Record<DeliverableStatus, string> = {
  met: '✅ met',
  not_met: '❌ not met',
  accepted_anyway: '⚠️ accepted anyway',
};

function heading(content: ReportContent): string {
  const { spec, results, validation } = content;
  const lines = [`# ${spec.name}`, ''];
  lines.push(
    `${code(results.experiment_id)} · status **${results.status.replace('_', ' ')}** · completed ${code(results.completed_at)} · duration ${formatNumber(results.duration_seconds)} s`,
  );
  if (validation?.run !== undefined) lines.push('', `Run: ${code(validation.run)}`);
  if (results.reason !== undefined) lines.push('', `> ${results.reason}`);
  return lines.join('\n');
}

function hypothesisSection(spec: ExperimentSpec): string {
  const lines = ['## Hypothesis', '', spec.hypothesis];
  if (spec.research_question) lines.push('', `**Research question:** ${spec.research_question}`);
  if (spec.description) lines.push('', spec.description);
  if (spec.parent) {
    lines.push('', '### Lineage', '', `Follows ${code(spec.parent.experiment_id)}: ${spec.parent.rationale}`);
    if (spec.parent.modifications.length > 0)
      lines.push(
        '',
        table(
          ['Parameter', 'From', 'To'],
          spec.parent.modifications.map((change) => [
            code(change.parameter),
            shownValue(change.from),
            shownValue(change.to),
          ]),
        ),
      );
  }
  return lines.join('\n');
}

function configurationSection(spec: ExperimentSpec): string {
  const entries = Object.entries(spec.config);
  const command = [spec.training.command, ...spec.training.args].join(' ');
  return [
    '## Configuration',
    '',
    entries.length === 0
      ? 'The spec sets no hyperparameters.'
      : table(
          ['Parameter', 'Value'],
          entries.map(([name, value]) => [code(name), shownValue(value)]),
        ),
    '',
    `Training: ${code(command)} on the ${code(spec.training.launcher)} launcher, tracked by ${code(spec.tracker.type)}.`,
  ].join('\n');
}

function deliverablesSection(content: ReportContent): string {
  const { validation, results } = content;
  const lines = ['## Deliverables', ''];
  if (!validation) lines.push('The run was not validated.');
  else if (validation.results.length === 0) lines.push('The spec declares no deliverables.');
  else
    lines.push(
      table(
        ['Deliverable', 'Type', 'Required', 'Expected', 'Found', 'Pass'],
        validation.results.map((result) => {
          const status = results.deliverables_status[result.name];
          return [
            code(result.name),
            result.type,
            result.required ? 'yes' : 'no',
            result.expected,
            formatNumberText(result.found),
            status ? DELIVERABLE_WORDS[status] : result.passed ? '✅ pass' : '❌ fail',
          ];
        }),
      ),
    );
  return lines.join('\n');
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

function keyMetricsSection(analysis: AnalysisFacts): string {
  const metrics = metricsInReadingOrder(analysis).slice(0, MAX_METRIC_ROWS);
  const rows = metrics.flatMap((metric) => {
    const facts = analysis.metrics[metric];
    return facts ? [metricRow(metric, facts)] : [];
  });
  return [
    '## Key metrics',
    '',
    rows.length === 0
      ? 'The run logged no numeric metric.'
      : table(['Metric', 'Goal', 'Final', 'Final step', 'Best', 'Best step'], rows),
  ].join('\n');
}

function chartsSection(charts: readonly ReportChart[]): string {
  const lines = ['## Training curves', ''];
  if (charts.length === 0)
    lines.push('No metric was logged with finite values, so there is nothing to plot.');
  for (const chart of charts)
    lines.push(`![${chart.title}](${chart.file})`, '', `*${chart.metrics.map(metricCode).join(', ')}*`, '');
  return lines.join('\n').trimEnd();
}

function analysisSection(content: ReportContent): string {
  const lines = ['## Analysis', '', content.narrative.analysis];
  const performance = content.performance;
  if (performance) {
    const findings = performance.findings.filter((finding) => finding.kind !== 'result');
    lines.push('', '### Findings', '');
    if (findings.length === 0) lines.push('No anomaly was found.');
    for (const finding of findings) {
      const kind = finding.kind.replace('_', ' ');
      lines.push(
        `- **${kind[0]?.toUpperCase() ?? ''}${kind.slice(1)}** (${finding.severity}) in ${metricCode(finding.metric)}: ${finding.observation}`,
      );
      if (finding.likely_causes.length > 0)
        lines.push(`  Likely causes: ${finding.likely_causes.join('; ')}.`);
      if (finding.recommendations.length > 0)
        lines.push(`  Recommendations: ${finding.recommendations.join('; ')}.`);
    }
    if (performance.recommendations.length > 0)
      lines.push('', '### Recommendations', '', ...performance.recommendations.map((item) => `- ${item}`));
  }
  return lines.join('\n');
}

function decisionOutcome(decision: DecisionRecord): string {
  if (decision.ignored !== undefined) return `ignored: ${decision.ignored}`;
  return decision.outcome ?? '';
}

function decisionsSection(decisions: readonly DecisionRecord[]): string {
  return [
    '## Decisions',
    '',
    decisions.length === 0
      ? 'No decision was recorded.'
      : table(
          ['When', 'Gate', 'By', 'Source', 'Outcome', 'Comment'],
          decisions.map((decision) => [
            code(decision.at),
            decision.gate,
            decision.by,
            decision.source,
            decisionOutcome(decision),
            decision.comment ?? '',
          ]),
        ),
  ].join('\n');
}

function costsSection(results: ResultsPayload): string {
  const { costs } = results;
  return [
    '## Costs',
    '',
    table(
      ['Item', 'Amount'],
      [
        ['LLM calls (USD)', formatNumber(costs.llm_usd)],
        ['Prompt tokens', formatNumber(costs.llm_prompt_tokens)],
        ['Completion tokens', formatNumber(costs.llm_completion_tokens)],
        ['GPU hours', formatNumber(costs.gpu_hours)],
      ],
    ),
  ].join('\n');
}

function artifactsSection(results: ResultsPayload): string {
  const lines = ['## Artifacts', ''];
  if (results.artifacts.length === 0) lines.push('No artifact was recorded.');
  for (const artifact of results.artifacts)
    lines.push(`- ${artifact.name} (${artifact.kind}): ${code(artifact.path ?? artifact.uri ?? '')}`);
  return lines.join('\n');
}

/**
 * The facts numbers are traced to, by name: what the run and the researcher produced. Agent outputs
 * (`analysis_reports`) are left out, so that a number an agent made up cannot vouch for itself.
 */
function numberSources(content: ReportContent): Record<string, unknown> {
  const { analysis_reports: _agents, validation_results: _duplicate, ...results } = content.results;
  return { analysis: content.analysis, validation: content.validation, spec: content.spec, results };
}

function numbersSection(body: string, content: ReportContent): string {
  const traces = traceNumbers(body, numberSources(content));
  const lines = [
    '## Numbers in this report',
    '',
    'Every number above and where it comes from (a path into the facts: `analysis` computed from the run history, `validation` the deliverable checks, `spec` the experiment spec, `results` the results payload). A number that stands for several facts is listed once, with the first.',
    '',
  ];
  if (traces.length === 0) lines.push('The report contains no numbers.');
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

/**
 * Writes the technical report: title, hypothesis, summary, hypothesis outcome, configuration, deliverables
 * (expected, found, pass), key metrics, results, charts, analysis with findings and recommendations,
 * decisions, costs, artifacts, and last the numbers of the report with the facts path each came from.
 */
export function renderReportMarkdown(content: ReportContent): string {
  const { narrative } = content;
  const body = [
    heading(content),
    hypothesisSection(content.spec),
    `## Summary\n\n${narrative.summary}`,
    `## Hypothesis outcome\n\n**${VERDICT_WORDS[narrative.hypothesis_outcome.verdict]}.** ${narrative.hypothesis_outcome.explanation}`,
    configurationSection(content.spec),
    deliverablesSection(content),
    keyMetricsSection(content.analysis),
    `## Results\n\n${narrative.results}`,
    chartsSection(content.charts),
    analysisSection(content),
    decisionsSection(content.results.decisions),
    costsSection(content.results),
    artifactsSection(content.results),
  ].join('\n\n');
  return `${body}\n\n${numbersSection(body, content)}\n`;
}
