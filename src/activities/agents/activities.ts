/**
 * The analysis and writing agents, one activity each, on the `labline-agents` task queue: the performance
 * analyst, the baseline comparator, the ablation designer, and the writers of the technical report, the blog
 * post and the paper draft. Each works from facts computed in code; every number it writes is checked
 * against them (see `grounded-call.ts`).
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type {
  AnalysisFacts,
  BaselineFacts,
  ExperimentSpec,
  HypothesisVerdict,
  ValidationReport,
} from '../../experiment';
import { ablationSpec, documentReferences, FailureType, hypothesisVerdict } from '../../experiment';
import { documentFigures, documentTables } from '../artifacts/document-plan';
import {
  ablationsAnswer,
  baselinesAnswer,
  findingSubjects,
  performanceAnswer,
  reportAnswer,
} from './answer-schemas';
import type { AgentStep, AgentStepInput, GroundedTask, StepProviders } from './grounded-call';
import { AgentStepError, runGroundedStep } from './grounded-call';
import { OfflineAgentProvider } from './offline';
import type { AgentProvider } from './provider';
import {
  BlogPost,
  PaperDraft,
  type AblationFacts,
  type AblationPlan,
  type BaselineInterpretation,
  type PerformanceAnalysis,
  type ReportNarrative,
  type BaselineAgentFacts,
  type DocumentFigure,
  type DocumentTable,
  type ExperimentBrief,
  type PerformanceFacts,
  type WriterFacts,
} from './schemas';
import type { z } from 'zod';

/** Follow-ups the ablation designer proposes at most. */
export const MAX_ABLATION_PROPOSALS = 5;

/** Time kept back from the activity's start-to-close timeout, so a call's own timeout fires first. */
const DEADLINE_MARGIN_MS = 5_000;

/** `analyzePerformance`: the curve statistics. */
export interface AnalyzePerformanceInput extends AgentStepInput {
  analysis: AnalysisFacts;
}

/** `compareBaselines`: the experiment and the statistics of its baseline comparisons. */
export interface CompareBaselinesInput extends AgentStepInput {
  spec: ExperimentSpec;
  baselines: BaselineFacts;
}

/** `designAblations`: the spec (its config is what may change) and what the analysis found. */
export interface DesignAblationsInput extends AgentStepInput {
  spec: ExperimentSpec;
  analysis: AnalysisFacts;
  validation: ValidationReport | null;
  performance: PerformanceAnalysis | null;
}

/** The writers' input: everything the analysis stage produced. */
export interface WriteDocumentInput extends AgentStepInput {
  spec: ExperimentSpec;
  analysis: AnalysisFacts;
  validation: ValidationReport | null;
  performance: PerformanceAnalysis | null;
  baselines: { facts: BaselineFacts; interpretation: BaselineInterpretation } | null;
  ablations: AblationPlan | null;
}

/** The experiment as agents see it: from the spec, the researcher's words. */
export function experimentBrief(spec: ExperimentSpec): ExperimentBrief {
  return {
    id: spec.experiment_id,
    name: spec.name,
    hypothesis: spec.hypothesis,
    research_question: spec.research_question,
  };
}

/** The training command line, as the ablation designer reads it. */
function commandLine(spec: ExperimentSpec): string {
  return [spec.training.command, ...spec.training.args].join(' ');
}

