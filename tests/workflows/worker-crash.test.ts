import { temporal } from '@temporalio/proto';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ExperimentSpec } from '../../src/experiment';
import { experimentStatus, submitExperiment } from '../../src/client/experiments';
import type { RunningProcess } from '../support/processes';
import { startTestTemporal, withWorker, type TestTemporal } from '../support/temporal';
import { experimentRig, trainerSpec, waitForStatus, startLablineWorkerProcess } from '../support/experiments';

let env: TestTemporal;
const processes: RunningProcess[] = [];
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => {
  await Promise.all(processes.map((p) => p.kill()));
  await env?.stop();
});

/**
 * An experiment training under a worker of its own process, which `stop` then ends (SIGKILL or SIGTERM)
 * while the trainer runs; a worker in this process finishes it. Returns the status and the trainer starts.
 */
async function trainThroughWorkerStop(label: string, stop: NodeJS.Signals) {
  const rig = experimentRig(2);
  const id = `exp-worker-${label}-${process.pid}`;
  const spec = ExperimentSpec.parse(
    trainerSpec(id, ['--steps=150', '--step-delay-ms=20'], {
      approvals: { launch: { enabled: false }, publish: { enabled: false } },
    }),
  );
  const first = await startLablineWorkerProcess(env, rig, processes);
  await submitExperiment({ client: env.client, spec, settings: rig.settings });
  await waitForStatus(env.client, id, (s) => (s.attempts[0]?.step ?? 0) > 10);
  const [trainer] = trainerStarts(rig.runsRoot, id);
  await first.kill(stop);
  const aliveAfterStop = isAlive(trainer!.pid);

  const status = await withWorker(env, { taskQueue: rig.taskQueue, activities: rig.activities }, async () => {
    const result = await env.client.workflow.getHandle(id).result();
    expect(result.end_stage).toBe('completed');
    return experimentStatus(env.client, id);
  });
  return { id, rig, status, trainer: trainer!, aliveAfterStop, starts: trainerStarts(rig.runsRoot, id) };
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('a worker killed during training: a new worker re-attaches and exactly one training process ran', async () => {
  const { id, rig, status, starts } = await trainThroughWorkerStop('crash', 'SIGKILL');
  expect(starts).toHaveLength(1);
  expect(status.attempts).toHaveLength(1);
  expect(status.attempts[0]!.outcome).toBe('success');
  expect(existsSync(path.join(rig.runsRoot, id, 'attempts', `${id}-launch-2`))).toBe(false);
});

test('a worker stopped gracefully (SIGTERM) during training leaves the trainer running; a new worker re-attaches', async () => {
  const { status, trainer, aliveAfterStop, starts } = await trainThroughWorkerStop('stop', 'SIGTERM');
  // The worker has shut down; the trainer it was watching has not.
  expect(aliveAfterStop).toBe(true);
  expect(starts).toEqual([trainer]);
  expect(status.attempts).toHaveLength(1);
  expect(status.attempts[0]!.outcome).toBe('success');
});

/** Every start of the trainer process in the experiment's run directory (the example trainer records them). */
function trainerStarts(runsRoot: string, id: string): { pid: number }[] {
  return readFileSync(path.join(runsRoot, id, 'starts.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => ({ pid: (JSON.parse(line) as { pid: number }).pid }));
}

describe('a worker killed in the middle of a stage after training', () => {
  const heartbeatTimeoutSeconds = 2;
  test.each([
    ['validation', 'validateDeliverables'],
    ['analysis', 'computeAnalysis'],
    ['writing', 'writeReport'],
  ])(
    '%s (%s): another worker takes the stage over within 90 s',
    async (stage, activityType) => {
      const rig = experimentRig(2);
      const settings = { ...rig.settings, activity_heartbeat_timeout_seconds: heartbeatTimeoutSeconds };
      const id = `exp-stage-crash-${stage}-${process.pid}`;
      const spec = ExperimentSpec.parse(
        trainerSpec(id, ['--steps=20'], {
          approvals: { launch: { enabled: false }, publish: { enabled: false } },
        }),
      );
      const first = await startLablineWorkerProcess(env, rig, processes, {
        LABLINE_TEST_SLOW_ACTIVITY: `${activityType}:120000`,
      });
      await submitExperiment({ client: env.client, spec, settings });
      const handle = env.client.workflow.getHandle(id);
      const deadline = Date.now() + 60_000;
      const inProgress = async () =>
        (await handle.describe()).raw.pendingActivities?.some(
          (a) =>
            a.activityType?.name === activityType &&
            a.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED,
        );
      while (!(await inProgress())) {
        if (Date.now() > deadline) throw new Error(`${activityType} never started`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      await first.kill('SIGKILL');

      const killedAt = Date.now();
      await withWorker(env, { taskQueue: rig.taskQueue, activities: rig.activities }, async () => {
        const ended = await waitForStatus(
          env.client,
          id,
          (s) => s.stage === 'completed' || s.stage === 'failed',
          90_000,
        );
        expect(ended.stage).toBe('completed');
      });
      // Well within 90 s: the heartbeat timeout notices the dead worker, not the 10-minute limit.
      expect(Date.now() - killedAt).toBeLessThan(90_000);
    },
    180_000,
  );
});
