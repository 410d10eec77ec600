/**
 * Activity retry and timeout rules as Temporal's history service applies them: defaults filled into the
 * retry policy, the four activity timeouts normalised, and the decision whether a failed attempt retries.
 */
import { invalidArgument } from './errors';
import type { ActivityState, RetryPolicyState } from './execution';
import { duration, durationToMs, enums, type Pb } from './proto';

const { RetryState } = enums;

/** Temporal's defaults: 1 s initial interval, coefficient 2, maximum interval 100 × initial, unlimited attempts. */
export function normaliseRetryPolicy(policy: Pb | undefined): { state: RetryPolicyState; wire: Pb } {
  const initialIntervalMs = durationToMs(policy?.initialInterval) || 1000;
  const backoffCoefficient = Number(policy?.backoffCoefficient) || 2;
  const maximumIntervalMs = durationToMs(policy?.maximumInterval) || 100 * initialIntervalMs;
  const maximumAttempts = Number(policy?.maximumAttempts ?? 0);
  const nonRetryableErrorTypes = (policy?.nonRetryableErrorTypes as string[] | undefined) ?? [];
  if (backoffCoefficient < 1) throw invalidArgument('BackoffCoefficient cannot be less than 1.');
  if (maximumAttempts < 0) throw invalidArgument('MaximumAttempts cannot be negative.');
  if (maximumIntervalMs < initialIntervalMs) {
    throw invalidArgument('MaximumInterval cannot be less than InitialInterval on retry policy.');
  }
  const state = {
    initialIntervalMs,
    backoffCoefficient,
    maximumIntervalMs,
    maximumAttempts,
    nonRetryableErrorTypes,
  };
  const wire = {
    initialInterval: duration(initialIntervalMs),
    backoffCoefficient,
    maximumInterval: duration(maximumIntervalMs),
    maximumAttempts,
    nonRetryableErrorTypes,
  };
  return { state, wire };
}

export interface ActivityTimeouts {
  scheduleToCloseMs: number;
  scheduleToStartMs: number;
  startToCloseMs: number;
  heartbeatMs: number;
}

/**
 * Fills in the timeouts of a ScheduleActivityTask command as the server does: schedule-to-close bounds the
 * others, and a missing one is derived; `runTimeoutMs` (0 = none) bounds schedule-to-close.
 */
export function normaliseActivityTimeouts(attrs: Pb, runTimeoutMs: number): ActivityTimeouts {
  let scheduleToCloseMs = durationToMs(attrs.scheduleToCloseTimeout);
  let scheduleToStartMs = durationToMs(attrs.scheduleToStartTimeout);
  let startToCloseMs = durationToMs(attrs.startToCloseTimeout);
  let heartbeatMs = durationToMs(attrs.heartbeatTimeout);
  if (scheduleToCloseMs < 0 || scheduleToStartMs < 0 || startToCloseMs < 0 || heartbeatMs < 0) {
    throw invalidArgument('A valid timeout may not be negative.');
  }
  if (runTimeoutMs > 0 && (scheduleToCloseMs === 0 || scheduleToCloseMs > runTimeoutMs)) {
    scheduleToCloseMs = runTimeoutMs;
  }
  if (scheduleToCloseMs > 0) {
    scheduleToStartMs =
      scheduleToStartMs > 0 ? Math.min(scheduleToStartMs, scheduleToCloseMs) : scheduleToCloseMs;
    startToCloseMs = startToCloseMs > 0 ? Math.min(startToCloseMs, scheduleToCloseMs) : scheduleToCloseMs;
  } else if (startToCloseMs === 0) {
    throw invalidArgument(
      'A valid StartToClose or ScheduleToCloseTimeout is not set on ScheduleActivityTaskCommand.',
    );
  }
  if (heartbeatMs > 0 && startToCloseMs > 0) heartbeatMs = Math.min(heartbeatMs, startToCloseMs);
  return { scheduleToCloseMs, scheduleToStartMs, startToCloseMs, heartbeatMs };
}

export type RetryDecision = { retry: true; delayMs: number } | { retry: false; retryState: number };

/** The error type a failure is matched against `nonRetryableErrorTypes` with. */
function failureType(failure: Pb): string | undefined {
  if (failure.applicationFailureInfo) return failure.applicationFailureInfo.type as string | undefined;
  if (failure.timeoutFailureInfo) {
    const timeoutType = enums.TimeoutType[
      failure.timeoutFailureInfo.timeoutType as number
    ] as unknown as string;
    const pascal = timeoutType
      .replace(/^TIMEOUT_TYPE_/, '')
      .toLowerCase()
      .replace(/(^|_)([a-z])/g, (_m, _s, c: string) => c.toUpperCase());
    return `TemporalTimeout:${pascal}`;
  }
  return undefined;
}

/** Whether an attempt that failed with `failure` at `now` is retried, and after how long. */
export function decideRetry(
  activity: Pick<ActivityState, 'retry' | 'attempt' | 'scheduledTime' | 'scheduleToCloseMs'>,
  failure: Pb,
  now: number,
): RetryDecision {
  const policy = activity.retry;
  if (failure.applicationFailureInfo?.nonRetryable) {
    return { retry: false, retryState: RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE };
  }
  const type = failureType(failure);
  if (type && policy.nonRetryableErrorTypes.includes(type)) {
    return { retry: false, retryState: RetryState.RETRY_STATE_NON_RETRYABLE_FAILURE };
  }
  if (policy.maximumAttempts > 0 && activity.attempt >= policy.maximumAttempts) {
    return { retry: false, retryState: RetryState.RETRY_STATE_MAXIMUM_ATTEMPTS_REACHED };
  }
  const requested = failure.applicationFailureInfo?.nextRetryDelay
    ? durationToMs(failure.applicationFailureInfo.nextRetryDelay as Pb)
    : undefined;
  const delayMs =
    requested ??
    Math.min(
      policy.initialIntervalMs * Math.pow(policy.backoffCoefficient, activity.attempt - 1),
      policy.maximumIntervalMs,
    );
  if (
    activity.scheduleToCloseMs > 0 &&
    now + delayMs >= activity.scheduledTime + activity.scheduleToCloseMs
  ) {
    return { retry: false, retryState: RetryState.RETRY_STATE_TIMEOUT };
  }
  return { retry: true, delayMs };
}

/** The failure the server records for a timeout, as Temporal words it. */
export function timeoutFailure(timeoutType: number, lastHeartbeatDetails?: Pb, cause?: Pb): Pb {
  const name = (enums.TimeoutType[timeoutType] as unknown as string)
    .replace(/^TIMEOUT_TYPE_/, '')
    .toLowerCase()
    .replace(/(^|_)([a-z])/g, (_m, _s, c: string) => c.toUpperCase());
  return {
    message: `activity ${name} timeout`,
    source: 'Server',
    timeoutFailureInfo: { timeoutType, lastHeartbeatDetails },
    cause,
  };
}

/** The failure of an activity whose timeout left no time for a retry before its schedule-to-close deadline. */
export function retryTimeoutFailure(lastHeartbeatDetails?: Pb, cause?: Pb): Pb {
  return {
    ...timeoutFailure(enums.TimeoutType.TIMEOUT_TYPE_SCHEDULE_TO_CLOSE, lastHeartbeatDetails, cause),
    message:
      'Not enough time to schedule next retry before activity ScheduleToClose timeout, giving up retrying',
  };
}
