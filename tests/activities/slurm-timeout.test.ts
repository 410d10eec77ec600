/**
 * A Slurm job over its time limit ends as `timeout`. Slurm's limits are whole minutes and it checks them
 * every 30 s or so, so this takes one to two minutes: it has its own file to run beside the others.
 */
import path from 'node:path';
import { awaitTrainingExit } from '../../src/activities/training/launcher';
import { SlurmLauncher } from '../../src/activities/training/slurm';
import { cleanUp, tempDir } from './local-processes';
import { TEST_PARTITION, describeWithSlurm, jobFields, slurmCommand } from '../support/slurm';

const submitted: string[] = [];

afterEach(async () => {
  for (const jobId of submitted.splice(0)) await slurmCommand('scancel', [jobId]).catch(() => undefined);
  await cleanUp();
});

describeWithSlurm('SlurmLauncher time limits', () => {
  test('a job over its time limit is stopped by Slurm and reported as a timeout', async () => {
    const runDir = tempDir();
    const launcher = new SlurmLauncher({ partition: TEST_PARTITION, pollIntervalMs: 100 });
    const { handle } = await launcher.launch({
      experimentId: 'exp-slurm',
      attempt: 1,
      key: 'too-slow',
      runDir,
      command: process.execPath,
      args: [
        '-e',
        `process.on('SIGTERM', () => { console.log('stopped at the time limit'); process.exit(143); });
         setInterval(() => {}, 1000);`,
      ],
      // 30 s, rounded up to Slurm's one minute.
      resources: { gpus: 0, cpus: 1, timeLimitSeconds: 30 },
    });
    submitted.push(handle.jobId!);
    expect((await jobFields(handle.jobId!)).TimeLimit).toBe('00:01:00');

    const state = await awaitTrainingExit(launcher, handle, {
      pollIntervalMs: 500,
      signal: AbortSignal.timeout(180_000),
    });
    expect(state).toMatchObject({ phase: 'exited', reason: 'timeout', exitCode: 143 });
    expect(state.detail).toBe(`Slurm job ${handle.jobId} reached its time limit`);
    expect((await jobFields(handle.jobId!)).JobState).toBe('TIMEOUT');
    const log = await launcher.logTail(handle);
    expect(log).toContain('stopped at the time limit');
    expect(log).toContain('DUE TO TIME LIMIT');
    expect(path.dirname(handle.attemptDir)).toBe(path.join(runDir, 'attempts'));
  }, 240_000);
});
