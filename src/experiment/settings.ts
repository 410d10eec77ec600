/**
 * The part of Labline's settings that reaches experiment workflows. Workflows read no files and no
 * environment, so the client resolves these once and passes them in the workflow input.
 */
import { z } from 'zod';
import { ValidationRetrySettings } from './retries';

export const TaskQueues = z.object({
  /** Workflows and light activities. Default `labline`. */
  workflow: z.string().min(1).default('labline'),
  /** Launching and watching training; its worker's concurrency is the host's GPU slots. Default `labline-gpu`. */
  gpu: z.string().min(1).default('labline-gpu'),
  /** LLM calls. Default `labline-agents`. */
  agents: z.string().min(1).default('labline-agents'),
});
export type TaskQueues = z.infer<typeof TaskQueues>;

export const WorkflowSettings = z.object({
  /** Absolute folder holding `runs/<experiment-id>/`. */
  runs_root: z.string().refine((dir) => dir.startsWith('/'), 'must be an absolute path'),
  task_queues: TaskQueues.prefault({}),
  /**
   * How long a training watcher may go without heartbeating before Temporal retries it on another worker,
   * in seconds. Default 30; tests shorten it.
   */
  training_heartbeat_timeout_seconds: z.number().positive().default(30),
  /**
   * How long validation, analysis, report writing and agents may go without a heartbeat (their worker
   * heartbeats for them while they run) before Temporal retries them on another worker, in seconds: how
   * long a dead worker stalls those stages. Default 60.
   */
  activity_heartbeat_timeout_seconds: z.number().positive().default(60),
  /** How often the watcher checks the training process, in milliseconds. Default 250. */
  training_poll_interval_ms: z.number().int().positive().default(250),
  /**
   * How long one launch (or cancel) attempt may take before Temporal retries it, in seconds: a worker that
   * dies mid-launch delays the experiment by this much; the retry adopts what was launched. Default 60.
   */
  launch_timeout_seconds: z.number().positive().default(60),
  /**
   * How the deliverables check is retried while the tracker is unavailable, before the failure gate asks: the
   * settings' `validation` section. Default: 8 attempts within 900 s, the first retry after 1 s.
   */
  validation_retry: ValidationRetrySettings.prefault({}),
  /**
   * Where W&B lives, for experiments tracked there: the run URL shown from launch on, and `WANDB_BASE_URL`
   * for the trainer when it is not the default. Default: `https://api.wandb.ai`, app `https://wandb.ai`.
   */
  wandb: z
    .object({ base_url: z.string().min(1).optional(), app_url: z.string().min(1).optional() })
    .optional(),
  /**
   * Keep a GitHub issue per experiment (the settings' `github` section was set when it was submitted); the
   * worker knows the repository and holds the token. Default false.
   */
  github_notebook: z.boolean().default(false),
});
export type WorkflowSettings = z.infer<typeof WorkflowSettings>;
export type WorkflowSettingsInput = z.input<typeof WorkflowSettings>;
