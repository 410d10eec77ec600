/**
 * What the Slurm launcher makes of Slurm's answers, without a cluster: every job state mapped to the
 * launcher's state (the ones a single-node test cluster cannot produce included), the text formats parsed, the
 * settings validated. The launcher against a real Slurm is in tests/activities/slurm-launcher.test.ts.
 */
import { parseScontrolJob } from '../../src/activities/training/slurm-cli';
import { SlurmSettings, slurmLauncherOptionsOf } from '../../src/activities/training/slurm-settings';
import {
  describePendingReason,
  isFinalSlurmState,
  trainingStateOf,
  type SlurmJobInfo,
} from '../../src/activities/training/slurm-state';
import { SlurmLauncher, slurmMemory } from '../../src/activities/training/slurm';
import { LablineSettings } from '../../src/client/settings';
import { gpuQueueConcurrency } from '../../src/workers/worker';

function job(state: string, extra: Partial<SlurmJobInfo> = {}): SlurmJobInfo {
  return { jobId: '42', state, exitCode: 0, exitSignal: 0, restarts: 0, source: 'scontrol', ...extra };
}

describe('trainingStateOf', () => {
  test.each([
    ['TIMEOUT', 'timeout'],
    ['DEADLINE', 'timeout'],
    ['OUT_OF_MEMORY', 'out-of-memory'],
    ['PREEMPTED', 'preempted'],
    ['NODE_FAIL', 'node-failure'],
    ['BOOT_FAIL', 'node-failure'],
    ['CANCELLED', 'cancelled'],
    ['REVOKED', 'cancelled'],
    ['REQUEUED', 'preempted'],
    ['REQUEUE_HOLD', 'preempted'],
    ['REQUEUE_FED', 'preempted'],
  ])('%s ends the launch with reason %s', (state, reason) => {
    expect(trainingStateOf(job(state, { exitCode: 0, exitSignal: 15 }))).toMatchObject({
      phase: 'exited',
      reason,
    });
  });

  test('COMPLETED is an exit with the script exit code and no reason; FAILED keeps a non-zero code', () => {
    const completed = trainingStateOf(
      job('COMPLETED', { startTime: '2024-01-01T00:00:00.000Z', endTime: '2024-01-01T01:00:00.000Z' }),
    );
    expect(completed).toEqual({
      phase: 'exited',
      exitCode: 0,
      signal: null,
      detail: 'Slurm job 42 completed',
      startedAt: '2024-01-01T00:00:00.000Z',
      endedAt: '2024-01-01T01:00:00.000Z',
    });
    expect(trainingStateOf(job('FAILED', { exitCode: 2, reason: 'NonZeroExitCode' }))).toMatchObject({
      phase: 'exited',
      exitCode: 2,
      detail: 'Slurm job 42 failed (NonZeroExitCode)',
    });
  });

  test('FAILED with exit code 0 (the script never ran) is not mistaken for a success', () => {
    expect(trainingStateOf(job('FAILED', { reason: 'JobLaunchFailure' }))).toMatchObject({
      phase: 'exited',
      exitCode: null,
      signal: null,
    });
  });

  test('a signal in ExitCode becomes the signal name', () => {
    expect(trainingStateOf(job('FAILED', { exitCode: 0, exitSignal: 9 }))).toMatchObject({
      exitCode: null,
      signal: 'SIGKILL',
    });
  });

  test('pending jobs say why, in words and with Slurm own reason; forecast times are left out', () => {
    const state = trainingStateOf(
      job('PENDING', {
        reason: 'Resources',
        startTime: '2030-01-01T00:00:00.000Z',
        endTime: '2030-01-02T00:00:00.000Z',
      }),
    );
    expect(state).toEqual({
      phase: 'pending',
      detail:
        'queued in Slurm as job 42: waiting for resources (GPUs, CPUs or memory) to free up (Resources)',
    });
    expect(trainingStateOf(job('CONFIGURING'))).toMatchObject({ phase: 'pending' });
  });

  test('running states run; a running job reports its start but not the forecast end', () => {
    expect(
      trainingStateOf(
        job('RUNNING', { startTime: '2024-01-01T00:00:00.000Z', endTime: '2024-01-01T02:00:00.000Z' }),
      ),
    ).toEqual({ phase: 'running', startedAt: '2024-01-01T00:00:00.000Z' });
    expect(trainingStateOf(job('SUSPENDED'))).toMatchObject({
      phase: 'running',
      detail: 'Slurm job 42 is suspended',
    });
    expect(trainingStateOf(job('COMPLETING'))).toMatchObject({ phase: 'running' });
  });

  test('a requeued job is preempted whatever its state now, once its first run has stopped', () => {
    for (const state of ['PENDING', 'RUNNING', 'COMPLETED', 'CANCELLED']) {
      expect(trainingStateOf(job(state, { restarts: 1 }))).toMatchObject({
        phase: 'exited',
        reason: 'preempted',
        exitCode: null,
      });
    }
    // Its processes are still being stopped: the next launch must wait for them.
    expect(trainingStateOf(job('COMPLETING', { restarts: 1 }))).toMatchObject({ phase: 'running' });
  });

  test('a state this code does not know keeps the launch running rather than guessing an end', () => {
    expect(trainingStateOf(job('SOMETHING_NEW'))).toMatchObject({
      phase: 'running',
      detail: 'Slurm job 42 is SOMETHING_NEW',
    });
    expect(isFinalSlurmState('COMPLETED')).toBe(true);
    expect(isFinalSlurmState('PENDING')).toBe(false);
    expect(isFinalSlurmState('COMPLETING')).toBe(false);
  });
});

