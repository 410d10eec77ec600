import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { CampaignSpec, ResultsPayload, type CampaignSpecInput } from '../../src/experiment';
import { campaignStatus, submitCampaign } from '../../src/client/campaigns';
import { experimentRig, trainerPath, trainerSpec } from '../support/experiments';
import { labline } from '../support/cli';
import { cliScript, startTsProcess } from '../support/processes';
import { startTestTemporal, withWorker, type TestTemporal } from '../support/temporal';
import { testServerKind } from '../support/temporal-cli';

const repo = path.resolve(__dirname, '../..');

describe('against a running Temporal', () => {
  let env: TestTemporal;
  beforeAll(async () => {
    env = await startTestTemporal();
  });
  afterAll(async () => env?.stop());

  test('an invalid spec is rejected with every error listed, and no workflow exists afterwards', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'labline-cli-'));
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(
      file,
      [
        'experiment_id: exp-cli-invalid',
        'name: broken',
        'hypothesis: something',
        'training:',
        '  command: node',
        '  resources: { gpus: -1, time_limit: soon }',
        'deliverables:',
        '  - { name: acc, type: threshold, metric: eval/accuracy, op: "=>", value: 0.9 }',
      ].join('\n'),
    );
    const { code, stderr } = await labline(['submit', file], {
      env: { TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: env.namespace },
    });
    expect(code).toBe(2);
    expect(stderr).toMatch(/training\.resources\.gpus/);
    expect(stderr).toMatch(/training\.resources\.time_limit/);
    expect(stderr).toMatch(/deliverables\[0\]\.op/);
    await expect(env.client.workflow.getHandle('exp-cli-invalid').describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
  });

  test('approve, reject, status and cancel work for a campaign as for an experiment', async () => {
    const rig = experimentRig();
    const campaignId = `camp-cli-${process.pid % 10000}`;
    const campaign = CampaignSpec.parse({
      campaign_id: campaignId,
      name: 'cli decisions',
      base: trainerSpec(`exp-cli-campbase-${process.pid % 10000}`, ['--step-delay-ms=50', '--steps=100000']),
      variants: { list: [{ name: 'only', overrides: {} }] },
      include_base: false,
      primary_metric: { name: 'eval/accuracy', goal: 'max' },
    } satisfies CampaignSpecInput);
    const cli = (...args: string[]) =>
      labline(args, { env: { TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: env.namespace } });
    await withWorker(env, { taskQueue: rig.taskQueue, activities: rig.activities }, async () => {
      const { handle } = await submitCampaign({ client: env.client, campaign, settings: rig.settings });
      const deadline = Date.now() + 30_000;
      while (!(await campaignStatus(env.client, campaignId).catch(() => undefined))?.waiting) {
        if (Date.now() > deadline) throw new Error(`${campaignId} never opened its launch gate`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }

      const status = await cli('status', campaignId);
      expect(status).toMatchObject({
        code: 0,
        stdout: expect.stringMatching(/waiting {4}launch: .*\(opening .*-launch-1\)/),
      });
      const mallory = await cli('approve', campaignId, '--as', 'mallory', '--gate', 'publish');
      expect(mallory.code).toBe(2);
      expect(mallory.stderr).toMatch(
        /refused the decision: the publish gate is not open; .*launch gate\. Nothing was recorded/,
      );
      const approved = await cli('approve', campaignId, '--as', 'alice', '--comment', 'go');
      expect(approved).toMatchObject({
        code: 0,
        stdout: expect.stringMatching(
          new RegExp(`^${campaignId}: launch: approved by alice at .* — go$`, 'm'),
        ),
      });
      const late = await cli('reject', campaignId, '--as', 'bob', '--gate', 'launch');
      expect(late.code).toBe(2);
      expect(late.stderr).toMatch(/the launch gate was already decided: approved by alice/);
      expect((await cli('status', campaignId)).stdout).toMatch(/decision {3}launch: approved by alice/);

      expect(await cli('cancel', campaignId)).toMatchObject({ code: 0 });
      await expect(handle.result()).rejects.toThrow();
      expect((await handle.describe()).status.name).toBe('CANCELLED');
    });
  }, 90_000);
});

