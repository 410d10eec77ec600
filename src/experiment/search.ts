/**
 * Search campaigns: a proposer (a model, offline rules, or a script) edits the editable files of the training
 * code, each edit trains as a trial under a fixed budget, and it replaces the incumbent only when it is better
 * by `min_delta` and, with two or more seeds, a one-sided Welch test says so at `alpha`. Pure: the search
 * workflow takes its specs, trial seeds, promotion decisions and budget checks from here.
 */
import { z } from 'zod';
import { MetricGoal } from './analysis';
import { Duration } from './quantities';
import { CAMPAIGN_HEAD } from './campaign';
import { Deliverables } from './deliverables';
import type { DecisionRecord } from './decisions';
import type { Waiting } from './status';
import {
  ExperimentSpec,
  GateSpec,
  TrainingResources,
  type ExperimentSpecInput,
  type Modification,
} from './spec';
import { meanConfidenceInterval, studentTCdf, welchTTest, type MeanEstimate } from './statistics';

/** How much a person is asked: every proposal, only promotions, or nothing (promotions are announced). */
export const SearchAutonomy = z.enum(['assisted', 'supervised', 'autonomous']);
/** How much a person is asked. */
export type SearchAutonomy = z.infer<typeof SearchAutonomy>;

/** Who proposes the edits. */
export const SearchProposer = z.discriminatedUnion('kind', [
  /** A model behind an OpenAI-compatible API, with the `proposer` agent's settings (`agents.per_agent`). */
  z.strictObject({ kind: z.literal('openai') }),
  /** Rules that scale one numeric constant of an editable file per proposal: no model needed. */
  z.strictObject({ kind: z.literal('offline') }),
  /**
   * Proposals read from a YAML or JSON file (`proposals: [{ hypothesis, diff, revision? }]`), trial n taking
   * the n-th: for tests and for replaying a search. The path is relative to the campaign file.
   */
  z.strictObject({ kind: z.literal('scripted'), file: z.string().min(1) }),
]);
/** Who proposes the edits. */
export type SearchProposer = z.infer<typeof SearchProposer>;

/** What a search may spend; whichever limit is reached first ends it, after the trials running finish. */
export const SearchBudget = z.strictObject({
  /** Trials proposed in all, rejected proposals included. Default `20`. */
  max_trials: z.number().int().positive().default(20),
  /** GPU hours over every trial's training. Default: no limit. */
  gpu_hours: z.number().positive().optional(),
  /** US dollars the proposer's model may cost. Default: no limit. */
  llm_usd: z.number().positive().optional(),
  /** Wall time from the start of the search, e.g. `"8h"`; **seconds** once parsed. Default: no limit. */
  wall_time: Duration.refine((seconds) => seconds > 0, 'must be longer than 0s').optional(),
});
/** What a search may spend. Durations are in seconds. */
export type SearchBudget = z.infer<typeof SearchBudget>;

export const SearchSpec = z.strictObject({
  /** Glob patterns (relative to the repository) of the files a proposal may change; the rest is context. */
  editable: z.array(z.string().trim().min(1)).min(1),
  /** Size limits of one proposal. */
  limits: z
    .strictObject({
      /** Files changed at most. Default `3`. */
      max_files: z.number().int().positive().default(3),
      /** Lines added plus lines removed, at most. Default `80`. */
      max_changed_lines: z.number().int().positive().default(80),
      /** Bytes of the unified diff, at most. Default `32768`. */
      max_diff_bytes: z.number().int().positive().default(32_768),
    })
    .prefault({}),
  objective: z.strictObject({
    /** The summary metric every trial is judged by. */
    metric: z.string().min(1),
    goal: MetricGoal,
    /**
     * Seeds per trial. Each trial trains fresh seeds (trial n: n·seeds … n·seeds + seeds − 1), so no edit is
     * kept for suiting particular seeds. Default `3`.
     */
    seeds: z.number().int().positive().max(20).default(3),
    /** The least improvement of the mean that counts, in the metric's units. Default `0`. */
    min_delta: z.number().nonnegative().default(0),
    /** Significance level of the one-sided Welch test (two or more seeds). Default `0.05`. */
    alpha: z.number().positive().max(0.5).default(0.05),
  }),
  trial: z
    .strictObject({
      /** The time limit of each trial's training, e.g. `"10m"`: a fixed budget makes trials comparable. */
      time_limit: Duration.refine((seconds) => seconds > 0, 'must be longer than 0s'),
      /** Resources of each trial, in place of the base's. Default: the base's. */
      resources: TrainingResources.omit({ time_limit: true }).partial().optional(),
    })
    .prefault({ time_limit: '30m' }),
  budget: SearchBudget.prefault({}),
  /** Trials training at once (each holds `seeds` experiments; GPU slots still bound them). Default `1`. */
  concurrency: z.number().int().positive().max(16).default(1),
  /** Default `supervised`: proposals run without asking; a new incumbent waits for a person. */
  autonomy: SearchAutonomy.default('supervised'),
  /** Default `{ kind: offline }`. */
  proposer: SearchProposer.prefault({ kind: 'offline' }),
});
/** The `search` section of a search campaign. Durations are in seconds. */
export type SearchSpec = z.infer<typeof SearchSpec>;

