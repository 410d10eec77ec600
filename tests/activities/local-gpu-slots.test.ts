import fs from 'node:fs';
import path from 'node:path';
import {
  LaunchRejectedError,
  LauncherBusyError,
  type LaunchRequestInput,
} from '../../src/activities/training/launcher';
import { LocalLauncher } from '../../src/activities/training/local';
import { cleanUp, jsonOutput, readJson, spawnTs, tempDir, waitFor } from './local-processes';

const LAUNCH_FIXTURE = path.join(__dirname, 'fixtures', 'launch.ts');

afterEach(cleanUp);

/** A "trainer" that writes the GPUs it was given to gpus-<key>.txt in its run dir, then runs until stopped. */
const REPORT_GPUS = `
  const fs = require('fs');
  fs.writeFileSync('gpus-' + process.env.LABLINE_LAUNCH_KEY + '.txt', process.env.CUDA_VISIBLE_DEVICES ?? '<unset>');
  if (process.argv[1] !== 'exit') setInterval(() => {}, 1000);`;

function gpuRequest(
  runDir: string,
  key: string,
  gpus: number,
  mode: 'run' | 'exit' = 'run',
): LaunchRequestInput {
  return {
    experimentId: 'exp-gpu',
    attempt: 1,
    key,
    runDir,
    command: process.execPath,
    args: ['-e', REPORT_GPUS, mode],
    resources: { gpus, cpus: 1 },
  };
}

function reportedGpus(runDir: string, key: string): Promise<string> {
  const file = path.join(runDir, `gpus-${key}.txt`);
  return waitFor(
    () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined),
    `${key} to report its GPUs`,
  );
}

describe('LocalLauncher GPU slots', () => {
  test('each launch gets its own GPUs in CUDA_VISIBLE_DEVICES, kept through adoption by another launcher', async () => {
    const runDir = tempDir();
    const slotsDir = path.join(tempDir(), 'slots');
    const launcher = new LocalLauncher({ gpuIds: ['0', '1', '2'], slotsDir, killGraceMs: 1_000 });
    const a = await launcher.launch(gpuRequest(runDir, 'a', 2));
    const b = await launcher.launch(gpuRequest(runDir, 'b', 1));
    const none = await launcher.launch(gpuRequest(runDir, 'none', 0));

    const gpusA = (await reportedGpus(runDir, 'a')).split(',');
    const gpusB = (await reportedGpus(runDir, 'b')).split(',');
    expect(gpusA).toHaveLength(2);
    expect(gpusB).toHaveLength(1);
    expect(new Set([...gpusA, ...gpusB]).size).toBe(3);
    expect(a.handle.gpuIds).toEqual(gpusA);
    expect(await reportedGpus(runDir, 'none')).toBe(''); // asked for none: sees none

    // A new launcher (a restarted worker) adopting `a` sees the same GPUs, and does not hand them out again.
    const restarted = new LocalLauncher({ gpuIds: ['0', '1', '2'], slotsDir, killGraceMs: 1_000 });
    expect((await restarted.launch(gpuRequest(runDir, 'a', 2))).handle.gpuIds).toEqual(gpusA);
    await expect(restarted.launch(gpuRequest(runDir, 'c', 1))).rejects.toBeInstanceOf(LauncherBusyError);
    expect(fs.existsSync(path.join(runDir, 'attempts', 'c'))).toBe(false); // the claim was given back

    // Cancelling b frees its GPU for c.
    await restarted.cancel(b.handle);
    const c = await restarted.launch(gpuRequest(runDir, 'c', 1));
    expect(c.adopted).toBe(false);
    expect(await reportedGpus(runDir, 'c')).toBe(gpusB[0]);
    for (const handle of [a.handle, c.handle, none.handle]) await restarted.cancel(handle);
    expect(readJson(path.join(slotsDir, 'reservations.json'))).toEqual({});
  });

  test('launchers in separate processes racing for the last GPUs never share one', async () => {
    const runDir = tempDir();
    const goFile = path.join(runDir, 'go');
    const options = { gpuIds: ['0', '1'], slotsDir: path.join(tempDir(), 'slots') };
    const outputs = ['p', 'q', 'r'].map((key) =>
      jsonOutput(
        spawnTs(LAUNCH_FIXTURE, [JSON.stringify({ options, request: gpuRequest(runDir, key, 1), goFile })]),
      ),
    );
    for (const output of outputs) expect(await output.next()).toBe('ready');
    fs.writeFileSync(goFile, '');
    const results = await Promise.allSettled(outputs.map((output) => output.next()));

    const launched = results.flatMap((r) =>
      r.status === 'fulfilled' ? [r.value.handle.gpuIds[0] as string] : [],
    );
    expect(launched.sort()).toEqual(['0', '1']);
    const [refused] = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
    expect(refused).toContain('LauncherBusyError');
  });

  test('asking for more GPUs than the host has is rejected before anything starts', async () => {
    const runDir = tempDir();
    const launcher = new LocalLauncher({ gpuIds: ['0', '1'], slotsDir: path.join(tempDir(), 'slots') });
    const error = await launcher.launch(gpuRequest(runDir, 'big', 3)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LaunchRejectedError);
    expect(error).toMatchObject({ failureType: 'LaunchRejected' });
    expect((error as Error).message).toContain('asks for 3 GPU(s) but this host has 2');
    expect(fs.readdirSync(runDir)).toEqual([]);
  });

  test('GPUs are freed when the exit is observed, and reclaimed from runs that ended unobserved', async () => {
    const runDir = tempDir();
    const slotsDir = path.join(tempDir(), 'slots');
    const launcher = new LocalLauncher({ gpuIds: ['7'], slotsDir });
    const first = await launcher.launch(gpuRequest(runDir, 'first', 1, 'exit'));
    expect(await reportedGpus(runDir, 'first')).toBe('7');
    await waitFor(async () => (await launcher.status(first.handle)).phase === 'exited', 'first to exit');
    expect(readJson(path.join(slotsDir, 'reservations.json'))).toEqual({});

    // Nobody asks for the status of `second` after it exits; `third` still gets the GPU.
    const second = await launcher.launch(gpuRequest(runDir, 'second', 1, 'exit'));
    await waitFor(() => fs.existsSync(path.join(second.handle.attemptDir, 'exit.json')), 'second to exit');
    const third = await launcher.launch(gpuRequest(runDir, 'third', 1, 'exit'));
    expect(third.handle.gpuIds).toEqual(['7']);
  });

  test('without gpuIds GPUs are not managed: the worker environment passes through', async () => {
    const runDir = tempDir();
    const launcher = new LocalLauncher();
    await launcher.launch({ ...gpuRequest(runDir, 'free', 4, 'exit'), env: { CUDA_VISIBLE_DEVICES: '5' } });
    expect(await reportedGpus(runDir, 'free')).toBe('5');
  });

  test('invalid GPU settings fail at construction, naming the problem', () => {
    expect(() => new LocalLauncher({ gpuIds: ['0', '0'] })).toThrow(/lists a GPU id twice/);
  });
});
