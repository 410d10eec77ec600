/**
 * The analysis and writing stages with one activity per agent on the agents task queue: the analyses of
 * the spec (performance, baselines, ablations) before the publish review, the writers (report, blog, paper)
 * after it. Each step is budgeted (the `budget` gate opens when the next call could exceed
 * `budgets.llm_cost_usd`) and each agent failure that retrying cannot fix asks a person at the `failure` gate.
 */
import { ActivityFailure, ApplicationFailure, log, proxyActivities } from '@temporalio/workflow';
import type { AgentActivities, WriteDocumentInput } from '../activities/agents/activities';
import type { AgentStep, AgentStepInput } from '../activities/agents/grounded-call';
import type { AblationPlan, BaselineInterpretation, PerformanceAnalysis } from '../activities/agents/schemas';
import type { ArtifactActivities, ExperimentDocuments } from '../activities/artifacts/activities';
import {
  AGENT_MAX_ATTEMPTS,
  AGENT_START_TO_CLOSE_SECONDS,
  AGENT_STEP_RETRIES,
  FailureType,
  hypothesisVerdict,
  summaryMetricsFrom,
  type AgentName,
  type AnalysisFacts,
  type AnalysisReportRecord,
  type BaselineFacts,
  type ExperimentSpec,
  type ExperimentStatus,
  type LlmCallRecord,
  type ValidationReport,
  type WorkflowSettings,
} from '../experiment';
import type { ApprovalGates } from './approval-gate';

/** The `patched()` id of this pipeline: histories recorded before it replay the single `analyzeExperiment`. */
export const AGENT_PIPELINE_PATCH = 'agents-one-activity-each-on-the-agents-queue';

/** What the agent stages need from the experiment workflow. */
export interface AgentPipelineContext {
  spec: ExperimentSpec;
  settings: WorkflowSettings;
  /** The workflow's status: costs and `analysis_reports` are updated after every step. */
  status: ExperimentStatus;
  gates: ApprovalGates;
  facts: AnalysisFacts;
  validation: ValidationReport | null;
  /** The run's summary metrics, for the baseline comparison. */
  summary: Record<string, unknown>;
  /** The results' `analysis_reports`; each agent's record is appended. */
  reports: AnalysisReportRecord[];
  light: Pick<ArtifactActivities, 'collectBaselines'>;
  /** Builds the error that ends the experiment failed, with the reason. */
  ended: (reason: string) => Error;
}

function usd(amount: number): string {
  return `$${amount.toFixed(4)}`;
}

/** The agents' step failure of an activity failure: its type and message; `undefined` for other failures. */
function agentFailureOf(
  error: unknown,
): { type: string; message: string; calls: LlmCallRecord[] } | undefined {
  if (!(error instanceof ActivityFailure)) return undefined;
  const cause = error.cause;
  if (cause instanceof ApplicationFailure) {
    const details = (cause.details?.[0] ?? {}) as { calls?: LlmCallRecord[] };
    return { type: cause.type ?? 'Error', message: cause.message, calls: details.calls ?? [] };
  }
  return { type: cause?.name ?? 'ActivityFailure', message: cause?.message ?? error.message, calls: [] };
}

/** The analysis and writing agents of one experiment; see the module comment. */
export class AgentPipeline {
  private readonly agents: AgentActivities;
  /** A person approved spending past the budget. */
  private budgetApproved = false;
  /** A person refused spending past the budget: the offline rules write the rest. */
  private budgetRefused = false;
  private performance: PerformanceAnalysis | null = null;
  private baselines: { facts: BaselineFacts; interpretation: BaselineInterpretation } | null = null;
  private ablations: AblationPlan | null = null;

  constructor(private readonly context: AgentPipelineContext) {
    this.agents = proxyActivities<AgentActivities>({
      taskQueue: context.settings.task_queues.agents,
      startToCloseTimeout: `${AGENT_START_TO_CLOSE_SECONDS} seconds`,
      heartbeatTimeout: `${context.settings.activity_heartbeat_timeout_seconds} seconds`,
      retry: {
        initialInterval: '2s',
        maximumInterval: '2 minutes',
        maximumAttempts: AGENT_MAX_ATTEMPTS,
        nonRetryableErrorTypes: [
          FailureType.AgentAuthFailed,
          FailureType.AgentBadRequest,
          FailureType.AgentRefused,
          FailureType.AgentOutputInvalid,
        ],
      },
    });
    context.status.analysis_reports = context.reports;
  }

  private charge(calls: readonly LlmCallRecord[]): void {
    const { costs } = this.context.status;
    for (const call of calls) {
      costs.llm_usd += call.cost_usd;
      costs.llm_prompt_tokens += call.prompt_tokens;
      costs.llm_completion_tokens += call.completion_tokens;
    }
  }

  private common(): AgentStepInput {
    return {
      experimentId: this.context.spec.experiment_id,
      budget: {
        limit_usd: this.context.spec.budgets.llm_cost_usd,
        spent_usd: this.context.status.costs.llm_usd,
        approved_over: this.budgetApproved,
      },
      offline: this.budgetRefused,
    };
  }

