/**
 * Queries and updates are answered by a worker, not by the server: without one they wait in silence. These
 * helpers notice that and say so, by asking the server who polls the workflow's task queue.
 */
import type { Client } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * How recently a worker must have begun a poll to count as alive. Temporal records when a poll begins, and an
 * idle worker's long poll lasts up to a minute: a live worker reads at most about that old.
 */
const LIVE_POLL_MS = 75_000;

export class NoWorkerPolling extends Error {
  constructor(
    readonly workflowId: string,
    readonly taskQueue: string,
    readonly lastPollAgoMs: number | undefined,
  ) {
    super(
      `No worker is polling the ${taskQueue} task queue, so ${workflowId} cannot answer` +
        (lastPollAgoMs === undefined
          ? ''
          : ` (the last poll began ${Math.round(lastPollAgoMs / 1000)} s ago)`) +
        '. Start one with `labline server` (server and worker) or `labline worker` (for a server you run), ' +
        'and run this again.',
    );
    this.name = 'NoWorkerPolling';
  }
}

export interface NeedingWorkerOptions {
  /** How long the call may take before the task queue is checked, ms. Default 1000. */
  patienceMs?: number;
  /** How often to look again while a worker was seen lately but has not answered yet, ms. Default 5000. */
  recheckMs?: number;
  /** How long to wait for an answer while workers poll, ms. Default 300000 (5 minutes). */
  maxWaitMs?: number;
  /** How recently a worker must have begun a poll to count as alive, ms. Default 75000; tests lower it. */
  livePollMs?: number;
}

/**
 * Runs `call` (a query or an update of `workflowId`). When it has not answered within `patienceMs`, checks
 * that a worker polls the workflow's task queue, and fails with {@link NoWorkerPolling} once none has polled
 * for longer than a live worker can be quiet. Otherwise it goes on waiting for `call`.
 */
export async function needingWorker<T>(
  client: Client,
  workflowId: string,
  call: () => Promise<T>,
  options: NeedingWorkerOptions = {},
): Promise<T> {
  // Abortable, so that a call given up on ends here: left pending, the client would retry it after the
  // connection has closed, and that throws outside any promise.
  const giveUp = new AbortController();
  const answer = client.withAbortSignal(giveUp.signal, call);
  const stopChecking = new AbortController();
  const watch = watchForWorker(client, workflowId, options, stopChecking.signal);
  try {
    return await Promise.race([answer, watch]);
  } finally {
    stopChecking.abort();
    giveUp.abort();
    // Whichever lost the race settles later, unobserved.
    answer.catch(() => undefined);
    watch.catch(() => undefined);
  }
}

/** Never resolves; rejects with NoWorkerPolling when no worker polls the workflow's queue. */
async function watchForWorker(
  client: Client,
  workflowId: string,
  options: NeedingWorkerOptions,
  signal: AbortSignal,
): Promise<never> {
  const patienceMs = options.patienceMs ?? 1000;
  const maxWaitMs = options.maxWaitMs ?? 300_000;
  const giveUpAt = Date.now() + maxWaitMs;
  await sleep(patienceMs, undefined, { signal });
  // Abortable too: a check still retrying when the answer came would retry past the connection's close.
  const { taskQueue } = await client.withAbortSignal(signal, () =>
    client.workflow.getHandle(workflowId).describe(),
  );
  for (;;) {
    const lastPollAgoMs = await client.withAbortSignal(signal, () => lastWorkflowPollAgo(client, taskQueue));
    if (lastPollAgoMs === undefined || lastPollAgoMs > (options.livePollMs ?? LIVE_POLL_MS)) {
      throw new NoWorkerPolling(workflowId, taskQueue, lastPollAgoMs);
    }
    if (Date.now() >= giveUpAt) {
      throw new Error(
        `${workflowId} did not answer within ${Math.round(maxWaitMs / 1000)} s ` +
          `although a worker polls ${taskQueue}; see the worker's log and the workflow's history in the Web UI.`,
      );
    }
    // Seen lately: alive, or gone less than a long poll ago. Look again once it would have polled again.
    await sleep(options.recheckMs ?? 5000, undefined, { signal });
  }
}

/** How long ago the most recent workflow-task poll on `taskQueue` began; undefined when nobody polled lately. */
export async function lastWorkflowPollAgo(client: Client, taskQueue: string): Promise<number | undefined> {
  const { pollers } = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: taskQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
    taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
  });
  const latest = Math.max(...(pollers ?? []).map((poller) => tsToMs(poller.lastAccessTime)));
  return Number.isFinite(latest) ? Math.max(0, Date.now() - latest) : undefined;
}
