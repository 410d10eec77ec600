/**
 * Workflow Updates through the real SDK, and the server's side of the update protocol through raw calls: the
 * same expectations hold on the embedded server and on the real Temporal dev server, down to the history events.
 */
import {
  Connection,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  WorkflowUpdateStage,
  type WorkflowHandle,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import * as grpc from '@grpc/grpc-js';
import { temporal } from '@temporalio/proto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { startTestTemporal, uniqueTaskQueue, withWorker, type TestTemporal } from '../support/temporal';
import { createConformanceActivities } from './activities';
import {
  addItemUpdate,
  failItemUpdate,
  holdUpdate,
  itemsQuery,
  releaseSignal,
  unblockSignal,
  updatableWorkflow,
} from './workflows';

const { EventType: E, CommandType, TaskQueueKind } = temporal.api.enums.v1;
const dir = mkdtempSync(path.join(tmpdir(), 'labline-updates-'));
let env: TestTemporal;
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => env?.stop());

const worker = <T>(taskQueue: string, fn: () => Promise<T>) =>
  withWorker(env, { taskQueue, activities: createConformanceActivities(dir) }, fn);

/**
 * Starts the workflow and returns once its first workflow task has completed (a query is answered only then),
 * so that every update below goes out on a task of its own, on both servers alike.
 */
async function startUpdatable(taskQueue: string): Promise<WorkflowHandle<typeof updatableWorkflow>> {
  const handle = await env.client.workflow.start(updatableWorkflow, {
    taskQueue,
    workflowId: `updates-${randomUUID()}`,
  });
  await handle.query(itemsQuery);
  return handle;
}

async function eventTypes(handle: WorkflowHandle): Promise<temporal.api.enums.v1.EventType[]> {
  const history = await handle.fetchHistory();
  return history.events!.map((e) => e.eventType!);
}

