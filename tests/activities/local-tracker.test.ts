import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  launchKeyFor,
  type LaunchRequestInput,
  type TrainingHandle,
} from '../../src/activities/training/launcher';
import { LocalLauncher } from '../../src/activities/training/local';
import { LocalTracker, readLatestMetrics } from '../../src/activities/tracking/local';
import { RunInfo, RunNotFoundError, type HistoryRow } from '../../src/activities/tracking/run-tracker';
import {
  cleanUp,
  exitOf,
  jsonOutput,
  spawnTracked,
  spawnTs,
  tempDir,
  trainer,
  TRAINER,
  waitFor,
} from './local-processes';

afterEach(cleanUp);

const STREAM_FIXTURE = path.join(__dirname, 'fixtures', 'stream-history.ts');

async function collect(rows: AsyncIterable<HistoryRow>): Promise<HistoryRow[]> {
  const all: HistoryRow[] = [];
  for await (const row of rows) all.push(row);
  return all;
}

async function launchToEnd(
  runsRoot: string,
  experimentId: string,
  ...args: string[]
): Promise<TrainingHandle> {
  const launcher = new LocalLauncher({ killGraceMs: 5_000 });
  const request: LaunchRequestInput = {
    experimentId,
    attempt: 1,
    key: launchKeyFor(experimentId, 1),
    runDir: path.join(runsRoot, experimentId),
    ...trainer(...args),
  };
  const { handle } = await launcher.launch(request);
  await waitFor(async () => (await launcher.status(handle)).phase === 'exited', `${experimentId} to exit`);
  return handle;
}

