import { randomUUID } from 'node:crypto';
import { mkdir, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type {
  AnalysisFacts,
  ArtifactRecord,
  ExperimentSpec,
  HistoryRow,
  ValidationReport,
} from '../../experiment';
import { ResultsPayload } from '../../experiment';
import type { PerformanceAnalysis, ReportNarrative } from '../agents/schemas';
import type { TrainingChartOptions } from './charts';
import { renderTrainingCharts } from './charts';
import { renderReportMarkdown } from './report-markdown';

/** File names inside the run directory. */
export const REPORT_FILES = {
  report: 'report.md',
  results: 'results.json',
  charts: 'charts',
} as const;

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
}

/** What {@link writeReport} wrote. Paths are absolute. */
export interface WrittenReport {
  /** `<runDir>/report.md`. */
  reportPath: string;
  /** `<runDir>/results.json`. */
  resultsPath: string;
  /** `<runDir>/charts/<name>.svg`, one per metric group. */
  charts: string[];
  /** Records of the files above, as added to the results' `artifacts`. */
  artifacts: ArtifactRecord[];
  /** The results as written to `results.json`: parsed, with the artifacts above. */
  results: ResultsPayload;
}

/**
 * Writes a file so that readers see the old content or the new one, never a part: a temporary file in the
 * same directory (so the rename stays on one file system), then a rename over the target.
 */
async function writeFileAtomic(file: string, content: string): Promise<void> {
  const temporary = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}.${randomUUID()}.tmp`,
  );
  try {
    await writeFile(temporary, content, 'utf8');
    await rename(temporary, file);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
}

/** The results with `added` appended to the artifacts, skipping paths already recorded (a retried write). */
function withArtifacts(results: z.input<typeof ResultsPayload>, added: readonly ArtifactRecord[]) {
  const known = new Set(results.artifacts.map((artifact) => artifact.path));
  return {
    ...results,
    artifacts: [...results.artifacts, ...added.filter((artifact) => !known.has(artifact.path))],
  };
}

/**
 * Writes the experiment's report into its run directory: `charts/<name>.svg` (one chart per metric group),
 * `report.md` (linking them), and last `results.json` (the results payload, pretty-printed), each atomically.
 * The payload is validated first, so an invalid one throws before anything is written. Writing again with
 * the same input gives the same files, so a retried activity is harmless.
 *
 * @throws Error naming every invalid path when `results` does not fit {@link ResultsPayload}
 */
export async function writeReport(input: WriteReportInput): Promise<WrittenReport> {
  const runDir = path.resolve(input.runDir);
  const reportPath = path.join(runDir, REPORT_FILES.report);
  const resultsPath = path.join(runDir, REPORT_FILES.results);
  const charts = await renderTrainingCharts(input.history, input.charts);
  const chartFiles = charts.map((chart) => `${REPORT_FILES.charts}/${chart.name}.svg`);
  const artifacts: ArtifactRecord[] = [
    { name: REPORT_FILES.report, kind: 'report', path: reportPath },
    { name: REPORT_FILES.results, kind: 'results', path: resultsPath },
    ...charts.map((chart, index): ArtifactRecord => ({
      name: chartFiles[index] ?? chart.name,
      kind: 'chart',
      path: path.join(runDir, chartFiles[index] ?? ''),
    })),
  ];

  const parsed = ResultsPayload.safeParse(withArtifacts(input.results, artifacts));
  if (!parsed.success)
    throw new Error(
      `the results of ${input.spec.experiment_id} do not fit ResultsPayload, so no report was written:\n${z.prettifyError(parsed.error)}`,
    );
  const results = parsed.data;

  const markdown = renderReportMarkdown({
    spec: input.spec,
    validation: input.validation,
    analysis: input.analysis,
    performance: input.performance,
    narrative: input.narrative,
    results,
    charts: charts.map((chart, index) => ({
      title: chart.title,
      file: chartFiles[index] ?? '',
      metrics: chart.metrics,
    })),
  });

  await mkdir(path.join(runDir, REPORT_FILES.charts), { recursive: true });
  const chartPaths: string[] = [];
  for (const [index, chart] of charts.entries()) {
    const file = path.join(runDir, chartFiles[index] ?? '');
    await writeFileAtomic(file, chart.svg);
    chartPaths.push(file);
  }
  // The report links the charts, and results.json marks the report done: written in that order.
  await writeFileAtomic(reportPath, markdown);
  await writeFileAtomic(resultsPath, `${JSON.stringify(results, null, 2)}\n`);
  return { reportPath, resultsPath, charts: chartPaths, artifacts, results };
}
