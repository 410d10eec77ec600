/**
 * The trainer contract as documented (docs/trainer-contract.md) against what Labline really hands a trainer,
 * and the Python side: the helper's own pytest suite, and `exists_and_loadable` with `format: torch`.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { experimentEnvironment, type TrainingState } from '../../src/activities/training/launcher';
import { LocalLauncher } from '../../src/activities/training/local';
import { checkDeliverables } from '../../src/activities/tracking/deliverable-check';
import { LocalTracker } from '../../src/activities/tracking/local';
import { Deliverable, trackedRunOf } from '../../src/experiment';
import { describeWithTorch } from '../support/python';
import { cleanUp, tempDir, waitFor } from './local-processes';

const run = promisify(execFile);
const repo = path.resolve(__dirname, '../..');
afterEach(cleanUp);

/** The variable names in the first column of the contract's environment table. */
function documentedVariables(): string[] {
  const text = readFileSync(path.join(repo, 'docs/trainer-contract.md'), 'utf8');
  const table = text.slice(
    text.indexOf('## Environment variables'),
    text.indexOf('## Files the trainer writes'),
  );
  return [...table.matchAll(/^\|\s*`([A-Z_]+)`\s*\|/gm)].map((match) => match[1]!).sort();
}

test('the contract documents exactly the variables a resumed launch with GPUs and W&B hands the trainer', async () => {
  const runDir = tempDir('labline-contract-');
  const seen = path.join(runDir, 'env.json');
  const dump =
    `require('node:fs').writeFileSync(${JSON.stringify(seen)}, JSON.stringify(Object.keys(process.env)` +
    '.filter((k) => /^(LABLINE_|WANDB_|CUDA_VISIBLE_DEVICES$)/.test(k))))';
  const tracked = trackedRunOf({ type: 'wandb', entity: 'team', project: 'moons' }, 'exp-contract', {
    base_url: 'http://127.0.0.1:9',
  })!;
  const launcher = new LocalLauncher({ gpuIds: ['0'], slotsDir: path.join(runDir, '.slots') });
  const { handle } = await launcher.launch({
    experimentId: 'exp-contract',
    attempt: 2,
    key: 'exp-contract-launch-2',
    runDir,
    command: process.execPath,
    args: ['-e', dump],
    env: { ...tracked.env, ...experimentEnvironment({ seed: 3 }, path.join(runDir, 'checkpoints')) },
    resources: { gpus: 1, cpus: 1 },
    resumeFrom: { checkpointPath: 'checkpoints/latest.json' },
  });
  await waitFor<TrainingState>(
    async () => {
      const state = await launcher.status(handle);
      return state.phase === 'exited' ? state : undefined;
    },
    'the trainer to exit',
    { timeoutMs: 20_000 },
  );
  const handed = (JSON.parse(readFileSync(seen, 'utf8')) as string[]).filter(
    // The worker's own W&B variables (a developer's WANDB_API_KEY) pass through; they are not Labline's.
    (name) => !(name in process.env),
  );
  expect(handed.sort()).toEqual(documentedVariables());
});

test('labline trainer-path prints the folder of the installable Python helper', async () => {
  const { stdout } = await run(process.execPath, [path.join(repo, 'bin/labline.js'), 'trainer-path']);
  expect(stdout.trim()).toBe(path.join(repo, 'python'));
  expect(readFileSync(path.join(stdout.trim(), 'pyproject.toml'), 'utf8')).toMatch(
    /name = "labline-trainer"/,
  );
});

describeWithTorch('Python trainers', (python) => {
  test("the helper's pytest suite passes", async () => {
    const { stdout } = await run(python, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', 'tests'], {
      cwd: path.join(repo, 'python'),
      env: {
        ...process.env,
        LABLINE_REQUIRE_WANDB: '1',
        LABLINE_REQUIRE_LIGHTNING: '1',
        LABLINE_REQUIRE_TRANSFORMERS: '1',
      },
      timeout: 300_000,
    }).catch((error: { stdout?: string; stderr?: string }) => {
      throw new Error(`pytest failed:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
    });
    expect(stdout).toMatch(/\d+ passed/);
    expect(stdout).not.toMatch(/skipped|failed|error/);
  }, 320_000);

  test('exists_and_loadable with format torch loads the checkpoint with torch, and a corrupt one fails with its error', async () => {
    const runDir = tempDir('labline-torch-');
    const save = 'import sys, torch; torch.save({"w": torch.ones(3), "step": 5}, sys.argv[1])';
    await run(python, ['-c', save, path.join(runDir, 'good.pt')]);
    writeFileSync(path.join(runDir, 'bad.pt'), 'not a checkpoint at all');
    // The record names the trainer's Python, as a launch would have written it.
    writeFileSync(
      path.join(runDir, 'reproducibility.json'),
      JSON.stringify({
        version: 1,
        experiment_id: 'exp-torch',
        run_name: path.basename(runDir),
        code: { pinned: false },
        spec: { sha256: '', spec: {}, command: python, args: [], cwd: runDir, env: {}, secret_env_names: [] },
        environment: {
          os: { platform: 'linux', release: '', arch: 'x64' },
          cpu: { model: '', cores: 1 },
          gpus: [],
          node: process.version,
          python: { executable: python },
          lockfiles: [],
        },
        randomness: { seeds: {}, reported_by_trainer: null },
        data: [],
        launches: [],
      }),
    );
    writeFileSync(path.join(runDir, 'metrics.jsonl'), '{"_step": 0, "loss": 1}\n');
    const deliverables = ['good', 'bad'].map((name) =>
      Deliverable.parse({ name, type: 'exists_and_loadable', path: `${name}.pt`, format: 'torch' }),
    );
    const tracker = new LocalTracker({ runsRoot: path.dirname(runDir) });
    const { report } = await checkDeliverables(
      tracker,
      { experimentId: path.basename(runDir), runDir },
      deliverables,
    );
    const [good, bad] = report.results;
    expect(good).toMatchObject({ name: 'good', passed: true });
    expect(bad).toMatchObject({ name: 'bad', passed: false });
    expect(bad!.message).toMatch(
      /does not load with torch\.load: _pickle\.UnpicklingError: Weights only load failed/,
    );
  }, 120_000);
});
