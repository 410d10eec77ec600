/** Activities for the conformance suite; their side effects go to files so a test can count executions. */
import { Context, CancelledFailure } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

export function createConformanceActivities(dir: string) {
  const attempts = new Map<string, number[]>();
  const record = (key: string, line: string) => appendFileSync(path.join(dir, `${key}.log`), `${line}\n`);
  return {
    async echo(value: string): Promise<string> {
      return `echo:${value}`;
    },
    async flaky(key: string, failures: number, nonRetryable: boolean): Promise<number> {
      const { attempt } = Context.current().info;
      attempts.set(key, [...(attempts.get(key) ?? []), Date.now()]);
      record(key, `attempt ${attempt} at ${Date.now()}`);
      if (nonRetryable) throw ApplicationFailure.create({ message: 'fatal', type: 'Fatal' });
      if (attempt <= failures)
        throw ApplicationFailure.create({ message: `failure ${attempt}`, type: 'Transient' });
      return attempt;
    },
    async heartbeatThenHang(key: string): Promise<unknown> {
      const ctx = Context.current();
      const previous: unknown = ctx.info.heartbeatDetails;
      record(key, `attempt ${ctx.info.attempt} details ${JSON.stringify(previous ?? null)}`);
      if (ctx.info.attempt === 1) {
        ctx.heartbeat({ progress: 42 });
        // Hang without heartbeating until the heartbeat timeout cancels this attempt.
        await ctx.cancelled.catch(() => undefined);
        return 'hung';
      }
      return previous;
    },
    async failOnceThenHang(key: string): Promise<void> {
      const ctx = Context.current();
      record(key, `attempt ${ctx.info.attempt}`);
      if (ctx.info.attempt === 1)
        throw ApplicationFailure.create({ message: 'failure 1', type: 'Transient' });
      // Later attempts outlive the activity's schedule-to-close deadline.
      await ctx.cancelled.catch(() => undefined);
    },
    async slowFirstAttempt(key: string): Promise<number> {
      const ctx = Context.current();
      record(key, `attempt ${ctx.info.attempt}`);
      // The first attempt outlives its start-to-close timeout; the server retries it.
      if (ctx.info.attempt === 1) await ctx.cancelled.catch(() => undefined);
      return ctx.info.attempt;
    },
    async recordStep(key: string, step: string): Promise<string> {
      record(key, step);
      return step;
    },
    async waitForCancel(key: string): Promise<void> {
      const ctx = Context.current();
      for (let i = 0; i < 300; i++) {
        ctx.heartbeat(i);
        try {
          await Promise.race([ctx.cancelled, ctx.sleep(100)]);
        } catch (error) {
          if (error instanceof CancelledFailure) {
            record(key, 'cancelled');
            throw error;
          }
          throw error;
        }
      }
    },
  };
}

export type ConformanceActivities = ReturnType<typeof createConformanceActivities>;

export function readLog(dir: string, key: string): string[] {
  const file = path.join(dir, `${key}.log`);
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
}
