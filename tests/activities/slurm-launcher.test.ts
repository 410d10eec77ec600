/**
 * The Slurm launcher against a real single-node Slurm (scripts/slurm/setup.sh; see tests/support/slurm.ts):
 * jobs submitted with sbatch, adopted by key, watched, cancelled, requeued.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  LaunchRejectedError,
  awaitTrainingExit,
  type LaunchRequestInput,
  type TrainingHandle,
  type TrainingState,
} from '../../src/activities/training/launcher';
import { SLURM_ATTEMPT_FILES, SlurmLauncher } from '../../src/activities/training/slurm';
import { cleanUp, readJson, tempDir, waitFor } from './local-processes';
import { TEST_PARTITION, describeWithSlurm, jobFields, jobsNamed, slurmCommand } from '../support/slurm';

jest.setTimeout(120_000);

const submitted: string[] = [];

afterEach(async () => {
  // Jobs write into the test's temporary directories: stop them before those are removed.
  for (const jobId of submitted.splice(0)) {
    await slurmCommand('scancel', [jobId]).catch(() => undefined);
    await waitFor(
      async () => !/^(PENDING|RUNNING|COMPLETING|CONFIGURING)$/.test((await jobFields(jobId)).JobState ?? ''),
      `job ${jobId} to end`,
      { timeoutMs: 30_000, intervalMs: 200 },
    ).catch(() => undefined);
  }
  await cleanUp();
});

function launcherFor(options: ConstructorParameters<typeof SlurmLauncher>[0] = {}): SlurmLauncher {
  return new SlurmLauncher({ partition: TEST_PARTITION, pollIntervalMs: 100, ...options });
}

/** A request running `node -e script` with `args`; the job's working directory is the run directory. */
function nodeJob(runDir: string, key: string, script: string, extra: Partial<LaunchRequestInput> = {}) {
  return {
    experimentId: 'exp-slurm',
    attempt: 1,
    key,
    runDir,
    command: process.execPath,
    args: ['-e', script],
    ...extra,
  } satisfies LaunchRequestInput;
}

async function launched(launcher: SlurmLauncher, request: LaunchRequestInput) {
  const result = await launcher.launch(request);
  if (result.handle.jobId) submitted.push(result.handle.jobId);
  return result;
}

function exitOf(launcher: SlurmLauncher, handle: TrainingHandle): Promise<TrainingState> {
  return awaitTrainingExit(launcher, handle, { pollIntervalMs: 200, signal: AbortSignal.timeout(90_000) });
}

/** Runs until stopped, after writing its pid to `pid` in the run directory. */
const RUN_UNTIL_STOPPED = `
  require('fs').writeFileSync('pid', String(process.pid));
  require('fs').appendFileSync('starts.log', 'started\\n');
  setInterval(() => {}, 1000);`;