  /**
   * Runs one agent step until it completes: over the budget it asks at the `budget` gate (approve: spend
   * past it; reject: the offline rules write this and every later step); on a failure that retrying cannot
   * fix it asks at the `failure` gate (approve: run the step again; reject: the experiment ends failed).
   */
  private async step<Output>(
    agent: AgentName,
    run: (common: AgentStepInput) => Promise<AgentStep<Output>>,
  ): Promise<Output> {
    const { spec, gates } = this.context;
    for (let failures = 0; ;) {
      let result: AgentStep<Output>;
      try {
        result = await run(this.common());
      } catch (error) {
        const failure = agentFailureOf(error);
        if (!failure) throw error;
        this.charge(failure.calls);
        log.warn('agent failed', { agent, type: failure.type, message: failure.message });
        // A disabled failure gate approves by itself: without a bound, an agent that always fails would be
        // called (and paid for) forever.
        if (++failures > AGENT_STEP_RETRIES)
          throw this.context.ended(
            `the ${agent} agent failed ${failures} times; last (${failure.type}): ${failure.message}`,
          );
        const choice = await gates.decide(
          'failure',
          spec.approvals.failure,
          `the ${agent} agent failed (${failure.type}): ${failure.message}. Retry the agent (approve; ` +
            `${AGENT_STEP_RETRIES - failures + 1} retries left) or end the experiment (reject)?`,
        );
        if (choice === 'retry') continue;
        throw this.context.ended(`aborted after the ${agent} agent failed: ${failure.message}`);
      }
      if (result.status === 'over_budget') {
        this.charge(result.calls);
        const { costs } = this.context.status;
        const outcome = await gates.decide(
          'budget',
          spec.approvals.budget,
          `the ${agent} agent's next model call could cost up to ${usd(result.estimate_usd)}; the agents spent ` +
            `${usd(costs.llm_usd)} of the ${usd(spec.budgets.llm_cost_usd)} budget. Approve to let them spend past ` +
            'the budget, or reject to write the rest with the offline rules (no model, no cost).',
        );
        if (outcome === 'approved') this.budgetApproved = true;
        else this.budgetRefused = true;
        continue;
      }
      this.charge(result.record.calls ?? []);
      this.context.reports.push(result.record);
      return result.output;
    }
  }

  /** The analyses of the spec, in its order; returns the publish gate's headline. */
  async analyze(): Promise<string> {
    const { spec, facts, validation } = this.context;
    for (const analysis of spec.analysis_pipeline.analyses) {
      if (analysis === 'performance')
        this.performance = await this.step('performance', (common) =>
          this.agents.analyzePerformance({ ...common, analysis: facts }),
        );
      else if (analysis === 'baselines') {
        if (!spec.baselines) {
          this.context.reports.push({
            agent: 'baselines',
            title: 'Comparison with baselines',
            summary:
              'Skipped: the spec lists no baselines (add `baselines` to compare against values or earlier experiments).',
          });
          continue;
        }
        const baselineFacts = await this.context.light.collectBaselines({
          runsRoot: this.context.settings.runs_root,
          spec,
          facts,
          summary: summaryMetricsFrom(this.context.summary),
        });
        const interpretation = await this.step('baselines', (common) =>
          this.agents.compareBaselines({ ...common, spec, baselines: baselineFacts }),
        );
        this.baselines = { facts: baselineFacts, interpretation };
      } else
        this.ablations = await this.step('ablations', (common) =>
          this.agents.designAblations({
            ...common,
            spec,
            analysis: facts,
            validation,
            performance: this.performance,
          }),
        );
    }
    const verdict = hypothesisVerdict(validation).replace('_', ' ');
    return this.performance ? `${verdict}: ${this.performance.summary}` : verdict;
  }

  /** The writers of the spec, in its order; returns everything the documents are written from. */
  async write(): Promise<ExperimentDocuments> {
    const { spec, facts, validation } = this.context;
    const documents: ExperimentDocuments = {
      performance: this.performance,
      narrative: null,
      baselines: this.baselines,
      ablations: this.ablations,
      blog: null,
      paper: null,
    };
    const input = (common: AgentStepInput): WriteDocumentInput => ({
      ...common,
      spec,
      analysis: facts,
      validation,
      performance: this.performance,
      baselines: this.baselines,
      ablations: this.ablations,
    });
    const authored = <Draft>(draft: Draft) => {
      const record = this.context.reports.at(-1);
      return {
        draft,
        model: record?.model ?? 'offline',
        promptVersion: record?.prompt_version ?? '',
      };
    };
    for (const writer of spec.analysis_pipeline.writers) {
      if (writer === 'report')
        documents.narrative = authored(
          await this.step('report', (common) => this.agents.writeReportNarrative(input(common))),
        );
      else if (writer === 'blog')
        documents.blog = authored(
          await this.step('blog', (common) => this.agents.writeBlogPost(input(common))),
        );
      else
        documents.paper = authored(
          await this.step('paper', (common) => this.agents.writePaperDraft(input(common))),
        );
    }
    return documents;
  }

  /** Records where each agent's document was written. */
  recordPaths(paths: Readonly<Record<string, string>>): void {
    for (const record of this.context.reports) {
      const written = paths[record.agent];
      if (written !== undefined) record.path = written;
    }
  }
}
