import { z } from 'zod';
import { DecisionRecord } from './decisions';
import { ValidationReport } from './deliverables';
import { NumberTrace } from './grounding';
import { ExperimentId } from './spec';
import { ReproducibilityRecord, ReproductionCheck } from './reproducibility';

/**
 * How an experiment ended: `completed` (every required deliverable met), `partial_success` (a person
 * accepted unmet required deliverables), `failed` (no usable result: attempts exhausted, aborted,
 * deliverables not met and not accepted).
 */
export const ResultsStatus = z.enum(['completed', 'failed', 'partial_success']);
/** How an experiment ended. */
export type ResultsStatus = z.infer<typeof ResultsStatus>;

/** Per deliverable: met, not met, or not met but accepted at the deliverables gate. */
export const DeliverableStatus = z.enum(['met', 'not_met', 'accepted_anyway']);
/** Per deliverable: met, not met, or accepted anyway. */
export type DeliverableStatus = z.infer<typeof DeliverableStatus>;

/** A file or tracked artifact the experiment produced. */
export const ArtifactRecord = z
  .object({
    /** Name shown in reports, e.g. `final checkpoint`, `report.md`. */
    name: z.string().min(1),
    /** What it is. */
    kind: z.enum(['checkpoint', 'report', 'chart', 'results', 'log', 'tracked_artifact', 'file']),
    /** Path on the Labline host (absolute, or relative to the working directory of the CLI). */
    path: z.string().min(1).optional(),
    /** URI elsewhere, e.g. a W&B artifact or run URL. */
    uri: z.string().min(1).optional(),
  })
  .refine((artifact) => artifact.path !== undefined || artifact.uri !== undefined, {
    message: 'an artifact needs a path or a uri',
  });
/** A file or tracked artifact the experiment produced. */
export type ArtifactRecord = z.infer<typeof ArtifactRecord>;

/**
 * One call to a language model: `answer` (the first), `schema_retry` (its answer did not fit the schema and
 * was sent back with the validation error), `revision` (unverified numbers or invalid content were sent
 * back), `revision_schema_retry`.
 */
export const LlmCallRecord = z.object({
  /** Why the call was made. */
  purpose: z.enum(['answer', 'schema_retry', 'revision', 'revision_schema_retry']),
  /** The model that answered. */
  model: z.string(),
  /** Tokens sent. */
  prompt_tokens: z.number().int().nonnegative(),
  /** Tokens generated. */
  completion_tokens: z.number().int().nonnegative(),
  /** US dollars, from the settings' price table. */
  cost_usd: z.number().nonnegative(),
});
/** One call to a language model. */
export type LlmCallRecord = z.infer<typeof LlmCallRecord>;

/**
 * An analysis or writing agent's output. The fields after `summary` are absent in records of workflows that
 * ran before agents had their own task queue.
 */
export const AnalysisReportRecord = z.object({
  /** The agent, e.g. `performance`, `baselines`, `report`, `paper`. */
  agent: z.string().min(1),
  /** Title of its output. */
  title: z.string(),
  /** Where it was written, when it is a file. */
  path: z.string().optional(),
  /** A short summary, a few sentences. */
  summary: z.string(),
  /** The model that wrote it; `offline` for the rules-based writers. */
  model: z.string().optional(),
  /** The prompt files' version, e.g. `performance.v1`. */
  prompt_version: z.string().optional(),
  /** Every model call it took, with tokens and cost. */
  calls: z.array(LlmCallRecord).optional(),
  /** Cost of those calls in US dollars. */
  cost_usd: z.number().nonnegative().optional(),
  /** The numbers of its text that stand for computed values, with the facts path of each. */
  verified_numbers: z.array(NumberTrace).optional(),
  /** Numbers of its text that no computed value backs, after one revision; marked `[unverified]` in the text. */
  unverified_numbers: z.array(z.string()).optional(),
  /** Anything else a reader should know, e.g. why the offline writer stood in for the model. */
  note: z.string().optional(),
});
/** An analysis or writing agent's output. */
export type AnalysisReportRecord = z.infer<typeof AnalysisReportRecord>;

