import { Client, Connection, WorkflowUpdateStage } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startTsProcess, workerProcessScript, type RunningProcess } from '../support/processes';
import { killOwnServers, startOwnServer } from '../support/own-server';
import { testServerKind } from '../support/temporal-cli';
import {
  startTestTemporal,
  uniqueTaskQueue,
  withWorker,
  workflowBundle,
  type TestTemporal,
} from '../support/temporal';
import { createConformanceActivities, readLog } from './activities';
import {
  holdUpdate,
  itemsQuery,
  releaseSignal,
  signalsAndTimerWorkflow,
  stateQuery,
  twoStepWorkflow,
  unblockSignal,
  updatableWorkflow,
  waitForSignalWorkflow,
} from './workflows';

const dir = mkdtempSync(path.join(tmpdir(), 'labline-crash-'));
const processes: RunningProcess[] = [];
afterEach(async () => {
  await Promise.all(processes.splice(0).map((p) => p.kill()));
});

/** A conformance worker in a process of its own, polling `taskQueue`, for a test to kill. */
async function startWorkerProcess(env: TestTemporal, taskQueue: string): Promise<RunningProcess> {
  const worker = startTsProcess(workerProcessScript, [
    'conformance',
    env.address,
    env.namespace,
    taskQueue,
    dir,
    workflowBundle().codePath,
  ]);
  processes.push(worker);
  await worker.waitFor(/worker ready/);
  return worker;
}

describe('a worker killed with SIGKILL', () => {
  let env: TestTemporal;
  beforeAll(async () => {
    env = await startTestTemporal();
  });
  afterAll(async () => env?.stop());

  test('a second worker finishes the workflow and a completed activity does not run again', async () => {
    const taskQueue = uniqueTaskQueue();
    const key = `two-step-${taskQueue}`;
    const first = await startWorkerProcess(env, taskQueue);
    const handle = await env.client.workflow.start(twoStepWorkflow, {
      taskQueue,
      workflowId: key,
      args: [key],
    });
    // The first step has completed once the server has recorded its completion: its log line alone is
    // not enough, since a worker killed between the two runs the activity again, as Temporal should.
    const completed = async () =>
      ((await handle.fetchHistory()).events ?? []).some((e) => e.activityTaskCompletedEventAttributes);
    for (let i = 0; i < 200 && !(await completed()); i++) await new Promise((r) => setTimeout(r, 50));
    expect(readLog(dir, key)).toEqual(['first']);
    await first.kill('SIGKILL');

    await handle.signal(unblockSignal, 'go');
    const result = await withWorker(env, { taskQueue, activities: createConformanceActivities(dir) }, () =>
      handle.result(),
    );
    expect(result).toEqual(['first', 'second']);
    expect(readLog(dir, key)).toEqual(['first', 'second']);
  });
  test('queries after the sticky worker died wait for its sticky queue once, then go to the normal queue', async () => {
    const taskQueue = uniqueTaskQueue();
    const first = await startWorkerProcess(env, taskQueue);
    const handle = await env.client.workflow.start(waitForSignalWorkflow, {
      taskQueue,
      workflowId: `sticky-${taskQueue}`,
    });
    expect(await handle.query(stateQuery)).toMatchObject({ stage: 'waiting' }); // cached on `first`: sticky
    await first.kill('SIGKILL');

    await withWorker(env, { taskQueue, activities: createConformanceActivities(dir) }, async () => {
      // The first query may wait out the sticky schedule-to-start timeout (10 s, the SDK's default).
      expect(await handle.query(stateQuery)).toMatchObject({ stage: 'waiting' });
      // That timeout told the server the sticky worker is gone: the next query must not wait for it again.
      const askedAt = Date.now();
      expect(await handle.query(stateQuery)).toMatchObject({ stage: 'waiting' });
      expect(Date.now() - askedAt).toBeLessThan(5_000);
      await handle.signal(unblockSignal, 'done');
      expect(await handle.result()).toBe('done');
    });
  });
});

afterAll(async () => {
  await killOwnServers();
});

