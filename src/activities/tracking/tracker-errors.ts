/**
 * Errors a tracker client raises, each with the FailureType an activity turns it into. Clients throw these
 * and never retry; `trackerFailure` sorts them into retryable and non-retryable `ApplicationFailure`s, so that
 * Temporal owns every retry (and honours a server's Retry-After through `nextRetryDelay`).
 */
import { ApplicationFailure } from '@temporalio/common';
import { FailureType, NON_RETRYABLE_FAILURE_TYPES, type TrackerRetryHint } from '../../experiment';

/** A tracker call failed; `failureType` says how (see FailureType). */
export class TrackerError extends Error {
  override readonly name: string = 'TrackerError';
  /** HTTP status of the answer, when there was one. */
  readonly status: number | undefined;
  /** How long the server asked to wait before trying again (Retry-After), in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(
    message: string,
    readonly failureType: FailureType,
    options: { cause?: unknown; status?: number; retryAfterMs?: number } = {},
  ) {
    super(message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** The tracker refused the credentials (W&B: HTTP 401, or no API key at all). Not retryable. */
export class TrackerAuthError extends TrackerError {
  override readonly name = 'TrackerAuthError';
  constructor(message: string, options: { cause?: unknown; status?: number } = {}) {
    super(message, FailureType.TrackerAuthFailed, options);
  }
}

/** The tracker answered, with errors (W&B: GraphQL `errors`, or a 4xx other than 401/429). Not retryable. */
export class TrackerRequestError extends TrackerError {
  override readonly name = 'TrackerRequestError';
  constructor(message: string, options: { cause?: unknown; status?: number } = {}) {
    super(message, FailureType.TrackerRequestFailed, options);
  }
}

/** The tracker answered with something that does not parse as what was asked for. Not retryable. */
export class TrackerMalformedResponseError extends TrackerError {
  override readonly name = 'TrackerMalformedResponseError';
  constructor(message: string, options: { cause?: unknown; status?: number } = {}) {
    super(message, FailureType.TrackerMalformedResponse, options);
  }
}

/** The tracker is rate limiting, failing (5xx), slow or unreachable. Retryable, after `retryAfterMs` if given. */
export class TrackerUnavailableError extends TrackerError {
  override readonly name = 'TrackerUnavailableError';
  constructor(message: string, options: { cause?: unknown; status?: number; retryAfterMs?: number } = {}) {
    super(message, FailureType.TrackerUnavailable, options);
  }
}

function isFailureType(value: unknown): value is FailureType {
  return typeof value === 'string' && Object.values<string>(FailureType).includes(value);
}

/**
 * The failure an activity throws for an error of a tracker call: an `ApplicationFailure` of the error's
 * FailureType, non-retryable unless the type is retryable (then carrying the server's Retry-After as
 * `nextRetryDelay` for a retry policy, and as a {@link TrackerRetryHint} in its details for a workflow that
 * retries itself: `nextRetryDelay` does not reach workflow code). Errors without a failure type (bugs, file
 * system errors) are returned as they are.
 */
export function trackerFailure(error: unknown): unknown {
  if (error instanceof ApplicationFailure) return error;
  if (!(error instanceof Error)) return error;
  const failureType = (error as { failureType?: unknown }).failureType;
  if (!isFailureType(failureType)) return error;
  if (NON_RETRYABLE_FAILURE_TYPES.includes(failureType)) {
    return ApplicationFailure.create({ message: error.message, type: failureType, nonRetryable: true });
  }
  const retryAfterMs = error instanceof TrackerError ? error.retryAfterMs : undefined;
  const hint: TrackerRetryHint | undefined =
    retryAfterMs !== undefined ? { retry_after_ms: Math.ceil(retryAfterMs) } : undefined;
  return ApplicationFailure.create({
    message: error.message,
    type: failureType,
    nonRetryable: false,
    ...(retryAfterMs !== undefined ? { nextRetryDelay: Math.max(1, Math.ceil(retryAfterMs)) } : {}),
    ...(hint ? { details: [hint] } : {}),
  });
}