async function updateFailure(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(WorkflowUpdateFailedError);
  const cause = (error as WorkflowUpdateFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

describe('through the SDK', () => {
  test('executeUpdate returns the handler value; history orders the update events as Temporal does', async () => {
    const taskQueue = uniqueTaskQueue();
    await worker(taskQueue, async () => {
      const handle = await startUpdatable(taskQueue);
      expect(await handle.executeUpdate(addItemUpdate, { args: ['a'] })).toBe(1);
      await updateFailure(handle.executeUpdate(addItemUpdate, { args: [''] }));
      await updateFailure(handle.executeUpdate(failItemUpdate, { args: ['no'] }));
      await handle.signal(unblockSignal, 'done');
      expect(await handle.result()).toEqual(['a']);
      // Each update on a task of its own: accepted and completed right after the task that ran it; the
      // rejected one left nothing; the signal ends the workflow.
      const task = [
        E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
        E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
      ];
      const update = [
        E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
        E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
      ];
      expect(await eventTypes(handle)).toEqual([
        E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
        ...task,
        ...task,
        ...update,
        ...task,
        ...update,
        E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
        ...task,
        E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
      ]);
      const history = await handle.fetchHistory();
      const accepted = history.events!.find((e) => e.workflowExecutionUpdateAcceptedEventAttributes)!;
      const completed = history.events!.find((e) => e.workflowExecutionUpdateCompletedEventAttributes)!;
      expect(accepted.workflowExecutionUpdateAcceptedEventAttributes!.acceptedRequest?.input?.name).toBe(
        'addItem',
      );
      expect(String(completed.workflowExecutionUpdateCompletedEventAttributes!.acceptedEventId)).toBe(
        String(accepted.eventId),
      );
    });
  });

  test('startUpdate returns once the update is accepted, and its handle gets the result once it completes', async () => {
    const taskQueue = uniqueTaskQueue();
    await worker(taskQueue, async () => {
      const handle = await startUpdatable(taskQueue);
      const hold = await handle.startUpdate(holdUpdate, {
        args: ['first'],
        waitForStage: WorkflowUpdateStage.ACCEPTED,
        updateId: 'hold-1',
      });
      const types = await eventTypes(handle);
      expect(types).toContain(E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED);
      expect(types).not.toContain(E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED);
      await handle.signal(releaseSignal);
      expect(await hold.result()).toBe('first released');
      // Another handle on the same update id, from the id alone.
      expect(await handle.getUpdateHandle<string>('hold-1').result()).toBe('first released');
      await handle.signal(unblockSignal, 'done');
      await handle.result();
    });
  });

  test('a validator rejection reaches the caller, writes nothing to history, and the workflow carries on', async () => {
    const taskQueue = uniqueTaskQueue();
    await worker(taskQueue, async () => {
      const handle = await startUpdatable(taskQueue);
      const before = await eventTypes(handle);
      const failure = await updateFailure(
        handle.executeUpdate(addItemUpdate, { args: [''], updateId: 'empty' }),
      );
      expect(failure.message).toBe('item must not be empty');
      expect(await eventTypes(handle)).toEqual(before);
      // A rejected update is not kept: the same id can be sent again, and is validated again.
      await updateFailure(handle.executeUpdate(addItemUpdate, { args: [''], updateId: 'empty' }));
      expect(await handle.executeUpdate(addItemUpdate, { args: ['kept'] })).toBe(1);
      expect(await handle.query(itemsQuery)).toEqual({ items: ['kept'], handled: 1 });
      await handle.signal(unblockSignal, 'done');
      expect(await handle.result()).toEqual(['kept']);
    });
  });

  test('an update that throws after acceptance completes with a failure outcome, in history', async () => {
    const taskQueue = uniqueTaskQueue();
    await worker(taskQueue, async () => {
      const handle = await startUpdatable(taskQueue);
      const failure = await updateFailure(handle.executeUpdate(failItemUpdate, { args: ['refused'] }));
      expect(failure.type).toBe('ItemRefused');
      expect(failure.message).toBe('refused');
      const history = await handle.fetchHistory();
      const completed = history.events!.find((e) => e.workflowExecutionUpdateCompletedEventAttributes);
      expect(completed?.workflowExecutionUpdateCompletedEventAttributes?.outcome?.failure?.message).toBe(
        'refused',
      );
      await handle.signal(unblockSignal, 'done');
      await handle.result();
    });
  });

  test('a repeated update id gets the first outcome, in flight or completed, and the handler runs once', async () => {
    const taskQueue = uniqueTaskQueue();
    await worker(taskQueue, async () => {
      const handle = await startUpdatable(taskQueue);
      expect(await handle.executeUpdate(addItemUpdate, { args: ['b'], updateId: 'dup' })).toBe(1);
      expect(await handle.executeUpdate(addItemUpdate, { args: ['c'], updateId: 'dup' })).toBe(1);
      const first = await handle.startUpdate(holdUpdate, {
        args: ['x'],
        waitForStage: WorkflowUpdateStage.ACCEPTED,
        updateId: 'held',
      });
      const second = await handle.startUpdate(holdUpdate, {
        args: ['y'],
        waitForStage: WorkflowUpdateStage.ACCEPTED,
        updateId: 'held',
      });
      await handle.signal(releaseSignal);
      expect(await first.result()).toBe('x released');
      expect(await second.result()).toBe('x released');
      expect(await handle.query(itemsQuery)).toEqual({ items: ['b'], handled: 2 });
      const types = await eventTypes(handle);
      expect(types.filter((t) => t === E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)).toHaveLength(2);
      await handle.signal(unblockSignal, 'done');
      await handle.result();
      // After the workflow closed, a recorded update id still answers with its outcome.
      expect(await handle.executeUpdate(addItemUpdate, { args: ['d'], updateId: 'dup' })).toBe(1);
    });
  });

  test('an update on a completed or an unknown workflow fails with WorkflowNotFoundError', async () => {
    const taskQueue = uniqueTaskQueue();
    await worker(taskQueue, async () => {
      const handle = await startUpdatable(taskQueue);
      await handle.signal(unblockSignal, 'done');
      await handle.result();
      await expect(handle.executeUpdate(addItemUpdate, { args: ['late'] })).rejects.toThrow(
        new WorkflowNotFoundError('workflow execution already completed', handle.workflowId, undefined),
      );
      await expect(
        env.client.workflow
          .getHandle(`missing-${randomUUID()}`)
          .executeUpdate(addItemUpdate, { args: ['x'] }),
      ).rejects.toBeInstanceOf(WorkflowNotFoundError);
    });
  });

  test('an accepted update still running when the workflow completes fails with AcceptedUpdateCompletedWorkflow', async () => {
    const taskQueue = uniqueTaskQueue();
    await worker(taskQueue, async () => {
      const handle = await startUpdatable(taskQueue);
      const hold = await handle.startUpdate(holdUpdate, {
        args: ['never'],
        waitForStage: WorkflowUpdateStage.ACCEPTED,
      });
      await handle.signal(unblockSignal, 'done');
      await handle.result();
      const failure = await updateFailure(hold.result());
      expect(failure.type).toBe('AcceptedUpdateCompletedWorkflow');
      expect(failure.message).toBe(
        'Workflow Update failed because the Workflow completed before the Update completed.',
      );
      // Nothing records it in history: the outcome comes from the accepted event of a closed run.
      expect(await eventTypes(handle)).not.toContain(E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED);
    });
  });

  test("an update with no worker polling fails on the caller's deadline, and is delivered once when a worker polls", async () => {
    const taskQueue = uniqueTaskQueue();
    const handle = await env.client.workflow.start(updatableWorkflow, {
      taskQueue,
      workflowId: `updates-${randomUUID()}`,
    });
    await expect(
      env.connection.withDeadline(Date.now() + 1500, () =>
        handle.executeUpdate(addItemUpdate, { args: ['patient'], updateId: 'waits' }),
      ),
    ).rejects.toBeInstanceOf(WorkflowUpdateRPCTimeoutOrCancelledError);
    await worker(taskQueue, async () => {
      expect(await handle.executeUpdate(addItemUpdate, { args: ['patient'], updateId: 'waits' })).toBe(1);
      expect(await handle.query(itemsQuery)).toEqual({ items: ['patient'], handled: 1 });
      await handle.signal(unblockSignal, 'done');
      await handle.result();
    });
  });

  test('the eleventh update in flight is refused with RESOURCE_EXHAUSTED, as Temporal limits it', async () => {
    const taskQueue = uniqueTaskQueue();
    // Without the SDK's retries, which would retry RESOURCE_EXHAUSTED.
    const connection = await Connection.connect({ address: env.address, interceptors: [] });
    try {
      await worker(taskQueue, async () => {
        const handle = await startUpdatable(taskQueue);
        for (let i = 0; i < 10; i++) {
          await handle.startUpdate(holdUpdate, {
            args: [`h${i}`],
            waitForStage: WorkflowUpdateStage.ACCEPTED,
          });
        }
        const request = {
          namespace: env.namespace,
          workflowExecution: { workflowId: handle.workflowId },
          waitPolicy: { lifecycleStage: 2 },
          request: { meta: { updateId: 'one-too-many' }, input: { name: 'hold', args: { payloads: [] } } },
        };
        await expect(connection.workflowService.updateWorkflowExecution(request)).rejects.toMatchObject({
          code: grpc.status.RESOURCE_EXHAUSTED,
          details: 'limit on number of concurrent in-flight updates has been reached (10)',
        });
        await handle.signal(releaseSignal);
        await handle.signal(unblockSignal, 'done');
        await handle.result();
      });
    } finally {
      await connection.close();
    }
  });
});

describe('the update protocol, driven with raw calls', () => {
  type Service = TestTemporal['connection']['workflowService'];
  type Completion = temporal.api.workflowservice.v1.IRespondWorkflowTaskCompletedResponse;
  let service: Service;
  beforeAll(() => {
    service = env.connection.workflowService;
  });

  type MessageType = { encode(message: object): { finish(): Uint8Array }; fromObject(value: object): object };
  const updateAny = (type: 'Acceptance' | 'Rejection' | 'Response', value: object) => {
    const message = temporal.api.update.v1[type] as unknown as MessageType;
    return {
      // The field names of google.protobuf.Any in @temporalio/proto.
      type_url: `type.googleapis.com/temporal.api.update.v1.${type}`,
      value: message.encode(message.fromObject(value)).finish(),
    };
  };

  /** A raw workflow whose first task has completed, and a poll on its queue. */
  async function rawWorkflow() {
    const taskQueue = uniqueTaskQueue();
    const workflowId = `raw-update-${randomUUID()}`;
    await service.startWorkflowExecution({
      namespace: env.namespace,
      workflowId,
      workflowType: { name: 'rawWorkflow' },
      taskQueue: { name: taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
      requestId: randomUUID(),
    });
    const poll = () =>
      env.connection.withDeadline(Date.now() + 10_000, () =>
        service.pollWorkflowTaskQueue({
          namespace: env.namespace,
          taskQueue: { name: taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
          identity: 'update-protocol-test',
        }),
      );
    const first = await poll();
    await service.respondWorkflowTaskCompleted({
      namespace: env.namespace,
      taskToken: first.taskToken,
      commands: [],
    });
    const history = async () =>
      (
        await service.getWorkflowExecutionHistory({ namespace: env.namespace, execution: { workflowId } })
      ).history!.events!.map((e) => e.eventType!);
    const update = (updateId: string) =>
      service.updateWorkflowExecution({
        namespace: env.namespace,
        workflowExecution: { workflowId },
        waitPolicy: { lifecycleStage: 3 },
        request: { meta: { updateId, identity: 'caller' }, input: { name: 'raw', args: { payloads: [] } } },
      });
    return { workflowId, poll, history, update };
  }

  test('an update goes out as a request message on a task whose events are not in history yet', async () => {
    const run = await rawWorkflow();
    const pending = run.update('u1');
    const task = await run.poll();
    // The task's scheduled and started events come after the last completed task, and are shown by history
    // reads, but they are not written: the history length stays at the four events.
    expect(task.history!.events!.map((e) => e.eventType)).toEqual([
      E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
      E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
      E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
      E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
      E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
      E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    ]);
    const described = await service.describeWorkflowExecution({
      namespace: env.namespace,
      execution: { workflowId: run.workflowId },
    });
    expect(String(described.workflowExecutionInfo!.historyLength)).toBe('4');
    expect(task.messages).toHaveLength(1);
    const request = task.messages[0]!;
    expect(request).toMatchObject({ id: 'u1/request', protocolInstanceId: 'u1' });
    expect(String(request.eventId)).toBe('5');
    expect(request.body?.type_url).toBe('type.googleapis.com/temporal.api.update.v1.Request');
    const decoded = temporal.api.update.v1.Request.decode(request.body!.value!);
    expect(decoded.meta?.updateId).toBe('u1');
    expect(decoded.input?.name).toBe('raw');

    // Accepted and completed: WorkflowTaskCompleted, then the events at the place of their commands, the
    // response (no command) after all commands.
    await service.respondWorkflowTaskCompleted({
      namespace: env.namespace,
      taskToken: task.taskToken,
      commands: [
        {
          commandType: CommandType.COMMAND_TYPE_RECORD_MARKER,
          recordMarkerCommandAttributes: { markerName: 'before' },
        },
        {
          commandType: CommandType.COMMAND_TYPE_PROTOCOL_MESSAGE,
          protocolMessageCommandAttributes: { messageId: 'u1/accept' },
        },
        {
          commandType: CommandType.COMMAND_TYPE_RECORD_MARKER,
          recordMarkerCommandAttributes: { markerName: 'after' },
        },
      ],
      messages: [
        {
          id: 'u1/accept',
          protocolInstanceId: 'u1',
          body: updateAny('Acceptance', {
            acceptedRequestMessageId: 'u1/request',
            acceptedRequestSequencingEventId: 5,
          }),
        },
        {
          id: 'u1/complete',
          protocolInstanceId: 'u1',
          body: updateAny('Response', { meta: { updateId: 'u1' }, outcome: { success: { payloads: [] } } }),
        },
      ],
    });
    const result = await pending;
    expect(result.stage).toBe(
      temporal.api.enums.v1.UpdateWorkflowExecutionLifecycleStage
        .UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_COMPLETED,
    );
    expect(result.outcome?.success).toBeTruthy();
    expect((await run.history()).slice(4)).toEqual([
      E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
      E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
      E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
      E.EVENT_TYPE_MARKER_RECORDED,
      E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED,
      E.EVENT_TYPE_MARKER_RECORDED,
      E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED,
    ]);
  });

  test('a task that only rejects is dropped: nothing written, the worker rolls back to the last completed task', async () => {
    const run = await rawWorkflow();
    const pending = run.update('no');
    const task = await run.poll();
    const response = await (service.respondWorkflowTaskCompleted({
      namespace: env.namespace,
      taskToken: task.taskToken,
      messages: [
        {
          id: 'no/reject',
          protocolInstanceId: 'no',
          body: updateAny('Rejection', {
            rejectedRequestMessageId: 'no/request',
            rejectedRequestSequencingEventId: 5,
            failure: { message: 'not now' },
          }),
        },
      ],
    }) as Promise<Completion>);
    expect(String(response.resetHistoryEventId)).toBe('3');
    expect((await pending).outcome?.failure?.message).toBe('not now');
    expect(await run.history()).toHaveLength(4);
    // A rejected update is forgotten: polling for it finds nothing.
    await expect(
      service.pollWorkflowExecutionUpdate({
        namespace: env.namespace,
        updateRef: { workflowExecution: { workflowId: run.workflowId }, updateId: 'no' },
        waitPolicy: { lifecycleStage: 3 },
      }),
    ).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: 'update "no" not found' });
  });

  test('an update the worker leaves unanswered is rejected by the server; a signal makes the task an ordinary one', async () => {
    const run = await rawWorkflow();
    const ignored = run.update('ignored');
    const ignoredTask = await run.poll();
    await service.respondWorkflowTaskCompleted({
      namespace: env.namespace,
      taskToken: ignoredTask.taskToken,
    });
    expect((await ignored).outcome?.failure?.applicationFailureInfo?.type).toBe('UnprocessedUpdate');
    expect(await run.history()).toHaveLength(4);

    const rejected = run.update('later');
    const task = await run.poll();
    await service.signalWorkflowExecution({
      namespace: env.namespace,
      workflowExecution: { workflowId: run.workflowId },
      signalName: 'meanwhile',
      requestId: randomUUID(),
    });
    await service.respondWorkflowTaskCompleted({
      namespace: env.namespace,
      taskToken: task.taskToken,
      messages: [
        {
          id: 'later/reject',
          protocolInstanceId: 'later',
          body: updateAny('Rejection', {
            rejectedRequestMessageId: 'later/request',
            rejectedRequestSequencingEventId: 5,
            failure: { message: 'no' },
          }),
        },
      ],
    });
    expect((await rejected).outcome?.failure?.message).toBe('no');
    // The signal wrote the task's events; the rejection still wrote nothing.
    expect((await run.history()).slice(4)).toEqual([
      E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
      E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
      E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
      E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
      E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    ]);
  });

  test('terminating the run aborts its updates; a running speculative task is then recorded as failed', async () => {
    const run = await rawWorkflow();
    const sent = run.update('sent');
    sent.catch(() => undefined); // checked below, once the run is terminated
    const task = await run.poll();
    expect(task.messages?.map((m) => m.protocolInstanceId)).toEqual(['sent']);
    await service.terminateWorkflowExecution({
      namespace: env.namespace,
      workflowExecution: { workflowId: run.workflowId },
      reason: 'enough',
    });
    await expect(sent).rejects.toMatchObject({
      code: grpc.status.NOT_FOUND,
      details: 'workflow update was aborted by closing workflow',
    });
    expect((await run.history()).slice(4)).toEqual([
      E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
      E.EVENT_TYPE_WORKFLOW_TASK_STARTED,
      E.EVENT_TYPE_WORKFLOW_TASK_FAILED,
      E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    ]);
  });

  test("malformed requests get Temporal's errors; a missing update id is filled in", async () => {
    const run = await rawWorkflow();
    const request = (inner: object) => ({
      namespace: env.namespace,
      workflowExecution: { workflowId: run.workflowId },
      request: inner,
    });
    await expect(service.updateWorkflowExecution(request({ input: { name: 'raw' } }))).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'Update meta is not set on request.',
    });
    await expect(
      service.updateWorkflowExecution(request({ meta: { updateId: 'x' }, input: {} })),
    ).rejects.toMatchObject({
      code: grpc.status.INVALID_ARGUMENT,
      details: 'Update name is not set on request.',
    });
    await expect(
      service.updateWorkflowExecution({
        ...request({ meta: { updateId: 'x' }, input: { name: 'raw' } }),
        waitPolicy: { lifecycleStage: 1 },
      }),
    ).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    // No update id: the server makes one up and the update goes out under it.
    const pending = service.updateWorkflowExecution(request({ meta: {}, input: { name: 'raw' } }));
    const task = await run.poll();
    const updateId = task.messages[0]!.protocolInstanceId!;
    expect(updateId).toMatch(/^[0-9a-f-]{36}$/);
    await service.respondWorkflowTaskCompleted({
      namespace: env.namespace,
      taskToken: task.taskToken,
      messages: [
        {
          id: `${updateId}/reject`,
          protocolInstanceId: updateId,
          body: updateAny('Rejection', { failure: { message: 'fine' } }),
        },
      ],
    });
    expect((await pending).updateRef?.updateId).toBe(updateId);
    await expect(
      service.pollWorkflowExecutionUpdate({
        namespace: env.namespace,
        updateRef: { workflowExecution: { workflowId: run.workflowId }, updateId: 'never-sent' },
      }),
    ).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: 'update "never-sent" not found' });
  });
});