/** What an experiment cost. */
export const Costs = z.object({
  /** LLM spending in US dollars. Default `0`. */
  llm_usd: z.number().nonnegative().default(0),
  /** Prompt tokens over all LLM calls. Default `0`. */
  llm_prompt_tokens: z.number().int().nonnegative().default(0),
  /** Completion tokens over all LLM calls. Default `0`. */
  llm_completion_tokens: z.number().int().nonnegative().default(0),
  /** GPU hours: GPUs reserved × wall hours, over all training attempts. Default `0`. */
  gpu_hours: z.number().nonnegative().default(0),
});
/** What an experiment cost. */
export type Costs = z.infer<typeof Costs>;

/** A summary metric value as results record it. */
export const SummaryMetricValue = z.union([z.number(), z.string(), z.boolean(), z.null()]);
/** A summary metric value as results record it. */
export type SummaryMetricValue = z.infer<typeof SummaryMetricValue>;

/** The result of an experiment workflow, also written as `runs/<experiment-id>/results.json`. */
export const ResultsPayload = z.object({
  /** The experiment. */
  experiment_id: ExperimentId,
  /** How it ended. */
  status: ResultsStatus,
  /** Why it failed or only partly succeeded, in words; absent when completed. */
  reason: z.string().optional(),
  /** When it ended, ISO 8601 (workflow time). */
  completed_at: z.iso.datetime({ offset: true }),
  /** From submission to end, in seconds (including time waiting at gates). */
  duration_seconds: z.number().nonnegative(),
  /** Per deliverable name. */
  deliverables_status: z.record(z.string(), DeliverableStatus),
  /** The tracked run's summary, scalars only (see {@link summaryMetricsFrom}). */
  summary_metrics: z.record(z.string(), SummaryMetricValue),
  /** The last validation report; `null` when the experiment ended before validation. */
  validation_results: ValidationReport.nullable(),
  /** Files and artifacts produced. */
  artifacts: z.array(ArtifactRecord),
  /** Analysis and writing outputs. */
  analysis_reports: z.array(AnalysisReportRecord),
  /** Every decision, in order, including ignored ones. */
  decisions: z.array(DecisionRecord),
  /** What it cost. */
  costs: Costs,
  /** The reproducibility record of the run (`reproducibility.json`), in results.json. */
  reproducibility: ReproducibilityRecord.optional(),
  /** A reproduction's comparison with the original, per metric (`labline reproduce --compare`). */
  reproduction: z.array(ReproductionCheck).optional(),
});
/** The result of an experiment workflow. */
export type ResultsPayload = z.infer<typeof ResultsPayload>;

/**
 * Each deliverable's status from a validation report: `met`, else `accepted_anyway` for a required one a
 * person accepted at the deliverables gate, else `not_met`.
 *
 * @param acceptedAnyway whether the deliverables gate decided `accept`
 */
export function deliverablesStatus(
  report: ValidationReport,
  acceptedAnyway: boolean,
): Record<string, DeliverableStatus> {
  const status: Record<string, DeliverableStatus> = {};
  for (const result of report.results) {
    status[result.name] = result.passed
      ? 'met'
      : acceptedAnyway && result.required
        ? 'accepted_anyway'
        : 'not_met';
  }
  return status;
}

/**
 * The results status after validation: `completed` when every required deliverable passed,
 * `partial_success` when they did not but a person accepted them, `failed` otherwise.
 */
export function resultsStatus(report: ValidationReport, acceptedAnyway: boolean): ResultsStatus {
  if (report.passed) return 'completed';
  return acceptedAnyway ? 'partial_success' : 'failed';
}

/**
 * The scalars of a run summary, for `summary_metrics`: numbers, strings, booleans and nulls as they are;
 * nested objects flattened to dotted keys (`eval.loss`) up to three levels; W&B's internal `_wandb` and
 * lists (histograms, tables) left out.
 */
export function summaryMetricsFrom(
  summary: Readonly<Record<string, unknown>>,
): Record<string, SummaryMetricValue> {
  const metrics: Record<string, SummaryMetricValue> = {};
  const visit = (value: unknown, key: string, depth: number): void => {
    if (value === null || typeof value === 'string' || typeof value === 'boolean') metrics[key] = value;
    else if (typeof value === 'number') metrics[key] = Number.isFinite(value) ? value : String(value);
    else if (typeof value === 'object' && !Array.isArray(value) && depth < 3)
      for (const [inner, innerValue] of Object.entries(value as Record<string, unknown>))
        visit(innerValue, `${key}.${inner}`, depth + 1);
  };
  for (const [key, value] of Object.entries(summary)) if (key !== '_wandb') visit(value, key, 0);
  return metrics;
}
