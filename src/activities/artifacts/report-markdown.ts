import * as path from 'node:path';
import type {
  AnalysisFacts,
  BaselineFacts,
  DecisionRecord,
  ExperimentSpec,
  HyperparameterValue,
  ResultsPayload,
  ValidationReport,
} from '../../experiment';
import { formatNumber, resolvedTrainingCommand, traceNumbers } from '../../experiment';
import { metricCode } from '../agents/offline-performance';
import type {
  AblationPlan,
  BaselineInterpretation,
  DocumentTable,
  HypothesisVerdict,
  PerformanceAnalysis,
  ReportNarrative,
} from '../agents/schemas';
import { documentTables } from './document-plan';
import {
  ablationsTable,
  baselinesTable,
  code,
  deliverablesTable,
  metricsTable,
  numbersSection,
  table,
} from './markdown-tables';

// The technical report as Markdown, from data only (no I/O), so tests read it without a file system. Tables
// and lists are written here from the facts; the narrative sections come from the `report` agent. Ids,
// dates and paths go into code spans: the grounding trace skips code, so only results count as numbers.

/** A chart as the report links it. */
export interface ReportChart {
  /** Its figure number (see `document-plan.ts`); writers cite it as "Figure 1". */
  number: number;
  /** Shown above the chart. */
  title: string;
  /** Path relative to the report, e.g. `charts/loss.svg`. */
  file: string;
  /** The metrics it plots. */
  metrics: readonly string[];
}

/** Everything the report is written from. */
export interface ReportContent {
  /** The run directory the report is written in: paths inside it are shown relative to it. */
  runDir: string;
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
  /** The baseline statistics and the comparator's reading; absent or `null` when it did not run. */
  baselines?: { facts: BaselineFacts; interpretation: BaselineInterpretation } | null;
  /** The ablation designer's proposals; absent or `null` when it did not run. */
  ablations?: AblationPlan | null;
}

function shownValue(value: HyperparameterValue | null): string {
  if (value === null) return 'unset';
  return typeof value === 'string' ? value : String(value);
}

