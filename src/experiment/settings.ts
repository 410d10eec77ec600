/**
 * The part of Labline's settings that reaches experiment workflows. Workflows read no files and no
 * environment, so the client resolves these once and passes them in the workflow input.
 */
import { z } from 'zod';

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
  /** How often the watcher checks the training process, in milliseconds. Default 1000. */
  training_poll_interval_ms: z.number().int().positive().default(1000),
});
export type WorkflowSettings = z.infer<typeof WorkflowSettings>;
export type WorkflowSettingsInput = z.input<typeof WorkflowSettings>;
