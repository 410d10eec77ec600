import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  awaitTrainingExit,
  LaunchRejectedError,
  launchKeyFor,
  type LaunchRequestInput,
  type TrainingHandle,
  type TrainingState,
} from '../../src/activities/training/launcher';
import { LocalLauncher } from '../../src/activities/training/local';
import { diagnoseTrainingExit } from '../../src/experiment/failures';
import { listAttempts, type LaunchRecord } from '../../src/activities/training/local-attempt';
import {
  cleanUp,
  exists,
  exitOf,
  jsonLines,
  jsonOutput,
  readJson,
  REPO_ROOT,
  running,
  spawnTs,
  tempDir,
  trainer,
  waitFor,
} from './local-processes';

const LAUNCH_FIXTURE = path.join(__dirname, 'fixtures', 'launch.ts');

afterEach(cleanUp);

function request(runDir: string, overrides: Partial<LaunchRequestInput> = {}): LaunchRequestInput {
  return {
    experimentId: 'exp-test',
    attempt: 1,
    key: launchKeyFor('exp-test', 1),
    runDir,
    ...trainer('--steps', '60', '--eval-every', '20', '--checkpoint-every', '20'),
    ...overrides,
  };
}

function untilExited(
  launcher: LocalLauncher,
  handle: TrainingHandle,
  timeoutMs = 30_000,
): Promise<TrainingState> {
  return waitFor(
    async () => {
      const state = await launcher.status(handle);
      return state.phase === 'exited' ? state : undefined;
    },
    `${handle.key} to exit`,
    { timeoutMs },
  );
}

function untilStep(launcher: LocalLauncher, handle: TrainingHandle, step: number): Promise<TrainingState> {
  return waitFor(async () => {
    const state = await launcher.status(handle);
    if (state.phase === 'exited')
      throw new Error(`${handle.key} exited before step ${step}: ${JSON.stringify(state)}`);
    return (state.progress?.step ?? -1) >= step ? state : undefined;
  }, `${handle.key} to reach step ${step}`);
}

