/**
 * A campaign: many experiments from one base spec, started as child workflows with bounded concurrency,
 * then compared in code (mean and CI over seeds, Welch's t-test against the base, effect size, ranking).
 * Child ids derive from the campaign id, so a retried start never duplicates a child; a failed child is
 * reported, not fatal; cancelling the campaign cancels the running children (and so their training).
 */
import {
  CancellationScope,
  continueAsNew,
  defineQuery,
  defineSignal,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { AgentActivities } from '../activities/agents/activities';
import type { BaselineInterpretation } from '../activities/agents/schemas';
import type { CampaignActivities } from '../activities/campaign/activities';
import type { NotebookIssue } from '../activities/notebook/github-notebook';
import {
  AblationProposal,
  campaignBaselineFacts,
  CampaignSpec,
  childExperimentId,
  baseVariantOf,
  campaignIssueBody,
  campaignIssueTitle,
  campaignStatusSection,
  childSpec,
  compareVariants,
  ExperimentSpec,
  proposalVariants,
  seedsOf,
  variantsOf,
  WorkflowSettings,
  type CampaignSpecInput,
  type ChildOutcome,
  type DecisionRecord,
  type VariantComparison,
  type VariantSpec,
  type WorkflowSettingsInput,
} from '../experiment';
import type { ApprovalGates } from './approval-gate';
import { campaignGates } from './campaign-gates';
import { runChildExperiment, metricOf } from './child-experiment';
import { GITHUB_TRACKING_ISSUE_PATCH, IssueNotebook } from './notebook';

/** Review of one proposed ablation: `{ name, action: approve|drop|edit, modifications?, by }`. */
export const reviewProposalSignal = defineSignal<[unknown]>('reviewProposal');
export const campaignStatusQuery = defineQuery<CampaignStatus>('status');

export type CampaignStage =
  | 'registered'
  | 'proposal_review'
  | 'launch_review'
  | 'running'
  | 'comparing'
  | 'completed'
  | 'rejected'
  | 'cancelled';

export interface ProposalReview {
  proposal: AblationProposal;
  decision?: 'approve' | 'drop' | 'edit';
  by?: string;
}

export interface CampaignStatus {
  kind: 'campaign';
  campaign_id: string;
  name: string;
  stage: CampaignStage;
  concurrency: number;
  /** Children in the order they were planned, with their state. */
  children: {
    experiment_id: string;
    variant: string;
    seed: number;
    state: 'pending' | 'running' | 'done';
    end?: string;
  }[];
  proposals: ProposalReview[];
  decisions: DecisionRecord[];
  waiting?: ApprovalGates['waiting'];
  comparison: VariantComparison[];
  report?: string;
  reason?: string;
  links?: { github_issue?: string };
}

export interface CampaignInput {
  campaign: CampaignSpecInput;
  settings: WorkflowSettingsInput;
  /** Carried across continue-as-new: outcomes so far and the reviewed plan. */
  carried?: {
    outcomes: ChildOutcome[];
    variants: VariantSpec[];
    proposals: ProposalReview[];
    decisions: CampaignStatus['decisions'];
    /** The tracking issue on GitHub, once open. */
    issue?: NotebookIssue;
  };
}

export interface CampaignResult {
  campaign_id: string;
  stage: CampaignStage;
  outcomes: ChildOutcome[];
  comparison: VariantComparison[];
  report?: string;
  results?: string;
}

export async function campaignWorkflow(input: CampaignInput): Promise<CampaignResult> {
  const campaign = CampaignSpec.parse(input.campaign);
  const settings = WorkflowSettings.parse(input.settings);
  const light = proxyActivities<CampaignActivities>({
    taskQueue: settings.task_queues.workflow,
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: `${settings.activity_heartbeat_timeout_seconds} seconds`,
    retry: { initialInterval: '1s', maximumInterval: '1 minute' },
  });
  const agents = proxyActivities<AgentActivities>({
    taskQueue: settings.task_queues.agents,
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: `${settings.activity_heartbeat_timeout_seconds} seconds`,
    retry: { initialInterval: '1s', maximumInterval: '1 minute', maximumAttempts: 6 },
  });
  const status: CampaignStatus = {
    kind: 'campaign',
    campaign_id: campaign.campaign_id,
    name: campaign.name,
    stage: 'registered',
    concurrency: campaign.concurrency,
    children: [],
    proposals: input.carried?.proposals ?? [],
    decisions: [],
    comparison: [],
  };
  let trackingIssue = input.carried?.issue;
  const notebook = IssueNotebook.of(
    settings,
    {
      runName: campaign.campaign_id,
      runDir: `${settings.runs_root}/${campaign.campaign_id}`,
      since: new Date().toISOString(),
      title: campaignIssueTitle(campaign),
      approvers: campaign.approvals.launch.approvers,
      body: () => campaignIssueBody(campaign, status),
      section: () => campaignStatusSection(status),
      stage: () => status.stage,
      opened: (issue) => {
        trackingIssue = issue;
        status.links = { github_issue: issue.url };
      },
    },
    GITHUB_TRACKING_ISSUE_PATCH,
  );
  const enter = (stage: CampaignStage) => {
    status.stage = stage;
    upsertSearchAttributes({ LablineStage: [stage] });
    const running = status.children.filter((c) => c.state === 'running').length;
    const done = status.children.filter((c) => c.state === 'done').length;
    setCurrentDetails(
      `**Stage:** ${stage}\n\n**Children:** ${done} done, ${running} running of ${status.children.length}`,
    );
    notebook?.note();
  };
  const gates = campaignGates(campaign, light, input.carried?.decisions, (waiting) => {
    status.waiting = waiting;
    notebook?.note();
  });
  status.decisions = gates.decisions;
  setHandler(campaignStatusQuery, () => status);
  setHandler(reviewProposalSignal, (payload: unknown) => {
    const review = payload as { name?: string; action?: string; modifications?: unknown; by?: string };
    const entry = status.proposals.find((p) => p.proposal.name === review.name);
    if (!entry || entry.decision || !['approve', 'drop', 'edit'].includes(String(review.action))) return;
    if (review.action === 'edit') {
      const edited = AblationProposal.safeParse({ ...entry.proposal, modifications: review.modifications });
      if (!edited.success) return;
      entry.proposal = edited.data;
    }
    entry.decision = review.action as ProposalReview['decision'];
    entry.by = review.by;
  });

  notebook?.open(trackingIssue);
  const outcomes: ChildOutcome[] = input.carried?.outcomes ?? [];
  let variants: VariantSpec[] | undefined = input.carried?.variants;
  try {
    if (!variants) {
      enter('registered');
      variants = variantsOf(campaign);
      if (campaign.variants.ablations_from) {
        const proposals = await light.loadAblationProposals({
          experimentId: campaign.variants.ablations_from,
          runsRoot: settings.runs_root,
        });
        status.proposals = proposals.map((proposal) => ({ proposal }));
        enter('proposal_review');
        // Nothing launches until every proposal is approved, edited or dropped (or the review times out).
        const reviewed = await gates.decide(
          'launch',
          { ...campaign.approvals.proposals },
          `review ${proposals.length} proposed ablation(s) with reviewProposal, then approve to launch the approved ones`,
        );
        if (reviewed !== 'approved') return end('rejected', 'proposal review rejected');
        const kept = status.proposals.filter((p) => p.decision === 'approve' || p.decision === 'edit');
        variants = [...variants, ...proposalVariants(kept.map((p) => p.proposal))];
      } else {
        enter('launch_review');
        const launch = await gates.decide(
          'launch',
          campaign.approvals.launch,
          `launch ${variants.length} variant(s) × ${seedsOf(campaign).length} seed(s), at most ${campaign.concurrency} at once`,
        );
        if (launch !== 'approved') return end('rejected', 'campaign launch rejected');
      }
    }

    const plan = variants.flatMap((variant) => seedsOf(campaign).map((seed) => ({ variant, seed })));
    status.children = plan.map(({ variant, seed }) => {
      const id = childExperimentId(campaign.campaign_id, variant.name, seed);
      const done = outcomes.find((o) => o.experiment_id === id);
      return {
        experiment_id: id,
        variant: variant.name,
        seed,
        state: done ? 'done' : 'pending',
        end: done?.end,
      };
    });
    enter('running');
    const running = new Map<string, Promise<ChildOutcome>>();
    for (const entry of plan) {
      const id = childExperimentId(campaign.campaign_id, entry.variant.name, entry.seed);
      if (outcomes.some((o) => o.experiment_id === id)) continue;
      while (running.size >= campaign.concurrency) await settleOne(running, outcomes);
      if (workflowInfo().continueAsNewSuggested) {
        // Children are awaited by this run only, so it lets the running ones finish before handing over.
        while (running.size > 0) await settleOne(running, outcomes);
        await notebook?.idle();
        await continueAsNew<typeof campaignWorkflow>({
          ...input,
          carried: {
            outcomes,
            variants,
            proposals: status.proposals,
            decisions: gates.decisions,
            ...(trackingIssue ? { issue: trackingIssue } : {}),
          },
        });
      }
      running.set(id, runChild(entry.variant, entry.seed));
      markChild(id, 'running');
    }
    while (running.size > 0) await settleOne(running, outcomes);

    enter('comparing');
    status.comparison = compareVariants(outcomes, campaign.primary_metric.goal, baseVariantOf(campaign));
    const interpretation = await interpretComparison();
    const written = await light.writeCampaignReport({
      campaign,
      runsRoot: settings.runs_root,
      outcomes,
      comparison: status.comparison,
      interpretation,
    });
    status.report = written.reportPath;
    enter('completed');
    await notebook?.close('completed', { reportPath: written.reportPath });
    return {
      campaign_id: campaign.campaign_id,
      stage: 'completed',
      outcomes,
      comparison: status.comparison,
      report: written.reportPath,
      results: written.resultsPath,
    };
  } catch (error) {
    if (isCancellation(error)) {
      await CancellationScope.nonCancellable(async () => {
        enter('cancelled');
        await notebook?.close('cancelled', { reason: 'cancelled' });
      });
    }
    throw error;
  }

  /**
   * The comparator agent's reading of the numbers computed in code, when the base spec asks for the
   * `baselines` analysis and there is a base variant to compare against. An agent that cannot answer
   * (budget, refusal) leaves the report with the numbers alone.
   */
  async function interpretComparison(): Promise<BaselineInterpretation | undefined> {
    const base = ExperimentSpec.parse(campaign.base);
    if (!base.analysis_pipeline.analyses.includes('baselines')) return undefined;
    const facts = campaignBaselineFacts(outcomes, campaign.primary_metric, baseVariantOf(campaign));
    if (facts.comparisons.length === 0) return undefined;
    try {
      const step = await agents.compareBaselines({
        experimentId: campaign.campaign_id,
        budget: { limit_usd: base.budgets.llm_cost_usd, spent_usd: 0, approved_over: false },
        spec: base,
        baselines: facts,
      });
      return step.status === 'completed' ? step.output : undefined;
    } catch (error) {
      if (isCancellation(error)) throw error;
      return undefined;
    }
  }

  async function end(stage: CampaignStage, reason: string): Promise<CampaignResult> {
    status.reason = reason;
    enter(stage);
    await notebook?.close(stage, { reason });
    return { campaign_id: campaign.campaign_id, stage, outcomes, comparison: [] };
  }

  function markChild(id: string, state: 'running' | 'done', endStage?: string) {
    const child = status.children.find((c) => c.experiment_id === id);
    if (child) {
      child.state = state;
      child.end = endStage;
    }
    enter(status.stage);
  }

  /** Starts (or, after a retry, finds) one child and waits for its outcome; failures become outcomes. */
  async function runChild(variant: VariantSpec, seed: number): Promise<ChildOutcome> {
    const spec = childSpec(campaign, variant, seed);
    const ended = await runChildExperiment(spec, {
      taskQueue: settings.task_queues.workflow,
      settings: input.settings,
      campaignId: campaign.campaign_id,
    });
    return {
      experiment_id: spec.experiment_id,
      variant: variant.name,
      seed,
      end: ended.end,
      metric: metricOf(ended.result, campaign.primary_metric.name),
      reason: ended.reason,
    };
  }

  async function settleOne(pending: Map<string, Promise<ChildOutcome>>, done: ChildOutcome[]): Promise<void> {
    const [id, outcome] = await Promise.race(
      [...pending.entries()].map(async ([key, p]) => [key, await p] as const),
    );
    pending.delete(id);
    done.push(outcome);
    markChild(id, 'done', outcome.end);
  }
}