/** A campaign with a `search` section: its base's code is edited trial by trial. */
export const SearchCampaignSpec = z.strictObject({
  ...CAMPAIGN_HEAD,
  /** The experiment every trial edits; it needs a `code` section (its commit is the first incumbent). */
  base: z.unknown(),
  search: SearchSpec,
  /** What every trial must produce, in place of the base's. Default: the base's. */
  deliverables: Deliverables.optional(),
  approvals: z
    .strictObject({
      /** One approval before anything trains. */
      launch: GateSpec.prefault({}),
      /** Review of each proposal (`assisted`): approve runs it, reject drops it. */
      proposals: GateSpec.prefault({}),
      /** Review of each promotion (`supervised` and `assisted`): approve makes it the incumbent. */
      promotions: GateSpec.prefault({}),
    })
    .prefault({}),
});
export type SearchCampaignSpec = z.infer<typeof SearchCampaignSpec>;
export type SearchCampaignSpecInput = z.input<typeof SearchCampaignSpec>;

/** What a proposer answers: why the edit should help, and the edit as a unified diff. */
export const TrialProposal = z.strictObject({
  hypothesis: z.string().trim().min(1).max(2000),
  diff: z.string().min(1),
});
export type TrialProposal = z.infer<typeof TrialProposal>;

/** A proposal that passed the checks: what it changes, and its hash for finding duplicates. */
export interface CheckedProposal {
  files: string[];
  added: number;
  removed: number;
  bytes: number;
  /** SHA-256 of the normalised change (its added and removed lines per file, without context or positions). */
  hash: string;
}

/** Where a trial is: from its proposal to the decision on it. */
export const TrialState = z.enum([
  'proposed',
  'rejected',
  'dropped',
  'running',
  'deciding',
  'promoted',
  'not_better',
  'failed',
]);
export type TrialState = z.infer<typeof TrialState>;

/** One trial: a proposal, its checks, its runs and the decision on it. Trial 0 is the base, unedited. */
export interface Trial {
  n: number;
  hypothesis: string;
  diff: string;
  state: TrialState;
  /** The incumbent commit the diff applies to. */
  parent_commit: string;
  /** The trial in which that incumbent was measured. */
  parent_trial: number;
  /** The trial's commit and branch (`labline/<campaign>/trial-<n>`), once committed. */
  commit?: string;
  branch?: string;
  check?: CheckedProposal;
  seeds: number[];
  experiment_ids: string[];
  /** The objective per seed that produced one. */
  values: number[];
  estimate?: MeanEstimate;
  /** Against the incumbent at decision time. */
  versus?: PromotionDecision;
  /** Why it was rejected, dropped, not kept or failed, in words. */
  reason?: string;
  /** For a failed trial: the outcome class of its training (`error`, `out_of_memory`, `timed_out`…). */
  failure_class?: string;
  log_tail?: string;
  gpu_hours: number;
  llm_usd: number;
  proposed_at: string;
  ended_at?: string;
  /** Who decided at its gates, when someone did. */
  reviewed_by?: string;
}

