import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { ValidationReport } from '../../src/experiment';
import { parseWandbRunPath } from '../../src/client/cli-validate';
import { finishedRun, startFakeWandb, type FakeWandb } from '../support/fake-wandb';
import { cliScript } from '../support/processes';

const run = promisify(execFile);
const repo = path.resolve(__dirname, '../..');

let fake: FakeWandb;
beforeAll(async () => {
  fake = await startFakeWandb();
  fake.addRun(finishedRun());
  fake.addRun(finishedRun({ name: 'exp-validate-spec', project: 'from-spec' }));
});
afterAll(async () => fake?.close());
afterEach(() => fake.unscript());

/**
 * Runs `labline validate` in a fresh folder against the fake W&B, with `settings` as its settings file
 * (none when not given).
 */
async function validate(args: string[], env: NodeJS.ProcessEnv = {}, settings?: Record<string, unknown>) {
  const cwd = mkdtempSync(path.join(tmpdir(), 'labline-validate-'));
  const spec = path.join(cwd, 'spec.yaml');
  writeFileSync(spec, stringify(specOf()));
  const config = path.join(cwd, 'labline.config.yaml');
  if (settings) writeFileSync(config, stringify(settings));
  try {
    const { stdout, stderr } = await run(process.execPath, [cliScript, 'validate', spec, ...args], {
      cwd,
      env: {
        ...process.env,
        LABLINE_CONFIG: settings ? config : '',
        WANDB_API_KEY: fake.apiKey,
        WANDB_BASE_URL: fake.url,
        ...env,
      },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr, cwd };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '', cwd };
  }
}

let threshold = 0.9;
function specOf() {
  return {
    experiment_id: 'exp-validate-spec',
    name: 'validate',
    hypothesis: 'the run holds what the spec declares',
    training: { command: 'python', args: ['train.py'] },
    tracker: { type: 'wandb', entity: 'acme-ml', project: 'from-spec' },
    deliverables: [
      { name: 'curves', type: 'contains_keys', keys: ['train_loss'], in: 'history' },
      { name: 'accuracy', type: 'threshold', metric: 'accuracy', op: '>=', value: threshold },
      { name: 'model', type: 'synced_and_downloadable', artifacts: ['model-a1b2c3d4'] },
    ],
  };
}

test('a run that meets every deliverable prints the report as JSON and exits 0', async () => {
  threshold = 0.9;
  const { code, stdout, stderr } = await validate(['--run', 'acme-ml/llm-finetune/a1b2c3d4', '--json']);
  expect(stderr).toBe('');
  expect(code).toBe(0);
  const report = ValidationReport.parse(JSON.parse(stdout));
  expect(report.passed).toBe(true);
  expect(report.run).toBe(`${fake.url}/acme-ml/llm-finetune/runs/a1b2c3d4`);
  expect(report.results.map((r) => r.passed)).toEqual([true, true, true]);
});

test('an unmet deliverable exits 1 and says which, with expected and found', async () => {
  threshold = 0.95;
  const { code, stdout } = await validate(['--run', 'acme-ml/llm-finetune/a1b2c3d4']);
  expect(code).toBe(1);
  expect(stdout).toMatch(
    /FAIL {2}accuracy +threshold: accuracy \(summary\) = 0\.9132, but the spec needs >= 0\.95/,
  );
  expect(stdout).toMatch(/1 of 3 required deliverable\(s\) not met: accuracy\./);
});

test("without --run it reads the spec's W&B entity and project, with the experiment id as the run id", async () => {
  threshold = 0.9;
  const { code, stdout } = await validate([]);
  expect(code).toBe(0);
  expect(stdout).toContain(`Run ${fake.url}/acme-ml/from-spec/runs/exp-validate-spec (finished)`);
});

