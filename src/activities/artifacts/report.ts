import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type {
  AnalysisFacts,
  ArtifactRecord,
  BaselineFacts,
  ExperimentSpec,
  HistoryRow,
  ValidationReport,
} from '../../experiment';
import { ResultsPayload } from '../../experiment';
import { writeFileAtomic } from '../atomic-file';
import type {
  AblationPlan,
  BaselineInterpretation,
  BlogPost,
  PaperDraft,
  PerformanceAnalysis,
  ReportNarrative,
} from '../agents/schemas';
import { renderBlogMarkdown } from './blog-markdown';
import type { TrainingChart, TrainingChartOptions } from './charts';
import { renderTrainingCharts } from './charts';
import { documentFigures } from './document-plan';
import { LatexCurveSampler } from './latex-figures';
import { renderPaperLatex } from './paper-latex';
import { renderReportMarkdown } from './report-markdown';

/** File names inside the run directory. */
export const REPORT_FILES = {
  report: 'report.md',
  results: 'results.json',
  charts: 'charts',
  blog: 'blog.md',
  paper: 'paper.tex',
  /** The ablation designer's proposals, `{ proposals }`, where campaigns read them. */
  ablations: 'ablations.json',
} as const;

/** A document an agent wrote, with who wrote it (for its byline). */
export interface AuthoredDocument<Draft> {
  draft: Draft;
  /** The model, e.g. `gpt-4o-mini`, or `offline`. */
  model: string;
  /** The prompt version, e.g. `blog.v1+rules.v1`. */
  promptVersion: string;
}

/** What {@link writeReport} writes from. */
export interface WriteReportInput {
  /** The run directory (`runs/<experiment-id>`); created if missing. */
  runDir: string;
  /** The parsed spec. */
  spec: ExperimentSpec;
  /** The last validation report; `null` when the run was not validated. */
  validation: ValidationReport | null;
  /** The facts computed from the run history. */
  analysis: AnalysisFacts;
  /** The report's narrative sections (agent `report`). */
  narrative: ReportNarrative;
  /** The performance analyst's output; `null` when it did not run. */
  performance: PerformanceAnalysis | null;
  /**
   * The results payload. Extra keys (such as a workflow's `end_stage`) are dropped; records of the files
   * written here are added to its `artifacts`.
   */
  results: z.input<typeof ResultsPayload>;
  /** The run history in step order, for the charts; read once (a tracker's `history()` stream will do). */
  history: Iterable<HistoryRow> | AsyncIterable<HistoryRow>;
  /** Chart options; see {@link TrainingChartOptions}. */
  charts?: TrainingChartOptions;
  /** The baseline statistics and the comparator's reading, when it ran: a section of the report. */
  baselines?: { facts: BaselineFacts; interpretation: BaselineInterpretation } | null;
  /** The proposed follow-ups, when the designer ran: a section of the report and `ablations.json`. */
  ablations?: AblationPlan | null;
  /** The blog post, when the `blog` writer ran: `blog.md`. */
  blog?: AuthoredDocument<BlogPost> | null;
  /** The paper draft, when the `paper` writer ran: `paper.tex`. */
  paper?: AuthoredDocument<PaperDraft> | null;
}

/** What {@link writeReport} wrote. Paths are absolute. */
export interface WrittenReport {
  /** `<runDir>/report.md`. */
  reportPath: string;
  /** `<runDir>/results.json`. */
  resultsPath: string;
  /** `<runDir>/charts/<name>.svg`, one per metric group. */
  charts: string[];
  /** `<runDir>/blog.md`, `<runDir>/paper.tex`, `<runDir>/ablations.json` when written. */
  blogPath?: string;
  paperPath?: string;
  ablationsPath?: string;
  /** Records of the files above, as added to the results' `artifacts`. */
  artifacts: ArtifactRecord[];
  /** Where each agent's document went, by agent: `report`, and `blog`, `paper`, `ablations` when written. */
  documentPaths: Record<string, string>;
  /** The results as written to `results.json`: parsed, with the artifacts and document paths above. */
  results: ResultsPayload;
}

/**
 * The results as the workflow will return them: `added` appended to the artifacts (skipping paths already
 * recorded, for a retried write), and each agent's record with the path of the document written for it, as
 * the workflow records it after this write.
 */
function withWrittenFiles(
  results: z.input<typeof ResultsPayload>,
  added: readonly ArtifactRecord[],
  documentPaths: Readonly<Record<string, string>>,
) {
  const known = new Set(results.artifacts.map((artifact) => artifact.path));
  return {
    ...results,
    artifacts: [...results.artifacts, ...added.filter((artifact) => !known.has(artifact.path))],
    analysis_reports: results.analysis_reports.map((record) => {
      const written = Object.hasOwn(documentPaths, record.agent) ? documentPaths[record.agent] : undefined;
      return written === undefined ? record : { ...record, path: written };
    }),
  };
}

/** Rows of the history, passed on unchanged while the paper's curve sampler sees each one. */
async function* teeRows(
  history: Iterable<HistoryRow> | AsyncIterable<HistoryRow>,
  sampler: LatexCurveSampler | undefined,
): AsyncIterable<HistoryRow> {
  for await (const row of history) {
    sampler?.add(row);
    yield row;
  }
}