test('--version prints the version of package.json', async () => {
  const { version } = JSON.parse(readFileSync(path.join(repo, 'package.json'), 'utf8')) as {
    version: string;
  };
  expect(await labline(['--version'])).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
});

test('a mistyped gate, choice, stage or option is refused before anything is sent, naming what would be right', async () => {
  const gate = await labline(['approve', 'exp-any', '--gate', 'lunch']);
  expect(gate.code).toBe(1);
  expect(gate.stderr).toContain(
    "argument 'lunch' is invalid. Allowed choices are launch, publish, failure, deliverables, budget.",
  );
  const choice = await labline(['approve', 'exp-any', '--choice', 'again']);
  expect(choice.stderr).toContain(
    "argument 'again' is invalid. Allowed choices are retry, abort, accept, rerun.",
  );
  const option = await labline(['approve', 'exp-any', '--gat', 'launch']);
  expect(option.stderr).toContain("unknown option '--gat'\n(Did you mean --gate?)");
  const stage = await labline(['list', '--stage', 'trained'], { env: { TEMPORAL_ADDRESS: '127.0.0.1:1' } });
  expect(stage).toMatchObject({
    code: 2,
    stderr: expect.stringContaining('--stage trained: use one of registered,'),
  });
});

test('schema prints the JSON Schema of specs', async () => {
  const { code, stdout } = await labline(['schema']);
  expect(code).toBe(0);
  const schema = JSON.parse(stdout) as { properties: Record<string, unknown> };
  expect(Object.keys(schema.properties)).toEqual(
    expect.arrayContaining(['experiment_id', 'training', 'deliverables']),
  );
});

// `start` starts a server of its own: the same kind as the suite's (embedded, or the real dev server).
const startServer = testServerKind();

test(`start runs the quickstart on its own ${startServer} server with --yes and prints the report path`, async () => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'labline-start-'));
  const { code, stdout, stderr } = await labline(
    ['start', path.join(repo, 'examples/quickstart.yaml'), '--yes', '--server', startServer],
    {
      cwd,
      env: { TEMPORAL_ADDRESS: '', TEMPORAL_PROFILE: '', LABLINE_USER: 'ci' },
      timeoutMs: 120_000,
    },
  );
  expect({ code, stderr }).toEqual({ code: 0, stderr: expect.any(String) });
  const reportPath = path.join(cwd, 'runs/exp-quickstart/report.md');
  expect(stdout).toContain(`Report: ${reportPath}`);
  expect(existsSync(reportPath)).toBe(true);
  const results = ResultsPayload.parse(
    JSON.parse(readFileSync(path.join(cwd, 'runs/exp-quickstart/results.json'), 'utf8')),
  );
  expect(results.status).toBe('completed');
  expect(results.decisions.map((d) => d.by)).toEqual(['ci', 'ci']);
  // The server's data lives under .labline; the record that announces it is removed at exit.
  const dataFile = startServer === 'embedded' ? 'devserver.wal' : 'temporal.db';
  expect(existsSync(path.join(cwd, '.labline', dataFile))).toBe(true);
  expect(existsSync(path.join(cwd, '.labline/server.json'))).toBe(false);
  const webUi =
    /^Temporal Web UI: (http:\/\/127\.0\.0\.1:\d+)\/namespaces\/default\/workflows\/exp-quickstart$/m.exec(
      stdout,
    );
  if (startServer === 'embedded') {
    expect(webUi).toBeNull();
  } else {
    expect(webUi).not.toBeNull();
    expect(stdout).toContain(`web ui     ${webUi![0].slice('Temporal Web UI: '.length)}`);
  }

  // Starting the finished experiment again is refused, and starts nothing; its report stays as it was.
  const report = readFileSync(reportPath, 'utf8');
  const startAgain = (extra: string[]) =>
    labline(
      ['start', path.join(repo, 'examples/quickstart.yaml'), '--yes', '--server', startServer, ...extra],
      {
        cwd,
        env: { TEMPORAL_ADDRESS: '', TEMPORAL_PROFILE: '', LABLINE_USER: 'ci' },
        timeoutMs: 120_000,
      },
    );
  const again = await startAgain([]);
  expect(again.code).toBe(2);
  expect(again.stderr).toMatch(
    /exp-quickstart already ran \(completed at .*\); its report and results are in .*runs\/exp-quickstart\. .*--rerun/s,
  );
  expect(readdirSync(path.join(cwd, 'runs'))).toEqual(['exp-quickstart']);

  // A rerun runs in a directory of its own, trains again, and leaves the earlier report alone.
  const rerun = await startAgain(['--rerun']);
  expect({ code: rerun.code, stderr: rerun.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
  const rerunDirs = readdirSync(path.join(cwd, 'runs')).filter((d) => d.startsWith('exp-quickstart.rerun-'));
  expect(rerunDirs).toHaveLength(1);
  const rerunDir = path.join(cwd, 'runs', rerunDirs[0]!);
  expect(rerun.stdout).toContain(`Submitted exp-quickstart as ${rerunDirs[0]}`);
  expect(rerun.stdout).toContain(`Report: ${path.join(rerunDir, 'report.md')}`);
  expect(readdirSync(path.join(rerunDir, 'attempts'))).toEqual([`${rerunDirs[0]}-launch-1`]);
  expect(readFileSync(reportPath, 'utf8')).toBe(report);
}, 400_000);

