/**
 * Workflows the dev-server conformance suite drives through the real SDK. Each exercises one part of the
 * WorkflowService the way Labline's own workflows use it.
 */
import {
  ApplicationFailure,
  CancellationScope,
  ParentClosePolicy,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  defineUpdate,
  executeChild,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ConformanceActivities } from './activities';

export const unblockSignal = defineSignal<[string]>('unblock');
export const stateQuery = defineQuery<{ messages: string[]; stage: string }>('state');

export async function echoWorkflow(value: string): Promise<string> {
  const { echo } = proxyActivities<ConformanceActivities>({ startToCloseTimeout: '10s' });
  return await echo(value);
}

/** An activity that fails with a retryable error a given number of times. */
export async function flakyWorkflow(key: string, failures: number, nonRetryable = false): Promise<number> {
  const { flaky } = proxyActivities<ConformanceActivities>({
    startToCloseTimeout: '10s',
    retry: {
      initialInterval: '200ms',
      backoffCoefficient: 2,
      maximumAttempts: 5,
      nonRetryableErrorTypes: ['Fatal'],
    },
  });
  return await flaky(key, failures, nonRetryable);
}

/** An activity that heartbeats and then hangs on its first attempt, so the heartbeat timeout fires. */
export async function heartbeatWorkflow(key: string): Promise<unknown> {
  const { heartbeatThenHang } = proxyActivities<ConformanceActivities>({
    startToCloseTimeout: '30s',
    heartbeatTimeout: '1s',
    retry: { initialInterval: '100ms', maximumAttempts: 3 },
  });
  return await heartbeatThenHang(key);
}

/** Waits for signals and a timer, answering queries on the way. */
export async function signalsAndTimerWorkflow(timerMs: number, expected: number): Promise<string[]> {
  const messages: string[] = [];
  let stage = 'waiting';
  setHandler(unblockSignal, (message) => void messages.push(message));
  setHandler(stateQuery, () => ({ messages, stage }));
  await sleep(timerMs);
  stage = 'timer fired';
  await condition(() => messages.length >= expected);
  stage = 'done';
  return messages;
}

/** Waits for one signal, forever if need be. */
export async function waitForSignalWorkflow(): Promise<string> {
  let message: string | undefined;
  setHandler(unblockSignal, (m) => void (message = m));
  setHandler(stateQuery, () => ({ messages: message ? [message] : [], stage: 'waiting' }));
  await condition(() => message !== undefined);
  return message!;
}

/** Runs two activities in sequence: the first completes before a worker crash, the second after. */
export async function twoStepWorkflow(key: string): Promise<string[]> {
  const { recordStep } = proxyActivities<ConformanceActivities>({
    startToCloseTimeout: '20s',
    retry: { initialInterval: '200ms' },
  });
  const first = await recordStep(key, 'first');
  let go = false;
  setHandler(unblockSignal, () => void (go = true));
  await condition(() => go);
  const second = await recordStep(key, 'second');
  return [first, second];
}

export async function childWorkflow(n: number, fail: boolean): Promise<number> {
  if (fail) throw ApplicationFailure.nonRetryable(`child ${n} failed on purpose`, 'ChildFailure');
  await sleep(10);
  return n * 10;
}

/** Three children, one failing; reports each outcome. */
export async function parentWorkflow(): Promise<string[]> {
  const results = await Promise.allSettled(
    [1, 2, 3].map((n) =>
      executeChild(childWorkflow, {
        args: [n, n === 2],
        workflowId: `${workflowInfo().workflowId}-child-${n}`,
      }),
    ),
  );
  return results.map((r) =>
    r.status === 'fulfilled'
      ? `ok:${r.value}`
      : `failed:${((r.reason as Error).cause as Error | undefined)?.message}`,
  );
}

/** A parent that starts a long child and completes, leaving the child to its parent-close policy. */
export async function parentClosePolicyWorkflow(
  policy: 'TERMINATE' | 'ABANDON' | 'REQUEST_CANCEL',
): Promise<string> {
  const child = await startChild(waitForSignalWorkflow, {
    workflowId: `${workflowInfo().workflowId}-child`,
    parentClosePolicy: ParentClosePolicy[`PARENT_CLOSE_POLICY_${policy}` as keyof typeof ParentClosePolicy],
  });
  return child.workflowId;
}

/** A child that is cancelled by its parent. */
export async function cancelChildWorkflow(): Promise<string> {
  try {
    await CancellationScope.cancellable(async () => {
      const child = await startChild(waitForSignalWorkflow, {
        workflowId: `${workflowInfo().workflowId}-child`,
      });
      CancellationScope.current().cancel();
      await child.result();
    });
    return 'not cancelled';
  } catch (error) {
    return isCancellation(error) ? 'cancelled' : `other: ${(error as Error).message}`;
  }
}

export async function continueAsNewWorkflow(remaining: number, trail: string[] = []): Promise<string[]> {
  const next = [...trail, workflowInfo().runId];
  if (remaining > 0) await continueAsNew<typeof continueAsNewWorkflow>(remaining - 1, next);
  return next;
}

/** Upserts typed search attributes, then waits for a signal. */
export async function searchAttributesWorkflow(stage: string): Promise<void> {
  upsertSearchAttributes({ TestKeyword: [stage], TestInt: [stage.length] });
  let done = false;
  setHandler(unblockSignal, () => void (done = true));
  await condition(() => done);
}

