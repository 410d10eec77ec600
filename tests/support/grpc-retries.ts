/**
 * The client's gRPC retries, made safe to close under. Temporal's retry interceptor schedules each retry on a
 * timer that closing the connection does not clear: a call that failed retryably just before a test file's
 * teardown retries after the close, and the new call throws "Channel has been shut down" outside any promise,
 * failing the whole file. This keeps the default retry policy, refuses new retries once closing has begun, and
 * lets the closer wait until every retry already scheduled has run and answered. Counted, not timed: under load
 * a timer fires late.
 */
import { defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import type { Interceptor } from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';

/** How long `drain` waits for scheduled retries at most: their delays are at most 5 s each. */
const DRAIN_LIMIT_MS = 30_000;

export class ClosableRetries {
  private closing = false;
  /** Retries scheduled whose call has not answered yet. */
  private outstanding = 0;
  private scheduled = 0;
  private readonly defaults = defaultGrpcRetryOptions();

  /** The interceptor for `Connection.connect({ interceptors: [...] })`. */
  readonly interceptor: Interceptor = makeGrpcRetryInterceptor({
    retryableDecider: (attempt, status) => {
      // Asked once per answer; an answer to attempt 2 or later is a scheduled retry that has run.
      if (attempt > 1) this.outstanding = Math.max(0, this.outstanding - 1);
      return !this.closing && this.defaults.retryableDecider(attempt, status);
    },
    delayFunction: (attempt, status) => {
      this.outstanding += 1;
      this.scheduled += 1;
      return this.defaults.delayFunction(attempt, status);
    },
  });

  /** Whether a retry has been scheduled on this connection. */
  get retried(): boolean {
    return this.scheduled > 0;
  }

  /** No new retries from now on; resolves once every retry already scheduled has run and answered. */
  async drain(): Promise<void> {
    this.closing = true;
    const deadline = Date.now() + DRAIN_LIMIT_MS;
    while (this.outstanding > 0 && Date.now() < deadline) await sleep(10);
  }
}
