import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
} from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startTestTemporal, uniqueTaskQueue, withWorker, type TestTemporal } from '../support/temporal';
import { createConformanceActivities } from './activities';
import {
  cancelChildWorkflow,
  continueAsNewWorkflow,
  echoWorkflow,
  failingWorkflow,
  parentClosePolicyWorkflow,
  parentWorkflow,
  signalsAndTimerWorkflow,
  stateQuery,
  timerCancelWorkflow,
  unblockSignal,
  waitForSignalWorkflow,
} from './workflows';

const { EventType, WorkflowExecutionStatus } = temporal.api.enums.v1;
let env: TestTemporal;
const dir = mkdtempSync(path.join(tmpdir(), 'labline-conf-'));
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => env?.stop());

const worker = <T>(taskQueue: string, fn: () => Promise<T>) =>
  withWorker(env, { taskQueue, activities: createConformanceActivities(dir) }, fn);

test('signals, a timer and queries on a running and a closed workflow', async () => {
  const taskQueue = uniqueTaskQueue();
  await worker(taskQueue, async () => {
    const handle = await env.client.workflow.start(signalsAndTimerWorkflow, {
      taskQueue,
      workflowId: `signals-${taskQueue}`,
      args: [300, 2],
    });
    await handle.signal(unblockSignal, 'one');
    const running = await handle.query(stateQuery);
    expect(running.messages).toEqual(['one']);
    await handle.signal(unblockSignal, 'two');
    expect(await handle.result()).toEqual(['one', 'two']);
    const closed = await handle.query(stateQuery);
    expect(closed).toEqual({ messages: ['one', 'two'], stage: 'done' });
    const history = await handle.fetchHistory();
    const types = history.events!.map((e) => e.eventType);
    expect(types).toContain(EventType.EVENT_TYPE_TIMER_STARTED);
    expect(types).toContain(EventType.EVENT_TYPE_TIMER_FIRED);
    expect(types.filter((t) => t === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)).toHaveLength(2);
    // Event ids run 1..n without gaps.
    expect(history.events!.map((e) => Number(e.eventId))).toEqual(history.events!.map((_e, i) => i + 1));
  });
});

test('a cancelled timer does not fire', async () => {
  const taskQueue = uniqueTaskQueue();
  const result = await worker(taskQueue, () =>
    env.client.workflow.execute(timerCancelWorkflow, { taskQueue, workflowId: `timer-${taskQueue}` }),
  );
  expect(result).toBe('cancelled');
});

test('signal-with-start starts a workflow once and signals the running one after', async () => {
  const taskQueue = uniqueTaskQueue();
  const workflowId = `sws-${taskQueue}`;
  await worker(taskQueue, async () => {
    const first = await env.client.workflow.signalWithStart(signalsAndTimerWorkflow, {
      taskQueue,
      workflowId,
      args: [10, 2],
      signal: unblockSignal,
      signalArgs: ['a'],
    });
    const second = await env.client.workflow.signalWithStart(signalsAndTimerWorkflow, {
      taskQueue,
      workflowId,
      args: [10, 2],
      signal: unblockSignal,
      signalArgs: ['b'],
    });
    expect(second.signaledRunId).toBe(first.signaledRunId);
    expect(await first.result()).toEqual(['a', 'b']);
  });
});

test('starting a running workflow id fails with AlreadyStarted; a closed one follows the reuse policy', async () => {
  const taskQueue = uniqueTaskQueue();
  const workflowId = `dup-${taskQueue}`;
  await worker(taskQueue, async () => {
    const handle = await env.client.workflow.start(waitForSignalWorkflow, { taskQueue, workflowId });
    await expect(
      env.client.workflow.start(waitForSignalWorkflow, { taskQueue, workflowId }),
    ).rejects.toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
    const existing = await env.client.workflow.start(waitForSignalWorkflow, {
      taskQueue,
      workflowId,
      workflowIdConflictPolicy: 'USE_EXISTING',
    });
    expect(existing.firstExecutionRunId).toBe(handle.firstExecutionRunId);
    await handle.signal(unblockSignal, 'done');
    await handle.result();
    await expect(
      env.client.workflow.start(waitForSignalWorkflow, {
        taskQueue,
        workflowId,
        workflowIdReusePolicy: 'REJECT_DUPLICATE',
      }),
    ).rejects.toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
    await expect(
      env.client.workflow.start(waitForSignalWorkflow, {
        taskQueue,
        workflowId,
        workflowIdReusePolicy: 'ALLOW_DUPLICATE_FAILED_ONLY',
      }),
    ).rejects.toBeInstanceOf(WorkflowExecutionAlreadyStartedError);
    const again = await env.client.workflow.start(waitForSignalWorkflow, { taskQueue, workflowId });
    expect(again.firstExecutionRunId).not.toBe(handle.firstExecutionRunId);
    await again.terminate('test over');
  });
});

test('the same start request id is answered with the first run instead of a duplicate', async () => {
  const taskQueue = uniqueTaskQueue();
  const request = {
    namespace: env.namespace,
    workflowId: `dedupe-${taskQueue}`,
    workflowType: { name: 'waitForSignalWorkflow' },
    taskQueue: { name: taskQueue },
    requestId: `req-${taskQueue}`,
  };
  const first = await env.connection.workflowService.startWorkflowExecution(request);
  const second = await env.connection.workflowService.startWorkflowExecution(request);
  expect(second.runId).toBe(first.runId);
  await env.client.workflow.getHandle(request.workflowId).terminate();
});

