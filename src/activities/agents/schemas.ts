import { z } from 'zod';
import {
  AnalysisFacts,
  BaselineFacts,
  ComparisonVerdict,
  HyperparameterConfig,
  HyperparameterValue,
  HypothesisVerdict,
  ValidationReport,
} from '../../experiment';

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

// The verdict is decided in code (src/experiment/verdict.ts); the report writer explains it.
export { HypothesisVerdict } from '../../experiment';

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

/** A figure of the experiment's documents: one chart of a metric group, e.g. `loss` (`train/loss`, `eval/loss`). */
export const DocumentFigure = z.object({
  /** Its number: writers cite it as "Figure 1". */
  number: z.number().int().positive(),
  /** What it shows, e.g. `loss`. */
  title: z.string(),
  /** The metrics it plots. */
  metrics: z.array(z.string()),
});
/** A figure of the experiment's documents. */
export type DocumentFigure = z.infer<typeof DocumentFigure>;

/** What a table of the experiment's documents holds. */
export const DocumentTableKind = z.enum(['metrics', 'deliverables', 'baselines', 'ablations']);
/** What a table holds. */
export type DocumentTableKind = z.infer<typeof DocumentTableKind>;

/** A table of the experiment's documents, written in code from the facts. */
export const DocumentTable = z.object({
  /** Its number: writers cite it as "Table 1". */
  number: z.number().int().positive(),
  /** What it holds: key metrics, deliverables, baseline comparison, proposed follow-ups. */
  kind: DocumentTableKind,
  /** Its caption. */
  title: z.string(),
});
/** A table of the experiment's documents. */
export type DocumentTable = z.infer<typeof DocumentTable>;

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
  /** The figures the documents show, to cite by number; absent: none to cite. */
  figures: z.array(DocumentFigure).optional(),
  /** The tables the documents show, to cite by number; absent: none to cite. */
  tables: z.array(DocumentTable).optional(),
});
/** The facts of the `report` agent. */
export type ReportFacts = z.infer<typeof ReportFacts>;

/** The baseline comparator's reading of one comparison. */
export const BaselineReading = z.object({
  /** The baseline's name, as in the facts. */
  baseline: z.string(),
  /** The verdict computed in code, repeated (it must equal the facts' verdict). */
  verdict: ComparisonVerdict,
  /** What the statistics mean, in two to four sentences, quoting their numbers. */
  interpretation: z.string(),
});
/** The baseline comparator's reading of one comparison. */
export type BaselineReading = z.infer<typeof BaselineReading>;

/** The baseline comparator's output (agent `baselines`). */
export const BaselineInterpretation = z.object({
  /** A few sentences over all baselines. */
  summary: z.string(),
  /** One per baseline, in the order of the facts. */
  comparisons: z.array(BaselineReading),
  /** What limits the conclusions (few seeds, one run, different setups). */
  caveats: z.array(z.string()),
});
/** The baseline comparator's output. */
export type BaselineInterpretation = z.infer<typeof BaselineInterpretation>;

/** The facts of the `baselines` agent. */
export const BaselineAgentFacts = z.object({
  /** The experiment. */
  experiment: ExperimentBrief,
  /** The statistics, computed in code. */
  baselines: BaselineFacts,
});
/** The facts of the `baselines` agent. */
export type BaselineAgentFacts = z.infer<typeof BaselineAgentFacts>;

/** One hyperparameter change of a proposed follow-up. */
export const ProposedModification = z.object({
  /** A key of the spec's `config`. */
  parameter: z.string(),
  /** Its value in this experiment's config. */
  from: HyperparameterValue.nullable(),
  /** Its value in the follow-up. */
  to: HyperparameterValue,
});

/** A proposed follow-up experiment: the shape campaigns read from `ablations.json`. */
export const AblationProposalOutput = z.object({
  /** Short name, 1 to 24 lowercase letters, digits and dashes (it becomes part of an experiment id). */
  name: z.string(),
  /** What changes. */
  modifications: z.array(ProposedModification),
  /** Why, from the findings. */
  rationale: z.string(),
  /** What the researcher should expect to see, in words. */
  expected_effect: z.string(),
});
/** A proposed follow-up experiment. */
export type AblationProposalOutput = z.infer<typeof AblationProposalOutput>;

/** The ablation designer's output (agent `ablations`). */
export const AblationPlan = z.object({
  /** A few sentences: what the follow-ups would establish. */
  summary: z.string(),
  /** The follow-ups, most informative first. */
  proposals: z.array(AblationProposalOutput),
});
/** The ablation designer's output. */
export type AblationPlan = z.infer<typeof AblationPlan>;

/** The facts of the `ablations` agent. */
export const AblationFacts = z.object({
  /** The experiment. */
  experiment: ExperimentBrief,
  /** The hyperparameters that may change, with their values. */
  config: HyperparameterConfig,
  /** The training command line, to see how the config reaches the trainer. */
  command: z.string(),
  /** The hypothesis verdict, computed in code. */
  verdict: HypothesisVerdict,
  /** Curve statistics and anomalies of the run. */
  analysis: AnalysisFacts,
  /** The performance analyst's output, when it ran. */
  performance: PerformanceAnalysis.nullable(),
  /** Proposals at most. */
  max_proposals: z.number().int().positive(),
});
/** The facts of the `ablations` agent. */
export type AblationFacts = z.infer<typeof AblationFacts>;

/** The facts of the `blog` and `paper` writers (and of `report`, which reads the fields it knows). */
export const WriterFacts = ReportFacts.extend({
  /** The figures the documents show, to cite by number. */
  figures: z.array(DocumentFigure),
  /** The tables the documents show, to cite by number. */
  tables: z.array(DocumentTable),
  /** The hyperparameters. */
  config: HyperparameterConfig,
  /** The hypothesis verdict, computed in code from the deliverables. */
  verdict: HypothesisVerdict,
  /** The baseline statistics and their reading, when the comparator ran. */
  baselines: z.object({ facts: BaselineFacts, interpretation: BaselineInterpretation }).nullable(),
  /** The proposed follow-ups, when the designer ran. */
  ablations: AblationPlan.nullable(),
});
/** The facts of the writers. */
export type WriterFacts = z.infer<typeof WriterFacts>;

/** A section of the blog post. */
export const BlogSection = z.object({
  /** Its heading. */
  heading: z.string(),
  /** Markdown paragraphs; cites figures and tables as "Figure 1", "Table 2". */
  body: z.string(),
});

/** The blog post (agent `blog`): Markdown prose; the figures and tables are placed in code. */
export const BlogPost = z.object({
  /** Title. */
  title: z.string(),
  /** One or two sentences under the title. */
  lead: z.string(),
  /** The post, in order. */
  sections: z.array(BlogSection),
});
/** The blog post. */
export type BlogPost = z.infer<typeof BlogPost>;

/**
 * The paper draft (agent `paper`): plain-text paragraphs per section, separated by blank lines, citing
 * "Figure 1" and "Table 2"; the LaTeX (escaping, floats, references) is written in code.
 */
export const PaperDraft = z.object({
  title: z.string(),
  abstract: z.string(),
  introduction: z.string(),
  method: z.string(),
  results: z.string(),
  discussion: z.string(),
  conclusion: z.string(),
});
/** The paper draft. */
export type PaperDraft = z.infer<typeof PaperDraft>;
