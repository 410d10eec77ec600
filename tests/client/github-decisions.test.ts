/**
 * Decisions from GitHub comments, end to end: an experiment waiting at its launch gate with its issue on a
 * loopback GitHub, and `labline github`'s webhook endpoint and poller taking `/labline` comments.
 */
import { createHmac } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { GithubClient } from '../../src/activities/notebook/github-client';
import { experimentHandle, submitExperiment } from '../../src/client/experiments';
import { GithubDecisions } from '../../src/client/github/decisions';
import { GithubPoller } from '../../src/client/github/poll';
import { startGithubWebhook, type GithubWebhook } from '../../src/client/github/webhook';
import { SeenRequests } from '../../src/client/slack/seen-requests';
import { ExperimentSpec, type ExperimentStatus } from '../../src/experiment';
import { trainerSpec, waitForStatus } from '../support/experiments';
import { FakeGithub, type FakeComment } from '../support/fake-github';
import { githubRig } from '../support/github-rig';
import { startTestTemporal, withWorker, type TestTemporal } from '../support/temporal';

const SECRET = 'webhook-secret';
let env: TestTemporal;
let github: FakeGithub;
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => env?.stop());
beforeEach(async () => {
  github = await new FakeGithub({ permissions: { 'writer-gh': 'write', 'reader-gh': 'read' } }).start();
});
afterEach(async () => github.stop());

let counter = 0;

/** An experiment waiting at its launch gate, its issue open; `drive` gets its id and the decisions. */
async function atLaunchGate(
  approvers: string[],
  drive: (id: string, decisions: GithubDecisions, client: GithubClient) => Promise<void>,
): Promise<void> {
  const { rig, activities, workflowSettings, settings, client } = githubRig(github, {
    approvers: { alice: 'alice-gh' },
  });
  const id = `exp-github-decide-${process.pid}-${++counter}`;
  const spec = ExperimentSpec.parse(trainerSpec(id, [], { approvals: { launch: { approvers } } }));
  await withWorker(env, { taskQueue: rig.taskQueue, activities }, async () => {
    await submitExperiment({ client: env.client, spec, settings: workflowSettings });
    await waitForStatus(
      env.client,
      id,
      (s) => s.waiting?.gate === 'launch' && s.links.github_issue !== undefined,
    );
    try {
      await drive(id, new GithubDecisions({ client: env.client, github: client, settings }), client);
    } finally {
      const handle = experimentHandle(env.client, id);
      if ((await handle.describe()).status.name === 'RUNNING') await handle.cancel();
      await handle.result().catch(() => undefined);
    }
  });
}

/** GitHub's delivery of a new (or edited) comment, signed with `secret`. */
function delivery(comment: FakeComment, options: { secret?: string; action?: string; id?: string } = {}) {
  const body = JSON.stringify({
    action: options.action ?? 'created',
    issue: github.issueJson(github.issue(comment.issue)),
    comment: github.commentJson(comment),
    repository: { full_name: github.fullName },
    sender: { login: comment.user, type: comment.user_type },
  });
  const signature = `sha256=${createHmac('sha256', options.secret ?? SECRET)
    .update(body)
    .digest('hex')}`;
  return {
    body,
    headers: {
      'content-type': 'application/json',
      'x-github-event': 'issue_comment',
      'x-github-delivery': options.id ?? `delivery-${comment.id}`,
      'x-hub-signature-256': signature,
    },
  };
}

const post = async (webhook: GithubWebhook, request: ReturnType<typeof delivery>) => {
  const response = await fetch(webhook.url, { method: 'POST', headers: request.headers, body: request.body });
  return { status: response.status, text: await response.text() };
};
const decisionsOf = async (id: string) =>
  (await waitForStatus(env.client, id, () => true)).decisions.filter((d) => d.outcome !== undefined);
const replies = () => github.issues[0]!.comments.filter((c) => c.body.includes('labline:reply='));

test("webhook: a forged, an edited, a bot's and a refused comment change nothing; an approver's approves once, replays included", async () => {
  await atLaunchGate(['alice'], async (id, decisions) => {
    const seen = new SeenRequests(
      path.join(mkdtempSync(path.join(tmpdir(), 'labline-seen-')), 'seen.json'),
      60_000,
    );
    const webhook = await startGithubWebhook({
      decisions,
      secret: SECRET,
      seen,
      port: 0,
      host: '127.0.0.1',
      path: '/github/webhook',
      log: () => {},
    });
    try {
      const issue = github.issues[0]!.number;
      const approve = github.addComment(issue, 'alice-gh', '/labline approve looks right');
      expect(await post(webhook, delivery(approve, { secret: 'not-the-secret' }))).toMatchObject({
        status: 401,
      });
      expect(await post(webhook, delivery(approve, { action: 'edited', id: 'edit-1' }))).toMatchObject({
        status: 202,
      });
      const byBot = github.addComment(issue, 'some-bot', '/labline approve', 'Bot');
      expect(await post(webhook, delivery(byBot))).toMatchObject({ status: 200, text: 'ignored' });
      const byMallory = github.addComment(issue, 'mallory', '/labline approve');
      expect(await post(webhook, delivery(byMallory))).toMatchObject({ status: 200, text: 'refused' });
      expect(replies().at(-1)!.body).toContain(
        '@mallory Not taken: @mallory is not an approver of this gate; it may be decided by alice.',
      );
      expect(await decisionsOf(id)).toEqual([]);

      expect(await post(webhook, delivery(approve))).toMatchObject({ status: 200, text: 'decided' });
      const [decision] = await decisionsOf(id);
      expect(decision).toMatchObject({
        gate: 'launch',
        outcome: 'approved',
        by: 'alice',
        source: 'github',
        comment: 'looks right',
      });
      expect(replies().at(-1)!.body).toMatch(/@alice-gh Recorded: the launch gate approved by alice/);
      // The same delivery again (a replay, or GitHub's redelivery) is not taken.
      expect(await post(webhook, delivery(approve))).toMatchObject({
        status: 200,
        text: expect.stringMatching(/taken already/),
      });
      expect(await decisionsOf(id)).toHaveLength(1);
    } finally {
      await webhook.stop();
    }
  });
});

test('polling: a gate anyone may decide takes a comment by someone with write access, not by a reader; each comment once', async () => {
  await atLaunchGate([], async (id, decisions, client) => {
    const seen = new SeenRequests(undefined, 60_000);
    const poller = new GithubPoller({
      github: client,
      repo: github.fullName,
      decisions,
      seen,
      since: '2000-01-01T00:00:00Z',
    });
    const issue = github.issues[0]!.number;
    github.addComment(issue, 'reader-gh', '/labline approve');
    expect(await poller.pollOnce()).toBe(1);
    expect(replies().at(-1)!.body).toContain('@reader-gh has read access');
    expect(await decisionsOf(id)).toEqual([]);

    github.addComment(issue, 'writer-gh', '/labline reject  too costly for now');
    expect(await poller.pollOnce()).toBe(1);
    const status: ExperimentStatus = await waitForStatus(env.client, id, (s) => s.stage === 'rejected');
    expect(status.decisions.find((d) => d.outcome)).toMatchObject({
      outcome: 'rejected',
      by: 'writer-gh',
      source: 'github',
      comment: 'too costly for now',
    });
    // Labline's own replies are comments too: read, and ignored.
    expect(await poller.pollOnce()).toBe(0);
  });
});
