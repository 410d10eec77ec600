/**
 * What a person is asked to approve at each gate, as structured fields: the workflow fills them in, the
 * status shows them, and rich notifiers (Slack Block Kit) lay them out. Pure functions only.
 */
import { z } from 'zod';
import type { ValidationReport } from './deliverables';
import { formatDuration } from './quantities';
import { renderTrainingArgs } from './campaign';
import type { TrainingSpec } from './spec';

/** What is to be approved, field by field. Each gate fills the fields that fit it. */
export const ApprovalDetails = z.object({
  /** launch: the training command line. */
  command: z.string().optional(),
  /** launch: what it reserves and where, e.g. `1 GPU(s), 4 CPU(s), 16G memory, time limit 2h on slurm`. */
  resources: z.string().optional(),
  /** launch: upper bound of GPU hours per attempt (GPUs × time limit); absent without a time limit. */
  gpu_hours_estimate: z.number().nonnegative().optional(),
  /** publish: the analysis in one line. */
  headline: z.string().optional(),
  /** publish and deliverables: each deliverable, what the run holds against what the spec asks. */
  key_results: z
    .array(z.object({ name: z.string(), found: z.string(), expected: z.string(), passed: z.boolean() }))
    .optional(),
  /** failure: the error class of the attempt (`out_of_memory`, `diverged`, `error`…). */
  error_class: z.string().optional(),
  /** failure: why it ended, in a sentence. */
  error: z.string().optional(),
  /** failure: the last lines of its log. */
  log_tail: z.string().optional(),
});
/** What is to be approved, field by field. */
export type ApprovalDetails = z.infer<typeof ApprovalDetails>;

/** The command line a launch runs: the spec's command and its arguments with `${config.KEY}` filled in. */
export function resolvedTrainingCommand(
  training: TrainingSpec,
  config: Record<string, unknown> = {},
): string {
  return [training.command, ...renderTrainingArgs(training.args, config)].join(' ');
}

/** The launch gate: the resolved command, resources and the GPU hours one attempt may take at most. */
export function launchApprovalDetails(
  training: TrainingSpec,
  config: Record<string, unknown> = {},
): ApprovalDetails {
  const { resources } = training;
  const details: ApprovalDetails = {
    command: resolvedTrainingCommand(training, config),
    resources:
      `${resources.gpus} GPU(s), ${resources.cpus} CPU(s)` +
      (resources.memory ? `, ${resources.memory} memory` : '') +
      (resources.time_limit !== undefined ? `, time limit ${formatDuration(resources.time_limit)}` : '') +
      ` on ${training.launcher}`,
  };
  if (resources.time_limit !== undefined)
    details.gpu_hours_estimate = (resources.gpus * resources.time_limit) / 3600;
  return details;
}

/** The failure gate: the attempt's error class, why it ended and the last `lines` lines of its log. */
export function failureApprovalDetails(
  errorClass: string,
  error: string,
  logTail: string,
  lines = 10,
): ApprovalDetails {
  return { error_class: errorClass, error, log_tail: logTail.split('\n').slice(-lines).join('\n') };
}

/** The publish and deliverables gates: each deliverable's verdict, with the analysis headline if any. */
export function resultsApprovalDetails(report: ValidationReport | null, headline?: string): ApprovalDetails {
  const details: ApprovalDetails = {};
  if (headline !== undefined) details.headline = headline;
  if (report)
    details.key_results = report.results.map(({ name, found, expected, passed }) => ({
      name,
      found,
      expected,
      passed,
    }));
  return details;
}
