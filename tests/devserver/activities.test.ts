import { ActivityFailure, ApplicationFailure, TimeoutFailure, WorkflowFailedError } from '@temporalio/client';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startTestTemporal, uniqueTaskQueue, withWorker, type TestTemporal } from '../support/temporal';
import { createConformanceActivities, readLog } from './activities';
import { cancellableActivityWorkflow, flakyWorkflow, heartbeatWorkflow } from './workflows';

let env: TestTemporal;
const dir = mkdtempSync(path.join(tmpdir(), 'labline-conf-'));
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => env?.stop());

const attemptTimes = (key: string) => readLog(dir, key).map((line) => Number(line.split(' at ')[1]));

test('a retryable failure is retried with the configured backoff until the activity succeeds', async () => {
  const taskQueue = uniqueTaskQueue();
  const key = `flaky-${taskQueue}`;
  const attempt = await withWorker(env, { taskQueue, activities: createConformanceActivities(dir) }, () =>
    env.client.workflow.execute(flakyWorkflow, { taskQueue, workflowId: key, args: [key, 2] }),
  );
  expect(attempt).toBe(3);
  const times = attemptTimes(key);
  expect(times).toHaveLength(3);
  // initialInterval 200 ms, coefficient 2: at least 200 ms, then at least 400 ms between attempts.
  expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(190);
  expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(390);
  const history = await env.client.workflow.getHandle(key).fetchHistory();
  const started = history.events!.filter((e) => e.activityTaskStartedEventAttributes);
  // Retries add no events: one started event, with the attempt that succeeded.
  expect(started).toHaveLength(1);
  expect(started[0]!.activityTaskStartedEventAttributes!.attempt).toBe(3);
});

test('a non-retryable error type stops at the first attempt', async () => {
  const taskQueue = uniqueTaskQueue();
  const key = `fatal-${taskQueue}`;
  const error = await withWorker(env, { taskQueue, activities: createConformanceActivities(dir) }, () =>
    env.client.workflow
      .execute(flakyWorkflow, { taskQueue, workflowId: key, args: [key, 0, true] })
      .catch((e: unknown) => e),
  );
  expect(error).toBeInstanceOf(WorkflowFailedError);
  const cause = (error as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ActivityFailure);
  expect((cause as ActivityFailure).cause).toBeInstanceOf(ApplicationFailure);
  expect(((cause as ActivityFailure).cause as ApplicationFailure).type).toBe('Fatal');
  expect(readLog(dir, key)).toHaveLength(1);
});

test('the maximum attempts end retries with the last failure', async () => {
  const taskQueue = uniqueTaskQueue();
  const key = `exhausted-${taskQueue}`;
  const error = await withWorker(env, { taskQueue, activities: createConformanceActivities(dir) }, () =>
    env.client.workflow
      .execute(flakyWorkflow, { taskQueue, workflowId: key, args: [key, 99] })
      .catch((e: unknown) => e),
  );
  expect(error).toBeInstanceOf(WorkflowFailedError);
  expect(readLog(dir, key)).toHaveLength(5);
  const history = await env.client.workflow.getHandle(key).fetchHistory();
  const failed = history.events!.find((e) => e.activityTaskFailedEventAttributes)!;
  expect(failed.activityTaskFailedEventAttributes!.failure!.message).toBe('failure 5');
});

test('a heartbeat timeout retries the attempt and the next attempt reads the last heartbeat details', async () => {
  const taskQueue = uniqueTaskQueue();
  const key = `heartbeat-${taskQueue}`;
  const result = await withWorker(env, { taskQueue, activities: createConformanceActivities(dir) }, () =>
    env.client.workflow.execute(heartbeatWorkflow, { taskQueue, workflowId: key, args: [key] }),
  );
  expect(result).toEqual({ progress: 42 });
  expect(readLog(dir, key)).toEqual(['attempt 1 details null', 'attempt 2 details {"progress":42}']);
});

test('cancelling a workflow reaches its running activity through the heartbeat response', async () => {
  const taskQueue = uniqueTaskQueue();
  const key = `cancel-${taskQueue}`;
  const outcome = await withWorker(
    env,
    { taskQueue, activities: createConformanceActivities(dir) },
    async () => {
      const handle = await env.client.workflow.start(cancellableActivityWorkflow, {
        taskQueue,
        workflowId: key,
        args: [key],
      });
      // Wait (bounded) until the activity has started heartbeating, then cancel the workflow.
      for (let i = 0; i < 100; i++) {
        const { raw } = await handle.describe();
        if (raw.pendingActivities?.[0]?.lastHeartbeatTime) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await handle.cancel();
      return handle.result();
    },
  );
  expect(outcome).toBe('cancelled');
  expect(readLog(dir, key)).toEqual(['cancelled']);
});

test('an activity nobody polls for fails with a schedule-to-start timeout', async () => {
  const taskQueue = uniqueTaskQueue();
  const error = await withWorker(env, { taskQueue, activities: createConformanceActivities(dir) }, () =>
    env.client.workflow
      .execute('scheduleToStartWorkflow', {
        taskQueue,
        workflowId: `s2s-${taskQueue}`,
        args: [uniqueTaskQueue('nobody')],
      })
      .catch((e: unknown) => e),
  );
  expect(error).toBeInstanceOf(WorkflowFailedError);
  const cause = (error as WorkflowFailedError).cause as ActivityFailure;
  expect(cause.cause).toBeInstanceOf(TimeoutFailure);
  expect((cause.cause as TimeoutFailure).timeoutType).toBe('SCHEDULE_TO_START');
});