describe('describePendingReason', () => {
  test('names common reasons, QOS and account limits, and passes unknown ones through', () => {
    expect(describePendingReason('Priority')).toBe('jobs with a higher priority go first (Priority)');
    expect(describePendingReason('QOSMaxGRESPerUser')).toBe(
      'a limit of its QOS or account holds it (QOSMaxGRESPerUser)',
    );
    expect(describePendingReason('None')).toBe('waiting to be scheduled');
    expect(describePendingReason(undefined)).toBe('waiting to be scheduled');
    expect(describePendingReason('SomethingElse')).toBe('Slurm says SomethingElse');
  });
});

describe('parseScontrolJob', () => {
  test('reads the fields it needs from a one-line scontrol record, ignoring look-alikes in later paths', () => {
    const line =
      'JobId=7 JobName=exp-a-launch-1.0badc0de UserId=root(0) JobState=PENDING Reason=Priority Dependency=(null) ' +
      'Requeue=1 Restarts=2 BatchFlag=1 ExitCode=0:15 RunTime=00:00:00 StartTime=Unknown EndTime=Unknown ' +
      'Command=/x/slurm-job.sh WorkDir=/runs/a JobState=COMPLETED StdOut=/runs/a b/slurm.log';
    expect(parseScontrolJob('7', line)).toEqual({
      jobId: '7',
      state: 'PENDING',
      reason: 'Priority',
      exitCode: 0,
      exitSignal: 15,
      restarts: 2,
      source: 'scontrol',
    });
  });

  test('CANCELLED by <uid> and flags are cut down to the state', () => {
    expect(parseScontrolJob('8', 'JobId=8 JobState=CANCELLED+ Reason=None').state).toBe('CANCELLED');
  });
});

describe('Slurm settings', () => {
  test('default to gres GPUs, requeue and the worker environment', () => {
    const settings = SlurmSettings.parse({ partition: 'gpu' });
    expect(slurmLauncherOptionsOf(settings)).toMatchObject({
      partition: 'gpu',
      gpuOption: 'gres',
      requeue: true,
      exportWorkerEnvironment: true,
      extraArgs: [],
      commandTimeoutMs: 30_000,
    });
    expect(() => new SlurmLauncher(slurmLauncherOptionsOf(settings))).not.toThrow();
  });

  test('extra sbatch options that Labline sets itself, or that are not options, are refused by path', () => {
    const parsed = LablineSettings.safeParse({
      slurm: { extra_args: ['--constraint=a100', '--output=/tmp/x', '-Jname', 'exclusive'] },
    });
    expect(parsed.success).toBe(false);
    const problems = parsed.error!.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    expect(problems).toEqual([
      'slurm.extra_args.1: is set by Labline itself (job name, output files, working directory, environment, requeue); remove it',
      'slurm.extra_args.2: is set by Labline itself (job name, output files, working directory, environment, requeue); remove it',
      'slurm.extra_args.3: is not an sbatch option (options start with "-", e.g. "--constraint=a100")',
    ]);
  });

  test('memory sizes become what --mem takes', () => {
    expect(slurmMemory('16G')).toBe('16G');
    expect(slurmMemory('512MiB')).toBe('512M');
    expect(slurmMemory('1.5G')).toBe('1536M');
  });
});

describe('GPU task queue concurrency', () => {
  const base = LablineSettings.parse({});
  test("is the host's GPU slots, or training.max_concurrent without GPU ids", () => {
    expect(gpuQueueConcurrency({ ...base, gpus: { ids: ['0', '1', '2'] } })).toBe(3);
    expect(gpuQueueConcurrency({ ...base, training: { ...base.training, max_concurrent: 5 } })).toBe(5);
  });

  test('adds slurm.max_jobs when Slurm is set up: those jobs use the cluster GPUs', () => {
    const slurm = SlurmSettings.parse({ max_jobs: 20 });
    expect(gpuQueueConcurrency({ ...base, gpus: { ids: ['0', '1'] }, slurm })).toBe(22);
  });
});