describeWithSlurm('SlurmLauncher on a real Slurm', () => {
  test('submits with sbatch, runs the command with its arguments untouched and reports completion', async () => {
    const runDir = tempDir();
    const script = `
      const fs = require('fs');
      fs.writeFileSync('job.json', JSON.stringify({
        argv: process.argv.slice(1),
        cwd: process.cwd(),
        env: Object.fromEntries(Object.entries(process.env).filter(([k]) => /^(LABLINE_|MY_|CUDA_|SLURM_JOB_GPUS$|SLURM_JOB_ID$)/.test(k))),
      }));
      console.log('trainer ran');
      console.error('trainer warned');`;
    const trap = path.join(runDir, 'pwned');
    const launcher = launcherFor();
    const { handle, adopted } = await launched(
      launcher,
      nodeJob(runDir, 'exp-slurm-launch-1', script, {
        args: ['-e', script, 'two words', `$(touch ${trap}); "quoted" 'single' \\ %j`],
        env: { MY_SETTING: 'a,b=c d' },
        resources: { gpus: 0, cpus: 2, memory: '100M', timeLimitSeconds: 600 },
      }),
    );
    expect(adopted).toBe(false);
    expect(handle).toMatchObject({ launcher: 'slurm', key: 'exp-slurm-launch-1', runDir });
    expect(handle.jobId).toMatch(/^\d+$/);

    const state = await exitOf(launcher, handle);
    expect(state).toMatchObject({ phase: 'exited', exitCode: 0 });
    expect(state.reason).toBeUndefined();

    const job = readJson(path.join(runDir, 'job.json'));
    expect(job.argv).toEqual(['two words', `$(touch ${trap}); "quoted" 'single' \\ %j`]);
    expect(fs.existsSync(trap)).toBe(false);
    expect(job.cwd).toBe(runDir);
    expect(job.env).toMatchObject({
      MY_SETTING: 'a,b=c d',
      LABLINE_RUN_DIR: runDir,
      LABLINE_EXPERIMENT_ID: 'exp-slurm',
      LABLINE_ATTEMPT: '1',
      LABLINE_LAUNCH_KEY: 'exp-slurm-launch-1',
      SLURM_JOB_ID: handle.jobId,
    });
    const tail = await launcher.logTail(handle);
    expect(tail).toContain('trainer ran');
    expect(tail).toContain('trainer warned');

    const fields = await jobFields(handle.jobId!);
    expect(fields).toMatchObject({
      JobState: 'COMPLETED',
      Partition: TEST_PARTITION,
      NumCPUs: '2',
      MinMemoryNode: '100M',
      TimeLimit: '00:10:00',
      StdOut: path.join(handle.attemptDir, SLURM_ATTEMPT_FILES.log),
      StdErr: path.join(handle.attemptDir, SLURM_ATTEMPT_FILES.log),
    });
    expect(fields.JobName).toMatch(/^exp-slurm-launch-1\.[0-9a-f]{8}$/);
    const record = readJson(path.join(handle.attemptDir, SLURM_ATTEMPT_FILES.job));
    expect(record).toMatchObject({ jobId: handle.jobId, jobName: fields.JobName, foundInSlurm: false });
  });

  test('with export_worker_environment off, the job gets only Labline, spec and WANDB_* variables, by name', async () => {
    const runDir = tempDir();
    const script = `require('fs').writeFileSync('env.json', JSON.stringify(process.env));`;
    const launcher = launcherFor({ exportWorkerEnvironment: false });
    const saved = { ...process.env };
    process.env.WANDB_API_KEY = 'test-key-not-a-secret';
    process.env.LABLINE_TEST_WORKER_ONLY = 'worker';
    try {
      const { handle } = await launched(
        launcher,
        nodeJob(runDir, 'minimal-env', script, { env: { WANDB_RUN_ID: 'exp-slurm', MY_SETTING: 'x' } }),
      );
      expect(await exitOf(launcher, handle)).toMatchObject({ phase: 'exited', exitCode: 0 });
      const env = readJson(path.join(runDir, 'env.json')) as Record<string, string>;
      expect(env).toMatchObject({
        WANDB_API_KEY: 'test-key-not-a-secret',
        WANDB_RUN_ID: 'exp-slurm',
        MY_SETTING: 'x',
        LABLINE_LAUNCH_KEY: 'minimal-env',
      });
      expect(env.LABLINE_TEST_WORKER_ONLY).toBeUndefined();
      // The secret went through sbatch's environment: neither its command line nor the record holds it.
      const record = fs.readFileSync(path.join(handle.attemptDir, SLURM_ATTEMPT_FILES.job), 'utf8');
      expect(record).not.toContain('test-key-not-a-secret');
      expect(JSON.parse(record).sbatchArgs).toContain(
        '--export=WANDB_RUN_ID,MY_SETTING,LABLINE_RUN_DIR,LABLINE_EXPERIMENT_ID,LABLINE_ATTEMPT,LABLINE_LAUNCH_KEY,WANDB_API_KEY',
      );
    } finally {
      for (const name of ['WANDB_API_KEY', 'LABLINE_TEST_WORKER_ONLY']) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
    }
  });

  test("GPU requests schedule as gres; the job sees Slurm's CUDA_VISIBLE_DEVICES, never the worker's", async () => {
    const runDir = tempDir();
    const script = `require('fs').writeFileSync(process.env.LABLINE_LAUNCH_KEY + '.json', JSON.stringify({
      cuda: process.env.CUDA_VISIBLE_DEVICES ?? null, gpus: process.env.SLURM_JOB_GPUS ?? null }));`;
    const launcher = launcherFor();
    const saved = process.env.CUDA_VISIBLE_DEVICES;
    process.env.CUDA_VISIBLE_DEVICES = '7';
    try {
      const two = await launched(
        launcher,
        nodeJob(runDir, 'gpu-two', script, { resources: { gpus: 2, cpus: 1 } }),
      );
      const none = await launched(
        launcher,
        nodeJob(runDir, 'gpu-none', script, { resources: { gpus: 0, cpus: 1 } }),
      );
      expect(await exitOf(launcher, two.handle)).toMatchObject({ phase: 'exited', exitCode: 0 });
      expect(await exitOf(launcher, none.handle)).toMatchObject({ phase: 'exited', exitCode: 0 });

      const seen = readJson(path.join(runDir, 'gpu-two.json')) as { cuda: string | null; gpus: string };
      expect(seen.gpus.split(',')).toHaveLength(2);
      expect(seen.cuda).toBe(seen.gpus);
      expect((await jobFields(two.handle.jobId!)).TresPerNode).toBe('gres:gpu:2');
      expect(readJson(path.join(runDir, 'gpu-none.json'))).toEqual({ cuda: null, gpus: null });
    } finally {
      if (saved === undefined) delete process.env.CUDA_VISIBLE_DEVICES;
      else process.env.CUDA_VISIBLE_DEVICES = saved;
    }
  });

  test('while the job is queued its pending reason is the status detail; released, it runs', async () => {
    const runDir = tempDir();
    const launcher = launcherFor({ extraArgs: ['--hold'] });
    const { handle } = await launched(launcher, nodeJob(runDir, 'held', `console.log('ran')`));
    const pending = await launcher.status(handle);
    expect(pending.phase).toBe('pending');
    expect(pending.detail).toBe(
      `queued in Slurm as job ${handle.jobId}: held by its user (release it with \`scontrol release <job id>\`) (JobHeldUser)`,
    );

    await slurmCommand('scontrol', ['release', handle.jobId!]);
    expect(await exitOf(launcher, handle)).toMatchObject({ phase: 'exited', exitCode: 0 });
  });

  test('a second launch with the same key adopts the job, from another launcher and when racing', async () => {
    const runDir = tempDir();
    const first = await launched(launcherFor(), nodeJob(runDir, 'adopt-me', RUN_UNTIL_STOPPED));
    const again = await launcherFor().launch(nodeJob(runDir, 'adopt-me', RUN_UNTIL_STOPPED));
    expect(again).toEqual({ handle: first.handle, adopted: true });

    // Two workers launching a new key at the same moment: one submits, the other adopts.
    const racing = await Promise.all([
      launcherFor().launch(nodeJob(runDir, 'race', RUN_UNTIL_STOPPED)),
      launcherFor().launch(nodeJob(runDir, 'race', RUN_UNTIL_STOPPED)),
    ]);
    for (const result of racing) if (result.handle.jobId) submitted.push(result.handle.jobId);
    expect(racing.map((r) => r.adopted).sort()).toEqual([false, true]);
    expect(racing[0].handle.jobId).toBe(racing[1].handle.jobId);

    for (const handle of [first.handle, racing[0].handle]) {
      const name = (await jobFields(handle.jobId!)).JobName!;
      expect(await jobsNamed(name)).toEqual([handle.jobId]);
    }
  });

  test('a worker that died after sbatch and before recording the job: the retry finds it in Slurm', async () => {
    const runDir = tempDir();
    const launcher = launcherFor();
    const { handle } = await launched(launcher, nodeJob(runDir, 'crashed', RUN_UNTIL_STOPPED));
    // What the dead worker left: the job's name and its lock, but no record of the job id.
    fs.rmSync(path.join(handle.attemptDir, SLURM_ATTEMPT_FILES.job));
    fs.writeFileSync(
      path.join(handle.attemptDir, SLURM_ATTEMPT_FILES.lock),
      JSON.stringify({ pid: 999_999, hostname: os.hostname(), acquiredAt: '2020-01-01' }),
    );

    const retried = await launcherFor().launch(nodeJob(runDir, 'crashed', RUN_UNTIL_STOPPED));
    expect(retried).toEqual({ handle, adopted: true });
    expect(readJson(path.join(handle.attemptDir, SLURM_ATTEMPT_FILES.job))).toMatchObject({
      jobId: handle.jobId,
      foundInSlurm: true,
    });
    expect(fs.existsSync(path.join(handle.attemptDir, SLURM_ATTEMPT_FILES.lock))).toBe(false);
    const name = (await jobFields(handle.jobId!)).JobName!;
    expect(await jobsNamed(name)).toEqual([handle.jobId]);
  });

  test('cancel runs scancel: the job ends CANCELLED, its process is gone, and a second cancel is harmless', async () => {
    const runDir = tempDir();
    const launcher = launcherFor();
    const { handle } = await launched(launcher, nodeJob(runDir, 'cancel-me', RUN_UNTIL_STOPPED));
    await waitFor(async () => (await launcher.status(handle)).phase === 'running', 'the job to run');
    const pid = Number(
      await waitFor(
        () => fs.existsSync(path.join(runDir, 'pid')) && fs.readFileSync(path.join(runDir, 'pid'), 'utf8'),
        'the trainer pid',
      ),
    );

    await launcher.cancel(handle);
    expect((await jobFields(handle.jobId!)).JobState).toBe('CANCELLED');
    await waitFor(() => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 'the trainer to be gone');
    expect(await launcher.status(handle)).toMatchObject({ phase: 'exited', reason: 'cancelled' });
    await expect(launcher.cancel(handle)).resolves.toBeUndefined();
  });

  test('a failing job reports its exit code and its log', async () => {
    const runDir = tempDir();
    const launcher = launcherFor();
    const { handle } = await launched(
      launcher,
      nodeJob(runDir, 'fails', `console.error('RuntimeError: the data loader broke'); process.exit(3)`),
    );
    const state = await exitOf(launcher, handle);
    expect(state).toMatchObject({ phase: 'exited', exitCode: 3, signal: null });
    expect(state.reason).toBeUndefined();
    expect(state.detail).toContain('failed');
    expect(await launcher.logTail(handle)).toContain('RuntimeError: the data loader broke');
    expect((await jobFields(handle.jobId!)).JobState).toBe('FAILED');

    // A command that does not exist fails the same way (the shell's 127), not as a success.
    const missing = await launched(
      launcher,
      nodeJob(runDir, 'missing', '', { command: 'labline-no-such-trainer', args: [] }),
    );
    expect(await exitOf(launcher, missing.handle)).toMatchObject({ phase: 'exited', exitCode: 127 });
  });

  test('sbatch refusals (too many GPUs, unknown partition) are rejected launches, and nothing is recorded', async () => {
    const runDir = tempDir();
    const tooMany = await launcherFor()
      .launch(nodeJob(runDir, 'too-many', '', { resources: { gpus: 64, cpus: 1 } }))
      .catch((e: unknown) => e);
    expect(tooMany).toBeInstanceOf(LaunchRejectedError);
    expect((tooMany as Error).message).toContain('Requested node configuration is not available');

    const attemptDir = path.join(runDir, 'attempts', 'too-many');
    expect(fs.existsSync(path.join(attemptDir, SLURM_ATTEMPT_FILES.job))).toBe(false);
    expect(fs.existsSync(path.join(attemptDir, SLURM_ATTEMPT_FILES.lock))).toBe(false);

    const partition = await launcherFor({ partition: 'no-such-partition' })
      .launch(nodeJob(runDir, 'nowhere', ''))
      .catch((e: unknown) => e);
    expect(partition).toBeInstanceOf(LaunchRejectedError);
    expect((partition as Error).message).toMatch(/invalid partition/i);
  });

  test('`scontrol requeue` ends the launch as preempted, and the requeued copy is cancelled before it runs', async () => {
    const runDir = tempDir();
    const launcher = launcherFor();
    const { handle } = await launched(launcher, nodeJob(runDir, 'requeued', RUN_UNTIL_STOPPED));
    await waitFor(() => fs.existsSync(path.join(runDir, 'pid')), 'the trainer to start');

    await slurmCommand('scontrol', ['requeue', handle.jobId!]);
    const state = await exitOf(launcher, handle);
    expect(state).toMatchObject({ phase: 'exited', reason: 'preempted', exitCode: null });
    expect(state.detail).toContain(`Slurm requeued job ${handle.jobId}`);

    const fields = await jobFields(handle.jobId!);
    expect(fields).toMatchObject({ JobState: 'CANCELLED', Restarts: '1' });
    expect(fs.readFileSync(path.join(runDir, 'starts.log'), 'utf8')).toBe('started\n');
    // Recorded: Slurm's later view of the cancelled copy does not turn the preemption into a cancellation.
    expect(await launcher.status(handle)).toMatchObject({ phase: 'exited', reason: 'preempted' });
  });

  test('a requeued copy that Slurm starts before Labline looks exits without running the trainer again', async () => {
    const runDir = tempDir();
    const launcher = launcherFor();
    const { handle } = await launched(launcher, nodeJob(runDir, 'restarted', RUN_UNTIL_STOPPED));
    await waitFor(() => fs.existsSync(path.join(runDir, 'pid')), 'the trainer to start');

    await slurmCommand('scontrol', ['requeue', handle.jobId!]);
    // Slurm holds a requeued job back for a while; let it start now, as it would later on a busy cluster.
    await waitFor(
      async () => (await jobFields(handle.jobId!)).JobState === 'PENDING',
      'the job to be requeued',
      {
        intervalMs: 100,
      },
    );
    await slurmCommand('scontrol', ['update', `JobId=${handle.jobId}`, 'StartTime=now']);
    await waitFor(async () => (await jobFields(handle.jobId!)).JobState === 'COMPLETED', 'the copy to run', {
      timeoutMs: 60_000,
      intervalMs: 200,
    });

    expect(await launcher.status(handle)).toMatchObject({ phase: 'exited', reason: 'preempted' });
    expect(fs.readFileSync(path.join(runDir, 'starts.log'), 'utf8')).toBe('started\n');
    expect(await launcher.logTail(handle)).toContain('not starting the trainer again');
  });
});