/** The charts in figure-number order (see `document-plan.ts`), numbered; charts outside the plan last. */
function numberCharts(charts: readonly TrainingChart[], analysis: AnalysisFacts) {
  const plan = documentFigures(analysis);
  const rank = (chart: TrainingChart) => {
    const index = plan.findIndex((figure) => figure.title === chart.title);
    return index === -1 ? plan.length : index;
  };
  return [...charts]
    .map((chart, index) => ({ chart, index }))
    .sort((a, b) => rank(a.chart) - rank(b.chart) || a.index - b.index)
    .map(({ chart }, index) => ({
      ...chart,
      number: index + 1,
      file: `${REPORT_FILES.charts}/${chart.name}.svg`,
    }));
}

function byline(document: AuthoredDocument<unknown>): string {
  return `\`${document.model}\` (prompt \`${document.promptVersion}\`)`;
}

/**
 * Writes the experiment's documents into its run directory: `charts/<name>.svg` (one chart per metric
 * group), `report.md` (linking them), `blog.md` and `paper.tex` when those writers ran, `ablations.json`
 * when follow-ups were proposed, and last `results.json` (the results payload, pretty-printed), each
 * atomically. The payload is validated first, so an invalid one throws before anything is written. Writing
 * again with the same input gives the same files, so a retried activity is harmless.
 *
 * @throws Error naming every invalid path when `results` does not fit {@link ResultsPayload}
 */
export async function writeReport(input: WriteReportInput): Promise<WrittenReport> {
  const runDir = path.resolve(input.runDir);
  const reportPath = path.join(runDir, REPORT_FILES.report);
  const resultsPath = path.join(runDir, REPORT_FILES.results);
  const blogPath = input.blog ? path.join(runDir, REPORT_FILES.blog) : undefined;
  const paperPath = input.paper ? path.join(runDir, REPORT_FILES.paper) : undefined;
  const ablationsPath =
    input.ablations && input.ablations.proposals.length > 0
      ? path.join(runDir, REPORT_FILES.ablations)
      : undefined;
  const sampler = input.paper ? new LatexCurveSampler() : undefined;
  const rendered = await renderTrainingCharts(teeRows(input.history, sampler), input.charts);
  const charts = numberCharts(rendered, input.analysis);
  const artifacts: ArtifactRecord[] = [
    { name: REPORT_FILES.report, kind: 'report', path: reportPath },
    ...(blogPath ? [{ name: REPORT_FILES.blog, kind: 'report' as const, path: blogPath }] : []),
    ...(paperPath ? [{ name: REPORT_FILES.paper, kind: 'report' as const, path: paperPath }] : []),
    ...(ablationsPath ? [{ name: REPORT_FILES.ablations, kind: 'file' as const, path: ablationsPath }] : []),
    { name: REPORT_FILES.results, kind: 'results', path: resultsPath },
    ...charts.map((chart): ArtifactRecord => ({
      name: chart.file,
      kind: 'chart',
      path: path.join(runDir, chart.file),
    })),
  ];

  const documentPaths: Record<string, string> = {
    report: reportPath,
    ...(blogPath ? { blog: blogPath } : {}),
    ...(paperPath ? { paper: paperPath } : {}),
    ...(ablationsPath ? { ablations: ablationsPath } : {}),
  };
  const parsed = ResultsPayload.safeParse(withWrittenFiles(input.results, artifacts, documentPaths));
  if (!parsed.success)
    throw new Error(
      `the results of ${input.spec.experiment_id} do not fit ResultsPayload, so no report was written:\n${z.prettifyError(parsed.error)}`,
    );
  const results = parsed.data;
  const reportCharts = charts.map((chart) => ({
    number: chart.number,
    title: chart.title,
    file: chart.file,
    metrics: chart.metrics,
  }));
  const baselines = input.baselines ?? null;
  const ablations = input.ablations ?? null;

  const markdown = renderReportMarkdown({
    runDir,
    spec: input.spec,
    validation: input.validation,
    analysis: input.analysis,
    performance: input.performance,
    narrative: input.narrative,
    results,
    charts: reportCharts,
    baselines,
    ablations,
  });
  const blog =
    input.blog &&
    renderBlogMarkdown({
      spec: input.spec,
      post: input.blog.draft,
      analysis: input.analysis,
      validation: input.validation,
      results,
      baselines,
      ablations,
      charts: reportCharts,
      writtenBy: byline(input.blog),
    });
  const paper =
    input.paper &&
    renderPaperLatex({
      spec: input.spec,
      draft: input.paper.draft,
      analysis: input.analysis,
      validation: input.validation,
      results,
      baselines,
      ablations,
      figures: charts.map((chart) => ({
        number: chart.number,
        title: chart.title,
        curves: chart.metrics.map((metric) => sampler?.curve(metric) ?? { metric, points: [] }),
      })),
      writtenBy: `${input.paper.model} (prompt ${input.paper.promptVersion})`,
    });

  await mkdir(path.join(runDir, REPORT_FILES.charts), { recursive: true });
  const chartPaths: string[] = [];
  for (const chart of charts) {
    const file = path.join(runDir, chart.file);
    await writeFileAtomic(file, chart.svg);
    chartPaths.push(file);
  }
  // The documents link the charts, and results.json marks the documents done: written in that order.
  await writeFileAtomic(reportPath, markdown);
  if (blogPath && blog) await writeFileAtomic(blogPath, blog);
  if (paperPath && paper) await writeFileAtomic(paperPath, paper);
  if (ablationsPath && ablations)
    await writeFileAtomic(ablationsPath, `${JSON.stringify({ proposals: ablations.proposals }, null, 2)}\n`);
  await writeFileAtomic(resultsPath, `${JSON.stringify(results, null, 2)}\n`);
  return {
    reportPath,
    resultsPath,
    charts: chartPaths,
    blogPath,
    paperPath,
    ablationsPath,
    artifacts,
    documentPaths,
    results,
  };
}
