/**
 * Analysis and writing activities on the workflow queue: `collectBaselines` (the statistics of the baseline
 * comparison, in code), `writeReport` (report.md, blog.md, paper.tex, charts, ablations.json and
 * results.json in the run directory), and `analyzeExperiment`, the single analysis activity of workflows
 * that ran before each agent had its own activity on the agents queue (see `../agents/activities.ts`).
 */
import type { z } from 'zod';
import type {
  AnalysisFacts,
  AnalysisReportRecord,
  BaselineFacts,
  ExperimentSpec,
  ResultsPayload,
  SummaryMetricValue,
  ValidationReport,
} from '../../experiment';
import { hypothesisVerdict, reproductionChecks } from '../../experiment';
import { readReproducibilityRecord } from '../reproducibility/record';
import { experimentBrief } from '../agents/activities';
import { performanceAnswer, reportAnswer } from '../agents/answer-schemas';
import { writeReportNarrative } from '../agents/offline-report';
import type { AgentProvider } from '../agents/provider';
import type {
  AblationPlan,
  BaselineInterpretation,
  BlogPost,
  PaperDraft,
  PerformanceAnalysis,
  ReportNarrative,
} from '../agents/schemas';
import { runRefFor, type RunTracker, type TrackerKind } from '../tracking/run-tracker';
import { collectBaselineFacts } from './baselines';
import type { AuthoredDocument } from './report';
import { writeReport } from './report';

/** Prompt versions recorded with each output (the offline provider writes from rules of this version). */
const promptVersions = { performance: 'performance/v1', report: 'report/v1' } as const;

export interface AnalyzeExperimentInput {
  spec: ExperimentSpec;
  facts: AnalysisFacts;
  validation: ValidationReport;
}

export interface ExperimentAnalysis {
  performance: PerformanceAnalysis;
  narrative: ReportNarrative;
  reports: AnalysisReportRecord[];
  /** One line for the publish gate. */
  headline: string;
  cost: { usd: number; promptTokens: number; completionTokens: number };
}

/** The agents' outputs, when agents run on their own task queue (one activity each). */
export interface ExperimentDocuments {
  /** The performance analyst's output; `null` when it did not run. */
  performance: PerformanceAnalysis | null;
  /** The report writer's narrative; `null`: the offline rules write it. */
  narrative: AuthoredDocument<ReportNarrative> | null;
  /** The baseline statistics and their reading; `null` when the comparator did not run. */
  baselines: { facts: BaselineFacts; interpretation: BaselineInterpretation } | null;
  /** The proposed follow-ups; `null` when the designer did not run. */
  ablations: AblationPlan | null;
  /** The blog post; `null` when the `blog` writer did not run. */
  blog: AuthoredDocument<BlogPost> | null;
  /** The paper draft; `null` when the `paper` writer did not run. */
  paper: AuthoredDocument<PaperDraft> | null;
}

export interface WriteExperimentReportInput {
  runDir: string;
  spec: ExperimentSpec;
  facts: AnalysisFacts;
  /** The analysis of `analyzeExperiment` (workflows that ran before agents had their own queue). */
  analysis?: ExperimentAnalysis;
  /** The agents' outputs (workflows with agents on their own queue). */
  documents?: ExperimentDocuments;
  results: z.input<typeof ResultsPayload>;
}

/** What `collectBaselines` compares: the spec's baselines against this run's values. */
export interface CollectBaselinesActivityInput {
  /** Folder of run directories, where earlier experiments' results are. */
  runsRoot: string;
  spec: ExperimentSpec;
  facts: AnalysisFacts;
  /** This run's summary metrics. */
  summary: Record<string, SummaryMetricValue>;
}

export function createArtifactActivities(deps: {
  provider: AgentProvider;
  trackers: Partial<Record<TrackerKind, RunTracker>>;
}) {
  return {
    async analyzeExperiment(input: AnalyzeExperimentInput): Promise<ExperimentAnalysis> {
      const performance = await deps.provider.call({
        agent: 'performance',
        instructions: 'Analyse the training curves from the computed facts only.',
        facts: { analysis: input.facts },
        schema: performanceAnswer(input.facts),
        promptVersion: promptVersions.performance,
      });
      const narrative = await deps.provider.call({
        agent: 'report',
        instructions: 'Write the report narrative from the computed facts only.',
        facts: {
          experiment: {
            id: input.spec.experiment_id,
            name: input.spec.name,
            hypothesis: input.spec.hypothesis,
            research_question: input.spec.research_question,
          },
          validation: input.validation,
          analysis: input.facts,
          performance: performance.output,
        },
        schema: reportAnswer(hypothesisVerdict(input.validation)),
        promptVersion: promptVersions.report,
      });
      return {
        performance: performance.output,
        narrative: narrative.output,
        reports: [
          {
            agent: 'performance',
            title: `Performance analysis (${performance.model}, ${performance.promptVersion})`,
            summary: performance.output.summary,
          },
        ],
        headline: `${narrative.output.hypothesis_outcome.verdict.replace('_', ' ')}: ${narrative.output.summary}`,
        cost: {
          usd: performance.costUsd + narrative.costUsd,
          promptTokens: performance.usage.promptTokens + narrative.usage.promptTokens,
          completionTokens: performance.usage.completionTokens + narrative.usage.completionTokens,
        },
      };
    },

    /** The statistics of the comparison with the spec's baselines, computed in code. */
    async collectBaselines(input: CollectBaselinesActivityInput): Promise<BaselineFacts> {
      return collectBaselineFacts({
        runsRoot: input.runsRoot,
        baselines: input.spec.baselines ?? [],
        summary: input.summary,
        analysis: input.facts,
        goals: input.spec.analysis_pipeline.metric_goals,
      });
    },

    async writeReport(input: WriteExperimentReportInput) {
      const tracker = deps.trackers[input.spec.tracker.type];
      if (!tracker) throw new Error(`no ${input.spec.tracker.type} tracker configured on this worker`);
      const validation = input.results.validation_results ?? null;
      const documents = input.documents;
      const performance = documents ? documents.performance : (input.analysis?.performance ?? null);
      const narrative =
        documents?.narrative?.draft ??
        input.analysis?.narrative ??
        writeReportNarrative({
          experiment: experimentBrief(input.spec),
          validation,
          analysis: input.facts,
          performance,
        });
      const reproduction = input.spec.reproduction_of;
      const written = await writeReport({
        runDir: input.runDir,
        spec: input.spec,
        validation,
        analysis: input.facts,
        narrative,
        performance,
        results: {
          ...input.results,
          reproducibility: await readReproducibilityRecord(input.runDir),
          ...(reproduction
            ? {
                reproduction: reproductionChecks(
                  reproduction,
                  input.spec.reproducibility.tolerance,
                  input.spec.analysis_pipeline.primary_metric,
                  input.results.summary_metrics ?? {},
                ),
              }
            : {}),
        },
        history: tracker.history(runRefFor(input.spec.tracker, input.spec.experiment_id, input.runDir)),
        baselines: documents?.baselines ?? null,
        ablations: documents?.ablations ?? null,
        blog: documents?.blog ?? null,
        paper: documents?.paper ?? null,
      });
      return {
        reportPath: written.reportPath,
        resultsPath: written.resultsPath,
        /** Where each agent's document went, by agent: `report`, `blog`, `paper`, `ablations`. */
        documentPaths: written.documentPaths,
        artifacts: written.artifacts,
      };
    },
  };
}

export type ArtifactActivities = ReturnType<typeof createArtifactActivities>;