const VERDICT_WORDS: Record<HypothesisVerdict, string> = {
  supported: 'Supported',
  not_supported: 'Not supported',
  inconclusive: 'Inconclusive',
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
  // As launched: `--steps=300`, not `--steps=${config.steps}`.
  const command = resolvedTrainingCommand(spec.training, spec.config);
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

/** The caption line of a numbered table, or nothing when the table has no number. */
function caption(tables: readonly DocumentTable[], kind: DocumentTable['kind']): string[] {
  const numbered = tables.find((candidate) => candidate.kind === kind);
  return numbered ? [`*Table ${numbered.number}: ${numbered.title}.*`, ''] : [];
}

function deliverablesSection(content: ReportContent, tables: readonly DocumentTable[]): string {
  return [
    '## Deliverables',
    '',
    ...caption(tables, 'deliverables'),
    deliverablesTable(content.validation, content.results.deliverables_status),
  ].join('\n');
}

function keyMetricsSection(analysis: AnalysisFacts, tables: readonly DocumentTable[]): string {
  return ['## Key metrics', '', ...caption(tables, 'metrics'), metricsTable(analysis)].join('\n');
}

function chartsSection(charts: readonly ReportChart[]): string {
  const lines = ['## Training curves', ''];
  if (charts.length === 0)
    lines.push('No metric was logged with finite values, so there is nothing to plot.');
  for (const chart of charts)
    lines.push(
      `![Figure ${chart.number}: ${chart.title}](${chart.file})`,
      '',
      `*Figure ${chart.number}: ${chart.title} (${chart.metrics.map(metricCode).join(', ')}).*`,
      '',
    );
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

/** What ran, from the reproducibility record, and how to run it again. */
function reproducibilitySection(results: ResultsPayload, runDir: string): string {
  const record = results.reproducibility;
  const lines = ['## Reproducibility', ''];
  if (!record) return [...lines, 'This run has no reproducibility record.'].join('\n');
  const what = record.code;
  if (what.commit) {
    const branch = what.branch ? ` (branch ${code(what.branch)})` : '';
    const state = what.patch
      ? ` with uncommitted changes to ${what.patch.files.length} file(s) (${code(relativeToRun(what.patch.path, runDir))})`
      : what.clean === false
        ? ' with uncommitted changes that were not recorded'
        : '';
    lines.push(`- Code: commit ${code(what.commit)}${branch} of ${code(what.repository ?? '?')}${state}.`);
  } else lines.push('- Code: not in a git repository; the record cannot bring it back.');
  lines.push(`- Spec: SHA-256 ${code(record.spec.sha256)}.`);
  for (const data of record.data) {
    lines.push(
      `- Data ${code(data.name)}: ${code(data.source)}, ${data.sha256 ? `SHA-256 ${code(data.sha256)}` : `version ${code(data.version ?? '?')}`}.`,
    );
  }
  lines.push(
    '',
    `The full record is ${code('reproducibility.json')}; ${code(`labline reproduce ${record.experiment_id}`)} runs it again.`,
  );
  const checks = results.reproduction;
  if (checks && checks.length > 0) {
    lines.push(
      '',
      `### Reproduction`,
      '',
      checks.every((check) => check.within)
        ? 'Every compared metric is within its tolerance of the original.'
        : 'Some compared metrics are outside their tolerance of the original.',
      '',
      table(
        ['Metric', 'Original', 'Reproduced', 'Difference', 'Tolerance', 'Within'],
        // Values of another run: in code spans, so the grounding trace does not look for them in this run's facts.
        checks.map((check) => [
          code(check.metric),
          code(String(check.original)),
          code(check.reproduced === null ? 'missing' : String(check.reproduced)),
          code(check.difference === null ? '—' : String(check.difference)),
          code(String(check.tolerance)),
          check.within ? 'yes' : 'no',
        ]),
      ),
    );
  }
  return lines.join('\n');
}

/** Files in the run directory by their path in it (the report travels with the folder); others as they are. */
function artifactsSection(results: ResultsPayload, runDir: string): string {
  const lines = ['## Artifacts', ''];
  if (results.artifacts.length === 0) lines.push('No artifact was recorded.');
  for (const artifact of results.artifacts) {
    const where = artifact.path ? relativeToRun(artifact.path, runDir) : (artifact.uri ?? '');
    lines.push(`- ${artifact.name} (${artifact.kind})${where === artifact.name ? '' : `: ${code(where)}`}`);
  }
  return lines.join('\n');
}

function relativeToRun(file: string, runDir: string): string {
  const relative = path.relative(runDir, file);
  return relative && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}

function baselinesSection(
  baselines: NonNullable<ReportContent['baselines']>,
  tables: readonly DocumentTable[],
): string {
  const readings = baselines.interpretation.comparisons.map(
    (reading) => `- **${reading.baseline}**: ${reading.interpretation}`,
  );
  const caveats = baselines.interpretation.caveats.map((caveat) => `- ${caveat}`);
  return [
    '## Comparison with baselines',
    '',
    baselines.interpretation.summary,
    '',
    ...caption(tables, 'baselines'),
    baselinesTable(baselines.facts),
    ...(readings.length > 0 ? ['', ...readings] : []),
    ...(caveats.length > 0 ? ['', '**Caveats**', '', ...caveats] : []),
  ].join('\n');
}

function ablationsSection(plan: AblationPlan, tables: readonly DocumentTable[]): string {
  return [
    '## Proposed follow-up experiments',
    '',
    plan.summary,
    ...(plan.proposals.length > 0 ? ['', ...caption(tables, 'ablations'), ablationsTable(plan)] : []),
  ].join('\n');
}

/** Facts the numbers of a document are traced to; see {@link numberSources}. */
export interface NumberSourceContent {
  spec: ExperimentSpec;
  validation: ValidationReport | null;
  analysis: AnalysisFacts;
  results: ResultsPayload;
  baselines?: { facts: BaselineFacts } | null;
  ablations?: AblationPlan | null;
}

/**
 * The facts numbers are traced to, by name: what the run and the researcher produced, the baseline
 * statistics and the proposed values. Agent outputs (`analysis_reports`, the readings) are left out, so that
 * a number an agent made up cannot vouch for itself.
 */
export function numberSources(content: NumberSourceContent): Record<string, unknown> {
  const { analysis_reports: _agents, validation_results: _duplicate, ...results } = content.results;
  // Most specific first: a number is traced to the first fact it stands for.
  return {
    analysis: content.analysis,
    validation: content.validation,
    baselines: content.baselines?.facts ?? null,
    ablations: content.ablations?.proposals.map((proposal) => proposal.modifications) ?? null,
    spec: content.spec,
    results,
  };
}

/**
 * Writes the technical report: title, hypothesis, summary, hypothesis outcome, configuration, deliverables
 * (expected, found, pass), key metrics, results, charts, analysis with findings and recommendations,
 * decisions, costs, artifacts, and last the numbers of the report with the facts path each came from.
 */
export function renderReportMarkdown(content: ReportContent): string {
  const { narrative } = content;
  const tables = documentTables({
    analysis: content.analysis,
    validation: content.validation,
    baselines: content.baselines?.facts ?? null,
    ablations: content.ablations ?? null,
  });
  const body = [
    heading(content),
    hypothesisSection(content.spec),
    `## Summary\n\n${narrative.summary}`,
    `## Hypothesis outcome\n\n**${VERDICT_WORDS[narrative.hypothesis_outcome.verdict]}.** ${narrative.hypothesis_outcome.explanation}`,
    configurationSection(content.spec),
    // In the order of the table numbers (document-plan.ts), so that Table 1 comes first.
    keyMetricsSection(content.analysis, tables),
    deliverablesSection(content, tables),
    `## Results\n\n${narrative.results}`,
    chartsSection(content.charts),
    analysisSection(content),
    ...(content.baselines ? [baselinesSection(content.baselines, tables)] : []),
    ...(content.ablations ? [ablationsSection(content.ablations, tables)] : []),
    decisionsSection(content.results.decisions),
    costsSection(content.results),
    reproducibilitySection(content.results, content.runDir),
    artifactsSection(content.results, content.runDir),
  ].join('\n\n');
  const traces = traceNumbers(body, numberSources(content));
  return `${body}\n\n${numbersSection('Numbers in this report', traces, 'above')}\n`;
}
