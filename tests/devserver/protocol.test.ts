/**
 * The server's side of the worker protocol, driven with raw WorkflowService calls so each step is
 * deterministic: buffered events, unhandled commands, workflow-task failures and transient retries, stale
 * tokens, and Temporal's error codes for malformed and unknown requests.
 */
import * as grpc from '@grpc/grpc-js';
import { temporal } from '@temporalio/proto';
import { randomUUID } from 'node:crypto';
import { externalTemporal, startTestTemporal, uniqueTaskQueue, type TestTemporal } from '../support/temporal';

const { EventType, CommandType, WorkflowTaskFailedCause, TaskQueueKind } = temporal.api.enums.v1;
type Service = TestTemporal['connection']['workflowService'];

let env: TestTemporal;
let service: Service;
beforeAll(async () => {
  env = await startTestTemporal();
  service = env.connection.workflowService;
});
afterAll(async () => env?.stop());

async function startRaw(taskQueue: string): Promise<{ workflowId: string; runId: string }> {
  const workflowId = `raw-${randomUUID()}`;
  const { runId } = await service.startWorkflowExecution({
    namespace: env.namespace,
    workflowId,
    workflowType: { name: 'rawWorkflow' },
    taskQueue: { name: taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    requestId: randomUUID(),
  });
  return { workflowId, runId: runId };
}

// A long poll needs a deadline, as the SDK always sets one: Temporal refuses a poll without it.
const poll = (taskQueue: string) =>
  env.connection.withDeadline(Date.now() + 10_000, () =>
    service.pollWorkflowTaskQueue({
      namespace: env.namespace,
      taskQueue: { name: taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
      identity: 'protocol-test',
    }),
  );

async function eventTypes(workflowId: string): Promise<number[]> {
  const { history } = await service.getWorkflowExecutionHistory({
    namespace: env.namespace,
    execution: { workflowId },
  });
  return history!.events!.map((e) => e.eventType!);
}

const complete = {
  commandType: CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,
  completeWorkflowExecutionCommandAttributes: {},
};

test('a signal during a running workflow task is buffered, and completing over it is rejected as unhandled', async () => {
  const taskQueue = uniqueTaskQueue();
  const { workflowId } = await startRaw(taskQueue);
  const task = await poll(taskQueue);
  expect(task.startedEventId?.toString()).toBe('3');
  await service.signalWorkflowExecution({
    namespace: env.namespace,
    workflowExecution: { workflowId },
    signalName: 'late',
    requestId: randomUUID(),
  });
  // Not written while the task runs.
  expect(await eventTypes(workflowId)).toHaveLength(3);
  await expect(
    service.respondWorkflowTaskCompleted({
      namespace: env.namespace,
      taskToken: task.taskToken,
      commands: [complete],
    }),
  ).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: 'UnhandledCommand' });
  const { history } = await service.getWorkflowExecutionHistory({
    namespace: env.namespace,
    execution: { workflowId },
  });
  const events = history!.events!;
  expect(events.slice(3).map((e) => e.eventType)).toEqual([
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
  ]);
  expect(events[3]!.workflowTaskFailedEventAttributes!.cause).toBe(
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND,
  );
  const next = await poll(taskQueue);
  expect(
    next.history!.events!.some((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'late'),
  ).toBe(true);
  await service.respondWorkflowTaskCompleted({
    namespace: env.namespace,
    taskToken: next.taskToken,
    commands: [complete],
  });
  expect((await eventTypes(workflowId)).at(-1)).toBe(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED);
});

test('a task-queue poll without a deadline is INVALID_ARGUMENT, and one with less than 2 s left FAILED_PRECONDITION', async () => {
  const request = (taskQueue: string) => ({
    namespace: env.namespace,
    taskQueue: { name: taskQueue, kind: TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    identity: 'protocol-test',
  });
  const taskQueue = uniqueTaskQueue();
  await expect(service.pollWorkflowTaskQueue(request(taskQueue))).rejects.toMatchObject({
    code: grpc.status.INVALID_ARGUMENT,
    details: 'Context timeout is not set.',
  });
  await expect(service.pollActivityTaskQueue(request(taskQueue))).rejects.toMatchObject({
    code: grpc.status.INVALID_ARGUMENT,
    details: 'Context timeout is not set.',
  });
  await expect(
    env.connection.withDeadline(Date.now() + 1000, () => service.pollWorkflowTaskQueue(request(taskQueue))),
  ).rejects.toMatchObject({
    code: grpc.status.FAILED_PRECONDITION,
    details: 'Context timeout is too short.',
  });
});

test('a failed workflow task is recorded once; retries are transient until one completes', async () => {
  const taskQueue = uniqueTaskQueue();
  const { workflowId } = await startRaw(taskQueue);
  const first = await poll(taskQueue);
  await service.respondWorkflowTaskFailed({
    namespace: env.namespace,
    taskToken: first.taskToken,
    cause: WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
    failure: { message: 'nondeterminism' },
  });
  // Started, scheduled, started, failed; then the retry's scheduled event, shown but not yet written.
  const transientScheduled = async () => {
    const { history } = await service.getWorkflowExecutionHistory({
      namespace: env.namespace,
      execution: { workflowId },
    });
    return history!.events!.map((e) => [e.eventType, e.workflowTaskScheduledEventAttributes?.attempt]);
  };
  expect(await transientScheduled()).toEqual([
    [EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, undefined],
    [EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, 1],
    [EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED, undefined],
    [EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED, undefined],
    [EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, 2],
  ]);
  const second = await poll(taskQueue);
  expect(second.attempt).toBe(2);
  expect(second.history!.events!.map((e) => Number(e.eventId))).toEqual([1, 2, 3, 4, 5, 6]);
  expect(await eventTypes(workflowId)).toHaveLength(6);
  // A second failure is not written: the retry only counts up.
  await service.respondWorkflowTaskFailed({
    namespace: env.namespace,
    taskToken: second.taskToken,
    cause: WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
    failure: { message: 'nondeterminism' },
  });
  expect((await transientScheduled()).slice(3)).toEqual([
    [EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED, undefined],
    [EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, 3],
  ]);
  const third = await poll(taskQueue);
  expect(third.attempt).toBe(3);
  await service.respondWorkflowTaskCompleted({
    namespace: env.namespace,
    taskToken: third.taskToken,
    commands: [complete],
  });
  expect((await eventTypes(workflowId)).slice(4)).toEqual([
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
  ]);
});

test('a retried workflow task completed with a bad command is refused and stays started, unrecorded', async () => {
  const taskQueue = uniqueTaskQueue();
  const { workflowId } = await startRaw(taskQueue);
  const first = await poll(taskQueue);
  await service.respondWorkflowTaskFailed({
    namespace: env.namespace,
    taskToken: first.taskToken,
    cause: WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
    failure: { message: 'nondeterminism' },
  });
  const second = await poll(taskQueue);
  expect(second.attempt).toBe(2);
  await expect(
    service.respondWorkflowTaskCompleted({
      namespace: env.namespace,
      taskToken: second.taskToken,
      commands: [{ commandType: CommandType.COMMAND_TYPE_START_TIMER, startTimerCommandAttributes: {} }],
    }),
  ).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
  // No second failure event: the retry's events are still the transient scheduled and started ones.
  expect(await eventTypes(workflowId)).toEqual([
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
  ]);
  const { pendingWorkflowTask } = await service.describeWorkflowExecution({
    namespace: env.namespace,
    execution: { workflowId },
  });
  expect(pendingWorkflowTask).toMatchObject({
    state: temporal.api.enums.v1.PendingWorkflowTaskState.PENDING_WORKFLOW_TASK_STATE_STARTED,
    attempt: 2,
  });
});

test('a stale task token is NOT_FOUND and a garbled one INVALID_ARGUMENT', async () => {
  const taskQueue = uniqueTaskQueue();
  await startRaw(taskQueue);
  const task = await poll(taskQueue);
  await service.respondWorkflowTaskCompleted({
    namespace: env.namespace,
    taskToken: task.taskToken,
    commands: [complete],
  });
  await expect(
    service.respondWorkflowTaskCompleted({
      namespace: env.namespace,
      taskToken: task.taskToken,
      commands: [complete],
    }),
  ).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  await expect(
    service.respondWorkflowTaskCompleted({
      namespace: env.namespace,
      taskToken: Buffer.from('garbage'),
      commands: [],
    }),
  ).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
});

test('a command with bad attributes fails the workflow task with its cause', async () => {
  const taskQueue = uniqueTaskQueue();
  const { workflowId } = await startRaw(taskQueue);
  const task = await poll(taskQueue);
  await expect(
    service.respondWorkflowTaskCompleted({
      namespace: env.namespace,
      taskToken: task.taskToken,
      commands: [{ commandType: CommandType.COMMAND_TYPE_START_TIMER, startTimerCommandAttributes: {} }],
    }),
  ).rejects.toMatchObject({
    code: grpc.status.INVALID_ARGUMENT,
    details: 'BadStartTimerAttributes: TimerId is not set on StartTimerCommand.',
  });
  const { history } = await service.getWorkflowExecutionHistory({
    namespace: env.namespace,
    execution: { workflowId },
  });
  expect(history!.events![3]!.workflowTaskFailedEventAttributes!.cause).toBe(
    WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_BAD_START_TIMER_ATTRIBUTES,
  );
});

describe('malformed and unknown requests', () => {
  let raw: grpc.Client;
  beforeAll(() => {
    raw = new grpc.Client(env.address, grpc.credentials.createInsecure());
  });
  afterAll(() => raw.close());

  const call = (method: string, body: Buffer) =>
    new Promise<grpc.ServiceError | undefined>((resolve) => {
      raw.makeUnaryRequest(
        `/temporal.api.workflowservice.v1.WorkflowService/${method}`,
        (b: Buffer) => b,
        (b: Buffer) => b,
        body,
        (error) => resolve(error ?? undefined),
      );
    });

  test.each([
    ['an unknown method', 'NoSuchMethod', Buffer.alloc(0), grpc.status.UNIMPLEMENTED],

    [
      'bytes that are not protobuf',
      'StartWorkflowExecution',
      Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]),
      grpc.status.INTERNAL,
    ],
  ])('%s gets its gRPC status and the server keeps serving', async (_name, method, body, code) => {
    const error = await call(method, body);
    expect(error?.code).toBe(code);
    await expect(service.getSystemInfo({})).resolves.toBeDefined();
  });

  // Embedded only: the real server offers schedules, so there is no method it lacks that the SDK knows.
  (externalTemporal ? test.skip : test)(
    'a method the embedded server does not offer (CreateSchedule) gets UNIMPLEMENTED and the server keeps serving (embedded only: the real server has schedules)',
    async () => {
      expect((await call('CreateSchedule', Buffer.alloc(0)))?.code).toBe(grpc.status.UNIMPLEMENTED);
      await expect(service.getSystemInfo({})).resolves.toBeDefined();
    },
  );

  test.each([
    [
      'a start without a workflow id',
      () =>
        service.startWorkflowExecution({
          namespace: env.namespace,
          workflowType: { name: 'x' },
          taskQueue: { name: 'q' },
        }),
      grpc.status.INVALID_ARGUMENT,
    ],
    [
      'a start in an unknown namespace',
      () =>
        service.startWorkflowExecution({
          namespace: 'no-such-namespace',
          workflowId: 'w',
          workflowType: { name: 'x' },
          taskQueue: { name: 'q' },
        }),
      grpc.status.NOT_FOUND,
    ],
    [
      'a signal to an unknown workflow',
      () =>
        service.signalWorkflowExecution({
          namespace: env.namespace,
          workflowExecution: { workflowId: 'nope' },
          signalName: 's',
        }),
      grpc.status.NOT_FOUND,
    ],
    [
      'a describe of an unknown namespace',
      () => service.describeNamespace({ namespace: 'no-such-namespace' }),
      grpc.status.NOT_FOUND,
    ],
    [
      'a history page token that is not one',
      () =>
        service.getWorkflowExecutionHistory({
          namespace: env.namespace,
          execution: { workflowId: 'nope' },
          nextPageToken: Buffer.from('x'),
        }),
      grpc.status.INVALID_ARGUMENT,
    ],
  ])("%s gets Temporal's error code", async (_name, request, code) => {
    await expect(request()).rejects.toMatchObject({ code });
    await expect(service.getSystemInfo({})).resolves.toBeDefined();
  });
});
