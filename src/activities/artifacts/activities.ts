/**
 * Analysis and writing activities: the analysis agents turn computed facts into words (through the
 * configured AgentProvider), and the report writer puts report.md, charts and results.json in the run
 * directory.
 */
import type { z } from 'zod';
import type {
  AnalysisFacts,
  AnalysisReportRecord,
  ExperimentSpec,
  ResultsPayload,
  ValidationReport,
} from '../../experiment';
import type { AgentProvider } from '../agents/provider';
import { PerformanceAnalysis, ReportNarrative } from '../agents/schemas';
import type { RunTracker, TrackerKind } from '../tracking/run-tracker';
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

export interface WriteExperimentReportInput {
  runDir: string;
  spec: ExperimentSpec;
  facts: AnalysisFacts;
  analysis: ExperimentAnalysis;
  results: z.input<typeof ResultsPayload>;
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
        schema: PerformanceAnalysis,
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
        schema: ReportNarrative,
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

    async writeReport(input: WriteExperimentReportInput) {
      const tracker = deps.trackers[input.spec.tracker.type];
      if (!tracker) throw new Error(`no ${input.spec.tracker.type} tracker configured on this worker`);
      const written = await writeReport({
        runDir: input.runDir,
        spec: input.spec,
        validation: input.results.validation_results ?? null,
        analysis: input.facts,
        narrative: input.analysis.narrative,
        performance: input.analysis.performance,
        results: input.results,
        history: tracker.history({ experimentId: input.spec.experiment_id, runDir: input.runDir }),
      });
      return {
        reportPath: written.reportPath,
        resultsPath: written.resultsPath,
        artifacts: written.artifacts,
      };
    },
  };
}

export type ArtifactActivities = ReturnType<typeof createArtifactActivities>;