test(`SIGTERM during start stops it cleanly within seconds; start again re-attaches to the same training (${startServer})`, async () => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'labline-sigterm-'));
  const id = `exp-sigterm-${process.pid}`;
  const specFile = path.join(cwd, 'spec.yaml');
  // JSON is YAML: the example trainer, long enough to be stopped in the middle.
  writeFileSync(
    specFile,
    JSON.stringify({
      experiment_id: id,
      name: 'stopped and resumed',
      hypothesis: 'a stop of labline start does not stop training',
      training: { command: process.execPath, args: [trainerPath, '--steps=600', '--step-delay-ms=20'] },
      deliverables: [],
    }),
  );
  const env = { TEMPORAL_ADDRESS: '', TEMPORAL_PROFILE: '', LABLINE_USER: 'ci' };
  const first = startTsProcess(cliScript, ['start', specFile, '--yes', '--server', startServer], env, cwd);
  await first.waitFor(new RegExp(`${id}: training`), 90_000);
  const exited = new Promise<number | null>((resolve) => first.child.once('exit', (code) => resolve(code)));
  first.child.kill('SIGTERM');
  const code = await withDeadline(exited, 15_000, 'labline start to stop after SIGTERM');
  expect({ code, output: code === 143 ? '' : first.output().slice(-3000) }).toEqual({
    code: 143,
    output: '',
  });
  expect(first.output()).toMatch(/SIGTERM: stopping\. Training and approvals keep their state/);
  expect(existsSync(path.join(cwd, '.labline/server.json'))).toBe(false);

  const again = await labline(['start', specFile, '--yes', '--server', startServer], {
    cwd,
    env,
    timeoutMs: 120_000,
  });
  expect({ code: again.code, stderr: again.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
  expect(again.stdout).toContain(`Re-attached to running ${id}`);
  const starts = readFileSync(path.join(cwd, 'runs', id, 'starts.jsonl'), 'utf8')
    .trim()
    .split('\n');
  expect(starts).toHaveLength(1);
}, 240_000);

/** `promise`, or a rejection naming `what` after `ms`. */
async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

