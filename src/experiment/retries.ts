/**
 * Retrying a check against a tracker that is unavailable (429, 5xx, timeouts): how many attempts, for how
 * long, how far apart, and what a person is shown while it retries. Pure: the experiment workflow and
 * `labline validate` both decide their next attempt with {@link nextAttempt}, so they give up alike.
 */
import { z } from 'zod';

/** Longest wait between two attempts unless the first wait is longer, in milliseconds. */
const MAX_INTERVAL_MS = 60_000;

/**
 * How a deliverables check retries while the tracker is unavailable: the `validation` section of the settings,
 * passed to workflows as `validation_retry`. Every option has a default.
 */
export const ValidationRetrySettings = z
  .strictObject({
    /**
     * Attempts in all, the first one included, before the experiment asks at its failure gate (`labline
     * validate`: exits 2). Default 8; 1 checks once and never retries.
     */
    max_attempts: z
      .number({ error: 'must be a number of attempts, like 8' })
      .int('must be a whole number of attempts, like 8')
      .min(1, 'must be at least 1 (1: check once, no retry)')
      .default(8),
    /** No attempt starts later than this many seconds after the first one. Default 900 (15 minutes). */
    max_retry_seconds: z
      .number({ error: 'must be a number of seconds, like 900' })
      .positive('must be more than 0 seconds, like 900')
      .default(900),
    /**
     * Seconds before the second attempt, doubled for each next one up to 60 s. A `Retry-After` from the
     * tracker (W&B rate limiting) is waited instead. Default 1.
     */
    retry_interval_seconds: z
      .number({ error: 'must be a number of seconds, like 1 or 0.5' })
      .positive('must be more than 0 seconds, like 1 or 0.5')
      .default(1),
  })
  .superRefine((settings, ctx) => {
    if (settings.retry_interval_seconds > settings.max_retry_seconds) {
      ctx.addIssue({
        code: 'custom',
        path: ['retry_interval_seconds'],
        message:
          `the first wait (${settings.retry_interval_seconds} s) is longer than max_retry_seconds ` +
          `(${settings.max_retry_seconds} s), so no retry could ever start; lower it or raise max_retry_seconds`,
      });
    }
  });
/** How a deliverables check retries while the tracker is unavailable, defaults filled in. */
export type ValidationRetrySettings = z.infer<typeof ValidationRetrySettings>;

/** What is known when an attempt failed with a retryable error. */
export interface FailedAttempt {
  /** Attempts made so far, all failed, this one included. */
  attempts: number;
  /** When the first attempt started, epoch milliseconds. */
  firstStartedAtMs: number;
  /** Now, epoch milliseconds (workflow time in a workflow). */
  nowMs: number;
  /** How long the tracker asked to wait (`Retry-After`), in milliseconds, when it did. */
  retryAfterMs?: number | undefined;
}

/** Whether to try again, when, and why not. */
export type NextAttempt =
  | {
      retry: true;
      /** Milliseconds to wait. */
      delayMs: number;
      /** Whether the wait is the tracker's `Retry-After`. */
      asked: boolean;
      /** When retrying stops: the first attempt's start plus `max_retry_seconds`, epoch milliseconds. */
      giveUpAtMs: number;
    }
  | {
      retry: false;
      /** Why not, in words naming the setting, e.g. `3 of 3 attempts failed (validation.max_attempts)`. */
      reason: string;
    };

/**
 * After a failed attempt, whether and when to try again: never beyond `max_attempts`, never starting later
 * than `max_retry_seconds` after the first attempt. The wait is the tracker's `Retry-After` when it gave one,
 * else `retry_interval_seconds` doubled per failed attempt, up to 60 s.
 */