describe(`the ${testServerKind()} server killed with SIGKILL`, () => {
  test('restarted on the same data file, it fires the timer, takes a new signal and completes the workflow', async () => {
    const db = path.join(mkdtempSync(path.join(tmpdir(), 'labline-db-')), 'devserver.wal');
    const startServer = (port: number) =>
      startOwnServer(db, port).then((server) => ({ server, address: server.address }));
    const { server, address } = await startServer(0);
    const port = Number(address.split(':')[1]);
    const taskQueue = uniqueTaskQueue();
    const workflowId = `restart-${taskQueue}`;
    const env: TestTemporal = await connectTo(address);
    try {
      await withWorker(env, { taskQueue, activities: createConformanceActivities(dir) }, async () => {
        const handle = await env.client.workflow.start(signalsAndTimerWorkflow, {
          taskQueue,
          workflowId,
          args: [2500, 2],
        });
        await handle.signal(unblockSignal, 'before');
        expect((await handle.query(stateQuery)).messages).toEqual(['before']);
        const history = await handle.fetchHistory();
        // The kill must come while the timer is still pending.
        expect(history.events!.some((e) => e.timerStartedEventAttributes)).toBe(true);
        expect(history.events!.some((e) => e.timerFiredEventAttributes)).toBe(false);
      });
    } finally {
      await env.connection.close();
    }
    await server.kill();

    const restarted = await startServer(port);
    const again = await connectTo(restarted.address);
    try {
      const result = await withWorker(
        again,
        { taskQueue, activities: createConformanceActivities(dir) },
        async () => {
          const handle = again.client.workflow.getHandle(workflowId);
          await handle.signal(unblockSignal, 'after');
          return handle.result();
        },
      );
      expect(result).toEqual(['before', 'after']);
      const history = await again.client.workflow.getHandle(workflowId).fetchHistory();
      expect(history.events!.some((e) => e.timerFiredEventAttributes)).toBe(true);
    } finally {
      await again.connection.close();
    }
  });
});

describe(`the ${testServerKind()} server killed with SIGKILL while an update is in flight`, () => {
  test('an accepted update survives the restart: it completes after it, once, and its result comes back', async () => {
    const db = path.join(mkdtempSync(path.join(tmpdir(), 'labline-db-')), 'devserver.wal');
    const first = await startOwnServer(db, 0);
    const port = Number(first.address.split(':')[1]);
    const taskQueue = uniqueTaskQueue();
    const workflowId = `update-restart-${taskQueue}`;
    const env = await connectTo(first.address);
    try {
      await withWorker(env, { taskQueue, activities: createConformanceActivities(dir) }, async () => {
        const handle = await env.client.workflow.start(updatableWorkflow, { taskQueue, workflowId });
        await handle.startUpdate(holdUpdate, {
          args: ['kept'],
          waitForStage: WorkflowUpdateStage.ACCEPTED,
          updateId: 'held-across-restart',
        });
      });
    } finally {
      await env.connection.close();
    }
    await first.kill();

    const restarted = await startOwnServer(db, port);
    const again = await connectTo(restarted.address);
    try {
      await withWorker(again, { taskQueue, activities: createConformanceActivities(dir) }, async () => {
        const handle = again.client.workflow.getHandle<typeof updatableWorkflow>(workflowId);
        await handle.signal(releaseSignal);
        expect(await handle.getUpdateHandle<string>('held-across-restart').result()).toBe('kept released');
        // The same id again: the recorded outcome, without running the handler a second time.
        expect(
          await handle.executeUpdate(holdUpdate, { args: ['again'], updateId: 'held-across-restart' }),
        ).toBe('kept released');
        expect((await handle.query(itemsQuery)).handled).toBe(1);
        await handle.signal(unblockSignal, 'done');
        await handle.result();
      });
      const history = await again.client.workflow.getHandle(workflowId).fetchHistory();
      const { EventType } = temporal.api.enums.v1;
      const types = history.events!.map((e) => e.eventType);
      expect(types.filter((t) => t === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)).toHaveLength(
        1,
      );
      expect(
        types.filter((t) => t === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED),
      ).toHaveLength(1);
    } finally {
      await again.connection.close();
    }
  });
});

async function connectTo(address: string): Promise<TestTemporal> {
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace: 'default' });
  return { address, namespace: 'default', connection, client, stop: () => connection.close() };
}
