/**
 * The experiment workflow with `launcher: slurm`, end to end against a real single-node Slurm
 * (scripts/slurm/setup.sh): the example trainer runs as a batch job with a fake GPU; a queued job's reason
 * shows in the status and the Web UI details; `scontrol requeue` is a preemption resumed from the checkpoint;
 * cancelling the experiment cancels the job; a job Slurm refuses fails the experiment with sbatch's words.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { defineQuery } from '@temporalio/workflow';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ExperimentSpec, type ExperimentSpecInput, type ExperimentStatus } from '../../src/experiment';
import {
  cancelExperiment,
  experimentHandle,
  experimentStatus,
  submitExperiment,
} from '../../src/client/experiments';
import { pinExperimentCode } from '../../src/client/code-pinning';
import { formatStatus } from '../../src/client/cli-format';
import { describeChange } from '../../src/client/cli-experiments';
import { SlurmSettings } from '../../src/activities/training/slurm-settings';
import { readReproducibilityRecord } from '../../src/activities/reproducibility/record';
import { createLablineActivities } from '../../src/workers/activities';
import { recordHistory } from '../support/histories';
import { startTestTemporal, withWorker, type TestTemporal } from '../support/temporal';
import {
  experimentRig,
  trainerPath,
  trainerSpec,
  waitForStatus,
  type ExperimentRig,
} from '../support/experiments';
import { makeRepo } from '../support/git-repo';
import { TEST_PARTITION, describeWithSlurm, jobFields, slurmCommand } from '../support/slurm';

jest.setTimeout(180_000);

let env: TestTemporal | undefined;
afterAll(async () => env?.stop());

let counter = 0;
const newId = (label: string) => `exp-slurm-${label}-${process.pid}-${++counter}-${Date.now() % 100000}`;
const noGates = { launch: { enabled: false }, publish: { enabled: false } };
const metadataQuery = defineQuery<{ currentDetails?: string }>('__temporal_workflow_metadata');

/** The test rig with the Slurm launcher registered (partition `labline` of the test cluster). */
function slurmRig(slurm: Record<string, unknown> = {}): ExperimentRig {
  const rig = experimentRig();
  return {
    ...rig,
    activities: createLablineActivities({
      runsRoot: rig.runsRoot,
      gpuIds: [],
      slotsDir: path.join(rig.runsRoot, '.gpu-slots'),
      killGraceSeconds: 1,
      notifier: rig.notifier,
      slurm: SlurmSettings.parse({ partition: TEST_PARTITION, cancel_timeout_seconds: 30, ...slurm }),
    }),
  };
}

/** The example trainer's spec, trained on Slurm with one (fake) GPU. */
function slurmSpec(id: string, trainerArgs: string[] = [], gpus = 1): ExperimentSpecInput {
  const spec = trainerSpec(id, trainerArgs, { approvals: noGates });
  return { ...spec, training: { ...spec.training, launcher: 'slurm', resources: { gpus, cpus: 1 } } };
}

/**
 * With LABLINE_RECORD_HISTORIES=1, writes the scenario's history to tests/replay/histories/, where the replay
 * test (which needs no Slurm) checks that later workflow code still replays the Slurm path.
 */
async function recordScenario(id: string, label: string | undefined): Promise<void> {
  if (label) await recordHistory(env!.client, id, `experiment-slurm-${label}`);
}

async function run<T>(
  rig: ExperimentRig,
  input: ExperimentSpecInput,
  drive: (id: string) => Promise<T>,
  record?: string,
): Promise<{ result: T; status: ExperimentStatus }> {
  env ??= await startTestTemporal();
  const temporal = env;
  const spec = ExperimentSpec.parse(input);
  return withWorker(temporal, { taskQueue: rig.taskQueue, activities: rig.activities }, async () => {
    await submitExperiment({ client: temporal.client, spec, settings: rig.settings });
    const result = await drive(spec.experiment_id);
    await recordScenario(spec.experiment_id, record);
    return { result, status: await experimentStatus(temporal.client, spec.experiment_id) };
  });
}

/** The step of the trainer's latest checkpoint; -1 before the first one. */
function checkpointStep(file: string): number {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { step: number }).step;
  } catch {
    return -1; // not written yet (the trainer writes it atomically, so never half of it)
  }
}

