import { WorkflowNotFoundError } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { externalTemporal, startTestTemporal, uniqueTaskQueue, withWorker } from '../support/temporal';
import { createConformanceActivities } from './activities';
import { echoWorkflow, waitForSignalWorkflow } from './workflows';

// Retention is a property of the server's namespace; a real Temporal's cannot be shortened by a test.
(externalTemporal ? describe.skip : describe)(
  'retention (embedded only: a real Temporal keeps closed workflows a day at least)',
  () => {
    test('a closed workflow is deleted after the retention period, also after a restart; an open one is kept', async () => {
      const db = path.join(mkdtempSync(path.join(tmpdir(), 'labline-retention-')), 'devserver.wal');
      const env = await startTestTemporal({ db, retentionMs: 1500 });
      const taskQueue = uniqueTaskQueue();
      const closedId = `retained-${taskQueue}`;
      const openId = `open-${taskQueue}`;
      try {
        await withWorker(env, { taskQueue, activities: createConformanceActivities(tmpdir()) }, async () => {
          await env.client.workflow.execute(echoWorkflow, { taskQueue, workflowId: closedId, args: ['x'] });
          await env.client.workflow.start(waitForSignalWorkflow, { taskQueue, workflowId: openId });
        });
        await expect(env.client.workflow.getHandle(closedId).describe()).resolves.toBeDefined();
        let gone = false;
        for (let i = 0; i < 60 && !gone; i++) {
          await new Promise((r) => setTimeout(r, 100));
          gone = await env.client.workflow
            .getHandle(closedId)
            .describe()
            .then(() => false)
            .catch((e: unknown) => e instanceof WorkflowNotFoundError);
        }
        expect(gone).toBe(true);
        expect((await env.client.workflow.getHandle(openId).describe()).status.name).toBe('RUNNING');
      } finally {
        await env.stop();
      }
      const restarted = await startTestTemporal({ db, retentionMs: 1500 });
      try {
        await expect(restarted.client.workflow.getHandle(closedId).describe()).rejects.toBeInstanceOf(
          WorkflowNotFoundError,
        );
        expect((await restarted.client.workflow.getHandle(openId).describe()).status.name).toBe('RUNNING');
      } finally {
        await restarted.stop();
      }
    });
  },
);

(externalTemporal ? describe.skip : describe)('retention changed (embedded only, as above)', () => {
  test('a longer retention set by UpdateNamespace keeps a run that closed under the shorter one', async () => {
    const env = await startTestTemporal({ retentionMs: 1500 });
    const taskQueue = uniqueTaskQueue();
    const closedId = `kept-${taskQueue}`;
    try {
      await withWorker(env, { taskQueue, activities: createConformanceActivities(tmpdir()) }, () =>
        env.client.workflow.execute(echoWorkflow, { taskQueue, workflowId: closedId, args: ['x'] }),
      );
      await env.connection.workflowService.updateNamespace({
        namespace: env.namespace,
        config: { workflowExecutionRetentionTtl: msToTs(3600_000) },
      });
      // Well past the old retention's deletion time.
      await new Promise((r) => setTimeout(r, 2500));
      await expect(env.client.workflow.getHandle(closedId).describe()).resolves.toBeDefined();
    } finally {
      await env.stop();
    }
  });
});

(externalTemporal ? describe.skip : describe)(
  'compaction of the data file (embedded only: its own write-ahead log)',
  () => {
    test('rewriting the log while workflows run loses nothing: after a restart every history is whole', async () => {
      const db = path.join(mkdtempSync(path.join(tmpdir(), 'labline-compact-')), 'devserver.wal');
      const env = await startTestTemporal({ db, compactAfterBytes: 4096 });
      const taskQueue = uniqueTaskQueue();
      const ids = Array.from({ length: 20 }, (_v, i) => `compact-${i}-${taskQueue}`);
      const lengths = new Map<string, number>();
      try {
        await withWorker(env, { taskQueue, activities: createConformanceActivities(tmpdir()) }, async () => {
          await Promise.all(
            ids.map((workflowId) =>
              env.client.workflow.execute(echoWorkflow, { taskQueue, workflowId, args: [workflowId] }),
            ),
          );
        });
        for (const id of ids)
          lengths.set(id, (await env.client.workflow.getHandle(id).fetchHistory()).events!.length);
      } finally {
        await env.stop();
      }
      // Without compaction the log holds a line per transaction, more than seven per workflow.
      expect(readFileSync(db, 'utf8').trim().split('\n').length).toBeLessThan(ids.length * 5);
      const restarted = await startTestTemporal({ db });
      try {
        for (const id of ids) {
          const history = await restarted.client.workflow.getHandle(id).fetchHistory();
          expect(history.events!.length).toBe(lengths.get(id));
          expect(history.events!.at(-1)!.workflowExecutionCompletedEventAttributes).toBeTruthy();
        }
      } finally {
        await restarted.stop();
      }
    });
  },
);