test('terminate and cancel close the workflow with their status; signals after close are refused', async () => {
  const taskQueue = uniqueTaskQueue();
  await worker(taskQueue, async () => {
    const terminated = await env.client.workflow.start(waitForSignalWorkflow, {
      taskQueue,
      workflowId: `term-${taskQueue}`,
    });
    await terminated.terminate('because');
    await expect(terminated.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    expect((await terminated.describe()).status.name).toBe('TERMINATED');
    await expect(terminated.signal(unblockSignal, 'late')).rejects.toThrow(/already completed/);

    const cancelled = await env.client.workflow.start(waitForSignalWorkflow, {
      taskQueue,
      workflowId: `cancel-${taskQueue}`,
    });
    await cancelled.cancel();
    await expect(cancelled.result()).rejects.toBeInstanceOf(WorkflowFailedError);
    expect((await cancelled.describe()).status.name).toBe('CANCELLED');
  });
});

test('a workflow that throws fails with its error', async () => {
  const taskQueue = uniqueTaskQueue();
  const error = await worker(taskQueue, () =>
    env.client.workflow
      .execute(failingWorkflow, { taskQueue, workflowId: `fail-${taskQueue}`, args: ['boom'] })
      .catch((e: unknown) => e),
  );
  expect(error).toBeInstanceOf(WorkflowFailedError);
  expect((error as WorkflowFailedError).cause?.message).toBe('boom');
});

test('a parent with three children reports each outcome, one of them failed', async () => {
  const taskQueue = uniqueTaskQueue();
  const workflowId = `parent-${taskQueue}`;
  const result = await worker(taskQueue, () =>
    env.client.workflow.execute(parentWorkflow, { taskQueue, workflowId }),
  );
  expect(result).toEqual(['ok:10', 'failed:child 2 failed on purpose', 'ok:30']);
  const child = await env.client.workflow.getHandle(`${workflowId}-child-1`).describe();
  expect(child.parentExecution?.workflowId).toBe(workflowId);
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  const types = history.events!.map((e) => e.eventType);
  expect(types.filter((t) => t === EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED)).toHaveLength(3);
  expect(types.filter((t) => t === EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED)).toHaveLength(2);
  expect(types.filter((t) => t === EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED)).toHaveLength(1);
});

test.each([
  ['TERMINATE', 'TERMINATED'],
  ['REQUEST_CANCEL', 'CANCELLED'],
  ['ABANDON', 'RUNNING'],
] as const)('parent-close policy %s leaves the child %s', async (policy, childStatus) => {
  const taskQueue = uniqueTaskQueue();
  const workflowId = `pcp-${taskQueue}`;
  await worker(taskQueue, async () => {
    const childId = await env.client.workflow.execute(parentClosePolicyWorkflow, {
      taskQueue,
      workflowId,
      args: [policy],
    });
    const child = env.client.workflow.getHandle(childId);
    // The policy is applied as the parent closes; cancellation then needs a workflow task of the child.
    for (let i = 0; i < 100 && (await child.describe()).status.name !== childStatus; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await child.describe()).status.name).toBe(childStatus);
    if (childStatus === 'RUNNING') await child.terminate();
  });
});

test('a parent cancels its child', async () => {
  const taskQueue = uniqueTaskQueue();
  const result = await worker(taskQueue, () =>
    env.client.workflow.execute(cancelChildWorkflow, { taskQueue, workflowId: `cc-${taskQueue}` }),
  );
  expect(result).toBe('cancelled');
});

test('continue-as-new three times, and result() on the first run returns the final result', async () => {
  const taskQueue = uniqueTaskQueue();
  const workflowId = `can-${taskQueue}`;
  await worker(taskQueue, async () => {
    const handle = await env.client.workflow.start(continueAsNewWorkflow, {
      taskQueue,
      workflowId,
      args: [3],
    });
    const firstRun = env.client.workflow.getHandle(workflowId, handle.firstExecutionRunId);
    const trail = await firstRun.result();
    expect(trail).toHaveLength(4);
    expect(trail[0]).toBe(handle.firstExecutionRunId);
    expect(new Set(trail).size).toBe(4);
    const first = await firstRun.describe();
    expect(first.raw.workflowExecutionInfo?.status).toBe(
      WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW,
    );
    const last = await env.client.workflow.getHandle(workflowId).describe();
    expect(last.runId).toBe(trail[3]);
    expect(last.status.name).toBe('COMPLETED');
  });
});

test('describe and history of an unknown workflow are NOT_FOUND', async () => {
  await expect(env.client.workflow.getHandle('no-such-workflow').describe()).rejects.toBeInstanceOf(
    WorkflowNotFoundError,
  );
  await expect(env.client.workflow.getHandle('no-such-workflow').fetchHistory()).rejects.toThrow();
});

test('history is paged and ends without a token once complete', async () => {
  const taskQueue = uniqueTaskQueue();
  const workflowId = `paged-${taskQueue}`;
  await worker(taskQueue, () =>
    env.client.workflow.execute(echoWorkflow, { taskQueue, workflowId, args: ['x'] }),
  );
  const all = await env.connection.workflowService.getWorkflowExecutionHistory({
    namespace: env.namespace,
    execution: { workflowId },
  });
  const events = all.history!.events!;
  const collected: number[] = [];
  let token: Uint8Array | undefined;
  for (let page = 0; page < 20; page++) {
    const response = await env.connection.workflowService.getWorkflowExecutionHistory({
      namespace: env.namespace,
      execution: { workflowId },
      maximumPageSize: 2,
      nextPageToken: token,
    });
    collected.push(...response.history!.events!.map((e) => Number(e.eventId)));
    token = response.nextPageToken?.length ? response.nextPageToken : undefined;
    if (!token) break;
  }
  expect(collected).toEqual(events.map((e) => Number(e.eventId)));
});
