/**
 * Retries that Temporal runs under an activity's retry policy, for the status. The workflow sees only how such
 * an activity ends, so its `status` cannot say that the activity keeps failing; Temporal keeps each retry on the
 * pending activity (attempt, last failure, next attempt time), which DescribeWorkflowExecution returns.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { google, temporal } from '@temporalio/proto';
import type { ActivityRetry, ExperimentStatus, Stage } from '../experiment';

/**
 * The activity a stage waits on that Temporal retries by its policy: the analysis reading the tracked run, and
 * the deliverables check of experiments started before the workflow bounded its retries itself.
 */
const RETRIED_BY_POLICY: Partial<Record<Stage, string>> = {
  validation: 'validateDeliverables',
  analysis: 'computeAnalysis',
};

/**
 * Adds to `status` the retry of the activity its stage waits on, read from the workflow's pending activities,
 * when the workflow reports none itself. Describes the workflow only in the stages that have such an activity.
 */
export async function addPolicyRetry(handle: WorkflowHandle, status: ExperimentStatus): Promise<void> {
  const activity = RETRIED_BY_POLICY[status.stage];
  if (activity === undefined || status.retrying) return;
  const { raw } = await handle.describe();
  const retry = pendingActivityRetry(raw.pendingActivities ?? [], activity);
  if (retry) status.retrying = retry;
}

/** The retry of a pending `activityType` that failed at least once, as the status shows it; else undefined. */
export function pendingActivityRetry(
  pending: readonly temporal.api.workflow.v1.IPendingActivityInfo[],
  activityType: string,
): ActivityRetry | undefined {
  const activity = pending.find(
    (each) => each.activityType?.name === activityType && (each.attempt ?? 1) > 1 && each.lastFailure,
  );
  const failure = activity?.lastFailure;
  if (!activity || !failure) return undefined;
  const failedAt = isoOf(activity.lastAttemptCompleteTime);
  const nextAt = isoOf(activity.nextAttemptScheduleTime);
  const giveUpAt = isoOf(activity.expirationTime);
  const type = failure.applicationFailureInfo?.type;
  return {
    activity: activityType,
    // `attempt` is the attempt running or waiting to run: the ones before it failed.
    failed_attempts: (activity.attempt ?? 1) - 1,
    ...(activity.maximumAttempts ? { max_attempts: activity.maximumAttempts } : {}),
    ...(type ? { failure_type: type } : {}),
    last_error: failure.message || 'no message',
    ...(failedAt ? { failed_at: failedAt } : {}),
    ...(nextAt ? { next_attempt_at: nextAt } : {}),
    ...(giveUpAt ? { give_up_at: giveUpAt } : {}),
  };
}

/** A protobuf timestamp as ISO 8601 (its seconds may be a Long); undefined when absent. */
function isoOf(timestamp: google.protobuf.ITimestamp | null | undefined): string | undefined {
  if (!timestamp || (timestamp.seconds == null && timestamp.nanos == null)) return undefined;
  const seconds = Number(timestamp.seconds?.toString() ?? 0);
  return new Date(seconds * 1000 + Math.floor((timestamp.nanos ?? 0) / 1e6)).toISOString();
}
