import { Client, Connection } from '@temporalio/client';
import { listExperiments } from '../../src/client/experiments';
import { tsToMs } from '@temporalio/common/lib/time';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { labline as runLabline, LOCAL_ENV } from '../support/cli';
import { startTestTemporal, type TestTemporal } from '../support/temporal';
import { testServerKind } from '../support/temporal-cli';

const repo = path.resolve(__dirname, '../..');
const serverKind = testServerKind();
const localEnv = LOCAL_ENV;

const labline = (args: string[], cwd: string, env: NodeJS.ProcessEnv = localEnv, timeoutMs = 120_000) =>
  runLabline(args, { cwd, env, timeoutMs });

const cwds: string[] = [];
afterAll(async () => {
  // A test that failed half-way must not leave a server behind.
  for (const cwd of cwds) await labline(['server', 'stop'], cwd, localEnv, 30_000);
});

test(`labline server outlives start: list, status and a restart find the experiment (${serverKind})`, async () => {
  const cwd = mkdtempSync(path.join(tmpdir(), 'labline-server-'));
  cwds.push(cwd);
  const up = await labline(['server', '--detach', '--server', serverKind], cwd);
  expect({ code: up.code, stderr: up.stderr }).toEqual({ code: 0, stderr: '' });
  expect(up.stdout).toMatch(/^Labline server ready: Temporal on 127\.0\.0\.1:\d+/m);
  expect(up.stdout).toContain(`log: ${path.join(cwd, '.labline', 'server.log')}`);
  const record = JSON.parse(readFileSync(path.join(cwd, '.labline/server.json'), 'utf8'));
  expect(record).toMatchObject({ kind: serverKind, started_by: 'server', worker: true });
  // Closed experiments are kept 30 days (the real dev server's own default is one).
  const connection = await Connection.connect({ address: record.address });
  try {
    const { config } = await connection.workflowService.describeNamespace({ namespace: 'default' });
    expect(tsToMs(config?.workflowExecutionRetentionTtl)).toBe(30 * 24 * 3600_000);
  } finally {
    await connection.close();
  }

  const second = await labline(['server', '--server', serverKind], cwd);
  expect(second.code).toBe(2);
  expect(second.stderr).toMatch(
    /A local server already runs for .*`labline server` \(pid \d+\).*labline server stop/,
  );

  // start uses the server and its worker, and leaves both running when it ends.
  const start = await labline(['start', path.join(repo, 'examples/quickstart.yaml'), '--yes'], cwd);
  expect({ code: start.code, stderr: start.stderr }).toEqual({ code: 0, stderr: expect.any(String) });
  expect(start.stdout).toContain(`Using the Labline server on ${record.address}`);
  expect(start.stdout).not.toContain('Starting the Labline worker');
  expect(existsSync(path.join(cwd, '.labline/server.json'))).toBe(true);
  // The launch question and the report name the command as launched, not its template.
  expect(start.stdout).toMatch(/launch `node trainer\/train\.js --steps=300 --lr=0\.5 /);
  const report = readFileSync(path.join(cwd, 'runs/exp-quickstart/report.md'), 'utf8');
  expect(report).toContain('`node trainer/train.js --steps=300 --lr=0.5 --seed=0');
  expect(report).not.toContain('${config.');

  const list = await labline(['list'], cwd);
  expect(list.stdout).toMatch(/^ID\s+KIND\s+STAGE\s+STARTED\s+DURATION\s+PRIMARY\s+WAITING FOR$/m);
  expect(list.stdout).toMatch(/^exp-quickstart\s+experiment\s+completed\s+\d\d:\d\d UTC\s+\d+s\s+0\.\d+$/m);
  expect(list.stdout).not.toContain('\u001b['); // no colour when not on a terminal
  const json = JSON.parse((await labline(['list', '--json'], cwd)).stdout);
  expect(json).toEqual({
    version: 1,
    experiments: [
      expect.objectContaining({
        id: 'exp-quickstart',
        kind: 'experiment',
        stage: 'completed',
        status: 'completed',
      }),
    ],
  });
  expect(json.experiments[0].primary_metric).toEqual(expect.any(Number));
  // Closed before the bound: left out (the filter `list` uses without --all, on either server).
  const client = new Client({ connection: await Connection.connect({ address: record.address }) });
  try {
    const future = new Date(Date.now() + 3600_000);
    expect(await listExperiments(client, { closedAfter: future })).toEqual([]);
    expect((await listExperiments(client, {})).map((row) => row.experimentId)).toEqual(['exp-quickstart']);
  } finally {
    await client.connection.close();
  }
  const status = await labline(['status', 'exp-quickstart'], cwd);
  expect({ code: status.code, stderr: status.stderr }).toEqual({ code: 0, stderr: '' });
  expect(status.stdout).toMatch(/completed/);

  const logPath = path.join(cwd, 'runs/exp-quickstart/attempts/exp-quickstart-launch-1/train.log');
  expect(status.stdout).toContain(`log        ${logPath} (labline logs exp-quickstart)`);
  const logs = await labline(['logs', 'exp-quickstart'], cwd);
  expect(logs.stdout).toBe(readFileSync(logPath, 'utf8'));
  expect(logs.stdout).toMatch(/^Training .* steps 300/m);
  expect(logs.stdout).toMatch(/^step 300: train\/loss/m);
  // Following a launch that has ended prints the same and returns.
  const followed = await labline(['logs', 'exp-quickstart', '-f', '--attempt', '1'], cwd);
  expect(followed.stdout).toBe(logs.stdout);
  expect(followed.stderr).toContain('── launch 1 ended: success ──');
  for (const command of ['status', 'logs', 'approve']) {
    const typo = await labline([command, 'exp-quikstart'], cwd);
    expect({ command, ...typo }).toMatchObject({
      command,
      code: 2,
      stderr: 'No experiment `exp-quikstart` on this server; did you mean `exp-quickstart`?\n',
    });
  }
  const noSuch = await labline(['logs', 'exp-quickstart', '--attempt', '2'], cwd);
  expect(noSuch).toMatchObject({
    code: 2,
    stderr: '--attempt 2: exp-quickstart has launch 1; give one of those.\n',
  });

  const stop = await labline(['server', 'stop'], cwd);
  expect(stop.stdout).toMatch(/Stopped the Labline server \(pid \d+\)/);
  expect(existsSync(path.join(cwd, '.labline/server.json'))).toBe(false);
  const stopped = await labline(['status', 'exp-quickstart'], cwd);
  expect(stopped.code).toBe(2);
  expect(stopped.stderr).toMatch(/no local server is running.*labline server/s);

  // Back on the same data folder: the finished experiment is still there.
  const again = await labline(['server', '--detach', '--server', serverKind], cwd);
  expect(again.code).toBe(0);
  expect((await labline(['list'], cwd)).stdout).toMatch(/exp-quickstart\s+experiment\s+completed/);
  expect((await labline(['server', 'stop'], cwd)).code).toBe(0);
}, 400_000);

describe('against a server without a Labline worker', () => {
  let env: TestTemporal;
  beforeAll(async () => {
    env = await startTestTemporal();
  });
  afterAll(async () => env?.stop());

  test('status says within seconds that no worker polls, and how to start one', async () => {
    const cwd = mkdtempSync(path.join(tmpdir(), 'labline-noworker-'));
    const queue = `nobody-${process.pid}-${Date.now()}`;
    writeFileSync(path.join(cwd, 'labline.config.yaml'), `task_queues:\n  workflow: ${queue}\n`);
    const id = `exp-noworker-${process.pid}`;
    writeFileSync(
      path.join(cwd, 'spec.yaml'),
      JSON.stringify({
        experiment_id: id,
        name: 'nobody runs it',
        hypothesis: 'status says so',
        training: { command: 'true' },
        deliverables: [],
      }),
    );
    const serverEnv = { TEMPORAL_ADDRESS: env.address, TEMPORAL_NAMESPACE: env.namespace };
    const submit = await labline(['submit', 'spec.yaml'], cwd, serverEnv);
    expect({ code: submit.code, stderr: submit.stderr }).toEqual({ code: 0, stderr: '' });
    const status = await labline(['status', id], cwd, serverEnv, 30_000);
    expect(status.code).toBe(2);
    expect(status.stderr).toContain(`No worker is polling the ${queue} task queue, so ${id} cannot answer`);
    expect(status.stderr).toMatch(/labline server.*labline worker/);
    await env.client.workflow.getHandle(id).terminate('test over');
  });
});
