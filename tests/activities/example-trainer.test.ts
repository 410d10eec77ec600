import fs from 'node:fs';
import path from 'node:path';
import {
  cleanUp,
  exitOf,
  jsonLines,
  readJson,
  spawnTracked,
  tempDir,
  TRAINER,
  waitFor,
} from './local-processes';

afterEach(cleanUp);

interface TrainerRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the example trainer to its end (bounded by Jest's test timeout) and returns its exit and output. */
async function train(out: string, ...args: string[]): Promise<TrainerRun> {
  const child = spawnTracked(process.execPath, [TRAINER, '--out', out, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const { code } = await exitOf(child);
  return { code, stdout, stderr };
}

function withoutTimestamps(file: string): unknown[] {
  return jsonLines(file).map(({ _timestamp: _, ...row }) => row);
}

describe('example trainer', () => {
  test('learns the two-moons task: train and eval loss fall, eval accuracy rises above 0.9', async () => {
    const out = tempDir();
    const run = await train(out, '--steps', '300', '--seed', '3');
    expect(run.code).toBe(0);

    const rows = jsonLines(path.join(out, 'metrics.jsonl'));
    expect(rows.map((row) => row._step)).toEqual(Array.from({ length: 301 }, (_, i) => i));
    for (const row of rows) expect(row._timestamp).toEqual(expect.any(Number));
    const evals = rows.filter((row) => 'eval/accuracy' in row);
    expect(evals.map((row) => row._step)).toEqual([
      0, 25, 50, 75, 100, 125, 150, 175, 200, 225, 250, 275, 300,
    ]);
    const first = evals[0]!;
    const last = evals.at(-1)!;
    expect(last['eval/accuracy']).toBeGreaterThanOrEqual(0.9);
    expect(last['eval/accuracy']).toBeGreaterThan(first['eval/accuracy'] as number);
    expect(last['eval/loss']).toBeLessThan((first['eval/loss'] as number) / 2);
    const meanLoss = (from: number, to: number): number => {
      const losses = rows.slice(from, to).map((row) => row['train/loss'] as number);
      return losses.reduce((a, b) => a + b, 0) / losses.length;
    };
    expect(meanLoss(250, 301)).toBeLessThan(meanLoss(1, 51));

    expect(readJson(path.join(out, 'summary.json'))).toEqual({
      ...rows.reduce((a, b) => ({ ...a, ...b }), {}),
    });
    expect(readJson(path.join(out, 'config.json'))).toMatchObject({
      steps: 300,
      learning_rate: 0.5,
      seed: 3,
      batch_size: 32,
      hidden_units: 16,
      dataset: 'two-moons',
    });
    const checkpoints = fs.readdirSync(path.join(out, 'checkpoints')).sort();
    expect(checkpoints).toEqual([
      'latest.json',
      ...[100, 150, 200, 250, 300, 50].map((s) => `step-${s}.json`),
    ]);
    expect(readJson(path.join(out, 'checkpoints', 'latest.json'))).toMatchObject({
      step: 300,
      rng: { state: expect.any(Number) },
    });
    expect(readJson(path.join(out, 'artifacts.json'))).toEqual([
      { name: 'model', type: 'model', path: 'model.json' },
    ]);
    expect(readJson(path.join(out, 'model.json'))).toMatchObject({
      step: 300,
      eval: { accuracy: last['eval/accuracy'] },
    });
    expect(jsonLines(path.join(out, 'starts.jsonl'))).toEqual([expect.objectContaining({ startStep: 0 })]);
    expect(jsonLines(path.join(out, 'ends.jsonl'))).toEqual([
      expect.objectContaining({ status: 'completed', endStep: 300, exitCode: 0 }),
    ]);
  });

  test('is deterministic in its seed', async () => {
    const [a, b, c] = [tempDir(), tempDir(), tempDir()];
    await train(a, '--steps', '40', '--seed', '1');
    await train(b, '--steps', '40', '--seed', '1');
    await train(c, '--steps', '40', '--seed', '2');
    const weights = (dir: string): unknown => readJson(path.join(dir, 'model.json')).weights;
    expect(weights(a)).toEqual(weights(b));
    expect(weights(a)).not.toEqual(weights(c));
  });

  test('--data-seed draws the data from its own seed (by default --seed), the weights still from --seed', async () => {
    const [plain, same, otherData] = [tempDir(), tempDir(), tempDir()];
    await train(plain, '--steps', '20', '--seed', '1');
    await train(same, '--steps', '20', '--seed', '1', '--data-seed', '1');
    await train(otherData, '--steps', '20', '--seed', '1', '--data-seed', '0');
    const model = (dir: string) => (readJson(path.join(dir, 'model.json')) as { weights: unknown }).weights;
    const config = (dir: string) => readJson(path.join(dir, 'config.json')) as Record<string, unknown>;
    expect(config(plain)).toMatchObject({ seed: 1, data_seed: 1 });
    expect(model(same)).toEqual(model(plain));
    expect(config(otherData)).toMatchObject({ seed: 1, data_seed: 0 });
    expect(model(otherData)).not.toEqual(model(plain));
    // A checkpoint of other data is no place to resume from.
    const resumed = await train(
      tempDir(),
      '--steps',
      '30',
      '--seed',
      '1',
      '--resume-from',
      path.join(otherData, 'checkpoints'),
    );
    expect(resumed.code).toBe(2);
    expect(resumed.stderr).toContain('data_seed=0, this run has 1');
  });

  test('on SIGTERM it checkpoints and exits 143; resumed, it ends exactly as an uninterrupted run', async () => {
    const reference = tempDir();
    expect((await train(reference, '--steps', '120')).code).toBe(0);

    const out = tempDir();
    const child = spawnTracked(
      process.execPath,
      [TRAINER, '--out', out, '--steps', '120', '--step-delay-ms', '10'],
      {
        stdio: 'ignore',
      },
    );
    await waitFor(() => jsonLines(path.join(out, 'metrics.jsonl')).length > 5, 'some steps');
    child.kill('SIGTERM');
    expect((await exitOf(child)).code).toBe(143);
    const [end] = jsonLines(path.join(out, 'ends.jsonl'));
    expect(end).toMatchObject({ status: 'stopped', exitCode: 143 });
    const stoppedAt = end!.endStep as number;
    expect(stoppedAt).toBeLessThan(120);
    expect(readJson(path.join(out, 'checkpoints', 'latest.json')).step).toBe(stoppedAt);

    const resumed = await train(out, '--steps', '120', '--resume-from', path.join(out, 'checkpoints'));
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toContain(`at step ${stoppedAt}`);
    expect(jsonLines(path.join(out, 'starts.jsonl')).map((s) => s.startStep)).toEqual([0, stoppedAt]);
    expect(readJson(path.join(out, 'model.json')).weights).toEqual(
      readJson(path.join(reference, 'model.json')).weights,
    );
    expect(withoutTimestamps(path.join(out, 'metrics.jsonl'))).toEqual(
      withoutTimestamps(path.join(reference, 'metrics.jsonl')),
    );
  });

  test('--preempt-at-step acts preempted once: the run resumed at that step completes', async () => {
    const out = tempDir();
    const args = ['--steps', '60', '--preempt-at-step', '25', '--checkpoint-every', '20'];
    const first = await train(out, ...args);
    expect(first.code).toBe(143);
    expect(first.stdout).toContain('LABLINE_PREEMPTED');
    expect(readJson(path.join(out, 'checkpoints', 'latest.json')).step).toBe(25);
    const second = await train(out, ...args, '--resume-from', path.join(out, 'checkpoints', 'latest.json'));
    expect(second.code).toBe(0);
    expect(jsonLines(path.join(out, 'starts.jsonl')).map((s) => s.startStep)).toEqual([0, 25]);
  });

  test('--crash-at-step exits 1 with a stack trace; --crash-attempts limits it to the first starts', async () => {
    const out = tempDir();
    const crashed = await train(out, '--steps', '30', '--crash-at-step', '10', '--crash-attempts', '1');
    expect(crashed.code).toBe(1);
    expect(crashed.stderr).toMatch(/Error: Simulated crash at step 10[^\n]*\n\s+at /);
    expect(jsonLines(path.join(out, 'ends.jsonl'))).toEqual([
      expect.objectContaining({ status: 'crashed', endStep: 9, exitCode: 1 }),
    ]);
    const retried = await train(out, '--steps', '30', '--crash-at-step', '10', '--crash-attempts', '1');
    expect(retried.code).toBe(0);
    // Started afresh, not resumed: the history starts over rather than repeating steps.
    expect(jsonLines(path.join(out, 'metrics.jsonl')).map((row) => row._step)).toEqual(
      Array.from({ length: 31 }, (_, i) => i),
    );
  });

  test('--diverge blows the learning rate up until the loss is NaN, and exits 3', async () => {
    const out = tempDir();
    const run = await train(out, '--diverge');
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/diverged at step \d+: train\/loss is NaN/);
    expect(jsonLines(path.join(out, 'metrics.jsonl')).at(-1)).toMatchObject({ 'train/loss': 'NaN' });
    expect(jsonLines(path.join(out, 'ends.jsonl'))).toEqual([
      expect.objectContaining({ status: 'diverged', exitCode: 3 }),
    ]);
  });

  test('options come from the environment too; bad usage exits 2 with the reason', async () => {
    const out = tempDir();
    const child = spawnTracked(process.execPath, [TRAINER], {
      env: { ...process.env, LABLINE_RUN_DIR: out, TRAINER_STEPS: '5', TRAINER_EVAL_EVERY: '5' },
      stdio: 'ignore',
    });
    expect((await exitOf(child)).code).toBe(0);
    expect(readJson(path.join(out, 'summary.json'))._step).toBe(5);

    const bad = await train(tempDir(), '--steps', 'many');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--steps must be an integer, got "many"');
    const unknown = await train(tempDir(), '--epochs', '3');
    expect(unknown).toMatchObject({ code: 2, stderr: expect.stringContaining('unknown option --epochs') });
  });

  test('resuming from a missing checkpoint starts afresh; from an incompatible one, refuses', async () => {
    const out = tempDir();
    const fresh = await train(
      out,
      '--steps',
      '20',
      '--resume-from',
      path.join(out, 'checkpoints', 'latest.json'),
    );
    expect(fresh.code).toBe(0);
    expect(fresh.stdout).toContain('starting from step 0');
    const other = await train(
      tempDir(),
      '--steps',
      '20',
      '--hidden',
      '8',
      '--resume-from',
      path.join(out, 'checkpoints'),
    );
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('hidden_units=16, this run has 8');
  });
});