/** What is left of the activity's start-to-close timeout, less a margin; unbounded outside an activity. */
function activityTimeLeftMs(): number {
  let info;
  try {
    info = Context.current().info;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
  if (!info.startToCloseTimeoutMs) return Number.POSITIVE_INFINITY;
  const deadline = info.currentAttemptScheduledTimestampMs + info.startToCloseTimeoutMs;
  return Math.max(1, deadline - Date.now() - DEADLINE_MARGIN_MS);
}

/** An agent step's failure as Temporal sees it: its `Agent*` type, retryable or not, and what it paid for. */
function applicationFailure(failure: AgentStepError): ApplicationFailure {
  const { error } = failure;
  return ApplicationFailure.create({
    type: error.failureType,
    message: error.message,
    nonRetryable: error.failureType !== FailureType.AgentUnavailable,
    nextRetryDelay: error.details.retryAfterMs,
    details: [{ calls: failure.calls }],
  });
}

/** Problems with the figures and tables a document cites: unknown numbers, or none cited when some exist. */
export function citationProblems(
  texts: readonly string[],
  figures: readonly DocumentFigure[],
  tables: readonly DocumentTable[],
  required: boolean,
): string[] {
  const cited = texts.map(documentReferences);
  const citedFigures = new Set(cited.flatMap((refs) => refs.figures));
  const citedTables = new Set(cited.flatMap((refs) => refs.tables));
  const problems: string[] = [];
  const figureNumbers = figures.map((figure) => figure.number);
  const tableNumbers = tables.map((table) => table.number);
  const unknownFigures = [...citedFigures].filter((number) => !figureNumbers.includes(number));
  const unknownTables = [...citedTables].filter((number) => !tableNumbers.includes(number));
  if (unknownFigures.length > 0)
    problems.push(
      `it cites Figure ${unknownFigures.join(', ')}, which does not exist; the figures are ${figureNumbers.join(', ') || 'none'}`,
    );
  if (unknownTables.length > 0)
    problems.push(
      `it cites Table ${unknownTables.join(', ')}, which does not exist; the tables are ${tableNumbers.join(', ') || 'none'}`,
    );
  if (required && figures.length > 0 && citedFigures.size === 0)
    problems.push('it cites no figure; cite the figures by number, e.g. "Figure 1"');
  if (required && tables.length > 0 && citedTables.size === 0)
    problems.push('it cites no table; cite the tables by number, e.g. "Table 1"');
  return problems;
}

/**
 * Findings about a metric the analysis does not have, an anomaly it did not detect, or a gap it did not find:
 * the same sets as the answer schema's enums (`findingSubjects`), checked again for answers that did not go
 * through a strict schema (the offline rules, servers without strict structured outputs).
 */
export function performanceProblems(output: PerformanceAnalysis, analysis: AnalysisFacts): string[] {
  const subjects = findingSubjects(analysis);
  const problems: string[] = [];
  output.findings.forEach((finding, index) => {
    const where = `findings[${index}] (${finding.kind} in ${finding.metric})`;
    if (subjects[finding.kind].includes(finding.metric)) return;
    if (!Object.hasOwn(analysis.metrics, finding.metric))
      problems.push(`${where}: the analysis has no metric "${finding.metric}"`);
    else if (finding.kind === 'generalization_gap')
      problems.push(
        `${where}: the analysis found no generalization gap beyond noise with ${finding.metric} as the eval metric`,
      );
    else problems.push(`${where}: the analysis detected no ${finding.kind} in ${finding.metric}`);
  });
  return problems;
}

/** Readings that do not match the computed comparisons (missing, extra, or another verdict). */
export function baselineProblems(output: BaselineInterpretation, facts: BaselineFacts): string[] {
  const problems: string[] = [];
  for (const comparison of facts.comparisons) {
    const reading = output.comparisons.find((candidate) => candidate.baseline === comparison.baseline);
    if (!reading) problems.push(`there is no reading of the baseline "${comparison.baseline}"`);
    else if (reading.verdict !== comparison.verdict)
      problems.push(
        `the verdict for "${comparison.baseline}" is "${reading.verdict}", but the facts decided "${comparison.verdict}"`,
      );
  }
  for (const reading of output.comparisons)
    if (!facts.comparisons.some((comparison) => comparison.baseline === reading.baseline))
      problems.push(`"${reading.baseline}" is not a baseline of the facts`);
  return problems;
}

/** Proposals that are not valid spec modifications, repeated names, or too many proposals. */
export function ablationProblems(output: AblationPlan, spec: ExperimentSpec, maxProposals: number): string[] {
  const problems: string[] = [];
  if (output.proposals.length > maxProposals)
    problems.push(`it proposes ${output.proposals.length} follow-ups; propose at most ${maxProposals}`);
  const names = new Set<string>();
  for (const proposal of output.proposals) {
    if (names.has(proposal.name)) problems.push(`two proposals are named "${proposal.name}"`);
    names.add(proposal.name);
    const checked = ablationSpec(spec, proposal);
    if (!checked.ok) problems.push(...checked.problems);
  }
  return problems;
}

function writerFacts(input: WriteDocumentInput): WriterFacts {
  const figures = documentFigures(input.analysis);
  const tables = documentTables({
    analysis: input.analysis,
    validation: input.validation,
    baselines: input.baselines?.facts ?? null,
    ablations: input.ablations,
  });
  return {
    experiment: experimentBrief(input.spec),
    config: input.spec.config,
    verdict: hypothesisVerdict(input.validation),
    validation: input.validation,
    analysis: input.analysis,
    performance: input.performance,
    baselines: input.baselines,
    ablations: input.ablations,
    figures,
    tables,
  };
}

/** The computed values writers' numbers must stand for: the facts without the other agents' words. */
function writerSources(facts: WriterFacts) {
  return {
    experiment: facts.experiment,
    config: facts.config,
    analysis: facts.analysis,
    validation: facts.validation,
    baselines: facts.baselines?.facts ?? null,
    ablations: facts.ablations?.proposals.map((proposal) => proposal.modifications) ?? null,
  };
}

function verdictProblem(verdict: HypothesisVerdict, decided: HypothesisVerdict): string[] {
  return verdict === decided
    ? []
    : [`hypothesis_outcome.verdict is "${verdict}", but the deliverables decided "${decided}"`];
}

/**
 * The agent activities. `provider` answers them (the model, or the offline rules); `offline` stands in when
 * the budget gate refused more spending (default: the offline rules).
 */
export function createAgentActivities(deps: { provider: AgentProvider; offline?: AgentProvider }) {
  const providers: StepProviders = {
    model: deps.provider,
    offline: deps.offline ?? new OfflineAgentProvider(),
  };
  const run = async <Schema extends z.ZodType>(
    task: GroundedTask<Schema>,
    input: AgentStepInput,
  ): Promise<AgentStep<z.infer<Schema>>> => {
    try {
      return await runGroundedStep(providers, task, input, activityTimeLeftMs);
    } catch (error) {
      if (error instanceof AgentStepError) throw applicationFailure(error);
      throw error;
    }
  };

  return {
    /** The performance analyst: curves, anomalies, likely causes, recommendations. */
    async analyzePerformance(input: AnalyzePerformanceInput): Promise<AgentStep<PerformanceAnalysis>> {
      const facts: PerformanceFacts = { analysis: input.analysis };
      return run(
        {
          agent: 'performance',
          facts,
          schema: performanceAnswer(input.analysis),
          sources: () => ({ analysis: input.analysis }),
          check: (output) => performanceProblems(output, input.analysis),
          skipKeys: ['metric', 'kind', 'severity'],
          title: () => 'Performance analysis',
          summary: (output) => output.summary,
        },
        input,
      );
    },

    /** The baseline comparator: interprets statistics computed in code. */
    async compareBaselines(input: CompareBaselinesInput): Promise<AgentStep<BaselineInterpretation>> {
      const facts: BaselineAgentFacts = {
        experiment: experimentBrief(input.spec),
        baselines: input.baselines,
      };
      return run(
        {
          agent: 'baselines',
          facts,
          schema: baselinesAnswer(input.baselines),
          sources: () => ({ baselines: input.baselines, experiment: facts.experiment }),
          check: (output) => baselineProblems(output, input.baselines),
          skipKeys: ['baseline', 'verdict'],
          title: () => 'Comparison with baselines',
          summary: (output) => output.summary,
        },
        input,
      );
    },

    /** The ablation designer: follow-ups as spec modifications, each checked against the spec schema. */
    async designAblations(input: DesignAblationsInput): Promise<AgentStep<AblationPlan>> {
      const facts: AblationFacts = {
        experiment: experimentBrief(input.spec),
        config: input.spec.config,
        command: commandLine(input.spec),
        verdict: hypothesisVerdict(input.validation),
        analysis: input.analysis,
        performance: input.performance,
        max_proposals: MAX_ABLATION_PROPOSALS,
      };
      return run(
        {
          agent: 'ablations',
          facts,
          schema: ablationsAnswer(input.spec),
          sources: (output) => ({
            config: facts.config,
            experiment: facts.experiment,
            analysis: input.analysis,
            proposals: output.proposals.map((proposal) => proposal.modifications),
          }),
          check: (output) => ablationProblems(output, input.spec, MAX_ABLATION_PROPOSALS),
          skipKeys: ['name', 'modifications'],
          title: () => 'Proposed follow-up experiments',
          summary: (output) => output.summary,
        },
        input,
      );
    },

    /** The technical report's narrative (report.md's prose; its tables and charts are written in code). */
    async writeReportNarrative(input: WriteDocumentInput): Promise<AgentStep<ReportNarrative>> {
      const facts = writerFacts(input);
      return run(
        {
          agent: 'report',
          facts,
          schema: reportAnswer(facts.verdict),
          sources: () => writerSources(facts),
          check: (output) => [
            ...verdictProblem(output.hypothesis_outcome.verdict, facts.verdict),
            ...citationProblems(
              [output.summary, output.results, output.analysis],
              facts.figures,
              facts.tables,
              false,
            ),
          ],
          skipKeys: ['verdict'],
          title: () => 'Technical report',
          summary: (output) => output.summary,
        },
        input,
      );
    },

    /** The blog post (blog.md). */
    async writeBlogPost(input: WriteDocumentInput): Promise<AgentStep<BlogPost>> {
      const facts = writerFacts(input);
      return run(
        {
          agent: 'blog',
          facts,
          schema: BlogPost,
          sources: () => writerSources(facts),
          check: (output) =>
            citationProblems(
              [output.lead, ...output.sections.map((section) => section.body)],
              facts.figures,
              facts.tables,
              true,
            ),
          title: (output) => output.title,
          summary: (output) => output.lead,
        },
        input,
      );
    },

    /** The paper draft (paper.tex). */
    async writePaperDraft(input: WriteDocumentInput): Promise<AgentStep<PaperDraft>> {
      const facts = writerFacts(input);
      return run(
        {
          agent: 'paper',
          facts,
          schema: PaperDraft,
          sources: () => writerSources(facts),
          check: (output) =>
            citationProblems(
              [
                output.abstract,
                output.introduction,
                output.method,
                output.results,
                output.discussion,
                output.conclusion,
              ],
              facts.figures,
              facts.tables,
              true,
            ),
          title: (output) => output.title,
          summary: (output) => output.abstract,
        },
        input,
      );
    },
  };
}

export type AgentActivities = ReturnType<typeof createAgentActivities>;