/** Polls `condition` until it holds, or fails after `timeoutMs`. */
async function waitFor(condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The Slurm job id of a launch, from the launcher's record in the run directory. */
function jobIdOf(rig: ExperimentRig, id: string, launch: number): string | undefined {
  const file = path.join(rig.runsRoot, id, 'attempts', `${id}-launch-${launch}`, 'slurm-job.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { jobId: string }).jobId : undefined;
}

describeWithSlurm('experiment workflow on Slurm', () => {
  test('the example trainer runs as a Slurm job with a GPU and the experiment completes', async () => {
    const rig = slurmRig();
    const id = newId('happy');
    const { result, status } = await run(rig, slurmSpec(id), () =>
      experimentHandle(env!.client, id).result(),
    );

    expect(result.end_stage).toBe('completed');
    expect(result.deliverables_status).toEqual({ curves: 'met', accuracy: 'met', checkpoint: 'met' });
    expect(status.attempts).toHaveLength(1);
    expect(status.attempts[0]).toMatchObject({ launcher: 'slurm', outcome: 'success', exit_code: 0 });
    expect(status.attempts[0]!.queued).toBeUndefined();
    const jobId = jobIdOf(rig, id, 1)!;
    expect(await jobFields(jobId)).toMatchObject({ JobState: 'COMPLETED', TresPerNode: 'gres:gpu:1' });
    expect(existsSync(path.join(rig.runsRoot, id, 'report.md'))).toBe(true);
  });

  test('a pinned experiment trains its worktree under Slurm, and the record names the job', async () => {
    const repo = makeRepo({ 'trainer/train.js': readFileSync(trainerPath, 'utf8') });
    try {
      const rig = slurmRig();
      const id = newId('pinned');
      const input = slurmSpec(id);
      const spec = await pinExperimentCode(
        ExperimentSpec.parse({
          ...input,
          code: { repo: repo.dir },
          training: {
            ...input.training,
            args: ['trainer/train.js', '--steps=60', '--eval-every=10', '--checkpoint-every=10'],
            working_directory: repo.dir,
          },
        }),
        rig.runsRoot,
      );
      const { result } = await run(rig, spec, () => experimentHandle(env!.client, id).result());
      expect(result.end_stage).toBe('completed');
      const record = (await readReproducibilityRecord(path.join(rig.runsRoot, id)))!;
      expect(record.code).toMatchObject({ pinned: true, commit: repo.git('rev-parse', 'HEAD') });
      expect(record.spec.cwd).toBe(path.join(rig.runsRoot, id, 'worktree'));
      expect(record.launches).toEqual([
        expect.objectContaining({ launcher: 'slurm', slurm_job_id: jobIdOf(rig, id, 1), exit_code: 0 }),
      ]);
      // Where it ran comes from the job itself: the node it ran on, and the GPUs Slurm gave it.
      const node = readFileSync(
        path.join(rig.runsRoot, id, 'attempts', `${id}-launch-1`, 'node.txt'),
        'utf8',
      );
      expect(node).toMatch(/^slurm_node=\S+$/m);
      expect(record.launches[0]!.host).toBe(/^host=(.*)$/m.exec(node)![1]);
      const devices = /^cuda_visible_devices=(.*)$/m.exec(node)![1];
      expect(devices).toMatch(/^\d/); // the spec asks for one GPU: Slurm names it
      expect(record.environment.cuda_visible_devices).toBe(devices);
      expect(repo.git('worktree', 'list').split('\n')).toHaveLength(1);
    } finally {
      repo.remove();
    }
  });

  test("while the job waits in Slurm's queue, the status, the CLI and the Web UI details say why", async () => {
    const rig = slurmRig({ extra_args: ['--hold'] });
    const id = newId('queued');
    const { result, status } = await run(
      rig,
      slurmSpec(id),
      async () => {
        const queued = await waitForStatus(env!.client, id, (s) => s.attempts.at(-1)?.queued !== undefined);
        const jobId = jobIdOf(rig, id, 1)!;
        const reason = `queued in Slurm as job ${jobId}: held by its user (release it with \`scontrol release <job id>\`) (JobHeldUser)`;
        expect(queued.attempts[0]!.queued).toBe(reason);
        expect(formatStatus(queued)).toContain(`launch 1   queued: ${reason}`);
        expect(describeChange(queued, undefined)).toContain(`  launch 1: ${reason}`);
        const metadata = await experimentHandle(env!.client, id).query(metadataQuery);
        expect(metadata.currentDetails).toContain(`**Queued:** ${reason}`);

        await slurmCommand('scontrol', ['release', jobId]);
        return experimentHandle(env!.client, id).result();
      },
      'queued',
    );
    expect(result.end_stage).toBe('completed');
    expect(status.attempts[0]!.queued).toBeUndefined();
    const metadata = await withWorker(env!, { taskQueue: rig.taskQueue, activities: rig.activities }, () =>
      experimentHandle(env!.client, id).query(metadataQuery),
    );
    expect(metadata.currentDetails).not.toContain('**Queued:**');
  });

  test('`scontrol requeue` is a preemption: the next launch resumes from the latest checkpoint', async () => {
    const rig = slurmRig();
    const id = newId('requeue');
    const checkpoint = path.join(rig.runsRoot, id, 'checkpoints', 'latest.json');
    const { result, status } = await run(
      rig,
      slurmSpec(id, ['--step-delay-ms=100']),
      async () => {
        // Requeue once the trainer has checkpointed a few steps, well before it ends.
        await waitFor(() => checkpointStep(checkpoint) >= 20, 'the trainer to checkpoint step 20', 60_000);
        await slurmCommand('scontrol', ['requeue', jobIdOf(rig, id, 1)!]);
        return experimentHandle(env!.client, id).result();
      },
      'requeue',
    );

    expect(result.end_stage).toBe('completed');
    expect(status.preemptions).toBe(1);
    expect(status.failures).toBe(0);
    expect(status.attempts.map((a) => a.outcome)).toEqual(['preempted', 'success']);
    expect(status.attempts[0]!.detail).toContain('Slurm requeued job');
    expect(status.attempts[1]!.resumed_from).toBe(checkpoint);
    // The trainer resumed: its second start began at the first one's checkpoint, not at step 0.
    const starts = readFileSync(path.join(rig.runsRoot, id, 'starts.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { startStep: number; resumedFrom?: string });
    expect(starts).toHaveLength(2);
    expect(starts[0]!.startStep).toBe(0);
    expect(starts[1]!.startStep).toBeGreaterThanOrEqual(20);
    expect(starts[1]!.resumedFrom).toBeDefined();
    // The requeued copy of the first job never ran the trainer again.
    expect((await jobFields(jobIdOf(rig, id, 1)!)).JobState).toBe('CANCELLED');
    expect(jobIdOf(rig, id, 2)).not.toBe(jobIdOf(rig, id, 1));
  });

  test("Slurm's warning signal before the time limit (SIGUSR1): the trainer checkpoints and the next job resumes", async () => {
    const rig = slurmRig({ warning_signal_seconds: 30 });
    const id = newId('warning');
    const checkpoint = path.join(rig.runsRoot, id, 'checkpoints', 'latest.json');
    const input = slurmSpec(id, ['--step-delay-ms=100']);
    const { result, status } = await run(
      rig,
      { ...input, training: { ...input.training, resources: { gpus: 1, cpus: 1, time_limit: '10m' } } },
      async () => {
        await waitFor(() => checkpointStep(checkpoint) >= 20, 'the trainer to checkpoint step 20', 60_000);
        const jobId = jobIdOf(rig, id, 1)!;
        // The job asked for the warning; Slurm would send it 30 s before the 10 minutes are up (give or take
        // its minute of resolution). Sent now, to the batch shell, as Slurm sends it.
        const record = JSON.parse(
          readFileSync(path.join(rig.runsRoot, id, 'attempts', `${id}-launch-1`, 'slurm-job.json'), 'utf8'),
        ) as { sbatchArgs: string[] };
        expect(record.sbatchArgs).toContain('--signal=B:USR1@30');
        await slurmCommand('scancel', ['--batch', '--signal=USR1', jobId]);
        return experimentHandle(env!.client, id).result();
      },
    );
    expect(result.end_stage).toBe('completed');
    expect(status.attempts.map((a) => a.outcome)).toEqual(['preempted', 'success']);
    expect(status.attempts[1]!.resumed_from).toBe(checkpoint);
    const log = readFileSync(path.join(rig.runsRoot, id, 'attempts', `${id}-launch-1`, 'slurm.log'), 'utf8');
    expect(log).toMatch(/Received SIGUSR1: checkpoint written at step \d+; exiting with code 143/);
    const starts = readFileSync(path.join(rig.runsRoot, id, 'starts.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { startStep: number });
    expect(starts[1]!.startStep).toBeGreaterThanOrEqual(20);
  });

  test('cancelling the experiment cancels its Slurm job (scancel)', async () => {
    const rig = slurmRig();
    const id = newId('cancel');
    const { result } = await run(rig, slurmSpec(id, ['--step-delay-ms=500']), async () => {
      await waitForStatus(env!.client, id, (s) => (s.attempts[0]?.step ?? 0) >= 1, 60_000);
      const jobId = jobIdOf(rig, id, 1)!;
      expect((await jobFields(jobId)).JobState).toBe('RUNNING');
      await cancelExperiment(env!.client, id);
      const error = await experimentHandle(env!.client, id)
        .result()
        .catch((e: unknown) => e);
      return { error, jobId };
    });
    expect(result.error).toBeInstanceOf(WorkflowFailedError);
    expect((await jobFields(result.jobId)).JobState).toBe('CANCELLED');
  });

  test("a job Slurm refuses (more GPUs than the cluster has) fails the experiment with sbatch's refusal", async () => {
    const rig = slurmRig();
    const id = newId('refused');
    const { result, status } = await run(rig, slurmSpec(id, [], 64), async () =>
      experimentHandle(env!.client, id)
        .result()
        .catch((e: unknown) => e),
    );
    expect(result).toBeInstanceOf(WorkflowFailedError);
    expect(status.stage).toBe('failed');
    expect(status.reason).toContain('Requested node configuration is not available');
  });
});
