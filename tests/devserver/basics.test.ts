import { temporal } from '@temporalio/proto';
import { msToTs, tsToMs } from '@temporalio/common/lib/time';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startTestTemporal, uniqueTaskQueue, withWorker, type TestTemporal } from '../support/temporal';
import { createConformanceActivities } from './activities';
import { echoWorkflow } from './workflows';

let env: TestTemporal;
const dir = mkdtempSync(path.join(tmpdir(), 'labline-conf-'));
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => env?.stop());

test('a workflow runs an activity and returns its result', async () => {
  const taskQueue = uniqueTaskQueue();
  const result = await withWorker(env, { taskQueue, activities: createConformanceActivities(dir) }, () =>
    env.client.workflow.execute(echoWorkflow, { taskQueue, workflowId: `echo-${taskQueue}`, args: ['hi'] }),
  );
  expect(result).toBe('echo:hi');
});

test('DescribeTaskQueue lists a worker while it polls, and no one on a queue nobody polls', async () => {
  const taskQueue = uniqueTaskQueue();
  const pollersOf = async (name: string) =>
    (
      await env.connection.workflowService.describeTaskQueue({
        namespace: env.namespace,
        taskQueue: { name, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
      })
    ).pollers ?? [];
  expect(await pollersOf(`nobody-${taskQueue}`)).toEqual([]);
  await withWorker(
    env,
    { taskQueue, activities: createConformanceActivities(dir), identity: `poller-${taskQueue}` },
    async () => {
      // The worker's first poll may still be on its way: the echo round trip proves it polls.
      await env.client.workflow.execute(echoWorkflow, {
        taskQueue,
        workflowId: `poll-${taskQueue}`,
        args: ['x'],
      });
      const pollers = await pollersOf(taskQueue);
      expect(pollers.map((poller) => poller.identity)).toContain(`poller-${taskQueue}`);
      const seenAt = tsToMs(pollers[0]!.lastAccessTime);
      expect(Math.abs(Date.now() - seenAt)).toBeLessThan(120_000);
    },
  );
});

test("UpdateNamespace changes the namespace's retention, as DescribeNamespace then says", async () => {
  const thirtyDaysMs = 30 * 24 * 3600_000;
  await env.connection.workflowService.updateNamespace({
    namespace: env.namespace,
    config: { workflowExecutionRetentionTtl: msToTs(thirtyDaysMs) },
  });
  const described = await env.connection.workflowService.describeNamespace({ namespace: env.namespace });
  expect(tsToMs(described.config?.workflowExecutionRetentionTtl)).toBe(thirtyDaysMs);
});
