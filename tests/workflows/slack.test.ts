/**
 * Experiments decided from Slack, end to end: the real workflow on the embedded server, the real
 * activities with the Slack notifier posting to a fake Slack, and the `labline slack` endpoint receiving
 * signed button clicks for the messages the notifier posted.
 */
import { Worker } from '@temporalio/worker';
import { decide, experimentHandle, submitExperiment } from '../../src/client/experiments';
import { ACTIONS_BLOCK_ID, DECIDED_BLOCK_ID } from '../../src/activities/notify/slack-messages';
import { ExperimentSpec, type ExperimentSpecInput } from '../../src/experiment';
import { trainerSpec, waitForStatus } from '../support/experiments';
import { defaultUsers, FakeSlack, type FakeMessage, type FakeSlackUser } from '../support/fake-slack';
import { startSlackRig, type SlackRig } from '../support/slack-rig';
import { recordHistory } from '../support/histories';
import { startTestTemporal, withWorker, workflowBundle, type TestTemporal } from '../support/temporal';

const [alice, , lead] = defaultUsers as [FakeSlackUser, FakeSlackUser, FakeSlackUser];

let env: TestTemporal;
let s: SlackRig;
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => env?.stop());
beforeEach(async () => {
  s = await startSlackRig(env);
});
afterEach(async () => s?.stop());

let counter = 0;
const labels = new Map<string, string>();
const newId = (label: string) => {
  const id = `exp-slackflow-${label}-${process.pid}-${++counter}`;
  labels.set(id, label);
  return id;
};

/**
 * Replays the run's history with today's workflow code, so the notifications-in-background path (patch
 * markers, cancelled reminders) is checked for determinism; with LABLINE_RECORD_HISTORIES=1 it is also
 * written to tests/replay/histories/ for the replay suite.
 */
async function replay(id: string): Promise<void> {
  const history = await env.client.workflow.getHandle(id).fetchHistory();
  await Worker.runReplayHistory({ workflowBundle: workflowBundle() }, history, id);
  await recordHistory(env.client, id, `experiment-slack-${labels.get(id) ?? id}`);
}

async function run<T>(input: ExperimentSpecInput, drive: (id: string) => Promise<T>): Promise<T> {
  const spec = ExperimentSpec.parse(input);
  const result = await withWorker(
    env,
    { taskQueue: s.rig.taskQueue, activities: s.rig.activities },
    async () => {
      await submitExperiment({ client: env.client, spec, settings: s.rig.settings });
      try {
        return await drive(spec.experiment_id);
      } finally {
        const handle = experimentHandle(env.client, spec.experiment_id);
        if ((await handle.describe()).status.name === 'RUNNING') await handle.cancel();
        await handle.result().catch(() => undefined);
      }
    },
  );
  await replay(spec.experiment_id);
  return result;
}

const blocksText = (m: FakeMessage) => JSON.stringify(m.blocks);
const hasButtons = (m: FakeMessage) => (m.blocks ?? []).some((b) => b.block_id === ACTIONS_BLOCK_ID);
const decidedText = (m: FakeMessage) =>
  JSON.stringify(m.blocks?.find((b) => b.block_id === DECIDED_BLOCK_ID) ?? null);
const requestsOf = (id: string, kind = 'request') =>
  s.slack
    .topLevel()
    .filter((m) => FakeSlack.payload(m).experiment_id === id && FakeSlack.payload(m).kind === kind);