test('a refused key exits 2 and says how to fix it', async () => {
  const { code, stderr } = await validate(['--run', 'acme-ml/llm-finetune/a1b2c3d4'], {
    WANDB_API_KEY: 'wrong',
  });
  expect(code).toBe(2);
  expect(stderr).toMatch(/W&B refused the API key \(HTTP 401.*WANDB_API_KEY/);
});

test('a run W&B does not have exits 2, naming it', async () => {
  const { code, stderr } = await validate(['--run', 'acme-ml/llm-finetune/nope']);
  expect(code).toBe(2);
  expect(stderr).toMatch(/has no run acme-ml\/llm-finetune\/nope/);
});

/** GraphQL `Run` requests the fake saw for one run. */
const runRequests = (name: string) =>
  fake.requests.filter((r) => r.operation === 'Run' && r.variables?.name === name).length;

test('429 and 5xx are retried, honouring Retry-After, and the check goes on when W&B recovers', async () => {
  threshold = 0.9;
  fake.addRun(finishedRun({ name: 'flaky' }));
  fake.script('Run', { status: 503, body: 'upstream unavailable' });
  fake.script('Run', {
    status: 429,
    headers: { 'retry-after': '1' },
    body: JSON.stringify({ errors: [{ message: 'rate limit exceeded' }] }),
  });
  const { code, stdout, stderr } = await validate(
    ['--run', 'acme-ml/llm-finetune/flaky', '--json'],
    {},
    {
      validation: { retry_interval_seconds: 0.05 },
    },
  );
  expect(code).toBe(0);
  expect(ValidationReport.parse(JSON.parse(stdout)).passed).toBe(true);
  expect(runRequests('flaky')).toBe(3);
  expect(stderr).toMatch(/HTTP 503.*\n.*attempt 1 of 8 failed; trying again in 0\.05 s/);
  expect(stderr).toMatch(
    /HTTP 429.*\n.*attempt 2 of 8 failed; trying again in 1 s, as the server asked \(Retry-After\)/,
  );
});

test('a W&B that keeps failing exits 2 after the configured attempts, and --json prints the error as JSON', async () => {
  fake.addRun(finishedRun({ name: 'down' }));
  fake.script('Run', { status: 500, body: 'internal error' }, 5);
  const { code, stdout } = await validate(
    ['--run', 'acme-ml/llm-finetune/down', '--json'],
    {},
    {
      validation: { max_attempts: 3, retry_interval_seconds: 0.01 },
    },
  );
  expect(code).toBe(2);
  expect(runRequests('down')).toBe(3);
  const document = JSON.parse(stdout) as { error: Record<string, unknown> };
  expect(document.error).toMatchObject({ type: 'TrackerUnavailable', status: 500, attempts: 3 });
  expect(document.error.message).toMatch(
    /W&B Run at .* answered HTTP 500: internal error.*3 of 3 attempts failed/,
  );
});

test('--json prints a JSON document for errors that are not retried, with their type', async () => {
  const refused = await validate(['--run', 'acme-ml/llm-finetune/a1b2c3d4', '--json'], {
    WANDB_API_KEY: 'wrong',
  });
  expect(refused.code).toBe(2);
  expect(JSON.parse(refused.stdout)).toMatchObject({
    error: { type: 'TrackerAuthFailed', status: 401, attempts: 1 },
  });
  const badSettings = await validate(['--json'], {}, { validation: { max_attempts: 0 } });
  expect(badSettings.code).toBe(2);
  const settingsError = JSON.parse(badSettings.stdout) as { error: { type: string; message: string } };
  expect(settingsError.error.type).toBe('InvalidSettings');
  expect(settingsError.error.message).toMatch(/validation\.max_attempts: must be at least 1/);
});

test('a running run whose W&B heartbeat is hours old is reported stale, with the heartbeat age', async () => {
  threshold = 0.9;
  const heartbeatAt = new Date(Date.now() - 5 * 3600_000 - 7 * 60_000).toISOString();
  fake.addRun(finishedRun({ name: 'stale', state: 'running', heartbeatAt }));
  const text = await validate(['--run', 'acme-ml/llm-finetune/stale']);
  expect(text.code).toBe(1);
  expect(text.stdout).toMatch(
    /Run \S+\/stale \(running but stale: no heartbeat for 5 h 7 min, more than the 15 min allowed, so it probably crashed\)/,
  );
  const json = await validate(['--run', 'acme-ml/llm-finetune/stale', '--json']);
  const report = ValidationReport.parse(JSON.parse(json.stdout));
  expect(report.run_state).toMatchObject({ state: 'running', stale: true, heartbeat_at: heartbeatAt });
  expect(report.run_state!.heartbeat_age_seconds).toBeGreaterThanOrEqual(5 * 3600 + 7 * 60);
});

test('a spec tracked locally is checked against its run directory under runs/', async () => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'labline-validate-local-'));
  execFileSync(process.execPath, [
    path.join(repo, 'examples/trainer/train.js'),
    '--steps=20',
    '--eval-every=10',
    `--out=${path.join(cwd, 'runs', 'exp-validate-local')}`,
  ]);
  const spec = path.join(cwd, 'spec.yaml');
  writeFileSync(
    spec,
    stringify({
      experiment_id: 'exp-validate-local',
      name: 'local',
      hypothesis: 'h',
      training: { command: 'node' },
      deliverables: [
        { name: 'checkpoint', type: 'exists_and_loadable', path: 'checkpoints/latest.json' },
        { name: 'loss', type: 'threshold', metric: 'train/loss', op: '<', value: 5, aggregate: 'best_min' },
      ],
    }),
  );
  const { stdout } = await run(process.execPath, [cliScript, 'validate', spec, '--json'], {
    cwd,
    env: { ...process.env, LABLINE_CONFIG: '', WANDB_API_KEY: '' },
  });
  const report = ValidationReport.parse(JSON.parse(stdout));
  expect(report.results.map((r) => [r.name, r.passed])).toEqual([
    ['checkpoint', true],
    ['loss', true],
  ]);
});

test('--run takes entity/project/run_id, entity/project/runs/run_id or the run URL', () => {
  const expected = { entity: 'acme-ml', project: 'llm', runId: 'exp-1' };
  expect(parseWandbRunPath('acme-ml/llm/exp-1')).toEqual(expected);
  expect(parseWandbRunPath('acme-ml/llm/runs/exp-1')).toEqual(expected);
  expect(parseWandbRunPath('https://wandb.ai/acme-ml/llm/runs/exp-1')).toEqual(expected);
  expect(() => parseWandbRunPath('acme-ml/exp-1')).toThrow(/write entity\/project\/run_id/);
});
