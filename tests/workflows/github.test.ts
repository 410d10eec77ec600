/**
 * The lab notebook on GitHub, end to end: the real workflow, the real activities with the GitHub notebook
 * writing to a loopback GitHub through the real `@octokit/rest`, and worker processes killed mid-call.
 */
import { Worker } from '@temporalio/worker';
import * as path from 'node:path';
import { submitCampaign } from '../../src/client/campaigns';
import { decide, submitExperiment } from '../../src/client/experiments';
import { CampaignSpec, ExperimentSpec, type ExperimentSpecInput } from '../../src/experiment';
import {
  decideWhenWaiting,
  trainerPath,
  trainerSpec,
  waitForStatus,
  startLablineWorkerProcess,
} from '../support/experiments';
import { fakeGithubSettings, githubRig } from '../support/github-rig';
import { FakeGithub, type FakeIssue } from '../support/fake-github';
import { recordHistory } from '../support/histories';
import type { RunningProcess } from '../support/processes';
import { startTestTemporal, withWorker, workflowBundle, type TestTemporal } from '../support/temporal';

let env: TestTemporal;
let github: FakeGithub;
const processes: RunningProcess[] = [];
beforeAll(async () => {
  env = await startTestTemporal();
});
afterAll(async () => {
  await Promise.all(processes.map((p) => p.kill()));
  await env?.stop();
});
beforeEach(async () => {
  github = await new FakeGithub().start();
});
afterEach(async () => github.stop());

const githubSettings = () => fakeGithubSettings(github);

async function runToEnd(id: string, input: ExperimentSpecInput, drive: () => Promise<void>) {
  const { rig, activities, workflowSettings } = githubRig(github);
  await withWorker(env, { taskQueue: rig.taskQueue, activities }, async () => {
    await submitExperiment({
      client: env.client,
      spec: ExperimentSpec.parse(input),
      settings: workflowSettings,
    });
    await drive();
    await env.client.workflow.getHandle(id).result();
  });
  const history = await env.client.workflow.getHandle(id).fetchHistory();
  await Worker.runReplayHistory({ workflowBundle: workflowBundle() }, history, id);
  return rig;
}

