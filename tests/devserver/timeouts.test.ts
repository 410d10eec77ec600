import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startTestTemporal, uniqueTaskQueue, withWorker, type TestTemporal } from '../support/temporal';
import { createConformanceActivities, readLog } from './activities';
import {
  childOutcomeWorkflow,
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

test('a schedule-to-close timeout ends the retries: the last failure stands, with retry state TIMEOUT', async () => {
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
  // As in Temporal: no retry would start before the deadline, so the last attempt's failure is final.
  expect(cause.cause).toBeInstanceOf(ApplicationFailure);
  expect(cause.retryState).toBe('TIMEOUT');
  // Attempts every 200 ms within one second: more than one, fewer than ten.
  const attempts = readLog(dir, key).length;
  expect(attempts).toBeGreaterThan(1);
  expect(attempts).toBeLessThan(10);
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
