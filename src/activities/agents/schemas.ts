import { z } from 'zod';
import { AnalysisFacts, ValidationReport } from '../../experiment';

// What each agent is given (facts: numbers computed in code) and what it returns (words about them). Output
// schemas use no optional fields and no defaults, so OpenAI structured outputs (strict JSON Schema) accept
// them as they are; the offline provider fills every field too.

/** How much a finding matters: `info` (a result), `warning` (worth a look), `critical` (the result is suspect). */
export const FindingSeverity = z.enum(['info', 'warning', 'critical']);
/** How much a finding matters. */
export type FindingSeverity = z.infer<typeof FindingSeverity>;

/**
 * What a finding is about: `result` (a metric's final and best values), the anomalies of
 * {@link AnalysisFacts} (`divergence`, `plateau`, `instability`, `overfitting`), or `generalization_gap`
 * (the distance between a train metric and its eval counterpart).
 */
export const FindingKind = z.enum([
  'result',
  'divergence',
  'plateau',
  'instability',
  'overfitting',
  'generalization_gap',
]);
/** What a finding is about. */
export type FindingKind = z.infer<typeof FindingKind>;

/** One observation of the performance analyst, with what may cause it and what to do. */
export const PerformanceFinding = z.object({
  /** What it is about. */
  kind: FindingKind,
  /** The metric's key (for train/eval pairs: the eval metric). */
  metric: z.string(),
  /** How much it matters. */
  severity: FindingSeverity,
  /** What the numbers show, in one or two sentences; every number taken from the facts. */
  observation: z.string(),
  /** Likely causes, most likely first; empty for plain results. */
  likely_causes: z.array(z.string()),
  /** What to try next; empty when nothing needs doing. */
  recommendations: z.array(z.string()),
});
/** One observation of the performance analyst. */
export type PerformanceFinding = z.infer<typeof PerformanceFinding>;

/** The performance analyst's output (agent `performance`). */
export const PerformanceAnalysis = z.object({
  /** A few sentences: how training went and what stands out. */
  summary: z.string(),
  /** Results first, then anomalies, in metric order. */
  findings: z.array(PerformanceFinding),
  /** What to do next over all findings, most important first, without repeats. */
  recommendations: z.array(z.string()),
});
/** The performance analyst's output. */
export type PerformanceAnalysis = z.infer<typeof PerformanceAnalysis>;

/**
 * What the run says about the hypothesis: `supported` (every metric threshold the spec set was met),
 * `not_supported` (a required one was missed), `inconclusive` (nothing tested it: no threshold deliverable,
 * or no validation).
 */
export const HypothesisVerdict = z.enum(['supported', 'not_supported', 'inconclusive']);
/** What the run says about the hypothesis. */
export type HypothesisVerdict = z.infer<typeof HypothesisVerdict>;

/** The narrative sections of the technical report (agent `report`); tables and charts are written in code. */
export const ReportNarrative = z.object({
  /** What was done and what came out, in a few sentences. */
  summary: z.string(),
  /** The hypothesis outcome, based on the validation report. */
  hypothesis_outcome: z.object({
    verdict: HypothesisVerdict,
    /** Why, in plain words, citing the deliverables that decided it. */
    explanation: z.string(),
  }),
  /** The results: the main metrics and the deliverables. */
  results: z.string(),
  /** The analysis: anomalies, their likely causes, and what to do next. */
  analysis: z.string(),
});
/** The narrative sections of the technical report. */
export type ReportNarrative = z.infer<typeof ReportNarrative>;

/** The facts of the `performance` agent. */
export const PerformanceFacts = z.object({
  /** Curve statistics and anomalies of the run. */
  analysis: AnalysisFacts,
});
/** The facts of the `performance` agent. */
export type PerformanceFacts = z.infer<typeof PerformanceFacts>;

/** The experiment as writers see it: from the spec, the researcher's words. */
export const ExperimentBrief = z.object({
  /** The experiment id. */
  id: z.string(),
  /** Its name. */
  name: z.string(),
  /** The claim it tests. */
  hypothesis: z.string(),
  /** The question it answers; `""` when the spec has none. */
  research_question: z.string(),
});
/** The experiment as writers see it. */
export type ExperimentBrief = z.infer<typeof ExperimentBrief>;

/** The facts of the `report` agent. */
export const ReportFacts = z.object({
  /** The experiment. */
  experiment: ExperimentBrief,
  /** The verdicts on the deliverables; `null` when the run was not validated. */
  validation: ValidationReport.nullable(),
  /** Curve statistics and anomalies of the run. */
  analysis: AnalysisFacts,
  /** The performance analyst's output, when it ran. */
  performance: PerformanceAnalysis.nullable(),
});
/** The facts of the `report` agent. */
export type ReportFacts = z.infer<typeof ReportFacts>;
