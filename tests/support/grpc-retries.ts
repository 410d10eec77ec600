/**
 * The client's gRPC retries, made safe to close under. Temporal's retry interceptor schedules each retry on a
 * timer that closing the connection does not clear: a call that failed retryably just before a test file's
 * teardown retries after the close, and the new call throws "Channel has been shut down" outside any promise,
 * failing the whole file. This keeps the default retry policy, refuses new retries once closing has begun, and
 * tells the closer until when already scheduled ones run.
 */
import { defaultGrpcRetryOptions, makeGrpcRetryInterceptor } from '@temporalio/client';
import type { Interceptor } from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';

export class ClosableRetries {
  private closing = false;
  private lastRetryAt = 0;
  private readonly defaults = defaultGrpcRetryOptions();

  /** The interceptor for `Connection.connect({ interceptors: [...] })`. */
  readonly interceptor: Interceptor = makeGrpcRetryInterceptor({
    retryableDecider: (attempt, status) => !this.closing && this.defaults.retryableDecider(attempt, status),
    delayFunction: (attempt, status) => {
      const delay = this.defaults.delayFunction(attempt, status);
      this.lastRetryAt = Math.max(this.lastRetryAt, Date.now() + delay);
      return delay;
    },
  });

  /** Whether a retry has been scheduled on this connection. */
  get retried(): boolean {
    return this.lastRetryAt > 0;
  }

  /** No new retries from now on; resolves once every retry already scheduled has run (at most 5 s away). */
  async drain(): Promise<void> {
    this.closing = true;
    const wait = this.lastRetryAt - Date.now();
    // The retry's own call then fails fast on the closing server, and is not retried again.
    if (wait > 0) await sleep(wait + 20);
  }
}