describe('LocalLauncher', () => {
  test('runs the trainer to exit 0, recording launch.json, pid and exit.json, with progress from the metrics', async () => {
    const runDir = tempDir();
    const launcher = new LocalLauncher();
    const { handle, adopted } = await launcher.launch(request(runDir));
    expect(adopted).toBe(false);
    expect(handle).toMatchObject({ launcher: 'local', key: 'exp-test-a1', runDir });
    expect(handle.attemptDir).toBe(path.join(runDir, 'attempts', 'exp-test-a1'));
    // The claim was prepared beside it and renamed into place: nothing else is left in attempts/.
    expect(fs.readdirSync(path.join(runDir, 'attempts'))).toEqual(['exp-test-a1']);
    expect(handle.pid).toEqual(expect.any(Number));

    const state = await untilExited(launcher, handle);
    expect(state).toMatchObject({ phase: 'exited', exitCode: 0, signal: null });
    expect(state.reason).toBeUndefined();
    expect(state.progress).toMatchObject({
      step: 60,
      loss: expect.any(Number),
      updatedAt: expect.any(String),
    });

    const files = fs.readdirSync(handle.attemptDir);
    expect(files).toEqual(
      expect.arrayContaining([
        'launch.json',
        'pid',
        'trainer.json',
        'supervisor.json',
        'exit.json',
        'train.log',
      ]),
    );
    expect(Number(fs.readFileSync(path.join(handle.attemptDir, 'pid'), 'utf8'))).toBe(handle.pid);
    expect(readJson(path.join(handle.attemptDir, 'exit.json'))).toMatchObject({
      exitCode: 0,
      signal: null,
      endedAt: expect.any(String),
    });
    const launch = readJson(path.join(handle.attemptDir, 'launch.json'));
    expect(launch).toMatchObject({
      key: 'exp-test-a1',
      command: process.execPath,
      cwd: runDir,
      launchedAt: expect.any(String),
    });
    expect(launch.env).toEqual({
      LABLINE_RUN_DIR: runDir,
      LABLINE_EXPERIMENT_ID: 'exp-test',
      LABLINE_ATTEMPT: '1',
      LABLINE_LAUNCH_KEY: 'exp-test-a1',
    });
    expect(await launcher.logTail(handle, 1)).toMatch(/^Done: eval\/accuracy/);
  });

  test('a second launch with the same key adopts the first run instead of starting another', async () => {
    const runDir = tempDir();
    const launcher = new LocalLauncher();
    const first = await launcher.launch(request(runDir));
    const second = await new LocalLauncher().launch(request(runDir));
    expect(second).toEqual({ handle: first.handle, adopted: true });
    await untilExited(launcher, first.handle);
    const third = await launcher.launch(request(runDir));
    expect(third.adopted).toBe(true);
    expect(jsonLines(path.join(runDir, 'starts.jsonl'))).toHaveLength(1);
  });

  test('a launch whose launcher died after starting the supervisor but before writing launch.json is adopted with its trainer', async () => {
    const runDir = tempDir();
    const slow = request(runDir, trainer('--steps', '200', '--step-delay-ms', '10'));
    const first = await new LocalLauncher().launch(slow);
    // What a worker SIGKILLed in the middle of `spawn` leaves: the claim, a detached supervisor that went on
    // and started the trainer, and no launch.json (bench/chaos.ts hit this when it killed a worker right after
    // approving a launch).
    fs.rmSync(path.join(first.handle.attemptDir, 'launch.json'));

    // Short, so that waiting for a launch.json that never comes would end in a handle without the trainer.
    const second = await new LocalLauncher({ adoptTimeoutMs: 1000 }).launch(slow);
    expect(second).toEqual({ handle: first.handle, adopted: true });
    expect(await untilExited(new LocalLauncher(), second.handle)).toMatchObject({ exitCode: 0 });
    expect(jsonLines(path.join(runDir, 'starts.jsonl'))).toHaveLength(1);
  });

  describe('a claim whose launcher died before starting anything', () => {
    /** What a worker SIGKILLed between claiming a key and spawning its supervisor leaves behind. */
    async function deadClaim(runDir: string, ageMs: number): Promise<string> {
      const attemptDir = path.join(runDir, 'attempts', launchKeyFor('exp-test', 1));
      const gone = spawn(process.execPath, ['-e', '']);
      const pid = gone.pid!;
      await exitOf(gone);
      fs.mkdirSync(attemptDir, { recursive: true });
      const claimedAt = new Date(Date.now() - ageMs);
      const claim = {
        pid,
        hostname: os.hostname(),
        nonce: 'dead-launcher',
        claimedAt: claimedAt.toISOString(),
      };
      fs.writeFileSync(path.join(attemptDir, 'claim.json'), JSON.stringify(claim));
      fs.utimesSync(attemptDir, claimedAt, claimedAt);
      return attemptDir;
    }

    test('is taken over by the next launch, which starts the trainer once', async () => {
      const runDir = tempDir();
      const attemptDir = await deadClaim(runDir, 60_000);
      const launch = await new LocalLauncher({ adoptTimeoutMs: 1000 }).launch(request(runDir));
      expect(launch.adopted).toBe(false);
      expect(launch.handle.pid).toEqual(expect.any(Number));
      expect(await untilExited(new LocalLauncher(), launch.handle)).toMatchObject({ exitCode: 0 });
      expect(jsonLines(path.join(runDir, 'starts.jsonl'))).toHaveLength(1);
      // The dead claim is kept aside, not deleted, and the attempt list does not mistake it for a launch.
      expect(fs.readdirSync(path.join(runDir, 'attempts', '.abandoned'))).toHaveLength(1);
      expect(listAttempts(runDir).map((entry) => entry.attemptDir)).toEqual([attemptDir]);
    });

    test('is waited out past the adopt timeout while it is younger than the startup grace', async () => {
      const runDir = tempDir();
      await deadClaim(runDir, 0);
      const launcher = new LocalLauncher({ adoptTimeoutMs: 100, startupGraceMs: 1500 });
      const launch = await launcher.launch(request(runDir));
      expect(launch.adopted).toBe(false);
      expect(await untilExited(launcher, launch.handle)).toMatchObject({ exitCode: 0 });
      expect(jsonLines(path.join(runDir, 'starts.jsonl'))).toHaveLength(1);
    });

    test('left empty by a Labline from before claim.json, is taken over too', async () => {
      const runDir = tempDir();
      const attemptDir = await deadClaim(runDir, 60_000);
      fs.rmSync(path.join(attemptDir, 'claim.json'));
      const past = new Date(Date.now() - 60_000);
      fs.utimesSync(attemptDir, past, past);
      const launch = await new LocalLauncher({ adoptTimeoutMs: 1000 }).launch(request(runDir));
      expect(launch.adopted).toBe(false);
      expect(await untilExited(new LocalLauncher(), launch.handle)).toMatchObject({ exitCode: 0 });
    });

    test('is not taken over while the launcher that claimed it is alive', async () => {
      const runDir = tempDir();
      const attemptDir = await deadClaim(runDir, 60_000);
      const claim = readJson(path.join(attemptDir, 'claim.json')) as Record<string, unknown>;
      fs.writeFileSync(path.join(attemptDir, 'claim.json'), JSON.stringify({ ...claim, pid: process.pid }));
      const past = new Date(Date.now() - 60_000);
      fs.utimesSync(attemptDir, past, past);
      const launch = await new LocalLauncher({ adoptTimeoutMs: 300 }).launch(request(runDir));
      expect(launch).toMatchObject({ adopted: true, handle: { attemptDir } });
      expect(launch.handle.pid).toBeUndefined();
      expect(fs.existsSync(path.join(runDir, 'attempts', '.abandoned'))).toBe(false);
    });

    test('a supervisor that starts after its claim was taken over starts nothing', async () => {
      const runDir = tempDir();
      const attemptDir = await deadClaim(runDir, 0);
      const supervisor = spawn(process.execPath, [
        path.join(REPO_ROOT, 'src', 'activities', 'training', 'local-supervisor.js'),
        JSON.stringify({
          attemptDir,
          claim: 'an-older-claim',
          ...trainer('--steps', '5'),
          cwd: runDir,
          killGraceMs: 1000,
        }),
      ]);
      expect(await exitOf(supervisor)).toMatchObject({ code: 0 });
      expect(fs.readdirSync(attemptDir)).toEqual(['claim.json']);
      expect(fs.existsSync(path.join(runDir, 'starts.jsonl'))).toBe(false);
    });
  });

  test('concurrent launches of one key from separate processes start exactly one trainer', async () => {
    const runDir = tempDir();
    const goFile = path.join(runDir, 'go');
    const launchers = [0, 1, 2].map(() =>
      spawnTs(LAUNCH_FIXTURE, [JSON.stringify({ options: {}, request: request(runDir), goFile })]),
    );
    const outputs = launchers.map((child) => jsonOutput(child));
    for (const output of outputs) expect(await output.next()).toBe('ready');
    fs.writeFileSync(goFile, '');
    const results = await Promise.all(outputs.map((output) => output.next()));

    expect(results.filter((result) => result.adopted === false)).toHaveLength(1);
    const pids = new Set(results.map((result) => result.handle.pid));
    expect(pids.size).toBe(1);
    await untilExited(new LocalLauncher(), results[0].handle);
    expect(jsonLines(path.join(runDir, 'starts.jsonl'))).toHaveLength(1);
  });

  test('the trainer outlives a SIGKILLed launching process, and its exit is recorded for a new launcher', async () => {
    const runDir = tempDir();
    // At least 200 × 10 ms: the run is still going when the launcher is killed right after it reports.
    const slow = request(runDir, trainer('--steps', '200', '--step-delay-ms', '10'));
    const worker = spawnTs(LAUNCH_FIXTURE, [JSON.stringify({ options: {}, request: slow, hold: true })]);
    const { handle } = (await jsonOutput(worker).next()) as { handle: TrainingHandle };
    worker.kill('SIGKILL');
    await exitOf(worker);
    const killedAt = Date.now();

    const launcher = new LocalLauncher();
    expect((await launcher.status(handle)).phase).toBe('running');
    const state = await untilExited(launcher, handle);
    expect(state).toMatchObject({ exitCode: 0, signal: null });
    const [end] = jsonLines(path.join(runDir, 'ends.jsonl'));
    expect(end).toMatchObject({ status: 'completed', endStep: 200 });
    expect(Date.parse(String(end?.endedAt))).toBeGreaterThan(killedAt);
    expect(jsonLines(path.join(runDir, 'starts.jsonl'))).toHaveLength(1);
  });

  test('cancel stops the trainer with SIGTERM (it checkpoints and exits 143) and reports it cancelled', async () => {
    const runDir = tempDir();
    const launcher = new LocalLauncher({ killGraceMs: 10_000 });
    const { handle } = await launcher.launch(
      request(runDir, trainer('--steps', '100000', '--step-delay-ms', '5')),
    );
    await untilStep(launcher, handle, 3);
    await launcher.cancel(handle);

    expect(running(handle.pid!)).toBe(false);
    expect(exists(-handle.pid!)).toBe(false);
    const state = await launcher.status(handle);
    expect(state).toMatchObject({ phase: 'exited', exitCode: 143, reason: 'cancelled' });
    const [end] = jsonLines(path.join(runDir, 'ends.jsonl'));
    expect(end).toMatchObject({ status: 'stopped', exitCode: 143 });
    expect(readJson(path.join(runDir, 'checkpoints', 'latest.json')).step).toBe(end?.endStep);
    expect(await launcher.logTail(handle, 1)).toBe(
      `Received SIGTERM: checkpoint written at step ${String(end?.endStep)}; exiting with code 143`,
    );

    await launcher.cancel(handle); // idempotent
    expect((await launcher.status(handle)).exitCode).toBe(143);
  });

  test('cancel SIGKILLs the whole process group when members ignore SIGTERM', async () => {
    const runDir = tempDir();
    // A "trainer" that ignores SIGTERM and has a child (think data loader) that ignores it too.
    const script = `
      const fs = require('fs'), { spawn } = require('child_process');
      const identity = (pid) => { const s = fs.readFileSync('/proc/' + pid + '/stat', 'utf8');
        return { pid, startTicks: s.slice(s.lastIndexOf(')') + 2).split(' ')[19] }; };
      process.on('SIGTERM', () => {});
      const child = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"], { stdio: 'ignore' });
      // Written whole (temp file + rename): the test polls for it and must never read half of it.
      fs.writeFileSync('loader.identity.tmp', JSON.stringify(identity(child.pid)));
      fs.renameSync('loader.identity.tmp', 'loader.identity.json');
      setInterval(() => {}, 1000);`;
    const launcher = new LocalLauncher({ killGraceMs: 300 });
    const { handle } = await launcher.launch(
      request(runDir, { command: process.execPath, args: ['-e', script] }),
    );
    const loader = await waitFor(() => {
      const file = path.join(runDir, 'loader.identity.json');
      return fs.existsSync(file) ? (readJson(file) as { pid: number }) : undefined;
    }, 'the child process to start');
    expect(running(loader.pid)).toBe(true);

    await launcher.cancel(handle);
    expect(running(handle.pid!)).toBe(false);
    expect(running(loader.pid)).toBe(false);
    expect(exists(-handle.pid!)).toBe(false);
    expect(await launcher.status(handle)).toMatchObject({
      phase: 'exited',
      exitCode: null,
      signal: 'SIGKILL',
      reason: 'cancelled',
    });
  });

  test('a crash exits 1 and the log tail shows the error with its stack trace', async () => {
    const runDir = tempDir();
    const launcher = new LocalLauncher();
    const { handle } = await launcher.launch(request(runDir, trainer('--crash-at-step', '7')));
    expect(await untilExited(launcher, handle)).toMatchObject({ exitCode: 1, signal: null });
    const tail = await launcher.logTail(handle, 20);
    expect(tail).toContain('Error: Simulated crash at step 7');
    expect(tail).toMatch(/\n\s+at .*train\.js:\d+/);
    expect(tail.split('\n').length).toBeLessThanOrEqual(20);

    await launcher.cancel(handle); // after the end: changes nothing
    const after = await launcher.status(handle);
    expect(after.exitCode).toBe(1);
    expect(after.reason).toBeUndefined();
  });

  test('a preempted run exits 143, and the resumed launch starts at its checkpoint and ends with the same weights', async () => {
    const launcher = new LocalLauncher();
    const reference = tempDir();
    await untilExited(launcher, (await launcher.launch(request(reference, trainer('--steps', '80')))).handle);

    const runDir = tempDir();
    const args = ['--steps', '80', '--checkpoint-every', '10', '--preempt-at-step', '30'];
    const first = await launcher.launch(request(runDir, trainer(...args)));
    expect(await untilExited(launcher, first.handle)).toMatchObject({ exitCode: 143 });
    expect(await launcher.logTail(first.handle)).toContain('LABLINE_PREEMPTED');

    const resumed = await launcher.launch(
      request(runDir, {
        ...trainer(...args),
        attempt: 2,
        key: launchKeyFor('exp-test', 2),
        resumeFrom: {
          checkpointPath: 'checkpoints/latest.json',
          flag: '--resume-from',
          envVar: 'RESUME_CKPT',
        },
      }),
    );
    expect(resumed.adopted).toBe(false);
    expect(await untilExited(launcher, resumed.handle)).toMatchObject({ exitCode: 0 });

    const checkpoint = path.join(runDir, 'checkpoints', 'latest.json');
    expect(jsonLines(path.join(runDir, 'starts.jsonl'))).toEqual([
      expect.objectContaining({ startStep: 0, attempt: 1 }),
      expect.objectContaining({ startStep: 30, attempt: 2, resumedFrom: checkpoint }),
    ]);
    const launch = readJson(path.join(resumed.handle.attemptDir, 'launch.json')) as LaunchRecord;
    expect(launch.args.slice(-2)).toEqual(['--resume-from', checkpoint]);
    expect(launch.env).toMatchObject({
      LABLINE_RESUME_FROM: checkpoint,
      RESUME_CKPT: checkpoint,
      LABLINE_ATTEMPT: '2',
    });
    expect(readJson(path.join(runDir, 'model.json')).weights).toEqual(
      readJson(path.join(reference, 'model.json')).weights,
    );
  });

  test('a command that cannot start is reported as spawn-failed, not as running', async () => {
    const runDir = tempDir();
    const launcher = new LocalLauncher();
    const { handle } = await launcher.launch(
      request(runDir, { command: 'labline-no-such-command', args: [] }),
    );
    expect(handle.pid).toBeUndefined();
    expect(await launcher.status(handle)).toMatchObject({
      phase: 'exited',
      exitCode: null,
      reason: 'spawn-failed',
    });
    expect(await launcher.logTail(handle)).toContain('could not start "labline-no-such-command"');
  });

  test('a working directory that does not exist is reported as spawn-failed, naming it', async () => {
    const runDir = tempDir();
    const launcher = new LocalLauncher();
    const { handle } = await launcher.launch(request(runDir, { cwd: path.join(runDir, 'nowhere') }));
    expect(await launcher.status(handle)).toMatchObject({
      phase: 'exited',
      reason: 'spawn-failed',
      detail: `the working directory ${path.join(runDir, 'nowhere')} does not exist`,
    });
  });

  test('a run over its time limit is stopped and reported as timeout', async () => {
    const runDir = tempDir();
    const launcher = new LocalLauncher({ killGraceMs: 5_000 });
    const { handle } = await launcher.launch(
      request(runDir, {
        ...trainer('--steps', '100000', '--step-delay-ms', '5'),
        resources: { gpus: 0, cpus: 1, timeLimitSeconds: 0.5 },
      }),
    );
    expect(await untilExited(launcher, handle)).toMatchObject({ exitCode: 143, reason: 'timeout' });
    expect((await launcher.logTail(handle)).split('\n').at(-1)).toBe(
      'labline: the run was stopped: time limit exceeded (0.5s)',
    );
  });

  test('a run whose supervisor and trainer were killed without a trace is reported lost', async () => {
    const runDir = tempDir();
    const launcher = new LocalLauncher();
    const { handle } = await launcher.launch(
      request(runDir, trainer('--steps', '100000', '--step-delay-ms', '5')),
    );
    const supervisor = readJson(path.join(handle.attemptDir, 'supervisor.json')) as { pid: number };
    process.kill(supervisor.pid, 'SIGKILL');
    await waitFor(() => !running(supervisor.pid), 'the supervisor to die');
    expect((await launcher.status(handle)).phase).toBe('running'); // the trainer goes on without it
    process.kill(-handle.pid!, 'SIGKILL');
    await waitFor(() => !running(handle.pid!), 'the trainer to die');
    expect(await launcher.status(handle)).toMatchObject({ phase: 'exited', exitCode: null, reason: 'lost' });
  });

  test('what the trainer and supervisor log lets the workflow diagnose each exit from the log tail', async () => {
    const launcher = new LocalLauncher({ killGraceMs: 5_000 });
    const cases = [
      { args: ['--crash-at-step', '5'], outcome: 'error', timedOut: false },
      { args: ['--diverge'], outcome: 'diverged', timedOut: false },
      { args: ['--preempt-at-step', '5'], outcome: 'preempted', timedOut: false },
      {
        args: ['--steps', '100000', '--step-delay-ms', '5'],
        timeLimitSeconds: 0.3,
        outcome: 'error',
        timedOut: true,
      },
    ];
    for (const { args, timeLimitSeconds, outcome, timedOut } of cases) {
      const runDir = tempDir();
      const { handle } = await launcher.launch(
        request(runDir, {
          ...trainer(...args),
          resources: { gpus: 0, cpus: 1, ...(timeLimitSeconds ? { timeLimitSeconds } : {}) },
        }),
      );
      const state = await untilExited(launcher, handle);
      const diagnosis = diagnoseTrainingExit({
        exitCode: state.exitCode ?? null,
        signal: state.signal ?? null,
        logTail: await launcher.logTail(handle),
      });
      expect({ args, outcome: diagnosis.outcome, timedOut: diagnosis.timed_out }).toEqual({
        args,
        outcome,
        timedOut,
      });
    }
  });

  test('an invalid request is rejected before anything is created', async () => {
    const runDir = tempDir();
    const launcher = new LocalLauncher();
    const bad = request(runDir, { key: '../escape', runDir: 'relative/dir' });
    const error = await launcher.launch(bad).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LaunchRejectedError);
    expect((error as LaunchRejectedError).failureType).toBe('LaunchRejected');
    expect((error as Error).message).toMatch(/key[\s\S]*runDir/);
    expect(fs.readdirSync(runDir)).toEqual([]);
  });

  test('awaitTrainingExit reports progress until the exit, and stops waiting when aborted', async () => {
    const runDir = tempDir();
    const launcher = new LocalLauncher();
    const { handle } = await launcher.launch(
      request(runDir, trainer('--steps', '100', '--step-delay-ms', '5')),
    );
    const seen: TrainingState[] = [];
    const final = await awaitTrainingExit(launcher, handle, {
      pollIntervalMs: 20,
      onProgress: (s) => seen.push(s),
    });
    expect(final).toMatchObject({ phase: 'exited', exitCode: 0 });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((state) => state.phase !== 'exited')).toBe(true);

    const other = tempDir();
    const long = await launcher.launch(request(other, trainer('--steps', '100000', '--step-delay-ms', '5')));
    const controller = new AbortController();
    const waiting = awaitTrainingExit(launcher, long.handle, {
      pollIntervalMs: 10,
      signal: controller.signal,
      onProgress: () => controller.abort(new Error('activity cancelled')),
    });
    await expect(waiting).rejects.toThrow('activity cancelled');
    expect((await launcher.status(long.handle)).phase).toBe('running'); // waiting stopped, not the run
  });
});