test('an experiment approved at every gate from Slack: launch, a failed attempt retried, publish; Slack rate limiting is waited out and every request updated with who decided', async () => {
  const id = newId('allgates');
  const alone = { approvers: ['alice'] };
  const spec = trainerSpec(id, ['--crash-at-step=25', '--crash-attempts=1'], {
    approvals: { launch: alone, failure: alone, publish: alone, deliverables: alone },
  });
  // Slack's first answer is a rate limit: the activity fails with Retry-After as its next retry delay.
  s.slack.rateLimitNext('chat.postMessage', 1);
  const result = await run(spec, async () => {
    const launch = await s.request(id, 'launch');
    expect(s.slack.calls.filter((c) => c.method === 'chat.postMessage').map((c) => c.status)).toEqual([
      429, 200,
    ]);
    expect(blocksText(launch)).toContain('--crash-at-step=25');
    expect(blocksText(launch)).toContain('0 GPU(s), 1 CPU(s) on local');
    expect((await s.click(launch, 'labline_approve', alice)).status).toBe(200);

    const failure = await s.request(id, 'failure');
    expect(blocksText(failure)).toContain('*Error class* `error`');
    expect(blocksText(failure)).toContain('Simulated crash at step 25');
    expect((await s.click(failure, 'labline_retry', alice)).status).toBe(200);

    const publish = await s.request(id, 'publish');
    expect(blocksText(publish)).toContain('*Key results*');
    expect(blocksText(publish)).toMatch(/:white_check_mark: accuracy: 0\.\d+/);
    expect((await s.click(publish, 'labline_approve', alice)).status).toBe(200);
    const ended = await experimentHandle(env.client, id).result();
    // The workflow's own "decided" update follows the endpoint's: each request is updated twice.
    for (const message of [launch, failure, publish])
      await s.slack.until(
        () => message.edits.length >= 2,
        `the ${String(FakeSlack.payload(message).gate)} request updated`,
      );
    return ended;
  });
  expect(result.end_stage).toBe('completed');
  expect(result.decisions.map((d) => [d.gate, d.outcome, d.by, d.source])).toEqual([
    ['launch', 'approved', 'alice', 'slack'],
    ['failure', 'retry', 'alice', 'slack'],
    ['publish', 'approved', 'alice', 'slack'],
  ]);
  const requests = requestsOf(id);
  expect(requests.map((m) => FakeSlack.payload(m).gate)).toEqual(['launch', 'failure', 'publish']);
  for (const request of requests) {
    expect(hasButtons(request)).toBe(false);
    expect(decidedText(request)).toMatch(/by alice \(<@U0ALICE01>\) on <!date\^/);
    expect(request.text).toMatch(/^(Approved|Retry approved): Approval needed: /);
  }
});

test('reminders go to the request thread, then the escalation mentions the escalation approvers, who decide from Slack', async () => {
  const id = newId('escalate');
  const spec = trainerSpec(id, [], {
    approvals: {
      launch: {
        approvers: ['alice'],
        reminder_interval: '1s',
        max_reminders: 1,
        timeout: '3s',
        on_timeout: 'escalate',
        escalation_approvers: ['lead'],
      },
      publish: { enabled: false },
    },
  });
  const result = await run(spec, async () => {
    const request = await s.request(id, 'launch');
    const [reminder] = await s.slack.until(
      () => s.slack.replies(request.ts).length > 0 && s.slack.replies(request.ts),
      'the reminder',
    );
    expect(reminder!.text).toMatch(/^Reminder 1: launch of test exp-slackflow-escalate/);
    expect(blocksText(reminder!)).toContain('<@U0ALICE01>');
    const escalation = await s.request(id, 'launch', 'escalation');
    expect(blocksText(escalation)).toContain(
      'Nobody decided in time. <@U0ALICE01>, <@U0LEAD001>, please decide.',
    );
    expect((await s.click(escalation, 'labline_approve', lead)).status).toBe(200);
    const ended = await experimentHandle(env.client, id).result();
    await s.slack.until(() => request.edits.length > 0, 'the first request updated by the workflow');
    return ended;
  });
  expect(result.end_stage).toBe('completed');
  expect(result.decisions[0]).toMatchObject({
    gate: 'launch',
    outcome: 'approved',
    by: 'lead',
    source: 'slack',
  });
  const [request, escalation] = [requestsOf(id)[0]!, requestsOf(id, 'escalation')[0]!];
  for (const message of [request, escalation]) {
    expect(hasButtons(message)).toBe(false);
    expect(decidedText(message)).toMatch(/\*Approved\* by lead \(<@U0LEAD001>\)/);
  }
  expect(s.slack.replies(request.ts)).toHaveLength(1);
});

test('while Slack is down the request keeps retrying, the gate is decided from the CLI, and nothing waits for Slack', async () => {
  const id = newId('down');
  s.slack.failNext(
    'chat.postMessage',
    { status: 503, body: { ok: false, error: 'service_unavailable' } },
    10_000,
  );
  const result = await run(
    trainerSpec(id, [], { approvals: { launch: { approvers: ['alice'] }, publish: { enabled: false } } }),
    async () => {
      await s.slack.until(
        () => s.slack.calls.filter((c) => c.method === 'chat.postMessage' && c.status === 503).length >= 2,
        'the request retried',
      );
      await waitForStatus(env.client, id, (st) => st.waiting?.gate === 'launch');
      await decide(env.client, id, 'approve', { gate: 'launch', by: 'alice', source: 'cli' });
      return experimentHandle(env.client, id).result();
    },
  );
  expect(result.end_stage).toBe('completed');
  expect(result.decisions[0]).toMatchObject({
    gate: 'launch',
    outcome: 'approved',
    by: 'alice',
    source: 'cli',
  });
  expect(s.slack.topLevel()).toEqual([]);
});
