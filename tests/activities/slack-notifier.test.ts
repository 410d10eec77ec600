/**
 * The Slack notifier against a fake Slack Web API on 127.0.0.1: what a request looks like, idempotent
 * posting across retries and worker processes, reminders in threads, escalations, decided updates, and
 * how Slack's errors become retryable or non-retryable activity failures.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Announcement, ApprovalMessage, DecidedMessage } from '../../src/activities/notify/notifier';
import { createSlackWebClient, SlackNotifier } from '../../src/activities/notify/slack';
import { ACTIONS_BLOCK_ID, ButtonValue, DECIDED_BLOCK_ID } from '../../src/activities/notify/slack-messages';
import type { ApprovalDetails, GateName } from '../../src/experiment';
import { SlackSettings } from '../../src/activities/notify/slack-settings';
import { createLablineActivities } from '../../src/workers/activities';
import { FakeSlack, startFakeSlack, type FakeMessage } from '../support/fake-slack';

let slack: FakeSlack;
beforeEach(async () => {
  slack = await startFakeSlack();
});
afterEach(async () => slack?.stop());

const approvers = { alice: 'U0ALICE01', bob: 'bob@example.com' };

function notifier(options: { token?: string; channel?: string; apiUrl?: string } = {}): SlackNotifier {
  return new SlackNotifier({
    client: createSlackWebClient({
      token: options.token ?? slack.token,
      apiUrl: options.apiUrl ?? slack.apiUrl,
    }),
    settings: { channel: options.channel ?? 'C0APPROVALS', approvers },
  });
}

const since = new Date(Date.now() - 1000).toISOString();

function message(
  gate: GateName,
  details: ApprovalDetails,
  extra: Partial<ApprovalMessage> = {},
): ApprovalMessage {
  return {
    key: `exp-slack-notify/${gate}/1/request/false`,
    experimentId: 'exp-slack-notify',
    name: 'moons MLP',
    hypothesis: 'a small MLP separates the two moons',
    gate,
    round: 1,
    links: {
      run_dir: '/runs/exp-slack-notify',
      tracker: 'https://wandb.ai/acme/moons/runs/exp-slack-notify',
    },
    waiting: {
      gate,
      question: `decide the ${gate} gate`,
      since,
      approvers: ['alice', 'bob', 'dave'],
      reminders_sent: 0,
      escalated: false,
      deadline: new Date(Date.now() + 3_600_000).toISOString(),
      details,
    },
    ...extra,
  };
}

const launch = () =>
  message('launch', {
    command: 'python train.py --lr 0.5',
    resources: '2 GPU(s), 8 CPU(s), time limit 3h on slurm',
    gpu_hours_estimate: 6,
  });

const context = (attempt: number, workflowRunId = 'run-1') => ({ attempt, workflowRunId });
const text = (m: FakeMessage) => JSON.stringify(m.blocks);
const buttons = (m: FakeMessage) =>
  (m.blocks ?? [])
    .filter((b) => b.block_id === ACTIONS_BLOCK_ID)
    .flatMap((b) => b.elements as { action_id: string; value: string; text: { text: string } }[]);

test('a launch request posts Block Kit to the channel: experiment, hypothesis, command, resources, GPU hours, W&B link, mentions and buttons carrying experiment and gate', async () => {
  await notifier().requestApproval(launch(), context(1));
  const [call] = slack.succeeded('chat.postMessage');
  expect(call!.headers.authorization).toBe(`Bearer ${slack.token}`);
  expect(call!.contentType).toBe('application/x-www-form-urlencoded');
  expect(call!.args.channel).toBe('C0APPROVALS');
  expect(call!.args.text).toMatch(/Approval needed: Launch of moons MLP \(exp-slack-notify\)/);
  const [posted] = slack.topLevel();
  const blocks = text(posted!);
  expect(blocks).toContain('a small MLP separates the two moons');
  expect(blocks).toContain('python train.py --lr 0.5');
  expect(blocks).toContain('2 GPU(s), 8 CPU(s), time limit 3h on slurm');
  expect(blocks).toContain('at most 6 per attempt');
  expect(blocks).toContain('<https://wandb.ai/acme/moons/runs/exp-slack-notify|W&B run>');
  // alice by id, bob by email (users.lookupByEmail), dave unknown to Slack: named.
  expect(blocks).toContain('<@U0ALICE01>, <@U0BOB0001>, dave');
  expect(posted!.metadata).toMatchObject({
    event_type: 'labline_approval',
    event_payload: {
      key: 'exp-slack-notify/launch/1/request/false',
      run_id: 'run-1',
      kind: 'request',
      buttons: true,
    },
  });
  const [approve, reject] = buttons(posted!);
  expect([approve!.text.text, reject!.text.text]).toEqual(['Approve', 'Reject']);
  expect(ButtonValue.parse(JSON.parse(approve!.value))).toEqual({
    experiment_id: 'exp-slack-notify',
    gate: 'launch',
    since,
    signal: 'approve',
  });
  expect(ButtonValue.parse(JSON.parse(reject!.value))).toMatchObject({ gate: 'launch', signal: 'reject' });
});

test('a failure request shows the error class and the log tail, with Retry and Abort buttons', async () => {
  await notifier().requestApproval(
    message('failure', {
      error_class: 'out_of_memory',
      error: 'exit code 1; the log reports CUDA out of memory',
      log_tail: 'step 24 loss 0.31\nRuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB',
    }),
    context(1),
  );
  const [posted] = slack.topLevel();
  expect(text(posted!)).toContain('`out_of_memory`: exit code 1; the log reports CUDA out of memory');
  expect(text(posted!)).toContain('RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB');
  const values = buttons(posted!).map((b) => [b.text.text, ButtonValue.parse(JSON.parse(b.value))]);
  expect(values).toEqual([
    ['Retry', expect.objectContaining({ signal: 'approve', choice: 'retry', gate: 'failure' })],
    ['Abort', expect.objectContaining({ signal: 'reject', choice: 'abort', gate: 'failure' })],
  ]);
});

test('a publish request shows the key results and the analysis; a deliverables request offers accept, rerun or abort', async () => {
  const results = [
    { name: 'accuracy', found: '0.93', expected: 'eval/accuracy >= 0.7', passed: true },
    { name: 'checkpoint', found: 'missing', expected: 'checkpoints/latest.json', passed: false },
  ];
  await notifier().requestApproval(
    message('publish', { headline: 'accuracy reached 0.93 at step 60', key_results: results }),
    context(1),
  );
  await notifier().requestApproval(
    message(
      'deliverables',
      { key_results: results },
      { key: 'exp-slack-notify/deliverables/2/request/false', round: 2 },
    ),
    context(1),
  );
  const [publish, deliverables] = slack.topLevel();
  expect(text(publish!)).toContain('accuracy reached 0.93 at step 60');
  expect(text(publish!)).toContain(':white_check_mark: accuracy: 0.93 (expected eval/accuracy &gt;= 0.7)');
  expect(text(publish!)).toContain(':x: checkpoint: missing (expected checkpoints/latest.json)');
  expect(buttons(deliverables!).map((b) => b.text.text)).toEqual(['Accept anyway', 'Rerun', 'Abort']);
});

test('a retried request finds its earlier post in Slack and does not post again, even from another worker process', async () => {
  await notifier().requestApproval(launch(), context(1));
  // The worker crashed after posting; the retry runs in a new process (no memory of the post).
  await notifier().requestApproval(launch(), context(2));
  await notifier().requestApproval(launch(), context(3));
  expect(slack.topLevel()).toHaveLength(1);
  const lookups = slack.succeeded('conversations.history');
  expect(lookups).toHaveLength(2);
  expect(lookups[0]!.args).toMatchObject({ channel: 'C0APPROVALS', include_all_metadata: 'true' });
  expect(Number(lookups[0]!.args.oldest)).toBeLessThan(Date.parse(since) / 1000);
  // The same experiment id submitted again is a new workflow run: its request is posted.
  await notifier().requestApproval(launch(), context(2, 'run-2'));
  expect(slack.topLevel()).toHaveLength(2);
});

test('an announcement (an autonomous promotion) posts once without buttons, also when retried from another process', async () => {
  const promotion: Announcement = {
    key: 'camp-moons/publish/3/announcement',
    experimentId: 'camp-moons',
    name: 'moons search',
    gate: 'publish',
    round: 3,
    title: 'New incumbent: trial 3 of moons search',
    body: 'a larger learning rate\nimproves the mean by 0.05, p = 0.01 < 0.05\nBranch labline/camp-moons/trial-3',
    at: since,
    links: { report: '/runs/camp-moons/search-report.md' },
  };
  await notifier().announce(promotion, context(1));
  await notifier().announce(promotion, context(2));
  const posts = slack.topLevel();
  expect(posts).toHaveLength(1);
  expect(text(posts[0]!)).toContain('New incumbent: trial 3 of moons search');
  expect(text(posts[0]!)).toContain('labline/camp-moons/trial-3');
  expect(buttons(posts[0]!)).toEqual([]);
  expect(posts[0]!.metadata?.event_payload).toMatchObject({
    kind: 'announcement',
    gate: 'publish',
    round: 3,
  });
});

test('reminders are replies in the request thread, mention the approvers, and are posted once per key', async () => {
  const notify = notifier();
  await notify.requestApproval(launch(), context(1));
  const [request] = slack.topLevel();
  const reminder = { ...launch(), key: 'exp-slack-notify/launch/1/reminder/1' };
  reminder.waiting = { ...reminder.waiting, reminders_sent: 1 };
  await notify.remind(reminder, context(1));
  await notifier().remind(reminder, context(2));
  const replies = slack.replies(request!.ts);
  expect(replies).toHaveLength(1);
  expect(replies[0]!.text).toMatch(/^Reminder 1: launch of moons MLP \(exp-slack-notify\) still waits/);
  expect(text(replies[0]!)).toContain('<@U0ALICE01>');
  expect(buttons(replies[0]!)).toEqual([]);
  expect(slack.topLevel()).toHaveLength(1);
});

test('a reminder whose request never made it to Slack carries the decision buttons itself', async () => {
  const reminder = { ...launch(), key: 'exp-slack-notify/launch/1/reminder/1' };
  reminder.waiting = { ...reminder.waiting, reminders_sent: 1 };
  await notifier().remind(reminder, context(1));
  const [posted] = slack.topLevel();
  expect(posted!.text).toMatch(/^Reminder 1: Launch of moons MLP needs a decision/);
  expect(buttons(posted!).map((b) => b.action_id)).toEqual(['labline_approve', 'labline_reject']);
  expect(FakeSlack.payload(posted!)).toMatchObject({ kind: 'reminder', buttons: true });
});

test('an escalation posts a new request that mentions who is asked now, with the buttons', async () => {
  const notify = notifier();
  await notify.requestApproval(launch(), context(1));
  const escalated = { ...launch(), key: 'exp-slack-notify/launch/1/request/true' };
  escalated.waiting = { ...escalated.waiting, escalated: true, approvers: ['alice', 'U0LEAD001'] };
  await notify.requestApproval(escalated, context(1));
  const [, escalation] = slack.topLevel();
  expect(escalation!.text).toMatch(/^Escalated: Launch of moons MLP still needs a decision/);
  expect(text(escalation!)).toContain('Nobody decided in time. <@U0ALICE01>, <@U0LEAD001>, please decide.');
  expect(buttons(escalation!)).toHaveLength(2);
  expect(FakeSlack.payload(escalation!)).toMatchObject({ kind: 'escalation', round: 1 });
});

test('markDecided updates every request of the round with who decided and when, and removes the buttons', async () => {
  const notify = notifier();
  await notify.requestApproval(launch(), context(1));
  const escalated = { ...launch(), key: 'exp-slack-notify/launch/1/request/true' };
  escalated.waiting = { ...escalated.waiting, escalated: true };
  await notify.requestApproval(escalated, context(1));
  const otherRound = { ...launch(), key: 'exp-slack-notify/launch/2/request/false', round: 2 };
  await notify.requestApproval(otherRound, context(1));
  const decided: DecidedMessage = {
    key: 'exp-slack-notify/launch/1/decided',
    experimentId: 'exp-slack-notify',
    name: 'moons MLP',
    hypothesis: 'a small MLP separates the two moons',
    gate: 'launch',
    round: 1,
    since,
    links: {},
    decision: {
      gate: 'launch',
      by: 'alice',
      at: '2026-01-05T09:30:00.000Z',
      source: 'cli',
      signal: 'approve',
      outcome: 'approved',
      comment: 'go',
    },
  };
  await notifier().markDecided(decided, context(1));
  const [first, second, third] = slack.topLevel();
  for (const updated of [first!, second!]) {
    expect(updated.edits).toHaveLength(1);
    expect(buttons(updated)).toEqual([]);
    const block = updated.blocks!.find((b) => b.block_id === DECIDED_BLOCK_ID);
    expect(JSON.stringify(block)).toContain(
      '*Approved* by alice (<@U0ALICE01>) via cli on <!date^1767605400^',
    );
    expect(JSON.stringify(block)).toContain('\\n> go');
    expect(updated.text).toMatch(/^Approved: /);
    expect(text(updated)).toContain('python train.py --lr 0.5');
  }
  expect(third!.edits).toHaveLength(0);
  expect(slack.succeeded('chat.update').every((c) => c.args.metadata !== undefined)).toBe(true);
});

test("a 429 becomes a retryable failure whose next retry delay is Slack's Retry-After, and nothing is posted", async () => {
  slack.rateLimitNext('chat.postMessage', 7);
  const notify = notifier();
  const failure = await notify.requestApproval(launch(), context(1)).then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(failure).toBeInstanceOf(ApplicationFailure);
  expect(failure).toMatchObject({ type: 'NotifierUnavailable', nonRetryable: false, nextRetryDelay: '7s' });
  expect(slack.calls.filter((c) => c.method === 'chat.postMessage').map((c) => c.status)).toEqual([429]);
  expect(slack.topLevel()).toHaveLength(0);
  // Temporal's retry (attempt 2) posts it, once.
  await notify.requestApproval(launch(), context(2));
  expect(slack.topLevel()).toHaveLength(1);
});

test('Slack errors that retrying can fix are retryable; refusals are not, and say what to fix', async () => {
  const outcome = (promise: Promise<void>) =>
    promise.then(
      () => undefined,
      (error: unknown) => error as ApplicationFailure,
    );
  slack.failNext('chat.postMessage', { status: 503, body: { ok: false, error: 'service_unavailable' } });
  expect(await outcome(notifier().requestApproval(launch(), context(1)))).toMatchObject({
    type: 'NotifierUnavailable',
    nonRetryable: false,
  });
  slack.failNext('chat.postMessage', { status: 200, body: { ok: false, error: 'internal_error' } });
  expect(await outcome(notifier().requestApproval(launch(), context(1)))).toMatchObject({
    nonRetryable: false,
  });

  const unknownChannel = await outcome(
    notifier({ channel: 'C0NOWHERE' }).requestApproval(launch(), context(1)),
  );
  expect(unknownChannel).toMatchObject({ type: 'NotifierRejected', nonRetryable: true });
  expect(unknownChannel!.message).toMatch(/channel_not_found.*Fix: set slack.channel/);
  const badToken = await outcome(notifier({ token: 'xoxb-wrong' }).requestApproval(launch(), context(1)));
  expect(badToken).toMatchObject({ type: 'NotifierRejected', nonRetryable: true });
  expect(badToken!.message).toMatch(/invalid_auth.*SLACK_BOT_TOKEN/);

  const down = await outcome(
    notifier({ apiUrl: 'http://127.0.0.1:9/api/' }).requestApproval(launch(), context(1)),
  );
  expect(down).toMatchObject({ type: 'NotifierUnavailable', nonRetryable: false });
  expect(slack.topLevel()).toHaveLength(0);
});

test('a worker whose settings have a slack section refuses to start without SLACK_BOT_TOKEN', () => {
  const host = {
    runsRoot: '/tmp/labline-runs',
    gpuIds: [],
    slotsDir: '/tmp/labline-slots',
    killGraceSeconds: 1,
  };
  const slackSettings = SlackSettings.parse({ channel: 'C0APPROVALS', api_url: slack.apiUrl });
  const saved = process.env.SLACK_BOT_TOKEN;
  try {
    delete process.env.SLACK_BOT_TOKEN;
    expect(() => createLablineActivities({ ...host, slack: slackSettings })).toThrow(
      /SLACK_BOT_TOKEN is not set, but the Labline settings have a `slack` section/,
    );
    process.env.SLACK_BOT_TOKEN = slack.token;
    expect(Object.keys(createLablineActivities({ ...host, slack: slackSettings }))).toContain(
      'requestApproval',
    );
  } finally {
    if (saved === undefined) delete process.env.SLACK_BOT_TOKEN;
    else process.env.SLACK_BOT_TOKEN = saved;
  }
});