const commentTitles = (issue: FakeIssue) =>
  issue.comments.map((c) => /^### (.*)$/m.exec(c.body)?.[1] ?? c.body.slice(0, 40));

test('an experiment keeps one issue from submission to its post: stage label, decisions, events, outcome, closed', async () => {
  const id = `exp-github-happy-${process.pid}`;
  // GitHub's secondary limit hits the first write; it is waited out and nothing is written twice.
  github.fail(
    'POST /repos/*/*/issues',
    403,
    { message: 'You have exceeded a secondary rate limit. Please wait before you try again.' },
    { 'retry-after': '1' },
  );
  await runToEnd(id, trainerSpec(id), async () => {
    const waiting = await waitForStatus(env.client, id, (s) => s.waiting?.gate === 'launch');
    // The issue is there while the experiment waits for its launch, and tells what it waits for.
    const issue = await waitForIssue((i) => i.body.includes('**Waiting for:** the launch gate'));
    expect(issue.labels).toEqual(['labline', 'stage:launch_review']);
    expect(waiting.stage).toBe('launch_review');
    await decideWhenWaiting(env.client, id, 'launch', 'approve', { comment: 'go' });
    await decideWhenWaiting(env.client, id, 'publish', 'approve');
  });
  expect(github.issues).toHaveLength(1);
  const issue = github.issues[0]!;
  expect(issue.title).toBe(`Experiment: test ${id} (${id})`);
  expect(issue.state).toBe('closed');
  expect([...issue.labels].sort()).toEqual(['labline', 'stage:completed', 'supported']);
  expect(issue.body).toContain('**Stage:** `completed`');
  expect(issue.body).toMatch(/\| launch \| approved \| alice \(api\) \| [^|]+ \| go \|/);
  expect(issue.body).toContain('- [x] `accuracy` (threshold)');
  expect(commentTitles(issue)).toEqual([
    'Launch 1 started',
    'Deliverables checked: all met',
    'Publish review requested',
    'Completed: supported',
  ]);
  expect(issue.comments[1]!.body).toMatch(
    /\| `accuracy` \| yes \| eval\/accuracy \(summary\) >= 0\.7 \| [0-9.]+ \| yes \|/,
  );
  // The post is the report, its charts committed to the posts branch and linked there.
  const post = issue.comments[3]!.body;
  expect(post).toContain('## Training curves');
  expect(post).toContain(`/blob/labline/posts/posts/${id}/charts/`);
  expect([...github.files.keys()].some((key) => key.startsWith(`labline/posts:posts/${id}/charts/`))).toBe(
    true,
  );
  expect(
    github.calls.filter((c) => c.method === 'POST' && c.path.endsWith('/issues')).map((c) => c.status),
  ).toEqual([403, 201]);
  await recordHistory(env.client, id, 'experiment-github-notebook');
});

test('a failed experiment: the failure is commented with its log tail, the issue labelled failed and closed', async () => {
  const id = `exp-github-failed-${process.pid}`;
  const input = trainerSpec(id, ['--crash-at-step=25', '--crash-attempts=5'], {
    approvals: { launch: { enabled: false }, publish: { enabled: false } },
    budgets: { max_training_attempts: 1, max_preemption_restarts: 0 },
  });
  await runToEnd(id, input, async () => {});
  const issue = github.issues[0]!;
  expect(github.issues).toHaveLength(1);
  expect(issue.state).toBe('closed');
  expect([...issue.labels].sort()).toEqual(['failed', 'labline', 'stage:failed']);
  expect(commentTitles(issue)).toEqual(['Launch 1 started', 'Launch 1 failed: error', 'Ended: failed']);
  expect(issue.comments[1]!.body).toMatch(/Log tail:\n\n```\n[\s\S]*crash/i);
  expect(issue.comments[2]!.body).toContain('training attempt budget exhausted');
  expect(issue.body).toContain('**Reason:** training attempt budget exhausted');
});

test('a preempted training: the preemption and the resumed launch are commented, the issue ends supported', async () => {
  const id = `exp-github-preempt-${process.pid}`;
  const input = trainerSpec(id, ['--preempt-at-step=30'], {
    approvals: { launch: { enabled: false }, publish: { enabled: false } },
  });
  await runToEnd(id, input, async () => {});
  const issue = github.issues[0]!;
  expect(commentTitles(issue)).toEqual([
    'Launch 1 started',
    'Launch 1 preempted; resuming',
    'Launch 2 started',
    'Deliverables checked: all met',
    'Publish review requested',
    'Completed: supported',
  ]);
  expect(issue.comments[1]!.body).toMatch(/Resuming from `[^`]*checkpoint/);
  expect(issue.comments[2]!.body).toMatch(/resuming from `/);
  expect(issue.body).toMatch(/\| 1 \| [^|]+ \| [^|]+ \| preempted/);
});

test('a worker killed after GitHub opened the issue but before it answered: the retry finds it, one issue', async () => {
  const { rig, activities, workflowSettings } = githubRig(github);
  const id = `exp-github-kill-${process.pid}`;
  const held = github.hold('POST /repos/*/*/issues');
  const first = await startLablineWorkerProcess(env, rig, processes, {
    LABLINE_TEST_GITHUB: JSON.stringify(githubSettings()),
    GITHUB_TOKEN: github.token,
  });
  const spec = ExperimentSpec.parse(trainerSpec(id));
  await submitExperiment({ client: env.client, spec, settings: workflowSettings });
  await held.reached;
  await first.kill('SIGKILL');
  held.release();
  expect(github.issues).toHaveLength(1);

  await withWorker(env, { taskQueue: rig.taskQueue, activities }, async () => {
    const status = await waitForStatus(env.client, id, (s) => s.links.github_issue !== undefined, 30_000);
    expect(status.links.github_issue).toBe(`${github.htmlUrl()}/issues/1`);
    await env.client.workflow.getHandle(id).cancel();
    await env.client.workflow
      .getHandle(id)
      .result()
      .catch(() => undefined);
  });
  expect(github.issues).toHaveLength(1);
  expect(github.issues[0]!.state).toBe('closed');
  expect(github.issues[0]!.labels).toContain('cancelled');
});

test('a campaign keeps a tracking issue: its children as a task list ticked as they finish, the comparison, closed with the report', async () => {
  const { rig, activities, workflowSettings } = githubRig(github);
  const campaignId = `camp-github-${process.pid}`;
  const campaign = CampaignSpec.parse({
    campaign_id: campaignId,
    name: 'steps on GitHub',
    description: 'Does training longer help?',
    base: {
      ...trainerSpec(`exp-github-base-${process.pid}`),
      config: { steps: 30, lr: 0.5, seed: 0 },
      training: {
        command: process.execPath,
        args: [
          trainerPath,
          '--steps=${config.steps}',
          '--lr=${config.lr}',
          '--seed=${config.seed}',
          '--eval-every=5',
        ],
        working_directory: path.dirname(trainerPath),
      },
      deliverables: [],
      approvals: { launch: { enabled: false }, publish: { enabled: false } },
    },
    variants: { grid: { steps: [5, 40] } },
    include_base: false,
    seeds: 1,
    concurrency: 2,
    primary_metric: { name: 'eval/accuracy', goal: 'max' },
  });
  await withWorker(env, { taskQueue: rig.taskQueue, activities }, async () => {
    const { handle } = await submitCampaign({ client: env.client, campaign, settings: workflowSettings });
    const tracking = await waitForIssue(
      (i) => i.title.startsWith('Campaign:') && i.body.includes('launch gate'),
    );
    expect(tracking.title).toBe(`Campaign: steps on GitHub (${campaignId})`);
    await decide(env.client, campaignId, 'approve', { gate: 'launch', by: 'alice', source: 'api' });
    await handle.result();
    const history = await handle.fetchHistory();
    await Worker.runReplayHistory({ workflowBundle: workflowBundle() }, history, campaignId);
  });
  // One issue for the campaign, one per child experiment.
  expect(github.issues.map((i) => i.title.split(':')[0]).sort()).toEqual([
    'Campaign',
    'Experiment',
    'Experiment',
  ]);
  const tracking = github.issues.find((i) => i.title.startsWith('Campaign:'))!;
  expect(tracking.state).toBe('closed');
  expect([...tracking.labels].sort()).toEqual(['completed', 'labline', 'stage:completed']);
  expect(tracking.body).toContain('Does training longer help?');
  for (const steps of [5, 40])
    expect(tracking.body).toMatch(
      new RegExp(`- \\[x\\] \\S+-steps-${steps}-s0\\S \\(steps-${steps}, seed 0\\): completed`),
    );
  expect(tracking.body).toMatch(/#### Comparison[\s\S]*\| 1 \| `steps-40` \| 1 \|/);
  expect(tracking.comments.at(-1)!.body).toContain('## Variants');
  await recordHistory(env.client, campaignId, 'campaign-github-tracking-issue');
});

/** Waits (bounded) for the one issue to satisfy `predicate`. */
async function waitForIssue(
  predicate: (issue: FakeIssue) => boolean,
  timeoutMs = 20_000,
): Promise<FakeIssue> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const issue = github.issues.find(predicate);
    if (issue) return issue;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(
    `timed out waiting for the issue; calls ${JSON.stringify(github.calls.map((c) => [c.method, c.path, c.status]))}`,
  );
}
