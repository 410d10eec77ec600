import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { lastWorkflowPollAgo, needingWorker, NoWorkerPolling } from '../../src/client/worker-presence';
import { createConformanceActivities } from '../devserver/activities';
import { stateQuery, unblockSignal, waitForSignalWorkflow } from '../devserver/workflows';
import { startTestTemporal, uniqueTaskQueue, withWorker, type TestTemporal } from '../support/temporal';

let env: TestTemporal;
const dir = mkdtempSync(path.join(tmpdir(), 'labline-presence-'));
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => env?.stop());

test('a query nobody polls for fails fast, naming the queue and how to start a worker', async () => {
  const taskQueue = uniqueTaskQueue();
  const handle = await withWorker(
    env,
    { taskQueue, activities: createConformanceActivities(dir) },
    async () => {
      const started = await env.client.workflow.start(waitForSignalWorkflow, {
        taskQueue,
        workflowId: `presence-${taskQueue}`,
      });
      // With the worker there, the query is answered as usual.
      expect(
        await needingWorker(env.client, started.workflowId, () => started.query(stateQuery)),
      ).toMatchObject({
        stage: 'waiting',
      });
      return started;
    },
  );
  expect(await lastWorkflowPollAgo(env.client, taskQueue)).toEqual(expect.any(Number));

  // The worker is gone. A live worker begins a poll at least once a long poll; here, once in 300 ms.
  const asked = needingWorker(env.client, handle.workflowId, () => handle.query(stateQuery), {
    patienceMs: 200,
    recheckMs: 100,
    livePollMs: 300,
  });
  await expect(asked).rejects.toBeInstanceOf(NoWorkerPolling);
  await expect(asked).rejects.toThrow(
    new RegExp(`No worker is polling the ${taskQueue} task queue.*labline server`),
  );
  await handle.terminate('test over');
});

test('a queue nobody ever polled has no last poll', async () => {
  expect(await lastWorkflowPollAgo(env.client, `nobody-${uniqueTaskQueue()}`)).toBeUndefined();
});

test('an answer that comes after the patience ran out still arrives while a worker polls', async () => {
  const taskQueue = uniqueTaskQueue();
  await withWorker(env, { taskQueue, activities: createConformanceActivities(dir) }, async () => {
    const handle = await env.client.workflow.start(waitForSignalWorkflow, {
      taskQueue,
      workflowId: `presence-slow-${taskQueue}`,
    });
    const slowAnswer = () => new Promise<string>((resolve) => setTimeout(() => resolve('late'), 600));
    expect(
      await needingWorker(env.client, handle.workflowId, slowAnswer, { patienceMs: 50, recheckMs: 50 }),
    ).toBe('late');
    await handle.signal(unblockSignal, 'done');
    await handle.result();
  });
});

test('a worker check still in flight when the answer comes is aborted, so it cannot retry past the close', async () => {
  // A client whose describe never answers until aborted (the server under load), and which records the abort
  // signal of each call as Temporal's client does (withAbortSignal around the call).
  let current: AbortSignal | undefined;
  const describeSignals: (AbortSignal | undefined)[] = [];
  const fake = {
    withAbortSignal: <R>(signal: AbortSignal, fn: () => Promise<R>): Promise<R> => {
      const outer = current;
      current = signal;
      try {
        return fn();
      } finally {
        current = outer;
      }
    },
    workflow: {
      getHandle: () => ({
        describe: () => {
          const signal = current;
          describeSignals.push(signal);
          return new Promise((_resolve, reject) =>
            signal?.addEventListener('abort', () => reject(new Error('aborted'))),
          );
        },
      }),
    },
  } as unknown as Parameters<typeof needingWorker>[0];
  const answer = needingWorker(
    fake,
    'exp-any',
    () => new Promise<string>((resolve) => setTimeout(() => resolve('answered'), 50)),
    { patienceMs: 1 },
  );
  await expect(answer).resolves.toBe('answered');
  expect(describeSignals).toHaveLength(1);
  expect(describeSignals[0]?.aborted).toBe(true);
});
