/**
 * The local launcher's GPU slots seen from the experiment workflow and the real worker assembly: the GPU task
 * queue runs as many trainings as the host has GPUs, so experiments asking for the same GPU train one after
 * the other; a spec asking for more GPUs than the host has fails with the launcher's clear refusal.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ExperimentSpec, type ExperimentSpecInput } from '../../src/experiment';
import { experimentHandle, experimentStatus, submitExperiment } from '../../src/client/experiments';
import { LablineSettings, type ResolvedSettings } from '../../src/client/settings';
import { createLablineActivities } from '../../src/workers/activities';
import { createLablineWorkers, runWorkers } from '../../src/workers/worker';
import { RecordingNotifier, trainerSpec } from '../support/experiments';
import { startTestTemporal, uniqueTaskQueue, workflowBundle, type TestTemporal } from '../support/temporal';

jest.setTimeout(120_000);

let env: TestTemporal;
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => env?.stop());

let counter = 0;
const newId = (label: string) => `exp-gpu-${label}-${process.pid}-${++counter}-${Date.now() % 100000}`;
const noGates = { launch: { enabled: false }, publish: { enabled: false } };

/** Real Labline workers (all three queues) for a host with `gpuIds`, running until `body` ends. */
async function withHost<T>(
  gpuIds: string[],
  body: (host: { settings: ResolvedSettings; gpuConcurrency: number | undefined }) => Promise<T>,
): Promise<T> {
  const runsRoot = mkdtempSync(path.join(tmpdir(), 'labline-gpu-runs-'));
  const settings: ResolvedSettings = {
    ...LablineSettings.parse({
      gpus: { ids: gpuIds },
      task_queues: {
        workflow: uniqueTaskQueue('wf'),
        gpu: uniqueTaskQueue('gpu'),
        agents: uniqueTaskQueue('ag'),
      },
    }),
    runsRoot,
    dataDir: path.join(runsRoot, '.labline'),
  };
  const connection = await NativeConnection.connect({ address: env.address });
  const workers = await createLablineWorkers({
    connection,
    namespace: env.namespace,
    settings,
    roles: ['workflow', 'gpu', 'agents'],
    workflowBundle: workflowBundle(),
    activities: createLablineActivities({
      runsRoot,
      gpuIds,
      slotsDir: path.join(runsRoot, '.gpu-slots'),
      killGraceSeconds: 1,
      notifier: new RecordingNotifier(),
    }),
  });
  let stop!: () => void;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const running = runWorkers(workers, stopped);
  try {
    // Bounded, so that the workers are always shut down below, even when an experiment hangs.
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the host did not finish within 90 s')), 90_000);
    });
    // The GPU worker's activity slots, as the SDK compiled them from maxConcurrentActivityTaskExecutions.
    const slots = workers[1]?.options.tuner.activityTaskSlotSupplier;
    const gpuConcurrency = slots && 'numSlots' in slots ? slots.numSlots : undefined;
    return await Promise.race([body({ settings, gpuConcurrency }), timeout]).finally(() =>
      clearTimeout(timer),
    );
  } finally {
    stop();
    await running;
    await connection.close();
  }
}

function submit(settings: ResolvedSettings, input: ExperimentSpecInput) {
  return submitExperiment({
    client: env.client,
    spec: ExperimentSpec.parse(input),
    settings: {
      runs_root: settings.runsRoot,
      task_queues: settings.task_queues,
      training_heartbeat_timeout_seconds: 5,
      training_poll_interval_ms: 100,
      launch_timeout_seconds: 5,
    },
  });
}

function gpuSpec(id: string, gpus: number, trainerArgs: string[] = []): ExperimentSpecInput {
  const spec = trainerSpec(id, trainerArgs, { approvals: noGates });
  return { ...spec, training: { ...spec.training, resources: { gpus, cpus: 1 } } };
}

/** `[start, end]` of the trainer's run, in ms, from the files the example trainer writes. */
function trainedDuring(settings: ResolvedSettings, id: string): [number, number] {
  const line = (file: string) =>
    JSON.parse(
      readFileSync(path.join(settings.runsRoot, id, file), 'utf8')
        .trim()
        .split('\n')[0]!,
    ) as Record<string, string>;
  return [Date.parse(line('starts.jsonl').startedAt!), Date.parse(line('ends.jsonl').endedAt!)];
}

test('with one GPU, the GPU queue runs one training at a time: two experiments asking for it train in turn', async () => {
  await withHost(['0'], async ({ settings, gpuConcurrency }) => {
    expect(gpuConcurrency).toBe(1);
    const [a, b] = [newId('first'), newId('second')];
    await submit(settings, gpuSpec(a, 1, ['--step-delay-ms=15']));
    await submit(settings, gpuSpec(b, 1, ['--step-delay-ms=15']));
    const results = await Promise.all([a, b].map((id) => experimentHandle(env.client, id).result()));
    expect(results.map((r) => r.end_stage)).toEqual(['completed', 'completed']);

    const [first, second] = [trainedDuring(settings, a), trainedDuring(settings, b)].sort(
      (x, y) => x[0] - y[0],
    );
    expect(second![0]).toBeGreaterThanOrEqual(first![1]);
  });
});

test('asking for more GPUs than the host has fails the experiment with the reason, before any process starts', async () => {
  await withHost(['0', '1'], async ({ settings, gpuConcurrency }) => {
    expect(gpuConcurrency).toBe(2);
    const id = newId('too-many');
    await submit(settings, gpuSpec(id, 3));
    const error = await experimentHandle(env.client, id)
      .result()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const status = await experimentStatus(env.client, id);
    expect(status.stage).toBe('failed');
    expect(status.reason).toContain('asks for 3 GPU(s) but this host has 2');
    expect(status.attempts[0]?.outcome).toBeUndefined();
  });
});
