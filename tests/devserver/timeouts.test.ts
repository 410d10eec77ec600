import { ActivityFailure, ApplicationFailure, TimeoutFailure, WorkflowFailedError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startTestTemporal, uniqueTaskQueue, withWorker, type TestTemporal } from '../support/temporal';
import { createConformanceActivities, readLog } from './activities';
import {
  childOutcomeWorkflow,
  retryPastDeadlineWorkflow,
  scheduleToCloseWorkflow,
  startToCloseWorkflow,
  unblockSignal,
  waitForSignalWorkflow,
} from './workflows';

const { EventType } = temporal.api.enums.v1;
let env: TestTemporal;
const dir = mkdtempSync(path.join(tmpdir(), 'labline-timeouts-'));
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => env?.stop());

const worker = <T>(taskQueue: string, fn: () => Promise<T>) =>
  withWorker(env, { taskQueue, activities: createConformanceActivities(dir) }, fn);

test('a start-to-close timeout fails the attempt and the next attempt runs', async () => {
  const taskQueue = uniqueTaskQueue();
  const key = `s2c-${taskQueue}`;
  const attempt = await worker(taskQueue, () =>
    env.client.workflow.execute(startToCloseWorkflow, { taskQueue, workflowId: key, args: [key] }),
  );
  expect(attempt).toBe(2);
  expect(readLog(dir, key)).toEqual(['attempt 1', 'attempt 2']);
});

test('a failed attempt whose retry would start after the schedule-to-close deadline is final: its failure stands, with retry state TIMEOUT', async () => {
  const taskQueue = uniqueTaskQueue();
  const key = `retrypast-${taskQueue}`;
  const error = await worker(taskQueue, () =>
    env.client.workflow
      .execute(retryPastDeadlineWorkflow, { taskQueue, workflowId: key, args: [key] })
      .catch((e: unknown) => e),
  );
  expect(error).toBeInstanceOf(WorkflowFailedError);
  const cause = (error as WorkflowFailedError).cause as ActivityFailure;
  expect(cause).toBeInstanceOf(ActivityFailure);
  expect(cause.retryState).toBe('TIMEOUT');
  expect(cause.cause).toBeInstanceOf(ApplicationFailure);
  expect(cause.cause?.message).toBe('failure 1');
  expect(readLog(dir, key)).toHaveLength(1);
  const events = (await env.client.workflow.getHandle(key).fetchHistory()).events!;
  expect(events.some((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED)).toBe(true);
});

test('the schedule-to-close deadline reached during a retry ends the activity timed out, with the last failure as cause', async () => {
  const taskQueue = uniqueTaskQueue();
  const key = `sched2close-${taskQueue}`;
  const error = await worker(taskQueue, () =>
    env.client.workflow
      .execute(scheduleToCloseWorkflow, { taskQueue, workflowId: key, args: [key] })
      .catch((e: unknown) => e),
  );
  expect(error).toBeInstanceOf(WorkflowFailedError);
  const cause = (error as WorkflowFailedError).cause as ActivityFailure;
  expect(cause).toBeInstanceOf(ActivityFailure);
  expect(cause.retryState).toBe('TIMEOUT');
  // Temporal's wording and type for a deadline that leaves no time for another attempt.
  const timeout = cause.cause as TimeoutFailure;
  expect(timeout).toBeInstanceOf(TimeoutFailure);
  expect(timeout.timeoutType).toBe('SCHEDULE_TO_CLOSE');
  expect(timeout.message).toBe(
    'Not enough time to schedule next retry before activity ScheduleToClose timeout, giving up retrying',
  );
  // The history keeps the last attempt's failure as the timeout's cause (the SDK does not pass it on).
  const events = (await env.client.workflow.getHandle(key).fetchHistory()).events!;
  const timedOut = events.find((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT);
  expect(timedOut?.activityTaskTimedOutEventAttributes?.failure?.cause?.message).toBe('failure 1');
});

test('a run timeout closes the workflow as timed out', async () => {
  const taskQueue = uniqueTaskQueue();
  const workflowId = `runtimeout-${taskQueue}`;
  await worker(taskQueue, async () => {
    const handle = await env.client.workflow.start(waitForSignalWorkflow, {
      taskQueue,
      workflowId,
      workflowRunTimeout: '1s',
    });
    await expect(handle.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    expect((await handle.describe()).status.name).toBe('TIMED_OUT');
  });
});

test('a child terminated from outside is reported to its parent as terminated', async () => {
  const taskQueue = uniqueTaskQueue();
  const workflowId = `childterm-${taskQueue}`;
  const outcome = await worker(taskQueue, async () => {
    const parent = await env.client.workflow.start(childOutcomeWorkflow, { taskQueue, workflowId });
    const child = env.client.workflow.getHandle(`${workflowId}-child`);
    for (let i = 0; i < 100; i++) {
      const running = await child
        .describe()
        .then((d) => d.status.name === 'RUNNING')
        .catch(() => false);
      if (running) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await child.terminate('from the test');
    return parent.result();
  });
  expect(outcome).toBe('ChildWorkflowFailure: TerminatedFailure');
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  expect(
    history.events!.some((e) => e.eventType === EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED),
  ).toBe(true);
});

test('a query with reject condition NOT_OPEN on a closed workflow is rejected without a worker', async () => {
  const taskQueue = uniqueTaskQueue();
  const workflowId = `reject-${taskQueue}`;
  await worker(taskQueue, async () => {
    const handle = await env.client.workflow.start(waitForSignalWorkflow, { taskQueue, workflowId });
    await handle.signal(unblockSignal, 'done');
    await handle.result();
  });
  const response = await env.connection.workflowService.queryWorkflow({
    namespace: env.namespace,
    execution: { workflowId },
    query: { queryType: 'state' },
    queryRejectCondition: temporal.api.enums.v1.QueryRejectCondition.QUERY_REJECT_CONDITION_NOT_OPEN,
  });
  expect(response.queryRejected?.status).toBe(
    temporal.api.enums.v1.WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED,
  );
});
