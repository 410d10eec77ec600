/**
 * What an experiment workflow reports about itself: its stage, what it waits for, every decision and
 * training attempt. The `status` query returns it; the CLI, the Slack bridge and the Web UI details read it.
 */
import { z } from 'zod';
import { GateName, DecisionRecord } from './decisions';
import { AnalysisReportRecord, Costs } from './results';
import { ApprovalDetails } from './approval-details';
import { ActivityRetry } from './retries';

/** The pipeline's stages, in order, and its three ends besides `completed`. */
export const Stage = z.enum([
  'registered',
  'launch_review',
  'training',
  'validation',
  'analysis',
  'publish_review',
  'writing',
  'completed',
  'failed',
  'rejected',
  'cancelled',
]);
export type Stage = z.infer<typeof Stage>;

/** Stages an experiment does not leave. */
export const finalStages: readonly Stage[] = ['completed', 'failed', 'rejected', 'cancelled'];

/** The gate the workflow waits at. */
export const Waiting = z.object({
  gate: GateName,
  /** What is to be decided, in a sentence (e.g. the failure and its log tail). */
  question: z.string(),
  /** Since when, ISO 8601 (workflow time). */
  since: z.string(),
  /**
   * This opening of the gate: a decision names it (`decide` update), so a request answered late or replayed
   * cannot decide a later opening. Absent in the status of workflows started before decisions were updates.
   */
  opening: z.string().optional(),
  /** Who may decide now; empty: anyone. */
  approvers: z.array(z.string()),
  /** Reminders sent so far. */
  reminders_sent: z.number().int().nonnegative(),
  /** Whether the request went to the escalation approvers. */
  escalated: z.boolean(),
  /** When the gate's timeout acts, ISO 8601. */
  deadline: z.string(),
  /** What is to be approved, field by field; absent in histories of older workflow code. */
  details: ApprovalDetails.optional(),
});
export type Waiting = z.infer<typeof Waiting>;

/** One launch of the training command. */
export const TrainingAttempt = z.object({
  /** 1, 2, … over the whole experiment (relaunches after preemption included). */
  launch: z.number().int().positive(),
  /** The launcher's idempotency key: one process or job per key. */
  key: z.string(),
  launcher: z.string(),
  started_at: z.string(),
  ended_at: z.string().optional(),
  /** Checkpoint it resumed from, if any. */
  resumed_from: z.string().optional(),
  /** success, out_of_memory, diverged, preempted, error, cancelled; absent while running. */
  outcome: z.string().optional(),
  exit_code: z.number().int().nullable().optional(),
  /** Why it ended, in a sentence, with the log line that told. */
  detail: z.string().optional(),
  /**
   * While a scheduler holds the launch in its queue: why, in words (Slurm's pending reason, e.g. "waiting for
   * resources (GPUs, CPUs or memory) to free up (Resources)"). Absent once it runs, and for local launches.
   */
  queued: z.string().optional(),
  /** Latest progress the trainer reported. */
  step: z.number().optional(),
  loss: z.number().optional(),
  /** The tracked run's state when the attempt ended (W&B: finished, crashed, preempted…), when followed. */
  tracker_state: z.string().optional(),
});
export type TrainingAttempt = z.infer<typeof TrainingAttempt>;

export const ExperimentStatus = z.object({
  experiment_id: z.string(),
  name: z.string(),
  stage: Stage,
  /** When the stage began, ISO 8601. */
  stage_since: z.string(),
  waiting: Waiting.optional(),
  decisions: z.array(DecisionRecord),
  attempts: z.array(TrainingAttempt),
  /** Preemption restarts used, and failures counted against `budgets.max_training_attempts`. */
  preemptions: z.number().int().nonnegative(),
  failures: z.number().int().nonnegative(),
  links: z.object({
    run_dir: z.string(),
    report: z.string().optional(),
    results: z.string().optional(),
    tracker_url: z.string().optional(),
    /** The experiment's GitHub issue, when the settings keep a notebook on GitHub. */
    github_issue: z.string().optional(),
    /** The experiment's Temporal Web UI page: added by the client that knows the UI, never by the workflow. */
    web_ui: z.string().optional(),
  }),
  costs: Costs,
  /**
   * The analysis and writing agents' outputs so far, each with its model, prompt version, calls, cost and
   * the numbers it could not ground (`unverified_numbers`). Absent before the analysis stage.
   */
  analysis_reports: z.array(AnalysisReportRecord).optional(),
  /**
   * While a failed attempt of the activity the stage waits on (the deliverables check) waits to be retried:
   * the last error, the attempts failed of those allowed, and when the next one starts. Absent otherwise.
   */
  retrying: ActivityRetry.optional(),
  /** Why the experiment failed or was rejected. */
  reason: z.string().optional(),
});
export type ExperimentStatus = z.infer<typeof ExperimentStatus>;