test(`the README's campaign example finishes with --yes: every child completes and the variants are ranked (${startServer})`, async () => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'labline-campaign-'));
  const { code, stdout, stderr } = await labline(
    ['campaign', path.join(repo, 'examples/campaign.yaml'), '--yes', '--server', startServer],
    { cwd, env: { TEMPORAL_ADDRESS: '', TEMPORAL_PROFILE: '', LABLINE_USER: 'ci' }, timeoutMs: 240_000 },
  );
  expect({ code, stderr }).toEqual({ code: 0, stderr: expect.any(String) });
  const last = stdout.slice(stdout.lastIndexOf('camp-moons-steps  '));
  expect(last).toMatch(/stage {6}completed; children 9 done, 0 running, 0 pending/);
  expect(last.match(/done \(completed\)/g)).toHaveLength(9);
  expect(last).toMatch(/rank 1 {5}steps-\d+: /);
  expect(existsSync(path.join(cwd, 'runs/camp-moons-steps/campaign-report.md'))).toBe(true);
}, 300_000);

/** A campaign of one 20-step variant of the quickstart, with `extra` lines (its own deliverables, say). */
function shortCampaign(cwd: string, id: string, extra: string[] = []): string {
  const file = path.join(cwd, 'campaign.yaml');
  writeFileSync(
    file,
    [
      `campaign_id: ${id}`,
      `name: ${id}`,
      `base: ${path.join(repo, 'examples/quickstart.yaml')}`,
      'variants:',
      '  list:',
      '    - { name: short, overrides: { steps: 20 } }',
      'include_base: false',
      'primary_metric: { name: eval/accuracy, goal: max }',
      ...extra,
    ].join('\n'),
  );
  return file;
}

test(`campaign --yes shows a child waiting at its deliverables gate, and ends that child as start --yes would (${startServer})`, async () => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'labline-campaign-gate-'));
  // The quickstart's own deliverables (90% accuracy) and 20 steps: the child misses the target.
  const file = shortCampaign(cwd, 'camp-short');
  const { code, stdout, stderr } = await labline(['campaign', file, '--yes', '--server', startServer], {
    cwd,
    env: { TEMPORAL_ADDRESS: '', TEMPORAL_PROFILE: '', LABLINE_USER: 'ci' },
    timeoutMs: 180_000,
  });
  // The campaign completes (its comparison has the one child's value); the child itself failed.
  expect({ code, stderr }).toEqual({ code: 0, stderr: expect.any(String) });
  expect(stdout).toMatch(/child {6}exp-short-short-s0 {2}waiting for a deliverables decision: /);
  expect(stdout).toMatch(
    /exp-short-short-s0:\n {2}deliverables: abort by ci .*--yes approves the launch and publish reviews only/,
  );
  expect(stdout).toMatch(/child {6}exp-short-short-s0 {2}done \(failed\)/);
}, 240_000);

test(`campaign --json prints JSON lines only on stdout, one per change, and the rest on stderr (${startServer})`, async () => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'labline-campaign-json-'));
  const file = shortCampaign(cwd, 'camp-json', ['deliverables: []']);
  const { code, stdout, stderr } = await labline(
    ['campaign', file, '--yes', '--json', '--server', startServer],
    {
      cwd,
      env: { TEMPORAL_ADDRESS: '', TEMPORAL_PROFILE: '', LABLINE_USER: 'ci' },
      timeoutMs: 180_000,
    },
  );
  expect({ code, stderr }).toEqual({
    code: 0,
    stderr: expect.stringContaining('Starting the Labline worker'),
  });
  expect(stderr).toMatch(/launch: approved by ci/);
  const lines = stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  expect(lines.length).toBeGreaterThanOrEqual(2);
  expect(lines[0]).toMatchObject({
    version: 1,
    kind: 'campaign',
    campaign_id: 'camp-json',
    waiting_children: {},
  });
  expect(lines.at(-1)).toMatchObject({
    stage: 'completed',
    children: [
      expect.objectContaining({ experiment_id: 'exp-json-short-s0', state: 'done', end: 'completed' }),
    ],
  });
}, 240_000);
