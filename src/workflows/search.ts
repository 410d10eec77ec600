/**
 * A search campaign: the base is measured (trial 0), then a proposer edits the editable files of the
 * incumbent's code, trial by trial. Each accepted proposal is committed on its own branch and trains as one
 * child experiment per seed; the decision to keep it is computed in code (see `promotionDecision`) and, by
 * the autonomy level, approved by a person. Pause, resume, stop and budget changes arrive as updates; the
 * search continues as new when its history grows, and a retried or replayed step never trains a trial twice
 * (branches, commits and child ids all derive from the campaign id and the trial number).
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  defineUpdate,
  isCancellation,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Duration, RetryPolicy } from '@temporalio/common';
import type { NotifyActivities } from '../activities/notify/activities';
import type { SearchActivities } from '../activities/search/activities';
import type { NotebookActivities } from '../activities/notebook/activities';
import type { NotebookIssue } from '../activities/notebook/github-notebook';
import {
  AGENT_START_TO_CLOSE_SECONDS,
  budgetReached,
  campaignIssueTitle,
  ExperimentSpec,
  failureClassOf,
  promotionDecision,
  proposerHistory,
  searchIssueBody,
  searchPullRequestBody,
  searchStatusSection,
  SearchBudget,
  SearchCampaignSpec,
  SearchControl,
  trialBranch,
  trialEstimate,
  trialExperimentId,
  trialExperimentSpec,
  trialSeeds,
  TrialEdit,
  WorkflowSettings,
  type DecisionRecord,
  type SearchCampaignSpecInput,
  type SearchStage,
  type SearchStatus,
  type Trial,
  type WorkflowSettingsInput,
} from '../experiment';
import { campaignGates } from './campaign-gates';
import { GITHUB_TRACKING_ISSUE_PATCH, IssueNotebook } from './notebook';
import { metricOf, runChildExperiment } from './child-experiment';

export const searchStatusQuery = defineQuery<SearchStatus>('status');
/** Pause, resume, stop, or change the budget; refused (nothing changes) when malformed or after the end. */
export const controlSearchUpdate = defineUpdate<SearchStatus['usage'], [SearchControl]>('controlSearch');
/** Replace the diff of the proposal waiting at the proposal gate; refused when the new diff fails the checks. */
export const editTrialUpdate = defineUpdate<Trial, [TrialEdit]>('editTrial');

/** A control taken, for the status and the report. */
export interface SearchControlRecord {
  action: SearchControl['action'];
  by: string;
  at: string;
  detail?: string;
}

export interface SearchInput {
  campaign: SearchCampaignSpecInput;
  settings: WorkflowSettingsInput;
  /** Carried across continue-as-new. */
  carried?: {
    trials: Trial[];
    incumbent: SearchStatus['incumbent'];
    budget: SearchBudget;
    paused: boolean;
    stopped?: string;
    startedAtMs: number;
    decisions: DecisionRecord[];
    controls: SearchControlRecord[];
    /** The tracking issue on GitHub, once open. */
    issue?: NotebookIssue;
  };
}

export interface SearchResult {
  campaign_id: string;
  stage: SearchStage;
  incumbent: SearchStatus['incumbent'];
  end_reason?: string;
  report?: string;
}

/** Workflow time in epoch milliseconds (the sandbox makes `Date` deterministic). */
const nowMs = () => new Date().getTime();