/** Waits on a cancellable activity; used to check cancellation reaches the activity. */
export async function cancellableActivityWorkflow(key: string): Promise<string> {
  const { waitForCancel } = proxyActivities<ConformanceActivities>({
    startToCloseTimeout: '30s',
    heartbeatTimeout: '2s',
    cancellationType: 'WAIT_CANCELLATION_COMPLETED',
  });
  try {
    await waitForCancel(key);
    return 'completed';
  } catch (error) {
    return isCancellation(error) ? 'cancelled' : `other: ${(error as Error).message}`;
  }
}

/** Starts a timer and cancels it before it fires, then fires a short one. */
export async function timerCancelWorkflow(): Promise<string> {
  const scope = new CancellationScope();
  const long = scope.run(() => sleep(60_000));
  scope.cancel();
  const outcome = await long.then(
    () => 'fired',
    (error) => (isCancellation(error) ? 'cancelled' : 'error'),
  );
  await sleep(50);
  return outcome;
}

/** A workflow that fails with a non-retryable application error. */
export async function failingWorkflow(message: string): Promise<void> {
  throw ApplicationFailure.nonRetryable(message, 'Expected');
}

/** Schedules an activity on a queue no worker polls, with a short schedule-to-start timeout. */
export async function scheduleToStartWorkflow(queue: string): Promise<string> {
  const { echo } = proxyActivities<ConformanceActivities>({
    taskQueue: queue,
    scheduleToStartTimeout: '500ms',
    startToCloseTimeout: '5s',
  });
  return await echo('never');
}

/** Upserts the given search attributes, sets current details, then waits for a signal. */
export async function visibilityWorkflow(upsert: Record<string, string[]>): Promise<void> {
  if (Object.keys(upsert).length) upsertSearchAttributes(upsert);
  setCurrentDetails(`waiting for unblock; upserted ${Object.keys(upsert).join(', ') || 'nothing'}`);
  let done = false;
  setHandler(unblockSignal, () => void (done = true));
  await condition(() => done);
}

/** An activity that sleeps past its start-to-close timeout on its first attempt only. */
export async function startToCloseWorkflow(key: string): Promise<number> {
  const { slowFirstAttempt } = proxyActivities<ConformanceActivities>({
    startToCloseTimeout: '500ms',
    retry: { initialInterval: '100ms', maximumAttempts: 3 },
  });
  return await slowFirstAttempt(key);
}

/** An activity that keeps failing until its schedule-to-close timeout ends the retries. */
/** An activity that always fails, with a retry interval longer than its 1 s schedule-to-close timeout. */
export async function retryPastDeadlineWorkflow(key: string): Promise<number> {
  const { flaky } = proxyActivities<ConformanceActivities>({
    scheduleToCloseTimeout: '1s',
    retry: { initialInterval: '5s', backoffCoefficient: 1 },
  });
  return await flaky(key, 1000, false);
}

/** An activity that fails once, then hangs past its 1 s schedule-to-close timeout. */
export async function scheduleToCloseWorkflow(key: string): Promise<void> {
  const { failOnceThenHang } = proxyActivities<ConformanceActivities>({
    scheduleToCloseTimeout: '1s',
    retry: { initialInterval: '100ms', backoffCoefficient: 1 },
  });
  await failOnceThenHang(key);
}

/** Starts a child that waits forever and reports how it ended. */
export async function childOutcomeWorkflow(): Promise<string> {
  try {
    await executeChild(waitForSignalWorkflow, { workflowId: `${workflowInfo().workflowId}-child` });
    return 'completed';
  } catch (error) {
    return `${(error as Error).name}: ${((error as Error).cause as Error | undefined)?.name ?? ''}`;
  }
}

export const addItemUpdate = defineUpdate<number, [string]>('addItem');
export const failItemUpdate = defineUpdate<never, [string]>('failItem');
export const holdUpdate = defineUpdate<string, [string]>('hold');
export const releaseSignal = defineSignal('release');
export const itemsQuery = defineQuery<{ items: string[]; handled: number }>('items');

/**
 * Takes updates until a signal (`unblock`) ends it: `addItem` (its validator refuses an empty item) returns how
 * many items there are; `failItem` is accepted, then fails; `hold` is accepted and completes on a `release` signal.
 * Counts every handler run, so a test can tell that a duplicate update id did not run the handler twice.
 */
export async function updatableWorkflow(): Promise<string[]> {
  const items: string[] = [];
  let handled = 0;
  let released = false;
  let done = false;
  setHandler(
    addItemUpdate,
    (item) => {
      handled++;
      items.push(item);
      return Promise.resolve(items.length);
    },
    {
      validator: (item) => {
        if (!item) throw new Error('item must not be empty');
      },
    },
  );
  setHandler(failItemUpdate, (reason) => {
    handled++;
    throw ApplicationFailure.nonRetryable(reason, 'ItemRefused');
  });
  setHandler(holdUpdate, async (label) => {
    handled++;
    await condition(() => released);
    return `${label} released`;
  });
  setHandler(releaseSignal, () => void (released = true));
  setHandler(unblockSignal, () => void (done = true));
  setHandler(itemsQuery, () => ({ items, handled }));
  await condition(() => done);
  return items;
}
