/**
 * The deliverables check of an experiment, retried while the tracker is unavailable, within bounds.
 *
 * The workflow retries it, not the activity's retry policy (unlike Labline's other activities), because a person
 * must see each failed attempt while the check retries — the last error, the attempts failed of those allowed,
 * the next attempt — in the `status` and in the Web UI's current details, which only the workflow sets; and
 * because retries that are used up must end at the failure gate, not in a failed workflow. Temporal still owns
 * every attempt and every wait: each attempt is one activity execution, each wait a durable timer, and how long
 * to wait comes from the same pure rule `labline validate` follows (`nextAttempt`), honouring the tracker's
 * Retry-After.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  log,
  proxyActivities,
  sleep,
  TimeoutFailure,
} from '@temporalio/workflow';
import type {
  TrackingActivities,
  ValidateDeliverablesInput,
  ValidateDeliverablesResult,
} from '../activities/tracking/activities';
import {
  nextAttempt,
  retryAfterOf,
  type ExperimentStatus,
  type GateSpec,
  type ValidationRetrySettings,
} from '../experiment';
import type { ApprovalGates } from './approval-gate';

/**
 * Since this patch the deliverables check runs once per activity execution and the workflow retries it as the
 * settings' `validation` section allows, then asks at the failure gate. Workflows started before it retried the
 * activity without limit under its retry policy; `patched` keeps them replaying that way.
 */
export const VALIDATION_RETRIES_PATCH = 'labline-validation-bounded-retries';

/** What the check needs from the experiment workflow. */
export interface ValidationRetryContext {
  /** The task queue of light activities. */
  taskQueue: string;
  /** How long the check may go without a heartbeat (its worker sends them) before it is retried elsewhere. */
  heartbeatTimeoutSeconds: number;
  /** The bounds: attempts, time, first wait. */
  retries: ValidationRetrySettings;
  /** The experiment's status: `retrying` is set while an attempt waits to be retried. */
  status: ExperimentStatus;
  /** Shows the status in the Web UI's current details. */
  showDetails: () => void;
  gates: ApprovalGates;
  /** The spec's failure gate. */
  failureGate: GateSpec;
  /** The error that ends the experiment as failed, with the reason. */
  ended: (reason: string) => Error;
}

/** A failed attempt that another attempt may fix, as far as the workflow can tell. */
interface RetryableFailure {
  /** The FailureType of an ApplicationFailure; absent for a timeout (the worker died or hung). */
  type?: string;
  message: string;
  retryAfterMs?: number;
}

/**
 * Checks the deliverables: attempts while the tracker is unavailable, as `retries` allows, then the failure
 * gate with the classified error (approve: a new round of attempts; reject: the experiment fails). With the
 * failure gate disabled nobody is asked and the experiment fails: approving automatically would retry forever.
 * A failure that retrying cannot fix (no such run, a refused key) is thrown as the activity's failure, as before.
 */
export async function validateWithRetries(
  input: ValidateDeliverablesInput,
  context: ValidationRetryContext,
): Promise<ValidateDeliverablesResult> {
  for (;;) {
    const round = await attemptRound(input, context);
    if ('result' in round) return round.result;
    const { failure, reason } = round;
    const what =
      `validation could not read the tracked run: ${failure.type ?? 'timeout'}, ${reason}: ` +
      failure.message;
    if (!context.failureGate.enabled) throw context.ended(`${what} (the failure gate is disabled)`);
    const decision = await context.gates.decide(
      'failure',
      context.failureGate,
      `${what}. Retry (approve) or abort (reject)?`,
      { error_class: failure.type ?? 'timeout', error: failure.message },
    );
    if (decision !== 'retry') throw context.ended(`aborted after ${what}`);
  }
}

/** One round of attempts: the result, or the last retryable failure and why retrying stopped. */
async function attemptRound(
  input: ValidateDeliverablesInput,
  context: ValidationRetryContext,
): Promise<{ result: ValidateDeliverablesResult } | { failure: RetryableFailure; reason: string }> {
  const { validateDeliverables } = proxyActivities<TrackingActivities>({
    taskQueue: context.taskQueue,
    startToCloseTimeout: '10 minutes',
    heartbeatTimeout: `${context.heartbeatTimeoutSeconds} seconds`,
    retry: { maximumAttempts: 1 },
  });
  const { status, retries } = context;
  const firstStartedAtMs = Date.now();
  const stopRetrying = () => {
    if (status.retrying === undefined) return;
    delete status.retrying;
    context.showDetails();
  };
  for (let attempts = 1; ; attempts += 1) {
    let failure: RetryableFailure | undefined;
    try {
      const result = await validateDeliverables(input);
      stopRetrying();
      return { result };
    } catch (error) {
      failure = retryableFailureOf(error);
      if (!failure) {
        stopRetrying();
        throw error;
      }
    }
    const nowMs = Date.now();
    const next = nextAttempt(retries, {
      attempts,
      firstStartedAtMs,
      nowMs,
      retryAfterMs: failure.retryAfterMs,
    });
    if (!next.retry) {
      stopRetrying();
      return { failure, reason: next.reason };
    }
    status.retrying = {
      activity: 'validateDeliverables',
      failed_attempts: attempts,
      max_attempts: retries.max_attempts,
      ...(failure.type !== undefined ? { failure_type: failure.type } : {}),
      last_error: failure.message,
      failed_at: new Date(nowMs).toISOString(),
      next_attempt_at: new Date(nowMs + next.delayMs).toISOString(),
      give_up_at: new Date(next.giveUpAtMs).toISOString(),
    };
    context.showDetails();
    log.warn('deliverables check failed; retrying', {
      experimentId: status.experiment_id,
      attempts,
      maxAttempts: retries.max_attempts,
      delayMs: next.delayMs,
      error: failure.message,
    });
    // A timer of at least 1 ms: Retry-After may be 0.
    await sleep(Math.max(1, next.delayMs));
  }
}

/**
 * The failure of an attempt that another attempt may fix: a retryable ApplicationFailure (tracker unavailable,
 * or an unexpected error), or a timeout (the worker died or hung). Anything else (non-retryable failures,
 * cancellation) is not.
 */
function retryableFailureOf(error: unknown): RetryableFailure | undefined {
  if (!(error instanceof ActivityFailure)) return undefined;
  const cause = error.cause;
  if (cause instanceof ApplicationFailure && !cause.nonRetryable) {
    const retryAfterMs = retryAfterOf(cause.details);
    return {
      ...(cause.type ? { type: cause.type } : {}),
      message: cause.message,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    };
  }
  if (cause instanceof TimeoutFailure) return { message: cause.message };
  return undefined;
}