export async function searchWorkflow(input: SearchInput): Promise<SearchResult> {
  const campaign = SearchCampaignSpec.parse(input.campaign);
  const settings = WorkflowSettings.parse(input.settings);
  const base = ExperimentSpec.parse(campaign.base);
  const search = campaign.search;
  const repo = base.code?.repo;
  const baseCommit = base.code?.pinned?.commit;
  const retry: RetryPolicy = { initialInterval: '1s', maximumInterval: '1 minute', maximumAttempts: 6 };
  const heartbeatTimeout: Duration = `${settings.activity_heartbeat_timeout_seconds} seconds`;
  // Git work happens where the repository and the worktrees are: the GPU queue's hosts.
  const code = proxyActivities<SearchActivities>({
    taskQueue: settings.task_queues.gpu,
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout,
    retry,
  });
  const proposer = proxyActivities<SearchActivities>({
    taskQueue: settings.task_queues.agents,
    startToCloseTimeout: `${AGENT_START_TO_CLOSE_SECONDS} seconds`,
    heartbeatTimeout,
    retry,
  });
  // The final branch is pushed from where the repository is: the GPU queue's hosts.
  const pullRequests = proxyActivities<NotebookActivities>({
    taskQueue: settings.task_queues.gpu,
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout,
    scheduleToCloseTimeout: '30 minutes',
    retry: {
      initialInterval: '1s',
      maximumInterval: '1 minute',
      nonRetryableErrorTypes: ['NotifierRejected', 'InvalidSettings'],
    },
  });
  const light = proxyActivities<SearchActivities & NotifyActivities>({
    taskQueue: settings.task_queues.workflow,
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout,
    retry,
  });

  const carried = input.carried;
  const startedAtMs = carried?.startedAtMs ?? nowMs();
  const controls: SearchControlRecord[] = carried?.controls ?? [];
  const status: SearchStatus & { controls: SearchControlRecord[] } = {
    kind: 'search',
    campaign_id: campaign.campaign_id,
    name: campaign.name,
    stage: 'registered',
    autonomy: search.autonomy,
    objective: search.objective,
    incumbent: carried?.incumbent ?? {
      trial: 0,
      commit: baseCommit ?? '',
      ...(base.code?.pinned?.branch ? { branch: base.code.pinned.branch } : {}),
    },
    trials: carried?.trials ?? [],
    usage: { trials: 0, gpu_hours: 0, llm_usd: 0, wall_seconds: 0 },
    budget: carried?.budget ?? search.budget,
    paused: carried?.paused ?? false,
    decisions: [],
    controls,
  };
  let stopped = carried?.stopped;
  let ended = false;
  /** The trial waiting at the proposal gate (`assisted`), which `editTrial` may change. */
  let underReview: Trial | undefined;

  const refreshUsage = () => {
    status.usage = {
      trials: status.trials.filter((trial) => trial.n > 0).length,
      gpu_hours: status.trials.reduce((sum, trial) => sum + trial.gpu_hours, 0),
      llm_usd: status.trials.reduce((sum, trial) => sum + trial.llm_usd, 0),
      wall_seconds: (nowMs() - startedAtMs) / 1000,
    };
  };
  let trackingIssue = carried?.issue;
  const notebook = IssueNotebook.of(
    settings,
    {
      runName: campaign.campaign_id,
      runDir: `${settings.runs_root}/${campaign.campaign_id}`,
      since: new Date(startedAtMs).toISOString(),
      title: campaignIssueTitle(campaign),
      approvers: campaign.approvals.launch.approvers,
      body: () => searchIssueBody(campaign, status),
      section: () => {
        refreshUsage();
        return searchStatusSection(status);
      },
      stage: () => status.stage,
      opened: (issue) => {
        trackingIssue = issue;
        status.links = { ...status.links, github_issue: issue.url };
      },
    },
    GITHUB_TRACKING_ISSUE_PATCH,
  );
  const enter = (stage: SearchStage) => {
    status.stage = stage;
    notebook?.note();
    refreshUsage();
    upsertSearchAttributes({ LablineStage: [stage] });
    const count = (state: Trial['state']) => status.trials.filter((t) => t.state === state).length;
    setCurrentDetails(
      `**Stage:** ${stage}${status.paused ? ' (paused)' : ''}\n\n**Incumbent:** trial ${status.incumbent.trial}` +
        `\n\n**Trials:** ${status.usage.trials} of ${status.budget.max_trials}; ${count('promoted') - 1} promoted, ` +
        `${count('failed')} failed, ${count('running')} running`,
    );
  };

  const gates = campaignGates(campaign, light, carried?.decisions, (waiting) => {
    status.waiting = waiting;
    notebook?.note();
  });
  notebook?.open(trackingIssue);
  status.decisions = gates.decisions;
  // One gate open at a time: a proposal review and a promotion that come together take turns.
  let gateTurn: Promise<unknown> = Promise.resolve();
  const inTurn = <T>(ask: () => Promise<T>): Promise<T> => {
    const turn = gateTurn.then(ask);
    gateTurn = turn.catch(() => undefined);
    return turn;
  };

  setHandler(searchStatusQuery, () => {
    refreshUsage();
    return status;
  });
  setHandler(
    controlSearchUpdate,
    (control) => {
      const taken = SearchControl.parse(control);
      const record: SearchControlRecord = {
        action: taken.action,
        by: taken.by,
        at: new Date().toISOString(),
      };
      if (taken.action === 'pause') status.paused = true;
      if (taken.action === 'resume') status.paused = false;
      if (taken.action === 'stop') {
        stopped ??= `stopped by ${taken.by}${taken.reason ? `: ${taken.reason}` : ''}`;
        record.detail = taken.reason;
      }
      if (taken.action === 'budget') {
        status.budget = SearchBudget.parse({ ...status.budget, ...taken.budget });
        record.detail = JSON.stringify(taken.budget);
      }
      controls.push(record);
      enter(status.stage);
      return status.usage;
    },
    {
      validator: (control) => {
        SearchControl.parse(control);
        if (ended) throw new Error(`the search has ended (${status.stage}); nothing to control`);
      },
    },
  );
  setHandler(
    editTrialUpdate,
    async (edit) => {
      const trial = underReview!;
      const checked = await code.checkTrialProposal({
        repo: repo!,
        commit: trial.parent_commit,
        diff: edit.diff,
        editable: search.editable,
        limits: search.limits,
        knownHashes: knownHashes(trial.n),
      });
      if (!checked.ok) throw ApplicationFailure.nonRetryable(`the edited diff is refused: ${checked.reason}`);
      if (underReview !== trial) throw ApplicationFailure.nonRetryable('the proposal was decided meanwhile');
      Object.assign(trial, {
        diff: edit.diff,
        check: checked.check,
        hypothesis: edit.hypothesis ?? trial.hypothesis,
        reviewed_by: edit.by,
      });
      return trial;
    },
    {
      validator: (edit) => {
        const parsed = TrialEdit.parse(edit);
        if (underReview?.n !== parsed.trial)
          throw new Error(
            underReview
              ? `trial ${underReview.n} waits for review, not trial ${parsed.trial}`
              : 'no proposal waits for review',
          );
      },
    },
  );

  try {
    if (!repo || !baseCommit) {
      return finish('failed', 'the base spec has no pinned code section: submit it with `labline campaign`');
    }
    if (status.trials.length === 0) {
      enter('launch_review');
      const launch = await gates.decide(
        'launch',
        campaign.approvals.launch,
        `start a ${search.autonomy} search of at most ${status.budget.max_trials} trial(s) × ${search.objective.seeds} seed(s) on ${status.incumbent.branch ?? baseCommit.slice(0, 12)}`,
      );
      if (launch !== 'approved') return finish('rejected', 'the search launch was rejected');
      enter('baseline');
      const baseline = newTrial(0, 'the base code, unedited: the first incumbent', '');
      baseline.commit = baseCommit;
      baseline.branch = status.incumbent.branch;
      status.trials.push(baseline);
      if (!(await train(baseline)))
        return finish(
          'failed',
          `the base code failed, so there is nothing to improve on: ${baseline.reason}`,
        );
      baseline.state = 'promoted';
      baseline.reason = 'the base: the first incumbent';
      baseline.ended_at = new Date().toISOString();
    }

    enter('searching');
    const running = new Map<number, Promise<void>>();
    for (;;) {
      refreshUsage();
      const limit = stopped ?? status.end_reason ?? budgetReached(status.budget, status.usage);
      if (limit) {
        status.end_reason = limit;
        break;
      }
      if (status.paused || running.size >= search.concurrency) {
        const canGoOn = () => stopped !== undefined || (!status.paused && running.size < search.concurrency);
        const left = wallTimeLeftMs();
        await (left === undefined ? condition(canGoOn) : condition(canGoOn, left));
        continue;
      }
      if (workflowInfo().continueAsNewSuggested) {
        // Children are awaited by this run only, so it lets the running trials finish before handing over.
        await condition(() => running.size === 0);
        await notebook?.idle();
        await continueAsNew<typeof searchWorkflow>({
          ...input,
          carried: {
            trials: status.trials,
            incumbent: status.incumbent,
            budget: status.budget,
            paused: status.paused,
            stopped,
            startedAtMs,
            decisions: gates.decisions,
            controls,
            ...(trackingIssue ? { issue: trackingIssue } : {}),
          },
        });
      }
      const trial = await proposeTrial(status.trials.length);
      if (!trial || trial.state !== 'proposed') continue;
      if (search.autonomy === 'assisted' && !(await reviewed(trial))) continue;
      running.set(
        trial.n,
        runTrial(trial).finally(() => running.delete(trial.n)),
      );
      enter('searching');
    }
    enter('finishing');
    await condition(() => running.size === 0);
    return finish('completed', status.end_reason);
  } catch (error) {
    if (isCancellation(error)) {
      ended = true;
      await CancellationScope.nonCancellable(async () => {
        enter('cancelled');
        await notebook?.close('cancelled', { reason: 'cancelled' });
      });
    }
    throw error;
  }

  /** What remains of the wall-time budget, for bounded waits (undefined: no limit). */
  function wallTimeLeftMs(): number | undefined {
    if (status.budget.wall_time === undefined) return undefined;
    return Math.max(1, startedAtMs + status.budget.wall_time * 1000 - nowMs());
  }

  function newTrial(n: number, hypothesis: string, diff: string): Trial {
    const parent = status.trials[status.incumbent.trial];
    return {
      n,
      hypothesis,
      diff,
      state: 'proposed',
      parent_commit: status.incumbent.commit,
      parent_trial: parent?.n ?? 0,
      seeds: trialSeeds(n, search.objective.seeds),
      experiment_ids: trialSeeds(n, search.objective.seeds).map((seed) =>
        trialExperimentId(campaign.campaign_id, n, seed),
      ),
      values: [],
      gpu_hours: 0,
      llm_usd: 0,
      proposed_at: new Date().toISOString(),
    };
  }

  function knownHashes(except?: number): string[] {
    return status.trials.flatMap((trial) => (trial.check && trial.n !== except ? [trial.check.hash] : []));
  }

  /**
   * Asks the proposer for trial n and checks its answer; a refused answer goes back once with the reason.
   * Returns the trial (proposed, or rejected with why), or nothing when the proposer has no more.
   */
  async function proposeTrial(n: number): Promise<Trial | undefined> {
    const context =
      search.proposer.kind === 'scripted'
        ? undefined
        : await code.searchContext({
            repo: repo!,
            commit: status.incumbent.commit,
            editable: search.editable,
          });
    let feedback: { previous: { hypothesis: string; diff: string }; problem: string } | undefined;
    let spent = 0;
    for (let round = 1; round <= 2; round++) {
      let answer;
      try {
        answer = await proposer.proposeTrial({
          proposer: search.proposer,
          n,
          objective: search.objective,
          limits: search.limits,
          ...(context ? { context } : {}),
          history: proposerHistory(status.trials),
          ...(feedback ? { feedback } : {}),
        });
      } catch (error) {
        if (!(error instanceof ActivityFailure)) throw error;
        status.end_reason = `the proposer failed: ${error.cause?.message ?? error.message}`;
        return undefined;
      }
      spent += answer.llm_usd;
      if (answer.kind === 'exhausted') {
        status.end_reason = answer.reason;
        return undefined;
      }
      if (answer.kind === 'no_answer')
        return record(rejected(newTrial(n, '(no proposal)', ''), answer.reason));
      const trial = newTrial(n, answer.proposal.hypothesis, answer.proposal.diff);
      trial.llm_usd = spent;
      const checked = await code.checkTrialProposal({
        repo: repo!,
        commit: trial.parent_commit,
        diff: trial.diff,
        editable: search.editable,
        limits: search.limits,
        knownHashes: knownHashes(),
      });
      if (checked.ok) {
        trial.check = checked.check;
        return record(trial);
      }
      if (round === 2) return record(rejected(trial, checked.reason));
      feedback = { previous: answer.proposal, problem: checked.reason };
    }
    return undefined;

    function record(trial: Trial): Trial {
      trial.llm_usd = spent;
      status.trials.push(trial);
      return trial;
    }
  }

  function rejected(trial: Trial, reason: string): Trial {
    return Object.assign(trial, { state: 'rejected', reason, ended_at: new Date().toISOString() });
  }

  /** `assisted`: a person approves (possibly after `editTrial`) or drops the proposal. */
  async function reviewed(trial: Trial): Promise<boolean> {
    const outcome = await inTurn(async () => {
      underReview = trial;
      try {
        return await gates.decide(
          'launch',
          campaign.approvals.proposals,
          `run trial ${trial.n}? ${trial.hypothesis}\nFiles: ${trial.check?.files.join(', ') ?? ''}\n\n${trial.diff}`,
        );
      } finally {
        underReview = undefined;
      }
    });
    if (outcome === 'approved') return true;
    trial.state = 'dropped';
    trial.reason = `dropped at the proposal review by ${gates.decisions.at(-1)?.by ?? 'a person'}`;
    trial.ended_at = new Date().toISOString();
    return false;
  }

  /** Commits the proposal on its branch, trains it, and decides it. */
  async function runTrial(trial: Trial): Promise<void> {
    trial.state = 'running';
    const branch = trialBranch(campaign.campaign_id, trial.n);
    const committed = await code.commitTrial({
      repo: repo!,
      parentCommit: trial.parent_commit,
      diff: trial.diff,
      branch,
      message: `${trial.hypothesis}\n\nLabline search ${campaign.campaign_id}, trial ${trial.n}`,
      date: trial.proposed_at,
    });
    trial.commit = committed.commit;
    trial.branch = branch;
    if (await train(trial)) await decide(trial);
  }

  /** Trains every seed of the trial as a child experiment; any seed failing fails the trial. Measured? */
  async function train(trial: Trial): Promise<boolean> {
    trial.state = 'running';
    enter(status.stage);
    const parentExperiment =
      trial.n === 0
        ? base.experiment_id
        : (status.trials[trial.parent_trial]?.experiment_ids[0] ?? base.experiment_id);
    const ends = await Promise.all(
      trial.seeds.map((seed) =>
        runChildExperiment(trialExperimentSpec(campaign, trial, seed, parentExperiment), {
          taskQueue: settings.task_queues.workflow,
          settings: input.settings,
          campaignId: campaign.campaign_id,
        }),
      ),
    );
    trial.gpu_hours = ends.reduce((sum, child) => sum + (child.result?.costs.gpu_hours ?? 0), 0);
    const values = ends.map((child) => metricOf(child.result, search.objective.metric));
    const failedAt = ends.findIndex(
      (child, i) => !['completed', 'partial_success'].includes(child.end) || values[i] === null,
    );
    trial.values = values.filter((value): value is number => value !== null);
    trial.estimate = trialEstimate(trial.values);
    if (failedAt >= 0) {
      const child = ends[failedAt]!;
      trial.state = 'failed';
      trial.reason = `seed ${trial.seeds[failedAt]} ended ${child.end}${child.reason ? `: ${child.reason}` : `without ${search.objective.metric}`}`;
      trial.failure_class = failureClassOf(child.reason);
      const described = await light.describeFailedTrial({
        runsRoot: settings.runs_root,
        experimentId: trial.experiment_ids[failedAt]!,
      });
      if (described.logTail) trial.log_tail = described.logTail;
      trial.ended_at = new Date().toISOString();
    }
    enter(status.stage);
    return failedAt < 0;
  }

  /** Promotes the trial when it beats the incumbent (and, unless autonomous, a person agrees). */
  async function decide(trial: Trial): Promise<void> {
    trial.state = 'deciding';
    const versus = () => promotionDecision(trial.values, incumbentValues(), search.objective);
    trial.versus = versus();
    if (trial.versus.promote && search.autonomy !== 'autonomous') {
      const outcome = await inTurn(() =>
        gates.decide(
          'publish',
          campaign.approvals.promotions,
          `make trial ${trial.n} the incumbent? ${trial.hypothesis}\n${trial.versus!.reason}\n\n${trial.diff}`,
        ),
      );
      if (outcome !== 'approved') {
        trial.state = 'not_better';
        trial.reason = `${trial.versus.reason}; the promotion was rejected`;
        trial.ended_at = new Date().toISOString();
        return;
      }
      // The incumbent may have changed while the gate was open: the trial must beat the one in place now.
      trial.versus = versus();
      trial.reviewed_by = gates.decisions.at(-1)?.by;
    }
    trial.reason = trial.versus.reason;
    trial.ended_at = new Date().toISOString();
    if (!trial.versus.promote) {
      trial.state = 'not_better';
      return;
    }
    trial.state = 'promoted';
    status.incumbent = { trial: trial.n, commit: trial.commit!, branch: trial.branch };
    enter(status.stage);
    notebook?.note({
      key: `promoted/${trial.n}`,
      title: `New incumbent: trial ${trial.n}`,
      body: `${trial.hypothesis}\n\n${trial.versus.reason}. Branch \`${trial.branch ?? trial.commit}\`.`,
    });
    // Nobody was asked, so everybody is told.
    if (search.autonomy === 'autonomous')
      await light.announce({
        key: `${campaign.campaign_id}/publish/${trial.n}/announcement`,
        experimentId: campaign.campaign_id,
        name: campaign.name,
        gate: 'publish',
        round: trial.n,
        title: `New incumbent: trial ${trial.n} of ${campaign.name}`,
        body: `${trial.hypothesis}\n${trial.versus.reason}\nBranch ${trial.branch ?? trial.commit}`,
        at: trial.ended_at,
        links: {},
      });
  }

  /** The incumbent's branch as a draft pull request, when a trial beat the base; a failure is logged. */
  async function proposeFinalBranch(): Promise<void> {
    const branch = status.incumbent.branch;
    if (status.incumbent.trial === 0 || !branch || !repo) return;
    try {
      const pull = await pullRequests.openSearchPullRequest({
        runName: campaign.campaign_id,
        repoDir: repo,
        branch,
        ...(base.code?.pinned?.branch ? { base: base.code.pinned.branch } : {}),
        title: `Search ${campaign.name}: trial ${status.incumbent.trial}`,
        body: searchPullRequestBody(campaign, status),
      });
      status.links = { ...status.links, pull_request: pull.url };
      notebook?.note({
        key: 'pull-request',
        title: 'Draft pull request opened',
        body: `The final branch \`${branch}\`: ${pull.url}`,
      });
    } catch (error) {
      log.warn('could not open the draft pull request', {
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }

  function incumbentValues(): number[] {
    return status.trials[status.incumbent.trial]?.values ?? [];
  }

  /** Writes the report and ends the search at `stage`. */
  async function finish(stage: SearchStage, reason?: string): Promise<SearchResult> {
    if (reason) status.end_reason = reason;
    enter('reporting');
    // The report states how the search ended, not the stage it is written in.
    const written = await light.writeSearchReport({
      campaign,
      runsRoot: settings.runs_root,
      status: { ...status, stage },
    });
    status.report = written.reportPath;
    ended = true;
    enter(stage);
    if (notebook) {
      if (stage === 'completed') await proposeFinalBranch();
      await notebook.close(stage === 'completed' ? 'completed' : 'failed', {
        ...(status.end_reason ? { reason: status.end_reason } : {}),
        reportPath: written.reportPath,
      });
    }
    return {
      campaign_id: campaign.campaign_id,
      stage,
      incumbent: status.incumbent,
      ...(status.end_reason ? { end_reason: status.end_reason } : {}),
      report: written.reportPath,
    };
  }
}