describe('LocalTracker', () => {
  test('reads state, config, summary and history keys of a finished run', async () => {
    const runsRoot = tempDir();
    await launchToEnd(runsRoot, 'exp-done', '--steps', '100', '--lr', '0.3', '--eval-every', '20');
    const tracker = new LocalTracker({ runsRoot });
    const info = await tracker.run({ experimentId: 'exp-done' });

    expect(RunInfo.parse(info)).toEqual(info);
    expect(info.state).toBe('finished');
    expect(info.config).toMatchObject({ steps: 100, learning_rate: 0.3, seed: 0 });
    expect(info.summary).toMatchObject({
      _step: 100,
      'eval/accuracy': expect.any(Number),
      'train/loss': expect.any(Number),
    });
    expect(info.historyKeys).toEqual([
      '_step',
      '_timestamp',
      'eval/accuracy',
      'eval/loss',
      'train/accuracy',
      'train/loss',
    ]);
    expect(info.url).toBe(pathToFileURL(path.join(runsRoot, 'exp-done')).href);
    expect(Date.parse(info.createdAt!)).toBeLessThanOrEqual(Date.parse(info.heartbeatAt!));
  });

  test('streams history in step order, filtered to rows with the asked keys, and evenly sampled', async () => {
    const runsRoot = tempDir();
    await launchToEnd(runsRoot, 'exp-hist', '--steps', '100', '--eval-every', '10');
    const tracker = new LocalTracker({ runsRoot });
    const ref = { experimentId: 'exp-hist' };

    const all = await collect(tracker.history(ref));
    expect(all.map((row) => row._step)).toEqual(Array.from({ length: 101 }, (_, i) => i));

    const evals = await collect(tracker.history(ref, { keys: ['eval/accuracy', 'train/loss'] }));
    expect(evals.map((row) => row._step)).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 100]); // step 0 has no train/loss
    for (const row of evals)
      expect(Object.keys(row).sort()).toEqual(['_step', 'eval/accuracy', 'train/loss']);

    const sampled = await collect(tracker.history(ref, { samples: 5 }));
    expect(sampled.map((row) => row._step)).toEqual([0, 25, 50, 75, 100]);
    expect(await collect(tracker.history(ref, { keys: ['eval/loss'], samples: 50 }))).toHaveLength(11);
    expect(await collect(tracker.history(ref, { keys: ['no/such/metric'] }))).toEqual([]);
    expect(() => tracker.history(ref, { samples: 0 })).toThrow(RangeError);
  });

  test('lists checkpoints and declared artifacts with sizes and digests, and checks they download', async () => {
    const runsRoot = tempDir();
    await launchToEnd(runsRoot, 'exp-art', '--steps', '60', '--checkpoint-every', '20');
    const tracker = new LocalTracker({ runsRoot });
    const artifacts = await tracker.artifacts({ experimentId: 'exp-art' });

    expect(artifacts.map((a) => [a.name, a.type, a.state])).toEqual([
      ['checkpoints/step-20.json', 'checkpoint', 'COMMITTED'],
      ['checkpoints/step-40.json', 'checkpoint', 'COMMITTED'],
      ['checkpoints/step-60.json', 'checkpoint', 'COMMITTED'],
      ['checkpoints/latest.json', 'checkpoint', 'COMMITTED'],
      ['model', 'model', 'COMMITTED'],
    ]);
    const model = artifacts.at(-1)!;
    expect(model).toMatchObject({
      path: path.join(runsRoot, 'exp-art', 'model.json'),
      size: fs.statSync(path.join(runsRoot, 'exp-art', 'model.json')).size,
      digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/),
    });
    for (const artifact of artifacts) expect(await tracker.checkDownload(artifact)).toEqual({ ok: true });
    expect(await tracker.checkDownload(model.uri!)).toEqual({ ok: true });

    // Changed since listed: the digest no longer matches.
    const step20 = artifacts[0]!;
    fs.appendFileSync(step20.path!, ' ');
    expect(await tracker.checkDownload(step20)).toMatchObject({
      ok: false,
      error: expect.stringContaining('digest'),
    });
    // Truncated: does not parse.
    fs.writeFileSync(step20.path!, '{"step": 20, "weights": ');
    const broken = await tracker.checkDownload(step20.path!);
    expect(broken.ok).toBe(false);
    expect(broken.error).toContain(step20.path!);
    expect(await tracker.checkDownload(path.join(runsRoot, 'missing.json'))).toMatchObject({ ok: false });
    expect(await tracker.checkDownload('wandb-artifact://entity/project/model:v1')).toMatchObject({
      ok: false,
      error: expect.stringContaining('not a local file'),
    });
  });

  test('maps exits to W&B run states: failed, preempted, killed, running', async () => {
    const runsRoot = tempDir();
    const tracker = new LocalTracker({ runsRoot });
    await launchToEnd(runsRoot, 'exp-crash', '--crash-at-step', '5');
    expect((await tracker.run({ experimentId: 'exp-crash' })).state).toBe('failed');
    await launchToEnd(runsRoot, 'exp-pre', '--preempt-at-step', '5');
    expect((await tracker.run({ experimentId: 'exp-pre' })).state).toBe('preempted');

    const launcher = new LocalLauncher({ killGraceMs: 5_000 });
    const runDir = path.join(runsRoot, 'exp-live');
    const { handle } = await launcher.launch({
      experimentId: 'exp-live',
      attempt: 1,
      key: 'exp-live-a1',
      runDir,
      ...trainer('--steps', '100000', '--step-delay-ms', '5'),
    });
    expect((await tracker.run({ experimentId: 'exp-live' })).state).toBe('running');
    await launcher.cancel(handle);
    expect((await tracker.run({ experimentId: 'exp-live' })).state).toBe('killed');
  });

  test('reads a run started by hand (no launcher records) from its start and end records', async () => {
    const runDir = path.join(tempDir(), 'by-hand');
    const child = spawnTracked(process.execPath, [TRAINER, '--out', runDir, '--steps', '20'], {
      stdio: 'ignore',
    });
    expect((await exitOf(child)).code).toBe(0);
    const info = await new LocalTracker().run({ experimentId: 'ignored', runDir });
    expect(info.state).toBe('finished');
    expect(info.summary._step).toBe(20);
  });

  test('names the missing run directory, and the line of a corrupt metrics file', async () => {
    const runsRoot = tempDir();
    const tracker = new LocalTracker({ runsRoot });
    await expect(tracker.run({ experimentId: 'exp-none' })).rejects.toBeInstanceOf(RunNotFoundError);
    await expect(tracker.run({ experimentId: 'exp-none' })).rejects.toThrow(path.join(runsRoot, 'exp-none'));

    const runDir = path.join(runsRoot, 'exp-bad');
    fs.mkdirSync(runDir);
    const metrics = path.join(runDir, 'metrics.jsonl');
    // A half-written last line is what a live trainer leaves: skipped.
    fs.writeFileSync(metrics, '{"_step":0,"loss":1}\n{"_step":1,"loss":0.5}\n{"_step":2,"lo');
    expect((await collect(tracker.history({ experimentId: 'exp-bad' }))).map((r) => r._step)).toEqual([0, 1]);
    expect(await readLatestMetrics(runDir)).toEqual({ _step: 1, loss: 0.5 });
    // The same in the middle of the file is corruption.
    fs.appendFileSync(metrics, '\n{"_step":3,"loss":0.2}\n');
    await expect(collect(tracker.history({ experimentId: 'exp-bad' }))).rejects.toThrow(`${metrics}:3`);
  });

  test('streams a 200k-row metrics file in bounded memory (a process with a 48 MB heap reads it)', async () => {
    const runDir = tempDir();
    const metrics = fs.openSync(path.join(runDir, 'metrics.jsonl'), 'w');
    let chunk = '';
    for (let step = 0; step < 200_000; step += 1) {
      const row: Record<string, number> = { _step: step };
      for (let k = 0; k < 12; k += 1)
        row[`train/metric_${k}`] = ((step * 7919 + k * 104_729) % 10_007) / 10_007;
      if (step % 10 === 0) row['eval/accuracy'] = step / 200_000;
      row._timestamp = 1_700_000_000 + step / 10;
      chunk += `${JSON.stringify(row)}\n`;
      if (chunk.length > 1 << 20) {
        fs.writeSync(metrics, chunk);
        chunk = '';
      }
    }
    fs.writeSync(metrics, chunk);
    fs.closeSync(metrics);

    const heapLimit = ['--max-old-space-size=48'];
    const streamed = await jsonOutput(spawnTs(STREAM_FIXTURE, [JSON.stringify({ runDir })], heapLimit)).next(
      60_000,
    );
    expect(streamed).toMatchObject({ rows: 200_000, lastStep: 199_999, sampled: 100, kept: 0 });
    expect(streamed.historyKeys).toHaveLength(15);

    // Control: holding every row does not fit in that heap, so the limit is what the first run proved.
    const collecting = spawnTs(STREAM_FIXTURE, [JSON.stringify({ runDir, collect: true })], heapLimit);
    let stderr = '';
    collecting.stdout!.resume();
    collecting.stderr!.on('data', (data: Buffer) => (stderr += data.toString()));
    const { code, signal } = await exitOf(collecting);
    expect(code === 0 && signal === null).toBe(false);
    expect(stderr).toContain('heap out of memory');
  });
});