/** The seeds of trial `n`: fresh for every trial. */
export function trialSeeds(n: number, seedsPerTrial: number): number[] {
  return Array.from({ length: seedsPerTrial }, (_v, i) => n * seedsPerTrial + i);
}

/** One trial's child experiment for one seed; derived, so a retried start never duplicates it. */
export function trialExperimentId(campaignId: string, n: number, seed: number): string {
  return `exp-${campaignId.replace(/^camp-/, '')}-t${n}-s${seed}`;
}

/** The branch a trial's commit is on. */
export function trialBranch(campaignId: string, n: number): string {
  return `labline/${campaignId}/trial-${n}`;
}

/** The decision on a finished trial, computed in code. */
export interface PromotionDecision {
  promote: boolean;
  /** Trial mean minus incumbent mean, signed so that positive is better. */
  improvement: number;
  /** One-sided Welch p-value that the trial is better; `null` with fewer than two values on a side. */
  p_value: number | null;
  reason: string;
}

/**
 * Whether a trial replaces the incumbent: its mean beats the incumbent's by at least `min_delta` and, when
 * both have two or more values, the one-sided Welch test gives p < `alpha`. With no spread on either side the
 * test cannot say more than the means: p is 0 when the trial is better and 1 otherwise.
 */
export function promotionDecision(
  trial: readonly number[],
  incumbent: readonly number[],
  objective: Pick<SearchSpec['objective'], 'goal' | 'min_delta' | 'alpha'>,
): PromotionDecision {
  if (trial.length === 0 || incumbent.length === 0)
    return { promote: false, improvement: 0, p_value: null, reason: 'no values to compare' };
  const sign = objective.goal === 'max' ? 1 : -1;
  const mean = (values: readonly number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const improvement = sign * (mean(trial) - mean(incumbent));
  const pValue = trial.length >= 2 && incumbent.length >= 2 ? oneSidedP(trial, incumbent, sign) : null;
  const fmt = (x: number) => Number(x.toPrecision(4)).toString();
  if (improvement < objective.min_delta || improvement <= 0)
    return {
      promote: false,
      improvement,
      p_value: pValue,
      reason: `improves the mean by ${fmt(improvement)}, less than min_delta ${objective.min_delta} or not at all`,
    };
  if (pValue !== null && !(pValue < objective.alpha))
    return {
      promote: false,
      improvement,
      p_value: pValue,
      reason: `improves the mean by ${fmt(improvement)} but p = ${fmt(pValue)} is not below alpha ${objective.alpha}`,
    };
  return {
    promote: true,
    improvement,
    p_value: pValue,
    reason:
      pValue === null
        ? `improves the mean by ${fmt(improvement)} (one seed: no test)`
        : `improves the mean by ${fmt(improvement)}, p = ${fmt(pValue)} < ${objective.alpha}`,
  };
}

function oneSidedP(trial: readonly number[], incumbent: readonly number[], sign: 1 | -1): number {
  const test = welchTTest(trial, incumbent);
  if (test.t === null || test.df === null) return sign * test.difference > 0 ? 0 : 1;
  return studentTCdf(-sign * test.t, test.df);
}

/** The mean and interval of a trial's values, when it has any. */
export function trialEstimate(values: readonly number[]): MeanEstimate | undefined {
  return values.length ? meanConfidenceInterval(values) : undefined;
}

/** What a search has spent. */
export interface SearchUsage {
  trials: number;
  gpu_hours: number;
  llm_usd: number;
  wall_seconds: number;
}

/** The limit reached, in words, or `undefined` while the budget allows another trial. */
export function budgetReached(budget: SearchBudget, used: SearchUsage): string | undefined {
  if (used.trials >= budget.max_trials) return `max_trials reached (${used.trials} of ${budget.max_trials})`;
  if (budget.gpu_hours !== undefined && used.gpu_hours >= budget.gpu_hours)
    return `gpu_hours reached (${used.gpu_hours.toFixed(4)} of ${budget.gpu_hours})`;
  if (budget.llm_usd !== undefined && used.llm_usd >= budget.llm_usd)
    return `llm_usd reached ($${used.llm_usd.toFixed(4)} of $${budget.llm_usd})`;
  if (budget.wall_time !== undefined && used.wall_seconds >= budget.wall_time)
    return `wall_time reached (${Math.round(used.wall_seconds)} s of ${budget.wall_time} s)`;
  return undefined;
}

/**
 * The spec of one seed of one trial: the base at the trial's commit, the seed in `config`, the trial's time
 * limit and resources, one training attempt (a crash is an outcome to learn from, not to retry), every gate
 * off (the search's own gates stand for them), no agents, and the incumbent's experiment as its parent.
 */
export function trialExperimentSpec(
  campaign: SearchCampaignSpec,
  trial: Pick<Trial, 'n' | 'hypothesis' | 'commit' | 'branch' | 'parent_commit'>,
  seed: number,
  parentExperimentId: string,
): ExperimentSpec {
  const base = ExperimentSpec.parse(campaign.base);
  if (!base.code || !trial.commit) throw new Error('a search trial needs the base code and a commit');
  const off = (gate: (typeof base.approvals)['launch']) => ({ ...gate, enabled: false });
  const modifications: Modification[] = [
    { parameter: 'seed', from: base.config.seed ?? null, to: seed },
    ...(trial.commit !== trial.parent_commit
      ? [{ parameter: 'code.commit', from: trial.parent_commit, to: trial.commit }]
      : []),
  ];
  const input: ExperimentSpecInput = {
    ...base,
    experiment_id: trialExperimentId(campaign.campaign_id, trial.n, seed),
    name: `${base.name} — trial ${trial.n}, seed ${seed}`,
    hypothesis: trial.hypothesis,
    config: { ...base.config, seed },
    code: {
      ...base.code,
      ref: trial.branch ?? trial.commit,
      pinned: { commit: trial.commit, ...(trial.branch ? { branch: trial.branch } : {}) },
    },
    training: {
      ...base.training,
      resources: {
        ...base.training.resources,
        ...campaign.search.trial.resources,
        time_limit: campaign.search.trial.time_limit,
      },
    },
    deliverables: campaign.deliverables ?? base.deliverables,
    parent: {
      experiment_id: parentExperimentId,
      modifications,
      rationale: `search ${campaign.campaign_id}, trial ${trial.n}: ${trial.hypothesis}`.slice(0, 2000),
    },
    metadata: { ...base.metadata, tags: [...base.metadata.tags, campaign.campaign_id] },
    approvals: {
      launch: off(base.approvals.launch),
      publish: off(base.approvals.publish),
      failure: off(base.approvals.failure),
      deliverables: off(base.approvals.deliverables),
      budget: off(base.approvals.budget),
    },
    budgets: { ...base.budgets, max_training_attempts: 1 },
    analysis_pipeline: {
      ...base.analysis_pipeline,
      analyses: [],
      writers: [],
      primary_metric: campaign.search.objective.metric,
    },
  };
  return ExperimentSpec.parse(input);
}

/**
 * The outcome class of a failed trial from its experiment's reason: the training outcome a launch ended with
 * (`error`, `out_of_memory`, `diverged`, `timed_out`…), or what else ended it.
 */
export function failureClassOf(reason: string | undefined): string {
  const ended = /launch \d+ ended ([a-z_]+)/.exec(reason ?? '');
  if (ended) return ended[1]!;
  if (/deliverable/i.test(reason ?? '')) return 'deliverables_not_met';
  if (/cancel/i.test(reason ?? '')) return 'cancelled';
  return 'error';
}

/** The search's control update: pause, resume, stop, or change the budget. */
export const SearchControl = z.discriminatedUnion('action', [
  z.strictObject({ action: z.literal('pause'), by: z.string().trim().min(1) }),
  z.strictObject({ action: z.literal('resume'), by: z.string().trim().min(1) }),
  z.strictObject({
    action: z.literal('stop'),
    by: z.string().trim().min(1),
    reason: z.string().optional(),
  }),
  z.strictObject({
    action: z.literal('budget'),
    by: z.string().trim().min(1),
    budget: SearchBudget.partial(),
  }),
]);
export type SearchControl = z.infer<typeof SearchControl>;

/**
 * An edit of the proposal waiting at the proposal gate (`assisted`): a new diff and, optionally, hypothesis;
 * the edited proposal is checked again before the gate can approve it.
 */
export const TrialEdit = z.strictObject({
  trial: z.number().int().positive(),
  diff: z.string().min(1),
  hypothesis: z.string().trim().min(1).optional(),
  by: z.string().trim().min(1),
});
export type TrialEdit = z.infer<typeof TrialEdit>;

/** Where a search is. */
export const SearchStage = z.enum([
  'registered',
  'launch_review',
  'baseline',
  'searching',
  'finishing',
  'reporting',
  'completed',
  'rejected',
  'failed',
  'cancelled',
]);
export type SearchStage = z.infer<typeof SearchStage>;

/** What the search's `status` query answers, and what its report is written from. */
export interface SearchStatus {
  kind: 'search';
  campaign_id: string;
  name: string;
  stage: SearchStage;
  autonomy: SearchAutonomy;
  objective: SearchSpec['objective'];
  /** The best code so far: the trial that measured it (0: the base), its commit and branch. */
  incumbent: { trial: number; commit: string; branch?: string };
  /** Every trial so far, in order; trial 0 is the base. */
  trials: Trial[];
  usage: SearchUsage;
  /** The budget in force (updates may change it). */
  budget: SearchBudget;
  paused: boolean;
  /** Why the search stopped proposing: a budget reached, stopped by a person, the proposer ran out. */
  end_reason?: string;
  waiting?: Waiting;
  decisions: DecisionRecord[];
  /** `runs/<campaign>/search-report.md`, once written. */
  report?: string;
  /** The tracking issue and the final branch's draft pull request, when the settings keep a notebook on GitHub. */
  links?: { github_issue?: string; pull_request?: string };
}

/** One earlier trial as the proposer reads it. */
export interface TrialSummary {
  n: number;
  hypothesis: string;
  diff: string;
  state: TrialState;
  mean?: number;
  ci?: [number, number];
  improvement?: number;
  p_value?: number | null;
  reason?: string;
  failure_class?: string;
  log_tail?: string;
}

/** Bytes of one earlier diff the proposer is shown; longer ones are cut (the hash check still sees all). */
export const HISTORY_DIFF_BYTES = 4096;
/** Earlier trials shown with their diff; older ones keep their hypothesis and outcome only. */
export const HISTORY_TRIALS_WITH_DIFFS = 40;

/**
 * The trials a proposer is shown, oldest first, bounded so that a long search's history stays far below
 * Temporal's payload limit: the last {@link HISTORY_TRIALS_WITH_DIFFS} with their diffs (each cut at
 * {@link HISTORY_DIFF_BYTES}), every earlier one without, and log tails cut to their last 20 lines.
 */
export function proposerHistory(trials: readonly Trial[]): TrialSummary[] {
  const proposed = trials.filter((trial) => trial.n > 0);
  const firstWithDiff = proposed.length - HISTORY_TRIALS_WITH_DIFFS;
  return proposed.map((trial, index) => ({
    n: trial.n,
    hypothesis: trial.hypothesis,
    diff:
      index < firstWithDiff
        ? ''
        : trial.diff.length > HISTORY_DIFF_BYTES
          ? `${trial.diff.slice(0, HISTORY_DIFF_BYTES)}\n[… cut]`
          : trial.diff,
    state: trial.state,
    ...(trial.estimate ? { mean: trial.estimate.mean } : {}),
    ...(trial.estimate?.lower != null && trial.estimate.upper != null
      ? { ci: [trial.estimate.lower, trial.estimate.upper] as [number, number] }
      : {}),
    ...(trial.versus ? { improvement: trial.versus.improvement, p_value: trial.versus.p_value } : {}),
    ...(trial.reason ? { reason: trial.reason } : {}),
    ...(trial.failure_class ? { failure_class: trial.failure_class } : {}),
    ...(trial.log_tail ? { log_tail: trial.log_tail.split('\n').slice(-20).join('\n') } : {}),
  }));
}