export function nextAttempt(settings: ValidationRetrySettings, failed: FailedAttempt): NextAttempt {
  const { max_attempts: maxAttempts } = settings;
  if (failed.attempts >= maxAttempts) {
    return {
      retry: false,
      reason: `${failed.attempts} of ${maxAttempts} attempts failed (settings validation.max_attempts)`,
    };
  }
  const intervalMs = settings.retry_interval_seconds * 1000;
  const backoffMs = Math.min(intervalMs * 2 ** (failed.attempts - 1), Math.max(MAX_INTERVAL_MS, intervalMs));
  const asked = failed.retryAfterMs !== undefined;
  const delayMs = Math.max(0, failed.retryAfterMs ?? backoffMs);
  const giveUpAtMs = failed.firstStartedAtMs + settings.max_retry_seconds * 1000;
  if (failed.nowMs + delayMs > giveUpAtMs) {
    return {
      retry: false,
      reason:
        `${failed.attempts} of ${maxAttempts} attempts failed, and the next one (in ${formatSeconds(delayMs)} s` +
        `${asked ? ', as the tracker asked' : ''}) would start more than ${settings.max_retry_seconds} s after ` +
        'the first (settings validation.max_retry_seconds)',
    };
  }
  return { retry: true, delayMs, asked, giveUpAtMs };
}

/** Milliseconds as seconds for people: `2`, `0.05`. */
export function formatSeconds(ms: number): string {
  return String(Math.round(ms) / 1000);
}

/**
 * An activity whose failed attempt waits to be retried: which activity, how many attempts failed of how many
 * allowed, the last error, and when the next attempt starts. The `status` shows it, and the Web UI details.
 */
export const ActivityRetry = z.object({
  /** The activity, e.g. `validateDeliverables`. */
  activity: z.string(),
  /** Attempts that failed so far. */
  failed_attempts: z.number().int().positive(),
  /** Attempts allowed in all; absent when unlimited. */
  max_attempts: z.number().int().positive().optional(),
  /** The type of the last attempt's failure (a FailureType such as `TrackerUnavailable`), when it had one. */
  failure_type: z.string().optional(),
  /** The last attempt's error, in its own words. */
  last_error: z.string(),
  /** When the last attempt failed, ISO 8601. */
  failed_at: z.string().optional(),
  /** When the next attempt starts, ISO 8601. */
  next_attempt_at: z.string().optional(),
  /** After when no attempt starts any more, ISO 8601; absent when unlimited. */
  give_up_at: z.string().optional(),
});
/** An activity whose failed attempt waits to be retried. */
export type ActivityRetry = z.infer<typeof ActivityRetry>;

/** A retry in a line: `validateDeliverables failed 2 of 8 attempts (TrackerUnavailable: …); next attempt at …`. */
export function describeActivityRetry(retry: ActivityRetry): string {
  const of = retry.max_attempts !== undefined ? ` of ${retry.max_attempts}` : '';
  const attempts = retry.failed_attempts === 1 && of === '' ? 'attempt' : 'attempts';
  const error = retry.failure_type ? `${retry.failure_type}: ${retry.last_error}` : retry.last_error;
  return (
    `${retry.activity} failed ${retry.failed_attempts}${of} ${attempts} (${error})` +
    (retry.next_attempt_at ? `; next attempt at ${retry.next_attempt_at}` : '') +
    (retry.give_up_at ? `, giving up at ${retry.give_up_at}` : '')
  );
}

/**
 * What a retryable tracker failure carries for a workflow that retries it itself: the tracker's `Retry-After`
 * in milliseconds. (`nextRetryDelay` serves Temporal's retry policy, but does not reach workflow code.)
 */
export const TrackerRetryHint = z.object({ retry_after_ms: z.number().nonnegative() });
/** The tracker's `Retry-After`, as a failure's details carry it. */
export type TrackerRetryHint = z.infer<typeof TrackerRetryHint>;

/** The `Retry-After` among a failure's details, in milliseconds, if one is there. */
export function retryAfterOf(details: readonly unknown[] | undefined | null): number | undefined {
  for (const detail of details ?? []) {
    const hint = TrackerRetryHint.safeParse(detail);
    if (hint.success) return hint.data.retry_after_ms;
  }
  return undefined;
}
